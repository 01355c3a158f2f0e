#include "ccproxy/observability/metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <random>
#include <stdexcept>

#include "ccproxy/observability/logging.hpp"
#include "json_writer.hpp"
#include "metrics_impl.hpp"
#include "names.hpp"

namespace ccproxy::observability {
namespace detail {

std::uint64_t value_seed() noexcept {
  static const std::uint64_t seed = [] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }();
  return seed;
}

void CountCell::flush() {
  std::uint64_t total = 0;
  for (auto& s : stripes) total += s.value.exchange(0, std::memory_order_relaxed);
  if (total != 0) target->Increment(static_cast<double>(total));
}

void SumCell::flush() {
  double total = 0.0;
  for (auto& s : stripes) total += s.value.exchange(0.0, std::memory_order_relaxed);
  if (total != 0.0) target->Increment(total);
}

void HistogramCell::flush() {
  std::vector<double> increments(bound_count + 1, 0.0);
  double sum = 0.0;
  bool any = false;
  for (auto& s : stripes) {
    for (std::size_t i = 0; i < increments.size(); ++i) {
      std::uint64_t n = s.buckets[i].exchange(0, std::memory_order_relaxed);
      increments[i] += static_cast<double>(n);
      any |= n != 0;
    }
    sum += s.sum.exchange(0.0, std::memory_order_relaxed);
  }
  if (any) target->ObserveMultiple(increments, sum);
}

}  // namespace detail

namespace {

constexpr std::string_view kUnknown = "unknown";
constexpr std::string_view kOverflow = "overflow";
constexpr std::string_view kTokenTypes[] = {"input", "output", "cache_read", "cache_write"};
const char* const kLibraryVersion = "0.1.0";

const std::vector<double> kResponseBuckets{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25};
const std::vector<double> kPoolBuckets{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};

const Logger& metrics_logger() {
  static const Logger logger("ccproxy.observability.metrics");
  return logger;
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

bool finite_non_negative(double v) { return std::isfinite(v) && v >= 0.0; }

// The registry the facade creates: every collection first folds the facade's cells in, so
// whoever collects it (an exposer, a push, a user) reads exact values.
// Limitation: a registry passed in from outside has its own Collect(), which cannot be made
// to fold the cells in; it is exact after serialize(), flush(), a push or a MetricsExposer
// scrape only.
class FlushingRegistry final : public prometheus::Registry {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    if (auto impl = owner.lock()) impl->flush();
    return prometheus::Registry::Collect();
  }
  std::weak_ptr<PrometheusMetrics::Impl> owner;
};

}  // namespace

// ---------------------------------------------------------------------------------------
// LabelledMetric

template <std::size_t N, typename Cell>
LabelledMetric<N, Cell>::LabelledMetric(std::string name, std::array<std::string, N> label_names,
                                        const MetricsOptions& options, OverflowTracker& overflow,
                                        std::function<void(Cell&, const prometheus::Labels&)> add)
    : name_(std::move(name)),
      label_names_(std::move(label_names)),
      max_value_length_(options.max_label_value_length),
      table_(options.max_label_sets, random_seed()),
      overflow_(overflow),
      add_(std::move(add)) {}

template <std::size_t N, typename Cell>
Cell* LabelledMetric<N, Cell>::slow_path(std::uint64_t h, const Values& values) noexcept {
  try {
    Cell* cell = table_.insert(h, values, [&](Cell& c, const Values& v) { add_(c, labels(v)); });
    if (cell != nullptr) return cell;
    // The table is full: record under the overflow series.
    // Limitation: an overflowing label set is not remembered (that would grow memory without
    // bound), so each of its records takes this mutex.
    overflow_.record(name_);
    std::lock_guard<std::mutex> lock(overflow_mutex_);
    if (!overflow_cell_) {
      auto cell_ptr = std::make_unique<Cell>();
      Values all;
      all.fill(kOverflow);
      add_(*cell_ptr, labels(all));
      overflow_cell_ = std::move(cell_ptr);
    }
    return overflow_cell_.get();
  } catch (const std::exception& e) {
    metrics_logger().error("metric_series_not_created", {{"metric", name_}, {"error", e.what()}});
    return nullptr;
  }
}

