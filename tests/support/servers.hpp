// The real servers the push integration tests talk to, each started on a free loopback port
// with its data in a temporary directory and stopped when the handle is destroyed, plus a
// small HTTP client for reading them back.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "support/process.hpp"

namespace ccobs_test {

struct RunningServer {
  std::unique_ptr<TempDir> dir;
  std::unique_ptr<ChildProcess> process;
  int port = 0;
  std::string url;                     // "http://127.0.0.1:<port>"
  std::shared_ptr<TempDir> extra_dir;  // files the server reads (certificates)
};

// Each returns a server that accepts connections, or throws std::runtime_error after a few
// tries (a free port can be taken between picking and binding it).
RunningServer start_pushgateway();
// A Pushgateway serving HTTPS with a fresh self-signed certificate for 127.0.0.1, whose PEM
// is written to `*ca_file` (inside the server's directory).
RunningServer start_pushgateway_tls(std::string* ca_file);
// A Pushgateway that answers 401 unless the request carries basic auth for user:password.
RunningServer start_pushgateway_basic_auth(const std::string& user, const std::string& password);
RunningServer start_victoria_metrics();
RunningServer start_prometheus();

struct HttpReply {
  int status = 0;  // 0: no answer
  std::string body;
};

// A request with a 10 s timeout.
HttpReply http_request(const std::string& method, const std::string& url,
                       const std::string& body = {});

// Calls `read` every 100 ms until it returns true or `timeout` has passed.
template <typename F>
bool eventually(F read, std::chrono::milliseconds timeout = std::chrono::milliseconds(15000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (read()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

}  // namespace ccobs_test
