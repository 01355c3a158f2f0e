// Request scopes: `RequestContext` times one request, logs it as structured JSON (a debug
// `request_start`, one `access_log` line at the end, `request_error` on failure), feeds the
// PrometheusMetrics facade, access-log storage, a ContextTracker and an EventBus.
// `TimedOperation` times one step inside a request. W3C trace context is propagated.
//
// Example:
//   ccproxy::observability::RequestContext ctx(options, {{"method", "POST"}, {"path", "/v1"}});
//   ctx.add_metadata({{"model", "claude-3-5-sonnet"}, {"status_code", 200}});
//   upstream_headers["traceparent"] = ctx.child_traceparent();  // access_log at scope end
//
// Metadata keys the scope reads: method, path, query, client_ip, user_agent, endpoint (else
// path), model, service_type, streaming, status_code, tokens_input, tokens_output,
// cache_read_tokens, cache_write_tokens, cost_usd, cost_sdk_usd, num_turns and session_*.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ccproxy/observability/clock.hpp"
#include "ccproxy/observability/fields.hpp"
#include "ccproxy/observability/logging.hpp"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

class AccessLogStorage;
class ContextTracker;
class EventBus;
class PrometheusMetrics;

// A W3C Trace Context `traceparent` (version 00). Plain value type, not synchronised.
struct TraceContext {
  std::string trace_id;   // 32 lowercase hex digits, not all zero
  std::string parent_id;  // 16 lowercase hex digits, not all zero
  std::uint8_t flags = 0;

  // Parses a traceparent header. Anything malformed (wrong lengths, upper-case hex, all-zero
  // ids, version ff, extra data after a version 00 header) gives nullopt, never an error.
  static std::optional<TraceContext> parse(std::string_view header) noexcept;
  // "00-<trace_id>-<parent_id>-<flags>".
  std::string to_traceparent() const;
};

// The operation names a TimedOperation logs start and success for. Cheap to copy (shares an
// immutable list). Default: claude_api_call, request_processing, auth_check. Thread-safe.
class OperationNames {
 public:
  OperationNames() = default;
  OperationNames(std::initializer_list<std::string> names);
  explicit OperationNames(std::vector<std::string> names);

  bool contains(std::string_view name) const noexcept;

 private:
  std::shared_ptr<const std::vector<std::string>> names_;  // null: the defaults
};

struct RequestContextOptions {
  // The request id, typically the incoming X-Request-ID header. Empty: a new UUIDv4. An id
  // is echoed in headers and logs, so one longer than 128 bytes or holding anything but
  // visible ASCII is replaced by a new UUIDv4 too.
  std::string request_id;
  // The incoming W3C traceparent header. A valid one makes the request part of that trace
  // (trace_id and span_id go into every line); empty or malformed ones are ignored.
  std::string traceparent;
  // With no valid traceparent, start a new trace so that child_traceparent() has one.
  bool start_trace = false;
  // Optional collaborators; each must outlive the contexts that use it.
  PrometheusMetrics* metrics = nullptr;
  std::shared_ptr<AccessLogStorage> storage;
  ContextTracker* tracker = nullptr;
  EventBus* events = nullptr;
  // The logger every line of the request goes through.
  Logger logger{"ccproxy.request"};
  // The monotonic clock timing the request. Null: Clock::steady().
  const Clock* clock = nullptr;
  OperationNames important_operations;
};

// The RAII scope of one request. Not thread-safe: one request is handled by one thread at a
// time (the tracker and the event bus get copies, so other threads never read it). Every
// method is noexcept; out of memory inside the scope terminates the process.
class RequestContext {
 public:
  // Starts the request: debug `request_start`, active requests +1, `request_start` event,
  // added to the tracker. `options` is read here and need not outlive the context.
  explicit RequestContext(const RequestContextOptions& options, Fields initial = {}) noexcept;
  // Ends the request (see the file comment). An exception leaving the scope marks it failed.
  ~RequestContext();
  RequestContext(const RequestContext&) = delete;
  RequestContext& operator=(const RequestContext&) = delete;

  const std::string& request_id() const noexcept { return request_id_; }
  // Empty when the request is not part of a trace.
  const std::string& trace_id() const noexcept { return trace_id_; }
  // This request's own span id (empty without a trace) and the caller's (empty unless a
  // valid traceparent came in).
  const std::string& span_id() const noexcept { return span_id_; }
  const std::string& parent_span_id() const noexcept { return parent_span_id_; }
  // The traceparent to send upstream: this trace, this request's span as the parent. Empty
  // when the request is not part of a trace.
  std::string child_traceparent() const noexcept;

  // Time since the scope started, by the options' clock.
  Clock::duration elapsed() const noexcept;
  double duration_ms() const noexcept;
  double duration_seconds() const noexcept;

  // The initial fields and every field added since (a key added again has its last value).
  const Fields& metadata() const noexcept;
  // Merges `fields` into the metadata; later lines of the request carry them. A temporary is
  // taken over without copying its fields.
  void add_metadata(const Fields& fields) noexcept;
  void add_metadata(Fields&& fields) noexcept;
  // The metadata value under `key`, or nullptr.
  const Value* find_metadata(std::string_view key) const noexcept;
  // Logs `event` at info with request_id, duration_ms, the metadata and `fields`.
  void log_event(std::string_view event, const Fields& fields = {}) const noexcept;
  // The request's logger with request_id (and trace ids) and the current metadata bound.
  Logger logger() const noexcept;

  // Marks the request failed: at the end `request_error` is logged at error, the access_log
  // line is a warning, errors_total +1, `request_error` goes to the bus. The first failure
  // recorded is the one reported.
  void fail(std::string_view error_type, std::string_view message = {}) noexcept;
  // Inside a catch block: fails with the demangled type and what() of the current exception.
  void fail_with_current_exception() noexcept;
  bool failed() const noexcept { return failed_; }
  const std::string& error_type() const noexcept { return error_type_; }
  const std::string& error_message() const noexcept { return error_message_; }

