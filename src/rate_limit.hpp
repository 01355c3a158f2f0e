// Internal: a rate limiter for the library's own warnings. When the library drops something
// it logs one warning per interval per key (the event name, usually) and counts the rest, so
// a flood of drops costs one line per interval instead of one per drop.
//
// Example:
//   static RateLimiter limiter(std::chrono::seconds(10));
//   std::uint64_t suppressed = 0;
//   if (limiter.allow("event_dropped", &suppressed)) log.warning("event_dropped", {...});
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <string_view>

#include "ccproxy/observability/clock.hpp"

namespace ccproxy::observability::detail {

// Lets at most one event per interval through for each key. Thread-safe and lock-free: each
// key maps to a slot holding the earliest time of the next allowed event, claimed with one
// compare-and-swap.
class RateLimiter {
 public:
  explicit RateLimiter(Clock::duration interval, const Clock& clock = Clock::steady()) noexcept
      : interval_(interval.count()), clock_(&clock) {}
  RateLimiter(const RateLimiter&) = delete;
  RateLimiter& operator=(const RateLimiter&) = delete;

  // True when an event under `key` may go out now. When it may and `suppressed` is given,
  // it receives how many events of the key's slot were refused since the last one allowed.
  bool allow(std::string_view key, std::uint64_t* suppressed = nullptr) noexcept {
    // Limitation: keys share kSlots slots by hash, so two keys that collide share one
    // allowance; the library uses a handful of keys per limiter, so collisions are rare.
    Slot& slot = slots_[slot_of(key)];
    const Clock::duration::rep now = clock_->now().time_since_epoch().count();
    Clock::duration::rep next = slot.next.load(std::memory_order_relaxed);
    if (now < next ||
        !slot.next.compare_exchange_strong(next, now + interval_, std::memory_order_relaxed)) {
      slot.suppressed.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    const std::uint64_t n = slot.suppressed.exchange(0, std::memory_order_relaxed);
    if (suppressed != nullptr) *suppressed = n;
    return true;
  }

  static constexpr std::size_t kSlots = 16;
  // The slot a key's allowance lives in.
  static std::size_t slot_of(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key) % kSlots;
  }

 private:
  struct Slot {
    std::atomic<Clock::duration::rep> next{std::numeric_limits<Clock::duration::rep>::min()};
    std::atomic<std::uint64_t> suppressed{0};
  };

  Clock::duration::rep interval_;
  const Clock* clock_;
  std::array<Slot, kSlots> slots_{};
};

}  // namespace ccproxy::observability::detail
