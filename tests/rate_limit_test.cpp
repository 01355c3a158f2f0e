#include "rate_limit.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace obs = ccproxy::observability;
using obs::detail::RateLimiter;
using std::chrono::seconds;

namespace {

// Two keys in different slots, and a third sharing the first one's slot.
struct Keys {
  std::string a, b, a_twin;
};
Keys pick_keys() {
  Keys k{"k0", "", ""};
  for (int i = 1; k.b.empty() || k.a_twin.empty(); ++i) {
    std::string key = "k" + std::to_string(i);
    if (RateLimiter::slot_of(key) == RateLimiter::slot_of(k.a)) {
      if (k.a_twin.empty()) k.a_twin = key;
    } else if (k.b.empty()) {
      k.b = key;
    }
  }
  return k;
}

}  // namespace

TEST(RateLimitTest, AllowsTheFirstEventThenOnePerIntervalReportingSuppressed) {
  obs::ManualClock clock;
  RateLimiter limiter(seconds(10), clock);
  std::uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.allow("drop", &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limiter.allow("drop"));
  clock.advance(seconds(10) - std::chrono::nanoseconds(1));
  EXPECT_FALSE(limiter.allow("drop"));
  clock.advance(std::chrono::nanoseconds(1));
  EXPECT_TRUE(limiter.allow("drop", &suppressed));
  EXPECT_EQ(suppressed, 2u);
  EXPECT_FALSE(limiter.allow("drop"));
}

TEST(RateLimitTest, KeysInDifferentSlotsHaveSeparateAllowances) {
  const Keys k = pick_keys();
  obs::ManualClock clock;
  RateLimiter limiter(seconds(1), clock);
  EXPECT_TRUE(limiter.allow(k.a));
  EXPECT_TRUE(limiter.allow(k.b));
  EXPECT_FALSE(limiter.allow(k.a));
  // The documented limitation: a key hashing to the same slot shares the allowance.
  EXPECT_FALSE(limiter.allow(k.a_twin));
}

TEST(RateLimitTest, LetsExactlyOneOfManyConcurrentCallersThrough) {
  obs::ManualClock clock;
  RateLimiter limiter(seconds(10), clock);
  constexpr int kThreads = 2;
  constexpr int kCalls = 10000;
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCalls; ++i) {
        if (limiter.allow("hot")) allowed.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(allowed.load(), 1);
  clock.advance(seconds(10));
  std::uint64_t suppressed = 0;
  EXPECT_TRUE(limiter.allow("hot", &suppressed));
  EXPECT_EQ(suppressed, static_cast<std::uint64_t>(kThreads * kCalls - 1));
}