  const Clock& clock() const noexcept { return *clock_; }
  bool is_important_operation(std::string_view name) const noexcept {
    return important_operations_.contains(name);
  }

 private:
  friend class TimedOperation;

  static constexpr std::size_t kMaxChunks = 3;

  void finish() noexcept;
  const Fields& ids() const noexcept;
  // Folds the added chunks into metadata_.
  void compact() const noexcept;
  // The field sets a request line carries: ids, metadata, chunks; returns how many.
  std::size_t line_sets(const Fields** out) const noexcept;

  const Clock* clock_;
  Clock::time_point start_;
  std::chrono::system_clock::time_point start_wall_{};  // read only when storage is set
  int uncaught_at_start_;
  std::string request_id_;
  std::string trace_id_;
  std::string span_id_;
  std::string parent_span_id_;
  std::uint8_t trace_flags_ = 0;
  mutable Fields ids_;  // request_id, trace_id, span_id: what every line starts with
  // The metadata is the initial fields plus up to kMaxChunks sets added whole (later wins),
  // so add_metadata moves a set in instead of copying field by field; reading metadata()
  // folds them together.
  mutable Fields metadata_;
  mutable Fields added_[kMaxChunks];
  mutable std::size_t n_added_ = 0;
  Logger logger_;
  PrometheusMetrics* metrics_;
  std::shared_ptr<AccessLogStorage> storage_;
  ContextTracker* tracker_;
  EventBus* events_;
  OperationNames important_operations_;
  std::uint64_t tracker_handle_ = 0;
  bool failed_ = false;
  std::string error_type_;
  std::string error_message_;
};

// Runs `fn(ctx)` inside a new RequestContext. An exception is recorded (demangled type as
// error_type, what() as error_message) and rethrown.
template <typename Fn>
decltype(auto) run_in_context(const RequestContextOptions& options, Fields initial, Fn&& fn) {
  RequestContext ctx(options, std::move(initial));
  try {
    return std::forward<Fn>(fn)(ctx);
  } catch (...) {
    ctx.fail_with_current_exception();
    throw;
  }
}

// Times one step of a request. For an important operation (see RequestContextOptions) it
// logs debug `operation_start` and, at the end, info `operation_success` with duration_ms;
// for any operation a failure (fail() or an exception leaving the scope) logs error
// `operation_error`. Not thread-safe, like the RequestContext it belongs to, which must
// outlive it.
class TimedOperation {
 public:
  TimedOperation(const RequestContext& ctx, std::string_view operation_name,
                 Fields fields = {}) noexcept;
  ~TimedOperation();
  TimedOperation(const TimedOperation&) = delete;
  TimedOperation& operator=(const TimedOperation&) = delete;

  const std::string& operation_id() const noexcept { return operation_id_; }
  double duration_ms() const noexcept;
  // Adds fields to the operation's closing line (response size, attempt count, ...).
  void add(const Fields& fields) noexcept;
  void fail(std::string_view error_type, std::string_view message = {}) noexcept;
  void fail_with_current_exception() noexcept;
  bool failed() const noexcept { return failed_; }

 private:
  const RequestContext& ctx_;
  Clock::time_point start_;
  int uncaught_at_start_;
  bool important_;
  std::string operation_id_;
  Fields fields_;  // operation_name, operation_id, then the caller's
  bool failed_ = false;
  std::string error_type_;
  std::string error_message_;
};

// What the tracker knows of one active request: a copy taken when it started, so readers
// on other threads never touch the live RequestContext.
struct TrackedRequest {
  std::string request_id;
  Fields fields;                // the initial fields (method, path, client_ip, ...)
  Clock::time_point started{};  // by the tracker's clock
};

// Active requests, for dashboards and leak detection. Thread-safe: every method may be
// called from any thread.
class ContextTracker {
 public:
  explicit ContextTracker(const Clock& clock = Clock::steady());
  ~ContextTracker();
  ContextTracker(const ContextTracker&) = delete;
  ContextTracker& operator=(const ContextTracker&) = delete;

  // Adds a request (stamped with the tracker's clock) and returns a handle for removal.
  std::uint64_t add_context(std::string request_id, Fields fields = {}) noexcept;
  // Removes the entry with this handle; false when it is not there (already removed, or
  // dropped as stale).
  bool remove_context(std::uint64_t handle) noexcept;
  // Removes the oldest entry with this request id.
  bool remove_context(std::string_view request_id) noexcept;
  // The oldest active entry with this request id.
  std::optional<TrackedRequest> get_context(std::string_view request_id) const;
  std::size_t get_active_count() const noexcept;
  // A snapshot of every active request, oldest first.
  std::vector<TrackedRequest> get_all_active_contexts() const;

  // Drops requests active for longer than `max_age`, counts them, logs one warning
  // (`stale_contexts_removed`, rate-limited) when any were dropped, and returns how many.
  std::size_t cleanup_stale_contexts(
      std::chrono::steady_clock::duration max_age = std::chrono::seconds(300)) noexcept;
  // Requests dropped as stale since the tracker was created.
  std::uint64_t stale_removed_total() const noexcept;
  // Registers `<ns>_stale_contexts_removed_total` in `registry` and counts there from now on.
  // Throws std::invalid_argument naming a namespace that is not a valid metric-name prefix.
  void register_metrics(std::shared_ptr<prometheus::Registry> registry, std::string_view ns);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The process-wide tracker, created on first use. Thread-safe.
ContextTracker& get_context_tracker();

}  // namespace ccproxy::observability
