#include "ccproxy/observability/storage.hpp"

#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sched.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ccproxy/observability/clock.hpp"
#include "ccproxy/observability/context.hpp"
#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "support/process.hpp"

namespace obs = ccproxy::observability;
using namespace std::chrono_literals;

namespace {

// A second, plain SQLite connection to the same file: how the tests look at what the storage
// wrote, and how they hold a lock against it.
class Db {
 public:
  explicit Db(const std::string& path) {
    if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path << ": " << sqlite3_errmsg(db_);
    }
    sqlite3_busy_timeout(db_, 5000);
  }
  ~Db() { sqlite3_close(db_); }
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  bool exec(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) ADD_FAILURE() << sql << ": " << (err != nullptr ? err : "?");
    sqlite3_free(err);
    return rc == SQLITE_OK;
  }
  // The first column of the first row, as text ("" when there is none).
  std::string text(const std::string& sql) {
    sqlite3_stmt* stmt = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db_);
      return out;
    }
    if (sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
    return out;
  }
  std::int64_t integer(const std::string& sql) {
    const std::string t = text(sql);
    return t.empty() ? -1 : std::stoll(t);
  }

 private:
  sqlite3* db_ = nullptr;
};

// Polls `done` every millisecond for at most `limit`: for states a real writer thread reaches.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

obs::AccessLogRow make_row(const std::string& id, std::int64_t n) {
  obs::AccessLogRow row;
  row.request_id = id;
  row.timestamp = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000 + n));
  row.method = "POST";
  row.endpoint = "messages";
  row.path = "/v1/messages";
  row.model = n % 2 == 0 ? "claude-sonnet" : "claude-haiku";
  row.service_type = n % 3 == 0 ? "sdk_service" : "proxy_service";
  row.status_code = 200;
  row.duration_ms = 10.0 + static_cast<double>(n % 7);
  row.duration_seconds = row.duration_ms / 1000.0;
  row.tokens_input = 100 + n % 13;
  row.tokens_output = 50 + n % 11;
  row.cache_read_tokens = n % 5;
  row.cache_write_tokens = n % 3;
  row.cost_usd = 0.001 * static_cast<double>(n % 4);
  return row;
}

double counter_value(prometheus::Registry& registry, const std::string& name,
                     const std::string& reason = {}) {
  for (const auto& family : registry.Collect()) {
    if (family.name != name) continue;
    for (const auto& metric : family.metric) {
      bool match = reason.empty();
      for (const auto& label : metric.label) {
        if (label.name == "reason" && label.value == reason) match = true;
      }
      if (match) return metric.counter.value;
    }
  }
  return -1;
}

// Captures the library's log lines for one test and restores stdout logging afterwards.
class CapturedLogs {
 public:
  CapturedLogs() {
    obs::LoggingOptions options;
    options.line_sink = [this](std::string_view line) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.emplace_back(line);
    };
    obs::configure_logging(options);
  }
  ~CapturedLogs() { obs::configure_logging({}); }
  std::size_t count(const std::string& needle) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& l : lines_) n += l.find(needle) != std::string::npos ? 1 : 0;
    return n;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace

TEST(StorageTest, CreatesWalTableWithPrimaryKeyAndTimestampIndex) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  obs::SqliteAccessLogStorage storage(path);
  storage.close();

  Db db(path);
  EXPECT_EQ(db.text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM pragma_table_info('access_logs')"), 31);
  EXPECT_EQ(db.text("SELECT name FROM pragma_table_info('access_logs') WHERE pk = 1"),
            "request_id");
  EXPECT_EQ(db.text("SELECT name FROM pragma_index_info('access_logs_timestamp')"), "timestamp");
  for (const char* column : {"timestamp",
                             "method",
                             "endpoint",
                             "path",
                             "query",
                             "client_ip",
                             "user_agent",
                             "service_type",
                             "model",
                             "streaming",
                             "status_code",
                             "duration_ms",
                             "duration_seconds",
                             "tokens_input",
                             "tokens_output",
                             "cache_read_tokens",
                             "cache_write_tokens",
                             "cost_usd",
                             "cost_sdk_usd",
                             "num_turns",
                             "session_id",
                             "session_is_new"}) {
    EXPECT_EQ(db.integer(std::string("SELECT COUNT(*) FROM pragma_table_info('access_logs') "
                                     "WHERE name = '") +
                         column + "'"),
              1)
        << column;
  }
}

