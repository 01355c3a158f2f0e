#include "ccproxy/observability/logging.hpp"

#include <gtest/gtest.h>

#include <clocale>
#include <fstream>
#include <locale>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

namespace obs = ccproxy::observability;
using nlohmann::json;

namespace {

// Collects every line the logging system writes.
class Capture {
 public:
  explicit Capture(obs::LogLevel level = obs::LogLevel::kTrace,
                   obs::LogFormat format = obs::LogFormat::kJson, std::size_t max_len = 8192) {
    obs::LoggingOptions options;
    options.level = level;
    options.format = format;
    options.max_value_length = max_len;
    options.line_sink = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back(line);
    };
    obs::configure_logging(options);
  }
  ~Capture() { obs::configure_logging(obs::LoggingOptions{}); }

  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mutex_);
    return lines_;
  }
  // Parses every line; a line that is not one JSON object fails the test.
  std::vector<json> parsed() {
    std::vector<json> out;
    for (const std::string& line : lines()) {
      json j = json::parse(line);  // throws on invalid JSON or invalid UTF-8
      EXPECT_TRUE(j.is_object()) << line;
      out.push_back(std::move(j));
    }
    return out;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST(LoggingTest, WritesHeaderKeysThenFieldsWithTypesKept) {
  Capture capture;
  obs::Logger log("ccproxy.test", {{"service", "api"}});
  log.info(
      "upstream_connected",
      {{"port", 8080}, {"ratio", 0.25}, {"tls", true}, {"peer", nullptr}, {"host", "127.0.0.1"}});
  auto lines = capture.parsed();
  ASSERT_EQ(lines.size(), 1u);
  const json& j = lines[0];
  EXPECT_TRUE(std::regex_match(j["timestamp"].get<std::string>(),
                               std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));
  EXPECT_EQ(j["level"], "info");
  EXPECT_EQ(j["logger"], "ccproxy.test");
  EXPECT_EQ(j["event"], "upstream_connected");
  EXPECT_EQ(j["service"], "api");
  EXPECT_TRUE(j["port"].is_number_integer());
  EXPECT_EQ(j["port"], 8080);
  EXPECT_DOUBLE_EQ(j["ratio"].get<double>(), 0.25);
  EXPECT_EQ(j["tls"], true);
  EXPECT_TRUE(j["peer"].is_null());
  EXPECT_EQ(j["host"], "127.0.0.1");
  EXPECT_FALSE(j.contains("truncated"));
  // The header keys come first, in this order.
  const std::string raw = capture.lines()[0];
  EXPECT_LT(raw.find("\"timestamp\""), raw.find("\"level\""));
  EXPECT_LT(raw.find("\"level\""), raw.find("\"logger\""));
  EXPECT_LT(raw.find("\"logger\""), raw.find("\"event\""));
  EXPECT_LT(raw.find("\"event\""), raw.find("\"service\""));
}

TEST(LoggingTest, KeepsEveryLineValidJsonWhenInputIsHostile) {
  Capture capture;
  const std::string quotes = "say \"hi\" \\ back\\slash";
  const std::string controls = std::string(
      "a\x01"
      "b\nc\rd\te\x1f"
      "f\x7f",
      12);
  const std::string invalid_utf8 = "ok\xff\xfe bad \xc0\xaf overlong \xed\xa0\x80 cut \xe2\x82";
  obs::Logger log("ccproxy.test");
  log.warning("hostile\"event\n", {{"quotes", quotes},
                                   {"controls", controls},
                                   {"invalid", invalid_utf8},
                                   {"key \"with\" \x02 quote\xff", 1},
                                   {"nul", std::string("a\0b", 3)}});
  auto lines = capture.parsed();
  ASSERT_EQ(lines.size(), 1u);
  const json& j = lines[0];
  EXPECT_EQ(j["event"], "hostile\"event\n");
  EXPECT_EQ(j["quotes"], quotes);
  EXPECT_EQ(j["controls"], controls);
  EXPECT_EQ(j["nul"], std::string("a\0b", 3));
  const std::string invalid = j["invalid"];
  EXPECT_NE(invalid.find("ok\xEF\xBF\xBD\xEF\xBF\xBD bad "), std::string::npos) << invalid;
  EXPECT_EQ(invalid.find('\xff'), std::string::npos);
  EXPECT_TRUE(j.contains("key \"with\" \x02 quote\xEF\xBF\xBD"));
  EXPECT_EQ(capture.lines()[0].find('\n'), std::string::npos);
}

TEST(LoggingTest, TruncatesLongValuesOnUtf8BoundaryAndMarksTheLine) {
  Capture capture(obs::LogLevel::kInfo, obs::LogFormat::kJson, 16);
  obs::Logger log("ccproxy.test");
  log.info("short", {{"v", "0123456789abcdef"}});
  // 10 two-byte characters: a 16-byte cut would be mid-sequence only if done wrong.
  std::string accents;
  for (int i = 0; i < 10; ++i) accents += "\xc3\xa9";
  log.info("long", {{"v", std::string(100, 'x')}, {"accents", "x" + accents}});
  auto lines = capture.parsed();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_FALSE(lines[0].contains("truncated"));
  EXPECT_EQ(lines[0]["v"], "0123456789abcdef");
  EXPECT_EQ(lines[1]["truncated"], true);
  EXPECT_EQ(lines[1]["v"], std::string(16, 'x'));
  const std::string cut = lines[1]["accents"];
  EXPECT_EQ(cut.size(), 15u);  // "x" + 7 characters of 2 bytes
  EXPECT_EQ(cut, "x" + accents.substr(0, 14));
}

TEST(LoggingTest, ReservedKeysDoNotOverwriteTheHeader) {
  Capture capture;
  obs::Logger log("ccproxy.test", {{"logger", "bound-impostor"}});
  log.error(
      "real_event",
      {{"timestamp", "yesterday"}, {"level", "debug"}, {"event", "fake"}, {"truncated", false}});
  auto lines = capture.parsed();
  ASSERT_EQ(lines.size(), 1u);
  const json& j = lines[0];
  EXPECT_EQ(j["level"], "error");
  EXPECT_EQ(j["logger"], "ccproxy.test");
  EXPECT_EQ(j["event"], "real_event");
  EXPECT_NE(j["timestamp"], "yesterday");
  EXPECT_EQ(j["field_timestamp"], "yesterday");
  EXPECT_EQ(j["field_level"], "debug");
  EXPECT_EQ(j["field_logger"], "bound-impostor");
  EXPECT_EQ(j["field_event"], "fake");
  EXPECT_EQ(j["field_truncated"], false);
  EXPECT_FALSE(j.contains("truncated"));
}

TEST(LoggingTest, WritesAKeyGivenBoundAndPerEventOnceWithTheEventValue) {
  Capture capture;
  obs::Logger log = obs::Logger("ccproxy.test", {{"a", 1}, {"b", 2}}).bind({{"b", 3}});
  log.info("e", {{"a", "event"}});
  const std::string raw = capture.lines().at(0);
  json j = json::parse(raw);
  EXPECT_EQ(j["a"], "event");
  EXPECT_EQ(j["b"], 3);
  EXPECT_EQ(raw.find("\"a\":"), raw.rfind("\"a\":"));
  EXPECT_EQ(raw.find("\"b\":"), raw.rfind("\"b\":"));
}

TEST(LoggingTest, FiltersLinesBelowTheConfiguredLevel) {
  Capture capture(obs::LogLevel::kWarning);
  obs::Logger log("ccproxy.test");
  EXPECT_FALSE(log.enabled(obs::LogLevel::kInfo));
  EXPECT_TRUE(log.enabled(obs::LogLevel::kWarning));
  EXPECT_FALSE(log.enabled(obs::LogLevel::kOff));
  log.debug("d");
  log.info("i");
  log.warning("w");
  log.error("e");
  auto lines = capture.parsed();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["event"], "w");
  EXPECT_EQ(lines[0]["level"], "warning");
  EXPECT_EQ(lines[1]["level"], "error");
}

