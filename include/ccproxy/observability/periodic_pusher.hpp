// PeriodicPusher: a background thread that pushes every interval, backs off exponentially
// after failures, pushes (or deletes the group) once more when stopped, and joins in its
// destructor. Recording threads never wait for it.
//
// Example:
//   ccproxy::observability::PeriodicPusher pusher([&m] { return m.push_to_gateway(); },
//                                                 {std::chrono::seconds(15)});
//   // ... on shutdown the destructor pushes once more and joins
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "ccproxy/observability/clock.hpp"

namespace prometheus {
class Collectable;
}  // namespace prometheus

namespace ccproxy::observability {

class PushgatewayClient;

struct PeriodicPusherOptions {
  // Time between pushes while they succeed; the first push comes one interval after start.
  Clock::duration interval = std::chrono::seconds(60);
  // After n consecutive failures the next push waits min(interval * 2^n, max_backoff).
  Clock::duration max_backoff = std::chrono::seconds(300);
  // On stop: push once more (push_on_stop), or, when delete_on_stop is set and a delete
  // callable is given, delete the group instead (batch jobs that leave nothing behind).
  bool push_on_stop = true;
  bool delete_on_stop = false;
};

struct PeriodicPusherStats {
  std::uint64_t attempts = 0;  // periodic pushes, the final one included
  std::uint64_t succeeded = 0;
  std::uint64_t failed = 0;  // returned false or threw
  std::uint64_t consecutive_failures = 0;
};

// Thread-safe: stop(), wake() and the getters may be called from any thread.
class PeriodicPusher {
 public:
  using PushFn = std::function<bool()>;

  // Starts the thread. `push` returns true on success (an exception counts as a failure);
  // `remove` deletes the group on stop when options.delete_on_stop is set. Throws
  // std::invalid_argument naming interval or max_backoff when not positive, or push when
  // empty. `clock` must outlive the pusher.
  explicit PeriodicPusher(PushFn push, PeriodicPusherOptions options = {},
                          const Clock& clock = Clock::steady(), PushFn remove = {});
  // Pushes `registry` through `client` (kPush; delete_metrics() on stop when asked).
  PeriodicPusher(std::shared_ptr<PushgatewayClient> client,
                 std::shared_ptr<prometheus::Collectable> registry,
                 PeriodicPusherOptions options = {}, const Clock& clock = Clock::steady());
  // stop().
  ~PeriodicPusher();
  PeriodicPusher(const PeriodicPusher&) = delete;
  PeriodicPusher& operator=(const PeriodicPusher&) = delete;

  // Ends the thread after the final push or delete and joins it. Idempotent.
  void stop() noexcept;
  // Makes the thread read the clock again now; for clocks that are moved by hand.
  void wake() noexcept;

  PeriodicPusherStats stats() const noexcept;
  // The delay the thread waits before its next push.
  Clock::duration current_delay() const noexcept;
  Clock::time_point next_push_at() const noexcept;

 private:
  void run() noexcept;
  bool call(const PushFn& fn) noexcept;

  PushFn push_;
  PushFn remove_;
  const PeriodicPusherOptions options_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;      // guarded by mutex_
  PeriodicPusherStats stats_;  // guarded by mutex_
  Clock::duration delay_{};    // guarded by mutex_
  Clock::time_point next_{};   // guarded by mutex_
  std::mutex join_mutex_;
  std::thread thread_;
};

}  // namespace ccproxy::observability