TEST(StorageTest, RoundTripsEveryColumn) {
  ccobs_test::TempDir dir;
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db");
  obs::AccessLogRow in;
  in.request_id = "req-1";
  in.timestamp = std::chrono::system_clock::time_point(std::chrono::microseconds(1714564800123456));
  in.method = "POST";
  in.endpoint = "messages";
  in.path = "/v1/messages";
  in.query = "beta=true&x='; DROP TABLE access_logs; --";
  in.client_ip = "10.0.0.7";
  in.user_agent = "curl/8.0 \"quoted\"";
  in.service_type = "proxy_service";
  in.model = "claude-sonnet";
  in.streaming = true;
  in.status_code = 429;
  in.duration_ms = 123.5;
  in.duration_seconds = 0.1235;
  in.tokens_input = 1234567890123;
  in.tokens_output = 42;
  in.cache_read_tokens = 7;
  in.cache_write_tokens = 8;
  in.cost_usd = 0.0125;
  in.cost_sdk_usd = 0.011;
  in.num_turns = 3;
  in.session_id = "s-1";
  in.session_type = "pooled";
  in.session_status = "active";
  in.session_age_seconds = 12.25;
  in.session_message_count = 9;
  in.session_client_id = "c-1";
  in.session_pool_enabled = true;
  in.session_idle_seconds = 1.5;
  in.session_error = "none";
  in.session_is_new = true;
  ASSERT_TRUE(storage.store(in));
  storage.flush();

  const auto rows = storage.get_recent_requests(10);
  ASSERT_EQ(rows.size(), 1u);
  const auto& out = rows[0];
  EXPECT_EQ(out.request_id, in.request_id);
  EXPECT_EQ(out.timestamp, in.timestamp);
  EXPECT_EQ(out.method, in.method);
  EXPECT_EQ(out.endpoint, in.endpoint);
  EXPECT_EQ(out.path, in.path);
  EXPECT_EQ(out.query, in.query);
  EXPECT_EQ(out.client_ip, in.client_ip);
  EXPECT_EQ(out.user_agent, in.user_agent);
  EXPECT_EQ(out.service_type, in.service_type);
  EXPECT_EQ(out.model, in.model);
  EXPECT_EQ(out.streaming, in.streaming);
  EXPECT_EQ(out.status_code, in.status_code);
  EXPECT_DOUBLE_EQ(out.duration_ms, in.duration_ms);
  EXPECT_DOUBLE_EQ(out.duration_seconds, in.duration_seconds);
  EXPECT_EQ(out.tokens_input, in.tokens_input);
  EXPECT_EQ(out.tokens_output, in.tokens_output);
  EXPECT_EQ(out.cache_read_tokens, in.cache_read_tokens);
  EXPECT_EQ(out.cache_write_tokens, in.cache_write_tokens);
  EXPECT_DOUBLE_EQ(out.cost_usd, in.cost_usd);
  EXPECT_DOUBLE_EQ(out.cost_sdk_usd, in.cost_sdk_usd);
  EXPECT_EQ(out.num_turns, in.num_turns);
  EXPECT_EQ(out.session_id, in.session_id);
  EXPECT_EQ(out.session_type, in.session_type);
  EXPECT_EQ(out.session_status, in.session_status);
  EXPECT_DOUBLE_EQ(out.session_age_seconds, in.session_age_seconds);
  EXPECT_EQ(out.session_message_count, in.session_message_count);
  EXPECT_EQ(out.session_client_id, in.session_client_id);
  EXPECT_EQ(out.session_pool_enabled, in.session_pool_enabled);
  EXPECT_DOUBLE_EQ(out.session_idle_seconds, in.session_idle_seconds);
  EXPECT_EQ(out.session_error, in.session_error);
  EXPECT_EQ(out.session_is_new, in.session_is_new);
}

