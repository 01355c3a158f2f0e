// A request scope against the bare spdlog + fmt line with the same fields, in one binary so
// the ratio is read from one run. Both write to a sink that drops the line.
//   Scope_Full:          open a RequestContext (4 initial fields), add 5 metadata fields,
//                        close it: access_log line rendered as JSON, metrics recorded.
//   Scope_LogDisabled:   the same scope with the log level above error: no line rendered.
//   SpdlogFmt_Line:      spdlog formatting the access-log fields into one line with fmt.
//
//   build/dev/bench/context_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <memory>
#include <string>

#include "ccproxy/observability/context.hpp"
#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/metrics.hpp"

namespace obs = ccproxy::observability;

namespace {

obs::PrometheusMetrics& metrics() {
  static obs::PrometheusMetrics m("bench");
  return m;
}

void configure(obs::LogLevel level) {
  obs::LoggingOptions options;
  options.level = level;
  options.line_sink = [](std::string_view line) { benchmark::DoNotOptimize(line.data()); };
  obs::configure_logging(options);
}

void run_scopes(benchmark::State& state, obs::PrometheusMetrics* m) {
  obs::RequestContextOptions options;
  options.metrics = m;
  for (auto _ : state) {
    obs::RequestContext ctx(options, {{"method", "POST"},
                                      {"path", "/v1/messages"},
                                      {"client_ip", "10.1.2.3"},
                                      {"user_agent", "bench/1.0"}});
    ctx.add_metadata({{"model", "claude-3-5-sonnet"},
                      {"status_code", 200},
                      {"tokens_input", 150},
                      {"tokens_output", 42},
                      {"cost_usd", 0.0125}});
  }
}

void BM_Scope_Full(benchmark::State& state) {
  configure(obs::LogLevel::kInfo);
  run_scopes(state, &metrics());
}

void BM_Scope_Full_NoMetrics(benchmark::State& state) {
  configure(obs::LogLevel::kInfo);
  run_scopes(state, nullptr);
}

void BM_Scope_LogDisabled(benchmark::State& state) {
  configure(obs::LogLevel::kError);
  run_scopes(state, &metrics());
}

void BM_Scope_LogDisabled_NoMetrics(benchmark::State& state) {
  configure(obs::LogLevel::kError);
  run_scopes(state, nullptr);
}

// What the caller pays before any scope: building the same two field lists.
void BM_CallerFieldsOnly(benchmark::State& state) {
  for (auto _ : state) {
    obs::Fields initial{{"method", "POST"},
                        {"path", "/v1/messages"},
                        {"client_ip", "10.1.2.3"},
                        {"user_agent", "bench/1.0"}};
    obs::Fields added{{"model", "claude-3-5-sonnet"},
                      {"status_code", 200},
                      {"tokens_input", 150},
                      {"tokens_output", 42},
                      {"cost_usd", 0.0125}};
    benchmark::DoNotOptimize(initial);
    benchmark::DoNotOptimize(added);
  }
}

void BM_SpdlogFmt_Line(benchmark::State& state) {
  auto logger =
      std::make_shared<spdlog::logger>("bench", std::make_shared<spdlog::sinks::null_sink_mt>());
  logger->set_level(spdlog::level::info);
  const std::string request_id = "5f0c6a58-2f7b-4d3e-9d1a-0c2b8e7f4a11";
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    logger->info(
        "{{\"event\":\"access_log\",\"request_id\":\"{}\",\"method\":\"{}\",\"path\":\"{}\","
        "\"client_ip\":\"{}\",\"user_agent\":\"{}\",\"model\":\"{}\",\"status_code\":{},"
        "\"tokens_input\":{},\"tokens_output\":{},\"cost_usd\":{},\"duration_ms\":{},"
        "\"duration_seconds\":{}}}",
        request_id, "POST", "/v1/messages", "10.1.2.3", "bench/1.0", "claude-3-5-sonnet", 200, 150,
        42, 0.0125, ms, ms / 1000.0);
  }
}

}  // namespace

BENCHMARK(BM_CallerFieldsOnly);
BENCHMARK(BM_SpdlogFmt_Line);
BENCHMARK(BM_Scope_Full);
BENCHMARK(BM_Scope_Full_NoMetrics);
BENCHMARK(BM_Scope_LogDisabled);
BENCHMARK(BM_Scope_LogDisabled_NoMetrics);

BENCHMARK_MAIN();
