// Test support: free loopback ports, child processes (the real servers the integration tests
// start), and small HTTP helpers for reading servers back.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <sys/types.h>

namespace ccobs_test {

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// A child process, killed (SIGTERM, then SIGKILL) and reaped when destroyed. Its standard
// output and error go to `log_file` (or /dev/null).
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log_file = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends SIGTERM, waits up to `grace`, then SIGKILL. Returns the exit status (or -signal).
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(3000));

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool reaped_ = false;
};

// Runs a shell command, feeds it `input`, returns its exit code and fills `output` with what
// it printed (stdout and stderr).
int run_command(const std::string& command, const std::string& input, std::string* output);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents when destroyed.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace ccobs_test
