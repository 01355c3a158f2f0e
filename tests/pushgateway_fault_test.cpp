// The client against faults a real server cannot be made to produce, served by FaultPeer on
// loopback: error statuses, silence, resets, trickling bodies.
#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <vector>

#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/pushgateway.hpp"
#include "support/fault_peer.hpp"

namespace obs = ccproxy::observability;
using ccobs_test::FaultPeer;
using std::chrono::milliseconds;
using std::chrono::seconds;

namespace {

std::shared_ptr<prometheus::Registry> sample_registry() {
  auto registry = std::make_shared<prometheus::Registry>();
  prometheus::BuildCounter()
      .Name("jobs_total")
      .Help("Jobs")
      .Register(*registry)
      .Add({})
      .Increment(2);
  return registry;
}

obs::ObservabilitySettings settings_for(const std::string& url,
                                        milliseconds timeout = milliseconds(2000)) {
  obs::ObservabilitySettings s;
  s.pushgateway_url = url;
  s.pushgateway_job = "nightly/batch";
  s.pushgateway_grouping = {{"instance", "worker/1"}};
  s.pushgateway_timeout = timeout;
  return s;
}

// Captures the library's log lines for one test.
class LogCapture {
 public:
  LogCapture() {
    obs::LoggingOptions o;
    o.level = obs::LogLevel::kDebug;
    o.line_sink = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back(line);
    };
    obs::configure_logging(o);
  }
  ~LogCapture() { obs::configure_logging({}); }
  std::vector<std::string> lines() {
    obs::flush_logging();
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  int count(const std::string& needle) {
    int n = 0;
    for (const auto& l : lines()) n += l.find(needle) != std::string::npos;
    return n;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

double sample_value(prometheus::Registry& registry, const std::string& name,
                    const std::vector<std::pair<std::string, std::string>>& labels) {
  for (const auto& f : registry.Collect()) {
    if (f.name != name) continue;
    for (const auto& m : f.metric) {
      bool match = true;
      for (const auto& [k, v] : labels) {
        bool found = false;
        for (const auto& l : m.label) found = found || (l.name == k && l.value == v);
        match = match && found;
      }
      if (match) return f.type == prometheus::MetricType::Gauge ? m.gauge.value : m.counter.value;
    }
  }
  return -1;
}

}  // namespace

TEST(PushgatewayFaultTest, MakesFiveAttemptsAndTwoRefusalsWhenSevenPushesMeet500) {
  FaultPeer peer(FaultPeer::Mode::kStatus, 500);
  obs::ManualClock clock;
  obs::PushgatewayClient client(settings_for(peer.url()), clock);
  auto registry = sample_registry();

  std::vector<obs::PushOutcome> outcomes;
  for (int i = 0; i < 7; ++i) {
    outcomes.push_back(client.push_metrics(*registry, obs::PushMethod::kPush).outcome);
  }

  EXPECT_EQ(peer.requests(), 5);
  std::vector<obs::PushOutcome> want(5, obs::PushOutcome::kHttpError);
  want.insert(want.end(), 2, obs::PushOutcome::kCircuitOpen);
  EXPECT_EQ(outcomes, want);
  EXPECT_EQ(client.circuit_state(), obs::CircuitState::kOpen);
  EXPECT_EQ(client.stats().refused, 2u);
  EXPECT_EQ(client.stats().http_requests, 5u);
}

TEST(PushgatewayFaultTest, ProbesAgainWhenRecoveryTimeoutHasPassed) {
  FaultPeer peer(FaultPeer::Mode::kStatus, 500);
  obs::ManualClock clock;
  obs::PushgatewayClient client(settings_for(peer.url()), clock);
  auto registry = sample_registry();
  for (int i = 0; i < 5; ++i) (void)client.push_metrics(*registry, obs::PushMethod::kPush);
  ASSERT_EQ(client.circuit_state(), obs::CircuitState::kOpen);

  clock.advance(seconds(60));
  EXPECT_EQ(client.circuit_state(), obs::CircuitState::kHalfOpen);
  auto probe = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(probe.outcome, obs::PushOutcome::kHttpError);
  EXPECT_EQ(probe.http_status, 500);
  EXPECT_EQ(peer.requests(), 6);
  EXPECT_EQ(client.circuit_state(), obs::CircuitState::kOpen);
}

TEST(PushgatewayFaultTest, LogsOneWarningAndExportsStateWhenCircuitOpens) {
  LogCapture logs;
  FaultPeer peer(FaultPeer::Mode::kStatus, 503);
  obs::ManualClock clock;
  obs::PushgatewayClient client(settings_for(peer.url()), clock);
  auto own = std::make_shared<prometheus::Registry>();
  client.register_metrics(own, "batch");
  auto registry = sample_registry();

  for (int i = 0; i < 7; ++i) (void)client.push_metrics(*registry, obs::PushMethod::kPushAdd);

  EXPECT_EQ(logs.count("\"pushgateway_circuit_opened\""), 1);
  EXPECT_EQ(logs.count("\"pushgateway_push_failed\""), 1);  // rate-limited
  EXPECT_EQ(logs.count("\"pushgateway_push_refused\""), 1);
  EXPECT_EQ(sample_value(*own, "batch_pushgateway_circuit_state", {}), 1.0);
  EXPECT_EQ(sample_value(*own, "batch_pushgateway_pushes_total",
                         {{"method", "pushadd"}, {"outcome", "http_error"}}),
            5.0);
  EXPECT_EQ(sample_value(*own, "batch_pushgateway_pushes_total",
                         {{"method", "pushadd"}, {"outcome", "circuit_open"}}),
            2.0);
}

TEST(PushgatewayFaultTest, ReturnsTimeoutWhenPeerNeverAnswers) {
  FaultPeer peer(FaultPeer::Mode::kNeverAnswer);
  obs::PushgatewayClient client(settings_for(peer.url(), milliseconds(300)));
  auto registry = sample_registry();

  auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.outcome, obs::PushOutcome::kTimeout);
  EXPECT_EQ(r.http_status, 0);
  EXPECT_EQ(peer.requests(), 1);
  EXPECT_FALSE(r.message.empty());
}

TEST(PushgatewayFaultTest, ReturnsTimeoutWhenBodyTrickles) {
  FaultPeer peer(FaultPeer::Mode::kSlowBody, 200, milliseconds(100));
  obs::PushgatewayClient client(settings_for(peer.url(), milliseconds(400)));
  auto registry = sample_registry();

  auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.outcome, obs::PushOutcome::kTimeout);
  EXPECT_EQ(r.http_status, 200);  // headers came, the body did not
}

