#include "ccproxy/observability/metrics.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string>

#include "ccproxy/observability/logging.hpp"

namespace obs = ccproxy::observability;
using ::testing::HasSubstr;

namespace {

using LabelMap = std::map<std::string, std::string>;

const prometheus::MetricFamily* family(const std::vector<prometheus::MetricFamily>& all,
                                       const std::string& name) {
  for (const auto& f : all) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

LabelMap labels_of(const prometheus::ClientMetric& m) {
  LabelMap out;
  for (const auto& l : m.label) out[l.name] = l.value;
  return out;
}

const prometheus::ClientMetric* series(const prometheus::MetricFamily* f, const LabelMap& labels) {
  if (f == nullptr) return nullptr;
  for (const auto& m : f->metric) {
    if (labels_of(m) == labels) return &m;
  }
  return nullptr;
}

// The value of a counter or gauge series, or nullopt when it does not exist.
std::optional<double> value(obs::PrometheusMetrics& m, const std::string& name,
                            const LabelMap& labels = {}) {
  auto all = m.registry()->Collect();
  const auto* f = family(all, name);
  const auto* s = series(f, labels);
  if (s == nullptr) return std::nullopt;
  return f->type == prometheus::MetricType::Counter ? s->counter.value : s->gauge.value;
}

std::size_t series_count(obs::PrometheusMetrics& m, const std::string& name) {
  auto all = m.registry()->Collect();
  const auto* f = family(all, name);
  return f == nullptr ? 0 : f->metric.size();
}

const LabelMap kRequest{{"method", "POST"},
                        {"endpoint", "/v1/messages"},
                        {"model", "claude-3-5-sonnet"},
                        {"status", "200"},
                        {"service_type", "proxy_service"}};

}  // namespace

TEST(MetricsTest, RegistersEveryMetricWithItsTypeAndHelp) {
  obs::MetricsOptions options;
  options.max_label_sets = 1;
  obs::PrometheusMetrics m("ccproxy", nullptr, nullptr, options);
  // prometheus-cpp leaves a labelled family out of the exposition until it has a series.
  m.record_request("POST", "/v1/messages");
  m.record_request("POST", "/v1/other");  // past the cap of 1: counted as overflow
  m.record_response_time(0.1);
  m.record_tokens(1, "input");
  m.record_cost(0.1);
  m.record_error("timeout");
  auto all = m.registry()->Collect();
  const std::map<std::string, prometheus::MetricType> expected{
      {"ccproxy_requests_total", prometheus::MetricType::Counter},
      {"ccproxy_response_duration_seconds", prometheus::MetricType::Histogram},
      {"ccproxy_tokens_total", prometheus::MetricType::Counter},
      {"ccproxy_cost_usd_total", prometheus::MetricType::Counter},
      {"ccproxy_errors_total", prometheus::MetricType::Counter},
      {"ccproxy_active_requests", prometheus::MetricType::Gauge},
      {"ccproxy_info", prometheus::MetricType::Gauge},
      {"up", prometheus::MetricType::Gauge},
      {"ccproxy_pool_clients", prometheus::MetricType::Gauge},
      {"ccproxy_pool_clients_available", prometheus::MetricType::Gauge},
      {"ccproxy_pool_clients_active", prometheus::MetricType::Gauge},
      {"ccproxy_pool_connections_created_total", prometheus::MetricType::Counter},
      {"ccproxy_pool_connections_closed_total", prometheus::MetricType::Counter},
      {"ccproxy_pool_acquisitions_total", prometheus::MetricType::Counter},
      {"ccproxy_pool_releases_total", prometheus::MetricType::Counter},
      {"ccproxy_pool_health_check_failures_total", prometheus::MetricType::Counter},
      {"ccproxy_pool_acquisition_duration_seconds", prometheus::MetricType::Histogram},
      {"ccproxy_metric_overflow_total", prometheus::MetricType::Counter},
  };
  for (const auto& [name, type] : expected) {
    const auto* f = family(all, name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_EQ(f->type, type) << name;
    EXPECT_FALSE(f->help.empty()) << name;
  }
  EXPECT_EQ(all.size(), expected.size());
}

TEST(MetricsTest, CountsRequestsUnderTheirFiveLabels) {
  obs::PrometheusMetrics m("ccproxy");
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", "200", "proxy_service");
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", "429", "proxy_service");
  EXPECT_EQ(value(m, "ccproxy_requests_total", kRequest), 2.0);
  LabelMap limited = kRequest;
  limited["status"] = "429";
  EXPECT_EQ(value(m, "ccproxy_requests_total", limited), 1.0);
}

TEST(MetricsTest, WritesMissingLabelValuesAsUnknown) {
  obs::PrometheusMetrics m("ccproxy");
  m.record_request("GET", "/v1/models");
  m.record_request("GET", "/v1/models", "", "", "");
  EXPECT_EQ(value(m, "ccproxy_requests_total",
                  {{"method", "GET"},
                   {"endpoint", "/v1/models"},
                   {"model", "unknown"},
                   {"status", "unknown"},
                   {"service_type", "unknown"}}),
            2.0);
  m.record_error("upstream_timeout");
  EXPECT_EQ(value(m, "ccproxy_errors_total",
                  {{"error_type", "upstream_timeout"},
                   {"endpoint", "unknown"},
                   {"model", "unknown"},
                   {"service_type", "unknown"}}),
            1.0);
}

TEST(MetricsTest, ObservesResponseTimesIntoTheSpecifiedBuckets) {
  obs::PrometheusMetrics m("ccproxy");
  for (double s : {0.005, 0.01, 0.042, 0.3, 7.0, 30.0}) {
    m.record_response_time(s, "claude-3-5-sonnet", "/v1/messages", "proxy_service");
  }
  auto all = m.registry()->Collect();
  const auto* s =
      series(family(all, "ccproxy_response_duration_seconds"), {{"model", "claude-3-5-sonnet"},
                                                                {"endpoint", "/v1/messages"},
                                                                {"service_type", "proxy_service"}});
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->histogram.sample_count, 6u);
  EXPECT_NEAR(s->histogram.sample_sum, 37.357, 1e-9);
  std::vector<double> bounds;
  std::vector<std::uint64_t> cumulative;
  for (const auto& b : s->histogram.bucket) {
    bounds.push_back(b.upper_bound);
    cumulative.push_back(b.cumulative_count);
  }
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_THAT(bounds, ::testing::ElementsAre(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, inf));
  // 0.01 is inclusive: it lands in the first bucket with 0.005.
  EXPECT_THAT(cumulative, ::testing::ElementsAre(2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 6));
}

TEST(MetricsTest, SkipsInvalidDurationsTokensAndCosts) {
  obs::PrometheusMetrics m("ccproxy");
  const double nan = std::nan("");
  const double inf = std::numeric_limits<double>::infinity();
  m.record_response_time(-1.0);
  m.record_response_time(nan);
  m.record_response_time(inf);
  m.record_tokens(0, "cache_read", "claude-3-5-sonnet");
  m.record_tokens(-5, "input", "claude-3-5-sonnet");
  m.record_cost(0.0, "claude-3-5-sonnet");
  m.record_cost(-0.5, "claude-3-5-sonnet");
  m.record_cost(nan, "claude-3-5-sonnet");
  m.record_cost(inf, "claude-3-5-sonnet");
  EXPECT_EQ(series_count(m, "ccproxy_response_duration_seconds"), 0u);
  EXPECT_EQ(series_count(m, "ccproxy_tokens_total"), 0u);
  EXPECT_EQ(series_count(m, "ccproxy_cost_usd_total"), 0u);
}

TEST(MetricsTest, SumsTokensByTypeAndCostsInDollars) {
  obs::PrometheusMetrics m("ccproxy");
  m.record_tokens(150, "input", "claude-3-5-sonnet", "proxy_service");
  m.record_tokens(50, "input", "claude-3-5-sonnet", "proxy_service");
  m.record_tokens(42, "output", "claude-3-5-sonnet", "proxy_service");
  m.record_cost(0.0125, "claude-3-5-sonnet", "total", "proxy_service");
  m.record_cost(0.0025, "claude-3-5-sonnet", "total", "proxy_service");
  EXPECT_EQ(
      value(m, "ccproxy_tokens_total",
            {{"type", "input"}, {"model", "claude-3-5-sonnet"}, {"service_type", "proxy_service"}}),
      200.0);
  EXPECT_EQ(
      value(
          m, "ccproxy_tokens_total",
          {{"type", "output"}, {"model", "claude-3-5-sonnet"}, {"service_type", "proxy_service"}}),
      42.0);
  EXPECT_NEAR(*value(m, "ccproxy_cost_usd_total",
                     {{"model", "claude-3-5-sonnet"},
                      {"cost_type", "total"},
                      {"service_type", "proxy_service"}}),
              0.015, 1e-12);
}

TEST(MetricsTest, TracksActiveRequestsAndPool) {
  obs::PrometheusMetrics m("ccproxy");
  m.inc_active_requests();
  m.inc_active_requests();
  m.dec_active_requests();
  EXPECT_EQ(value(m, "ccproxy_active_requests"), 1.0);
  m.set_active_requests(3);
  EXPECT_EQ(value(m, "ccproxy_active_requests"), 3.0);

  m.set_pool_clients(8);
  m.set_pool_clients_available(5);
  m.set_pool_clients_active(3);
  m.inc_pool_connections_created(8);
  m.inc_pool_connections_closed();
  m.inc_pool_acquisitions(4);
  m.inc_pool_releases(2);
  m.inc_pool_health_check_failures();
  m.inc_pool_acquisitions(-3);  // ignored: counters only go up
  m.record_pool_acquisition_duration(0.003);
  EXPECT_EQ(value(m, "ccproxy_pool_clients"), 8.0);
  EXPECT_EQ(value(m, "ccproxy_pool_clients_available"), 5.0);
  EXPECT_EQ(value(m, "ccproxy_pool_clients_active"), 3.0);
  EXPECT_EQ(value(m, "ccproxy_pool_connections_created_total"), 8.0);
  EXPECT_EQ(value(m, "ccproxy_pool_connections_closed_total"), 1.0);
  EXPECT_EQ(value(m, "ccproxy_pool_acquisitions_total"), 4.0);
  EXPECT_EQ(value(m, "ccproxy_pool_releases_total"), 2.0);
  EXPECT_EQ(value(m, "ccproxy_pool_health_check_failures_total"), 1.0);
  std::string text = m.serialize();
  EXPECT_THAT(text, HasSubstr("ccproxy_pool_acquisition_duration_seconds_bucket{le=\"0.005\"} 1"));
  EXPECT_THAT(text, HasSubstr("ccproxy_pool_acquisition_duration_seconds_bucket{le=\"0.001\"} 0"));
}

TEST(MetricsTest, ExposesInfoAndUpAsOne) {
  obs::MetricsOptions options;
  options.version = "1.2.3";
  options.job = "proxy";
  obs::PrometheusMetrics m("ccproxy", nullptr, nullptr, options);
  EXPECT_EQ(value(m, "ccproxy_info", {{"version", "1.2.3"}, {"metrics_enabled", "true"}}), 1.0);
  EXPECT_EQ(value(m, "up", {{"job", "proxy"}}), 1.0);

  m.update_system_info({{"host", "edge-1"}, {"version", "1.2.4"}});
  EXPECT_EQ(series_count(m, "ccproxy_info"), 1u);
  EXPECT_EQ(value(m, "ccproxy_info",
                  {{"version", "1.2.4"}, {"metrics_enabled", "true"}, {"host", "edge-1"}}),
            1.0);
}

TEST(MetricsTest, UpJobDefaultsToTheNamespace) {
  obs::PrometheusMetrics m("edge");
  EXPECT_EQ(value(m, "up", {{"job", "edge"}}), 1.0);
}

TEST(MetricsTest, RejectsInvalidNamespaceAndInfoKeys) {
  EXPECT_THROW(obs::PrometheusMetrics("1bad-ns"), std::invalid_argument);
  EXPECT_THROW(obs::PrometheusMetrics(""), std::invalid_argument);
  EXPECT_THROW(obs::PrometheusMetrics("has space"), std::invalid_argument);
  try {
    obs::PrometheusMetrics("1bad-ns");
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("1bad-ns"));
  }
  obs::PrometheusMetrics m("ok:ns_1");
  EXPECT_THROW(m.update_system_info({{"bad-key", "x"}}), std::invalid_argument);
  EXPECT_THROW(m.update_system_info({{"__reserved", "x"}}), std::invalid_argument);
  try {
    m.update_system_info({{"bad-key", "x"}});
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("bad-key"));
  }
  obs::MetricsOptions zero;
  zero.max_label_sets = 0;
  EXPECT_THROW(obs::PrometheusMetrics("ccproxy", nullptr, nullptr, zero), std::invalid_argument);
}