TEST(StorageTest, ReturnsRecentRequestsNewestFirstUpToTheLimit) {
  ccobs_test::TempDir dir;
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db");
  // Stored out of time order: the order of the answer comes from the timestamps.
  for (int n : {3, 1, 4, 0, 2}) ASSERT_TRUE(storage.store(make_row("r" + std::to_string(n), n)));
  storage.flush();

  const auto rows = storage.get_recent_requests(3);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].request_id, "r4");
  EXPECT_EQ(rows[1].request_id, "r3");
  EXPECT_EQ(rows[2].request_id, "r2");
  EXPECT_EQ(storage.get_recent_requests(100).size(), 5u);
  EXPECT_TRUE(storage.get_recent_requests(0).empty());
}

TEST(StorageTest, AnalyticsSummarisesRowsSelectedByTimeRangeModelAndServiceType) {
  ccobs_test::TempDir dir;
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db");
  std::vector<obs::AccessLogRow> rows;
  for (int n = 0; n < 60; ++n) rows.push_back(make_row("r" + std::to_string(n), n));
  for (const auto& row : rows) ASSERT_TRUE(storage.store(row));
  storage.flush();

  obs::AccessLogFilter filter;
  filter.start_time = rows[10].timestamp;
  filter.end_time = rows[50].timestamp;  // exclusive
  filter.model = "claude-sonnet";
  filter.service_type = "proxy_service";
  obs::AccessLogSummary expected;
  double duration_sum = 0;
  for (const auto& row : rows) {
    if (row.timestamp < *filter.start_time || row.timestamp >= *filter.end_time) continue;
    if (row.model != filter.model || row.service_type != filter.service_type) continue;
    ++expected.total_requests;
    duration_sum += row.duration_ms;
    expected.total_cost_usd += row.cost_usd;
    expected.total_tokens_input += row.tokens_input;
    expected.total_tokens_output += row.tokens_output;
    expected.total_cache_read_tokens += row.cache_read_tokens;
    expected.total_cache_write_tokens += row.cache_write_tokens;
  }
  ASSERT_GT(expected.total_requests, 0);

  const auto summary = storage.get_analytics(filter);
  EXPECT_EQ(summary.total_requests, expected.total_requests);
  EXPECT_DOUBLE_EQ(summary.avg_duration_ms, duration_sum / expected.total_requests);
  EXPECT_NEAR(summary.total_cost_usd, expected.total_cost_usd, 1e-12);
  EXPECT_EQ(summary.total_tokens_input, expected.total_tokens_input);
  EXPECT_EQ(summary.total_tokens_output, expected.total_tokens_output);
  EXPECT_EQ(summary.total_cache_read_tokens, expected.total_cache_read_tokens);
  EXPECT_EQ(summary.total_cache_write_tokens, expected.total_cache_write_tokens);

  EXPECT_EQ(storage.get_analytics().total_requests, 60);
  obs::AccessLogFilter nothing;
  nothing.model = "' OR '1'='1";  // bound as a value, so it matches no model
  const auto empty = storage.get_analytics(nothing);
  EXPECT_EQ(empty.total_requests, 0);
  EXPECT_EQ(empty.avg_duration_ms, 0.0);
}

