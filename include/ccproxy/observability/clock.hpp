// Monotonic clocks that the time-dependent parts of the library take as a parameter (the
// circuit breaker, the periodic pusher, request timers), so tests move time instead of
// sleeping.
//
// Example:
//   ccproxy::observability::ManualClock clock;
//   CircuitBreaker breaker(5, std::chrono::seconds(60), clock);
//   clock.advance(std::chrono::seconds(61));  // the breaker now lets a probe through
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ccproxy::observability {

// A source of monotonic time. Implementations are thread-safe.
class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;

  virtual ~Clock() = default;
  virtual time_point now() const noexcept = 0;

  // The process-wide clock reading std::chrono::steady_clock.
  static const Clock& steady() noexcept;
};

// A clock that moves only when told to. Thread-safe: reads and moves are atomic.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(time_point start = time_point{}) noexcept
      : ns_(start.time_since_epoch().count()) {}

  time_point now() const noexcept override {
    return time_point(duration(ns_.load(std::memory_order_acquire)));
  }
  void advance(duration d) noexcept { ns_.fetch_add(d.count(), std::memory_order_acq_rel); }
  void set(time_point t) noexcept {
    ns_.store(t.time_since_epoch().count(), std::memory_order_release);
  }

 private:
  std::atomic<duration::rep> ns_;
};

}  // namespace ccproxy::observability
