#include "ccproxy/observability/context.hpp"

#include <cxxabi.h>

#include <charconv>
#include <cstdlib>
#include <exception>
#include <typeinfo>

#include "ccproxy/observability/events.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "ccproxy/observability/storage.hpp"
#include "ids.hpp"
#include "json_writer.hpp"
#include "logging_internal.hpp"

namespace ccproxy::observability {
namespace {

// An incoming request id is echoed in headers and logs, so only a bounded run of visible
// ASCII is taken as it is; anything else is replaced by a fresh UUID.
constexpr std::size_t kMaxRequestIdLength = 128;

bool is_acceptable_request_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdLength) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

const std::vector<std::string>& default_operations() {
  static const std::vector<std::string> kDefault{"claude_api_call", "request_processing",
                                                 "auth_check"};
  return kDefault;
}

std::string_view str(const Value* v) noexcept {
  return v != nullptr ? std::string_view(v->as_string()) : std::string_view();
}

// Numbers given as numbers or as decimal strings ("200"); the fallback otherwise.
std::int64_t int_of(const Value* v, std::int64_t fallback = 0) noexcept {
  if (v == nullptr) return fallback;
  if (v->is_number()) return v->as_int(fallback);
  const std::string& s = v->as_string();
  std::int64_t out = fallback;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() ? out : fallback;
}

double double_of(const Value* v, double fallback = 0.0) noexcept {
  if (v == nullptr) return fallback;
  if (v->is_number()) return v->as_double(fallback);
  const std::string& s = v->as_string();
  double out = fallback;
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);  // locale-independent
  return r.ec == std::errc() && r.ptr == s.data() + s.size() ? out : fallback;
}

bool bool_of(const Value* v) noexcept {
  if (v == nullptr) return false;
  if (v->type() == Value::Type::kBool) return v->as_bool();
  if (v->is_number()) return v->as_int() != 0;
  return v->as_string() == "true";
}

// The demangled type and what() of the exception being handled.
// Limitation: relies on the Itanium C++ ABI (GCC, Clang), the ABI of every Debian target.
void describe_current_exception(std::string& type, std::string& message) {
  type = "unknown_exception";
  message.clear();
  std::exception_ptr current = std::current_exception();
  if (!current) return;
  if (const std::type_info* info = abi::__cxa_current_exception_type()) {
    int status = 0;
    char* name = abi::__cxa_demangle(info->name(), nullptr, nullptr, &status);
    type = status == 0 && name != nullptr ? name : info->name();
    std::free(name);
  }
  try {
    std::rethrow_exception(current);
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
  }
}

// The first failure of a scope or operation wins; later ones are ignored.
void record_failure(bool& failed, std::string& type, std::string& message,
                    std::string_view error_type, std::string_view error_message) {
  if (failed) return;
  failed = true;
  type = error_type.empty() ? std::string_view("error") : error_type;
  message = error_message;
}

void record_current_exception(bool& failed, std::string& type, std::string& message) {
  if (failed) return;
  std::string current_type;
  std::string current_message;
  describe_current_exception(current_type, current_message);
  record_failure(failed, type, message, current_type, current_message);
}

// Durations are kept in whole microseconds: finer digits are noise in a request log, and
// such numbers are written without the shortest-form search.
double to_seconds(Clock::duration d) noexcept {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
         1e6;
}

double to_ms(Clock::duration d) noexcept {
  return static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(d).count()) /
         1e3;
}

