#include "ccproxy/observability/periodic_pusher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>

namespace obs = ccproxy::observability;
using std::chrono::seconds;

namespace {

// Waits (at most 10 s of real time) until the pusher has made `n` attempts.
bool wait_attempts(const obs::PeriodicPusher& p, std::uint64_t n) {
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (p.stats().attempts < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Moves the clock to the pusher's next due time and waits for that push.
bool step(obs::ManualClock& clock, obs::PeriodicPusher& p) {
  auto before = p.stats().attempts;
  clock.set(p.next_push_at());
  p.wake();
  return wait_attempts(p, before + 1);
}

obs::PeriodicPusherOptions options(seconds interval, seconds max_backoff) {
  obs::PeriodicPusherOptions o;
  o.interval = interval;
  o.max_backoff = max_backoff;
  return o;
}

}  // namespace

TEST(PeriodicPusherTest, PushesOncePerIntervalWhenClockAdvances) {
  obs::ManualClock clock;
  std::atomic<int> pushes{0};
  obs::PeriodicPusher pusher([&] { return ++pushes, true; }, options(seconds(60), seconds(300)),
                             clock);

  clock.advance(seconds(59));
  pusher.wake();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(pushes.load(), 0);

  clock.advance(seconds(1));
  pusher.wake();
  ASSERT_TRUE(wait_attempts(pusher, 1));
  ASSERT_TRUE(step(clock, pusher));

  EXPECT_EQ(pushes.load(), 2);
  EXPECT_EQ(pusher.current_delay(), seconds(60));
  EXPECT_EQ(pusher.next_push_at(), clock.now() + seconds(60));
}

TEST(PeriodicPusherTest, DoublesDelayUpToMaximumWhenPushesFailAndResetsOnSuccess) {
  obs::ManualClock clock;
  std::atomic<bool> succeed{false};
  obs::PeriodicPusher pusher([&] { return succeed.load(); }, options(seconds(60), seconds(300)),
                             clock);

  std::vector<obs::Clock::duration> delays;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(step(clock, pusher));
    delays.push_back(pusher.current_delay());
  }
  succeed = true;
  ASSERT_TRUE(step(clock, pusher));

  std::vector<obs::Clock::duration> want{seconds(120), seconds(240), seconds(300), seconds(300)};
  EXPECT_EQ(delays, want);
  EXPECT_EQ(pusher.current_delay(), seconds(60));
  auto stats = pusher.stats();
  EXPECT_EQ(stats.failed, 4u);
  EXPECT_EQ(stats.succeeded, 1u);
  EXPECT_EQ(stats.consecutive_failures, 0u);
}

TEST(PeriodicPusherTest, CountsExceptionAsFailureWhenPushThrows) {
  obs::ManualClock clock;
  obs::PeriodicPusher pusher([]() -> bool { throw std::runtime_error("boom"); },
                             options(seconds(10), seconds(100)), clock);

  ASSERT_TRUE(step(clock, pusher));

  EXPECT_EQ(pusher.stats().failed, 1u);
  EXPECT_EQ(pusher.current_delay(), seconds(20));
}

TEST(PeriodicPusherTest, PushesOnceMoreWhenStopped) {
  obs::ManualClock clock;
  std::atomic<int> pushes{0};
  std::atomic<int> deletes{0};
  {
    obs::PeriodicPusher pusher([&] { return ++pushes, true; }, options(seconds(60), seconds(300)),
                               clock, [&] { return ++deletes, true; });
  }

  EXPECT_EQ(pushes.load(), 1);
  EXPECT_EQ(deletes.load(), 0);
}

TEST(PeriodicPusherTest, DeletesInsteadOfPushingWhenDeleteOnStopIsSet) {
  obs::ManualClock clock;
  std::atomic<int> pushes{0};
  std::atomic<int> deletes{0};
  auto o = options(seconds(60), seconds(300));
  o.delete_on_stop = true;
  obs::PeriodicPusher pusher([&] { return ++pushes, true; }, o, clock,
                             [&] { return ++deletes, true; });

  pusher.stop();
  pusher.stop();  // idempotent

  EXPECT_EQ(pushes.load(), 0);
  EXPECT_EQ(deletes.load(), 1);
  EXPECT_EQ(pusher.stats().attempts, 1u);
}

TEST(PeriodicPusherTest, DoesNothingOnStopWhenFinalPushIsDisabled) {
  obs::ManualClock clock;
  std::atomic<int> pushes{0};
  auto o = options(seconds(60), seconds(300));
  o.push_on_stop = false;
  obs::PeriodicPusher pusher([&] { return ++pushes, true; }, o, clock);

  pusher.stop();

  EXPECT_EQ(pushes.load(), 0);
}

TEST(PeriodicPusherTest, ThrowsInvalidArgumentWhenOptionsAreInvalid) {
  auto push = [] { return true; };
  EXPECT_THROW(obs::PeriodicPusher(push, options(seconds(0), seconds(300))), std::invalid_argument);
  EXPECT_THROW(obs::PeriodicPusher(push, options(seconds(60), seconds(-1))), std::invalid_argument);
  EXPECT_THROW(obs::PeriodicPusher(obs::PeriodicPusher::PushFn{}), std::invalid_argument);
}

TEST(PeriodicPusherTest, NeverBlocksCallersWhenPushIsSlow) {
  obs::ManualClock clock;
  std::atomic<bool> release{false};
  std::atomic<bool> in_push{false};
  auto o = options(seconds(1), seconds(10));
  o.push_on_stop = false;
  obs::PeriodicPusher pusher(
      [&] {
        in_push = true;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        return true;
      },
      o, clock);

  clock.advance(seconds(1));
  pusher.wake();
  auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (!in_push && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  ASSERT_TRUE(in_push.load());

  // The getters and wake() answer while a push is in flight.
  EXPECT_EQ(pusher.stats().attempts, 0u);
  pusher.wake();
  release = true;
  EXPECT_TRUE(wait_attempts(pusher, 1));
}