TEST(StorageTest, HealthCheckReportsRowCountPathAndClosedState) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  obs::SqliteAccessLogStorage storage(path);
  for (int n = 0; n < 7; ++n) ASSERT_TRUE(storage.store(make_row("r" + std::to_string(n), n)));
  storage.flush();

  auto health = storage.health_check();
  EXPECT_EQ(health.status, obs::StorageHealth::Status::kHealthy);
  EXPECT_EQ(health.row_count, 7);
  EXPECT_EQ(health.path, path);
  EXPECT_FALSE(health.closed);
  storage.close();
  health = storage.health_check();
  EXPECT_TRUE(health.closed);
  EXPECT_EQ(health.row_count, 7);
}

TEST(StorageTest, ReopeningAnExistingFileAppends) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  {
    obs::SqliteAccessLogStorage first(path);
    for (int n = 0; n < 5; ++n) ASSERT_TRUE(first.store(make_row("a" + std::to_string(n), n)));
  }  // the destructor closes, which drains
  obs::SqliteAccessLogStorage second(path);
  for (int n = 0; n < 3; ++n) ASSERT_TRUE(second.store(make_row("b" + std::to_string(n), n)));
  second.close();

  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), 8);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs WHERE request_id LIKE 'a%'"), 5);
  EXPECT_EQ(second.stats().rows_written, 3u);
}

TEST(StorageTest, DuplicateRequestIdKeepsTheFirstRowAndIsCounted) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  auto registry = std::make_shared<prometheus::Registry>();
  obs::SqliteStorageOptions options;
  options.registry = registry;
  obs::SqliteAccessLogStorage storage(path, options);
  auto first = make_row("same", 1);
  first.model = "first";
  auto again = make_row("same", 2);
  again.model = "second";
  ASSERT_TRUE(storage.store(first));
  storage.flush();
  ASSERT_TRUE(storage.store(again));  // in a later batch
  ASSERT_TRUE(storage.store(again));  // and twice in one batch, or in the next
  storage.close();

  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), 1);
  EXPECT_EQ(db.text("SELECT model FROM access_logs WHERE request_id = 'same'"), "first");
  EXPECT_EQ(storage.stats().duplicate_rows, 2u);
  EXPECT_EQ(storage.stats().rows_written, 1u);
  EXPECT_EQ(counter_value(*registry, "ccproxy_access_log_duplicate_rows_total"), 2.0);
  EXPECT_EQ(counter_value(*registry, "ccproxy_access_log_rows_written_total"), 1.0);
}

TEST(StorageTest, FullQueueDropsCountsAndWarnsRateLimitedWithoutBlocking) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  CapturedLogs logs;
  obs::ManualClock clock;
  auto registry = std::make_shared<prometheus::Registry>();
  obs::SqliteStorageOptions options;
  options.queue_capacity = 10;
  options.batch_size = 1;
  options.busy_timeout = 1ms;
  options.retry_backoff = 1ms;
  options.retry_backoff_max = 2ms;
  options.max_write_attempts = 100000;
  options.clock = &clock;
  options.registry = registry;
  options.metric_namespace = "proxy";
  obs::SqliteAccessLogStorage storage(path, options);

  // Another connection holds the write lock, so the writer is stuck retrying the first row.
  Db locker(path);
  ASSERT_TRUE(locker.exec("BEGIN IMMEDIATE"));
  ASSERT_TRUE(storage.store(make_row("r0", 0)));
  ASSERT_TRUE(wait_until([&] { return storage.stats().batch_failures > 0; }));
  int accepted = 1, dropped = 0;
  for (int n = 1; n <= 15; ++n)
    (storage.store(make_row("r" + std::to_string(n), n)) ? accepted : dropped)++;
  EXPECT_EQ(accepted, 11);  // the one being retried, and a full queue
  EXPECT_EQ(dropped, 5);
  EXPECT_EQ(storage.stats().queue_depth, 10u);
  EXPECT_EQ(storage.stats().rows_dropped_queue_full, 5u);
  EXPECT_EQ(counter_value(*registry, "proxy_access_log_rows_dropped_total", "queue_full"), 5.0);
  // The writer, not the request thread, writes the warning: one for the five drops.
  const auto dropped_warnings = [&] { return logs.count("\"access_log_rows_dropped\""); };
  ASSERT_TRUE(wait_until([&] { return dropped_warnings() == 1; }));

  const auto failures = storage.stats().batch_failures;
  EXPECT_FALSE(storage.store(make_row("late", 99)));
  // The writer looks for unreported drops after every failed attempt: two more attempts
  // give it the chance to warn again, which the rate limit must refuse.
  ASSERT_TRUE(wait_until([&] { return storage.stats().batch_failures >= failures + 2; }));
  EXPECT_EQ(dropped_warnings(), 1u);
  clock.advance(options.warning_interval);
  ASSERT_TRUE(wait_until([&] { return dropped_warnings() == 2; }));

  ASSERT_TRUE(locker.exec("COMMIT"));
  storage.close();
  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), 11);
  EXPECT_EQ(storage.stats().rows_written, 11u);
  EXPECT_EQ(storage.stats().rows_dropped_write_failed, 0u);
}

