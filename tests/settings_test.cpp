#include "ccproxy/observability/settings.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace obs = ccproxy::observability;

namespace {

// Sets OBSERVABILITY__ variables for one test and removes them afterwards.
class EnvGuard {
 public:
  void set(const std::string& name, const std::string& value) {
    std::string full = "OBSERVABILITY__" + name;
    ::setenv(full.c_str(), value.c_str(), 1);
    names_.push_back(full);
  }
  ~EnvGuard() {
    for (const auto& n : names_) ::unsetenv(n.c_str());
  }

 private:
  std::vector<std::string> names_;
};

std::string message_of(const obs::ObservabilitySettings& s) {
  try {
    s.validate();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

}  // namespace

TEST(SettingsTest, ReadsEveryVariableWhenEnvironmentSetsThem) {
  EnvGuard env;
  env.set("PUSHGATEWAY_URL", "http://127.0.0.1:9091");
  env.set("PUSHGATEWAY_JOB", "nightly/batch");
  env.set("PUSHGATEWAY_GROUPING", "instance=worker/1, zone=eu");
  env.set("PUSHGATEWAY_USERNAME", "u");
  env.set("PUSHGATEWAY_PASSWORD", "p");
  env.set("PUSHGATEWAY_PROTOCOL", "Remote_Write");
  env.set("PUSHGATEWAY_TIMEOUT", "1.5");
  env.set("PUSHGATEWAY_CONNECT_TIMEOUT", "250ms");
  env.set("PUSHGATEWAY_TLS_VERIFY", "false");
  env.set("PUSHGATEWAY_CA_FILE", "/etc/ca.pem");
  env.set("PUSHGATEWAY_GZIP", "yes");
  env.set("PUSHGATEWAY_FAILURE_THRESHOLD", "7");
  env.set("PUSHGATEWAY_RECOVERY_TIMEOUT", "2s");
  env.set("PUSH_INTERVAL", "15");
  env.set("PUSH_MAX_BACKOFF", "120s");

  auto s = obs::ObservabilitySettings::from_env();

  EXPECT_EQ(s.pushgateway_url, "http://127.0.0.1:9091");
  EXPECT_EQ(s.pushgateway_job, "nightly/batch");
  EXPECT_EQ(s.pushgateway_grouping.at("instance"), "worker/1");
  EXPECT_EQ(s.pushgateway_grouping.at("zone"), "eu");
  EXPECT_EQ(s.pushgateway_username, "u");
  EXPECT_EQ(s.pushgateway_password, "p");
  EXPECT_EQ(s.pushgateway_protocol, obs::PushProtocol::kRemoteWrite);
  EXPECT_EQ(s.pushgateway_timeout.count(), 1500);
  EXPECT_EQ(s.pushgateway_connect_timeout.count(), 250);
  EXPECT_FALSE(s.pushgateway_tls_verify);
  EXPECT_EQ(s.pushgateway_ca_file, "/etc/ca.pem");
  EXPECT_TRUE(s.pushgateway_gzip);
  EXPECT_EQ(s.pushgateway_failure_threshold, 7);
  EXPECT_EQ(s.pushgateway_recovery_timeout.count(), 2000);
  EXPECT_EQ(s.push_interval.count(), 15000);
  EXPECT_EQ(s.push_max_backoff.count(), 120000);
}

TEST(SettingsTest, KeepsDefaultsWhenEnvironmentIsEmpty) {
  auto s = obs::ObservabilitySettings::from_env();
  obs::ObservabilitySettings d;

  EXPECT_TRUE(s.pushgateway_url.empty());
  EXPECT_EQ(s.pushgateway_job, d.pushgateway_job);
  EXPECT_EQ(s.pushgateway_timeout, d.pushgateway_timeout);
  EXPECT_EQ(s.pushgateway_failure_threshold, 5);
  EXPECT_EQ(s.pushgateway_recovery_timeout.count(), 60000);
  EXPECT_TRUE(s.pushgateway_tls_verify);
}

TEST(SettingsTest, ThrowsInvalidArgumentNamingVariableWhenValueDoesNotParse) {
  for (auto [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"PUSHGATEWAY_TIMEOUT", "soon"},
           {"PUSHGATEWAY_TLS_VERIFY", "maybe"},
           {"PUSHGATEWAY_FAILURE_THRESHOLD", "5x"},
           {"PUSHGATEWAY_GROUPING", "novalue"},
           {"PUSHGATEWAY_PROTOCOL", "carrier_pigeon"}}) {
    EnvGuard env;
    env.set(name, value);
    try {
      (void)obs::ObservabilitySettings::from_env();
      ADD_FAILURE() << name << " accepted " << value;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("OBSERVABILITY__" + name), std::string::npos)
          << e.what();
    }
  }
}

TEST(SettingsTest, ThrowsInvalidArgumentNamingSettingWhenValueIsInvalid) {
  obs::ObservabilitySettings s;
  s.pushgateway_url = "ftp://gw:21";
  EXPECT_THROW(s.validate(), std::invalid_argument);
  EXPECT_NE(message_of(s).find("pushgateway_url"), std::string::npos);
  s.pushgateway_url = "localhost:9091";
  EXPECT_NE(message_of(s).find("pushgateway_url"), std::string::npos);
  s.pushgateway_url = "http://127.0.0.1:9091";
  EXPECT_EQ(message_of(s), "");

  auto with = [&s](auto change) {
    obs::ObservabilitySettings copy = s;
    change(copy);
    return message_of(copy);
  };
  EXPECT_NE(with([](auto& c) {
              c.pushgateway_timeout = std::chrono::milliseconds(0);
            }).find("pushgateway_timeout"),
            std::string::npos);
  EXPECT_NE(with([](auto& c) {
              c.pushgateway_connect_timeout = std::chrono::milliseconds(-1);
            }).find("pushgateway_connect_timeout"),
            std::string::npos);
  EXPECT_NE(with([](auto& c) { c.pushgateway_job.clear(); }).find("pushgateway_job"),
            std::string::npos);
  EXPECT_NE(
      with([](auto& c) { c.pushgateway_grouping["bad-name"] = "x"; }).find("pushgateway_grouping"),
      std::string::npos);
  EXPECT_NE(with([](auto& c) {
              c.pushgateway_failure_threshold = 0;
            }).find("pushgateway_failure_threshold"),
            std::string::npos);
  EXPECT_NE(
      with([](auto& c) { c.push_interval = std::chrono::milliseconds(0); }).find("push_interval"),
      std::string::npos);
}

TEST(SettingsTest, ParsesProtocolNamesWhenSpelledInAnyCase) {
  EXPECT_EQ(obs::parse_push_protocol("AUTO"), obs::PushProtocol::kAuto);
  EXPECT_EQ(obs::parse_push_protocol("victoriametrics_import"),
            obs::PushProtocol::kVictoriaMetricsImport);
  EXPECT_EQ(obs::parse_push_protocol(obs::to_string(obs::PushProtocol::kPushgateway)),
            obs::PushProtocol::kPushgateway);
  EXPECT_THROW(obs::parse_push_protocol("grpc"), std::invalid_argument);
}
