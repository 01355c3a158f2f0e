// Compiles the public contracts against the installed package and checks that they behave
// as their comments say.
#include <ccproxy/observability.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

namespace obs = ccproxy::observability;

#define CHECK(cond)                                                \
  do {                                                             \
    if (!(cond)) {                                                 \
      std::fprintf(stderr, "consumer: check failed: %s\n", #cond); \
      return EXIT_FAILURE;                                         \
    }                                                              \
  } while (0)

int main() {
  obs::Fields f{{"method", "POST"}, {"status_code", 200}};
  CHECK(f.find("status_code")->as_int() == 200);

  {  // access-log storage: store only queues, close drains, queries read the file
    std::string dir = (std::filesystem::temp_directory_path() / "ccobs-consumer-XXXXXX").string();
    CHECK(mkdtemp(dir.data()) != nullptr);
    const std::string path = dir + "/access.db";
    auto storage = std::make_shared<obs::SqliteAccessLogStorage>(path);
    obs::AccessLogRow row;
    row.request_id = "consumer-1";
    row.timestamp = std::chrono::system_clock::now();
    row.model = "claude-sonnet";
    row.tokens_input = 3;
    CHECK(storage->store(row));
    storage->flush();
    auto rows = storage->get_recent_requests(100);  // newest first
    CHECK(rows.size() == 1 && rows[0].request_id == "consumer-1");
    obs::AccessLogFilter filter;
    filter.model = "claude-sonnet";
    auto summary = storage->get_analytics(filter);
    CHECK(summary.total_requests == 1 && summary.total_tokens_input == 3);
    auto health = storage->health_check();
    CHECK(health.status == obs::StorageHealth::Status::kHealthy && health.row_count == 1);
    CHECK(health.path == path);
    storage->close();
    CHECK(!storage->store(row));  // closed: dropped and counted
    CHECK(storage->stats().rows_dropped_closed == 1);
    std::filesystem::remove_all(dir);
  }

  std::puts("consumer: ok");
  return EXIT_SUCCESS;
}
