// Compiles the public contracts against the installed package and checks that they behave
// as their comments say.
#include <ccproxy/observability.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
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

  {  // The metrics facade (issue: foundation).
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

  {  // Request scopes, structured logging, tracking (issue: context).
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

    obs::configure_logging(obs::LoggingOptions{});
    std::remove(file.c_str());
    rmdir(dir);
  }

  std::puts("consumer: ok");
  return EXIT_SUCCESS;
}
