// Pushes to the real Debian servers, started on free loopback ports, and reads the results
// back through each server's own API.
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "ccproxy/observability/periodic_pusher.hpp"
#include "ccproxy/observability/pushgateway.hpp"
#include "push_wire.hpp"
#include "support/servers.hpp"

namespace obs = ccproxy::observability;
using ccobs_test::eventually;
using ccobs_test::http_request;
using ccobs_test::RunningServer;
using nlohmann::json;

namespace {

obs::ObservabilitySettings settings_for(const std::string& url, const std::string& job,
                                        std::map<std::string, std::string> grouping = {}) {
  obs::ObservabilitySettings s;
  s.pushgateway_url = url;
  s.pushgateway_job = job;
  s.pushgateway_grouping = std::move(grouping);
  s.pushgateway_timeout = std::chrono::milliseconds(5000);
  return s;
}

std::shared_ptr<prometheus::Registry> counters(
    const std::vector<std::pair<std::string, double>>& values) {
  auto registry = std::make_shared<prometheus::Registry>();
  for (const auto& [name, v] : values) {
    prometheus::BuildCounter()
        .Name(name)
        .Help("test counter")
        .Register(*registry)
        .Add({})
        .Increment(v);
  }
  return registry;
}

// The Pushgateway group whose labels are exactly `labels`, or null.
json find_group(const RunningServer& pg, const std::map<std::string, std::string>& labels) {
  auto reply = http_request("GET", pg.url + "/api/v1/metrics");
  if (reply.status != 200) return nullptr;
  json all = json::parse(reply.body);
  for (const auto& group : all["data"]) {
    if (group["labels"].get<std::map<std::string, std::string>>() == labels) return group;
  }
  return nullptr;
}

// The value of metric `name` in a Pushgateway group, or -1 when absent.
double group_value(const json& group, const std::string& name) {
  if (group.is_null() || !group.contains(name)) return -1;
  return std::stod(group[name]["metrics"][0]["value"].get<std::string>());
}

std::shared_ptr<prometheus::Registry> remote_write_registry() {
  auto registry = counters({});
  prometheus::BuildCounter()
      .Name("rw_requests_total")
      .Help("requests")
      .Register(*registry)
      .Add({{"path", "/v1/messages"}, {"Zone", "eu"}})
      .Increment(3);
  auto& h = prometheus::BuildHistogram()
                .Name("rw_latency_seconds")
                .Help("latency")
                .Register(*registry)
                .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 0.5});
  h.Observe(0.05);
  h.Observe(0.3);
  h.Observe(2);
  return registry;
}

// VictoriaMetrics /api/v1/export lines for `selector`, after a flush.
std::vector<json> vm_export(const RunningServer& vm, const std::string& selector) {
  (void)http_request("GET", vm.url + "/internal/force_flush");
  auto reply = http_request(
      "GET", vm.url + "/api/v1/export?match%5B%5D=" + obs::wire::percent_encode(selector));
  std::vector<json> out;
  std::istringstream lines(reply.body);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) out.push_back(json::parse(line));
  }
  return out;
}

// Prometheus instant-query results for `query`.
json prom_query(const RunningServer& prom, const std::string& query) {
  auto reply =
      http_request("GET", prom.url + "/api/v1/query?query=" + obs::wire::percent_encode(query));
  if (reply.status != 200) return json::array();
  return json::parse(reply.body)["data"]["result"];
}

}  // namespace

TEST(PushgatewayIntegrationTest, PushReplacesGroupWhenJobAndInstanceHoldSlashes) {
  auto pg = ccobs_test::start_pushgateway();
  obs::PushgatewayClient client(settings_for(pg.url, "nightly/batch", {{"instance", "worker/1"}}));
  std::map<std::string, std::string> group{{"job", "nightly/batch"}, {"instance", "worker/1"}};

  auto first =
      client.push_metrics(*counters({{"a_total", 1}, {"b_total", 2}}), obs::PushMethod::kPush);
  ASSERT_TRUE(first.ok()) << first.message;
  EXPECT_EQ(group_value(find_group(pg, group), "a_total"), 1);
  EXPECT_EQ(group_value(find_group(pg, group), "b_total"), 2);

  auto second = client.push_metrics(*counters({{"a_total", 5}}), obs::PushMethod::kPush);
  ASSERT_TRUE(second.ok()) << second.message;
  EXPECT_EQ(group_value(find_group(pg, group), "a_total"), 5);
  EXPECT_EQ(group_value(find_group(pg, group), "b_total"), -1);
}

