#include "ccproxy/observability/pushgateway.hpp"

#include <curl/curl.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "ccproxy/observability/logging.hpp"
#include "push_wire.hpp"

namespace ccproxy::observability {
namespace {

using SteadyTime = std::chrono::steady_clock::time_point;
using std::chrono::milliseconds;

constexpr std::size_t kMaxBodyInMessage = 256;
constexpr auto kWarningInterval = std::chrono::seconds(10);
constexpr auto kFirstRetryDelay = milliseconds(100);

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool valid_metric_prefix(std::string_view ns) {
  if (ns.empty()) return false;
  for (std::size_t i = 0; i < ns.size(); ++i) {
    auto c = static_cast<unsigned char>(ns[i]);
    bool ok = (c < 0x80 && std::isalpha(c) != 0) || c == '_' || c == ':' ||
              (i > 0 && c < 0x80 && std::isdigit(c) != 0);
    if (!ok) return false;
  }
  return true;
}

PushProtocol resolve_protocol(const ObservabilitySettings& s) {
  if (s.pushgateway_protocol != PushProtocol::kAuto) return s.pushgateway_protocol;
  if (s.pushgateway_url.find("/api/v1/write") != std::string::npos) {
    return PushProtocol::kRemoteWrite;
  }
  if (s.pushgateway_url.find("/api/v1/import/prometheus") != std::string::npos) {
    return PushProtocol::kVictoriaMetricsImport;
  }
  return PushProtocol::kPushgateway;
}

std::string build_target(const ObservabilitySettings& s, PushProtocol protocol) {
  if (s.pushgateway_url.empty()) return {};
  if (protocol == PushProtocol::kRemoteWrite) return s.pushgateway_url;
  if (protocol == PushProtocol::kVictoriaMetricsImport) {
    std::string url = s.pushgateway_url;
    url += url.find('?') == std::string::npos ? '?' : '&';
    url += "extra_label=job=" + wire::percent_encode(s.pushgateway_job);
    for (const auto& [k, v] : s.pushgateway_grouping) {
      url += "&extra_label=" + k + "=" + wire::percent_encode(v);
    }
    return url;
  }
  wire::ParsedUrl u = wire::parse_url(s.pushgateway_url, "pushgateway_url");
  std::string path = u.path;
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string url = u.scheme + "://";
  if (!u.userinfo.empty()) url += u.userinfo + "@";
  url += u.host_port + path + wire::grouping_path(s.pushgateway_job, s.pushgateway_grouping);
  return url;
}

size_t collect_body(char* data, size_t size, size_t nmemb, void* user) {
  auto* out = static_cast<std::string*>(user);
  size_t n = size * nmemb;
  if (out->size() < kMaxBodyInMessage) {
    out->append(data, std::min(n, kMaxBodyInMessage - out->size()));
  }
  return n;
}

struct HttpOutcome {
  CURLcode code = CURLE_OK;
  int status = 0;
  std::string body;
  std::string error;
};

}  // namespace

struct PushgatewayClient::Impl {
  Impl(ObservabilitySettings s, const Clock& clock)
      : settings(std::move(s)),
        protocol(resolve_protocol(settings)),
        breaker(settings.pushgateway_failure_threshold, settings.pushgateway_recovery_timeout,
                clock),
        clock(clock),
        logger("ccproxy.observability.pushgateway") {}

  ObservabilitySettings settings;
  PushProtocol protocol;
  std::string target;
  std::string redacted_target;
  CircuitBreaker breaker;
  const Clock& clock;
  Logger logger;

  // Limitation: one curl handle per client, so pushes from several threads queue behind each
  // other (each bounded by pushgateway_timeout); reusing the handle keeps the connection.
  std::mutex curl_mutex;
  CURL* curl = nullptr;  // guarded by curl_mutex

  std::atomic<std::uint64_t> pushes{0}, succeeded{0}, failed{0}, refused{0}, http_requests{0};

  std::mutex warn_mutex;
  std::map<std::string, std::pair<Clock::time_point, std::uint64_t>> last_warning;

  std::mutex metrics_mutex;
  std::shared_ptr<prometheus::Registry> registry;  // guarded by metrics_mutex
  prometheus::Family<prometheus::Gauge>* state_family = nullptr;
  prometheus::Gauge* state_gauge = nullptr;
  prometheus::Family<prometheus::Counter>* pushes_family = nullptr;
  std::map<std::pair<PushMethod, PushOutcome>, prometheus::Counter*> pushes_counters;