TEST(LoggingTest, WritesNumbersWithADotUnderACommaDecimalLocale) {
  const std::string saved = std::setlocale(LC_ALL, nullptr);
  if (std::setlocale(LC_ALL, "de_DE.UTF-8") == nullptr) {
    GTEST_SKIP() << "locale de_DE.UTF-8 is not installed (scripts/install-deps generates it)";
  }
  const std::locale saved_global = std::locale::global(std::locale("de_DE.UTF-8"));
  // The locale is really active: the C library now writes a decimal comma.
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", 0.5);
  EXPECT_STREQ(buf, "0,50");
  {
    Capture capture;
    obs::Logger("ccproxy.test").info("n", {{"half", 0.5}, {"big", 1234567.25}, {"i", 1000000}});
    auto lines = capture.parsed();
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_DOUBLE_EQ(lines[0]["half"].get<double>(), 0.5);
    EXPECT_DOUBLE_EQ(lines[0]["big"].get<double>(), 1234567.25);
    EXPECT_EQ(lines[0]["i"], 1000000);
    EXPECT_NE(capture.lines()[0].find("\"half\":0.5"), std::string::npos);
  }
  std::locale::global(saved_global);
  std::setlocale(LC_ALL, saved.c_str());
}

TEST(LoggingTest, ConsoleFormatWritesKeyValuePairsQuotingAmbiguousValues) {
  Capture capture(obs::LogLevel::kInfo, obs::LogFormat::kConsole);
  obs::Logger("ccproxy.test").info("started", {{"port", 8080}, {"name", "two words"}});
  const std::string line = capture.lines().at(0);
  EXPECT_TRUE(std::regex_search(line, std::regex(R"(^\S+Z info ccproxy\.test started )"))) << line;
  EXPECT_NE(line.find(" port=8080"), std::string::npos);
  EXPECT_NE(line.find(" name=\"two words\""), std::string::npos);
}