TEST(PushgatewayIntegrationTest, PushAddReplacesOnlySameNamedMetrics) {
  auto pg = ccobs_test::start_pushgateway();
  obs::PushgatewayClient client(settings_for(pg.url, "batch", {{"instance", "a b%c"}}));
  std::map<std::string, std::string> group{{"job", "batch"}, {"instance", "a b%c"}};

  ASSERT_TRUE(
      client.push_metrics(*counters({{"a_total", 1}, {"b_total", 2}}), obs::PushMethod::kPush)
          .ok());
  auto r = client.push_add_metrics(*counters({{"a_total", 7}, {"c_total", 1}}));

  ASSERT_TRUE(r.ok()) << r.message;
  auto g = find_group(pg, group);
  EXPECT_EQ(group_value(g, "a_total"), 7);
  EXPECT_EQ(group_value(g, "b_total"), 2);
  EXPECT_EQ(group_value(g, "c_total"), 1);
}

TEST(PushgatewayIntegrationTest, DeleteRemovesOnlyItsGroup) {
  auto pg = ccobs_test::start_pushgateway();
  obs::PushgatewayClient one(settings_for(pg.url, "nightly/batch", {{"instance", "worker/1"}}));
  obs::PushgatewayClient two(settings_for(pg.url, "nightly/batch", {{"instance", "worker/2"}}));
  ASSERT_TRUE(one.push_metrics(*counters({{"a_total", 1}}), obs::PushMethod::kPush).ok());
  ASSERT_TRUE(two.push_metrics(*counters({{"a_total", 2}}), obs::PushMethod::kPush).ok());

  auto r = one.delete_metrics();

  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.http_status, 202);
  EXPECT_TRUE(find_group(pg, {{"job", "nightly/batch"}, {"instance", "worker/1"}}).is_null());
  EXPECT_EQ(
      group_value(find_group(pg, {{"job", "nightly/batch"}, {"instance", "worker/2"}}), "a_total"),
      2);
}

TEST(PushgatewayIntegrationTest, PushesGzippedBodyWhenGzipIsSet) {
  auto pg = ccobs_test::start_pushgateway();
  auto s = settings_for(pg.url, "gz");
  s.pushgateway_gzip = true;
  obs::PushgatewayClient client(s);

  auto r = client.push_metrics(*counters({{"gz_total", 4}}), obs::PushMethod::kPush);

  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(group_value(find_group(pg, {{"job", "gz"}}), "gz_total"), 4);
}

TEST(PushgatewayIntegrationTest, VerifiesTlsPeerAgainstCaFileWhenUrlIsHttps) {
  std::string ca_file;
  auto pg = ccobs_test::start_pushgateway_tls(&ca_file);
  auto registry = counters({{"tls_total", 1}});

  auto s = settings_for(pg.url, "tls");
  auto untrusted = obs::PushgatewayClient(s).push_metrics(*registry, obs::PushMethod::kPush);
  s.pushgateway_ca_file = ca_file;
  auto trusted = obs::PushgatewayClient(s).push_metrics(*registry, obs::PushMethod::kPush);
  auto s_off = settings_for(pg.url, "tls_off");
  s_off.pushgateway_tls_verify = false;
  auto unverified = obs::PushgatewayClient(s_off).push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(untrusted.outcome, obs::PushOutcome::kTransportError) << untrusted.message;
  EXPECT_TRUE(trusted.ok()) << trusted.message;
  EXPECT_TRUE(unverified.ok()) << unverified.message;
}