  // Logs `event` at warning at most once per kWarningInterval; the next line carries how many
  // were left out.
  void warn(const std::string& event, Fields fields) noexcept {
    try {
      std::uint64_t suppressed = 0;
      {
        std::lock_guard<std::mutex> lock(warn_mutex);
        auto now = clock.now();
        auto it = last_warning.find(event);
        if (it != last_warning.end() && now - it->second.first < kWarningInterval) {
          ++it->second.second;
          return;
        }
        if (it != last_warning.end()) suppressed = it->second.second;
        last_warning[event] = {now, 0};
      }
      if (suppressed > 0) fields.set("suppressed", suppressed);
      logger.warning(event, fields);
    } catch (...) {
    }
  }

  std::string scrub(std::string text) const {
    auto erase_all = [&text](const std::string& secret) {
      if (secret.size() < 3) return;
      for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret)) {
        text.replace(pos, secret.size(), "***");
      }
    };
    erase_all(settings.pushgateway_password);
    if (!settings.pushgateway_url.empty()) {
      auto scheme_end = settings.pushgateway_url.find("://");
      auto at = settings.pushgateway_url.find('@');
      auto slash = settings.pushgateway_url.find('/', scheme_end + 3);
      if (at != std::string::npos && at < slash) {
        std::string userinfo = settings.pushgateway_url.substr(scheme_end + 3, at - scheme_end - 3);
        auto colon = userinfo.find(':');
        if (colon != std::string::npos) erase_all(userinfo.substr(colon + 1));
      }
    }
    return text;
  }

  HttpOutcome perform(const char* method, const std::string& body,
                      const std::vector<std::string>& headers, milliseconds timeout) {
    HttpOutcome out;
    if (curl == nullptr) curl = curl_easy_init();
    if (curl == nullptr) {
      out.code = CURLE_FAILED_INIT;
      out.error = "curl_easy_init failed";
      return out;
    }
    curl_easy_reset(curl);

    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    list = curl_slist_append(list, "Expect:");
    long total_ms = std::max<long>(1, static_cast<long>(timeout.count()));
    long connect_ms = std::min<long>(total_ms, settings.pushgateway_connect_timeout.count());
    curl_easy_setopt(curl, CURLOPT_URL, target.c_str());
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, total_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "ccproxy-observability");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &out.body);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, settings.pushgateway_tls_verify ? 1L : 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, settings.pushgateway_tls_verify ? 2L : 0L);
    if (!settings.pushgateway_ca_file.empty()) {
      curl_easy_setopt(curl, CURLOPT_CAINFO, settings.pushgateway_ca_file.c_str());
    }
    if (!settings.pushgateway_username.empty()) {
      curl_easy_setopt(curl, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
      curl_easy_setopt(curl, CURLOPT_USERNAME, settings.pushgateway_username.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, settings.pushgateway_password.c_str());
    }
    if (std::string_view(method) != "DELETE") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }

    out.code = curl_easy_perform(curl);
    ++http_requests;
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    out.status = static_cast<int>(status);
    if (out.code != CURLE_OK) {
      out.error = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(out.code);
    }
    curl_slist_free_all(list);
    return out;
  }

  // One push on the wire: a single request, or for remote write retries of 5xx and 429 with
  // doubling delays until the total timeout runs out.
  PushResult send(PushMethod method, const std::string& body) {
    const char* verb =
        method == PushMethod::kPush ? "PUT" : (method == PushMethod::kDelete ? "DELETE" : "POST");
    std::vector<std::string> headers;
    bool retry = false;
    if (protocol == PushProtocol::kRemoteWrite) {
      verb = "POST";
      headers = {"Content-Type: application/x-protobuf", "Content-Encoding: snappy",
                 "X-Prometheus-Remote-Write-Version: 0.1.0"};
      retry = true;
    } else if (method != PushMethod::kDelete) {
      headers = {"Content-Type: text/plain; version=0.0.4; charset=utf-8"};
      if (settings.pushgateway_gzip) headers.push_back("Content-Encoding: gzip");
    }

    PushResult result;
    SteadyTime deadline = std::chrono::steady_clock::now() + settings.pushgateway_timeout;
    milliseconds delay = kFirstRetryDelay;
    std::lock_guard<std::mutex> lock(curl_mutex);
    for (;;) {
      auto left =
          std::chrono::duration_cast<milliseconds>(deadline - std::chrono::steady_clock::now());
      HttpOutcome http = perform(verb, body, headers, std::max(left, milliseconds(1)));
      ++result.attempts;
      result.http_status = http.status;

      if (http.code == CURLE_OPERATION_TIMEDOUT) {
        result.outcome = PushOutcome::kTimeout;
        result.message = scrub(http.error);
        return result;
      }
      if (http.code != CURLE_OK) {
        result.outcome = PushOutcome::kTransportError;
        result.message = scrub(http.error);
        return result;
      }
      bool ok = protocol == PushProtocol::kPushgateway ? (http.status == 200 || http.status == 202)
                                                       : (http.status >= 200 && http.status < 300);
      if (ok) {
        result.outcome = PushOutcome::kOk;
        result.message.clear();
        return result;
      }
      result.outcome = PushOutcome::kHttpError;
      result.message = scrub("HTTP " + std::to_string(http.status) + ": " + http.body);
      while (!result.message.empty() &&
             (result.message.back() == '\n' || result.message.back() == ' ')) {
        result.message.pop_back();
      }
      // Limitation: only answered 5xx and 429 are retried; a refused or reset connection ends
      // the push at once and the next periodic push is the retry.
      bool retryable = http.status >= 500 || http.status == 429;
      if (!retry || !retryable) return result;
      if (std::chrono::steady_clock::now() + delay >= deadline) return result;
      // Limitation: the retry delay is slept in real time (bounded by pushgateway_timeout);
      // it is I/O pacing, not logic, so it does not follow the injected clock.
      std::this_thread::sleep_for(delay);
      delay *= 2;
    }
  }

  std::string build_body(const prometheus::Collectable& metrics) const {
    auto families = metrics.Collect();
    if (protocol == PushProtocol::kRemoteWrite) {
      std::map<std::string, std::string> extra = settings.pushgateway_grouping;
      extra.emplace("job", settings.pushgateway_job);
      // Limitation: every sample carries the wall-clock time of the push (prometheus-cpp
      // keeps no sample times), and no metadata (HELP, TYPE) is sent: remote write 1.0 marks
      // it optional and both receivers store series without it.
      auto now_ms = std::chrono::duration_cast<milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
      return wire::snappy_compress(
          wire::encode_write_request(wire::to_time_series(families, extra, now_ms)));
    }
    std::string text = prometheus::TextSerializer().Serialize(families);
    if (!settings.pushgateway_gzip) return text;
    std::string gz = wire::gzip_compress(text);
    if (gz.empty()) throw std::runtime_error("gzip compression failed");
    return gz;
  }

  // Limitation: the state gauge is refreshed when a push ends, so OPEN turning HALF_OPEN by
  // the passing of time shows on the next push; circuit_state() reads it live.
  void count(PushMethod method, PushOutcome outcome) noexcept {
    try {
      std::lock_guard<std::mutex> lock(metrics_mutex);
      if (registry == nullptr) return;
      state_gauge->Set(static_cast<double>(breaker.state()));
      auto key = std::make_pair(method, outcome);
      auto it = pushes_counters.find(key);
      if (it == pushes_counters.end()) {
        auto& c = pushes_family->Add({{"method", std::string(to_string(method))},
                                      {"outcome", std::string(to_string(outcome))}});
        it = pushes_counters.emplace(key, &c).first;
      }
      it->second->Increment();
    } catch (...) {
    }
  }

  PushResult finish(PushMethod method, PushResult result) noexcept {
    ++pushes;
    if (result.outcome == PushOutcome::kOk) ++succeeded;
    count(method, result.outcome);
    return result;
  }

  PushResult push(const prometheus::Collectable* metrics, PushMethod method) noexcept {
    if (target.empty()) {
      return finish(method, {PushOutcome::kDisabled, 0, "pushing is disabled: no URL", 0});
    }
    if (method == PushMethod::kDelete && protocol != PushProtocol::kPushgateway) {
      warn("pushgateway_delete_unsupported", {{"protocol", std::string(to_string(protocol))}});
      return finish(method, {PushOutcome::kUnsupported, 0,
                             "delete is not supported by " + std::string(to_string(protocol)), 0});
    }

    std::string body;
    if (method != PushMethod::kDelete) {
      try {
        body = build_body(*metrics);
      } catch (const std::exception& e) {
        logger.error("pushgateway_serialize_failed", {{"error", e.what()}});
        return finish(method, {PushOutcome::kTransportError, 0,
                               std::string("serializing failed: ") + e.what(), 0});
      }
    }

    if (!breaker.can_execute()) {
      ++refused;
      warn("pushgateway_push_refused", {{"method", std::string(to_string(method))},
                                        {"circuit_state", std::string(to_string(breaker.state()))},
                                        {"url", redacted_target}});
      return finish(method, {PushOutcome::kCircuitOpen, 0, "circuit breaker is open", 0});
    }

    PushResult result;
    try {
      result = send(method, body);
    } catch (const std::exception& e) {
      result = {PushOutcome::kTransportError, 0, e.what(), 0};
    }

    if (result.ok()) {
      breaker.record_success();
    } else {
      ++failed;
      bool opened = breaker.record_failure();
      warn("pushgateway_push_failed", {{"method", std::string(to_string(method))},
                                       {"url", redacted_target},
                                       {"job", settings.pushgateway_job},
                                       {"outcome", std::string(to_string(result.outcome))},
                                       {"http_status", result.http_status},
                                       {"attempts", result.attempts},
                                       {"error", result.message}});
      if (opened) {
        logger.warning(
            "pushgateway_circuit_opened",
            {{"url", redacted_target},
             {"failure_count", breaker.failure_count()},
             {"recovery_timeout_ms",
              std::chrono::duration_cast<milliseconds>(breaker.recovery_timeout()).count()}});
      }
    }
    return finish(method, std::move(result));
  }
};

