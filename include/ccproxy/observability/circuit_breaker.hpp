// CircuitBreaker: stops calling a failing peer for a while. CLOSED lets calls through and
// counts consecutive failures; at the threshold it turns OPEN and refuses calls until the
// recovery timeout has passed; then HALF_OPEN lets one probe through, whose success closes
// it and whose failure opens it again. A refused call is not a failure.
//
// Example:
//   ccproxy::observability::CircuitBreaker breaker(5, std::chrono::seconds(60));
//   if (breaker.can_execute()) ok ? breaker.record_success() : (void)breaker.record_failure();
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

#include "ccproxy/observability/clock.hpp"

namespace ccproxy::observability {

enum class CircuitState { kClosed = 0, kOpen = 1, kHalfOpen = 2 };

// "closed", "open", "half_open".
std::string_view to_string(CircuitState state) noexcept;

// Thread-safe: every method may be called from any thread; a mutex guards the state.
class CircuitBreaker {
 public:
  // Throws std::invalid_argument naming failure_threshold (< 1) or recovery_timeout (<= 0).
  // `clock` must outlive the breaker.
  explicit CircuitBreaker(int failure_threshold = 5,
                          Clock::duration recovery_timeout = std::chrono::seconds(60),
                          const Clock& clock = Clock::steady());

  // True when a call may go ahead. In OPEN past the recovery timeout this moves to
  // HALF_OPEN and admits one probe; further calls are refused until the probe reports.
  bool can_execute() noexcept;
  // Closes the circuit and resets the failure count.
  void record_success() noexcept;
  // Counts a failure; returns true when this failure opened the circuit.
  bool record_failure() noexcept;

  // The state as of now (OPEN past its recovery timeout reads as HALF_OPEN).
  CircuitState state() const noexcept;
  int failure_count() const noexcept;
  // Calls refused since construction.
  std::uint64_t refused_count() const noexcept;
  int failure_threshold() const noexcept { return failure_threshold_; }
  Clock::duration recovery_timeout() const noexcept { return recovery_timeout_; }

 private:
  CircuitState state_locked(Clock::time_point now) const noexcept;

  const int failure_threshold_;
  const Clock::duration recovery_timeout_;
  const Clock& clock_;
  mutable std::mutex mutex_;
  CircuitState state_ = CircuitState::kClosed;  // guarded by mutex_
  int failures_ = 0;                            // guarded by mutex_
  bool probe_in_flight_ = false;                // guarded by mutex_
  Clock::time_point opened_at_{};               // guarded by mutex_
  std::uint64_t refused_ = 0;                   // guarded by mutex_
};

}  // namespace ccproxy::observability
