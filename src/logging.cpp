#include "ccproxy/observability/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "json_writer.hpp"
#include "logging_internal.hpp"
#include "rate_limit.hpp"

namespace ccproxy::observability {
namespace {

constexpr auto kAsyncFlushTimeout = std::chrono::seconds(5);

// Hands finished lines to a user callable.
class CallbackSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit CallbackSink(std::function<void(std::string_view)> fn) : fn_(std::move(fn)) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    fn_(std::string_view(msg.payload.data(), msg.payload.size()));
  }
  void flush_() override {}

 private:
  std::function<void(std::string_view)> fn_;
};

// Wraps the real sink and counts completed flushes, so flush_logging() can wait for the async
// thread to reach the flush it posted.
class FlushCountingSink final : public spdlog::sinks::sink {
 public:
  explicit FlushCountingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

  void log(const spdlog::details::log_msg& msg) override { inner_->log(msg); }
  void flush() override {
    inner_->flush();
    // Notified under the lock: a waiter that wakes may destroy this sink right after.
    std::lock_guard<std::mutex> lock(mutex_);
    ++flushes_;
    cv_.notify_all();
  }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

  std::uint64_t flushes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return flushes_;
  }
  bool wait_for_flushes_above(std::uint64_t n, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return flushes_ > n; });
  }

 private:
  spdlog::sink_ptr inner_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::uint64_t flushes_ = 0;  // guarded by mutex_
};

// One logging configuration: immutable once published.
struct Config {
  LogFormat format = LogFormat::kJson;
  std::size_t max_value_length = 8192;
  bool async = false;
  std::shared_ptr<FlushCountingSink> sink;
  std::shared_ptr<spdlog::logger> logger;
};

// The level is read with one relaxed load on every call. The configuration is published under
// g_config_mutex with a new generation number; each thread keeps its own reference to the
// current one and takes the mutex only when the generation moved, so logging threads never
// contend on a lock.
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<std::uint64_t> g_generation{1};
std::mutex g_config_mutex;
std::shared_ptr<const Config> g_config;  // guarded by g_config_mutex
std::mutex g_flush_mutex;                // one flush_logging() at a time
std::atomic<std::uint64_t> g_write_errors{0};

spdlog::level::level_enum to_spdlog(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarning:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kCritical:
      return spdlog::level::critical;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

void on_write_error(const std::string& message) {
  g_write_errors.fetch_add(1, std::memory_order_relaxed);
  // The log itself is what failed, so the report goes to stderr, at most once per minute.
  static detail::RateLimiter limiter(std::chrono::minutes(1));
  std::uint64_t suppressed = 0;
  if (limiter.allow("log_write_failed", &suppressed)) {
    std::fprintf(stderr,
                 "ccproxy.observability.logging: log_write_failed error=\"%s\" suppressed=%llu\n",
                 message.c_str(), static_cast<unsigned long long>(suppressed));
  }
}

std::shared_ptr<const Config> make_config(const LoggingOptions& options) {
  if (options.async && options.async_queue_size == 0) {
    throw std::invalid_argument("LoggingOptions.async_queue_size must be positive");
  }
  if (options.max_value_length == 0) {
    throw std::invalid_argument("LoggingOptions.max_value_length must be positive");
  }
  if (!options.file.empty() && options.max_file_size != 0 && options.max_files == 0) {
    throw std::invalid_argument("LoggingOptions.max_files must be positive for a rotating file");
  }
  spdlog::sink_ptr sink;
  try {
    if (options.line_sink) {
      sink = std::make_shared<CallbackSink>(options.line_sink);
    } else if (options.file.empty()) {
      sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
    } else if (options.max_file_size == 0) {
      sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file);
    } else {
      sink = std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
          options.file, options.max_file_size, options.max_files);
    }
  } catch (const spdlog::spdlog_ex& e) {
    throw std::invalid_argument("LoggingOptions.file '" + options.file +
                                "' cannot be opened: " + e.what());
  }
  sink->set_pattern("%v");

  auto config = std::make_shared<Config>();
  config->format = options.format;
  config->max_value_length = options.max_value_length;
  config->async = options.async;
  config->sink = std::make_shared<FlushCountingSink>(std::move(sink));
  if (options.async) {
    // Limitation: spdlog has one global thread pool, so the queue size of the first async
    // configuration in a process is the one that holds.
    static std::once_flag pool_once;
    std::call_once(pool_once, [&] { spdlog::init_thread_pool(options.async_queue_size, 1); });
    config->logger =
        std::make_shared<spdlog::async_logger>("ccproxy", config->sink, spdlog::thread_pool(),
                                               spdlog::async_overflow_policy::overrun_oldest);
  } else {
    // Limitation: a synchronous logger writes on the calling thread, so a slow disk or a slow
    // line_sink slows the request that logs; async mode is the one that never waits for I/O.
    config->logger = std::make_shared<spdlog::logger>("ccproxy", config->sink);
  }
  config->logger->set_level(spdlog::level::trace);  // filtering happens before formatting
  config->logger->set_error_handler(on_write_error);
  return config;
}

