#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <limits>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include "ccproxy/observability/clock.hpp"
#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/storage.hpp"

namespace ccproxy::observability {
namespace {

constexpr const char* kLoggerName = "ccproxy.observability.storage";

// The columns of access_logs, in the order every statement below binds and reads them.
constexpr const char* kColumns =
    "request_id, timestamp, method, endpoint, path, query, client_ip, user_agent, "
    "service_type, model, streaming, status_code, duration_ms, duration_seconds, "
    "tokens_input, tokens_output, cache_read_tokens, cache_write_tokens, cost_usd, "
    "cost_sdk_usd, num_turns, session_id, session_type, session_status, session_age_seconds, "
    "session_message_count, session_client_id, session_pool_enabled, session_idle_seconds, "
    "session_error, session_is_new";
constexpr int kColumnCount = 31;

constexpr const char* kCreateTable =
    "CREATE TABLE IF NOT EXISTS access_logs ("
    "request_id TEXT PRIMARY KEY NOT NULL, timestamp TEXT NOT NULL, method TEXT, "
    "endpoint TEXT, path TEXT, query TEXT, client_ip TEXT, user_agent TEXT, "
    "service_type TEXT, model TEXT, streaming INTEGER, status_code INTEGER, "
    "duration_ms REAL, duration_seconds REAL, tokens_input INTEGER, tokens_output INTEGER, "
    "cache_read_tokens INTEGER, cache_write_tokens INTEGER, cost_usd REAL, cost_sdk_usd REAL, "
    "num_turns INTEGER, session_id TEXT, session_type TEXT, session_status TEXT, "
    "session_age_seconds REAL, session_message_count INTEGER, session_client_id TEXT, "
    "session_pool_enabled INTEGER, session_idle_seconds REAL, session_error TEXT, "
    "session_is_new INTEGER);"
    "CREATE INDEX IF NOT EXISTS access_logs_timestamp ON access_logs(timestamp);";

struct DbDeleter {
  void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
struct StmtDeleter {
  void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using DbPtr = std::unique_ptr<sqlite3, DbDeleter>;
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtDeleter>;

std::string describe(sqlite3* db) {
  return db == nullptr ? std::string("out of memory") : std::string(sqlite3_errmsg(db));
}

[[noreturn]] void fail(const std::string& path, const std::string& what, sqlite3* db) {
  throw StorageError("access-log storage '" + path + "': " + what + ": " + describe(db));
}

StmtPtr prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return nullptr;
  }
  return StmtPtr(stmt);
}

// Timestamps are stored as fixed-width UTC text, "2024-05-01T12:00:00.123456Z", so text order
// is time order and SQLite's date functions read them.
std::size_t format_timestamp(std::chrono::system_clock::time_point t, char (&out)[32]) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch());
  auto secs = static_cast<std::time_t>(us.count() / 1000000);
  auto frac = static_cast<long>(us.count() % 1000000);
  if (frac < 0) {
    frac += 1000000;
    --secs;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  const int n =
      std::snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
  return n < 0 ? 0 : std::min(static_cast<std::size_t>(n), sizeof(out) - 1);
}

std::chrono::system_clock::time_point parse_timestamp(const char* text) {
  if (text == nullptr) return {};
  std::tm tm{};
  int micros = 0;
  int year = 0, month = 0;
  const int n = std::sscanf(text, "%d-%d-%dT%d:%d:%d.%6d", &year, &month, &tm.tm_mday, &tm.tm_hour,
                            &tm.tm_min, &tm.tm_sec, &micros);
  if (n < 6) return {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  const std::time_t secs = timegm(&tm);
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs)) +
         std::chrono::microseconds(n == 7 ? micros : 0);
}

