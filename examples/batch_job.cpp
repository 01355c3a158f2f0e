// batch_job: a short-lived job instrumented with ccproxy-observability. It does a unit of
// work (scores a batch of prompts the way an offline evaluation would), records requests,
// tokens, cost and durations in PrometheusMetrics, then pushes the registry to a Pushgateway
// (push, pushadd or delete, by flag), because nothing scrapes a job that has already exited.
// The exit code says whether the push reached the Pushgateway: 0 yes, 1 no, 2 bad flags.
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <string>

#include "ccproxy/observability.hpp"
#include "flags.hpp"

namespace examples = ccproxy::observability::examples;
namespace obs = ccproxy::observability;

namespace {

struct Config {
  std::string pushgateway_url;
  std::string job = "ccproxy_batch";
  std::string instance;
  std::string method = "push";
  std::int64_t items = 100;
  std::int64_t seed = 1;
  std::int64_t timeout_ms = 5000;
  std::string model = "claude-3-5-haiku-20241022";
  std::string log_level = "info";
};

struct WorkSummary {
  std::int64_t items = 0;
  std::int64_t tokens_input = 0;
  std::int64_t tokens_output = 0;
  double cost_usd = 0.0;
  double seconds = 0.0;
};

// The unit of work: `items` prompts, each with token counts drawn from the seed and a little
// real CPU work, recorded the way the proxy records a request.
WorkSummary run_batch(const Config& c, obs::PrometheusMetrics& metrics) {
  WorkSummary summary;
  std::uint64_t state = static_cast<std::uint64_t>(c.seed) * 0x9e3779b97f4a7c15ULL + 1;
  auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  auto start = std::chrono::steady_clock::now();
  for (std::int64_t i = 0; i < c.items; ++i) {
    auto item_start = std::chrono::steady_clock::now();
    std::int64_t in = 50 + static_cast<std::int64_t>(next() % 950);
    std::int64_t out = 10 + static_cast<std::int64_t>(next() % 290);
    volatile std::uint64_t checksum = 0;
    for (std::int64_t k = 0; k < (in + out) * 200; ++k) checksum = checksum + (next() >> 60);
    // Haiku prices in USD per million tokens: 0.80 input, 4.00 output.
    double cost = (static_cast<double>(in) * 0.80 + static_cast<double>(out) * 4.00) / 1e6;
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - item_start).count();

    metrics.record_request("POST", "/v1/batch", c.model, 200, "batch_job");
    metrics.record_response_time(seconds, c.model, "/v1/batch", "batch_job");
    metrics.record_tokens(in, "input", c.model, "batch_job");
    metrics.record_tokens(out, "output", c.model, "batch_job");
    metrics.record_cost(cost, c.model, "total", "batch_job");
    summary.items += 1;
    summary.tokens_input += in;
    summary.tokens_output += out;
    summary.cost_usd += cost;
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  examples::FlagSet flags(
      "batch_job",
      "A batch job instrumented with ccproxy-observability: does a unit of work, records its\n"
      "metrics and pushes them to a Pushgateway. Exit code 0 when the push succeeded, 1 when\n"
      "it failed, 2 for bad flags. The OBSERVABILITY__* environment variables are read first;\n"
      "flags override them.");
  flags.add("pushgateway-url", &c.pushgateway_url,
            "Pushgateway base URL (default: OBSERVABILITY__PUSHGATEWAY_URL)");
  flags.add("job", &c.job, "the job label of the pushed group");
  flags.add("instance", &c.instance, "an instance label in the grouping key (empty: none)");
  flags.add("method", &c.method, "push (PUT, replace the group), pushadd (POST) or delete");
  flags.add("items", &c.items, "prompts in the batch");
  flags.add("seed", &c.seed, "seed of the token counts");
  flags.add("timeout-ms", &c.timeout_ms, "timeout of the push");
  flags.add("model", &c.model, "model label of the recorded metrics");
  flags.add("log-level", &c.log_level, "trace, debug, info, warning, error");
  if (auto exit_code = flags.parse(argc, argv)) return *exit_code;

  obs::PushMethod method;
  if (c.method == "push") {
    method = obs::PushMethod::kPush;
  } else if (c.method == "pushadd") {
    method = obs::PushMethod::kPushAdd;
  } else if (c.method == "delete") {
    method = obs::PushMethod::kDelete;
  } else {
    return flags.fail_setting("--method must be push, pushadd or delete, not '" + c.method + "'");
  }
  if (c.items < 0) return flags.fail_setting("--items must not be negative");
  if (c.timeout_ms <= 0) return flags.fail_setting("--timeout-ms must be positive");

  obs::ObservabilitySettings settings;
  std::shared_ptr<obs::PushgatewayClient> client;
  try {
    obs::LoggingOptions logging;
    logging.level = obs::parse_log_level(c.log_level);
    obs::configure_logging(logging);
    settings = obs::ObservabilitySettings::from_env();
    if (!c.pushgateway_url.empty()) settings.pushgateway_url = c.pushgateway_url;
    settings.pushgateway_job = c.job;
    if (!c.instance.empty()) settings.pushgateway_grouping["instance"] = c.instance;
    settings.pushgateway_timeout = std::chrono::milliseconds(c.timeout_ms);
    if (settings.pushgateway_url.empty()) {
      return flags.fail_setting(
          "--pushgateway-url (or OBSERVABILITY__PUSHGATEWAY_URL) is required");
    }
    client = std::make_shared<obs::PushgatewayClient>(settings);
  } catch (const std::invalid_argument& e) {
    return flags.fail_setting(e.what());
  }

  obs::Logger log("ccproxy.batch_job", {{"job", c.job}});
  obs::PrometheusMetrics metrics("ccproxy", nullptr, client, {});
  WorkSummary summary;
  if (method != obs::PushMethod::kDelete) {
    summary = run_batch(c, metrics);
    // The batch-job convention: when did the job last succeed, and how long did it take.
    auto& last = prometheus::BuildGauge()
                     .Name("ccproxy_batch_last_success_timestamp_seconds")
                     .Help("Unix time at which the batch job last finished its work")
                     .Register(*metrics.registry());
    last.Add({}).Set(static_cast<double>(std::time(nullptr)));
    auto& took = prometheus::BuildGauge()
                     .Name("ccproxy_batch_duration_seconds")
                     .Help("Time the batch job's last run spent on its work")
                     .Register(*metrics.registry());
    took.Add({}).Set(summary.seconds);
    log.info("batch_done", {{"items", summary.items},
                            {"tokens_input", summary.tokens_input},
                            {"tokens_output", summary.tokens_output},
                            {"cost_usd", summary.cost_usd},
                            {"duration_seconds", summary.seconds}});
  }

  metrics.flush();
  obs::PushResult result = client->push_metrics(*metrics.registry(), method);
  obs::Fields fields{{"method", c.method},
                     {"url", client->redacted_url()},
                     {"outcome", std::string(obs::to_string(result.outcome))},
                     {"http_status", result.http_status}};
  if (!result.ok()) {
    fields.set("message", result.message);
    log.error("batch_push_failed", fields);
    obs::flush_logging();
    return 1;
  }
  log.info("batch_pushed", fields);
  obs::flush_logging();
  return 0;
}
