// demo_upstream: a stand-in for an LLM API, so the proxy example and the demo run without
// network. POST /v1/messages answers like the Anthropic Messages API: the model echoed from
// the request body, a text block, and a `usage` object with input_tokens, output_tokens,
// cache_read_input_tokens and cache_creation_input_tokens. Latency and error rate are
// configurable; with the same --seed the n-th request gets the same latency, outcome and
// token counts on every run.
//
// Two request headers override the draw for one request, for tests: `X-Demo-Status: 503`
// answers with that status, `X-Demo-Delay-Ms: 1500` waits that long first.
//
// Each request is printed to stdout as one JSON line (request id and traceparent as
// received, model, status), so a test can check what the proxy forwarded.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "civet_server.hpp"
#include "flags.hpp"

namespace examples = ccproxy::observability::examples;
using nlohmann::json;

namespace {

struct Config {
  std::string host = "127.0.0.1";
  std::int64_t port = 8081;
  std::string port_file;
  std::int64_t threads = 32;
  double latency_ms = 20.0;
  double jitter_ms = 10.0;
  double error_rate = 0.0;
  std::int64_t seed = 1;
  bool quiet = false;
};

// splitmix64: a tiny, well-mixed generator; one per request, seeded from (seed, n).
class Draw {
 public:
  explicit Draw(std::uint64_t state) : state_(state) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  std::int64_t below(std::int64_t n) { return static_cast<std::int64_t>(next() % n); }

 private:
  std::uint64_t state_;
};

struct Server {
  Config config;
  std::atomic<std::uint64_t> counter{0};
  std::mutex out_mutex;
};

std::string header(mg_connection* conn, const char* name) {
  const char* v = mg_get_header(conn, name);
  return v == nullptr ? std::string() : std::string(v);
}

std::string error_body(std::string_view type, std::string_view message) {
  json body = {{"type", "error"}, {"error", {{"type", type}, {"message", message}}}};
  return body.dump();
}

// Rough token count of the request's text: one token per four bytes of message content.
std::int64_t estimate_input_tokens(const json& request) {
  std::size_t bytes = 0;
  auto count = [&bytes](const json& content) {
    if (content.is_string()) {
      bytes += content.get_ref<const std::string&>().size();
    } else if (content.is_array()) {
      for (const json& block : content) {
        if (block.is_object() && block.contains("text") && block["text"].is_string()) {
          bytes += block["text"].get_ref<const std::string&>().size();
        }
      }
    }
  };
  if (request.contains("system")) count(request["system"]);
  if (request.contains("messages") && request["messages"].is_array()) {
    for (const json& m : request["messages"]) {
      if (m.is_object() && m.contains("content")) count(m["content"]);
    }
  }
  return 8 + static_cast<std::int64_t>(bytes / 4);
}

int handle_messages(mg_connection* conn, Server& server) {
  std::string body;
  if (!examples::read_body(conn, 4 * 1024 * 1024, &body)) {
    examples::send_response(conn, 413, "application/json",
                            error_body("request_too_large", "body over 4 MiB"));
    return 413;
  }
  json request = json::parse(body, nullptr, false);
  if (request.is_discarded() || !request.is_object() || !request.contains("model") ||
      !request["model"].is_string()) {
    examples::send_response(conn, 400, "application/json",
                            error_body("invalid_request_error", "body needs a string 'model'"));
    return 400;
  }
  const std::string model = request["model"].get<std::string>();

  std::uint64_t n = server.counter.fetch_add(1);
  Draw draw(static_cast<std::uint64_t>(server.config.seed) * 0x100000001b3ULL + n);
  double delay_ms = server.config.latency_ms + server.config.jitter_ms * draw.unit();
  bool failed = draw.unit() < server.config.error_rate;
  int status = failed ? (draw.below(2) == 0 ? 529 : 500) : 200;
  if (std::string forced = header(conn, "X-Demo-Delay-Ms"); !forced.empty()) {
    delay_ms = std::atof(forced.c_str());
  }
  if (std::string forced = header(conn, "X-Demo-Status"); !forced.empty()) {
    status = std::atoi(forced.c_str());
  }
  std::int64_t max_tokens = request.value("max_tokens", 1024);
  std::int64_t input_tokens = estimate_input_tokens(request);
  std::int64_t output_tokens = std::min<std::int64_t>(max_tokens, 16 + draw.below(240));
  std::int64_t cache_read = draw.below(4) == 0 ? 64 + draw.below(512) : 0;
  std::int64_t cache_creation = draw.below(8) == 0 ? 32 + draw.below(256) : 0;

  if (delay_ms > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<long>(delay_ms * 1000)));
  }

  std::string request_id = header(conn, "X-Request-ID");
  if (!server.config.quiet) {
    json line = {{"event", "upstream_request"},
                 {"n", n},
                 {"request_id", request_id},
                 {"traceparent", header(conn, "traceparent")},
                 {"model", model},
                 {"status", status}};
    std::lock_guard<std::mutex> lock(server.out_mutex);
    std::fprintf(stdout, "%s\n", line.dump().c_str());
    std::fflush(stdout);
  }

  if (status != 200) {
    const char* type = status == 529 ? "overloaded_error" : "api_error";
    examples::send_response(conn, status, "application/json",
                            error_body(type, "simulated upstream failure"));
    return status;
  }
  char id[32];
  std::snprintf(id, sizeof id, "msg_%016llx", static_cast<unsigned long long>(draw.next()));
  json response = {
      {"id", id},
      {"type", "message"},
      {"role", "assistant"},
      {"model", model},
      {"content", json::array({{{"type", "text"}, {"text", "Hello from demo_upstream."}}})},
      {"stop_reason", "end_turn"},
      {"stop_sequence", nullptr},
      {"usage",
       {{"input_tokens", input_tokens},
        {"output_tokens", output_tokens},
        {"cache_read_input_tokens", cache_read},
        {"cache_creation_input_tokens", cache_creation}}}};
  std::string extra;
  if (!request_id.empty()) extra = "request-id: " + request_id + "\r\n";
  examples::send_response(conn, 200, "application/json", response.dump(), extra);
  return 200;
}