TEST(StorageTest, RetriesWhileAnotherConnectionHoldsTheWriteLockAndLosesNothing) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  auto registry = std::make_shared<prometheus::Registry>();
  obs::SqliteStorageOptions options;
  options.busy_timeout = 5ms;
  options.retry_backoff = 1ms;
  options.retry_backoff_max = 4ms;
  options.max_write_attempts = 100000;
  options.batch_size = 50;
  options.registry = registry;
  obs::SqliteAccessLogStorage storage(path, options);

  Db locker(path);
  ASSERT_TRUE(locker.exec("BEGIN IMMEDIATE"));
  for (int n = 0; n < 200; ++n) ASSERT_TRUE(storage.store(make_row("r" + std::to_string(n), n)));
  ASSERT_TRUE(wait_until([&] { return storage.stats().batch_failures >= 3; }));
  EXPECT_EQ(storage.stats().rows_written, 0u);
  const auto busy = storage.health_check();
  EXPECT_EQ(busy.status, obs::StorageHealth::Status::kUnhealthy);
  EXPECT_NE(busy.error.find("locked"), std::string::npos) << busy.error;
  ASSERT_TRUE(locker.exec("COMMIT"));
  storage.flush();
  EXPECT_EQ(storage.health_check().status, obs::StorageHealth::Status::kHealthy);
  storage.close();

  const auto stats = storage.stats();
  EXPECT_EQ(stats.rows_written, 200u);
  EXPECT_EQ(stats.rows_dropped_write_failed, 0u);
  EXPECT_GE(stats.batch_failures, 3u);
  EXPECT_EQ(counter_value(*registry, "ccproxy_access_log_batch_failures_total"),
            static_cast<double>(stats.batch_failures));
  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(DISTINCT request_id) FROM access_logs"), 200);
}

TEST(StorageTest, GivesUpABatchAfterMaxAttemptsCountsAndLogsIt) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  CapturedLogs logs;
  obs::ManualClock clock;
  auto registry = std::make_shared<prometheus::Registry>();
  obs::SqliteStorageOptions options;
  options.busy_timeout = 1ms;
  options.retry_backoff = 1ms;
  options.retry_backoff_max = 1ms;
  options.max_write_attempts = 3;
  options.clock = &clock;
  options.registry = registry;
  obs::SqliteAccessLogStorage storage(path, options);

  Db locker(path);
  ASSERT_TRUE(locker.exec("BEGIN IMMEDIATE"));
  ASSERT_TRUE(storage.store(make_row("lost0", 0)));
  storage.flush();  // returns once the row is given up
  EXPECT_EQ(storage.stats().rows_dropped_write_failed, 1u);
  EXPECT_EQ(storage.stats().batch_failures, 3u);
  EXPECT_EQ(logs.count("\"access_log_rows_given_up\""), 1u);

  // The writer may take these in one to three batches; each is tried three times.
  for (int n = 1; n < 4; ++n) ASSERT_TRUE(storage.store(make_row("lost" + std::to_string(n), n)));
  storage.flush();
  EXPECT_EQ(storage.stats().rows_dropped_write_failed, 4u);
  EXPECT_EQ(storage.stats().batch_failures % 3, 0u);
  EXPECT_EQ(counter_value(*registry, "ccproxy_access_log_rows_dropped_total", "write_failed"), 4.0);
  EXPECT_EQ(logs.count("\"access_log_rows_given_up\""), 1u);  // the clock has not moved

  ASSERT_TRUE(locker.exec("COMMIT"));
  ASSERT_TRUE(storage.store(make_row("kept", 9)));
  storage.close();
  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), 1);
  EXPECT_EQ(db.text("SELECT request_id FROM access_logs"), "kept");
}

