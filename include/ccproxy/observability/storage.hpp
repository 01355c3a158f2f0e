// Access-log storage: every finished request's row, kept where an operator can query it.
// `AccessLogStorage` is the interface a RequestContext writes to; `store` only enqueues.
//
// Example:
//   auto storage = std::make_shared<ccproxy::observability::SqliteAccessLogStorage>("access.db");
//   options.storage = storage;  // RequestContextOptions: each finished request stores its row
//   storage->close();           // drains the queue
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace ccproxy::observability {

// One request as the access log records it. Plain value type, not synchronised.
struct AccessLogRow {
  std::string request_id;
  std::chrono::system_clock::time_point timestamp{};
  std::string method;
  std::string endpoint;
  std::string path;
  std::string query;
  std::string client_ip;
  std::string user_agent;
  std::string service_type;
  std::string model;
  bool streaming = false;
  int status_code = 0;
  double duration_ms = 0.0;
  double duration_seconds = 0.0;
  std::int64_t tokens_input = 0;
  std::int64_t tokens_output = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  double cost_usd = 0.0;
  double cost_sdk_usd = 0.0;
  std::int64_t num_turns = 0;
  std::string session_id;
  std::string session_type;
  std::string session_status;
  double session_age_seconds = 0.0;
  std::int64_t session_message_count = 0;
  std::string session_client_id;
  bool session_pool_enabled = false;
  double session_idle_seconds = 0.0;
  std::string session_error;
  bool session_is_new = false;
};

// Where finished requests' rows go. Implementations are thread-safe: store() may be called
// from any number of request threads at once.
class AccessLogStorage {
 public:
  virtual ~AccessLogStorage() = default;
  // Queues the row and returns at once; never blocks on I/O, never throws. False when the
  // row was dropped (queue full or storage closed); the drop is counted and logged.
  virtual bool store(AccessLogRow row) noexcept = 0;
  // Writes out everything queued and stops accepting rows. Idempotent.
  virtual void close() noexcept = 0;
};

}  // namespace ccproxy::observability