TEST(PushgatewayIntegrationTest, ReportsHttpErrorWhenPushgatewayRejectsInconsistentType) {
  auto pg = ccobs_test::start_pushgateway();
  obs::PushgatewayClient a(settings_for(pg.url, "batch", {{"instance", "a"}}));
  obs::PushgatewayClient b(settings_for(pg.url, "batch", {{"instance", "b"}}));
  ASSERT_TRUE(a.push_metrics(*counters({{"q_total", 1}}), obs::PushMethod::kPush).ok());
  auto registry = counters({});
  prometheus::BuildGauge().Name("q_total").Help("now a gauge").Register(*registry).Add({});

  auto r = b.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.outcome, obs::PushOutcome::kHttpError);
  EXPECT_EQ(r.http_status, 400);
  EXPECT_NE(r.message.find("inconsistent"), std::string::npos) << r.message;
}

TEST(PushgatewayIntegrationTest, PeriodicPusherLeavesFinalValuesInPushgatewayWhenStopped) {
  auto pg = ccobs_test::start_pushgateway();
  auto client = std::make_shared<obs::PushgatewayClient>(settings_for(pg.url, "periodic"));
  auto registry = counters({});
  auto& c = prometheus::BuildCounter().Name("done_total").Help("d").Register(*registry).Add({});
  obs::ManualClock clock;
  {
    obs::PeriodicPusher pusher(client, registry, {}, clock);
    c.Increment(9);
  }

  EXPECT_EQ(group_value(find_group(pg, {{"job", "periodic"}}), "done_total"), 9);
}

TEST(PushgatewayIntegrationTest, RemoteWriteIsReadBackFromVictoriaMetrics) {
  auto vm = ccobs_test::start_victoria_metrics();
  obs::PushgatewayClient client(
      settings_for(vm.url + "/api/v1/write", "nightly/batch", {{"instance", "worker/1"}}));

  auto r = client.push_metrics(*remote_write_registry(), obs::PushMethod::kPush);

  ASSERT_TRUE(r.ok()) << r.message << " status " << r.http_status;
  std::vector<json> rows;
  ASSERT_TRUE(eventually([&] {
    rows = vm_export(vm, "{__name__=~\"rw_.*\"}");
    return rows.size() >= 6;  // the counter, 3 buckets (+Inf included), _sum, _count
  }));
  std::map<std::string, double> by_key;
  for (const auto& row : rows) {
    const auto& m = row["metric"];
    EXPECT_EQ(m["job"], "nightly/batch");
    EXPECT_EQ(m["instance"], "worker/1");
    std::string key = m["__name__"].get<std::string>();
    if (m.contains("le")) key += "{le=" + m["le"].get<std::string>() + "}";
    by_key[key] = row["values"].back().get<double>();
  }
  EXPECT_EQ(by_key["rw_requests_total"], 3);
  EXPECT_EQ(by_key["rw_latency_seconds_bucket{le=0.1}"], 1);
  EXPECT_EQ(by_key["rw_latency_seconds_bucket{le=0.5}"], 2);
  EXPECT_EQ(by_key["rw_latency_seconds_bucket{le=+Inf}"], 3);
  EXPECT_DOUBLE_EQ(by_key["rw_latency_seconds_sum"], 2.35);
  EXPECT_EQ(by_key["rw_latency_seconds_count"], 3);
}

TEST(PushgatewayIntegrationTest, VictoriaMetricsTextImportIsReadBack) {
  auto vm = ccobs_test::start_victoria_metrics();
  auto s =
      settings_for(vm.url + "/api/v1/import/prometheus", "importer", {{"instance", "worker/1"}});
  obs::PushgatewayClient client(s);

  auto r = client.push_metrics(*counters({{"imported_total", 6}}), obs::PushMethod::kPush);

  ASSERT_TRUE(r.ok()) << r.message << " status " << r.http_status;
  std::vector<json> rows;
  ASSERT_TRUE(eventually([&] {
    rows = vm_export(vm, "imported_total");
    return !rows.empty();
  }));
  EXPECT_EQ(rows[0]["metric"]["job"], "importer");
  EXPECT_EQ(rows[0]["metric"]["instance"], "worker/1");
  EXPECT_EQ(rows[0]["values"].back().get<double>(), 6);
}

