#include "ccproxy/observability/events.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ccproxy/observability/logging.hpp"

namespace obs = ccproxy::observability;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

// Captures the library's own log lines.
class Capture {
 public:
  Capture() {
    obs::LoggingOptions options;
    options.level = obs::LogLevel::kDebug;
    options.line_sink = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(json::parse(line));
    };
    obs::configure_logging(options);
  }
  ~Capture() { obs::configure_logging(obs::LoggingOptions{}); }
  std::vector<json> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }

 private:
  std::mutex mutex_;
  std::vector<json> lines_;
};

}  // namespace

TEST(EventsTest, DeliversEachEventToEverySubscriberInOrder) {
  obs::EventBus bus;
  EXPECT_FALSE(bus.has_subscribers());
  auto a = bus.subscribe();
  auto b = bus.subscribe();
  EXPECT_TRUE(bus.has_subscribers());
  for (int i = 0; i < 5; ++i) bus.publish("request_start", {{"seq", i}});
  for (const auto& sub : {a, b}) {
    obs::Event e;
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(sub->try_pop(e));
      EXPECT_EQ(e.type, "request_start");
      EXPECT_EQ(e.data.find("seq")->as_int(), i);
    }
    EXPECT_FALSE(sub->try_pop(e));
    EXPECT_EQ(sub->dropped(), 0u);
  }
  EXPECT_EQ(bus.stats().published, 5u);
  EXPECT_EQ(bus.stats().dropped, 0u);
}

TEST(EventsTest, SerialisesAsOneJsonObjectWithTypeDataAndTimestamp) {
  obs::Event e{"request_complete",
               {{"request_id", "r\"1"}, {"status_code", 200}, {"cost_usd", 0.5}},
               std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123))};
  json j = json::parse(e.to_json());
  EXPECT_EQ(j["type"], "request_complete");
  EXPECT_EQ(j["data"]["request_id"], "r\"1");
  EXPECT_EQ(j["data"]["status_code"], 200);
  EXPECT_DOUBLE_EQ(j["data"]["cost_usd"].get<double>(), 0.5);
  EXPECT_EQ(j["timestamp"], "2023-11-14T22:13:20.123Z");
}

TEST(EventsTest, SlowSubscriberLosesOldestAndIsToldHowManyWhileOthersLoseNothing) {
  Capture capture;
  obs::EventBus bus(obs::EventBusOptions{4});
  auto slow = bus.subscribe();
  auto fast = bus.subscribe(100);
  for (int i = 0; i < 10; ++i) bus.publish("tick", {{"seq", i}});

  obs::Event e;
  ASSERT_TRUE(slow->try_pop(e));
  EXPECT_EQ(e.type, "overflow");
  EXPECT_EQ(e.data.find("dropped")->as_int(), 6);
  for (int i = 6; i < 10; ++i) {  // the newest four remain
    ASSERT_TRUE(slow->try_pop(e));
    EXPECT_EQ(e.type, "tick");
    EXPECT_EQ(e.data.find("seq")->as_int(), i);
  }
  EXPECT_FALSE(slow->try_pop(e));
  EXPECT_EQ(slow->dropped(), 6u);

  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(fast->try_pop(e));
    EXPECT_EQ(e.data.find("seq")->as_int(), i);
  }
  EXPECT_EQ(fast->dropped(), 0u);
  EXPECT_EQ(bus.stats().dropped, 6u);

  // One warning for the burst, not one per dropped event.
  int warnings = 0;
  for (const json& line : capture.lines()) {
    if (line["event"] == "event_dropped") {
      ++warnings;
      EXPECT_EQ(line["level"], "warning");
      EXPECT_EQ(line["logger"], "ccproxy.observability.events");
    }
  }
  EXPECT_EQ(warnings, 1);
}

TEST(EventsTest, CountsDropsInTheRegisteredPrometheusCounter) {
  auto registry = std::make_shared<prometheus::Registry>();
  obs::EventBus bus(obs::EventBusOptions{1});
  bus.register_metrics(registry, "ccproxy");
  auto sub = bus.subscribe();
  for (int i = 0; i < 4; ++i) bus.publish("tick", {});
  const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
  EXPECT_NE(text.find("ccproxy_events_dropped_total 3"), std::string::npos) << text;
  EXPECT_THROW(bus.register_metrics(registry, "9bad"), std::invalid_argument);
}

TEST(EventsTest, RejectsAZeroQueueCapacity) {
  EXPECT_THROW(obs::EventBus(obs::EventBusOptions{0}), std::invalid_argument);
}

TEST(EventsTest, StopsDeliveringToAClosedOrUnsubscribedSubscription) {
  obs::EventBus bus;
  auto a = bus.subscribe();
  auto b = bus.subscribe();
  bus.unsubscribe(a);
  b->close();
  bus.publish("tick", {});
  obs::Event e;
  EXPECT_FALSE(a->try_pop(e));
  EXPECT_FALSE(b->try_pop(e));
  EXPECT_FALSE(bus.has_subscribers());
  // A pop on a closed subscription returns at once instead of waiting out its timeout.
  EXPECT_FALSE(b->pop(e, std::chrono::hours(1)));
}

TEST(EventsTest, WakesAWaitingSubscriberWhenAnEventArrives) {
  obs::EventBus bus;
  auto sub = bus.subscribe();
  std::atomic<bool> got{false};
  std::thread reader([&] {
    obs::Event e;
    // Long timeout: the test passes only if publish wakes the waiting pop.
    if (sub->pop(e, std::chrono::hours(1)) && e.type == "request_start") got = true;
  });
  bus.publish("request_start", {{"request_id", "r1"}});
  reader.join();
  EXPECT_TRUE(got.load());
}

TEST(EventsTest, ConcurrentPublishersLoseNothingForAFastEnoughSubscriber) {
  obs::EventBus bus;
  constexpr int kPerThread = 2000;
  auto sub = bus.subscribe(2 * kPerThread);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&bus, t] {
      for (int i = 0; i < kPerThread; ++i) bus.publish("tick", {{"t", t}, {"seq", i}});
    });
  }
  for (auto& th : threads) th.join();
  std::vector<int> next(2, 0);
  obs::Event e;
  int n = 0;
  while (sub->try_pop(e)) {
    const auto t = e.data.find("t")->as_int();
    EXPECT_EQ(e.data.find("seq")->as_int(), next[t]++);
    ++n;
  }
  EXPECT_EQ(n, 2 * kPerThread);
  EXPECT_EQ(bus.stats().dropped, 0u);
}