std::shared_ptr<const Config> current_config_locked() {
  if (!g_config) g_config = make_config(LoggingOptions{});
  return g_config;
}

// The calling thread's view of the configuration: one atomic load when nothing changed.
const Config& thread_config() {
  thread_local std::shared_ptr<const Config> cached;
  thread_local std::uint64_t seen = 0;
  const std::uint64_t generation = g_generation.load(std::memory_order_acquire);
  if (generation != seen || !cached) {
    std::lock_guard<std::mutex> lock(g_config_mutex);
    cached = current_config_locked();
    seen = g_generation.load(std::memory_order_relaxed);
  }
  return *cached;
}

bool is_reserved(std::string_view key) {
  return key == "timestamp" || key == "level" || key == "logger" || key == "event" ||
         key == "truncated";
}

// Console values are written bare unless they would be ambiguous.
void append_console_value(std::string& out, const Value& v, std::size_t max_len, bool& cut) {
  if (!v.is_string()) {
    out.append(v.to_string());
    return;
  }
  const std::string& s = v.as_string();
  bool plain = !s.empty();
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || c == '"' || c == '=' || c == '\\' || u == 0x7F) {
      plain = false;
      break;
    }
  }
  if (plain && s.size() <= max_len) {
    out.append(detail::sanitize_utf8(s));
  } else {
    cut |= detail::append_json_string(out, s, max_len);
  }
}

void append_key(std::string& out, const std::string& key, std::size_t max_len, bool json) {
  if (json) {
    if (is_reserved(key)) {
      detail::append_json_string(out, "field_" + key, max_len);
    } else {
      detail::append_json_string(out, key, max_len);
    }
    return;
  }
  if (is_reserved(key)) out.append("field_");
  out.append(detail::sanitize_utf8(key));
}

void render(std::string& out, const Config& config, LogLevel level, std::string_view logger,
            std::string_view event, const Fields* const* sets, std::size_t n_sets,
            std::chrono::system_clock::time_point now) {
  const std::size_t max_len = config.max_value_length;
  const bool json = config.format == LogFormat::kJson;
  bool cut = false;
  if (json) {
    out.append("{\"timestamp\":\"");
    detail::append_rfc3339_ms(out, now);
    out.append("\",\"level\":\"");
    out.append(to_string(level));
    out.append("\",\"logger\":");
    detail::append_json_string(out, logger, max_len);
    out.append(",\"event\":");
    cut |= detail::append_json_string(out, event, max_len);
  } else {
    detail::append_rfc3339_ms(out, now);
    out.push_back(' ');
    out.append(to_string(level));
    out.push_back(' ');
    out.append(detail::sanitize_utf8(logger));
    out.push_back(' ');
    const std::size_t n = detail::utf8_prefix_length(event, max_len);
    cut |= n < event.size();
    out.append(detail::sanitize_utf8(event.substr(0, n)));
  }
  for (std::size_t i = 0; i < n_sets; ++i) {
    for (const Field& f : *sets[i]) {
      // A key that a later set gives again is written once, with the later value.
      bool later = false;
      for (std::size_t j = i + 1; j < n_sets && !later; ++j) {
        later = !sets[j]->empty() && detail::find_field(*sets[j], f.key) != nullptr;
      }
      if (later) continue;
      out.push_back(json ? ',' : ' ');
      append_key(out, f.key, max_len, json);
      if (json) {
        out.push_back(':');
        cut |= detail::append_json_value(out, f.value, max_len);
      } else {
        out.push_back('=');
        append_console_value(out, f.value, max_len, cut);
      }
    }
  }
  if (json) {
    if (cut) out.append(",\"truncated\":true");
    out.push_back('}');
  } else if (cut) {
    out.append(" truncated=true");
  }
}