AccessLogRow make_row(const std::string& request_id, std::chrono::system_clock::time_point start,
                      const Fields& m, std::string_view endpoint, double seconds, double ms) {
  auto f = [&m](std::string_view key) { return m.find(key); };
  AccessLogRow row;
  row.request_id = request_id;
  row.timestamp = start;
  row.method = str(f("method"));
  row.endpoint = endpoint;
  row.path = str(f("path"));
  row.query = str(f("query"));
  row.client_ip = str(f("client_ip"));
  row.user_agent = str(f("user_agent"));
  row.service_type = str(f("service_type"));
  row.model = str(f("model"));
  row.streaming = bool_of(f("streaming"));
  row.status_code = static_cast<int>(int_of(f("status_code")));
  row.duration_ms = ms;
  row.duration_seconds = seconds;
  row.tokens_input = int_of(f("tokens_input"));
  row.tokens_output = int_of(f("tokens_output"));
  row.cache_read_tokens = int_of(f("cache_read_tokens"));
  row.cache_write_tokens = int_of(f("cache_write_tokens"));
  row.cost_usd = double_of(f("cost_usd"));
  row.cost_sdk_usd = double_of(f("cost_sdk_usd"));
  row.num_turns = int_of(f("num_turns"));
  row.session_id = str(f("session_id"));
  row.session_type = str(f("session_type"));
  row.session_status = str(f("session_status"));
  row.session_age_seconds = double_of(f("session_age_seconds"));
  row.session_message_count = int_of(f("session_message_count"));
  row.session_client_id = str(f("session_client_id"));
  row.session_pool_enabled = bool_of(f("session_pool_enabled"));
  row.session_idle_seconds = double_of(f("session_idle_seconds"));
  row.session_error = str(f("session_error"));
  row.session_is_new = bool_of(f("session_is_new"));
  return row;
}

}  // namespace

OperationNames::OperationNames(std::initializer_list<std::string> names)
    : names_(std::make_shared<const std::vector<std::string>>(names)) {}

OperationNames::OperationNames(std::vector<std::string> names)
    : names_(std::make_shared<const std::vector<std::string>>(std::move(names))) {}

bool OperationNames::contains(std::string_view name) const noexcept {
  for (const std::string& n : names_ ? *names_ : default_operations()) {
    if (n == name) return true;
  }
  return false;
}

RequestContext::RequestContext(const RequestContextOptions& options, Fields initial) noexcept
    : clock_(options.clock != nullptr ? options.clock : &Clock::steady()),
      start_(clock_->now()),
      uncaught_at_start_(std::uncaught_exceptions()),
      request_id_(is_acceptable_request_id(options.request_id) ? options.request_id
                                                               : detail::new_uuid4()),
      metadata_(std::move(initial)),
      logger_(options.logger),
      metrics_(options.metrics),
      storage_(options.storage),
      tracker_(options.tracker),
      events_(options.events),
      important_operations_(options.important_operations) {
  if (!options.traceparent.empty()) {
    if (auto parent = TraceContext::parse(options.traceparent)) {
      trace_id_ = std::move(parent->trace_id);
      parent_span_id_ = std::move(parent->parent_id);
      trace_flags_ = parent->flags;
    }
  }
  if (trace_id_.empty() && options.start_trace) {
    trace_id_ = detail::new_hex_id(16);
    trace_flags_ = 0x01;  // sampled: every request is logged
  }
  if (!trace_id_.empty()) span_id_ = detail::new_hex_id(8);
  if (storage_) start_wall_ = std::chrono::system_clock::now();

  if (logger_.enabled(LogLevel::kDebug)) {
    detail::log_sets(logger_, LogLevel::kDebug, "request_start", {&ids(), &metadata_});
  }
  if (metrics_ != nullptr) metrics_->inc_active_requests();
  if (events_ != nullptr && events_->has_subscribers()) {
    Fields data;
    data.reserve(metadata_.size() + 1);
    data.set("request_id", request_id_);
    data.merge(metadata_);
    events_->publish("request_start", std::move(data));
  }
  if (tracker_ != nullptr) tracker_handle_ = tracker_->add_context(request_id_, metadata_);
}

RequestContext::~RequestContext() { finish(); }

std::string RequestContext::child_traceparent() const noexcept {
  if (trace_id_.empty()) return {};
  return TraceContext{trace_id_, span_id_, trace_flags_}.to_traceparent();
}

const Fields& RequestContext::ids() const noexcept {
  // Built on the first line written, so a scope whose lines are all disabled never copies.
  if (ids_.empty()) {
    ids_.reserve(trace_id_.empty() ? 1 : 3);
    ids_.set("request_id", request_id_);
    if (!trace_id_.empty()) {
      ids_.set("trace_id", trace_id_);
      ids_.set("span_id", span_id_);
    }
  }
  return ids_;
}

Clock::duration RequestContext::elapsed() const noexcept { return clock_->now() - start_; }

double RequestContext::duration_ms() const noexcept { return to_ms(elapsed()); }