int handle(mg_connection* conn, void* data) {
  auto& server = *static_cast<Server*>(data);
  const mg_request_info* info = mg_get_request_info(conn);
  std::string_view path = info->local_uri != nullptr ? info->local_uri : "";
  std::string_view method = info->request_method;
  if (path == "/health") {
    examples::send_response(conn, 200, "application/json", R"({"status":"ok"})");
    return 200;
  }
  if (path == "/v1/messages") {
    if (method != "POST") {
      examples::send_response(conn, 405, "application/json",
                              error_body("invalid_request_error", "use POST"));
      return 405;
    }
    return handle_messages(conn, server);
  }
  examples::send_response(conn, 404, "application/json",
                          error_body("not_found_error", "no such endpoint"));
  return 404;
}

}  // namespace

int main(int argc, char** argv) {
  Server server;
  Config& c = server.config;
  examples::FlagSet flags(
      "demo_upstream",
      "A stand-in LLM API: POST /v1/messages answers with a JSON body carrying a usage\n"
      "object. Deterministic for a given --seed (the n-th request always draws the same).");
  flags.add("host", &c.host, "address to listen on");
  flags.add("port", &c.port, "port to listen on (0: a free one, see --port-file)");
  flags.add("port-file", &c.port_file, "file to write the bound port to");
  flags.add("threads", &c.threads, "worker threads (requests served at once)");
  flags.add("latency-ms", &c.latency_ms, "base latency of each answer in milliseconds");
  flags.add("jitter-ms", &c.jitter_ms, "extra latency drawn uniformly from [0, jitter-ms)");
  flags.add("error-rate", &c.error_rate, "share of requests answered with 500 or 529, 0..1");
  flags.add("seed", &c.seed, "seed of the per-request draws");
  flags.add("quiet", &c.quiet, "do not print a line per request");
  if (auto exit_code = flags.parse(argc, argv)) return *exit_code;
  if (c.port < 0 || c.port > 65535) return flags.fail_setting("--port must be in 0..65535");
  if (c.threads < 1 || c.threads > 1024) return flags.fail_setting("--threads must be 1..1024");
  if (c.latency_ms < 0 || c.jitter_ms < 0) {
    return flags.fail_setting("--latency-ms and --jitter-ms must not be negative");
  }
  if (!(c.error_rate >= 0.0 && c.error_rate <= 1.0)) {
    return flags.fail_setting("--error-rate must be in 0..1");
  }

  examples::block_stop_signals();
  try {
    examples::CivetServer http(c.host, static_cast<int>(c.port), static_cast<int>(c.threads),
                               &handle, &server);
    examples::write_port_file(c.port_file, http.port());
    std::fprintf(stderr, "demo_upstream: listening on %s:%d\n", c.host.c_str(), http.port());
    examples::wait_for_stop_signal();
    http.stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "demo_upstream: %s\n", e.what());
    return 1;
  }
  return 0;
}