TEST(LoggingTest, RotatingFileKeepsEveryLineWholeAndValid) {
  ccobs_test::TempDir dir;
  obs::LoggingOptions options;
  options.file = dir.path() + "/app.log";
  options.max_file_size = 4096;
  options.max_files = 20;
  obs::configure_logging(options);
  obs::Logger log("ccproxy.test");
  constexpr int kLines = 300;
  for (int i = 0; i < kLines; ++i) log.info("line", {{"seq", i}, {"pad", std::string(60, 'p')}});
  obs::flush_logging();
  obs::configure_logging(obs::LoggingOptions{});

  std::vector<bool> seen(kLines, false);
  int files = 0;
  for (int k = 0; k <= 20; ++k) {
    const std::string path = options.file.substr(0, options.file.size() - 4) +
                             (k == 0 ? "" : "." + std::to_string(k)) + ".log";
    if (!std::ifstream(path)) continue;
    ++files;
    for (const std::string& line : read_lines(path)) {
      json j = json::parse(line);
      seen.at(j["seq"].get<int>()) = true;
    }
  }
  EXPECT_GT(files, 2);  // ~30 KB of lines in 4 KB files did rotate
  for (int i = 0; i < kLines; ++i) EXPECT_TRUE(seen[i]) << "line " << i << " missing";
}

TEST(LoggingTest, AsyncModeWritesEveryLineByTheTimeFlushReturns) {
  ccobs_test::TempDir dir;
  obs::LoggingOptions options;
  options.file = dir.path() + "/async.log";
  options.max_file_size = 0;
  options.async = true;
  obs::configure_logging(options);
  obs::Logger log("ccproxy.test");
  constexpr int kLines = 2000;
  const auto dropped_before = obs::logging_stats().dropped_lines;
  for (int i = 0; i < kLines; ++i) log.info("async_line", {{"seq", i}});
  obs::flush_logging();
  // Read before reconfiguring: flush_logging alone must have written everything.
  auto lines = read_lines(options.file);
  const auto dropped = obs::logging_stats().dropped_lines - dropped_before;
  obs::configure_logging(obs::LoggingOptions{});
  ASSERT_EQ(lines.size() + dropped, static_cast<std::size_t>(kLines));
  EXPECT_EQ(dropped, 0u);  // the queue holds 8192 lines
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(json::parse(lines[i])["seq"], static_cast<int>(i));
  }
}