void bind_text(sqlite3_stmt* stmt, int index, const std::string& s) {
  sqlite3_bind_text(stmt, index, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
}

// Binds every column of `row`; `ts` must outlive the step.
void bind_row(sqlite3_stmt* stmt, const AccessLogRow& row, const char* ts, std::size_t ts_len) {
  int i = 0;
  bind_text(stmt, ++i, row.request_id);
  sqlite3_bind_text(stmt, ++i, ts, static_cast<int>(ts_len), SQLITE_STATIC);
  bind_text(stmt, ++i, row.method);
  bind_text(stmt, ++i, row.endpoint);
  bind_text(stmt, ++i, row.path);
  bind_text(stmt, ++i, row.query);
  bind_text(stmt, ++i, row.client_ip);
  bind_text(stmt, ++i, row.user_agent);
  bind_text(stmt, ++i, row.service_type);
  bind_text(stmt, ++i, row.model);
  sqlite3_bind_int(stmt, ++i, row.streaming ? 1 : 0);
  sqlite3_bind_int(stmt, ++i, row.status_code);
  sqlite3_bind_double(stmt, ++i, row.duration_ms);
  sqlite3_bind_double(stmt, ++i, row.duration_seconds);
  sqlite3_bind_int64(stmt, ++i, row.tokens_input);
  sqlite3_bind_int64(stmt, ++i, row.tokens_output);
  sqlite3_bind_int64(stmt, ++i, row.cache_read_tokens);
  sqlite3_bind_int64(stmt, ++i, row.cache_write_tokens);
  sqlite3_bind_double(stmt, ++i, row.cost_usd);
  sqlite3_bind_double(stmt, ++i, row.cost_sdk_usd);
  sqlite3_bind_int64(stmt, ++i, row.num_turns);
  bind_text(stmt, ++i, row.session_id);
  bind_text(stmt, ++i, row.session_type);
  bind_text(stmt, ++i, row.session_status);
  sqlite3_bind_double(stmt, ++i, row.session_age_seconds);
  sqlite3_bind_int64(stmt, ++i, row.session_message_count);
  bind_text(stmt, ++i, row.session_client_id);
  sqlite3_bind_int(stmt, ++i, row.session_pool_enabled ? 1 : 0);
  sqlite3_bind_double(stmt, ++i, row.session_idle_seconds);
  bind_text(stmt, ++i, row.session_error);
  sqlite3_bind_int(stmt, ++i, row.session_is_new ? 1 : 0);
}

std::string column_text(sqlite3_stmt* stmt, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt, col));
  return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt, col));
}

AccessLogRow read_row(sqlite3_stmt* stmt) {
  AccessLogRow row;
  int c = 0;
  row.request_id = column_text(stmt, c++);
  row.timestamp = parse_timestamp(reinterpret_cast<const char*>(sqlite3_column_text(stmt, c++)));
  row.method = column_text(stmt, c++);
  row.endpoint = column_text(stmt, c++);
  row.path = column_text(stmt, c++);
  row.query = column_text(stmt, c++);
  row.client_ip = column_text(stmt, c++);
  row.user_agent = column_text(stmt, c++);
  row.service_type = column_text(stmt, c++);
  row.model = column_text(stmt, c++);
  row.streaming = sqlite3_column_int(stmt, c++) != 0;
  row.status_code = sqlite3_column_int(stmt, c++);
  row.duration_ms = sqlite3_column_double(stmt, c++);
  row.duration_seconds = sqlite3_column_double(stmt, c++);
  row.tokens_input = sqlite3_column_int64(stmt, c++);
  row.tokens_output = sqlite3_column_int64(stmt, c++);
  row.cache_read_tokens = sqlite3_column_int64(stmt, c++);
  row.cache_write_tokens = sqlite3_column_int64(stmt, c++);
  row.cost_usd = sqlite3_column_double(stmt, c++);
  row.cost_sdk_usd = sqlite3_column_double(stmt, c++);
  row.num_turns = sqlite3_column_int64(stmt, c++);
  row.session_id = column_text(stmt, c++);
  row.session_type = column_text(stmt, c++);
  row.session_status = column_text(stmt, c++);
  row.session_age_seconds = sqlite3_column_double(stmt, c++);
  row.session_message_count = sqlite3_column_int64(stmt, c++);
  row.session_client_id = column_text(stmt, c++);
  row.session_pool_enabled = sqlite3_column_int(stmt, c++) != 0;
  row.session_idle_seconds = sqlite3_column_double(stmt, c++);
  row.session_error = column_text(stmt, c++);
  row.session_is_new = sqlite3_column_int(stmt, c++) != 0;
  return row;
}

