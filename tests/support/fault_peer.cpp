#include "support/fault_peer.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ccobs_test {
namespace {

// Waits up to `ms` for `fd` to be readable.
bool readable(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) > 0;
}

bool send_all(int fd, const std::string& data) {
  std::size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

FaultPeer::FaultPeer(Mode mode, int status, std::chrono::milliseconds step)
    : mode_(mode), status_(status), step_(step) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (listen_fd_ < 0) throw std::runtime_error("socket failed");
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listen_fd_, 16) != 0) {
    ::close(listen_fd_);
    throw std::runtime_error("bind/listen failed");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  thread_ = std::thread([this] { run(); });
}

FaultPeer::~FaultPeer() {
  stop_ = true;
  thread_.join();
  for (int fd : held_) ::close(fd);
  ::close(listen_fd_);
}

std::string FaultPeer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

std::vector<std::string> FaultPeer::request_heads() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return heads_;
}

void FaultPeer::run() {
  while (!stop_) {
    if (!readable(listen_fd_, 50)) continue;
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) continue;
    serve(fd);
  }
}

void FaultPeer::serve(int fd) {
  // Keep-alive: one connection may carry several requests.
  std::string buffer;
  for (;;) {
    std::size_t head_end;
    while ((head_end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (stop_ || !readable(fd, 100)) {
        if (stop_) break;
        continue;
      }
      char chunk[4096];
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) {
        ::close(fd);
        return;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    if (stop_) break;
    std::string head = buffer.substr(0, head_end);
    std::size_t length = 0;
    for (const char* key : {"Content-Length:", "content-length:"}) {
      auto pos = head.find(key);
      if (pos != std::string::npos) length = std::strtoul(head.c_str() + pos + 15, nullptr, 10);
    }
    while (buffer.size() < head_end + 4 + length && !stop_) {
      if (!readable(fd, 100)) continue;
      char chunk[4096];
      ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
      if (n <= 0) break;
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    buffer.erase(0, std::min(buffer.size(), head_end + 4 + length));
    {
      std::lock_guard<std::mutex> lock(mutex_);
      heads_.push_back(head);
    }
    ++requests_;

    switch (mode_) {
      case Mode::kStatus: {
        std::string body = "fault peer says " + std::to_string(status_) + "\n";
        if (!send_all(fd, "HTTP/1.1 " + std::to_string(status_) +
                              " Fault\r\nContent-Type: text/plain\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body)) {
          ::close(fd);
          return;
        }
        continue;  // next request on the same connection
      }
      case Mode::kNeverAnswer:
        held_.push_back(fd);
        return;
      case Mode::kResetMidResponse: {
        send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\npartial");
        linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        ::close(fd);
        return;
      }
      case Mode::kSlowBody: {
        bool ok = send_all(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        for (int i = 0; ok && i < 1000 && !stop_; ++i) {
          std::this_thread::sleep_for(step_);
          ok = send_all(fd, "x");
        }
        ::close(fd);
        return;
      }
    }
  }
  ::close(fd);
}

}  // namespace ccobs_test
