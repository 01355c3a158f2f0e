#include "ccproxy/observability/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <stdexcept>

#include "json_writer.hpp"

namespace ccproxy::observability {
namespace {

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

// The process-wide configuration. The level is read without a lock on every call; the rest
// is swapped as one immutable snapshot.
struct Config {
  LogFormat format = LogFormat::kJson;
  std::size_t max_value_length = 8192;
  std::shared_ptr<spdlog::logger> logger;
};

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_config_mutex;
std::shared_ptr<const Config> g_config;  // guarded by g_config_mutex

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

std::shared_ptr<const Config> make_config(const LoggingOptions& options) {
  if (options.async && options.async_queue_size == 0) {
    throw std::invalid_argument("LoggingOptions.async_queue_size must be positive");
  }
  if (options.max_value_length == 0) {
    throw std::invalid_argument("LoggingOptions.max_value_length must be positive");
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
  if (options.async) {
    // Limitation: spdlog has one global thread pool, so the queue size of the first async
    // configuration in a process is the one that holds.
    static std::once_flag pool_once;
    std::call_once(pool_once, [&] { spdlog::init_thread_pool(options.async_queue_size, 1); });
    config->logger = std::make_shared<spdlog::async_logger>(
        "ccproxy", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  } else {
    config->logger = std::make_shared<spdlog::logger>("ccproxy", sink);
  }
  config->logger->set_level(spdlog::level::trace);  // filtering happens before formatting
  return config;
}

std::shared_ptr<const Config> current_config() {
  std::lock_guard<std::mutex> lock(g_config_mutex);
  if (!g_config) g_config = make_config(LoggingOptions{});
  return g_config;
}

void append_timestamp(std::string& out) {
  using namespace std::chrono;
  auto now = system_clock::now();
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::time_t t = system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  out.push_back('.');
  out.push_back(static_cast<char>('0' + ms / 100));
  out.push_back(static_cast<char>('0' + ms / 10 % 10));
  out.push_back(static_cast<char>('0' + ms % 10));
  out.push_back('Z');
}

bool is_reserved(std::string_view key) {
  return key == "timestamp" || key == "level" || key == "logger" || key == "event";
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

void render(std::string& out, const Config& config, LogLevel level, std::string_view logger,
            std::string_view event, const Fields& bound, const Fields& fields) {
  const std::size_t max_len = config.max_value_length;
  bool cut = false;
  // A key both bound and given with the event is written once, with the event's value.
  auto skip = [&](const Fields* set, const Field& f) {
    return is_reserved(f.key) || (set == &bound && fields.contains(f.key));
  };
  if (config.format == LogFormat::kJson) {
    out.append("{\"timestamp\":\"");
    append_timestamp(out);
    out.append("\",\"level\":\"");
    out.append(to_string(level));
    out.append("\",\"logger\":");
    detail::append_json_string(out, logger, max_len);
    out.append(",\"event\":");
    cut |= detail::append_json_string(out, event, max_len);
    for (const Fields* set : {&bound, &fields}) {
      for (const Field& f : *set) {
        if (skip(set, f)) continue;
        out.push_back(',');
        detail::append_json_string(out, f.key, max_len);
        out.push_back(':');
        cut |= detail::append_json_value(out, f.value, max_len);
      }
    }
    if (cut) out.append(",\"truncated\":true");
    out.push_back('}');
    return;
  }
  append_timestamp(out);
  out.push_back(' ');
  out.append(to_string(level));
  out.push_back(' ');
  out.append(logger);
  out.push_back(' ');
  out.append(detail::sanitize_utf8(event.substr(0, detail::utf8_prefix_length(event, max_len))));
  for (const Fields* set : {&bound, &fields}) {
    for (const Field& f : *set) {
      if (skip(set, f)) continue;
      out.push_back(' ');
      out.append(detail::sanitize_utf8(f.key));
      out.push_back('=');
      append_console_value(out, f.value, max_len, cut);
    }
  }
  if (cut) out.append(" truncated=true");
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
  }
  if (old) old->logger->flush();
}

void flush_logging() noexcept {
  try {
    current_config()->logger->flush();
  } catch (...) {
  }
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
  if (!enabled(level)) return;
  try {
    auto config = current_config();
    thread_local std::string line;
    line.clear();
    render(line, *config, level, name_, event, bound_, fields);
    config->logger->log(to_spdlog(level), spdlog::string_view_t(line.data(), line.size()));
  } catch (...) {
    // Logging never throws into the caller; a line that cannot be written is lost.
  }
}

}  // namespace ccproxy::observability