TEST(StorageTest, CloseGivesUpTheRestOnceABatchIsGivenUpWhileClosing) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  obs::SqliteStorageOptions options;
  options.batch_size = 1;
  options.busy_timeout = 1ms;
  options.retry_backoff = 1ms;
  options.retry_backoff_max = 1ms;
  options.max_write_attempts = 200;
  obs::SqliteAccessLogStorage storage(path, options);

  Db locker(path);
  ASSERT_TRUE(locker.exec("BEGIN IMMEDIATE"));
  for (int n = 0; n < 5; ++n) ASSERT_TRUE(storage.store(make_row("r" + std::to_string(n), n)));
  ASSERT_TRUE(wait_until([&] { return storage.stats().batch_failures > 0; }));
  storage.close();

  const auto stats = storage.stats();
  EXPECT_EQ(stats.rows_dropped_write_failed, 5u);
  EXPECT_EQ(stats.queue_depth, 0u);
  // Batches of one row: retrying each of the five would have made 1000 failed attempts.
  EXPECT_EQ(stats.batch_failures % 200, 0u);
  EXPECT_LT(stats.batch_failures, 1000u);
  ASSERT_TRUE(locker.exec("COMMIT"));
}

TEST(StorageTest, StoreAfterCloseReturnsFalseAndIsCounted) {
  ccobs_test::TempDir dir;
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db");
  storage.close();
  storage.close();  // idempotent
  EXPECT_FALSE(storage.store(make_row("late", 1)));
  EXPECT_EQ(storage.stats().rows_dropped_closed, 1u);
  EXPECT_EQ(storage.stats().rows_accepted, 0u);
}

TEST(StorageTest, ThrowsNamingThePathWhenItsParentIsARegularFile) {
  // Root ignores permission bits, but nobody can create a file inside a regular file.
  ccobs_test::TempDir dir;
  const std::string parent = dir.path() + "/not-a-directory";
  std::ofstream(parent) << "x";
  const std::string path = parent + "/access.db";
  try {
    obs::SqliteAccessLogStorage storage(path);
    FAIL() << "no error for " << path;
  } catch (const obs::StorageError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  EXPECT_THROW(obs::SqliteAccessLogStorage("/proc/ccobs-access.db"), obs::StorageError);
}

TEST(StorageTest, ThrowsNamingThePathWhenTheFileIsNotADatabase) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/garbage.db";
  const std::string garbage(8192, '\x5a');
  std::ofstream(path, std::ios::binary) << garbage;
  try {
    obs::SqliteAccessLogStorage storage(path);
    FAIL() << "no error for " << path;
  } catch (const obs::StorageError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("not a database"), std::string::npos) << e.what();
  }
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), garbage);  // left alone
}