std::string_view to_string(PushMethod method) noexcept {
  switch (method) {
    case PushMethod::kPush:
      return "push";
    case PushMethod::kPushAdd:
      return "pushadd";
    case PushMethod::kDelete:
      return "delete";
  }
  return "unknown";
}

std::string_view to_string(PushOutcome outcome) noexcept {
  switch (outcome) {
    case PushOutcome::kOk:
      return "ok";
    case PushOutcome::kHttpError:
      return "http_error";
    case PushOutcome::kTransportError:
      return "transport_error";
    case PushOutcome::kTimeout:
      return "timeout";
    case PushOutcome::kCircuitOpen:
      return "circuit_open";
    case PushOutcome::kDisabled:
      return "disabled";
    case PushOutcome::kUnsupported:
      return "unsupported";
  }
  return "unknown";
}

PushgatewayClient::PushgatewayClient(ObservabilitySettings settings, const Clock& clock) {
  settings.validate();
  impl_ = std::make_unique<Impl>(std::move(settings), clock);
  impl_->target = build_target(impl_->settings, impl_->protocol);
  impl_->redacted_target = wire::redact_url(impl_->target);
  if (!impl_->target.empty()) curl_init_once();
}

PushgatewayClient::~PushgatewayClient() {
  if (impl_ != nullptr && impl_->curl != nullptr) curl_easy_cleanup(impl_->curl);
}

