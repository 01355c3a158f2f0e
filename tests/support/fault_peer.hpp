// A tiny HTTP peer on 127.0.0.1 that misbehaves on purpose, for the faults a real server
// cannot be made to produce: an error status, a connection that never answers, a reset in
// the middle of a response, a body that trickles.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ccobs_test {

class FaultPeer {
 public:
  enum class Mode {
    kStatus,            // answers every request with `status` and a short body
    kNeverAnswer,       // reads the request, keeps the connection open, sends nothing
    kResetMidResponse,  // sends half a response, then resets the connection
    kSlowBody,          // sends headers, then one body byte per `step`
  };

  explicit FaultPeer(Mode mode, int status = 500,
                     std::chrono::milliseconds step = std::chrono::milliseconds(200));
  ~FaultPeer();
  FaultPeer(const FaultPeer&) = delete;
  FaultPeer& operator=(const FaultPeer&) = delete;

  int port() const { return port_; }
  // "http://127.0.0.1:<port><path>".
  std::string url(const std::string& path = "") const;
  // Complete requests received so far.
  int requests() const { return requests_.load(); }
  // Request line and headers of each request received, in order.
  std::vector<std::string> request_heads() const;

 private:
  void run();
  void serve(int fd);

  Mode mode_;
  int status_;
  std::chrono::milliseconds step_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> heads_;  // guarded by mutex_
  std::vector<int> held_;           // connections left unanswered; run() thread only
  std::thread thread_;
};

}  // namespace ccobs_test
