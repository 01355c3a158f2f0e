// PushgatewayClient: pushes a prometheus-cpp registry to a Prometheus Pushgateway (PUT, POST,
// DELETE on a grouping-key URL), to a Prometheus remote-write receiver (protobuf + snappy) or
// to VictoriaMetrics' text import, over libcurl, guarded by a CircuitBreaker.
//
// Example:
//   ccproxy::observability::ObservabilitySettings s;  s.pushgateway_url = "http://pg:9091";
//   auto client = std::make_shared<ccproxy::observability::PushgatewayClient>(s);
//   if (!client->push_metrics(*registry, PushMethod::kPush).ok()) { /* typed outcome */ }
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ccproxy/observability/circuit_breaker.hpp"
#include "ccproxy/observability/clock.hpp"
#include "ccproxy/observability/settings.hpp"

namespace prometheus {
class Collectable;
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

// kPush: PUT, replaces the whole group. kPushAdd: POST, replaces the metrics of the same
// name. kDelete: DELETE, removes the group.
enum class PushMethod { kPush, kPushAdd, kDelete };

enum class PushOutcome {
  kOk,              // 200 or 202 (remote write: any 2xx)
  kHttpError,       // the peer answered another status; http_status says which
  kTransportError,  // no usable answer: refused, reset, malformed
  kTimeout,         // the connect or total timeout ran out
  kCircuitOpen,     // refused by the circuit breaker; nothing was sent
  kDisabled,        // no URL configured
  kUnsupported,     // the method does not exist for the protocol (delete over remote write)
};

// "push", "pushadd", "delete".
std::string_view to_string(PushMethod method) noexcept;
// "ok", "http_error", "transport_error", "timeout", "circuit_open", "disabled", "unsupported".
std::string_view to_string(PushOutcome outcome) noexcept;

struct [[nodiscard]] PushResult {
  PushOutcome outcome = PushOutcome::kDisabled;
  int http_status = 0;  // the last HTTP status received, 0 when none
  // What happened, for logs: never holds credentials.
  std::string message;
  // HTTP requests made for this push (remote write retries 5xx and 429).
  int attempts = 0;
  bool ok() const noexcept { return outcome == PushOutcome::kOk; }
};

// Counters since construction.
struct PushStats {
  std::uint64_t pushes = 0;     // calls of push_metrics/delete_metrics
  std::uint64_t succeeded = 0;  // calls that ended kOk
  std::uint64_t failed = 0;     // calls that reached the network and failed
  std::uint64_t refused = 0;    // calls the circuit breaker refused
  std::uint64_t http_requests = 0;
};

// Thread-safe: any thread may push; pushes are serialised on the client's one curl handle,
// so a push waits for the one in progress (each bounded by pushgateway_timeout).
class PushgatewayClient {
 public:
  // Throws std::invalid_argument naming the bad setting (see ObservabilitySettings::validate).
  // With an empty URL the client is disabled and every push returns kDisabled. `clock` drives
  // the circuit breaker and must outlive the client.
  explicit PushgatewayClient(ObservabilitySettings settings, const Clock& clock = Clock::steady());
  ~PushgatewayClient();
  PushgatewayClient(const PushgatewayClient&) = delete;
  PushgatewayClient& operator=(const PushgatewayClient&) = delete;

  // Sends `metrics` (kDelete ignores them and deletes the group). Never throws.
  PushResult push_metrics(const prometheus::Collectable& metrics, PushMethod method) noexcept;
  // The same for a registry; callable with `*metrics.registry()` without including
  // prometheus-cpp's headers.
  PushResult push_metrics(const prometheus::Registry& registry, PushMethod method) noexcept;
  PushResult push_add_metrics(const prometheus::Collectable& metrics) noexcept {
    return push_metrics(metrics, PushMethod::kPushAdd);
  }
  // Deletes the group. Over remote write: kUnsupported, a warning, the breaker untouched.
  PushResult delete_metrics() noexcept;

  bool is_enabled() const noexcept;
  CircuitState circuit_state() const noexcept;
  PushStats stats() const noexcept;
  // The settings in use, credentials included: do not log them.
  const ObservabilitySettings& settings() const noexcept;
  // The target URL with user-info removed (for the group: the grouping-key URL).
  std::string redacted_url() const;

  // Registers the client's own metrics in `registry`: ns_pushgateway_circuit_state (gauge,
  // 0 closed, 1 open, 2 half-open) and ns_pushgateway_pushes_total{method,outcome}
  // (counter). A later call registers in the new registry instead. Throws
  // std::invalid_argument when `ns` is not a valid metric-name prefix or the names clash.
  void register_metrics(std::shared_ptr<prometheus::Registry> registry, std::string_view ns);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The process-wide client, built from ObservabilitySettings::from_env() on first use (and
// again after a reset). Thread-safe. Throws what the settings throw.
std::shared_ptr<PushgatewayClient> get_pushgateway_client();
// Drops the process-wide client; holders of the old one keep it. Thread-safe; for tests.
void reset_pushgateway_client();

}  // namespace ccproxy::observability
