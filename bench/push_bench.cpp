// What a push costs: building the body (remote-write protobuf + snappy against the text
// format prometheus-cpp writes) and a whole push to a real Pushgateway on loopback (this
// library's client against prometheus-cpp's own Gateway).
#include <benchmark/benchmark.h>
#include <prometheus/counter.h>
#include <prometheus/gateway.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <memory>
#include <string>

#include "ccproxy/observability/pushgateway.hpp"
#include "push_wire.hpp"
#include "support/servers.hpp"

namespace obs = ccproxy::observability;

namespace {

// `series` counter series plus one histogram with ten buckets.
std::shared_ptr<prometheus::Registry> make_registry(int series) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family =
      prometheus::BuildCounter().Name("bench_requests_total").Help("requests").Register(*registry);
  for (int i = 0; i < series; ++i) {
    family.Add({{"endpoint", "/v1/e" + std::to_string(i)}, {"method", "POST"}}).Increment(i);
  }
  auto& h = prometheus::BuildHistogram()
                .Name("bench_latency_seconds")
                .Help("latency")
                .Register(*registry)
                .Add({}, prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
                                                                 5, 10, 25});
  h.Observe(0.2);
  return registry;
}

void BM_Body_RemoteWriteProtobufSnappy(benchmark::State& state) {
  auto registry = make_registry(static_cast<int>(state.range(0)));
  std::map<std::string, std::string> extra{{"job", "bench"}};
  for (auto _ : state) {
    auto body = obs::wire::snappy_compress(obs::wire::encode_write_request(
        obs::wire::to_time_series(registry->Collect(), extra, 1700000000000)));
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_Body_RemoteWriteProtobufSnappy)->Arg(10)->Arg(1000);

void BM_Body_PrometheusCppTextSerializer(benchmark::State& state) {
  auto registry = make_registry(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto body = prometheus::TextSerializer().Serialize(registry->Collect());
    benchmark::DoNotOptimize(body);
  }
}
BENCHMARK(BM_Body_PrometheusCppTextSerializer)->Arg(10)->Arg(1000);

const ccobs_test::RunningServer& pushgateway() {
  static const ccobs_test::RunningServer server = ccobs_test::start_pushgateway();
  return server;
}

void BM_Push_PushgatewayClient(benchmark::State& state) {
  auto registry = make_registry(static_cast<int>(state.range(0)));
  obs::ObservabilitySettings s;
  s.pushgateway_url = pushgateway().url;
  s.pushgateway_job = "bench_ours";
  obs::PushgatewayClient client(s);
  for (auto _ : state) {
    auto r = client.push_metrics(*registry, obs::PushMethod::kPush);
    if (!r.ok()) state.SkipWithError(r.message.c_str());
  }
}
BENCHMARK(BM_Push_PushgatewayClient)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_Push_PrometheusCppGateway(benchmark::State& state) {
  auto registry = make_registry(static_cast<int>(state.range(0)));
  prometheus::Gateway gateway("127.0.0.1", std::to_string(pushgateway().port), "bench_theirs");
  gateway.RegisterCollectable(registry);
  for (auto _ : state) {
    // Gateway::Push sends POST (which is pushadd on the wire); either replaces these series.
    int status = gateway.Push();
    if (status != 200) state.SkipWithError("Gateway::Push failed");
  }
}
BENCHMARK(BM_Push_PrometheusCppGateway)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