bool valid_metric_prefix(std::string_view ns) {
  auto head = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
  };
  if (ns.empty() || !head(ns.front())) return false;
  return std::all_of(ns.begin() + 1, ns.end(),
                     [&](char c) { return head(c) || (c >= '0' && c <= '9'); });
}

// Lets one event through per interval, from any thread.
class RateLimiter {
 public:
  RateLimiter(const Clock& clock, std::chrono::milliseconds interval)
      : clock_(clock), interval_(std::chrono::duration_cast<Clock::duration>(interval)) {}

  bool allow() noexcept {
    const auto now = clock_.now().time_since_epoch().count();
    auto next = next_.load(std::memory_order_relaxed);
    while (now >= next) {
      if (next_.compare_exchange_weak(next, now + interval_.count(), std::memory_order_relaxed)) {
        return true;
      }
    }
    return false;
  }

 private:
  const Clock& clock_;
  Clock::duration interval_;
  std::atomic<Clock::duration::rep> next_{std::numeric_limits<Clock::duration::rep>::min()};
};

enum DropReason { kQueueFull, kClosed, kWriteFailed, kRejected, kDropReasonCount };
constexpr const char* kDropReasonNames[kDropReasonCount] = {"queue_full", "closed", "write_failed",
                                                            "rejected"};

}  // namespace

struct SqliteAccessLogStorage::Impl {
  Impl(std::string p, SqliteStorageOptions o)
      : path(std::move(p)),
        options(std::move(o)),
        clock(options.clock != nullptr ? *options.clock : Clock::steady()),
        log(kLoggerName, {{"path", path}}),
        drop_warnings{{clock, options.warning_interval},
                      {clock, options.warning_interval},
                      {clock, options.warning_interval},
                      {clock, options.warning_interval}},
        failure_warnings(clock, options.warning_interval) {}

  void open();
  void register_metrics();
  void writer_loop() noexcept;
  bool write_batch(std::vector<AccessLogRow>& batch) noexcept;
  bool try_write(const std::vector<AccessLogRow>& batch, std::uint64_t& n_written,
                 std::uint64_t& n_duplicate, std::uint64_t& n_rejected,
                 std::string& error) noexcept;
  void count_drop(DropReason reason, std::uint64_t n) noexcept;
  void warn_drop(DropReason reason, std::uint64_t n, const char* event) noexcept;
  void report_queue_full() noexcept;
  void set_write_error(const std::string* error) noexcept;
  bool exec(sqlite3* db, const char* sql) noexcept {
    return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK;
  }

  const std::string path;
  const SqliteStorageOptions options;
  const Clock& clock;
  const Logger log;
  RateLimiter drop_warnings[kDropReasonCount];
  RateLimiter failure_warnings;
  // Rows store() dropped on a full queue that no warning has mentioned yet; the writer
  // thread reports them, so the request thread does no logging I/O.
  std::atomic<std::uint64_t> unreported_queue_full{0};

  std::atomic<bool> write_failing{false};
  mutable std::mutex error_mutex;
  std::string last_write_error;  // guarded by error_mutex

  // Used by the constructor, then only by the writer thread, then by close() after the join.
  DbPtr write_db;
  StmtPtr insert;

  mutable std::mutex read_mutex;
  DbPtr read_db;  // guarded by read_mutex

  mutable std::mutex queue_mutex;
  std::condition_variable queue_cv;  // the writer waits for rows or closing
  std::condition_variable done_cv;   // flush() waits for processed to catch up
  std::deque<AccessLogRow> queue;    // guarded by queue_mutex
  bool closing = false;              // guarded by queue_mutex
  std::uint64_t accepted = 0;        // guarded by queue_mutex
  std::uint64_t processed = 0;       // written, duplicate, rejected or given up; queue_mutex
  std::size_t flush_waiters = 0;     // flush() calls waiting; guarded by queue_mutex

  std::mutex close_mutex;
  std::atomic<bool> closed{false};
  std::thread writer;

