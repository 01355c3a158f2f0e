// proxy: a small HTTP reverse proxy instrumented with ccproxy-observability, the way a proxy
// author would use the library. Each request is forwarded to the upstream with libcurl (one
// easy handle per worker thread, so connections are reused) inside a RequestContext: the
// X-Request-ID and traceparent headers are propagated, the model is read from the JSON
// request body, tokens from the upstream's `usage` object, and upstream errors and timeouts
// are recorded as failures. The proxy serves /metrics, /health and /logs/stream (the event
// bus as Server-Sent Events), stores a row per request in SQLite, and pushes its metrics to a
// Pushgateway periodically and once more on shutdown.
#include <curl/curl.h>
#include <prometheus/registry.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "ccproxy/observability.hpp"
#include "civet_server.hpp"
#include "flags.hpp"
#include "upstream_client.hpp"

namespace examples = ccproxy::observability::examples;
namespace obs = ccproxy::observability;
using nlohmann::json;

namespace {

struct Config {
  std::string host = "127.0.0.1";
  std::int64_t port = 8080;
  std::string port_file;
  std::string upstream = "http://127.0.0.1:8081";
  std::int64_t upstream_timeout_ms = 30000;
  std::int64_t connect_timeout_ms = 2000;
  std::int64_t threads = 32;
  std::int64_t max_body_bytes = 10 * 1024 * 1024;
  std::string service_type = "proxy_service";
  std::string metrics_namespace = "ccproxy";
  std::string sqlite;
  std::string pushgateway_url;
  std::string job = "ccproxy_proxy";
  std::int64_t push_interval_s = 15;
  std::string log_format = "json";
  std::string log_level = "info";
  std::string log_file;
  std::int64_t max_sse_clients = 4;
  bool no_instrumentation = false;
};

// USD per million tokens. Limitation: a fixed table in the example, matched by model-name
// prefix; a real proxy reads its prices from configuration.
struct Price {
  std::string_view prefix;
  double input, output, cache_read, cache_write;
};
constexpr Price kPrices[] = {
    {"claude-3-opus", 15.00, 75.00, 1.50, 18.75},   {"claude-3-5-sonnet", 3.00, 15.00, 0.30, 3.75},
    {"claude-3-7-sonnet", 3.00, 15.00, 0.30, 3.75}, {"claude-3-5-haiku", 0.80, 4.00, 0.08, 1.00},
    {"claude-3-haiku", 0.25, 1.25, 0.03, 0.30},
};
constexpr Price kDefaultPrice = {"", 3.00, 15.00, 0.30, 3.75};

const Price& price_for(std::string_view model) {
  for (const Price& p : kPrices) {
    if (model.substr(0, p.prefix.size()) == p.prefix) return p;
  }
  return kDefaultPrice;
}

// Request headers that describe the hop, not the request, and are not forwarded.
// X-Request-ID and traceparent are set again from the request's context.
bool is_hop_header(std::string_view name) {
  static constexpr std::string_view kHop[] = {
      "host",    "content-length", "connection",   "keep-alive",  "transfer-encoding",
      "upgrade", "expect",         "x-request-id", "traceparent", "proxy-connection",
      "te"};
  for (std::string_view h : kHop) {
    if (name.size() == h.size()) {
      bool same = true;
      for (std::size_t i = 0; i < h.size() && same; ++i) {
        same = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i]))) == h[i];
      }
      if (same) return true;
    }
  }
  return false;
}

// civetweb hands the path URL-decoded; it is percent-encoded again for the upstream.
// Limitation: a path whose encoding mattered (an encoded '/' in a segment) reaches the
// upstream as a plain '/'.
std::string encode_path(std::string_view path) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string header_or_empty(mg_connection* conn, const char* name) {
  const char* v = mg_get_header(conn, name);
  return v == nullptr ? std::string() : std::string(v);
}

// What the library needs for the life of the process: one metrics facade, storage, tracker,
// event bus and pusher shared by all worker threads.
struct Observability {
  std::shared_ptr<obs::PushgatewayClient> push_client;
  std::unique_ptr<obs::PrometheusMetrics> metrics;
  std::shared_ptr<obs::SqliteAccessLogStorage> storage;
  obs::ContextTracker tracker;
  obs::EventBus events;
  std::unique_ptr<obs::PeriodicPusher> pusher;
  // Copied once per worker thread; request_id and traceparent are set per request.
  obs::RequestContextOptions request_options;
};

