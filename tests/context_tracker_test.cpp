#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <thread>
#include <vector>

#include "ccproxy/observability/context.hpp"

namespace obs = ccproxy::observability;
using nlohmann::json;
using std::chrono::seconds;

TEST(ContextTrackerTest, AddsGetsAndRemovesRequests) {
  obs::ManualClock clock;
  obs::ContextTracker tracker(clock);
  const auto h1 = tracker.add_context("r1", {{"method", "POST"}, {"path", "/v1/messages"}});
  clock.advance(seconds(1));
  const auto h2 = tracker.add_context("r2", {{"method", "GET"}});
  EXPECT_EQ(tracker.get_active_count(), 2u);

  auto r1 = tracker.get_context("r1");
  ASSERT_TRUE(r1.has_value());
  EXPECT_EQ(r1->fields.find("path")->as_string(), "/v1/messages");
  EXPECT_EQ(r1->started, obs::Clock::time_point{});
  EXPECT_FALSE(tracker.get_context("missing").has_value());

  auto all = tracker.get_all_active_contexts();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].request_id, "r1");  // oldest first
  EXPECT_EQ(all[1].request_id, "r2");

  EXPECT_TRUE(tracker.remove_context(h1));
  EXPECT_FALSE(tracker.remove_context(h1));
  EXPECT_TRUE(tracker.remove_context(std::string_view("r2")));
  EXPECT_FALSE(tracker.remove_context(h2));
  EXPECT_EQ(tracker.get_active_count(), 0u);
}

TEST(ContextTrackerTest, KeepsTwoRequestsThatShareAnIdApart) {
  obs::ContextTracker tracker;
  const auto a = tracker.add_context("dup");
  const auto b = tracker.add_context("dup");
  EXPECT_EQ(tracker.get_active_count(), 2u);
  EXPECT_TRUE(tracker.remove_context(a));
  EXPECT_EQ(tracker.get_active_count(), 1u);
  EXPECT_TRUE(tracker.remove_context(b));
  EXPECT_EQ(tracker.get_active_count(), 0u);
}

TEST(ContextTrackerTest, CleanupDropsOnlyStaleRequestsCountsAndWarnsOnce) {
  std::mutex mutex;
  std::vector<json> lines;
  obs::LoggingOptions options;
  options.line_sink = [&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mutex);
    lines.push_back(json::parse(line));
  };
  obs::configure_logging(options);

  auto registry = std::make_shared<prometheus::Registry>();
  obs::ManualClock clock;
  obs::ContextTracker tracker(clock);
  tracker.register_metrics(registry, "ccproxy");
  tracker.add_context("old1");
  tracker.add_context("old2");
  clock.advance(seconds(200));
  tracker.add_context("young");
  clock.advance(seconds(101));  // old ones are 301 s old, young 101 s

  EXPECT_EQ(tracker.cleanup_stale_contexts(), 2u);
  EXPECT_EQ(tracker.get_active_count(), 1u);
  EXPECT_TRUE(tracker.get_context("young").has_value());
  EXPECT_EQ(tracker.cleanup_stale_contexts(), 0u);
  EXPECT_EQ(tracker.cleanup_stale_contexts(seconds(100)), 1u);
  EXPECT_EQ(tracker.stale_removed_total(), 3u);
  obs::configure_logging(obs::LoggingOptions{});

  // The first cleanup warned; the second drop came within 10 s and was rate-limited.
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0]["event"], "stale_contexts_removed");
  EXPECT_EQ(lines[0]["level"], "warning");
  EXPECT_EQ(lines[0]["logger"], "ccproxy.observability.context");
  EXPECT_EQ(lines[0]["removed"], 2);
  EXPECT_EQ(lines[0]["active"], 1);
  const std::string text = prometheus::TextSerializer().Serialize(registry->Collect());
  EXPECT_NE(text.find("ccproxy_stale_contexts_removed_total 3"), std::string::npos) << text;
  EXPECT_THROW(tracker.register_metrics(registry, "bad-ns"), std::invalid_argument);
}

TEST(ContextTrackerTest, StaysExactUnderConcurrentAddsAndRemoves) {
  obs::ContextTracker tracker;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&tracker, t] {
      for (int i = 0; i < 10000; ++i) {
        const auto h = tracker.add_context("t" + std::to_string(t) + "-" + std::to_string(i));
        if (i % 100 == 0) (void)tracker.get_all_active_contexts();
        EXPECT_TRUE(tracker.remove_context(h));
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(tracker.get_active_count(), 0u);
  EXPECT_TRUE(tracker.get_all_active_contexts().empty());
}

TEST(ContextTrackerTest, GlobalTrackerSeesWhatAnotherCallAdded) {
  const auto handle = obs::get_context_tracker().add_context("global-1");
  EXPECT_TRUE(obs::get_context_tracker().get_context("global-1").has_value());
  EXPECT_TRUE(obs::get_context_tracker().remove_context(handle));
}