  std::atomic<std::uint64_t> rows_written{0};
  std::atomic<std::uint64_t> duplicates{0};
  std::atomic<std::uint64_t> batch_failures{0};
  std::atomic<std::uint64_t> dropped[kDropReasonCount] = {};

  prometheus::Counter* written_counter = nullptr;
  prometheus::Counter* duplicate_counter = nullptr;
  prometheus::Counter* failure_counter = nullptr;
  prometheus::Counter* dropped_counters[kDropReasonCount] = {};
};

void SqliteAccessLogStorage::Impl::open() {
  sqlite3* raw = nullptr;
  const int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr);
  write_db.reset(raw);
  if (rc != SQLITE_OK) fail(path, "cannot open or create the file", raw);
  sqlite3_extended_result_codes(raw, 1);
  if (sqlite3_db_readonly(raw, "main") == 1) {
    throw StorageError("access-log storage '" + path + "': the file is not writable");
  }
  sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));

  auto mode = prepare(raw, "PRAGMA journal_mode=WAL");
  if (!mode) fail(path, "cannot read the database", raw);
  if (sqlite3_step(mode.get()) != SQLITE_ROW) fail(path, "cannot switch to WAL mode", raw);
  const std::string journal = column_text(mode.get(), 0);
  mode.reset();
  if (journal != "wal") {
    throw StorageError("access-log storage '" + path + "': WAL mode unavailable (journal mode " +
                       journal + ")");
  }
  // Limitation: synchronous=NORMAL in WAL mode survives a crash of the process but may lose
  // the last transactions on a power failure; FULL would cost an fsync per batch.
  if (!exec(raw, "PRAGMA synchronous=NORMAL") || !exec(raw, kCreateTable)) {
    fail(path, "cannot create the access_logs table", raw);
  }
  std::string sql = std::string("INSERT OR IGNORE INTO access_logs (") + kColumns + ") VALUES (?";
  for (int i = 1; i < kColumnCount; ++i) sql += ",?";
  sql += ")";
  // Limitation: there is no schema migration; an access_logs table from another version
  // (missing a column) is refused at construction rather than altered.
  insert = prepare(raw, sql.c_str());
  if (!insert) fail(path, "the access_logs table does not have the expected columns", raw);

  sqlite3* reader = nullptr;
  const int read_rc =
      sqlite3_open_v2(path.c_str(), &reader, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr);
  read_db.reset(reader);
  if (read_rc != SQLITE_OK) fail(path, "cannot open a read connection", reader);
  sqlite3_busy_timeout(reader, static_cast<int>(options.busy_timeout.count()));
  if (!exec(reader, "PRAGMA query_only=1")) fail(path, "cannot open a read connection", reader);
}

void SqliteAccessLogStorage::Impl::register_metrics() {
  if (!options.registry) return;
  const std::string& ns = options.metric_namespace;
  auto& registry = *options.registry;
  written_counter = &prometheus::BuildCounter()
                         .Name(ns + "_access_log_rows_written_total")
                         .Help("Access-log rows committed to the database")
                         .Register(registry)
                         .Add({});
  duplicate_counter = &prometheus::BuildCounter()
                           .Name(ns + "_access_log_duplicate_rows_total")
                           .Help(
                               "Access-log rows not written because their request_id was "
                               "already stored")
                           .Register(registry)
                           .Add({});
  failure_counter = &prometheus::BuildCounter()
                         .Name(ns + "_access_log_batch_failures_total")
                         .Help(
                             "Attempts to write a batch of access-log rows that failed and "
                             "were rolled back")
                         .Register(registry)
                         .Add({});
  auto& dropped_family = prometheus::BuildCounter()
                             .Name(ns + "_access_log_rows_dropped_total")
                             .Help("Access-log rows given up, by reason")
                             .Register(registry);
  for (int r = 0; r < kDropReasonCount; ++r) {
    dropped_counters[r] = &dropped_family.Add({{"reason", kDropReasonNames[r]}});
  }
}

void SqliteAccessLogStorage::Impl::count_drop(DropReason reason, std::uint64_t n) noexcept {
  dropped[reason].fetch_add(n, std::memory_order_relaxed);
  if (dropped_counters[reason] != nullptr) {
    dropped_counters[reason]->Increment(static_cast<double>(n));
  }
}