double RequestContext::duration_seconds() const noexcept { return to_seconds(elapsed()); }

const Fields& RequestContext::metadata() const noexcept {
  compact();
  return metadata_;
}

void RequestContext::compact() const noexcept {
  for (std::size_t i = 0; i < n_added_; ++i) {
    metadata_.merge(added_[i]);
    added_[i] = Fields();
  }
  n_added_ = 0;
}

void RequestContext::add_metadata(const Fields& fields) noexcept { add_metadata(Fields(fields)); }

void RequestContext::add_metadata(Fields&& fields) noexcept {
  if (fields.empty()) return;
  if (n_added_ == kMaxChunks) compact();
  added_[n_added_++] = std::move(fields);
}

const Value* RequestContext::find_metadata(std::string_view key) const noexcept {
  for (std::size_t i = n_added_; i > 0; --i) {
    if (const Value* v = detail::find_field(added_[i - 1], key)) return v;
  }
  return detail::find_field(metadata_, key);
}

std::size_t RequestContext::line_sets(const Fields** out) const noexcept {
  std::size_t n = 0;
  out[n++] = &ids();
  out[n++] = &metadata_;
  for (std::size_t i = 0; i < n_added_; ++i) out[n++] = &added_[i];
  return n;
}

void RequestContext::log_event(std::string_view event, const Fields& fields) const noexcept {
  if (!logger_.enabled(LogLevel::kInfo)) return;
  const Fields timing{{"duration_ms", duration_ms()}};
  const Fields* sets[kMaxChunks + 4];
  std::size_t n = line_sets(sets);
  sets[n++] = &timing;
  sets[n++] = &fields;
  detail::log_sets(logger_, LogLevel::kInfo, event, sets, n);
}

Logger RequestContext::logger() const noexcept { return logger_.bind(ids()).bind(metadata()); }

void RequestContext::fail(std::string_view error_type, std::string_view message) noexcept {
  record_failure(failed_, error_type_, error_message_, error_type, message);
}

void RequestContext::fail_with_current_exception() noexcept {
  record_current_exception(failed_, error_type_, error_message_);
}