template <std::size_t N, typename Cell>
prometheus::Labels LabelledMetric<N, Cell>::labels(const Values& values) const {
  prometheus::Labels out;
  for (std::size_t i = 0; i < N; ++i) out[label_names_[i]] = detail::sanitize_utf8(values[i]);
  return out;
}

template <std::size_t N, typename Cell>
void LabelledMetric<N, Cell>::flush() {
  table_.for_each([](Cell& c) { c.flush(); });
  std::lock_guard<std::mutex> lock(overflow_mutex_);
  if (overflow_cell_) overflow_cell_->flush();
}

template class LabelledMetric<5, detail::CountCell>;
template class LabelledMetric<4, detail::CountCell>;
template class LabelledMetric<3, detail::CountCell>;
template class LabelledMetric<3, detail::SumCell>;
template class LabelledMetric<3, detail::HistogramCell>;

void OverflowTracker::record(const std::string& metric) {
  prometheus::Counter* counter;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = counters_.find(metric);
    if (it == counters_.end()) {
      it = counters_.emplace(metric, &family_->Add({{"metric", metric}})).first;
    }
    counter = it->second;
  }
  counter->Increment();
  // One warning per metric and minute, however many label sets overflow.
  std::uint64_t suppressed = 0;
  if (warnings_.allow(metric, &suppressed)) {
    metrics_logger().warning(
        "metric_cardinality_overflow",
        {{"metric", metric}, {"recorded_as", "overflow"}, {"suppressed_warnings", suppressed}});
  }
}

// ---------------------------------------------------------------------------------------
// PrometheusMetrics::Impl