void SqliteAccessLogStorage::Impl::warn_drop(DropReason reason, std::uint64_t n,
                                             const char* event) noexcept {
  if (!drop_warnings[reason].allow()) return;
  std::uint64_t total = 0;
  for (const auto& d : dropped) total += d.load(std::memory_order_relaxed);
  log.warning(event,
              {{"reason", kDropReasonNames[reason]}, {"rows", n}, {"rows_dropped_total", total}});
}

void SqliteAccessLogStorage::Impl::report_queue_full() noexcept {
  if (unreported_queue_full.load(std::memory_order_relaxed) == 0) return;
  if (!drop_warnings[kQueueFull].allow()) return;
  const std::uint64_t n = unreported_queue_full.exchange(0, std::memory_order_relaxed);
  std::uint64_t total = 0;
  for (const auto& d : dropped) total += d.load(std::memory_order_relaxed);
  log.warning("access_log_rows_dropped",
              {{"reason", "queue_full"}, {"rows", n}, {"rows_dropped_total", total}});
}

void SqliteAccessLogStorage::Impl::set_write_error(const std::string* error) noexcept {
  if (error == nullptr) {
    write_failing.store(false);
    return;
  }
  try {
    std::lock_guard<std::mutex> lock(error_mutex);
    last_write_error = *error;
  } catch (...) {
    // Out of memory for the text: the flag below still marks the failure.
  }
  write_failing.store(true);
}

void SqliteAccessLogStorage::Impl::writer_loop() noexcept {
  std::vector<AccessLogRow> batch;
  batch.reserve(options.batch_size);
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(queue_mutex);
      queue_cv.wait_for(lock, options.commit_interval, [&] {
        return queue.size() >= options.batch_size || closing || flush_waiters > 0;
      });
      if (queue.empty()) {
        if (closing) return;  // nothing left
        continue;
      }
      const std::size_t n = std::min(options.batch_size, queue.size());
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
    }

    const bool committed = write_batch(batch);
    report_queue_full();

    // Closing, and a whole batch was just given up: the rest would wait as long again, batch
    // after batch, so close() gives it up at once rather than hang the shutdown.
    std::size_t abandoned = 0;
    {
      std::lock_guard<std::mutex> lock(queue_mutex);
      if (!committed && closing) {
        abandoned = queue.size();
        queue.clear();
      }
      processed += batch.size() + abandoned;
    }
    if (abandoned > 0) {
      count_drop(kWriteFailed, abandoned);
      warn_drop(kWriteFailed, abandoned, "access_log_rows_given_up");
    }
    done_cv.notify_all();
    batch.clear();
  }
}

bool SqliteAccessLogStorage::Impl::write_batch(std::vector<AccessLogRow>& batch) noexcept {
  auto backoff = options.retry_backoff;
  std::string error;
  for (std::size_t attempt = 1;; ++attempt) {
    std::uint64_t written = 0, dups = 0, rejected = 0;
    if (try_write(batch, written, dups, rejected, error)) {
      set_write_error(nullptr);
      rows_written.fetch_add(written, std::memory_order_relaxed);
      duplicates.fetch_add(dups, std::memory_order_relaxed);
      if (written_counter != nullptr) written_counter->Increment(static_cast<double>(written));
      if (duplicate_counter != nullptr) duplicate_counter->Increment(static_cast<double>(dups));
      if (rejected > 0) {
        count_drop(kRejected, rejected);
        warn_drop(kRejected, rejected, "access_log_rows_rejected");
      }
      return true;
    }

    set_write_error(&error);
    batch_failures.fetch_add(1, std::memory_order_relaxed);
    if (failure_counter != nullptr) failure_counter->Increment();
    if (attempt >= options.max_write_attempts) {
      count_drop(kWriteFailed, batch.size());
      warn_drop(kWriteFailed, batch.size(), "access_log_rows_given_up");
      return false;
    }
    if (failure_warnings.allow()) {
      log.warning("access_log_batch_failed", {{"attempt", static_cast<std::int64_t>(attempt)},
                                              {"rows", static_cast<std::int64_t>(batch.size())},
                                              {"error", error},
                                              {"retry_in_ms", backoff.count()}});
    }
    report_queue_full();
    // Sleeping here delays only the writer; store() keeps queueing (and dropping when full).
    // Limitation: the backoff sleeps on the real clock, not options.clock: SQLite's own busy
    // wait is real time too, so retry tests use millisecond backoffs instead of a ManualClock.
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, options.retry_backoff_max);
  }
}

