#include "ccproxy/observability/periodic_pusher.hpp"

#include <prometheus/collectable.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/pushgateway.hpp"

namespace ccproxy::observability {
namespace {

const Logger& pusher_logger() {
  static const Logger logger("ccproxy.observability.pusher");
  return logger;
}

Clock::duration backoff(Clock::duration interval, Clock::duration max_backoff,
                        std::uint64_t failures) noexcept {
  Clock::duration delay = interval;
  for (std::uint64_t i = 0; i < failures && delay < max_backoff; ++i) delay *= 2;
  return std::min(delay, max_backoff);
}

}  // namespace

PeriodicPusher::PeriodicPusher(PushFn push, PeriodicPusherOptions options, const Clock& clock,
                               PushFn remove)
    : push_(std::move(push)), remove_(std::move(remove)), options_(options), clock_(clock) {
  if (!push_) throw std::invalid_argument("push must be callable");
  if (options_.interval <= Clock::duration::zero()) {
    throw std::invalid_argument("interval must be positive");
  }
  if (options_.max_backoff <= Clock::duration::zero()) {
    throw std::invalid_argument("max_backoff must be positive");
  }

  delay_ = options_.interval;
  next_ = clock_.now() + delay_;
  thread_ = std::thread([this] { run(); });
}

PeriodicPusher::PeriodicPusher(std::shared_ptr<PushgatewayClient> client,
                               std::shared_ptr<prometheus::Collectable> registry,
                               PeriodicPusherOptions options, const Clock& clock)
    : PeriodicPusher(
          [client, registry] { return client->push_metrics(*registry, PushMethod::kPush).ok(); },
          options, clock, [client] { return client->delete_metrics().ok(); }) {
  if (!client || !registry) {
    stop();
    throw std::invalid_argument("client and registry must not be null");
  }
}

PeriodicPusher::~PeriodicPusher() { stop(); }

void PeriodicPusher::stop() noexcept {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  std::lock_guard<std::mutex> join_lock(join_mutex_);
  if (thread_.joinable()) thread_.join();
}

void PeriodicPusher::wake() noexcept { cv_.notify_all(); }

PeriodicPusherStats PeriodicPusher::stats() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

Clock::duration PeriodicPusher::current_delay() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return delay_;
}

Clock::time_point PeriodicPusher::next_push_at() const noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  return next_;
}

bool PeriodicPusher::call(const PushFn& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    pusher_logger().error("periodic_push_threw", {{"error", e.what()}});
  } catch (...) {
    pusher_logger().error("periodic_push_threw", {{"error", "unknown exception"}});
  }
  return false;
}

void PeriodicPusher::run() noexcept {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    auto now = clock_.now();
    if (now < next_) {
      // Limitation: the wait is in real time for the clock's remaining duration; a clock moved
      // by hand does not follow real time, so wake() makes the thread read it again.
      cv_.wait_for(lock, next_ - now);
      continue;
    }

    lock.unlock();
    bool ok = call(push_);
    lock.lock();

    ++stats_.attempts;
    if (ok) {
      ++stats_.succeeded;
      stats_.consecutive_failures = 0;
    } else {
      ++stats_.failed;
      ++stats_.consecutive_failures;
    }
    delay_ = backoff(options_.interval, options_.max_backoff, stats_.consecutive_failures);
    next_ = clock_.now() + delay_;
    if (!ok) {
      pusher_logger().warning(
          "periodic_push_failed",
          {{"consecutive_failures", stats_.consecutive_failures},
           {"next_push_in_ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(delay_).count()}});
    }
  }
  lock.unlock();

  bool deleting = options_.delete_on_stop && remove_;
  if (!deleting && !options_.push_on_stop) return;
  bool ok = call(deleting ? remove_ : push_);
  lock.lock();
  ++stats_.attempts;
  ++(ok ? stats_.succeeded : stats_.failed);
  if (!ok) {
    pusher_logger().warning("periodic_push_final_failed",
                            {{"action", deleting ? "delete" : "push"}});
  }
}

}  // namespace ccproxy::observability