TEST(MetricsTest, EscapesHostileLabelValuesInTheExposition) {
  obs::PrometheusMetrics m("ccproxy");
  m.record_request("POST", "/v1/\"quoted\"\\path\nnext", "model\xff\xfe", 200);
  std::string text = m.serialize();
  // Quote, backslash and newline escaped; invalid UTF-8 replaced by U+FFFD.
  EXPECT_THAT(text, HasSubstr("endpoint=\"/v1/\\\"quoted\\\"\\\\path\\nnext\""));
  EXPECT_THAT(text, HasSubstr("model=\"model\xEF\xBF\xBD\xEF\xBF\xBD\""));
  for (char c : text) EXPECT_NE(c, '\r');
}

TEST(MetricsTest, CutsOverlongLabelValues) {
  obs::MetricsOptions options;
  options.max_label_value_length = 8;
  obs::PrometheusMetrics m("ccproxy", nullptr, nullptr, options);
  m.record_request("GET", "/a/very/long/endpoint");
  m.record_request("GET", "/a/very/other/endpoint");  // same first 8 bytes: same series
  EXPECT_EQ(value(m, "ccproxy_requests_total",
                  {{"method", "GET"},
                   {"endpoint", "/a/very/"},
                   {"model", "unknown"},
                   {"status", "unknown"},
                   {"service_type", "unknown"}}),
            2.0);
}