namespace {

prometheus::Family<prometheus::Counter>& counter_family(prometheus::Registry& r,
                                                        const std::string& name,
                                                        const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Gauge>& gauge_family(prometheus::Registry& r,
                                                    const std::string& name,
                                                    const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Histogram>& histogram_family(prometheus::Registry& r,
                                                            const std::string& name,
                                                            const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

template <typename Cell>
auto counter_adder(prometheus::Family<prometheus::Counter>& family) {
  return [&family](Cell& cell, const prometheus::Labels& labels) {
    cell.target = &family.Add(labels);
  };
}

auto histogram_adder(prometheus::Family<prometheus::Histogram>& family,
                     const std::vector<double>& bounds) {
  return [&family, &bounds](detail::HistogramCell& cell, const prometheus::Labels& labels) {
    cell.target = &family.Add(labels, bounds);
    cell.set_bounds(bounds);
  };
}

const MetricsOptions& validated(std::string_view ns, const MetricsOptions& options) {
  if (!detail::is_valid_metric_name(ns)) {
    throw std::invalid_argument("metric namespace '" + std::string(ns) +
                                "' is not a valid metric-name prefix ([a-zA-Z_:][a-zA-Z0-9_:]*)");
  }
  if (options.max_label_sets == 0) {
    throw std::invalid_argument("MetricsOptions.max_label_sets must be positive");
  }
  if (options.max_label_value_length == 0) {
    throw std::invalid_argument("MetricsOptions.max_label_value_length must be positive");
  }
  return options;
}

}  // namespace

PrometheusMetrics::Impl::Impl(std::string_view ns_in, std::shared_ptr<prometheus::Registry> reg,
                              std::shared_ptr<PushgatewayClient> client, const MetricsOptions& opts)
    : ns(ns_in),
      options(validated(ns_in, opts)),
      registry(reg ? std::move(reg) : std::make_shared<FlushingRegistry>()),
      pushgateway(std::move(client)),
      overflow(counter_family(*registry, ns + "_metric_overflow_total",
                              "Records whose label set was past the metric's cardinality "
                              "limit and went to the overflow series, by metric.")),
      requests(ns + "_requests_total", {"method", "endpoint", "model", "status", "service_type"},
               options, overflow,
               counter_adder<detail::CountCell>(counter_family(
                   *registry, ns + "_requests_total",
                   "Requests handled, by method, endpoint, model, status and service type."))),
      response_time(ns + "_response_duration_seconds", {"model", "endpoint", "service_type"},
                    options, overflow,
                    histogram_adder(histogram_family(*registry, ns + "_response_duration_seconds",
                                                     "Time from request start to response "
                                                     "end, in seconds."),
                                    kResponseBuckets)),
      tokens(ns + "_tokens_total", {"type", "model", "service_type"}, options, overflow,
             counter_adder<detail::CountCell>(
                 counter_family(*registry, ns + "_tokens_total",
                                "Tokens processed, by type (input, output, cache_read, "
                                "cache_write), model and service type."))),
      cost(ns + "_cost_usd_total", {"model", "cost_type", "service_type"}, options, overflow,
           counter_adder<detail::SumCell>(counter_family(
               *registry, ns + "_cost_usd_total",
               "Cost of requests in US dollars, by model, cost type and service type."))),
      errors(ns + "_errors_total", {"error_type", "endpoint", "model", "service_type"}, options,
             overflow,
             counter_adder<detail::CountCell>(counter_family(
                 *registry, ns + "_errors_total",
                 "Failed requests, by error type, endpoint, model and service type."))) {
  active_requests =
      &gauge_family(*registry, ns + "_active_requests", "Requests being handled right now.")
           .Add({});
  info_family = &gauge_family(*registry, ns + "_info",
                              "Information about this service; the value is always 1.");
  info_labels = {{"version", options.version.empty() ? kLibraryVersion : options.version},
                 {"metrics_enabled", "true"}};
  info_gauge = &info_family->Add(info_labels);
  info_gauge->Set(1);
  gauge_family(*registry, "up", "Whether the service is up; always 1 while it runs.")
      .Add({{"job", options.job.empty() ? ns : options.job}})
      .Set(1);

  auto pool_gauge = [&](const char* suffix, const char* help) {
    return &gauge_family(*registry, ns + suffix, help).Add({});
  };
  pool_clients = pool_gauge("_pool_clients", "Clients in the connection pool.");
  pool_clients_available =
      pool_gauge("_pool_clients_available", "Pool clients idle and ready to be acquired.");
  pool_clients_active = pool_gauge("_pool_clients_active", "Pool clients acquired right now.");
  auto pool_counter = [&](detail::CountCell& cell, const char* suffix, const char* help) {
    cell.target = &counter_family(*registry, ns + suffix, help).Add({});
  };
  pool_counter(pool_created, "_pool_connections_created_total", "Connections the pool has opened.");
  pool_counter(pool_closed, "_pool_connections_closed_total", "Connections the pool has closed.");
  pool_counter(pool_acquisitions, "_pool_acquisitions_total", "Clients acquired from the pool.");
  pool_counter(pool_releases, "_pool_releases_total", "Clients released back to the pool.");
  pool_counter(pool_health_failures, "_pool_health_check_failures_total",
               "Pool health checks that failed.");
  pool_acquisition.target =
      &histogram_family(*registry, ns + "_pool_acquisition_duration_seconds",
                        "Time spent waiting to acquire a client from the pool, in seconds.")
           .Add({}, kPoolBuckets);
  pool_acquisition.set_bounds(kPoolBuckets);
}

void PrometheusMetrics::Impl::flush() noexcept {
  try {
    std::lock_guard<std::mutex> lock(flush_mutex);
    active_requests->Set(static_cast<double>(active.load(std::memory_order_relaxed)));
    requests.flush();
    response_time.flush();
    tokens.flush();
    cost.flush();
    errors.flush();
    for (detail::CountCell* c :
         {&pool_created, &pool_closed, &pool_acquisitions, &pool_releases, &pool_health_failures}) {
      c->flush();
    }
    pool_acquisition.flush();
  } catch (const std::exception& e) {
    metrics_logger().error("metrics_flush_failed", {{"error", e.what()}});
  }
}

// ---------------------------------------------------------------------------------------
// PrometheusMetrics

PrometheusMetrics::PrometheusMetrics(std::string_view ns,
                                     std::shared_ptr<prometheus::Registry> registry,
                                     std::shared_ptr<PushgatewayClient> pushgateway,
                                     MetricsOptions options)
    : impl_(std::make_shared<Impl>(ns, std::move(registry), std::move(pushgateway), options)) {
  if (auto* own = dynamic_cast<FlushingRegistry*>(impl_->registry.get())) own->owner = impl_;
  attach_pushgateway();
}

PrometheusMetrics::~PrometheusMetrics() {
  // The registry may outlive the facade: leave nothing in the cells.
  impl_->flush();
}

void PrometheusMetrics::record_request(std::string_view method, std::string_view endpoint,
                                       std::string_view model, std::string_view status,
                                       std::string_view service_type) noexcept {
  if (auto* c = impl_->requests.cell({method, endpoint, model, status, service_type})) c->add(1);
}

void PrometheusMetrics::record_request(std::string_view method, std::string_view endpoint,
                                       std::string_view model, int status,
                                       std::string_view service_type) noexcept {
  char buf[16];
  auto r = std::to_chars(buf, buf + sizeof buf, status);
  record_request(method, endpoint, model, std::string_view(buf, r.ptr - buf), service_type);
}

void PrometheusMetrics::record_response_time(double seconds, std::string_view model,
                                             std::string_view endpoint,
                                             std::string_view service_type) noexcept {
  if (!finite_non_negative(seconds)) return;
  if (auto* c = impl_->response_time.cell({model, endpoint, service_type})) c->observe(seconds);
}

void PrometheusMetrics::record_tokens(std::int64_t count, std::string_view token_type,
                                      std::string_view model,
                                      std::string_view service_type) noexcept {
  if (count <= 0) return;
  if (auto* c = impl_->tokens.cell({token_type, model, service_type})) {
    c->add(static_cast<std::uint64_t>(count));
  }
}

void PrometheusMetrics::record_cost(double usd, std::string_view model, std::string_view cost_type,
                                    std::string_view service_type) noexcept {
  if (!(std::isfinite(usd) && usd > 0.0)) return;
  if (auto* c = impl_->cost.cell({model, cost_type, service_type})) c->add(usd);
}

void PrometheusMetrics::record_error(std::string_view error_type, std::string_view endpoint,
                                     std::string_view model,
                                     std::string_view service_type) noexcept {
  if (auto* c = impl_->errors.cell({error_type, endpoint, model, service_type})) c->add(1);
}

void PrometheusMetrics::record_completed_request(const CompletedRequest& r) noexcept {
  Impl& im = *impl_;
  auto& req = im.requests;
  const std::uint64_t seed = detail::value_seed();
  const std::string_view method = req.normalize(r.method);
  const std::string_view endpoint = req.normalize(r.endpoint);
  const std::string_view model = req.normalize(r.model);
  const std::string_view status = req.normalize(r.status);
  const std::string_view service = req.normalize(r.service_type);
  const std::uint64_t h_endpoint = detail::hash_one(endpoint, seed);
  const std::uint64_t h_model = detail::hash_one(model, seed);
  const std::uint64_t h_service = detail::hash_one(service, seed);

  if (auto* c = req.cell({method, endpoint, model, status, service},
                         {detail::hash_one(method, seed), h_endpoint, h_model,
                          detail::hash_one(status, seed), h_service})) {
    c->add(1);
  }
  if (finite_non_negative(r.duration_seconds)) {
    if (auto* c =
            im.response_time.cell({model, endpoint, service}, {h_model, h_endpoint, h_service})) {
      c->observe(r.duration_seconds);
    }
  }
  const std::pair<std::int64_t, std::size_t> tokens[] = {{r.tokens_input, 0},
                                                         {r.tokens_output, 1},
                                                         {r.cache_read_tokens, 2},
                                                         {r.cache_write_tokens, 3}};
  for (const auto& [count, type] : tokens) {
    if (count <= 0) continue;
    if (auto* c = im.tokens.cell({kTokenTypes[type], model, service},
                                 {detail::hash_one(kTokenTypes[type], seed), h_model, h_service})) {
      c->add(static_cast<std::uint64_t>(count));
    }
  }
  if (std::isfinite(r.cost_usd) && r.cost_usd > 0.0) {
    if (auto* c = im.cost.cell({model, "total", service},
                               {h_model, detail::hash_one("total", seed), h_service})) {
      c->add(r.cost_usd);
    }
  }
}

void PrometheusMetrics::set_active_requests(std::int64_t count) noexcept {
  impl_->active.store(count, std::memory_order_relaxed);
}
void PrometheusMetrics::inc_active_requests() noexcept {
  impl_->active.fetch_add(1, std::memory_order_relaxed);
}
void PrometheusMetrics::dec_active_requests() noexcept {
  impl_->active.fetch_sub(1, std::memory_order_relaxed);
}

void PrometheusMetrics::update_system_info(const std::map<std::string, std::string>& info) {
  for (const auto& [key, value] : info) {
    if (!detail::is_valid_label_name(key)) {
      throw std::invalid_argument("system info key '" + key + "' is not a valid label name");
    }
  }
  std::lock_guard<std::mutex> lock(impl_->info_mutex);
  prometheus::Labels merged = impl_->info_labels;
  for (const auto& [key, value] : info) merged[key] = detail::sanitize_utf8(value);
  if (merged == impl_->info_labels) return;
  impl_->info_family->Remove(impl_->info_gauge);
  impl_->info_labels = std::move(merged);
  impl_->info_gauge = &impl_->info_family->Add(impl_->info_labels);
  impl_->info_gauge->Set(1);
}

void PrometheusMetrics::set_pool_clients(std::int64_t n) noexcept {
  impl_->pool_clients->Set(static_cast<double>(n));
}
void PrometheusMetrics::set_pool_clients_available(std::int64_t n) noexcept {
  impl_->pool_clients_available->Set(static_cast<double>(n));
}
void PrometheusMetrics::set_pool_clients_active(std::int64_t n) noexcept {
  impl_->pool_clients_active->Set(static_cast<double>(n));
}

namespace {
void add_positive(detail::CountCell& cell, std::int64_t n) noexcept {
  if (n > 0) cell.add(static_cast<std::uint64_t>(n));
}
}  // namespace

void PrometheusMetrics::inc_pool_connections_created(std::int64_t n) noexcept {
  add_positive(impl_->pool_created, n);
}
void PrometheusMetrics::inc_pool_connections_closed(std::int64_t n) noexcept {
  add_positive(impl_->pool_closed, n);
}
void PrometheusMetrics::inc_pool_acquisitions(std::int64_t n) noexcept {
  add_positive(impl_->pool_acquisitions, n);
}
void PrometheusMetrics::inc_pool_releases(std::int64_t n) noexcept {
  add_positive(impl_->pool_releases, n);
}
void PrometheusMetrics::inc_pool_health_check_failures(std::int64_t n) noexcept {
  add_positive(impl_->pool_health_failures, n);
}
void PrometheusMetrics::record_pool_acquisition_duration(double seconds) noexcept {
  if (finite_non_negative(seconds)) impl_->pool_acquisition.observe(seconds);
}

const std::string& PrometheusMetrics::metric_namespace() const noexcept { return impl_->ns; }
const MetricsOptions& PrometheusMetrics::options() const noexcept { return impl_->options; }

void PrometheusMetrics::flush() noexcept { impl_->flush(); }

std::string PrometheusMetrics::serialize() const {
  impl_->flush();
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

std::shared_ptr<prometheus::Registry> PrometheusMetrics::registry() const noexcept {
  return impl_->registry;
}

std::shared_ptr<PushgatewayClient> PrometheusMetrics::pushgateway_client() const noexcept {
  return impl_->pushgateway;
}

}  // namespace ccproxy::observability