TEST(PushgatewayFaultTest, ReturnsTransportErrorWhenPeerResetsMidResponse) {
  FaultPeer peer(FaultPeer::Mode::kResetMidResponse);
  obs::PushgatewayClient client(settings_for(peer.url()));
  auto registry = sample_registry();

  auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.outcome, obs::PushOutcome::kTransportError);
  EXPECT_FALSE(r.message.empty());
  EXPECT_EQ(client.stats().failed, 1u);
}

TEST(PushgatewayFaultTest, ReturnsTransportErrorWhenNothingListens) {
  int port;
  {
    FaultPeer closed(FaultPeer::Mode::kStatus);
    port = closed.port();
  }
  obs::PushgatewayClient client(settings_for("http://127.0.0.1:" + std::to_string(port)));
  auto registry = sample_registry();

  auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.outcome, obs::PushOutcome::kTransportError);
}

TEST(PushgatewayFaultTest, RetriesRemoteWriteWhenPeerAnswers5xxOr429) {
  for (int status : {500, 503, 429}) {
    FaultPeer peer(FaultPeer::Mode::kStatus, status);
    obs::PushgatewayClient client(settings_for(peer.url("/api/v1/write"), milliseconds(1000)));
    auto registry = sample_registry();

    auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

    EXPECT_EQ(r.outcome, obs::PushOutcome::kHttpError);
    EXPECT_EQ(r.http_status, status);
    EXPECT_GT(r.attempts, 1) << status;
    EXPECT_EQ(peer.requests(), r.attempts);
    EXPECT_EQ(client.circuit_state(), obs::CircuitState::kClosed);  // one push, one failure
  }
}

