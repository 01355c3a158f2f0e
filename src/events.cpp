#include "ccproxy/observability/events.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "ccproxy/observability/logging.hpp"
#include "json_writer.hpp"
#include "names.hpp"
#include "rate_limit.hpp"

namespace ccproxy::observability {
std::string Event::to_json() const {
  std::string out;
  out.reserve(64 + data.size() * 32);
  out.append("{\"type\":");
  detail::append_json_string(out, type);
  out.append(",\"data\":{");
  bool first = true;
  for (const Field& f : data) {
    if (!first) out.push_back(',');
    first = false;
    detail::append_json_string(out, f.key);
    out.push_back(':');
    detail::append_json_value(out, f.value);
  }
  out.append("},\"timestamp\":\"");
  detail::append_rfc3339_ms(out, timestamp);
  out.append("\"}");
  return out;
}

struct EventSubscription::Impl {
  explicit Impl(std::size_t c) : capacity(c) {}

  const std::size_t capacity;
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Event> queue;       // guarded by mutex
  std::uint64_t unreported = 0;  // guarded by mutex: dropped since the last overflow event
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<bool> closed{false};
};

EventSubscription::EventSubscription(std::size_t capacity) {
  if (capacity == 0) throw std::invalid_argument("EventSubscription capacity must be positive");
  impl_ = std::make_unique<Impl>(capacity);
}

EventSubscription::~EventSubscription() = default;

bool EventSubscription::push(Event event) {
  bool lost = false;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (impl_->queue.size() >= impl_->capacity) {
      impl_->queue.pop_front();
      ++impl_->unreported;
      lost = true;
    }
    impl_->queue.push_back(std::move(event));
  }
  if (lost) impl_->dropped.fetch_add(1, std::memory_order_relaxed);
  impl_->cv.notify_one();
  return lost;
}

bool EventSubscription::pop(Event& out, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->mutex);
  if (timeout.count() > 0) {
    impl_->cv.wait_for(lock, timeout,
                       [&] { return !impl_->queue.empty() || impl_->unreported > 0 || closed(); });
  }
  if (impl_->unreported > 0) {
    out.type = "overflow";
    out.data = Fields{{"dropped", impl_->unreported}};
    out.timestamp = std::chrono::system_clock::now();
    impl_->unreported = 0;
    return true;
  }
  if (impl_->queue.empty()) return false;
  out = std::move(impl_->queue.front());
  impl_->queue.pop_front();
  return true;
}

void EventSubscription::close() noexcept {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->closed.store(true, std::memory_order_release);
  }
  impl_->cv.notify_all();
}

bool EventSubscription::closed() const noexcept {
  return impl_->closed.load(std::memory_order_acquire);
}

std::size_t EventSubscription::capacity() const noexcept { return impl_->capacity; }

std::size_t EventSubscription::size() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->queue.size();
}

std::uint64_t EventSubscription::dropped() const noexcept {
  return impl_->dropped.load(std::memory_order_relaxed);
}

struct EventBus::Impl {
  EventBusOptions options;
  Logger log{"ccproxy.observability.events"};
  detail::RateLimiter warn_limiter{std::chrono::seconds(10)};

  std::mutex mutex;
  std::vector<std::shared_ptr<EventSubscription>> subscribers;  // guarded by mutex
  std::shared_ptr<prometheus::Registry> registry;               // guarded by mutex

  std::atomic<std::uint64_t> published{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<prometheus::Counter*> dropped_counter{nullptr};
};

EventBus::EventBus(EventBusOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.queue_capacity == 0) {
    throw std::invalid_argument("EventBusOptions.queue_capacity must be positive");
  }
  impl_->options = options;
}

EventBus::~EventBus() {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto& s : impl_->subscribers) s->close();
}

std::shared_ptr<EventSubscription> EventBus::subscribe(std::size_t capacity) {
  auto subscription =
      std::make_shared<EventSubscription>(capacity == 0 ? impl_->options.queue_capacity : capacity);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->subscribers.push_back(subscription);
  subscriber_count_.store(impl_->subscribers.size(), std::memory_order_release);
  return subscription;
}

void EventBus::unsubscribe(const std::shared_ptr<EventSubscription>& subscription) noexcept {
  if (!subscription) return;
  subscription->close();
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto& subs = impl_->subscribers;
  subs.erase(std::remove(subs.begin(), subs.end(), subscription), subs.end());
  subscriber_count_.store(subs.size(), std::memory_order_release);
}

void EventBus::publish(std::string_view type, Fields data) noexcept {
  try {
    publish(Event{std::string(type), std::move(data), {}});
  } catch (...) {
    // Out of memory building the event: it is not published.
  }
}

void EventBus::publish(Event event) noexcept {
  impl_->published.fetch_add(1, std::memory_order_relaxed);
  if (!has_subscribers()) return;
  event.timestamp = std::chrono::system_clock::now();
  std::uint64_t lost = 0;
  try {
    // Limitation: publishers take the bus's lock while they fill the queues, so concurrent
    // publishes are serialised; each holds it for a few copies per subscriber, never for I/O.
    std::lock_guard<std::mutex> lock(impl_->mutex);
    auto& subs = impl_->subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(), [](const auto& s) { return s->closed(); }),
               subs.end());
    subscriber_count_.store(subs.size(), std::memory_order_release);
    for (std::size_t i = 0; i < subs.size(); ++i) {
      // The last subscriber takes the event itself, the others a copy.
      const bool lost_one =
          i + 1 == subs.size() ? subs[i]->push(std::move(event)) : subs[i]->push(event);
      if (lost_one) ++lost;
    }
  } catch (...) {
    // Out of memory copying the event: the remaining subscribers miss it.
  }
  if (lost == 0) return;

  const std::uint64_t total = impl_->dropped.fetch_add(lost, std::memory_order_relaxed) + lost;
  if (auto* counter = impl_->dropped_counter.load(std::memory_order_acquire)) {
    counter->Increment(static_cast<double>(lost));
  }
  std::uint64_t suppressed = 0;
  if (impl_->warn_limiter.allow("event_dropped", &suppressed)) {
    impl_->log.warning("event_dropped", {{"reason", "subscriber_queue_full"},
                                         {"dropped_total", total},
                                         {"suppressed_warnings", suppressed}});
  }
}

EventBusStats EventBus::stats() const noexcept {
  EventBusStats s;
  s.published = impl_->published.load(std::memory_order_relaxed);
  s.dropped = impl_->dropped.load(std::memory_order_relaxed);
  s.subscribers = subscriber_count_.load(std::memory_order_relaxed);
  return s;
}

void EventBus::register_metrics(std::shared_ptr<prometheus::Registry> registry,
                                std::string_view ns) {
  if (!registry) throw std::invalid_argument("EventBus::register_metrics: registry is null");
  if (!detail::is_valid_metric_name(ns)) {
    throw std::invalid_argument("EventBus::register_metrics: namespace '" + std::string(ns) +
                                "' is not a valid metric-name prefix");
  }
  auto& family = prometheus::BuildCounter()
                     .Name(std::string(ns) + "_events_dropped_total")
                     .Help("Events that slow subscribers lost because their queue was full")
                     .Register(*registry);
  auto& counter = family.Add({});
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->registry = std::move(registry);
  impl_->dropped_counter.store(&counter, std::memory_order_release);
}

}  // namespace ccproxy::observability
