#include "ccproxy/observability/context.hpp"

#include <gtest/gtest.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "ccproxy/observability/events.hpp"
#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "ccproxy/observability/storage.hpp"

namespace obs = ccproxy::observability;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

const std::regex kUuid4("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");

// Every line the logging system writes, parsed (a line that is not JSON throws).
class Capture {
 public:
  explicit Capture(obs::LogLevel level = obs::LogLevel::kDebug) {
    obs::LoggingOptions options;
    options.level = level;
    options.line_sink = [this](std::string_view line) {
      json j = json::parse(line);
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(std::move(j));
      raw_.emplace_back(line);
    };
    obs::configure_logging(options);
  }
  ~Capture() { obs::configure_logging(obs::LoggingOptions{}); }

  std::vector<json> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  // The lines as written (parsing would hide a repeated key).
  std::vector<std::string> raw() {
    std::lock_guard<std::mutex> lock(mutex_);
    return raw_;
  }
  std::vector<json> events(const std::string& name) {
    std::vector<json> out;
    for (json& j : lines()) {
      if (j["event"] == name) out.push_back(std::move(j));
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<json> lines_;
  std::vector<std::string> raw_;
};

// Access-log storage that keeps rows in memory.
class CollectingStorage final : public obs::AccessLogStorage {
 public:
  bool store(obs::AccessLogRow row) noexcept override {
    std::lock_guard<std::mutex> lock(mutex_);
    rows_.push_back(std::move(row));
    return true;
  }
  void close() noexcept override {}
  std::vector<obs::AccessLogRow> rows() {
    std::lock_guard<std::mutex> lock(mutex_);
    return rows_;
  }

 private:
  std::mutex mutex_;
  std::vector<obs::AccessLogRow> rows_;
};

using LabelMap = std::map<std::string, std::string>;

// The value of one series (a histogram's sample count), or -1 when it does not exist.
double metric(obs::PrometheusMetrics& metrics, const std::string& name, const LabelMap& labels,
              double* histogram_sum = nullptr) {
  metrics.flush();
  for (const auto& family : metrics.registry()->Collect()) {
    if (family.name != name) continue;
    for (const auto& m : family.metric) {
      LabelMap have;
      for (const auto& l : m.label) have[l.name] = l.value;
      if (have != labels) continue;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          return m.counter.value;
        case prometheus::MetricType::Gauge:
          return m.gauge.value;
        case prometheus::MetricType::Histogram:
          if (histogram_sum != nullptr) *histogram_sum = m.histogram.sample_sum;
          return static_cast<double>(m.histogram.sample_count);
        default:
          return -1;
      }
    }
  }
  return -1;
}

struct Fixture {
  obs::ManualClock clock;
  obs::PrometheusMetrics metrics{"ccproxy"};
  obs::ContextTracker tracker{clock};
  obs::EventBus bus;
  std::shared_ptr<CollectingStorage> storage = std::make_shared<CollectingStorage>();
  obs::RequestContextOptions options;

  Fixture() {
    options.metrics = &metrics;
    options.tracker = &tracker;
    options.events = &bus;
    options.storage = storage;
    options.clock = &clock;
  }
};

}  // namespace

