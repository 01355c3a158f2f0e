// Access-log writer throughput: rows per second from store() until they are committed, beside
// plain SQLite inserting one row per autocommit transaction (prepared, and as formatted SQL
// text), which is how a naive storage would do it. Each benchmark writes a fresh file in a
// temporary directory.
#include <benchmark/benchmark.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/storage.hpp"

namespace obs = ccproxy::observability;

namespace {

constexpr int kRowsPerIteration = 5000;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = std::filesystem::temp_directory_path().string() + "/ccobs-bench-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

obs::AccessLogRow make_row(std::int64_t n) {
  obs::AccessLogRow row;
  row.request_id = "req-" + std::to_string(n) + "-4f1c2a9e-0b7d-4c55-9a3e-5d8f0e2b1c7a";
  row.timestamp = std::chrono::system_clock::now();
  row.method = "POST";
  row.endpoint = "messages";
  row.path = "/v1/messages";
  row.client_ip = "10.1.2.3";
  row.user_agent = "anthropic-sdk-python/0.40.0";
  row.service_type = "proxy_service";
  row.model = "claude-3-5-sonnet-20241022";
  row.status_code = 200;
  row.duration_ms = 812.5;
  row.duration_seconds = 0.8125;
  row.tokens_input = 1200 + n % 100;
  row.tokens_output = 350;
  row.cost_usd = 0.0123;
  return row;
}

void quiet_logs() {
  obs::LoggingOptions options;
  options.level = obs::LogLevel::kWarning;
  obs::configure_logging(options);
}

// Ours: store() from the calling thread, flush() waits for the writer to commit.
void BM_SqliteStorageWriter(benchmark::State& state) {
  quiet_logs();
  TempDir dir;
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db");
  std::int64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < kRowsPerIteration; ++i) storage.store(make_row(n++));
    storage.flush();
  }
  storage.close();
  if (storage.stats().rows_written != static_cast<std::uint64_t>(n)) {
    state.SkipWithError("rows were lost");
  }
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_SqliteStorageWriter)->Unit(benchmark::kMillisecond)->UseRealTime();

// What a request pays: store() alone, with the writer draining concurrently.
void BM_SqliteStorageStoreCall(benchmark::State& state) {
  quiet_logs();
  TempDir dir;
  obs::SqliteStorageOptions options;
  options.queue_capacity = 1 << 22;
  obs::SqliteAccessLogStorage storage(dir.path() + "/access.db", options);
  std::int64_t n = 0;
  for (auto _ : state) {
    auto row = make_row(n++);
    benchmark::DoNotOptimize(storage.store(std::move(row)));
  }
  storage.close();
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_SqliteStorageStoreCall);

sqlite3* open_plain(const std::string& path) {
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db,
               "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
               "CREATE TABLE access_logs (request_id TEXT PRIMARY KEY, timestamp TEXT, "
               "method TEXT, path TEXT, model TEXT, status_code INTEGER, duration_ms REAL, "
               "tokens_input INTEGER, tokens_output INTEGER, cost_usd REAL)",
               nullptr, nullptr, nullptr);
  return db;
}

// The competing way: one prepared INSERT per row, each its own autocommit transaction.
void BM_PlainSqliteAutocommitInsert(benchmark::State& state) {
  TempDir dir;
  sqlite3* db = open_plain(dir.path() + "/plain.db");
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "INSERT INTO access_logs VALUES (?,?,?,?,?,?,?,?,?,?)", -1, &stmt,
                     nullptr);
  std::int64_t n = 0;
  for (auto _ : state) {
    for (int i = 0; i < kRowsPerIteration; ++i) {
      const auto row = make_row(n++);
      sqlite3_bind_text(stmt, 1, row.request_id.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 2, "2024-05-01T12:00:00.000000Z", -1, SQLITE_STATIC);
      sqlite3_bind_text(stmt, 3, row.method.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 4, row.path.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 5, row.model.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(stmt, 6, row.status_code);
      sqlite3_bind_double(stmt, 7, row.duration_ms);
      sqlite3_bind_int64(stmt, 8, row.tokens_input);
      sqlite3_bind_int64(stmt, 9, row.tokens_output);
      sqlite3_bind_double(stmt, 10, row.cost_usd);
      if (sqlite3_step(stmt) != SQLITE_DONE) state.SkipWithError(sqlite3_errmsg(db));
      sqlite3_reset(stmt);
    }
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_PlainSqliteAutocommitInsert)->Unit(benchmark::kMillisecond)->UseRealTime();

// The naive way: the row formatted into SQL text and executed, one autocommit per row.
void BM_PlainSqliteNaiveExec(benchmark::State& state) {
  TempDir dir;
  sqlite3* db = open_plain(dir.path() + "/naive.db");
  std::int64_t n = 0;
  char sql[512];
  for (auto _ : state) {
    for (int i = 0; i < kRowsPerIteration; ++i) {
      const auto row = make_row(n++);
      std::snprintf(sql, sizeof sql,
                    "INSERT INTO access_logs VALUES ('%s','2024-05-01T12:00:00.000000Z','%s',"
                    "'%s','%s',%d,%f,%lld,%lld,%f)",
                    row.request_id.c_str(), row.method.c_str(), row.path.c_str(), row.model.c_str(),
                    row.status_code, row.duration_ms, static_cast<long long>(row.tokens_input),
                    static_cast<long long>(row.tokens_output), row.cost_usd);
      if (sqlite3_exec(db, sql, nullptr, nullptr, nullptr) != SQLITE_OK) {
        state.SkipWithError(sqlite3_errmsg(db));
      }
    }
  }
  sqlite3_close(db);
  state.SetItemsProcessed(n);
}
BENCHMARK(BM_PlainSqliteNaiveExec)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