TEST(LoggingTest, RejectsInvalidConfigurationNamingTheSetting) {
  ccobs_test::TempDir dir;
  auto message_of = [](const obs::LoggingOptions& o) {
    try {
      obs::configure_logging(o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  obs::LoggingOptions bad_queue;
  bad_queue.async = true;
  bad_queue.async_queue_size = 0;
  EXPECT_THROW(obs::configure_logging(bad_queue), std::invalid_argument);
  EXPECT_NE(message_of(bad_queue).find("async_queue_size"), std::string::npos);

  obs::LoggingOptions bad_length;
  bad_length.max_value_length = 0;
  EXPECT_NE(message_of(bad_length).find("max_value_length"), std::string::npos);

  // A directory below a regular file cannot be created.
  std::ofstream(dir.path() + "/plain").put('x');
  obs::LoggingOptions bad_file;
  bad_file.file = dir.path() + "/plain/app.log";
  EXPECT_THROW(obs::configure_logging(bad_file), std::invalid_argument);
  EXPECT_NE(message_of(bad_file).find("LoggingOptions.file"), std::string::npos);
}

TEST(LoggingTest, ParsesLevelNamesInAnyCaseAndRejectsOthers) {
  EXPECT_EQ(obs::parse_log_level("DEBUG"), obs::LogLevel::kDebug);
  EXPECT_EQ(obs::parse_log_level("warn"), obs::LogLevel::kWarning);
  EXPECT_EQ(obs::parse_log_level("Warning"), obs::LogLevel::kWarning);
  EXPECT_EQ(obs::parse_log_level("off"), obs::LogLevel::kOff);
  EXPECT_THROW(obs::parse_log_level("verbose"), std::invalid_argument);
  EXPECT_EQ(obs::to_string(obs::LogLevel::kCritical), "critical");
}

TEST(LoggingTest, CountsLinesASinkFailedToWrite) {
  obs::LoggingOptions options;
  options.line_sink = [](std::string_view) { throw std::runtime_error("disk full"); };
  obs::configure_logging(options);
  const auto before = obs::logging_stats().write_errors;
  obs::Logger("ccproxy.test").info("lost");
  obs::Logger("ccproxy.test").info("lost");
  EXPECT_EQ(obs::logging_stats().write_errors, before + 2);
  obs::configure_logging(obs::LoggingOptions{});
}

TEST(LoggingTest, LogsFromThreadsWhileBeingReconfiguredWithoutLosingLines) {
  std::mutex mutex;
  std::vector<std::string> lines;
  obs::LoggingOptions options;
  options.line_sink = [&](std::string_view line) {
    std::lock_guard<std::mutex> lock(mutex);
    lines.emplace_back(line);
  };
  obs::configure_logging(options);
  constexpr int kThreads = 2;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t] {
      obs::Logger log("ccproxy.test", {{"thread", t}});
      for (int i = 0; i < kPerThread; ++i) log.info("tick", {{"seq", i}});
    });
  }
  for (int r = 0; r < 20; ++r) obs::configure_logging(options);  // same sink, new snapshot
  for (auto& th : threads) th.join();
  obs::configure_logging(obs::LoggingOptions{});

  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kThreads * kPerThread));
  std::vector<int> next(kThreads, 0);
  for (const std::string& line : lines) {
    json j = json::parse(line);
    const int t = j["thread"];
    EXPECT_EQ(j["seq"], next[t]++);  // each thread's lines arrive whole and in order
  }
}
