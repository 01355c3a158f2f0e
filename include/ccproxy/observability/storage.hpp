// Access-log storage: every finished request's row, kept where an operator can query it.
// `AccessLogStorage` is the interface a RequestContext writes to; `store` only enqueues.
// `SqliteAccessLogStorage` is the embedded default: a bounded queue, one writer thread that
// inserts in batched transactions, and read queries on a connection of their own.
//
// Example:
//   auto storage = std::make_shared<ccproxy::observability::SqliteAccessLogStorage>("access.db");
//   options.storage = storage;  // RequestContextOptions: each finished request stores its row
//   storage->close();           // drains the queue
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

class Clock;

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

// A database that cannot be opened or used: the message names the path and SQLite's reason.
// Immutable once thrown, like any std::runtime_error.
class StorageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Settings of SqliteAccessLogStorage; the constructor checks them. Plain value type.
struct SqliteStorageOptions {
  // Rows waiting for the writer; a row stored while this many wait is dropped and counted.
  std::size_t queue_capacity = 100000;
  // Rows per transaction at most.
  std::size_t batch_size = 1000;
  // The writer commits when batch_size rows wait, on flush() and close(), and otherwise every
  // commit_interval. store() wakes it only for a full batch, so under load a request thread
  // seldom pays for waking it, and rows go to the file in batches rather than one by one.
  // Rows reach the file at most this much later (flush() forces them out).
  std::chrono::milliseconds commit_interval{20};
  // How long SQLite itself waits for a lock held by another connection before one attempt
  // fails with "database is busy".
  std::chrono::milliseconds busy_timeout{200};
  // Pause after a failed attempt; doubled after each further failure of the same batch, up to
  // retry_backoff_max.
  std::chrono::milliseconds retry_backoff{10};
  std::chrono::milliseconds retry_backoff_max{1000};
  // Attempts per batch before its rows are given up (counted as dropped, reason
  // "write_failed").
  std::size_t max_write_attempts = 10;
  // At most one warning per interval about dropped rows and one about failed batches.
  std::chrono::milliseconds warning_interval{10000};
  // Times the warnings; null means Clock::steady(). Must outlive the storage.
  const Clock* clock = nullptr;
  // When set, the storage registers its counters here:
  //   N_access_log_rows_written_total, N_access_log_rows_dropped_total{reason},
  //   N_access_log_duplicate_rows_total, N_access_log_batch_failures_total
  // (N = metric_namespace; reason is queue_full, closed, write_failed or rejected).
  std::shared_ptr<prometheus::Registry> registry;
  std::string metric_namespace = "ccproxy";
};

// Counts since construction; the same numbers as the Prometheus counters. Plain value type.
struct StorageStats {
  std::uint64_t rows_accepted = 0;  // store() returned true
  std::uint64_t rows_written = 0;   // committed to the file
  std::uint64_t rows_dropped_queue_full = 0;
  std::uint64_t rows_dropped_closed = 0;
  std::uint64_t rows_dropped_write_failed = 0;  // given up after max_write_attempts
  std::uint64_t rows_dropped_rejected = 0;      // refused by SQLite on their own
  std::uint64_t duplicate_rows = 0;             // request_id already present; first row kept
  std::uint64_t batch_failures = 0;             // failed attempts, each rolled back
  std::size_t queue_depth = 0;                  // rows waiting at the time of the call
};

// Selects rows for get_analytics(); an unset or empty member selects everything. Plain value
// type.
struct AccessLogFilter {
  std::optional<std::chrono::system_clock::time_point> start_time;  // inclusive
  std::optional<std::chrono::system_clock::time_point> end_time;    // exclusive
  std::string model;
  std::string service_type;
};

// What get_analytics() returns. Plain value type.
struct AccessLogSummary {
  std::int64_t total_requests = 0;
  double avg_duration_ms = 0.0;  // 0 when there are no rows
  double total_cost_usd = 0.0;
  std::int64_t total_tokens_input = 0;
  std::int64_t total_tokens_output = 0;
  std::int64_t total_cache_read_tokens = 0;
  std::int64_t total_cache_write_tokens = 0;
};

// What health_check() returns. Plain value type.
struct StorageHealth {
  enum class Status { kHealthy, kUnhealthy };
  Status status = Status::kUnhealthy;
  std::int64_t row_count = 0;  // rows in the file (not those still queued)
  std::string path;
  bool closed = false;
  std::size_t queue_depth = 0;
  std::string error;  // why it is unhealthy
};

// The SQLite implementation: table `access_logs` (request_id the primary key, an index on
// timestamp) in WAL mode, created when missing, appended to when present. Thread-safe: every
// method may be called from any thread; store() only takes a short lock on the queue.
class SqliteAccessLogStorage final : public AccessLogStorage {
 public:
  // Opens (or creates) the database and starts the writer. Throws std::invalid_argument
  // naming the option when one is out of range, and StorageError naming the path when the
  // file cannot be created or written, is not a database, or holds an incompatible table.
  explicit SqliteAccessLogStorage(std::string path, SqliteStorageOptions options = {});
  ~SqliteAccessLogStorage() override;  // close()s
  SqliteAccessLogStorage(const SqliteAccessLogStorage&) = delete;
  SqliteAccessLogStorage& operator=(const SqliteAccessLogStorage&) = delete;

  bool store(AccessLogRow row) noexcept override;
  // Waits for the writer to commit (or give up) everything queued, then closes the write
  // connection. Queries keep working on the file afterwards. When a batch is given up during
  // close (the file stayed unwritable for max_write_attempts), the rows still queued are given
  // up with it, so a shutdown waits for one batch's retries, not for every batch's.
  void close() noexcept override;
  // Waits until every row accepted before the call is committed or given up. Not for the
  // request path.
  void flush() noexcept;

  // The newest rows first (by timestamp, then by insertion). Only committed rows are seen.
  // Throws StorageError when the database cannot be read.
  std::vector<AccessLogRow> get_recent_requests(std::size_t limit = 100) const;
  // Count, mean duration, total cost and tokens of the rows the filter selects. Throws
  // StorageError when the database cannot be read.
  AccessLogSummary get_analytics(const AccessLogFilter& filter = {}) const;
  // Never throws. kUnhealthy, with the reason, when the file cannot be read or the writer's
  // most recent attempt failed (until an attempt succeeds again).
  StorageHealth health_check() const noexcept;

  StorageStats stats() const noexcept;
  const std::string& path() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ccproxy::observability