struct Proxy {
  Config config;
  std::string upstream_base;           // without a trailing slash
  std::unique_ptr<Observability> obs;  // null with --no-instrumentation
  std::atomic<bool> stopping{false};
  std::atomic<std::int64_t> sse_clients{0};
};

struct Forwarded {
  std::string request_id;  // echoed to the client as X-Request-ID
  int status = 502;
  std::string content_type = "application/json";
  std::string body;
};

examples::UpstreamResponse call_upstream(const Proxy& proxy, const mg_request_info* info,
                                         std::string_view path, const std::string& body,
                                         const std::string& request_id,
                                         const std::string& traceparent) {
  std::string url = proxy.upstream_base + encode_path(path);
  if (info->query_string != nullptr) url += std::string("?") + info->query_string;
  std::vector<std::string> headers;
  headers.reserve(static_cast<std::size_t>(info->num_headers) + 2);
  for (int i = 0; i < info->num_headers; ++i) {
    if (is_hop_header(info->http_headers[i].name)) continue;
    headers.push_back(std::string(info->http_headers[i].name) + ": " + info->http_headers[i].value);
  }
  if (!request_id.empty()) headers.push_back("X-Request-ID: " + request_id);
  if (!traceparent.empty()) headers.push_back("traceparent: " + traceparent);
  return examples::UpstreamClient::for_this_thread().send(
      std::string(info->request_method), url, headers, body,
      std::chrono::milliseconds(proxy.config.upstream_timeout_ms),
      std::chrono::milliseconds(proxy.config.connect_timeout_ms));
}

Forwarded to_client(const examples::UpstreamResponse& r) {
  Forwarded out;
  if (r.outcome == examples::UpstreamOutcome::kOk) {
    out.status = static_cast<int>(r.status);
    out.content_type = r.content_type.empty() ? "application/octet-stream" : r.content_type;
    out.body = r.body;
    return out;
  }
  bool timeout = r.outcome == examples::UpstreamOutcome::kTimeout;
  out.status = timeout ? 504 : 502;
  json error = {
      {"type", "error"},
      {"error",
       {{"type", timeout ? "upstream_timeout" : "upstream_unreachable"}, {"message", r.error}}}};
  out.body = error.dump();
  return out;
}

// Reads the upstream's usage object into the context: tokens and their cost.
void record_usage(obs::RequestContext& ctx, const std::string& model, const json& response) {
  if (!response.is_object() || !response.contains("usage") || !response["usage"].is_object()) {
    return;
  }
  const json& usage = response["usage"];
  auto count = [&usage](const char* key) -> std::int64_t {
    auto it = usage.find(key);
    return it != usage.end() && it->is_number_integer() ? it->get<std::int64_t>() : 0;
  };
  std::int64_t input = count("input_tokens");
  std::int64_t output = count("output_tokens");
  std::int64_t cache_read = count("cache_read_input_tokens");
  std::int64_t cache_write = count("cache_creation_input_tokens");
  const Price& p = price_for(model);
  double cost = (static_cast<double>(input) * p.input + static_cast<double>(output) * p.output +
                 static_cast<double>(cache_read) * p.cache_read +
                 static_cast<double>(cache_write) * p.cache_write) /
                1e6;
  ctx.add_metadata({{"tokens_input", input},
                    {"tokens_output", output},
                    {"cache_read_tokens", cache_read},
                    {"cache_write_tokens", cache_write},
                    {"cost_usd", cost}});
}