void RequestContext::finish() noexcept {
  const Clock::duration took = elapsed();
  const double seconds = to_seconds(took);
  const double ms = to_ms(took);
  if (std::uncaught_exceptions() > uncaught_at_start_) {
    // Limitation: a destructor cannot see the exception that is unwinding through it, so
    // without run_in_context (or fail_with_current_exception in a catch) the error type is
    // the generic "unhandled_exception".
    fail("unhandled_exception", "an exception left the request scope");
  }
  // Storage and events need the metadata folded together; fold before taking views into it.
  const bool publish = events_ != nullptr && events_->has_subscribers();
  if (storage_ || publish) compact();
  // Metrics and storage label by these; a scope with neither does not look them up.
  std::string_view endpoint, model, service_type;
  if (metrics_ != nullptr || storage_) {
    endpoint = str(find_metadata("endpoint"));
    if (endpoint.empty()) endpoint = str(find_metadata("path"));
    model = str(find_metadata("model"));
    service_type = str(find_metadata("service_type"));
  }

  try {
    const Fields* sets[kMaxChunks + 4];
    std::size_t n = 0;
    const LogLevel access_level = failed_ ? LogLevel::kWarning : LogLevel::kInfo;
    // The sets are gathered only for a line that is written: ids() copies the request id.
    const bool error_line = failed_ && logger_.enabled(LogLevel::kError);
    if (error_line || logger_.enabled(access_level)) n = line_sets(sets);
    if (error_line) {
      const Fields error{{"duration_ms", ms},
                         {"duration_seconds", seconds},
                         {"error_type", error_type_},
                         {"error_message", error_message_}};
      sets[n] = &error;
      detail::log_sets(logger_, LogLevel::kError, "request_error", sets, n + 1);
    }
    if (logger_.enabled(access_level)) {
      // The access-log fields are always present, null when the request did not set them.
      Fields tail;
      tail.reserve(10);
      for (const char* key :
           {"method", "path", "query", "client_ip", "user_agent", "status_code"}) {
        if (find_metadata(key) == nullptr) tail.set(key, nullptr);
      }
      tail.set("duration_ms", ms);
      tail.set("duration_seconds", seconds);
      if (failed_) tail.set("error_type", error_type_);
      sets[n] = &tail;
      detail::log_sets(logger_, access_level, "access_log", sets, n + 1);
    }

    if (storage_) {
      storage_->store(make_row(request_id_, start_wall_, metadata_, endpoint, seconds, ms));
    }

    if (publish) {
      const Fields& meta = metadata_;
      Fields data;
      data.reserve(meta.size() + 4);
      data.set("request_id", request_id_);
      data.merge(meta);
      data.set("duration_ms", ms);
      if (failed_) {
        data.set("error_type", error_type_);
        data.set("error_message", error_message_);
      }
      events_->publish(failed_ ? "request_error" : "request_complete", std::move(data));
    }
  } catch (...) {
    // Out of memory while reporting: what was not reported is lost, the request still ends.
  }

  if (metrics_ != nullptr) {
    CompletedRequest done;
    done.method = str(find_metadata("method"));
    done.endpoint = endpoint;
    done.model = model;
    done.service_type = service_type;
    char status_text[24];
    const Value* status = find_metadata("status_code");
    if (status != nullptr && status->is_number()) {
      auto r = std::to_chars(status_text, status_text + sizeof status_text, int_of(status));
      done.status = std::string_view(status_text, static_cast<std::size_t>(r.ptr - status_text));
    } else if (status != nullptr && !status->as_string().empty()) {
      done.status = status->as_string();
    }
    done.duration_seconds = seconds;
    done.tokens_input = int_of(find_metadata("tokens_input"));
    done.tokens_output = int_of(find_metadata("tokens_output"));
    done.cache_read_tokens = int_of(find_metadata("cache_read_tokens"));
    done.cache_write_tokens = int_of(find_metadata("cache_write_tokens"));
    done.cost_usd = double_of(find_metadata("cost_usd"));
    metrics_->record_completed_request(done);
    if (failed_) metrics_->record_error(error_type_, endpoint, model, service_type);
    metrics_->dec_active_requests();
  }
  if (tracker_ != nullptr) tracker_->remove_context(tracker_handle_);
}

TimedOperation::TimedOperation(const RequestContext& ctx, std::string_view operation_name,
                               Fields fields) noexcept
    : ctx_(ctx),
      start_(ctx.clock().now()),
      uncaught_at_start_(std::uncaught_exceptions()),
      important_(ctx.is_important_operation(operation_name)),
      operation_id_(detail::new_uuid4()) {
  fields_.reserve(fields.size() + 2);
  fields_.set("operation_name", operation_name);
  fields_.set("operation_id", operation_id_);
  fields_.merge(fields);
  if (important_) {
    detail::log_sets(ctx_.logger_, LogLevel::kDebug, "operation_start", {&ctx_.ids(), &fields_});
  }
}

TimedOperation::~TimedOperation() {
  if (std::uncaught_exceptions() > uncaught_at_start_) {
    fail("unhandled_exception", "an exception left the operation scope");
  }
  try {
    if (failed_) {
      const Fields tail{{"duration_ms", duration_ms()},
                        {"error_type", error_type_},
                        {"error_message", error_message_}};
      detail::log_sets(ctx_.logger_, LogLevel::kError, "operation_error",
                       {&ctx_.ids(), &fields_, &tail});
    } else if (important_ && ctx_.logger_.enabled(LogLevel::kInfo)) {
      const Fields tail{{"duration_ms", duration_ms()}};
      detail::log_sets(ctx_.logger_, LogLevel::kInfo, "operation_success",
                       {&ctx_.ids(), &fields_, &tail});
    }
  } catch (...) {
    // Out of memory while logging: the line is lost.
  }
}

double TimedOperation::duration_ms() const noexcept { return to_ms(ctx_.clock().now() - start_); }

void TimedOperation::add(const Fields& fields) noexcept { fields_.merge(fields); }

void TimedOperation::fail(std::string_view error_type, std::string_view message) noexcept {
  record_failure(failed_, error_type_, error_message_, error_type, message);
}

void TimedOperation::fail_with_current_exception() noexcept {
  record_current_exception(failed_, error_type_, error_message_);
}

}  // namespace ccproxy::observability
