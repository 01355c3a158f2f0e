#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "ccproxy/observability/metrics.hpp"

namespace obs = ccproxy::observability;

namespace {

double counter_total(const std::vector<prometheus::MetricFamily>& all, const std::string& name) {
  double total = 0;
  for (const auto& f : all) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) total += m.counter.value;
  }
  return total;
}

std::uint64_t histogram_count(const std::vector<prometheus::MetricFamily>& all,
                              const std::string& name) {
  std::uint64_t total = 0;
  for (const auto& f : all) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) total += m.histogram.sample_count;
  }
  return total;
}

}  // namespace

// Two recording threads and a scraping thread: nothing is lost, and every scrape sees
// counters that never go down.
TEST(MetricsConcurrencyTest, TwoThreadsLoseNothingUnderConcurrentScrapes) {
  constexpr int kPerThread = 300000;
  obs::PrometheusMetrics m("ccproxy");
  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  std::atomic<bool> went_down{false};

  std::thread scraper([&] {
    double last = 0;
    while (!done.load()) {
      auto all = m.registry()->Collect();
      double now = counter_total(all, "ccproxy_requests_total");
      if (now < last) went_down = true;
      last = now;
      (void)m.serialize();
      ++scrapes;
    }
  });

  auto record = [&](int thread) {
    const std::string models[] = {"claude-3-5-sonnet", "claude-3-haiku", "claude-3-opus"};
    for (int i = 0; i < kPerThread; ++i) {
      const std::string& model = models[i % 3];
      m.record_request("POST", "/v1/messages", model, 200 + (i % 2), "proxy_service");
      m.record_response_time(0.001 * (i % 100), model, "/v1/messages", "proxy_service");
      m.record_tokens(2, "input", model);
      m.record_cost(0.5, model);
      if (i % 10 == thread) m.record_error("upstream_timeout", "/v1/messages", model);
    }
  };
  std::thread a(record, 0);
  std::thread b(record, 1);
  a.join();
  b.join();
  done = true;
  scraper.join();

  auto all = m.registry()->Collect();
  EXPECT_EQ(counter_total(all, "ccproxy_requests_total"), 2.0 * kPerThread);
  EXPECT_EQ(histogram_count(all, "ccproxy_response_duration_seconds"), 2u * kPerThread);
  EXPECT_EQ(counter_total(all, "ccproxy_tokens_total"), 4.0 * kPerThread);
  EXPECT_EQ(counter_total(all, "ccproxy_cost_usd_total"), 1.0 * kPerThread);
  EXPECT_EQ(counter_total(all, "ccproxy_errors_total"), 2.0 * kPerThread / 10);
  EXPECT_FALSE(went_down.load());
  EXPECT_GT(scrapes.load(), 0);
}

// New label sets created from several threads at once each get exactly one series.
TEST(MetricsConcurrencyTest, ConcurrentFirstUseCreatesEachSeriesOnce) {
  constexpr int kThreads = 4;
  constexpr int kModels = 2000;
  obs::PrometheusMetrics m("ccproxy");
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kModels; ++i) m.record_tokens(1, "input", "model-" + std::to_string(i));
    });
  }
  for (auto& t : threads) t.join();
  auto all = m.registry()->Collect();
  std::size_t series = 0;
  for (const auto& f : all) {
    if (f.name != "ccproxy_tokens_total") continue;
    series = f.metric.size();
    for (const auto& s : f.metric) EXPECT_EQ(s.counter.value, kThreads);
  }
  EXPECT_EQ(series, static_cast<std::size_t>(kModels));
}
