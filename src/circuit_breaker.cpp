#include "ccproxy/observability/circuit_breaker.hpp"

#include <stdexcept>

namespace ccproxy::observability {

std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::kClosed:
      return "closed";
    case CircuitState::kOpen:
      return "open";
    case CircuitState::kHalfOpen:
      return "half_open";
  }
  return "unknown";
}

CircuitBreaker::CircuitBreaker(int failure_threshold, Clock::duration recovery_timeout,
                               const Clock& clock)
    : failure_threshold_(failure_threshold), recovery_timeout_(recovery_timeout), clock_(clock) {
  if (failure_threshold < 1) {
    throw std::invalid_argument("failure_threshold must be at least 1");
  }
  if (recovery_timeout <= Clock::duration::zero()) {
    throw std::invalid_argument("recovery_timeout must be positive");
  }
}

CircuitState CircuitBreaker::state_locked(Clock::time_point now) const noexcept {
  if (state_ == CircuitState::kOpen && now - opened_at_ >= recovery_timeout_) {
    return CircuitState::kHalfOpen;
  }
  return state_;
}

bool CircuitBreaker::can_execute() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = state_locked(clock_.now());
  switch (state_) {
    case CircuitState::kClosed:
      return true;
    case CircuitState::kHalfOpen:
      if (!probe_in_flight_) {
        probe_in_flight_ = true;
        return true;
      }
      break;
    case CircuitState::kOpen:
      break;
  }
  ++refused_;
  return false;
}

void CircuitBreaker::record_success() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  state_ = CircuitState::kClosed;
  failures_ = 0;
  probe_in_flight_ = false;
}

bool CircuitBreaker::record_failure() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  auto now = clock_.now();
  ++failures_;
  CircuitState current = state_locked(now);
  if (current == CircuitState::kHalfOpen ||
      (current == CircuitState::kClosed && failures_ >= failure_threshold_)) {
    state_ = CircuitState::kOpen;
    opened_at_ = now;
    probe_in_flight_ = false;
    return true;
  }
  return false;
}

CircuitState CircuitBreaker::state() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return state_locked(clock_.now());
}

int CircuitBreaker::failure_count() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return failures_;
}

std::uint64_t CircuitBreaker::refused_count() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return refused_;
}

}  // namespace ccproxy::observability