TEST(ContextTest, ScopeLogsTimesRecordsMetricsAndTracksAsTheContractSays) {
  Capture capture;
  Fixture fx;
  auto subscription = fx.bus.subscribe();
  std::string id;
  {
    obs::RequestContext ctx(fx.options, {{"method", "POST"},
                                         {"path", "/v1/messages"},
                                         {"client_ip", "10.1.2.3"},
                                         {"user_agent", "curl/8"}});
    id = ctx.request_id();
    EXPECT_TRUE(std::regex_match(id, kUuid4)) << id;
    EXPECT_EQ(fx.tracker.get_active_count(), 1u);
    EXPECT_EQ(metric(fx.metrics, "ccproxy_active_requests", {}), 1);
    auto start = capture.events("request_start");
    ASSERT_EQ(start.size(), 1u);
    EXPECT_EQ(start[0]["level"], "debug");
    EXPECT_EQ(start[0]["logger"], "ccproxy.request");
    EXPECT_EQ(start[0]["request_id"], id);
    EXPECT_EQ(start[0]["method"], "POST");

    fx.clock.advance(milliseconds(250));
    ctx.add_metadata({{"model", "claude-3-5-sonnet"},
                      {"status_code", 200},
                      {"tokens_input", 150},
                      {"tokens_output", 42},
                      {"cost_usd", 0.0125}});
    EXPECT_EQ(ctx.metadata().find("model")->as_string(), "claude-3-5-sonnet");
    EXPECT_DOUBLE_EQ(ctx.duration_ms(), 250.0);
    EXPECT_DOUBLE_EQ(ctx.duration_seconds(), 0.25);
    ctx.log_event("request_processed", {{"tokens", 150}});
    {
      obs::TimedOperation op(ctx, "claude_api_call");
      fx.clock.advance(milliseconds(100));
      op.add({{"response_size", 512}});
    }
  }
  obs::flush_logging();

  auto processed = capture.events("request_processed");
  ASSERT_EQ(processed.size(), 1u);
  EXPECT_EQ(processed[0]["level"], "info");
  EXPECT_EQ(processed[0]["request_id"], id);
  EXPECT_DOUBLE_EQ(processed[0]["duration_ms"].get<double>(), 250.0);
  EXPECT_EQ(processed[0]["tokens"], 150);
  EXPECT_EQ(processed[0]["model"], "claude-3-5-sonnet");

  auto op_start = capture.events("operation_start");
  auto op_success = capture.events("operation_success");
  ASSERT_EQ(op_start.size(), 1u);
  ASSERT_EQ(op_success.size(), 1u);
  EXPECT_EQ(op_start[0]["level"], "debug");
  EXPECT_EQ(op_success[0]["level"], "info");
  EXPECT_EQ(op_success[0]["operation_name"], "claude_api_call");
  EXPECT_TRUE(std::regex_match(op_success[0]["operation_id"].get<std::string>(), kUuid4));
  EXPECT_EQ(op_success[0]["operation_id"], op_start[0]["operation_id"]);
  EXPECT_EQ(op_success[0]["request_id"], id);
  EXPECT_DOUBLE_EQ(op_success[0]["duration_ms"].get<double>(), 100.0);
  EXPECT_EQ(op_success[0]["response_size"], 512);

  auto access = capture.events("access_log");
  ASSERT_EQ(access.size(), 1u);
  const json& a = access[0];
  EXPECT_EQ(a["level"], "info");
  EXPECT_EQ(a["request_id"], id);
  EXPECT_EQ(a["method"], "POST");
  EXPECT_EQ(a["path"], "/v1/messages");
  EXPECT_TRUE(a["query"].is_null());
  EXPECT_EQ(a["client_ip"], "10.1.2.3");
  EXPECT_EQ(a["user_agent"], "curl/8");
  EXPECT_EQ(a["status_code"], 200);
  EXPECT_DOUBLE_EQ(a["duration_ms"].get<double>(), 350.0);
  EXPECT_DOUBLE_EQ(a["duration_seconds"].get<double>(), 0.35);
  EXPECT_EQ(a["model"], "claude-3-5-sonnet");
  EXPECT_EQ(a["tokens_input"], 150);
  EXPECT_EQ(a["tokens_output"], 42);
  EXPECT_DOUBLE_EQ(a["cost_usd"].get<double>(), 0.0125);
  EXPECT_TRUE(capture.events("request_error").empty());

  const LabelMap request_labels{{"method", "POST"},
                                {"endpoint", "/v1/messages"},
                                {"model", "claude-3-5-sonnet"},
                                {"status", "200"},
                                {"service_type", "unknown"}};
  EXPECT_EQ(metric(fx.metrics, "ccproxy_requests_total", request_labels), 1);
  double sum = 0;
  EXPECT_EQ(metric(fx.metrics, "ccproxy_response_duration_seconds",
                   {{"model", "claude-3-5-sonnet"},
                    {"endpoint", "/v1/messages"},
                    {"service_type", "unknown"}},
                   &sum),
            1);
  EXPECT_DOUBLE_EQ(sum, 0.35);
  const LabelMap tokens{{"model", "claude-3-5-sonnet"}, {"service_type", "unknown"}};
  auto with = [](LabelMap m, const char* k, const char* v) {
    m[k] = v;
    return m;
  };
  EXPECT_EQ(metric(fx.metrics, "ccproxy_tokens_total", with(tokens, "type", "input")), 150);
  EXPECT_EQ(metric(fx.metrics, "ccproxy_tokens_total", with(tokens, "type", "output")), 42);
  EXPECT_DOUBLE_EQ(metric(fx.metrics, "ccproxy_cost_usd_total", with(tokens, "cost_type", "total")),
                   0.0125);
  EXPECT_EQ(metric(fx.metrics, "ccproxy_active_requests", {}), 0);
  EXPECT_EQ(fx.tracker.get_active_count(), 0u);

  auto rows = fx.storage->rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].request_id, id);
  EXPECT_EQ(rows[0].method, "POST");
  EXPECT_EQ(rows[0].endpoint, "/v1/messages");
  EXPECT_EQ(rows[0].status_code, 200);
  EXPECT_EQ(rows[0].tokens_input, 150);
  EXPECT_EQ(rows[0].tokens_output, 42);
  EXPECT_DOUBLE_EQ(rows[0].cost_usd, 0.0125);
  EXPECT_DOUBLE_EQ(rows[0].duration_ms, 350.0);
  EXPECT_EQ(rows[0].client_ip, "10.1.2.3");

  obs::Event e;
  ASSERT_TRUE(subscription->try_pop(e));
  EXPECT_EQ(e.type, "request_start");
  EXPECT_EQ(e.data.find("request_id")->as_string(), id);
  EXPECT_EQ(e.data.find("path")->as_string(), "/v1/messages");
  ASSERT_TRUE(subscription->try_pop(e));
  EXPECT_EQ(e.type, "request_complete");
  EXPECT_EQ(e.data.find("status_code")->as_int(), 200);
  EXPECT_DOUBLE_EQ(e.data.find("duration_ms")->as_double(), 350.0);
  EXPECT_FALSE(subscription->try_pop(e));
}

