// Event bus: request lifecycle events (`request_start`, `request_complete`, `request_error`)
// delivered to subscribers, for example a Server-Sent-Events endpoint that streams them to a
// dashboard. Each subscriber owns a bounded queue; publishing never waits for a subscriber.
//
// Example:
//   auto subscription = bus.subscribe();                 // ccproxy::observability::EventBus bus;
//   ccproxy::observability::Event event;
//   while (subscription->pop(event, std::chrono::seconds(15))) send_sse(event.to_json());
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ccproxy/observability/fields.hpp"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

// One event. Plain value type, not synchronised.
struct Event {
  std::string type;
  Fields data;
  std::chrono::system_clock::time_point timestamp{};

  // {"type":"...","data":{...},"timestamp":"<RFC 3339 UTC, milliseconds>"} on one line.
  std::string to_json() const;
};

struct EventBusOptions {
  // Events a subscriber's queue holds before the oldest is dropped.
  std::size_t queue_capacity = 100;
};

struct EventBusStats {
  std::uint64_t published = 0;  // events given to publish()
  std::uint64_t dropped = 0;    // events subscribers lost because their queue was full
  std::size_t subscribers = 0;
};

class EventBus;

// A subscriber's end: a bounded queue the bus fills and the subscriber drains. Thread-safe:
// the bus pushes from any thread while one or more threads pop.
class EventSubscription {
 public:
  // Throws std::invalid_argument when capacity is 0.
  explicit EventSubscription(std::size_t capacity);
  ~EventSubscription();
  EventSubscription(const EventSubscription&) = delete;
  EventSubscription& operator=(const EventSubscription&) = delete;

  // Takes the next event, waiting up to `timeout` for one. After events were dropped, the
  // next pop returns an `overflow` event whose data holds `dropped` (how many were lost
  // since the last one reported) before the events that remain. False on timeout or when
  // the subscription is closed and empty.
  bool pop(Event& out, std::chrono::milliseconds timeout);
  bool try_pop(Event& out) { return pop(out, std::chrono::milliseconds(0)); }

  // Stops delivery and wakes a waiting pop(); the bus forgets the subscription.
  void close() noexcept;
  bool closed() const noexcept;

  std::size_t capacity() const noexcept;
  std::size_t size() const;
  // Events this subscription lost in total.
  std::uint64_t dropped() const noexcept;

  struct Impl;

 private:
  friend class EventBus;
  // Queues `event`, dropping the oldest when full. Returns true when one was dropped.
  bool push(Event event);

  std::unique_ptr<Impl> impl_;
};

// Fans events out to subscribers. Thread-safe: publish, subscribe and unsubscribe may be
// called from any thread. publish() is noexcept and never waits for a subscriber: it only
// takes short locks that no one holds while waiting.
class EventBus {
 public:
  // Throws std::invalid_argument when queue_capacity is 0.
  explicit EventBus(EventBusOptions options = {});
  ~EventBus();
  EventBus(const EventBus&) = delete;
  EventBus& operator=(const EventBus&) = delete;

  // A new subscription with a queue of `capacity` events (0: the bus's queue_capacity).
  std::shared_ptr<EventSubscription> subscribe(std::size_t capacity = 0);
  void unsubscribe(const std::shared_ptr<EventSubscription>& subscription) noexcept;
  // One atomic load: lets a publisher skip building an event nobody would receive.
  bool has_subscribers() const noexcept {
    return subscriber_count_.load(std::memory_order_acquire) > 0;
  }

  // Stamps the event with the current time and queues a copy for every subscriber. A full
  // queue loses its oldest event; the loss is counted and logged (one warning per 10 s).
  void publish(std::string_view type, Fields data) noexcept;
  void publish(Event event) noexcept;

  EventBusStats stats() const noexcept;
  // Registers `<ns>_events_dropped_total` in `registry` and counts drops there from now on.
  // Throws std::invalid_argument naming a namespace that is not a valid metric-name prefix.
  void register_metrics(std::shared_ptr<prometheus::Registry> registry, std::string_view ns);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  std::atomic<std::size_t> subscriber_count_{0};
};

}  // namespace ccproxy::observability
