// proxy: a small HTTP reverse proxy instrumented with ccproxy-observability, the way a proxy
// author would use the library. Each request is forwarded to the upstream with libcurl (one
// easy handle per worker thread, so connections are reused).
#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "civet_server.hpp"
#include "flags.hpp"
#include "upstream_client.hpp"

namespace examples = ccproxy::observability::examples;
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
  bool no_instrumentation = false;
};

// Request headers that describe the hop, not the request, and are not forwarded.
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

struct Proxy {
  Config config;
  std::string upstream_base;  // without a trailing slash
};

int handle(mg_connection* conn, void* data) {
  auto& proxy = *static_cast<Proxy*>(data);
  const mg_request_info* info = mg_get_request_info(conn);
  std::string_view path = info->local_uri_raw != nullptr ? info->local_uri_raw : "/";
  std::string_view method = info->request_method;

  if (path == "/health") {
    examples::send_response(conn, 200, "application/json", R"({"status":"ok"})");
    return 200;
  }

  std::string body;
  if (!examples::read_body(conn, static_cast<std::size_t>(proxy.config.max_body_bytes), &body)) {
    examples::send_response(conn, 413, "application/json",
                            R"({"type":"error","error":{"type":"request_too_large"}})");
    return 413;
  }
  std::string url = proxy.upstream_base + encode_path(path);
  if (info->query_string != nullptr) url += std::string("?") + info->query_string;
  std::vector<std::string> headers;
  for (int i = 0; i < info->num_headers; ++i) {
    if (is_hop_header(info->http_headers[i].name)) continue;
    headers.push_back(std::string(info->http_headers[i].name) + ": " + info->http_headers[i].value);
  }

  examples::UpstreamResponse r = examples::UpstreamClient::for_this_thread().send(
      std::string(method), url, headers, body,
      std::chrono::milliseconds(proxy.config.upstream_timeout_ms),
      std::chrono::milliseconds(proxy.config.connect_timeout_ms));
  int status = 502;
  if (r.outcome == examples::UpstreamOutcome::kOk) {
    status = static_cast<int>(r.status);
    examples::send_response(
        conn, status, r.content_type.empty() ? "application/octet-stream" : r.content_type, r.body);
  } else {
    status = r.outcome == examples::UpstreamOutcome::kTimeout ? 504 : 502;
    json error = {{"type", "error"},
                  {"error",
                   {{"type", status == 504 ? "upstream_timeout" : "upstream_unreachable"},
                    {"message", r.error}}}};
    examples::send_response(conn, status, "application/json", error.dump());
  }
  return status;
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
  flags.add("threads", &c.threads, "worker threads (requests served at once)");
  flags.add("max-body-bytes", &c.max_body_bytes, "largest request body accepted");
  flags.add("no-instrumentation", &c.no_instrumentation,
            "forward only: no context, metrics, logs or storage (to measure the overhead)");
  if (auto exit_code = flags.parse(argc, argv)) return *exit_code;
  if (c.port < 0 || c.port > 65535) return flags.fail_setting("--port must be in 0..65535");
  if (c.threads < 1 || c.threads > 1024) return flags.fail_setting("--threads must be 1..1024");
  if (c.upstream.rfind("http://", 0) != 0 && c.upstream.rfind("https://", 0) != 0) {
    return flags.fail_setting("--upstream must be an http:// or https:// URL, not '" + c.upstream +
                              "'");
  }
  if (c.upstream_timeout_ms <= 0 || c.connect_timeout_ms <= 0) {
    return flags.fail_setting("--upstream-timeout-ms and --connect-timeout-ms must be positive");
  }
  if (c.max_body_bytes <= 0) return flags.fail_setting("--max-body-bytes must be positive");
  proxy.upstream_base = c.upstream;
  while (!proxy.upstream_base.empty() && proxy.upstream_base.back() == '/') {
    proxy.upstream_base.pop_back();
  }

  curl_global_init(CURL_GLOBAL_DEFAULT);
  examples::block_stop_signals();
  int exit_code = 0;
  try {
    examples::CivetServer http(c.host, static_cast<int>(c.port), static_cast<int>(c.threads),
                               &handle, &proxy);
    examples::write_port_file(c.port_file, http.port());
    std::fprintf(stderr, "proxy: listening on %s:%d, upstream %s\n", c.host.c_str(), http.port(),
                 proxy.upstream_base.c_str());
    examples::wait_for_stop_signal();
    http.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "proxy: %s\n", e.what());
    exit_code = 1;
  }
  curl_global_cleanup();
  return exit_code;
}