TEST(StorageTest, ThrowsNamingThePathInAReadOnlyDirectory) {
  // A read-only bind mount stops root too. It is made in a child process with a mount
  // namespace of its own, so nothing outside the child sees it.
  ccobs_test::TempDir dir;
  const std::string existing = dir.path() + "/existing.db";
  {
    obs::SqliteAccessLogStorage storage(existing);
    ASSERT_TRUE(storage.store(make_row("kept", 1)));
  }
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    const char* d = dir.path().c_str();
    if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) ||
        mount(d, d, nullptr, MS_BIND, nullptr) != 0 ||
        mount(nullptr, d, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr) != 0) {
      _exit(77);
    }
    std::string report;
    for (const std::string& p : {dir.path() + "/new.db", existing}) {
      try {
        obs::SqliteAccessLogStorage storage(p);
        report += "opened " + p + "\n";
      } catch (const obs::StorageError& e) {
        report += std::string(e.what()) + "\n";
      }
    }
    const ssize_t written = write(fds[1], report.data(), report.size());
    _exit(written == static_cast<ssize_t>(report.size()) ? 0 : 1);
  }
  close(fds[1]);
  std::string report;
  char buf[512];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) report.append(buf, n);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "no permission for a read-only bind mount";
  ASSERT_EQ(WEXITSTATUS(status), 0);

  EXPECT_EQ(report.find("opened"), std::string::npos) << report;
  EXPECT_NE(report.find("'" + dir.path() + "/new.db'"), std::string::npos) << report;
  EXPECT_NE(report.find("'" + existing + "'"), std::string::npos) << report;
  Db db(existing);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), 1);
}

TEST(StorageTest, ThrowsWhenAnExistingAccessLogsTableHasOtherColumns) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/other.db";
  {
    Db db(path);
    db.exec("CREATE TABLE access_logs (id INTEGER PRIMARY KEY, note TEXT)");
  }
  EXPECT_THROW(obs::SqliteAccessLogStorage{path}, obs::StorageError);
}

TEST(StorageTest, ThrowsInvalidArgumentNamingTheBadOption) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  auto expect_named = [&](obs::SqliteStorageOptions options, const std::string& name) {
    try {
      obs::SqliteAccessLogStorage storage(path, options);
      ADD_FAILURE() << "no error for " << name;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  obs::SqliteStorageOptions o;
  o.queue_capacity = 0;
  expect_named(o, "queue_capacity");
  o = {};
  o.batch_size = 0;
  expect_named(o, "batch_size");
  o = {};
  o.max_write_attempts = 0;
  expect_named(o, "max_write_attempts");
  o = {};
  o.retry_backoff_max = 1ms;
  expect_named(o, "retry_backoff");
  o = {};
  o.metric_namespace = "9lives";
  expect_named(o, "metric_namespace");
  EXPECT_THROW(obs::SqliteAccessLogStorage(""), std::invalid_argument);
}

TEST(StorageTest, TwoThreadsStoringFiveThousandRowsEachLeaveExactSumsInTheFile) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  auto registry = std::make_shared<prometheus::Registry>();
  obs::SqliteStorageOptions options;
  options.registry = registry;
  auto storage = std::make_shared<obs::SqliteAccessLogStorage>(path, options);
  constexpr int kThreads = 2, kPerThread = 5000;
  std::atomic<std::int64_t> input{0}, output{0}, accepted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto row = make_row("t" + std::to_string(t) + "-" + std::to_string(i), i);
        row.tokens_input = 1 + (i * 7 + t) % 1000;
        row.tokens_output = 1 + (i * 13 + t) % 500;
        input += row.tokens_input;
        output += row.tokens_output;
        if (storage->store(std::move(row))) ++accepted;
      }
    });
  }
  for (auto& th : threads) th.join();
  storage->close();

  EXPECT_EQ(accepted.load(), kThreads * kPerThread);
  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), kThreads * kPerThread);
  EXPECT_EQ(db.integer("SELECT COUNT(DISTINCT request_id) FROM access_logs"),
            kThreads * kPerThread);
  EXPECT_EQ(db.integer("SELECT SUM(tokens_input) FROM access_logs"), input.load());
  EXPECT_EQ(db.integer("SELECT SUM(tokens_output) FROM access_logs"), output.load());
  const auto stats = storage->stats();
  EXPECT_EQ(stats.rows_written, static_cast<std::uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(counter_value(*registry, "ccproxy_access_log_rows_written_total"),
            static_cast<double>(kThreads * kPerThread));
  const auto summary = storage->get_analytics();
  EXPECT_EQ(summary.total_tokens_input, input.load());
  EXPECT_EQ(summary.total_tokens_output, output.load());
}