PushResult PushgatewayClient::push_metrics(const prometheus::Registry& registry,
                                           PushMethod method) noexcept {
  return push_metrics(static_cast<const prometheus::Collectable&>(registry), method);
}

PushResult PushgatewayClient::push_metrics(const prometheus::Collectable& metrics,
                                           PushMethod method) noexcept {
  return impl_->push(&metrics, method);
}

PushResult PushgatewayClient::delete_metrics() noexcept {
  return impl_->push(nullptr, PushMethod::kDelete);
}

bool PushgatewayClient::is_enabled() const noexcept { return !impl_->target.empty(); }

CircuitState PushgatewayClient::circuit_state() const noexcept { return impl_->breaker.state(); }

PushStats PushgatewayClient::stats() const noexcept {
  PushStats s;
  s.pushes = impl_->pushes.load();
  s.succeeded = impl_->succeeded.load();
  s.failed = impl_->failed.load();
  s.refused = impl_->refused.load();
  s.http_requests = impl_->http_requests.load();
  return s;
}

const ObservabilitySettings& PushgatewayClient::settings() const noexcept {
  return impl_->settings;
}

std::string PushgatewayClient::redacted_url() const { return impl_->redacted_target; }

void PushgatewayClient::register_metrics(std::shared_ptr<prometheus::Registry> registry,
                                         std::string_view ns) {
  if (registry == nullptr) throw std::invalid_argument("registry must not be null");
  if (!valid_metric_prefix(ns)) {
    throw std::invalid_argument("ns '" + std::string(ns) + "' is not a valid metric-name prefix");
  }
  std::string prefix(ns);

  auto& state = prometheus::BuildGauge()
                    .Name(prefix + "_pushgateway_circuit_state")
                    .Help("State of the push circuit breaker: 0 closed, 1 open, 2 half-open")
                    .Register(*registry);
  auto& pushes = prometheus::BuildCounter()
                     .Name(prefix + "_pushgateway_pushes_total")
                     .Help("Pushes attempted, by method and outcome")
                     .Register(*registry);

  std::lock_guard<std::mutex> lock(impl_->metrics_mutex);
  impl_->registry = std::move(registry);
  impl_->state_family = &state;
  impl_->state_gauge = &state.Add({});
  impl_->state_gauge->Set(static_cast<double>(impl_->breaker.state()));
  impl_->pushes_family = &pushes;
  impl_->pushes_counters.clear();
}

namespace {
std::mutex g_client_mutex;
std::shared_ptr<PushgatewayClient> g_client;  // guarded by g_client_mutex
}  // namespace

std::shared_ptr<PushgatewayClient> get_pushgateway_client() {
  std::lock_guard<std::mutex> lock(g_client_mutex);
  if (g_client == nullptr) {
    g_client = std::make_shared<PushgatewayClient>(ObservabilitySettings::from_env());
  }
  return g_client;
}

void reset_pushgateway_client() {
  std::lock_guard<std::mutex> lock(g_client_mutex);
  g_client.reset();
}

}  // namespace ccproxy::observability
