// Structured logging: one JSON object per line (or key=value for humans) through spdlog, with
// fields bound to a logger and fields given per event.
//
// Example:
//   ccproxy::observability::configure_logging({});          // JSON lines on stdout, info
//   ccproxy::observability::Logger log("ccproxy.proxy", {{"service", "api"}});
//   log.info("upstream_connected", {{"host", "127.0.0.1"}, {"port", 8080}});
//
// A JSON line holds `timestamp` (RFC 3339 UTC, milliseconds), `level`, `logger`, `event`,
// then the bound fields, then the event's fields; a key given in both is written once, with
// the event's value. A field named like one of those four (or `truncated`) does not overwrite
// it: it is written as `field_<name>`. Strings are escaped per RFC 8259 with invalid UTF-8
// replaced by U+FFFD, numbers are written independently of the process locale, and strings
// longer than LoggingOptions::max_value_length are cut and mark the line `"truncated":true`.
// The level is checked before anything is formatted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "ccproxy/observability/fields.hpp"

namespace ccproxy::observability {

enum class LogLevel { kTrace, kDebug, kInfo, kWarning, kError, kCritical, kOff };
enum class LogFormat { kJson, kConsole };

struct LoggingOptions {
  LogFormat format = LogFormat::kJson;
  LogLevel level = LogLevel::kInfo;
  // Empty: standard output. Otherwise a file, rotated at max_file_size (0: never rotated)
  // keeping max_files old files.
  std::string file;
  std::size_t max_file_size = 100 * 1024 * 1024;
  std::size_t max_files = 5;
  // Asynchronous logging: lines are formatted on the calling thread and written by a
  // background thread through a bounded queue of async_queue_size lines. When the queue is
  // full the oldest line is dropped (counted in LoggingStats::dropped_lines), so logging
  // never waits for the disk.
  bool async = false;
  std::size_t async_queue_size = 8192;
  // String values longer than this many bytes are cut (on a UTF-8 boundary) and the line
  // gets `"truncated": true`.
  std::size_t max_value_length = 8192;
  // When set, each finished line (without the newline) goes to this callable instead of
  // stdout or the file: for tests and for forwarding into another logging system. It is
  // called under a lock and must not log through this library itself.
  std::function<void(std::string_view line)> line_sink;
};

// Replaces the process-wide logging configuration, after writing out what the previous one
// buffered. Throws std::invalid_argument naming the bad setting (a file that cannot be
// opened, a zero queue size, ...). Thread-safe.
void configure_logging(const LoggingOptions& options);
// Writes out everything buffered, including the async queue (waiting up to 5 seconds for
// the background thread). Thread-safe, never throws.
void flush_logging() noexcept;

struct LoggingStats {
  // Lines lost because the async queue was full, since the process started.
  std::uint64_t dropped_lines = 0;
  // Lines a sink failed to write (disk full, closed descriptor, a throwing line_sink).
  std::uint64_t write_errors = 0;
};
// Counters of the logging system itself. Thread-safe.
LoggingStats logging_stats() noexcept;
// Reads "trace", "debug", "info", "warning" (or "warn"), "error", "critical", "off", in any
// case. Throws std::invalid_argument naming the text otherwise.
LogLevel parse_log_level(std::string_view text);
std::string_view to_string(LogLevel level) noexcept;

// A named logger with bound fields. Cheap to copy; binding returns a new logger and leaves
// this one unchanged. Thread-safe: a Logger is immutable after construction, and every
// method may be called from any thread. Logging never throws.
class Logger {
 public:
  explicit Logger(std::string name = "ccproxy", Fields bound = {});

  // A logger with the same name and `fields` bound in addition (a bound key set again takes
  // the new value).
  Logger bind(const Fields& fields) const;

  const std::string& name() const noexcept { return name_; }
  const Fields& bound() const noexcept { return bound_; }

  // True when a line at `level` would be written. One atomic load.
  bool enabled(LogLevel level) const noexcept;

  void log(LogLevel level, std::string_view event, const Fields& fields = {}) const noexcept;
  void trace(std::string_view event, const Fields& fields = {}) const noexcept {
    log(LogLevel::kTrace, event, fields);
  }
  void debug(std::string_view event, const Fields& fields = {}) const noexcept {
    log(LogLevel::kDebug, event, fields);
  }
  void info(std::string_view event, const Fields& fields = {}) const noexcept {
    log(LogLevel::kInfo, event, fields);
  }
  void warning(std::string_view event, const Fields& fields = {}) const noexcept {
    log(LogLevel::kWarning, event, fields);
  }
  void error(std::string_view event, const Fields& fields = {}) const noexcept {
    log(LogLevel::kError, event, fields);
  }

 private:
  std::string name_;
  Fields bound_;
};

}  // namespace ccproxy::observability