// The instrumented path: the request's scope ends (access log, metrics, row, event) before
// the response is written, so a client that has its answer also finds it counted.
// Limitation: duration_ms therefore leaves out writing the response to the client.
// Limitation: the upstream's answer is buffered whole before it is sent on, so a streamed
// (`"stream": true`) answer reaches the client in one piece and its tokens, which arrive in
// SSE events rather than one JSON body, are not counted.
Forwarded forward_instrumented(Proxy& proxy, mg_connection* conn, const mg_request_info* info,
                               std::string_view path, const std::string& body) {
  thread_local obs::RequestContextOptions options = proxy.obs->request_options;
  options.request_id = header_or_empty(conn, "X-Request-ID");
  options.traceparent = header_or_empty(conn, "traceparent");

  std::string query = info->query_string != nullptr ? info->query_string : "";
  obs::RequestContext ctx(options, {{"method", info->request_method},
                                    {"path", path},
                                    {"query", query},
                                    {"endpoint", path},
                                    {"client_ip", info->remote_addr},
                                    {"user_agent", header_or_empty(conn, "User-Agent")},
                                    {"service_type", proxy.config.service_type}});

  std::string model;
  json request = json::parse(body, nullptr, false);
  if (request.is_object()) {
    auto m = request.find("model");
    if (m != request.end() && m->is_string()) model = m->get<std::string>();
    auto stream = request.find("stream");
    bool streaming = stream != request.end() && stream->is_boolean() && stream->get<bool>();
    ctx.add_metadata({{"model", model}, {"streaming", streaming}});
  }

  examples::UpstreamResponse r;
  {
    obs::TimedOperation op(ctx, "claude_api_call", {{"upstream", proxy.upstream_base}});
    r = call_upstream(proxy, info, path, body, ctx.request_id(), ctx.child_traceparent());
    if (r.outcome == examples::UpstreamOutcome::kTimeout) {
      op.fail("upstream_timeout", r.error);
    } else if (r.outcome == examples::UpstreamOutcome::kTransportError) {
      op.fail("upstream_unreachable", r.error);
    } else if (r.status >= 500) {
      op.fail("upstream_http_error", "status " + std::to_string(r.status));
    }
    op.add({{"response_bytes", r.body.size()}});
  }

  Forwarded out = to_client(r);
  out.request_id = ctx.request_id();
  ctx.add_metadata({{"status_code", out.status}});
  if (r.outcome == examples::UpstreamOutcome::kTimeout) {
    ctx.fail("upstream_timeout", r.error);
  } else if (r.outcome == examples::UpstreamOutcome::kTransportError) {
    ctx.fail("upstream_unreachable", r.error);
  } else if (out.status >= 500) {
    json error = json::parse(r.body, nullptr, false);
    std::string type = "status " + std::to_string(out.status);
    if (error.is_object() && error.contains("error") && error["error"].is_object()) {
      type = error["error"].value("type", type);
    }
    ctx.fail("upstream_http_error", type);
  } else if (out.status == 200) {
    record_usage(ctx, model, json::parse(r.body, nullptr, false));
  }
  return out;
}

// GET /logs/stream: the event bus as Server-Sent Events, one `event:`/`data:` pair per event,
// a comment every 15 s so a vanished client is noticed.
// Limitation: civetweb serves a request on one worker thread until it returns, so each open
// stream holds a worker; --max-sse-clients keeps streams from taking them all.
int stream_events(Proxy& proxy, mg_connection* conn) {
  if (proxy.obs == nullptr) {
    examples::send_response(conn, 404, "application/json", R"({"error":"instrumentation is off"})");
    return 404;
  }
  if (proxy.sse_clients.fetch_add(1) >= proxy.config.max_sse_clients) {
    proxy.sse_clients.fetch_sub(1);
    examples::send_response(conn, 503, "application/json", R"({"error":"too many event streams"})");
    return 503;
  }
  auto subscription = proxy.obs->events.subscribe();
  std::string head =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  bool open = mg_write(conn, head.data(), head.size()) > 0;
  std::string hello = ": connected\n\n";
  open = open && mg_send_chunk(conn, hello.data(), static_cast<unsigned>(hello.size())) > 0;
  auto last_write = std::chrono::steady_clock::now();
  obs::Event event;
  while (open && !proxy.stopping.load()) {
    std::string chunk;
    if (subscription->pop(event, std::chrono::milliseconds(250))) {
      chunk = "event: " + event.type + "\ndata: " + event.to_json() + "\n\n";
    } else if (std::chrono::steady_clock::now() - last_write > std::chrono::seconds(15)) {
      chunk = ": keep-alive\n\n";
    } else {
      continue;
    }
    open = mg_send_chunk(conn, chunk.data(), static_cast<unsigned>(chunk.size())) > 0;
    last_write = std::chrono::steady_clock::now();
  }
  if (open) mg_send_chunk(conn, "", 0);
  proxy.obs->events.unsubscribe(subscription);
  proxy.sse_clients.fetch_sub(1);
  return 200;
}

int serve_health(Proxy& proxy, mg_connection* conn) {
  json health = {{"status", "ok"}, {"instrumentation", proxy.obs != nullptr}};
  if (proxy.obs != nullptr) {
    health["active_requests"] = proxy.obs->tracker.get_active_count();
    if (proxy.obs->storage != nullptr) {
      obs::StorageHealth h = proxy.obs->storage->health_check();
      health["storage"] = h.status == obs::StorageHealth::Status::kHealthy ? "healthy" : h.error;
    }
  }
  examples::send_response(conn, 200, "application/json", health.dump());
  return 200;
}