bool SqliteAccessLogStorage::Impl::try_write(const std::vector<AccessLogRow>& batch,
                                             std::uint64_t& n_written, std::uint64_t& n_duplicate,
                                             std::uint64_t& n_rejected,
                                             std::string& error) noexcept {
  sqlite3* db = write_db.get();
  sqlite3_stmt* stmt = insert.get();
  if (!exec(db, "BEGIN IMMEDIATE")) {
    error = describe(db);
    return false;
  }
  char ts[32];
  for (const auto& row : batch) {
    const std::size_t ts_len = format_timestamp(row.timestamp, ts);
    bind_row(stmt, row, ts, ts_len);
    const int rc = sqlite3_step(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_DONE) {
      (sqlite3_changes(db) == 0 ? n_duplicate : n_written) += 1;
      continue;
    }
    const int primary = rc & 0xff;
    if (primary == SQLITE_TOOBIG || primary == SQLITE_CONSTRAINT || primary == SQLITE_MISMATCH) {
      ++n_rejected;  // this row alone is refused; the rest of the batch goes on
      continue;
    }
    error = describe(db);
    if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
    return false;
  }
  sqlite3_clear_bindings(stmt);
  if (!exec(db, "COMMIT")) {
    error = describe(db);
    if (!sqlite3_get_autocommit(db)) exec(db, "ROLLBACK");
    return false;
  }
  return true;
}

SqliteAccessLogStorage::SqliteAccessLogStorage(std::string path, SqliteStorageOptions options) {
  if (path.empty()) throw std::invalid_argument("SqliteAccessLogStorage: path must not be empty");
  auto positive = [](auto value, const char* name) {
    if (value <= decltype(value){}) {
      throw std::invalid_argument(std::string("SqliteStorageOptions.") + name +
                                  " must be positive");
    }
  };
  positive(options.queue_capacity, "queue_capacity");
  positive(options.batch_size, "batch_size");
  positive(options.commit_interval.count(), "commit_interval");
  positive(options.max_write_attempts, "max_write_attempts");
  if (options.busy_timeout.count() < 0 || options.busy_timeout.count() > INT32_MAX) {
    throw std::invalid_argument("SqliteStorageOptions.busy_timeout must be 0 to 2^31-1 ms");
  }
  if (options.retry_backoff.count() < 0 || options.retry_backoff_max < options.retry_backoff) {
    throw std::invalid_argument(
        "SqliteStorageOptions.retry_backoff must be >= 0 and <= retry_backoff_max");
  }
  if (options.warning_interval.count() < 0) {
    throw std::invalid_argument("SqliteStorageOptions.warning_interval must not be negative");
  }
  if (!valid_metric_prefix(options.metric_namespace)) {
    throw std::invalid_argument("SqliteStorageOptions.metric_namespace '" +
                                options.metric_namespace + "' is not a valid metric-name prefix");
  }

  impl_ = std::make_unique<Impl>(std::move(path), std::move(options));
  impl_->open();
  impl_->register_metrics();
  impl_->writer = std::thread([impl = impl_.get()] { impl->writer_loop(); });
  impl_->log.info("access_log_storage_opened", {{"queue_capacity", impl_->options.queue_capacity},
                                                {"batch_size", impl_->options.batch_size}});
}

SqliteAccessLogStorage::~SqliteAccessLogStorage() { close(); }

