#include "ccproxy/observability/settings.hpp"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "push_wire.hpp"

namespace ccproxy::observability {
namespace {

constexpr std::string_view kPrefix = "OBSERVABILITY__";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())) != 0) {
    s.remove_prefix(1);
  }
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())) != 0) s.remove_suffix(1);
  return s;
}

bool valid_label_name(std::string_view name) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    bool ok = std::isalpha(c) != 0 || c == '_' || (i > 0 && std::isdigit(c) != 0);
    if (!ok || c > 0x7F) return false;
  }
  return true;
}

const char* env(std::string_view name) {
  std::string full = std::string(kPrefix) + std::string(name);
  return std::getenv(full.c_str());
}

[[noreturn]] void bad_env(std::string_view name, std::string_view why) {
  throw std::invalid_argument(std::string(kPrefix) + std::string(name) + ": " + std::string(why));
}

std::chrono::milliseconds parse_duration(std::string_view name, std::string_view text) {
  text = trim(text);
  double scale = 1000.0;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    scale = 1.0;
    text.remove_suffix(2);
  } else if (!text.empty() && text.back() == 's') {
    text.remove_suffix(1);
  }
  std::string number(text);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(number.c_str(), &end);
  if (number.empty() || end != number.c_str() + number.size() || errno != 0 || !std::isfinite(v)) {
    bad_env(name, "expected a duration such as 1.5, 1500ms or 2s");
  }
  return std::chrono::milliseconds(std::llround(v * scale));
}

bool parse_bool(std::string_view name, std::string_view text) {
  std::string t = lower(trim(text));
  if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
  if (t == "0" || t == "false" || t == "no" || t == "off") return false;
  bad_env(name, "expected true or false");
}

int parse_int(std::string_view name, std::string_view text) {
  std::string t(trim(text));
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(t.c_str(), &end, 10);
  if (t.empty() || end != t.c_str() + t.size() || errno != 0 || v < -1000000 || v > 1000000) {
    bad_env(name, "expected an integer");
  }
  return static_cast<int>(v);
}

std::map<std::string, std::string> parse_grouping(std::string_view name, std::string_view text) {
  std::map<std::string, std::string> out;
  text = trim(text);
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string_view item = trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    if (eq == std::string_view::npos) bad_env(name, "expected label=value[,label=value...]");
    out[std::string(trim(item.substr(0, eq)))] = std::string(trim(item.substr(eq + 1)));
  }
  return out;
}

}  // namespace

PushProtocol parse_push_protocol(std::string_view text) {
  std::string t = lower(trim(text));
  if (t == "auto") return PushProtocol::kAuto;
  if (t == "pushgateway") return PushProtocol::kPushgateway;
  if (t == "remote_write") return PushProtocol::kRemoteWrite;
  if (t == "victoriametrics_import") return PushProtocol::kVictoriaMetricsImport;
  throw std::invalid_argument("pushgateway_protocol: unknown protocol '" + std::string(text) +
                              "' (auto, pushgateway, remote_write, victoriametrics_import)");
}

std::string_view to_string(PushProtocol protocol) noexcept {
  switch (protocol) {
    case PushProtocol::kAuto:
      return "auto";
    case PushProtocol::kPushgateway:
      return "pushgateway";
    case PushProtocol::kRemoteWrite:
      return "remote_write";
    case PushProtocol::kVictoriaMetricsImport:
      return "victoriametrics_import";
  }
  return "unknown";
}

ObservabilitySettings ObservabilitySettings::from_env() {
  ObservabilitySettings s;
  if (const char* v = env("PUSHGATEWAY_URL")) s.pushgateway_url = std::string(trim(v));
  if (const char* v = env("PUSHGATEWAY_JOB")) s.pushgateway_job = v;
  if (const char* v = env("PUSHGATEWAY_GROUPING")) {
    s.pushgateway_grouping = parse_grouping("PUSHGATEWAY_GROUPING", v);
  }
  if (const char* v = env("PUSHGATEWAY_USERNAME")) s.pushgateway_username = v;
  if (const char* v = env("PUSHGATEWAY_PASSWORD")) s.pushgateway_password = v;
  if (const char* v = env("PUSHGATEWAY_PROTOCOL")) {
    try {
      s.pushgateway_protocol = parse_push_protocol(v);
    } catch (const std::invalid_argument&) {
      bad_env("PUSHGATEWAY_PROTOCOL",
              "expected auto, pushgateway, remote_write or "
              "victoriametrics_import");
    }
  }
  if (const char* v = env("PUSHGATEWAY_TIMEOUT")) {
    s.pushgateway_timeout = parse_duration("PUSHGATEWAY_TIMEOUT", v);
  }
  if (const char* v = env("PUSHGATEWAY_CONNECT_TIMEOUT")) {
    s.pushgateway_connect_timeout = parse_duration("PUSHGATEWAY_CONNECT_TIMEOUT", v);
  }
  if (const char* v = env("PUSHGATEWAY_TLS_VERIFY")) {
    s.pushgateway_tls_verify = parse_bool("PUSHGATEWAY_TLS_VERIFY", v);
  }
  if (const char* v = env("PUSHGATEWAY_CA_FILE")) s.pushgateway_ca_file = v;
  if (const char* v = env("PUSHGATEWAY_GZIP"))
    s.pushgateway_gzip = parse_bool("PUSHGATEWAY_GZIP", v);
  if (const char* v = env("PUSHGATEWAY_FAILURE_THRESHOLD")) {
    s.pushgateway_failure_threshold = parse_int("PUSHGATEWAY_FAILURE_THRESHOLD", v);
  }
  if (const char* v = env("PUSHGATEWAY_RECOVERY_TIMEOUT")) {
    s.pushgateway_recovery_timeout = parse_duration("PUSHGATEWAY_RECOVERY_TIMEOUT", v);
  }
  if (const char* v = env("PUSH_INTERVAL")) s.push_interval = parse_duration("PUSH_INTERVAL", v);
  if (const char* v = env("PUSH_MAX_BACKOFF")) {
    s.push_max_backoff = parse_duration("PUSH_MAX_BACKOFF", v);
  }
  s.validate();
  return s;
}

void ObservabilitySettings::validate() const {
  if (!pushgateway_url.empty()) wire::parse_url(pushgateway_url, "pushgateway_url");
  if (pushgateway_job.empty()) throw std::invalid_argument("pushgateway_job must not be empty");
  for (const auto& [name, value] : pushgateway_grouping) {
    if (!valid_label_name(name) || name == "job") {
      throw std::invalid_argument("pushgateway_grouping: '" + name +
                                  "' is not a valid label name other than job");
    }
  }
  auto positive = [](std::chrono::milliseconds d, const char* setting) {
    if (d.count() <= 0) throw std::invalid_argument(std::string(setting) + " must be positive");
  };
  positive(pushgateway_timeout, "pushgateway_timeout");
  positive(pushgateway_connect_timeout, "pushgateway_connect_timeout");
  positive(pushgateway_recovery_timeout, "pushgateway_recovery_timeout");
  positive(push_interval, "push_interval");
  positive(push_max_backoff, "push_max_backoff");
  if (pushgateway_failure_threshold < 1) {
    throw std::invalid_argument("pushgateway_failure_threshold must be at least 1");
  }
}

}  // namespace ccproxy::observability
