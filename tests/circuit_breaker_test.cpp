#include "ccproxy/observability/circuit_breaker.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace obs = ccproxy::observability;
using std::chrono::seconds;

namespace {

// Fails `n` admitted calls in a row.
void fail_times(obs::CircuitBreaker& breaker, int n) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(breaker.can_execute());
    breaker.record_failure();
  }
}

}  // namespace

TEST(CircuitBreakerTest, OpensWhenConsecutiveFailuresReachThreshold) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(3, seconds(60), clock);

  fail_times(breaker, 2);
  EXPECT_EQ(breaker.state(), obs::CircuitState::kClosed);
  ASSERT_TRUE(breaker.can_execute());
  EXPECT_TRUE(breaker.record_failure());

  EXPECT_EQ(breaker.state(), obs::CircuitState::kOpen);
  EXPECT_EQ(breaker.failure_count(), 3);
}

TEST(CircuitBreakerTest, ResetsFailureCountWhenCallSucceeds) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(3, seconds(60), clock);

  fail_times(breaker, 2);
  ASSERT_TRUE(breaker.can_execute());
  breaker.record_success();
  fail_times(breaker, 2);

  EXPECT_EQ(breaker.state(), obs::CircuitState::kClosed);
  EXPECT_EQ(breaker.failure_count(), 2);
}

TEST(CircuitBreakerTest, RefusesCallsWithoutCountingThemAsFailuresWhenOpen) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(2, seconds(60), clock);
  fail_times(breaker, 2);

  EXPECT_FALSE(breaker.can_execute());
  EXPECT_FALSE(breaker.can_execute());
  clock.advance(seconds(59));
  EXPECT_FALSE(breaker.can_execute());

  EXPECT_EQ(breaker.refused_count(), 3u);
  EXPECT_EQ(breaker.failure_count(), 2);
  EXPECT_EQ(breaker.state(), obs::CircuitState::kOpen);
}

TEST(CircuitBreakerTest, LetsOneProbeThroughWhenRecoveryTimeoutHasPassed) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(2, seconds(60), clock);
  fail_times(breaker, 2);

  clock.advance(seconds(60));
  EXPECT_EQ(breaker.state(), obs::CircuitState::kHalfOpen);
  EXPECT_TRUE(breaker.can_execute());
  EXPECT_FALSE(breaker.can_execute());  // the probe is still out

  EXPECT_EQ(breaker.refused_count(), 1u);
}

TEST(CircuitBreakerTest, ClosesWhenProbeSucceeds) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(2, seconds(60), clock);
  fail_times(breaker, 2);
  clock.advance(seconds(61));

  ASSERT_TRUE(breaker.can_execute());
  breaker.record_success();

  EXPECT_EQ(breaker.state(), obs::CircuitState::kClosed);
  EXPECT_EQ(breaker.failure_count(), 0);
  EXPECT_TRUE(breaker.can_execute());
  EXPECT_TRUE(breaker.can_execute());
}

TEST(CircuitBreakerTest, ReopensForAFullRecoveryTimeoutWhenProbeFails) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(2, seconds(60), clock);
  fail_times(breaker, 2);
  clock.advance(seconds(61));

  ASSERT_TRUE(breaker.can_execute());
  EXPECT_TRUE(breaker.record_failure());

  EXPECT_EQ(breaker.state(), obs::CircuitState::kOpen);
  clock.advance(seconds(59));
  EXPECT_FALSE(breaker.can_execute());
  clock.advance(seconds(1));
  EXPECT_TRUE(breaker.can_execute());
}

TEST(CircuitBreakerTest, ThrowsInvalidArgumentWhenThresholdOrTimeoutNotPositive) {
  EXPECT_THROW(obs::CircuitBreaker(0, seconds(60)), std::invalid_argument);
  EXPECT_THROW(obs::CircuitBreaker(5, seconds(0)), std::invalid_argument);
  EXPECT_THROW(obs::CircuitBreaker(5, seconds(-1)), std::invalid_argument);
}

TEST(CircuitBreakerTest, AdmitsExactlyOneProbeWhenThreadsRaceInHalfOpen) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(1, seconds(60), clock);
  fail_times(breaker, 1);
  clock.advance(seconds(60));

  std::atomic<int> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        if (breaker.can_execute()) ++admitted;
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(admitted.load(), 1);
  EXPECT_EQ(breaker.refused_count(), 8u * 200u - 1u);
}

TEST(CircuitBreakerTest, KeepsCountsConsistentWhenThreadsRecordConcurrently) {
  obs::ManualClock clock;
  obs::CircuitBreaker breaker(1000000, seconds(60), clock);

  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (breaker.can_execute()) breaker.record_failure();
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(breaker.failure_count(), 4000);
  EXPECT_EQ(breaker.state(), obs::CircuitState::kClosed);
}