bool SqliteAccessLogStorage::store(AccessLogRow row) noexcept {
  Impl& impl = *impl_;
  DropReason reason = kDropReasonCount;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(impl.queue_mutex);
    if (impl.closing) {
      reason = kClosed;
    } else if (impl.queue.size() >= impl.options.queue_capacity) {
      reason = kQueueFull;
    } else {
      try {
        wake = impl.queue.size() + 1 == impl.options.batch_size;  // a batch is full
        impl.queue.push_back(std::move(row));
        ++impl.accepted;
      } catch (...) {
        reason = kQueueFull;  // memory exhausted: the queue is as full as it gets
      }
    }
  }
  if (reason == kQueueFull) {
    impl.count_drop(reason, 1);
    impl.unreported_queue_full.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  if (reason == kClosed) {
    impl.count_drop(reason, 1);
    // Limitation: with the writer gone, a row stored after close() is warned about by the
    // calling thread (at most once per warning_interval), which is I/O on that thread.
    impl.warn_drop(reason, 1, "access_log_rows_dropped");
    return false;
  }
  if (wake) impl.queue_cv.notify_one();
  return true;
}

void SqliteAccessLogStorage::flush() noexcept {
  Impl& impl = *impl_;
  std::unique_lock<std::mutex> lock(impl.queue_mutex);
  const std::uint64_t target = impl.accepted;
  if (impl.processed >= target) return;
  ++impl.flush_waiters;
  impl.queue_cv.notify_one();
  impl.done_cv.wait(lock, [&] { return impl.processed >= target; });
  --impl.flush_waiters;
}

void SqliteAccessLogStorage::close() noexcept {
  Impl& impl = *impl_;
  std::lock_guard<std::mutex> close_lock(impl.close_mutex);
  if (impl.closed.load()) return;
  {
    std::lock_guard<std::mutex> lock(impl.queue_mutex);
    impl.closing = true;
  }
  impl.queue_cv.notify_all();
  if (impl.writer.joinable()) impl.writer.join();
  impl.insert.reset();
  impl.write_db.reset();
  impl.closed.store(true);
  const StorageStats s = stats();
  impl.log.info("access_log_storage_closed",
                {{"rows_written", s.rows_written},
                 {"rows_dropped", s.rows_dropped_queue_full + s.rows_dropped_closed +
                                      s.rows_dropped_write_failed + s.rows_dropped_rejected},
                 {"duplicate_rows", s.duplicate_rows}});
}

std::vector<AccessLogRow> SqliteAccessLogStorage::get_recent_requests(std::size_t limit) const {
  const Impl& impl = *impl_;
  std::lock_guard<std::mutex> lock(impl.read_mutex);
  sqlite3* db = impl.read_db.get();
  const std::string sql = std::string("SELECT ") + kColumns +
                          " FROM access_logs ORDER BY timestamp DESC, rowid DESC LIMIT ?";
  auto stmt = prepare(db, sql.c_str());
  if (!stmt) fail(impl.path, "cannot query recent requests", db);
  const auto bounded = std::min<std::size_t>(limit, static_cast<std::size_t>(INT64_MAX));
  sqlite3_bind_int64(stmt.get(), 1, static_cast<sqlite3_int64>(bounded));

  std::vector<AccessLogRow> rows;
  int rc;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) rows.push_back(read_row(stmt.get()));
  if (rc != SQLITE_DONE) fail(impl.path, "cannot query recent requests", db);
  return rows;
}

