// ObservabilitySettings: where and how metrics are pushed (Pushgateway, Prometheus remote
// write or VictoriaMetrics text import), set in code or read from OBSERVABILITY__* variables.
//
// Example:
//   auto s = ccproxy::observability::ObservabilitySettings::from_env();
//   s.pushgateway_grouping["instance"] = "worker/1";
//   s.validate();  // std::invalid_argument naming the bad setting
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

namespace ccproxy::observability {

// What a push speaks on the wire.
enum class PushProtocol {
  kAuto,                   // remote write when the URL contains /api/v1/write, else Pushgateway
  kPushgateway,            // text format 0.0.4 to <url>/metrics/job/<job>{/<label>/<value>}
  kRemoteWrite,            // Prometheus remote write 1.0 (protobuf + snappy) to <url>
  kVictoriaMetricsImport,  // text format POSTed to <url> (VictoriaMetrics
                           // /api/v1/import/prometheus), job and grouping as extra_label
};

// Reads "auto", "pushgateway", "remote_write", "victoriametrics_import" (any case). Throws
// std::invalid_argument naming pushgateway_protocol otherwise.
PushProtocol parse_push_protocol(std::string_view text);
std::string_view to_string(PushProtocol protocol) noexcept;

// A plain value type, not synchronised; a PushgatewayClient keeps its own copy.
struct ObservabilitySettings {
  // Empty: pushing disabled. http:// or https://, optionally with a path prefix.
  std::string pushgateway_url;
  std::string pushgateway_job = "ccproxy";
  // Grouping key labels after the job (Pushgateway), or labels added to every series
  // (remote write, VictoriaMetrics import).
  std::map<std::string, std::string> pushgateway_grouping;
  // Basic auth; sent only when the user name is set, never logged.
  std::string pushgateway_username;
  std::string pushgateway_password;
  PushProtocol pushgateway_protocol = PushProtocol::kAuto;
  // Total time of one push, retries of remote write included.
  std::chrono::milliseconds pushgateway_timeout{10000};
  // Time to establish the connection (capped at the total timeout).
  std::chrono::milliseconds pushgateway_connect_timeout{3000};
  bool pushgateway_tls_verify = true;
  // PEM bundle of trusted CAs; empty: the system's.
  std::string pushgateway_ca_file;
  // gzip the text body (Pushgateway and VictoriaMetrics import).
  bool pushgateway_gzip = false;
  // Circuit breaker: consecutive failures that open it, and how long it stays open.
  int pushgateway_failure_threshold = 5;
  std::chrono::milliseconds pushgateway_recovery_timeout{60000};
  // PeriodicPusher: time between pushes, and the longest delay after failures.
  std::chrono::milliseconds push_interval{60000};
  std::chrono::milliseconds push_max_backoff{300000};

  // Defaults overridden by the environment: OBSERVABILITY__PUSHGATEWAY_URL, _JOB,
  // _GROUPING ("k=v,k2=v2"), _USERNAME, _PASSWORD, _PROTOCOL, _TIMEOUT, _CONNECT_TIMEOUT,
  // _TLS_VERIFY, _CA_FILE, _GZIP, _FAILURE_THRESHOLD, _RECOVERY_TIMEOUT, and
  // OBSERVABILITY__PUSH_INTERVAL, OBSERVABILITY__PUSH_MAX_BACKOFF. Durations are seconds
  // ("1.5") or carry a unit ("1500ms", "2s"); booleans are true/false/1/0/yes/no. Throws
  // std::invalid_argument naming the variable when a value does not parse, and whatever
  // validate() throws.
  static ObservabilitySettings from_env();

  // Throws std::invalid_argument naming the setting: a malformed pushgateway_url or one with
  // a scheme other than http/https, an empty job, a grouping label that is not a valid label
  // name, a non-positive timeout, threshold, recovery timeout, interval or backoff.
  void validate() const;
};

}  // namespace ccproxy::observability