int handle(mg_connection* conn, void* data) {
  auto& proxy = *static_cast<Proxy*>(data);
  const mg_request_info* info = mg_get_request_info(conn);
  std::string_view path = info->local_uri_raw != nullptr ? info->local_uri_raw : "/";

  if (path == "/health") return serve_health(proxy, conn);
  if (path == "/metrics") {
    std::string text = proxy.obs != nullptr ? proxy.obs->metrics->serialize() : std::string();
    examples::send_response(conn, 200, "text/plain; version=0.0.4; charset=utf-8", text);
    return 200;
  }
  if (path == "/logs/stream") return stream_events(proxy, conn);

  std::string body;
  if (!examples::read_body(conn, static_cast<std::size_t>(proxy.config.max_body_bytes), &body)) {
    examples::send_response(conn, 413, "application/json",
                            R"({"type":"error","error":{"type":"request_too_large"}})");
    return 413;
  }
  Forwarded out;
  if (proxy.obs != nullptr) {
    out = forward_instrumented(proxy, conn, info, path, body);
  } else {
    std::string request_id = header_or_empty(conn, "X-Request-ID");
    out = to_client(
        call_upstream(proxy, info, path, body, request_id, header_or_empty(conn, "traceparent")));
    out.request_id = std::move(request_id);
  }
  examples::send_response(
      conn, out.status, out.content_type, out.body,
      out.request_id.empty() ? std::string() : "X-Request-ID: " + out.request_id + "\r\n");
  return out.status;
}