TEST(MetricsTest, SendsLabelSetsPastTheCapToOneOverflowSeries) {
  std::vector<std::string> lines;
  obs::LoggingOptions log;
  log.line_sink = [&](std::string_view line) { lines.emplace_back(line); };
  obs::configure_logging(log);

  obs::MetricsOptions options;
  options.max_label_sets = 10000;
  obs::PrometheusMetrics m("ccproxy", nullptr, nullptr, options);
  for (int i = 0; i < 10000; ++i) m.record_tokens(1, "input", "model-" + std::to_string(i));
  EXPECT_EQ(series_count(m, "ccproxy_tokens_total"), 10000u);
  EXPECT_EQ(value(m, "ccproxy_metric_overflow_total", {{"metric", "ccproxy_tokens_total"}}),
            std::nullopt);

  m.record_tokens(7, "input", "model-10000");
  m.record_tokens(3, "input", "model-10001");
  m.record_tokens(5, "input", "model-42");  // an existing set still records normally
  EXPECT_EQ(series_count(m, "ccproxy_tokens_total"), 10001u);
  EXPECT_EQ(value(m, "ccproxy_tokens_total",
                  {{"type", "overflow"}, {"model", "overflow"}, {"service_type", "overflow"}}),
            10.0);
  EXPECT_EQ(value(m, "ccproxy_tokens_total",
                  {{"type", "input"}, {"model", "model-42"}, {"service_type", "unknown"}}),
            6.0);
  EXPECT_EQ(value(m, "ccproxy_metric_overflow_total", {{"metric", "ccproxy_tokens_total"}}), 2.0);

  int warnings = 0;
  for (const auto& l : lines) {
    if (l.find("metric_cardinality_overflow") != std::string::npos) ++warnings;
  }
  EXPECT_EQ(warnings, 1);  // rate-limited: one warning for both overflowing records
  obs::configure_logging({});
}

