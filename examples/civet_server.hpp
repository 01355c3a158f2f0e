// Small helpers the examples share around civetweb: starting a server on a loopback port
// (port 0 picks a free one), reading a request body, answering with a complete response, and
// waiting for SIGINT or SIGTERM.
//
// Example:
//   block_stop_signals();                    // before any thread starts
//   CivetServer server("127.0.0.1", 0, 8, &handle, &state);
//   wait_for_stop_signal();
#pragma once

#include <civetweb.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ccproxy::observability::examples {

// Blocks SIGINT and SIGTERM in the calling thread; threads started afterwards inherit the
// mask, so only wait_for_stop_signal() sees them.
inline void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Returns the signal that arrived (SIGINT or SIGTERM).
inline int wait_for_stop_signal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  int signal = 0;
  sigwait(&set, &signal);
  return signal;
}

inline const char* status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 413:
      return "Payload Too Large";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 529:
      return "Overloaded";
    default:
      return status < 400 ? "OK" : "Error";
  }
}

// Reads the whole request body, up to `max_bytes`. False when it is larger or the client
// went away.
inline bool read_body(mg_connection* conn, std::size_t max_bytes, std::string* body) {
  body->clear();
  char buf[16384];
  for (;;) {
    int n = mg_read(conn, buf, sizeof buf);
    if (n < 0) return false;
    if (n == 0) return true;
    if (body->size() + static_cast<std::size_t>(n) > max_bytes) return false;
    body->append(buf, static_cast<std::size_t>(n));
  }
}

// Writes a complete response with Content-Length, so the connection can be kept alive.
// `extra_headers` are full header lines, each ending in "\r\n".
inline void send_response(mg_connection* conn, int status, std::string_view content_type,
                          std::string_view body, const std::string& extra_headers = {}) {
  std::string head = "HTTP/1.1 " + std::to_string(status) + " " + status_text(status) + "\r\n";
  head += "Content-Type: " + std::string(content_type) + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += extra_headers;
  head += "\r\n";
  // One write: a separate small write for the body waits for the client's delayed ACK
  // (Nagle), adding tens of milliseconds per response.
  head.append(body.data(), body.size());
  mg_write(conn, head.data(), head.size());
}

// A civetweb server listening on host:port with `threads` worker threads; every request goes
// to `handler`. Stopped (all handlers finished) when destroyed. Thread-safe after start.
class CivetServer {
 public:
  CivetServer(const std::string& host, int port, int threads, mg_request_handler handler,
              void* handler_data) {
    mg_init_library(0);
    std::string ports = host + ":" + std::to_string(port);
    std::string num_threads = std::to_string(threads);
    const char* options[] = {"listening_ports",
                             ports.c_str(),
                             "num_threads",
                             num_threads.c_str(),
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             "30000",
                             "request_timeout_ms",
                             "60000",
                             nullptr};
    mg_callbacks callbacks{};
    callbacks.log_message = [](const mg_connection*, const char* message) {
      std::fprintf(stderr, "civetweb: %s\n", message);
      return 1;
    };
    ctx_ = mg_start(&callbacks, nullptr, options);
    if (ctx_ == nullptr) {
      throw std::invalid_argument("port: cannot listen on " + ports);
    }
    mg_set_request_handler(ctx_, "/", handler, handler_data);
    mg_server_port bound[4] = {};
    if (mg_get_server_ports(ctx_, 4, bound) > 0) port_ = bound[0].port;
  }
  ~CivetServer() { stop(); }
  CivetServer(const CivetServer&) = delete;
  CivetServer& operator=(const CivetServer&) = delete;

  int port() const { return port_; }
  // Stops accepting and waits for every handler to return. Idempotent.
  void stop() {
    if (ctx_ != nullptr) mg_stop(ctx_);
    ctx_ = nullptr;
  }

 private:
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// Writes the bound port to `path` (when not empty) so a script that started the server with
// port 0 can find it.
inline void write_port_file(const std::string& path, int port) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());
}

}  // namespace ccproxy::observability::examples
