// The facade's recording path against the plain prometheus-cpp idiom, in one binary so the
// ratio is read from one run. Threads(2) runs record into the same series from two threads
// at once: per-call cost there is the CPU time column.
//
//   build/bench/bench/metrics_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <memory>
#include <string>

#include "ccproxy/observability/metrics.hpp"

namespace obs = ccproxy::observability;

namespace {

const std::vector<double> kBuckets{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25};

// Shared by all threads of a run, created by thread 0.
struct PlainFixture {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter().Name("plain_requests_total").Register(*registry);
  prometheus::Family<prometheus::Histogram>& durations =
      prometheus::BuildHistogram().Name("plain_response_duration_seconds").Register(*registry);
};

PlainFixture& plain() {
  static PlainFixture f;
  return f;
}

obs::PrometheusMetrics& facade() {
  static obs::PrometheusMetrics m("bench");
  return m;
}

void BM_PlainPrometheusCpp_RecordRequest(benchmark::State& state) {
  auto& f = plain();
  for (auto _ : state) {
    f.requests
        .Add({{"method", "POST"},
              {"endpoint", "/v1/messages"},
              {"model", "claude-3-5-sonnet"},
              {"status", "200"},
              {"service_type", "proxy_service"}})
        .Increment();
  }
}

void BM_Facade_RecordRequest(benchmark::State& state) {
  auto& m = facade();
  for (auto _ : state) {
    m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
  }
}

void BM_PlainPrometheusCpp_ObserveResponseTime(benchmark::State& state) {
  auto& f = plain();
  for (auto _ : state) {
    f.durations
        .Add({{"model", "claude-3-5-sonnet"},
              {"endpoint", "/v1/messages"},
              {"service_type", "proxy_service"}},
             kBuckets)
        .Observe(0.042);
  }
}

void BM_Facade_RecordResponseTime(benchmark::State& state) {
  auto& m = facade();
  for (auto _ : state) {
    m.record_response_time(0.042, "claude-3-5-sonnet", "/v1/messages", "proxy_service");
  }
}

// Serializing a registry of N series, through the facade (which folds its cells first) and
// through prometheus-cpp directly on a registry of plain counters.
void BM_Facade_Serialize(benchmark::State& state) {
  obs::PrometheusMetrics m("bench", nullptr, nullptr);
  for (int64_t i = 0; i < state.range(0); ++i) {
    m.record_request("POST", "/v1/messages/" + std::to_string(i), "claude-3-5-sonnet", 200);
  }
  std::size_t bytes = 0;
  for (auto _ : state) bytes = m.serialize().size();
  state.counters["bytes"] = static_cast<double>(bytes);
}

void BM_PlainPrometheusCpp_Serialize(benchmark::State& state) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("plain_requests_total").Register(registry);
  for (int64_t i = 0; i < state.range(0); ++i) {
    family
        .Add({{"method", "POST"},
              {"endpoint", "/v1/messages/" + std::to_string(i)},
              {"model", "claude-3-5-sonnet"},
              {"status", "200"},
              {"service_type", "unknown"}})
        .Increment();
  }
  std::size_t bytes = 0;
  for (auto _ : state) {
    bytes = prometheus::TextSerializer().Serialize(registry.Collect()).size();
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}

}  // namespace

BENCHMARK(BM_PlainPrometheusCpp_RecordRequest)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Facade_RecordRequest)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_PlainPrometheusCpp_ObserveResponseTime)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Facade_RecordResponseTime)->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK(BM_Facade_Serialize)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PlainPrometheusCpp_Serialize)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