TEST(MetricsTest, SharesFamiliesWithARegistryPassedIn) {
  auto registry = std::make_shared<prometheus::Registry>();
  obs::PrometheusMetrics m("ccproxy", registry);
  EXPECT_EQ(m.registry(), registry);
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
  m.flush();
  auto all = registry->Collect();
  const auto* s = series(family(all, "ccproxy_requests_total"), kRequest);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counter.value, 1.0);
}

TEST(MetricsTest, OwnRegistryIsExactForAnyCollector) {
  obs::PrometheusMetrics m("ccproxy");
  std::shared_ptr<prometheus::Registry> r = m.registry();
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
  // No flush(): collecting the registry directly folds the cells in.
  auto all = r->Collect();
  const auto* s = series(family(all, "ccproxy_requests_total"), kRequest);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counter.value, 1.0);
}

TEST(MetricsTest, RegistryKeepsValuesAfterTheFacadeIsGone) {
  std::shared_ptr<prometheus::Registry> r;
  {
    obs::PrometheusMetrics m("ccproxy");
    r = m.registry();
    m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
  }
  auto all = r->Collect();
  const auto* s = series(family(all, "ccproxy_requests_total"), kRequest);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->counter.value, 1.0);
}

TEST(MetricsTest, SerializesTextFormat004) {
  obs::PrometheusMetrics m("ccproxy");
  m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
  m.record_response_time(0.042);
  std::string text = m.serialize();
  EXPECT_THAT(text, HasSubstr("# TYPE ccproxy_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("# HELP ccproxy_requests_total "));
  EXPECT_THAT(text, HasSubstr("ccproxy_requests_total{endpoint=\"/v1/messages\",method=\"POST\","
                              "model=\"claude-3-5-sonnet\",service_type=\"proxy_service\","
                              "status=\"200\"} 1"));
  EXPECT_THAT(text, HasSubstr("# TYPE ccproxy_response_duration_seconds histogram\n"));
}
