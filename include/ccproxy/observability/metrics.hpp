// PrometheusMetrics: the facade a proxy calls on every request. It owns (or shares) a
// prometheus-cpp registry holding the metrics of the table below, records into them without
// allocating or locking for a label set seen before, and pushes them through an optional
// PushgatewayClient.
//
// Example:
//   ccproxy::observability::PrometheusMetrics metrics("ccproxy");
//   metrics.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
//   std::string text = metrics.serialize();  // Prometheus text format 0.0.4
//
// Metrics (N = namespace):
//   N_requests_total{method,endpoint,model,status,service_type}        counter
//   N_response_duration_seconds{model,endpoint,service_type}           histogram
//   N_tokens_total{type,model,service_type}                            counter
//   N_cost_usd_total{model,cost_type,service_type}                     counter
//   N_errors_total{error_type,endpoint,model,service_type}             counter
//   N_active_requests                                                  gauge
//   N_info{version,metrics_enabled,...}                                gauge, always 1
//   up{job}                                                            gauge, always 1
//   N_pool_clients, N_pool_clients_available, N_pool_clients_active    gauges
//   N_pool_{connections_created,connections_closed,acquisitions,releases,
//           health_check_failures}_total                               counters
//   N_pool_acquisition_duration_seconds                                histogram
//   N_metric_overflow_total{metric}                                    counter
//
// Recording is exact but staged: each call adds to per-CPU cells of its series, which are
// folded into the prometheus-cpp metrics whenever the registry is collected. With the
// registry the facade creates that is every collection, whoever makes it. A registry passed
// in from outside is brought up to date by serialize(), flush(), a push and MetricsExposer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

class PushgatewayClient;

// A finished request, as record_completed_request takes it. The views must stay valid for the
// call only.
struct CompletedRequest {
  std::string_view method;
  std::string_view endpoint;
  std::string_view model;
  std::string_view status = "unknown";
  std::string_view service_type;
  double duration_seconds = -1.0;  // negative: no response time recorded
  std::int64_t tokens_input = 0;   // each token count <= 0 records nothing
  std::int64_t tokens_output = 0;
  std::int64_t cache_read_tokens = 0;
  std::int64_t cache_write_tokens = 0;
  double cost_usd = 0.0;  // <= 0, NaN or infinite records nothing
};

struct MetricsOptions {
  // Distinct label sets each labelled metric holds; further sets are recorded under one
  // series whose label values are all "overflow".
  std::size_t max_label_sets = 10000;
  // Longer label values are cut to this many bytes.
  std::size_t max_label_value_length = 256;
  // The `job` label of `up`. Empty: the namespace.
  std::string job;
  // The `version` label of N_info. Empty: this library's version.
  std::string version;
};

// Thread-safe: every method may be called from any thread at any time. The record_* methods,
// the gauge setters and the pool methods are noexcept and never block on I/O; for a label
// set seen before they neither lock nor allocate.
class PrometheusMetrics {
 public:
  // Registers the metrics in `registry`, or in a registry of its own when it is null.
  // Throws std::invalid_argument when `ns` is not a valid metric-name prefix
  // ([a-zA-Z_:][a-zA-Z0-9_:]*) or an option is out of range.
  explicit PrometheusMetrics(std::string_view ns = "ccproxy",
                             std::shared_ptr<prometheus::Registry> registry = nullptr,
                             std::shared_ptr<PushgatewayClient> pushgateway = nullptr,
                             MetricsOptions options = {});
  ~PrometheusMetrics();
  PrometheusMetrics(const PrometheusMetrics&) = delete;
  PrometheusMetrics& operator=(const PrometheusMetrics&) = delete;