// Builds the library's side from the flags. Throws std::invalid_argument naming a bad setting.
std::unique_ptr<Observability> make_observability(const Config& c) {
  auto o = std::make_unique<Observability>();
  if (!c.pushgateway_url.empty()) {
    obs::ObservabilitySettings settings = obs::ObservabilitySettings::from_env();
    settings.pushgateway_url = c.pushgateway_url;
    settings.pushgateway_job = c.job;
    o->push_client = std::make_shared<obs::PushgatewayClient>(settings);
  }
  o->metrics =
      std::make_unique<obs::PrometheusMetrics>(c.metrics_namespace, nullptr, o->push_client);
  auto registry = o->metrics->registry();
  o->metrics->update_system_info({{"service", "proxy_example"}});
  o->events.register_metrics(registry, c.metrics_namespace);
  o->tracker.register_metrics(registry, c.metrics_namespace);
  if (o->push_client != nullptr) o->push_client->register_metrics(registry, c.metrics_namespace);
  if (!c.sqlite.empty()) {
    obs::SqliteStorageOptions options;
    options.registry = registry;
    options.metric_namespace = c.metrics_namespace;
    o->storage = std::make_shared<obs::SqliteAccessLogStorage>(c.sqlite, options);
  }

  o->request_options.metrics = o->metrics.get();
  o->request_options.storage = o->storage;
  o->request_options.tracker = &o->tracker;
  o->request_options.events = &o->events;
  o->request_options.logger = obs::Logger("ccproxy.proxy", {{"service", "proxy_example"}});

  if (o->push_client != nullptr) {
    obs::PeriodicPusherOptions options;
    options.interval = std::chrono::seconds(c.push_interval_s);
    o->pusher = std::make_unique<obs::PeriodicPusher>(o->push_client, registry, options);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Proxy proxy;
  Config& c = proxy.config;
  examples::FlagSet flags("proxy",
                          "A reverse proxy instrumented with ccproxy-observability: metrics on\n"
                          "/metrics, events on /logs/stream (Server-Sent Events), JSON access\n"
                          "log lines on stdout, rows in SQLite, pushes to a Pushgateway.");
  flags.add("host", &c.host, "address to listen on");
  flags.add("port", &c.port, "port to listen on (0: a free one, see --port-file)");
  flags.add("port-file", &c.port_file, "file to write the bound port to");
  flags.add("upstream", &c.upstream, "base URL requests are forwarded to");
  flags.add("upstream-timeout-ms", &c.upstream_timeout_ms, "total time allowed per upstream call");
  flags.add("connect-timeout-ms", &c.connect_timeout_ms, "time allowed to connect upstream");
  flags.add("threads", &c.threads, "worker threads (requests and event streams served at once)");
  flags.add("max-body-bytes", &c.max_body_bytes, "largest request body accepted");
  flags.add("service-type", &c.service_type, "service_type label of the metrics and rows");
  flags.add("metrics-namespace", &c.metrics_namespace, "prefix of the metric names");
  flags.add("sqlite", &c.sqlite, "SQLite file for the access log (empty: no storage)");
  flags.add("pushgateway-url", &c.pushgateway_url, "Pushgateway to push to (empty: no push)");
  flags.add("job", &c.job, "job label of the pushed group");
  flags.add("push-interval-s", &c.push_interval_s, "seconds between pushes");
  flags.add("log-format", &c.log_format, "json or console");
  flags.add("log-level", &c.log_level, "trace, debug, info, warning, error");
  flags.add("log-file", &c.log_file, "write log lines to this file (empty: stdout)");
  flags.add("max-sse-clients", &c.max_sse_clients, "event streams served at once");
  flags.add("no-instrumentation", &c.no_instrumentation,
            "forward only: no context, metrics, logs or storage (to measure the overhead)");
  if (auto exit_code = flags.parse(argc, argv)) return *exit_code;
  if (c.port < 0 || c.port > 65535) return flags.fail_setting("--port must be in 0..65535");
  if (c.threads < 2 || c.threads > 1024) return flags.fail_setting("--threads must be 2..1024");
  if (c.upstream.rfind("http://", 0) != 0 && c.upstream.rfind("https://", 0) != 0) {
    return flags.fail_setting("--upstream must be an http:// or https:// URL, not '" + c.upstream +
                              "'");
  }
  if (c.upstream_timeout_ms <= 0 || c.connect_timeout_ms <= 0) {
    return flags.fail_setting("--upstream-timeout-ms and --connect-timeout-ms must be positive");
  }
  if (c.max_body_bytes <= 0) return flags.fail_setting("--max-body-bytes must be positive");
  if (c.push_interval_s <= 0) return flags.fail_setting("--push-interval-s must be positive");
  if (c.max_sse_clients < 0 || c.max_sse_clients >= c.threads) {
    return flags.fail_setting("--max-sse-clients must be 0..threads-1");
  }
  if (c.log_format != "json" && c.log_format != "console") {
    return flags.fail_setting("--log-format must be json or console, not '" + c.log_format + "'");
  }
  proxy.upstream_base = c.upstream;
  while (!proxy.upstream_base.empty() && proxy.upstream_base.back() == '/') {
    proxy.upstream_base.pop_back();
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  examples::block_stop_signals();
  try {
    obs::LoggingOptions logging;
    logging.format = c.log_format == "json" ? obs::LogFormat::kJson : obs::LogFormat::kConsole;
    logging.level = obs::parse_log_level(c.log_level);
    logging.file = c.log_file;
    obs::configure_logging(logging);
    if (!c.no_instrumentation) proxy.obs = make_observability(c);
  } catch (const std::invalid_argument& e) {
    return flags.fail_setting(e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    return 1;
  }

  int exit_code = 0;
  try {
    examples::CivetServer http(c.host, static_cast<int>(c.port), static_cast<int>(c.threads),
                               &handle, &proxy);
    examples::write_port_file(c.port_file, http.port());
    std::fprintf(stderr, "proxy: listening on %s:%d, upstream %s, instrumentation %s\n",
                 c.host.c_str(), http.port(), proxy.upstream_base.c_str(),
                 proxy.obs != nullptr ? "on" : "off");
    // Until SIGINT or SIGTERM: every minute, drop tracked requests older than five.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    timespec minute{60, 0};
    while (sigtimedwait(&stop_signals, nullptr, &minute) < 0) {
      if (proxy.obs != nullptr) proxy.obs->tracker.cleanup_stale_contexts();
    }
    proxy.stopping.store(true);
    http.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    exit_code = 1;
  }

  // Shutdown order: no more requests (server stopped), then the final push, then the rows.
  if (proxy.obs != nullptr) {
    if (proxy.obs->pusher != nullptr) {
      proxy.obs->pusher->stop();
      obs::PeriodicPusherStats s = proxy.obs->pusher->stats();
      std::fprintf(stderr, "proxy: pushes attempted %llu, succeeded %llu\n",
                   static_cast<unsigned long long>(s.attempts),
                   static_cast<unsigned long long>(s.succeeded));
    }
    if (proxy.obs->storage != nullptr) {
      proxy.obs->storage->close();
      obs::StorageStats s = proxy.obs->storage->stats();
      std::fprintf(
          stderr, "proxy: access-log rows written %llu, dropped %llu\n",
          static_cast<unsigned long long>(s.rows_written),
          static_cast<unsigned long long>(s.rows_dropped_queue_full + s.rows_dropped_closed +
                                          s.rows_dropped_write_failed + s.rows_dropped_rejected));
    }
  }
  obs::flush_logging();
  proxy.obs.reset();
  curl_global_cleanup();
  return exit_code;
}