// The path a proxy uses: each finished RequestContext stores its row, from two request
// threads at once, and close() leaves every row in the file.
TEST(StorageTest, TwoThreadsOfFiveThousandRequestContextsLandInTheFile) {
  ccobs_test::TempDir dir;
  const std::string path = dir.path() + "/access.db";
  auto storage = std::make_shared<obs::SqliteAccessLogStorage>(path);
  obs::LoggingOptions quiet;
  quiet.level = obs::LogLevel::kError;  // the access_log lines are not what this test reads
  obs::configure_logging(quiet);
  obs::PrometheusMetrics metrics("ccproxy");
  obs::RequestContextOptions options;
  options.storage = storage;
  options.metrics = &metrics;

  constexpr int kThreads = 2, kPerThread = 5000;
  std::atomic<std::int64_t> input{0}, output{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const std::int64_t in = 1 + (i * 7 + t) % 1000;
        const std::int64_t out = 1 + (i * 13 + t) % 500;
        obs::RequestContext ctx(options, {{"method", "POST"}, {"path", "/v1/messages"}});
        ctx.add_metadata({{"model", i % 2 == 0 ? "claude-3-5-sonnet" : "claude-3-haiku"},
                          {"status_code", 200},
                          {"tokens_input", in},
                          {"tokens_output", out}});
        input += in;
        output += out;
      }
    });
  }
  for (auto& th : threads) th.join();
  storage->close();
  obs::configure_logging({});

  Db db(path);
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs"), kThreads * kPerThread);
  EXPECT_EQ(db.integer("SELECT COUNT(DISTINCT request_id) FROM access_logs"),
            kThreads * kPerThread);
  EXPECT_EQ(db.integer("SELECT SUM(tokens_input) FROM access_logs"), input.load());
  EXPECT_EQ(db.integer("SELECT SUM(tokens_output) FROM access_logs"), output.load());
  EXPECT_EQ(db.integer("SELECT COUNT(*) FROM access_logs WHERE method = 'POST' AND "
                       "path = '/v1/messages' AND status_code = 200 AND duration_ms >= 0"),
            kThreads * kPerThread);
  EXPECT_EQ(storage->stats().rows_written, static_cast<std::uint64_t>(kThreads * kPerThread));
}

// Rows wait for a full batch, flush(), close() or the commit interval: a request thread does
// not wake the writer for every row.
TEST(StorageTest, CommitsWhenABatchIsFullOrOnFlushNotPerRow) {
  ccobs_test::TempDir dir;
  obs::SqliteStorageOptions options;
  options.batch_size = 3;
  options.commit_interval = std::chrono::seconds(30);
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db", options);

  ASSERT_TRUE(storage.store(make_row("a", 0)));
  ASSERT_TRUE(storage.store(make_row("b", 1)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(storage.stats().rows_written, 0u);  // two rows: no batch yet, interval not over

  ASSERT_TRUE(storage.store(make_row("c", 2)));  // the third fills the batch
  ASSERT_TRUE(wait_until([&] { return storage.stats().rows_written == 3; }));

  ASSERT_TRUE(storage.store(make_row("d", 3)));
  storage.flush();  // does not wait for the interval
  EXPECT_EQ(storage.stats().rows_written, 4u);

  ASSERT_TRUE(storage.store(make_row("e", 4)));
  const auto before = std::chrono::steady_clock::now();
  storage.close();
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10));
  EXPECT_EQ(storage.stats().rows_written, 5u);
}