TEST(PushgatewayFaultTest, DoesNotRetryRemoteWriteWhenPeerAnswersOther4xx) {
  FaultPeer peer(FaultPeer::Mode::kStatus, 400);
  obs::PushgatewayClient client(settings_for(peer.url("/api/v1/write"), milliseconds(1000)));
  auto registry = sample_registry();

  auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.outcome, obs::PushOutcome::kHttpError);
  EXPECT_EQ(r.attempts, 1);
  EXPECT_EQ(peer.requests(), 1);
}

TEST(PushgatewayFaultTest, SendsRemoteWriteHeadersWhenUrlIsAWriteEndpoint) {
  FaultPeer peer(FaultPeer::Mode::kStatus, 400);
  obs::PushgatewayClient client(settings_for(peer.url("/api/v1/write")));
  auto registry = sample_registry();

  (void)client.push_metrics(*registry, obs::PushMethod::kPush);

  ASSERT_EQ(peer.request_heads().size(), 1u);
  const std::string head = peer.request_heads()[0];
  EXPECT_EQ(head.rfind("POST /api/v1/write HTTP/1.1", 0), 0u) << head;
  EXPECT_NE(head.find("Content-Encoding: snappy"), std::string::npos);
  EXPECT_NE(head.find("Content-Type: application/x-protobuf"), std::string::npos);
  EXPECT_NE(head.find("X-Prometheus-Remote-Write-Version: 0.1.0"), std::string::npos);
}

TEST(PushgatewayFaultTest, RefusesDeleteOverRemoteWriteAndLeavesBreakerUntouched) {
  LogCapture logs;
  FaultPeer peer(FaultPeer::Mode::kStatus, 500);
  obs::PushgatewayClient client(settings_for(peer.url("/api/v1/write")));

  for (int i = 0; i < 6; ++i) {
    auto r = client.delete_metrics();
    EXPECT_EQ(r.outcome, obs::PushOutcome::kUnsupported);
  }

  EXPECT_EQ(peer.requests(), 0);
  EXPECT_EQ(client.circuit_state(), obs::CircuitState::kClosed);
  EXPECT_EQ(logs.count("\"pushgateway_delete_unsupported\""), 1);
}

TEST(PushgatewayFaultTest, KeepsCredentialsOutOfMessagesAndLogsWhenPushFails) {
  LogCapture logs;
  FaultPeer peer(FaultPeer::Mode::kStatus, 401);
  auto s = settings_for("http://urluser:url-secret-1@127.0.0.1:" + std::to_string(peer.port()));
  s.pushgateway_username = "alice";
  s.pushgateway_password = "settings-secret-2";
  obs::PushgatewayClient client(s);
  auto registry = sample_registry();

  auto r = client.push_metrics(*registry, obs::PushMethod::kPush);

  EXPECT_EQ(r.http_status, 401);
  ASSERT_EQ(peer.request_heads().size(), 1u);
  EXPECT_NE(peer.request_heads()[0].find("Authorization: Basic "), std::string::npos);
  EXPECT_EQ(client.redacted_url().find("url-secret-1"), std::string::npos);
  auto lines = logs.lines();
  ASSERT_FALSE(lines.empty());
  for (const auto& text : lines) {
    EXPECT_EQ(text.find("url-secret-1"), std::string::npos) << text;
    EXPECT_EQ(text.find("settings-secret-2"), std::string::npos) << text;
  }
  EXPECT_EQ(r.message.find("secret"), std::string::npos) << r.message;
}

TEST(PushgatewayFaultTest, ReturnsDisabledWithoutNetworkWhenUrlIsEmpty) {
  obs::PushgatewayClient client(obs::ObservabilitySettings{});
  auto registry = sample_registry();

  EXPECT_FALSE(client.is_enabled());
  EXPECT_EQ(client.push_metrics(*registry, obs::PushMethod::kPush).outcome,
            obs::PushOutcome::kDisabled);
  EXPECT_EQ(client.delete_metrics().outcome, obs::PushOutcome::kDisabled);
  EXPECT_EQ(client.stats().http_requests, 0u);
}