TEST(ContextTest, FailLogsRequestErrorWarnsTheAccessLogAndCountsTheError) {
  Capture capture;
  Fixture fx;
  auto subscription = fx.bus.subscribe();
  {
    obs::RequestContext ctx(fx.options, {{"method", "GET"}, {"path", "/v1/models"}});
    fx.clock.advance(milliseconds(30));
    ctx.fail("upstream_timeout", "upstream did not answer");
    ctx.fail("second_failure", "ignored: the first failure is reported");
    EXPECT_TRUE(ctx.failed());
  }
  auto errors = capture.events("request_error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["level"], "error");
  EXPECT_EQ(errors[0]["error_type"], "upstream_timeout");
  EXPECT_EQ(errors[0]["error_message"], "upstream did not answer");
  EXPECT_DOUBLE_EQ(errors[0]["duration_ms"].get<double>(), 30.0);
  auto access = capture.events("access_log");
  ASSERT_EQ(access.size(), 1u);
  EXPECT_EQ(access[0]["level"], "warning");
  EXPECT_EQ(access[0]["error_type"], "upstream_timeout");
  EXPECT_TRUE(access[0]["status_code"].is_null());

  EXPECT_EQ(metric(fx.metrics, "ccproxy_errors_total",
                   {{"error_type", "upstream_timeout"},
                    {"endpoint", "/v1/models"},
                    {"model", "unknown"},
                    {"service_type", "unknown"}}),
            1);
  EXPECT_EQ(metric(fx.metrics, "ccproxy_requests_total",
                   {{"method", "GET"},
                    {"endpoint", "/v1/models"},
                    {"model", "unknown"},
                    {"status", "unknown"},
                    {"service_type", "unknown"}}),
            1);
  obs::Event e;
  ASSERT_TRUE(subscription->try_pop(e));
  ASSERT_TRUE(subscription->try_pop(e));
  EXPECT_EQ(e.type, "request_error");
  EXPECT_EQ(e.data.find("error_type")->as_string(), "upstream_timeout");
  EXPECT_EQ(e.data.find("error_message")->as_string(), "upstream did not answer");
}

TEST(ContextTest, AnExceptionLeavingTheScopeIsAFailure) {
  Capture capture;
  Fixture fx;
  try {
    obs::RequestContext ctx(fx.options, {{"method", "POST"}, {"path", "/v1/messages"}});
    ctx.add_metadata({{"endpoint", "messages"}});
    throw std::runtime_error("boom");
  } catch (const std::runtime_error&) {
  }
  auto errors = capture.events("request_error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["error_type"], "unhandled_exception");
  EXPECT_EQ(capture.events("access_log").at(0)["level"], "warning");
  EXPECT_EQ(metric(fx.metrics, "ccproxy_errors_total",
                   {{"error_type", "unhandled_exception"},
                    {"endpoint", "messages"},
                    {"model", "unknown"},
                    {"service_type", "unknown"}}),
            1);
  EXPECT_EQ(metric(fx.metrics, "ccproxy_active_requests", {}), 0);
  EXPECT_EQ(fx.tracker.get_active_count(), 0u);
}

TEST(ContextTest, AScopeOpenedDuringUnwindingIsNotFailedByThatException) {
  Capture capture;
  Fixture fx;
  struct Cleanup {
    const obs::RequestContextOptions* options;
    ~Cleanup() { obs::RequestContext ctx(*options, {{"path", "/cleanup"}}); }
  };
  try {
    Cleanup cleanup{&fx.options};
    throw std::runtime_error("outer");
  } catch (const std::runtime_error&) {
  }
  EXPECT_TRUE(capture.events("request_error").empty());
  EXPECT_EQ(capture.events("access_log").at(0)["level"], "info");
}

TEST(ContextTest, RunInContextRecordsTheDemangledTypeAndMessageAndRethrows) {
  Capture capture;
  Fixture fx;
  EXPECT_THROW(obs::run_in_context(fx.options, {{"path", "/x"}},
                                   [](obs::RequestContext&) -> int {
                                     throw std::out_of_range("index 7 past the end");
                                   }),
               std::out_of_range);
  auto errors = capture.events("request_error");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["error_type"], "std::out_of_range");
  EXPECT_EQ(errors[0]["error_message"], "index 7 past the end");

  const int result = obs::run_in_context(fx.options, {}, [](obs::RequestContext& ctx) {
    ctx.add_metadata({{"status_code", 204}});
    return 42;
  });
  EXPECT_EQ(result, 42);
  EXPECT_EQ(capture.events("request_error").size(), 1u);
}

TEST(ContextTest, UsesAGivenRequestIdAndReplacesMissingOrUnsafeOnes) {
  Capture capture;
  obs::RequestContextOptions options;
  options.request_id = "req-abc_123";
  { EXPECT_EQ(obs::RequestContext(options).request_id(), "req-abc_123"); }
  std::vector<std::string> ids;
  for (const std::string& bad : {std::string(), std::string("a\r\nSet-Cookie: x=1"),
                                 std::string(200, 'a'), std::string("with space")}) {
    options.request_id = bad;
    obs::RequestContext ctx(options);
    EXPECT_TRUE(std::regex_match(ctx.request_id(), kUuid4)) << ctx.request_id();
    ids.push_back(ctx.request_id());
  }
  for (std::size_t i = 1; i < ids.size(); ++i) EXPECT_NE(ids[i], ids[i - 1]);
}

TEST(ContextTest, JoinsAnIncomingTraceAndProducesAChildTraceparent) {
  Capture capture;
  obs::RequestContextOptions options;
  options.traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  std::string span;
  {
    obs::RequestContext ctx(options, {{"path", "/t"}});
    EXPECT_EQ(ctx.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    EXPECT_EQ(ctx.parent_span_id(), "00f067aa0ba902b7");
    span = ctx.span_id();
    EXPECT_TRUE(std::regex_match(span, std::regex("[0-9a-f]{16}")));
    EXPECT_NE(span, "00f067aa0ba902b7");
    EXPECT_EQ(ctx.child_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-" + span + "-01");
    auto parsed = obs::TraceContext::parse(ctx.child_traceparent());
    ASSERT_TRUE(parsed.has_value());
    ctx.log_event("step");
  }
  for (const json& line : capture.lines()) {
    EXPECT_EQ(line["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736") << line.dump();
    EXPECT_EQ(line["span_id"], span);
  }
  EXPECT_EQ(capture.lines().size(), 3u);  // request_start, step, access_log
}

TEST(ContextTest, IgnoresAMalformedTraceparentAndStartsATraceOnlyWhenAsked) {
  Capture capture;
  obs::RequestContextOptions options;
  options.traceparent = "00-not-a-trace";
  {
    obs::RequestContext ctx(options);
    EXPECT_TRUE(ctx.trace_id().empty());
    EXPECT_TRUE(ctx.child_traceparent().empty());
  }
  EXPECT_FALSE(capture.events("access_log").at(0).contains("trace_id"));
  options.start_trace = true;
  obs::RequestContext ctx(options);
  EXPECT_TRUE(std::regex_match(ctx.trace_id(), std::regex("[0-9a-f]{32}")));
  EXPECT_TRUE(ctx.parent_span_id().empty());
  EXPECT_TRUE(obs::TraceContext::parse(ctx.child_traceparent()).has_value());
}

TEST(ContextTest, TimedOperationLogsOnlyImportantOperationsUnlessTheyFail) {
  Capture capture;
  obs::ManualClock clock;
  obs::RequestContextOptions options;
  options.clock = &clock;
  options.important_operations = {"db_query"};
  {
    obs::RequestContext ctx(options);
    { obs::TimedOperation quiet(ctx, "claude_api_call"); }  // not important here
    {
      obs::TimedOperation op(ctx, "db_query", {{"table", "users"}});
      clock.advance(milliseconds(7));
      EXPECT_DOUBLE_EQ(op.duration_ms(), 7.0);
    }
    try {
      obs::TimedOperation failing(ctx, "cache_lookup");
      clock.advance(milliseconds(2));
      throw std::logic_error("miss");
    } catch (const std::logic_error&) {
    }
    {
      obs::TimedOperation explicit_failure(ctx, "parse");
      explicit_failure.fail("bad_json", "unexpected token");
    }
  }
  auto success = capture.events("operation_success");
  ASSERT_EQ(success.size(), 1u);
  EXPECT_EQ(success[0]["operation_name"], "db_query");
  EXPECT_EQ(success[0]["table"], "users");
  EXPECT_DOUBLE_EQ(success[0]["duration_ms"].get<double>(), 7.0);
  EXPECT_EQ(capture.events("operation_start").size(), 1u);
  auto errors = capture.events("operation_error");
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(errors[0]["level"], "error");
  EXPECT_EQ(errors[0]["operation_name"], "cache_lookup");
  EXPECT_EQ(errors[0]["error_type"], "unhandled_exception");
  EXPECT_DOUBLE_EQ(errors[0]["duration_ms"].get<double>(), 2.0);
  EXPECT_EQ(errors[1]["error_type"], "bad_json");
  EXPECT_EQ(errors[1]["error_message"], "unexpected token");
  // An operation's failure is not the request's: the exception was handled inside it.
  EXPECT_EQ(capture.events("access_log").at(0)["level"], "info");
}

TEST(ContextTest, HostileMetadataLeavesTheAccessLogValidAndTheHeaderIntact) {
  Capture capture;
  obs::RequestContextOptions options;
  {
    obs::RequestContext ctx(options, {{"path", "/v1/\"quoted\"\\path\n"},
                                      {"user_agent", "bad\xff\xfe utf8 \x01"},
                                      {"event", "not_access_log"},
                                      {"level", "debug"}});
    ctx.add_metadata({{"model", std::string(20000, 'm')}});
  }
  auto access = capture.events("access_log");
  ASSERT_EQ(access.size(), 1u);
  EXPECT_EQ(access[0]["level"], "info");
  EXPECT_EQ(access[0]["path"], "/v1/\"quoted\"\\path\n");
  EXPECT_EQ(access[0]["user_agent"], "bad\xEF\xBF\xBD\xEF\xBF\xBD utf8 \x01");
  EXPECT_EQ(access[0]["field_event"], "not_access_log");
  EXPECT_EQ(access[0]["truncated"], true);
  EXPECT_EQ(access[0]["model"].get<std::string>().size(), 8192u);
}

TEST(ContextTest, DisabledLevelsWriteNoLinesButMetricsStillCount) {
  Capture capture(obs::LogLevel::kError);
  Fixture fx;
  {
    obs::RequestContext ctx(fx.options, {{"method", "GET"}, {"path", "/health"}});
    ctx.add_metadata({{"status_code", 200}});
    ctx.log_event("ignored");
  }
  EXPECT_TRUE(capture.lines().empty());
  EXPECT_EQ(metric(fx.metrics, "ccproxy_requests_total",
                   {{"method", "GET"},
                    {"endpoint", "/health"},
                    {"model", "unknown"},
                    {"status", "200"},
                    {"service_type", "unknown"}}),
            1);
}

TEST(ContextTest, LoggerCarriesTheRequestIdAndMetadata) {
  Capture capture;
  obs::RequestContextOptions options;
  options.request_id = "r-1";
  options.logger = obs::Logger("ccproxy.proxy", {{"service", "api"}});
  obs::RequestContext ctx(options, {{"method", "GET"}});
  ctx.add_metadata({{"model", "m"}});
  ctx.logger().info("custom");
  auto custom = capture.events("custom");
  ASSERT_EQ(custom.size(), 1u);
  EXPECT_EQ(custom[0]["logger"], "ccproxy.proxy");
  EXPECT_EQ(custom[0]["service"], "api");
  EXPECT_EQ(custom[0]["request_id"], "r-1");
  EXPECT_EQ(custom[0]["model"], "m");
}

TEST(ContextTest, TwoThreadsOfTenThousandScopesLeaveExactCountsAndAnEmptyTracker) {
  std::atomic<int> access_lines{0};
  obs::LoggingOptions log_options;
  log_options.line_sink = [&](std::string_view line) {
    json j = json::parse(line);
    if (j["event"] == "access_log") access_lines.fetch_add(1);
  };
  obs::configure_logging(log_options);
  Fixture fx;
  constexpr int kPerThread = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&fx, t] {
      const std::string method = t == 0 ? "GET" : "POST";
      for (int i = 0; i < kPerThread; ++i) {
        obs::RequestContext ctx(fx.options, {{"method", method}, {"path", "/v1/messages"}});
        ctx.add_metadata({{"model", "m"}, {"status_code", 200}, {"tokens_input", 3}});
        if (i % 10 == 0) ctx.fail("sampled_failure");
      }
    });
  }
  for (auto& th : threads) th.join();
  obs::configure_logging(obs::LoggingOptions{});

  EXPECT_EQ(fx.tracker.get_active_count(), 0u);
  EXPECT_EQ(access_lines.load(), 2 * kPerThread);
  EXPECT_EQ(fx.storage->rows().size(), static_cast<std::size_t>(2 * kPerThread));
  for (const char* method : {"GET", "POST"}) {
    EXPECT_EQ(metric(fx.metrics, "ccproxy_requests_total",
                     {{"method", method},
                      {"endpoint", "/v1/messages"},
                      {"model", "m"},
                      {"status", "200"},
                      {"service_type", "unknown"}}),
              kPerThread);
  }
  EXPECT_EQ(metric(fx.metrics, "ccproxy_tokens_total",
                   {{"type", "input"}, {"model", "m"}, {"service_type", "unknown"}}),
            3.0 * 2 * kPerThread);
  EXPECT_EQ(metric(fx.metrics, "ccproxy_errors_total",
                   {{"error_type", "sampled_failure"},
                    {"endpoint", "/v1/messages"},
                    {"model", "m"},
                    {"service_type", "unknown"}}),
            2 * kPerThread / 10);
  EXPECT_EQ(metric(fx.metrics, "ccproxy_active_requests", {}), 0);
}

TEST(ContextTest, MetadataAddedManyTimesKeepsTheLastValueOnceInLinesAndReads) {
  Capture capture;
  Fixture fx;
  {
    obs::RequestContext ctx(fx.options, {{"method", "POST"}, {"path", "/v1/messages"}});
    const obs::Fields shared{{"model", "first"}};
    ctx.add_metadata(shared);  // a named set is copied, the caller keeps it
    for (int i = 0; i < 7; ++i) ctx.add_metadata({{"attempt", i}, {"status_code", 500 + i}});
    ctx.add_metadata({{"model", "last"}, {"status_code", 200}});
    EXPECT_EQ(shared.find("model")->as_string(), "first");
    EXPECT_EQ(ctx.find_metadata("model")->as_string(), "last");
    EXPECT_EQ(ctx.find_metadata("attempt")->as_int(), 6);
    ctx.log_event("midway");
    EXPECT_EQ(ctx.metadata().size(), 5u);  // method, path, model, attempt, status_code
    EXPECT_EQ(ctx.metadata().find("status_code")->as_int(), 200);
    ctx.add_metadata({{"tokens_input", 9}});
  }
  auto midway = capture.events("midway");
  ASSERT_EQ(midway.size(), 1u);
  EXPECT_EQ(midway[0]["model"], "last");
  EXPECT_EQ(midway[0]["status_code"], 200);
  const json access = capture.events("access_log").at(0);
  EXPECT_EQ(access["model"], "last");
  EXPECT_EQ(access["attempt"], 6);
  EXPECT_EQ(access["tokens_input"], 9);
  for (const std::string& raw : capture.raw()) {
    if (raw.find("\"event\":\"access_log\"") == std::string::npos) continue;
    EXPECT_EQ(raw.find("\"model\":"), raw.rfind("\"model\":")) << raw;
    EXPECT_EQ(raw.find("\"status_code\":"), raw.rfind("\"status_code\":")) << raw;
  }
  EXPECT_EQ(metric(fx.metrics, "ccproxy_requests_total",
                   {{"method", "POST"},
                    {"endpoint", "/v1/messages"},
                    {"model", "last"},
                    {"status", "200"},
                    {"service_type", "unknown"}}),
            1);
  auto rows = fx.storage->rows();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].model, "last");
  EXPECT_EQ(rows[0].tokens_input, 9);
}