TEST(PushgatewayIntegrationTest, RemoteWriteIsReadBackFromPrometheus) {
  auto prom = ccobs_test::start_prometheus();
  obs::PushgatewayClient client(settings_for(prom.url + "/api/v1/write", "nightly/batch"));

  obs::PushResult r;
  // The receiver answers once the TSDB is open; until then a push may fail and is repeated.
  ASSERT_TRUE(eventually([&] {
    r = client.push_metrics(*remote_write_registry(), obs::PushMethod::kPush);
    return r.ok();
  })) << r.message;

  json counter, bucket;
  ASSERT_TRUE(eventually([&] {
    counter = prom_query(prom, "rw_requests_total{job=\"nightly/batch\"}");
    bucket = prom_query(prom, "rw_latency_seconds_bucket{le=\"0.5\"}");
    return counter.size() == 1 && bucket.size() == 1;
  }));
  EXPECT_EQ(counter[0]["metric"]["path"], "/v1/messages");
  EXPECT_EQ(counter[0]["metric"]["Zone"], "eu");
  EXPECT_EQ(counter[0]["value"][1], "3");
  EXPECT_EQ(bucket[0]["value"][1], "2");
}

// Basic auth against a Pushgateway that requires it (bcrypt user in its web config): refused
// without or with wrong credentials, accepted with them from the settings or the URL, and
// the password appears in no result message or redacted URL.
TEST(PushgatewayIntegrationTest, SendsBasicAuthThatARealPushgatewayAccepts) {
  const std::string password = "s3cret-pw";
  auto pg = ccobs_test::start_pushgateway_basic_auth("pusher", password);
  const auto metrics = counters({{"auth_total", 1}});

  obs::PushgatewayClient anonymous(settings_for(pg.url, "auth_job"));
  auto refused = anonymous.push_metrics(*metrics, obs::PushMethod::kPush);
  EXPECT_EQ(refused.outcome, obs::PushOutcome::kHttpError);
  EXPECT_EQ(refused.http_status, 401);

  auto wrong_settings = settings_for(pg.url, "auth_job");
  wrong_settings.pushgateway_username = "pusher";
  wrong_settings.pushgateway_password = "not-" + password;
  obs::PushgatewayClient wrong(wrong_settings);
  auto wrong_result = wrong.push_metrics(*metrics, obs::PushMethod::kPush);
  EXPECT_EQ(wrong_result.http_status, 401);
  EXPECT_EQ(wrong_result.message.find(password), std::string::npos);

  auto good_settings = settings_for(pg.url, "auth_job");
  good_settings.pushgateway_username = "pusher";
  good_settings.pushgateway_password = password;
  obs::PushgatewayClient good(good_settings);
  auto accepted = good.push_metrics(*metrics, obs::PushMethod::kPush);
  ASSERT_TRUE(accepted.ok()) << accepted.message;

  const std::string authed = "http://pusher:" + password + "@127.0.0.1:" + std::to_string(pg.port);
  obs::PushgatewayClient in_url(settings_for(authed, "auth_url_job"));
  EXPECT_EQ(in_url.redacted_url().find(password), std::string::npos);
  auto via_url = in_url.push_metrics(*metrics, obs::PushMethod::kPush);
  ASSERT_TRUE(via_url.ok()) << via_url.message;

  // Read back with the credentials: both groups are there.
  auto reply = http_request("GET", authed + "/api/v1/metrics");
  ASSERT_EQ(reply.status, 200);
  const json all = json::parse(reply.body);
  std::set<std::string> jobs;
  for (const auto& group : all["data"]) jobs.insert(group["labels"]["job"].get<std::string>());
  EXPECT_EQ(jobs, (std::set<std::string>{"auth_job", "auth_url_job"}));
}
