// Compiles the public contracts against the installed package and checks that they behave
// as their comments say.
#include <ccproxy/observability.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

namespace obs = ccproxy::observability;

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::fprintf(stderr, "consumer: check failed: %s\n", #cond); \
      return EXIT_FAILURE;                                         \
    }                                                              \
  } while (0)

int main() {
  obs::Fields f{{"method", "POST"}, {"status_code", 200}};
  CHECK(f.find("status_code")->as_int() == 200);

  {  // The metrics facade.
    obs::PrometheusMetrics m("ccproxy");
    m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", 200, "proxy_service");
    m.record_request("POST", "/v1/messages", "claude-3-5-sonnet", "429", "proxy_service");
    m.record_request("GET", "/v1/models");
    m.record_response_time(0.042, "claude-3-5-sonnet", "/v1/messages", "proxy_service");
    m.record_tokens(150, "input", "claude-3-5-sonnet", "proxy_service");
    m.record_tokens(0, "cache_read", "claude-3-5-sonnet");
    m.record_cost(0.0125, "claude-3-5-sonnet", "total", "proxy_service");
    m.record_cost(std::nan(""), "claude-3-5-sonnet");
    m.record_error("upstream_timeout", "/v1/messages", "claude-3-5-sonnet", "proxy_service");
    m.inc_active_requests();
    m.dec_active_requests();
    m.set_active_requests(3);
    m.update_system_info({{"version", "1.2.3"}});
    std::string text = m.serialize();
    CHECK(text.find("ccproxy_requests_total{endpoint=\"/v1/messages\",method=\"POST\","
                    "model=\"claude-3-5-sonnet\",service_type=\"proxy_service\","
                    "status=\"200\"} 1") != std::string::npos);
    CHECK(text.find("status=\"429\"} 1") != std::string::npos);
    CHECK(text.find("model=\"unknown\",service_type=\"unknown\",status=\"unknown\"} 1") !=
          std::string::npos);
    CHECK(
        text.find("ccproxy_tokens_total{model=\"claude-3-5-sonnet\",service_type=\"proxy_service\","
                  "type=\"input\"} 150") != std::string::npos);
    CHECK(text.find("type=\"cache_read\"") == std::string::npos);
    CHECK(text.find("ccproxy_cost_usd_total{cost_type=\"total\",model=\"claude-3-5-sonnet\","
                    "service_type=\"proxy_service\"} 0.0125") != std::string::npos);
    CHECK(text.find("ccproxy_active_requests 3") != std::string::npos);
    CHECK(text.find("ccproxy_info{metrics_enabled=\"true\",version=\"1.2.3\"} 1") !=
          std::string::npos);
    CHECK(text.find("ccproxy_response_duration_seconds_count{endpoint=\"/v1/messages\","
                    "model=\"claude-3-5-sonnet\",service_type=\"proxy_service\"} 1") !=
          std::string::npos);
    std::shared_ptr<prometheus::Registry> r = m.registry();
    CHECK(r != nullptr);
    bool threw = false;
    try {
      obs::PrometheusMetrics bad("1bad-ns");
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(threw);
  }

  {  // access-log storage: store only queues, close drains, queries read the file
    std::string dir = (std::filesystem::temp_directory_path() / "ccobs-consumer-XXXXXX").string();
    CHECK(mkdtemp(dir.data()) != nullptr);
    const std::string path = dir + "/access.db";
    auto storage = std::make_shared<obs::SqliteAccessLogStorage>(path);
    obs::AccessLogRow row;
    row.request_id = "consumer-1";
    row.timestamp = std::chrono::system_clock::now();
    row.model = "claude-sonnet";
    row.tokens_input = 3;
    CHECK(storage->store(row));
    storage->flush();
    auto rows = storage->get_recent_requests(100);  // newest first
    CHECK(rows.size() == 1 && rows[0].request_id == "consumer-1");
    obs::AccessLogFilter filter;
    filter.model = "claude-sonnet";
    auto summary = storage->get_analytics(filter);
    CHECK(summary.total_requests == 1 && summary.total_tokens_input == 3);
    auto health = storage->health_check();
    CHECK(health.status == obs::StorageHealth::Status::kHealthy && health.row_count == 1);
    CHECK(health.path == path);
    storage->close();
    CHECK(!storage->store(row));  // closed: dropped and counted
    CHECK(storage->stats().rows_dropped_closed == 1);
    std::filesystem::remove_all(dir);
  }

  {  // Pushing: settings, client, typed results, breaker state, periodic pusher.
    obs::ObservabilitySettings s;
    CHECK(s.pushgateway_url.empty() && s.pushgateway_job == "ccproxy");
    s.pushgateway_url = "http://127.0.0.1:1";  // nothing listens on port 1
    s.pushgateway_job = "nightly/batch";
    s.pushgateway_grouping = {{"instance", "worker/1"}};
    s.pushgateway_timeout = std::chrono::milliseconds(1500);
    auto client = std::make_shared<obs::PushgatewayClient>(s);
    CHECK(client->is_enabled());
    CHECK(client->redacted_url() ==
          "http://127.0.0.1:1/metrics/job@base64/bmlnaHRseS9iYXRjaA/instance@base64/d29ya2VyLzE");
    obs::PrometheusMetrics m("batch", nullptr, client);
    obs::PushResult r = client->push_metrics(*m.registry(), obs::PushMethod::kPush);
    CHECK(r.outcome == obs::PushOutcome::kTransportError && !r.ok() && r.http_status == 0);
    CHECK(client->delete_metrics().outcome == obs::PushOutcome::kTransportError);
    CHECK(client->circuit_state() == obs::CircuitState::kClosed);
    CHECK(m.is_pushgateway_enabled());
    CHECK(!m.push_to_gateway());  // PUT; nothing listens, so false
    CHECK(!m.push_to_gateway("pushadd"));
    CHECK(!m.push_add_to_gateway());  // the fifth failure in a row opens the breaker
    CHECK(client->circuit_state() == obs::CircuitState::kOpen);
    CHECK(!m.delete_from_gateway());     // refused by the open breaker
    CHECK(!m.push_to_gateway("bogus"));  // false, error logged
    std::string text = m.serialize();
    CHECK(text.find("batch_pushgateway_pushes_total{method=\"push\","
                    "outcome=\"transport_error\"} 2") != std::string::npos);
    CHECK(text.find("batch_pushgateway_pushes_total{method=\"delete\","
                    "outcome=\"circuit_open\"} 1") != std::string::npos);

    obs::ObservabilitySettings off;
    obs::PushgatewayClient disabled(off);
    CHECK(disabled.push_metrics(*m.registry(), obs::PushMethod::kPush).outcome ==
          obs::PushOutcome::kDisabled);

    bool threw = false;
    try {
      s.pushgateway_url = "gopher://127.0.0.1:9091";
      obs::PushgatewayClient bad(s);
    } catch (const std::invalid_argument& e) {
      threw = std::string(e.what()).find("pushgateway_url") != std::string::npos;
    }
    CHECK(threw);

    obs::ManualClock clock;
    obs::CircuitBreaker breaker(5, std::chrono::seconds(60), clock);
    CHECK(breaker.state() == obs::CircuitState::kClosed);
    int pushes = 0;
    {
      obs::PeriodicPusher pusher([&pushes] { return ++pushes > 0; }, {}, clock);
    }
    CHECK(pushes == 1);  // the final push on stop
  }

  {  // Request scopes, structured logging, tracking.
    char dir_template[] = "/tmp/ccobs-consumer-XXXXXX";
    const char* dir = mkdtemp(dir_template);
    CHECK(dir != nullptr);
    const std::string file = std::string(dir) + "/app.log";

    obs::PrometheusMetrics metrics("ccproxy");
    obs::LoggingOptions log;
    log.format = obs::LogFormat::kJson;
    log.level = obs::LogLevel::kDebug;
    log.file = file;
    log.async = true;
    obs::configure_logging(log);

    obs::ContextTracker tracker;
    obs::RequestContextOptions options;
    options.metrics = &metrics;
    options.tracker = &tracker;
    options.request_id = "incoming-id-1";
    auto storage = std::make_shared<obs::SqliteAccessLogStorage>(std::string(dir) + "/access.db");
    options.storage = storage;  // each finished RequestContext stores its row
    {
      obs::RequestContext ctx(options, {{"method", "POST"},
                                        {"path", "/v1/messages"},
                                        {"client_ip", "10.1.2.3"},
                                        {"user_agent", "consumer/1"}});
      CHECK(tracker.get_active_count() == 1);
      CHECK(ctx.request_id() == "incoming-id-1");
      ctx.add_metadata({{"model", "claude-3-5-sonnet"},
                        {"status_code", 200},
                        {"tokens_input", 150},
                        {"tokens_output", 42},
                        {"cost_usd", 0.0125}});
      ctx.log_event("request_processed", {{"tokens", 150}});
      obs::TimedOperation op(ctx, "claude_api_call");
      CHECK(ctx.duration_seconds() >= 0.0);
    }
    CHECK(tracker.get_active_count() == 0);
    options.request_id.clear();
    {
      obs::RequestContext ctx(options, {{"method", "GET"}, {"path", "/v1/models"}});
      CHECK(ctx.request_id().size() == 36);  // a new UUIDv4
      ctx.fail("upstream_timeout", "upstream did not answer");
    }
    obs::flush_logging();

    std::vector<std::string> lines;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    auto count = [&](const std::string& needle) {
      int n = 0;
      for (const auto& l : lines) n += l.find(needle) != std::string::npos ? 1 : 0;
      return n;
    };
    CHECK(count("\"event\":\"request_start\"") == 2);
    CHECK(count("\"event\":\"request_processed\"") == 1);
    CHECK(count("\"event\":\"operation_success\"") == 1);
    CHECK(count("\"event\":\"access_log\"") == 2);
    CHECK(count("\"level\":\"warning\",\"logger\":\"ccproxy.request\",\"event\":\"access_log\"") ==
          1);
    CHECK(count("\"event\":\"request_error\"") == 1);
    CHECK(count("\"error_type\":\"upstream_timeout\"") == 2);
    CHECK(count("\"request_id\":\"incoming-id-1\"") == 5);  // start, processed, 2 op, access
    for (const auto& l : lines) CHECK(l.front() == '{' && l.back() == '}');

    const std::string text = metrics.serialize();
    CHECK(text.find("ccproxy_requests_total{endpoint=\"/v1/messages\",method=\"POST\","
                    "model=\"claude-3-5-sonnet\",service_type=\"unknown\",status=\"200\"} 1") !=
          std::string::npos);
    CHECK(text.find("ccproxy_errors_total{endpoint=\"/v1/models\",error_type=\"upstream_timeout\","
                    "model=\"unknown\",service_type=\"unknown\"} 1") != std::string::npos);
    CHECK(text.find("ccproxy_active_requests 0") != std::string::npos);
    CHECK(text.find("type=\"output\"} 42") != std::string::npos);

    storage->close();  // drains the queue: every stored row is in the file
    auto rows = storage->get_recent_requests(100);
    CHECK(rows.size() == 2);
    CHECK(rows[1].request_id == "incoming-id-1" && rows[1].tokens_input == 150 &&
          rows[1].model == "claude-3-5-sonnet" && rows[1].status_code == 200);
    obs::AccessLogFilter filter;
    filter.model = "claude-3-5-sonnet";
    CHECK(storage->get_analytics(filter).total_requests == 1);

    obs::configure_logging(obs::LoggingOptions{});
    std::filesystem::remove_all(dir);
  }

  {  // A proxy's handler, as in the README and examples/proxy.cpp.
    obs::PrometheusMetrics metrics("ccproxy");
    obs::EventBus events;
    auto subscription = events.subscribe();
    obs::RequestContextOptions o;
    o.metrics = &metrics;
    o.events = &events;
    o.request_id = "req-42";  // from X-Request-ID
    o.traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    {
      obs::RequestContext ctx(o, {{"method", "POST"}, {"path", "/v1/messages"}});
      ctx.add_metadata({{"model", "claude-3-5-haiku"}, {"service_type", "proxy_service"}});
      std::string upstream_traceparent = ctx.child_traceparent();  // sent upstream
      CHECK(upstream_traceparent.substr(0, 36) == o.traceparent.substr(0, 36));
      CHECK(upstream_traceparent != o.traceparent);
      ctx.add_metadata({{"status_code", 529}, {"tokens_input", 0}});
      ctx.fail("upstream_http_error", "overloaded_error");
    }
    std::string text = metrics.serialize();
    CHECK(text.find("ccproxy_requests_total{endpoint=\"/v1/messages\",method=\"POST\","
                    "model=\"claude-3-5-haiku\",service_type=\"proxy_service\","
                    "status=\"529\"} 1") != std::string::npos);
    CHECK(text.find("error_type=\"upstream_http_error\",model=\"claude-3-5-haiku\"") !=
          std::string::npos);
    std::vector<std::string> types;
    obs::Event event;
    while (subscription->try_pop(event)) types.push_back(event.type);
    CHECK(types.size() == 2 && types[0] == "request_start" && types[1] == "request_error");
    CHECK(event.data.find("request_id")->as_string() == "req-42");
  }

  std::puts("consumer: ok");
  return EXIT_SUCCESS;
}
