// The facade's push methods: without a client, and through a real Pushgateway.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "ccproxy/observability/pushgateway.hpp"
#include "support/servers.hpp"

namespace obs = ccproxy::observability;
using nlohmann::json;

namespace {

// The metrics of the Pushgateway group whose labels are exactly `labels`, or null.
json pushed_group(const ccobs_test::RunningServer& pg,
                  const std::map<std::string, std::string>& labels) {
  auto reply = ccobs_test::http_request("GET", pg.url + "/api/v1/metrics");
  if (reply.status != 200) return nullptr;
  const json all = json::parse(reply.body);
  for (const auto& group : all["data"]) {
    if (group["labels"].get<std::map<std::string, std::string>>() == labels) return group;
  }
  return nullptr;
}

// The value of the series of `name` in a group whose labels include `labels`; -1 if absent.
double pushed_value(const json& group, const std::string& name,
                    const std::map<std::string, std::string>& labels) {
  if (group.is_null() || !group.contains(name)) return -1;
  for (const auto& m : group[name]["metrics"]) {
    bool match = true;
    for (const auto& [k, v] : labels) match = match && m["labels"].value(k, "") == v;
    if (match) return std::stod(m["value"].get<std::string>());
  }
  return -1;
}

}  // namespace

TEST(MetricsPushTest, ReturnsFalseWithoutAClient) {
  obs::PrometheusMetrics m("ccproxy");
  EXPECT_FALSE(m.is_pushgateway_enabled());
  EXPECT_FALSE(m.push_to_gateway());
  EXPECT_FALSE(m.push_add_to_gateway());
  EXPECT_FALSE(m.delete_from_gateway());
  EXPECT_TRUE(m.is_enabled());
}

TEST(MetricsPushTest, ReturnsFalseWhenTheClientIsDisabled) {
  auto client = std::make_shared<obs::PushgatewayClient>(obs::ObservabilitySettings{});
  obs::PrometheusMetrics m("ccproxy", nullptr, client);
  EXPECT_FALSE(m.is_pushgateway_enabled());
  EXPECT_FALSE(m.push_to_gateway());
}

TEST(MetricsPushTest, UnknownMethodLogsAnErrorAndReturnsFalse) {
  std::vector<std::string> lines;
  obs::LoggingOptions log;
  log.line_sink = [&](std::string_view line) { lines.emplace_back(line); };
  obs::configure_logging(log);
  obs::PrometheusMetrics m("ccproxy");
  EXPECT_FALSE(m.push_to_gateway("bogus"));
  obs::configure_logging({});
  ASSERT_EQ(lines.size(), 1u);
  auto line = json::parse(lines[0]);
  EXPECT_EQ(line["level"], "error");
  EXPECT_EQ(line["event"], "pushgateway_unknown_method");
  EXPECT_EQ(line["method"], "bogus");
}

TEST(MetricsPushTest, PushesPushaddsAndDeletesThroughARealPushgateway) {
  auto pg = ccobs_test::start_pushgateway();
  obs::ObservabilitySettings s;
  s.pushgateway_url = pg.url;
  s.pushgateway_job = "nightly/batch";
  s.pushgateway_grouping = {{"instance", "worker/1"}};
  s.pushgateway_timeout = std::chrono::milliseconds(5000);
  auto client = std::make_shared<obs::PushgatewayClient>(s);
  obs::PrometheusMetrics m("batch", nullptr, client);
  EXPECT_TRUE(m.is_pushgateway_enabled());
  const std::map<std::string, std::string> group{{"job", "nightly/batch"},
                                                 {"instance", "worker/1"}};
  const std::map<std::string, std::string> request{{"method", "POST"},
                                                   {"endpoint", "/v1/messages"}};

  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200);
  ASSERT_TRUE(m.push_to_gateway());  // PUT
  EXPECT_EQ(pushed_value(pushed_group(pg, group), "batch_requests_total", request), 1);

  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200);
  ASSERT_TRUE(m.push_to_gateway("pushadd"));  // POST
  EXPECT_EQ(pushed_value(pushed_group(pg, group), "batch_requests_total", request), 2);
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200);
  ASSERT_TRUE(m.push_add_to_gateway());
  EXPECT_EQ(pushed_value(pushed_group(pg, group), "batch_requests_total", request), 3);
  // The client's own counter is part of what was pushed.
  EXPECT_GE(pushed_value(pushed_group(pg, group), "batch_pushgateway_pushes_total",
                         {{"method", "push"}, {"outcome", "ok"}}),
            1);

  ASSERT_TRUE(m.delete_from_gateway());  // DELETE
  EXPECT_TRUE(pushed_group(pg, group).is_null());
}

TEST(MetricsPushTest, GlobalInstanceIsCreatedOnceAndReset) {
  obs::reset_metrics();
  auto a = obs::get_metrics();
  auto b = obs::get_metrics("ignored");
  EXPECT_EQ(a, b);
  EXPECT_EQ(a->metric_namespace(), "ccproxy");
  EXPECT_NE(a->pushgateway_client(), nullptr);  // the process-wide client, from the environment
  EXPECT_EQ(a->pushgateway_client(), obs::get_pushgateway_client());
  obs::reset_metrics();
  auto c = obs::get_metrics("other");
  EXPECT_NE(a, c);
  EXPECT_EQ(c->metric_namespace(), "other");
  obs::reset_metrics();
}