  // Label values that are empty are written as "unknown"; invalid UTF-8 is replaced.
  void record_request(std::string_view method, std::string_view endpoint,
                      std::string_view model = {}, std::string_view status = "unknown",
                      std::string_view service_type = {}) noexcept;
  void record_request(std::string_view method, std::string_view endpoint, std::string_view model,
                      int status, std::string_view service_type = {}) noexcept;
  // A negative, NaN or infinite duration records nothing.
  void record_response_time(double seconds, std::string_view model = {},
                            std::string_view endpoint = "unknown",
                            std::string_view service_type = {}) noexcept;
  // token_type is input, output, cache_read or cache_write. A count <= 0 records nothing.
  void record_tokens(std::int64_t count, std::string_view token_type, std::string_view model = {},
                     std::string_view service_type = {}) noexcept;
  // A cost <= 0, NaN or infinite records nothing.
  void record_cost(double usd, std::string_view model = {}, std::string_view cost_type = "total",
                   std::string_view service_type = {}) noexcept;
  void record_error(std::string_view error_type, std::string_view endpoint = "unknown",
                    std::string_view model = {}, std::string_view service_type = {}) noexcept;
  // What record_request, record_response_time, record_tokens for each type and record_cost
  // record, in one call that hashes each label value once (RequestContext ends with it).
  void record_completed_request(const CompletedRequest& request) noexcept;

  void set_active_requests(std::int64_t count) noexcept;
  void inc_active_requests() noexcept;
  void dec_active_requests() noexcept;

  // Merges `info` into the labels of N_info (version and metrics_enabled stay unless given).
  // Throws std::invalid_argument naming a key that is not a valid label name.
  void update_system_info(const std::map<std::string, std::string>& info);

  // Connection-pool metrics.
  void set_pool_clients(std::int64_t n) noexcept;
  void set_pool_clients_available(std::int64_t n) noexcept;
  void set_pool_clients_active(std::int64_t n) noexcept;
  void inc_pool_connections_created(std::int64_t n = 1) noexcept;
  void inc_pool_connections_closed(std::int64_t n = 1) noexcept;
  void inc_pool_acquisitions(std::int64_t n = 1) noexcept;
  void inc_pool_releases(std::int64_t n = 1) noexcept;
  void inc_pool_health_check_failures(std::int64_t n = 1) noexcept;
  void record_pool_acquisition_duration(double seconds) noexcept;

  // Always true: the metrics are compiled in. Kept for code written against the original.
  bool is_enabled() const noexcept { return true; }
  const std::string& metric_namespace() const noexcept;
  const MetricsOptions& options() const noexcept;

  // Folds the per-thread cells into the registry's metrics.
  void flush() noexcept;
  // The registry (after flush()) as Prometheus text exposition format 0.0.4.
  std::string serialize() const;
  std::shared_ptr<prometheus::Registry> registry() const noexcept;

  // Push through the configured client: method "push" (PUT, replace the group), "pushadd"
  // (POST, replace same-named metrics) or "delete" (DELETE). False, never an exception,
  // when no client is configured, the client is disabled, the method is unknown (logged as
  // an error) or the push failed.
  bool push_to_gateway(std::string_view method = "push") noexcept;
  bool push_add_to_gateway() noexcept;
  bool delete_from_gateway() noexcept;
  bool is_pushgateway_enabled() const noexcept;
  std::shared_ptr<PushgatewayClient> pushgateway_client() const noexcept;

  struct Impl;

 private:
  friend class MetricsExposer;
  void attach_pushgateway();

  std::shared_ptr<Impl> impl_;
};

// The process-wide instance, created on first use with these arguments (later calls ignore
// them). With no client given it uses get_pushgateway_client(). Thread-safe.
std::shared_ptr<PrometheusMetrics> get_metrics(
    std::string_view ns = "ccproxy", std::shared_ptr<prometheus::Registry> registry = nullptr,
    std::shared_ptr<PushgatewayClient> pushgateway = nullptr);
// Drops the process-wide instance and the process-wide Pushgateway client; for tests.
void reset_metrics();

}  // namespace ccproxy::observability