AccessLogSummary SqliteAccessLogStorage::get_analytics(const AccessLogFilter& filter) const {
  const Impl& impl = *impl_;
  std::string sql =
      "SELECT COUNT(*), AVG(duration_ms), TOTAL(cost_usd), TOTAL(tokens_input), "
      "TOTAL(tokens_output), TOTAL(cache_read_tokens), TOTAL(cache_write_tokens) "
      "FROM access_logs WHERE 1";
  // Only placeholders are added to the text; every value is bound.
  char start[32], end[32];
  std::size_t start_len = 0, end_len = 0;
  if (filter.start_time) {
    start_len = format_timestamp(*filter.start_time, start);
    sql += " AND timestamp >= :start";
  }
  if (filter.end_time) {
    end_len = format_timestamp(*filter.end_time, end);
    sql += " AND timestamp < :end";
  }
  if (!filter.model.empty()) sql += " AND model = :model";
  if (!filter.service_type.empty()) sql += " AND service_type = :service_type";

  std::lock_guard<std::mutex> lock(impl.read_mutex);
  sqlite3* db = impl.read_db.get();
  auto stmt = prepare(db, sql.c_str());
  if (!stmt) fail(impl.path, "cannot query analytics", db);
  sqlite3_stmt* s = stmt.get();
  auto index = [s](const char* name) { return sqlite3_bind_parameter_index(s, name); };
  if (start_len > 0) {
    sqlite3_bind_text(s, index(":start"), start, static_cast<int>(start_len), SQLITE_STATIC);
  }
  if (end_len > 0) {
    sqlite3_bind_text(s, index(":end"), end, static_cast<int>(end_len), SQLITE_STATIC);
  }
  if (!filter.model.empty()) bind_text(s, index(":model"), filter.model);
  if (!filter.service_type.empty()) bind_text(s, index(":service_type"), filter.service_type);

  if (sqlite3_step(s) != SQLITE_ROW) fail(impl.path, "cannot query analytics", db);
  AccessLogSummary summary;
  summary.total_requests = sqlite3_column_int64(s, 0);
  summary.avg_duration_ms = sqlite3_column_double(s, 1);  // NULL (no rows) reads as 0
  summary.total_cost_usd = sqlite3_column_double(s, 2);
  // Limitation: TOTAL() sums as a double so that it cannot overflow; token sums are exact up
  // to 2^53 (about 9e15 tokens), far beyond what one file holds.
  summary.total_tokens_input = static_cast<std::int64_t>(sqlite3_column_double(s, 3));
  summary.total_tokens_output = static_cast<std::int64_t>(sqlite3_column_double(s, 4));
  summary.total_cache_read_tokens = static_cast<std::int64_t>(sqlite3_column_double(s, 5));
  summary.total_cache_write_tokens = static_cast<std::int64_t>(sqlite3_column_double(s, 6));
  return summary;
}

StorageHealth SqliteAccessLogStorage::health_check() const noexcept {
  const Impl& impl = *impl_;
  StorageHealth health;
  health.closed = impl.closed.load();
  health.queue_depth = stats().queue_depth;
  const bool failing = impl.write_failing.load();
  try {
    health.path = impl.path;
    std::lock_guard<std::mutex> lock(impl.read_mutex);
    sqlite3* db = impl.read_db.get();
    auto stmt = prepare(db, "SELECT COUNT(*) FROM access_logs");
    if (stmt && sqlite3_step(stmt.get()) == SQLITE_ROW) {
      health.row_count = sqlite3_column_int64(stmt.get(), 0);
      health.status = StorageHealth::Status::kHealthy;
      if (failing) {
        std::lock_guard<std::mutex> error_lock(impl.error_mutex);
        health.status = StorageHealth::Status::kUnhealthy;
        health.error = "writing failed: " + impl.last_write_error;
      }
    } else {
      health.error = describe(db);
    }
  } catch (const std::exception& e) {
    health.error = e.what();
  }
  return health;
}

StorageStats SqliteAccessLogStorage::stats() const noexcept {
  const Impl& impl = *impl_;
  StorageStats s;
  {
    std::lock_guard<std::mutex> lock(impl.queue_mutex);
    s.rows_accepted = impl.accepted;
    s.queue_depth = impl.queue.size();
  }
  s.rows_written = impl.rows_written.load(std::memory_order_relaxed);
  s.rows_dropped_queue_full = impl.dropped[kQueueFull].load(std::memory_order_relaxed);
  s.rows_dropped_closed = impl.dropped[kClosed].load(std::memory_order_relaxed);
  s.rows_dropped_write_failed = impl.dropped[kWriteFailed].load(std::memory_order_relaxed);
  s.rows_dropped_rejected = impl.dropped[kRejected].load(std::memory_order_relaxed);
  s.duplicate_rows = impl.duplicates.load(std::memory_order_relaxed);
  s.batch_failures = impl.batch_failures.load(std::memory_order_relaxed);
  return s;
}

const std::string& SqliteAccessLogStorage::path() const noexcept { return impl_->path; }

}  // namespace ccproxy::observability