TEST(PushgatewayFaultTest, ThrowsInvalidArgumentWhenSettingsAreInvalid) {
  auto s = settings_for("http://127.0.0.1:9091");
  s.pushgateway_timeout = milliseconds(0);
  EXPECT_THROW(obs::PushgatewayClient{s}, std::invalid_argument);
  EXPECT_THROW(obs::PushgatewayClient{settings_for("gopher://x")}, std::invalid_argument);
  obs::PushgatewayClient ok(settings_for("http://127.0.0.1:9091"));
  EXPECT_THROW(ok.register_metrics(std::make_shared<prometheus::Registry>(), "1bad"),
               std::invalid_argument);
}

TEST(PushgatewayFaultTest, SerialisesPushesWhenThreadsShareOneClient) {
  FaultPeer peer(FaultPeer::Mode::kStatus, 202);
  obs::PushgatewayClient client(settings_for(peer.url()));
  auto registry = sample_registry();

  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        ok += client.push_metrics(*registry, obs::PushMethod::kPush).ok();
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(ok.load(), 40);
  EXPECT_EQ(peer.requests(), 40);
  EXPECT_EQ(client.stats().succeeded, 40u);
}

TEST(PushgatewayFaultTest, ReturnsSameClientUntilResetWhenUsingProcessWideInstance) {
  obs::reset_pushgateway_client();
  auto a = obs::get_pushgateway_client();
  auto b = obs::get_pushgateway_client();
  obs::reset_pushgateway_client();
  auto c = obs::get_pushgateway_client();

  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_FALSE(c->is_enabled());  // no OBSERVABILITY__PUSHGATEWAY_URL in the test environment
  obs::reset_pushgateway_client();
}

// Prints the figures of the README's reliability section: what each fault costs.
TEST(PushgatewayFaultTest, ReportsReliabilityFiguresWhenFacingEachFault) {
  struct Case {
    const char* name;
    FaultPeer::Mode mode;
    int status;
    const char* path;
  };
  const Case cases[] = {
      {"http_500", FaultPeer::Mode::kStatus, 500, ""},
      {"never_answers", FaultPeer::Mode::kNeverAnswer, 0, ""},
      {"reset_mid_response", FaultPeer::Mode::kResetMidResponse, 0, ""},
      {"slow_body", FaultPeer::Mode::kSlowBody, 200, ""},
      {"remote_write_503", FaultPeer::Mode::kStatus, 503, "/api/v1/write"},
  };
  for (const auto& c : cases) {
    FaultPeer peer(c.mode, c.status, milliseconds(100));
    obs::ManualClock clock;
    obs::PushgatewayClient client(settings_for(peer.url(c.path), milliseconds(500)), clock);
    auto registry = sample_registry();

    auto start = std::chrono::steady_clock::now();
    int pushes = 0;
    while (client.circuit_state() != obs::CircuitState::kOpen && pushes < 20) {
      (void)client.push_metrics(*registry, obs::PushMethod::kPush);
      ++pushes;
    }
    auto to_open = std::chrono::steady_clock::now() - start;
    for (int i = 0; i < 2; ++i) (void)client.push_metrics(*registry, obs::PushMethod::kPush);

    EXPECT_EQ(client.circuit_state(), obs::CircuitState::kOpen) << c.name;
    EXPECT_EQ(client.stats().refused, 2u) << c.name;
    std::printf(
        "reliability %-20s pushes=%d http_requests=%llu refused=%llu time_to_open_ms=%lld\n",
        c.name, pushes + 2, static_cast<unsigned long long>(client.stats().http_requests),
        static_cast<unsigned long long>(client.stats().refused),
        static_cast<long long>(std::chrono::duration_cast<milliseconds>(to_open).count()));
  }
}
