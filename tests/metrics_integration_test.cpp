// The facade's output read by Prometheus' own code: promtool's linter, and a real Prometheus
// server scraping a MetricsExposer, whose API gives back the label values it parsed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>

#include "ccproxy/observability/exposer.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "support/process.hpp"

namespace obs = ccproxy::observability;

namespace {

const std::vector<std::string> kHostileEndpoints{
    "/v1/\"quoted\"", "/v1/back\\slash",      "/v1/new\nline", "/v1/caf\xC3\xA9/\xE2\x9C\x93",
    "/v1/tab\there",  "/v1/{braces},=commas",
};

void record_everything(obs::PrometheusMetrics& m) {
  for (const auto& e : kHostileEndpoints) m.record_request("POST", e, "claude-3-5-sonnet", 200);
  m.record_request("GET", "/v1/models");
  m.record_response_time(0.042, "claude-3-5-sonnet", "/v1/messages", "proxy_service");
  m.record_tokens(150, "input", "claude-3-5-sonnet", "proxy_service");
  m.record_cost(0.0125, "claude-3-5-sonnet", "total", "proxy_service");
  m.record_error("upstream_timeout", "/v1/messages", "claude-3-5-sonnet", "proxy_service");
  m.inc_active_requests();
  m.update_system_info({{"host", "edge \"1\""}});
  m.set_pool_clients(4);
  m.inc_pool_acquisitions();
  m.record_pool_acquisition_duration(0.002);
}

}  // namespace

TEST(MetricsIntegrationTest, PromtoolFindsNoProblemInTheExposition) {
  obs::MetricsOptions options;
  options.max_label_sets = 3;  // also exercise the overflow series and its counter
  obs::PrometheusMetrics m("ccproxy", nullptr, nullptr, options);
  record_everything(m);
  std::string text = m.serialize();
  ASSERT_THAT(text, ::testing::HasSubstr("ccproxy_metric_overflow_total{metric="));
  std::string output;
  int rc = ccobs_test::run_command("promtool check metrics", text, &output);
  EXPECT_EQ(rc, 0) << output << "\n--- exposition:\n" << text;
  EXPECT_EQ(output, "") << output;
}

TEST(MetricsIntegrationTest, PrometheusScrapesHostileLabelValuesBackUnchanged) {
  obs::PrometheusMetrics m("ccproxy");
  record_everything(m);
  obs::MetricsExposer exposer("127.0.0.1:0", m);
  ASSERT_GT(exposer.port(), 0);

  ccobs_test::TempDir dir;
  const int prom_port = ccobs_test::free_port();
  std::ofstream(dir.path() + "/prometheus.yml")
      << "global:\n  scrape_interval: 1s\n"
      << "scrape_configs:\n  - job_name: facade\n    static_configs:\n"
      << "      - targets: ['127.0.0.1:" << exposer.port() << "']\n";
  ccobs_test::ChildProcess prometheus(
      {"prometheus", "--config.file=" + dir.path() + "/prometheus.yml",
       "--storage.tsdb.path=" + dir.path() + "/data",
       "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
      dir.path() + "/prometheus.log");
  ASSERT_TRUE(ccobs_test::wait_for_port(prom_port, std::chrono::seconds(30)));

  // Wait (bounded) until a scrape has landed, then read the series back.
  std::set<std::string> endpoints;
  const std::string url = "http://127.0.0.1:" + std::to_string(prom_port) +
                          "/api/v1/series?match[]=ccproxy_requests_total";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    std::string body;
    ccobs_test::run_command("curl -sf -g '" + url + "'", "", &body);
    auto json = nlohmann::json::parse(body, nullptr, false);
    if (!json.is_discarded() && json.value("status", "") == "success" &&
        json["data"].size() >= kHostileEndpoints.size()) {
      for (const auto& s : json["data"]) endpoints.insert(s["endpoint"].get<std::string>());
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  for (const auto& e : kHostileEndpoints) EXPECT_EQ(endpoints.count(e), 1u) << e;
}