// Writes out what `config` buffered; for an async logger, waits until the background thread
// has executed the flush posted here (a flush is a message behind every queued line).
void flush_config(const Config& config) {
  std::lock_guard<std::mutex> flush_lock(g_flush_mutex);
  if (!config.async) {
    config.logger->flush();
    return;
  }
  const std::uint64_t before = config.sink->flushes();
  config.logger->flush();
  config.sink->wait_for_flushes_above(before, kAsyncFlushTimeout);
}

}  // namespace

void configure_logging(const LoggingOptions& options) {
  auto config = make_config(options);
  std::shared_ptr<const Config> old;
  {
    std::lock_guard<std::mutex> lock(g_config_mutex);
    old = std::move(g_config);
    g_config = std::move(config);
    g_level.store(static_cast<int>(options.level), std::memory_order_relaxed);
    g_generation.fetch_add(1, std::memory_order_release);
  }
  // Limitation: a thread keeps its reference to the previous configuration (and so its open
  // file) until it logs again or exits; reconfiguring is expected at startup, not per request.
  if (old) flush_config(*old);
}

void flush_logging() noexcept {
  try {
    std::shared_ptr<const Config> config;
    {
      std::lock_guard<std::mutex> lock(g_config_mutex);
      config = current_config_locked();
    }
    flush_config(*config);
  } catch (...) {
  }
}

// Limitation: lines lost to a full async queue are counted here but not logged, since a
// warning about a full log queue would go into that same queue.
LoggingStats logging_stats() noexcept {
  LoggingStats stats;
  stats.write_errors = g_write_errors.load(std::memory_order_relaxed);
  try {
    std::lock_guard<std::mutex> lock(g_config_mutex);
    if (g_config && g_config->async) {
      stats.dropped_lines = spdlog::thread_pool()->overrun_counter();
    }
  } catch (...) {
  }
  return stats;
}

LogLevel parse_log_level(std::string_view text) {
  std::string s;
  for (char c : text) s.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (s == "trace") return LogLevel::kTrace;
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warning" || s == "warn") return LogLevel::kWarning;
  if (s == "error") return LogLevel::kError;
  if (s == "critical") return LogLevel::kCritical;
  if (s == "off") return LogLevel::kOff;
  throw std::invalid_argument("unknown log level '" + std::string(text) + "'");
}

std::string_view to_string(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
    case LogLevel::kCritical:
      return "critical";
    case LogLevel::kOff:
      return "off";
  }
  return "info";
}

Logger::Logger(std::string name, Fields bound) : name_(std::move(name)), bound_(std::move(bound)) {}

Logger Logger::bind(const Fields& fields) const {
  Fields merged = bound_;
  merged.merge(fields);
  return Logger(name_, std::move(merged));
}

bool Logger::enabled(LogLevel level) const noexcept {
  return level != LogLevel::kOff &&
         static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void Logger::log(LogLevel level, std::string_view event, const Fields& fields) const noexcept {
  detail::log_sets(*this, level, event, {&fields});
}

namespace detail {

void log_sets(const Logger& logger, LogLevel level, std::string_view event,
              const Fields* const* sets, std::size_t n_sets) noexcept {
  if (!logger.enabled(level)) return;
  try {
    const Config& config = thread_config();
    const Fields* all[kMaxFieldSets];
    std::size_t n = 0;
    all[n++] = &logger.bound();
    for (std::size_t i = 0; i < n_sets; ++i) {
      if (n < kMaxFieldSets && sets[i] != nullptr) all[n++] = sets[i];
    }
    thread_local std::string line;
    line.clear();
    // One clock read serves the line's timestamp and spdlog's.
    const auto now = std::chrono::system_clock::now();
    render(line, config, level, logger.name(), event, all, n, now);
    config.logger->log(now, spdlog::source_loc{}, to_spdlog(level),
                       spdlog::string_view_t(line.data(), line.size()));
  } catch (...) {
    // Logging never throws into the caller; a line that cannot be written is lost.
    g_write_errors.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace detail
}  // namespace ccproxy::observability
