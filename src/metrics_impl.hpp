// Internal: the state behind PrometheusMetrics.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "ccproxy/observability/metrics.hpp"
#include "json_writer.hpp"
#include "rate_limit.hpp"
#include "series.hpp"

namespace ccproxy::observability {

// Counts records that went to an overflow series, as N_metric_overflow_total{metric}.
class OverflowTracker {
 public:
  explicit OverflowTracker(prometheus::Family<prometheus::Counter>& family) : family_(&family) {}
  void record(const std::string& metric);

 private:
  prometheus::Family<prometheus::Counter>* family_;
  std::mutex mutex_;
  std::map<std::string, prometheus::Counter*> counters_;  // guarded by mutex_
  detail::RateLimiter warnings_{std::chrono::minutes(1)};
};

// One labelled metric of the facade: label values in, the series' cell out.
template <std::size_t N, typename Cell>
class LabelledMetric {
 public:
  using Values = std::array<std::string_view, N>;

  LabelledMetric(std::string name, std::array<std::string, N> label_names,
                 const MetricsOptions& options, OverflowTracker& overflow,
                 std::function<void(Cell&, const prometheus::Labels&)> add);

  using Hashes = typename detail::SeriesTable<N, Cell>::Hashes;

  // The cell for these label values, creating the series on first use; nullptr only when
  // the series could not be created (logged). Lock- and allocation-free for a known set.
  Cell* cell(Values values) noexcept {
    Hashes hashes;
    for (std::size_t i = 0; i < N; ++i) {
      values[i] = normalize(values[i]);
      hashes[i] = detail::hash_one(values[i], detail::value_seed());
    }
    return cell(values, hashes);
  }
  // The same for values already normalized, with their hash_one values.
  Cell* cell(const Values& values, const Hashes& hashes) noexcept {
    const std::uint64_t h = table_.hash(hashes);
    if (Cell* c = table_.find(h, values)) return c;
    return slow_path(h, values);
  }
  // Empty values become "unknown"; overlong ones are cut on a UTF-8 boundary.
  std::string_view normalize(std::string_view v) const noexcept {
    if (v.empty()) return "unknown";
    if (v.size() > max_value_length_) {
      return v.substr(0, detail::utf8_prefix_length(v, max_value_length_));
    }
    return v;
  }

  void flush();
  std::size_t series_count() const { return table_.size(); }

 private:
  Cell* slow_path(std::uint64_t h, const Values& values) noexcept;
  prometheus::Labels labels(const Values& values) const;

  const std::string name_;
  const std::array<std::string, N> label_names_;
  const std::size_t max_value_length_;
  detail::SeriesTable<N, Cell> table_;
  OverflowTracker& overflow_;
  const std::function<void(Cell&, const prometheus::Labels&)> add_;
  std::mutex overflow_mutex_;
  std::unique_ptr<Cell> overflow_cell_;  // guarded by overflow_mutex_
};

struct PrometheusMetrics::Impl {
  Impl(std::string_view ns, std::shared_ptr<prometheus::Registry> registry,
       std::shared_ptr<PushgatewayClient> pushgateway, const MetricsOptions& options);

  // Folds every cell into its prometheus-cpp metric.
  void flush() noexcept;

  const std::string ns;
  const MetricsOptions options;
  const std::shared_ptr<prometheus::Registry> registry;
  const std::shared_ptr<PushgatewayClient> pushgateway;

  OverflowTracker overflow;
  LabelledMetric<5, detail::CountCell> requests;
  LabelledMetric<3, detail::HistogramCell> response_time;
  LabelledMetric<3, detail::CountCell> tokens;
  LabelledMetric<3, detail::SumCell> cost;
  LabelledMetric<4, detail::CountCell> errors;

  // Requests in flight: one integer add per change (a prometheus-cpp Gauge is a
  // compare-exchange loop on a double), written to the gauge on flush.
  std::atomic<std::int64_t> active{0};
  prometheus::Gauge* active_requests = nullptr;

  std::mutex info_mutex;
  prometheus::Family<prometheus::Gauge>* info_family = nullptr;
  prometheus::Labels info_labels;           // guarded by info_mutex
  prometheus::Gauge* info_gauge = nullptr;  // guarded by info_mutex

  prometheus::Gauge* pool_clients = nullptr;
  prometheus::Gauge* pool_clients_available = nullptr;
  prometheus::Gauge* pool_clients_active = nullptr;
  detail::CountCell pool_created;
  detail::CountCell pool_closed;
  detail::CountCell pool_acquisitions;
  detail::CountCell pool_releases;
  detail::CountCell pool_health_failures;
  detail::HistogramCell pool_acquisition;

  std::mutex flush_mutex;
};

}  // namespace ccproxy::observability
