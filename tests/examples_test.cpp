// Runs the examples as their users do: demo_upstream and proxy as real processes on free
// loopback ports, requests over HTTP, then the proxy's /metrics, its Server-Sent Events
// stream and its SQLite file read back.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"

using nlohmann::json;

namespace {

const std::string kProxy = CCOBS_PROXY_BIN;
const std::string kUpstream = CCOBS_DEMO_UPSTREAM_BIN;
const std::string kBatchJob = CCOBS_BATCH_JOB_BIN;

struct HttpResponse {
  long status = 0;  // 0: no answer
  std::string body;
  std::map<std::string, std::string> headers;  // names in lower case
};

size_t append_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

size_t append_header(char* data, size_t size, size_t count, void* user) {
  std::string line(data, size * count);
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    value.erase(value.find_last_not_of("\r\n ") + 1);
    (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
  }
  return size * count;
}

HttpResponse http(const std::string& method, const std::string& url, const std::string& body = {},
                  const std::vector<std::string>& headers = {}) {
  HttpResponse r;
  CURL* easy = curl_easy_init();
  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  if (method != "GET") {
    curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &append_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &append_header);
  curl_easy_setopt(easy, CURLOPT_HEADERDATA, &r.headers);
  if (curl_easy_perform(easy) == CURLE_OK) {
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r.status);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(easy);
  return r;
}

std::string message_body(const std::string& model, const std::string& text = "hello") {
  json body = {{"model", model},
               {"max_tokens", 256},
               {"messages", json::array({{{"role", "user"}, {"content", text}}})}};
  return body.dump();
}

// Waits for a server started with --port 0 --port-file to write its port.
int read_port_file(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(path);
    int port = 0;
    if (in >> port && port > 0) return port;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return 0;
}

std::vector<json> read_json_lines(const std::string& path) {
  std::vector<json> lines;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded()) lines.push_back(std::move(j));
  }
  return lines;
}

// The sum of the samples of `name` whose labels include every pair of `labels`, read from
// Prometheus text exposition.
double metric_sum(const std::string& text, const std::string& name,
                  const std::map<std::string, std::string>& labels = {}) {
  double sum = 0.0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto name_end = line.find_first_of("{ ");
    if (line.compare(0, name_end, name) != 0 || name_end != name.size()) continue;
    bool match = true;
    for (const auto& [k, v] : labels) {
      if (line.find(k + "=\"" + v + "\"") == std::string::npos) match = false;
    }
    if (match) sum += std::stod(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

// A read-only view of an SQLite file.
class Database {
 public:
  explicit Database(const std::string& path) {
    if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
    }
  }
  ~Database() { sqlite3_close(db_); }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Each row of the query as column name -> text.
  std::vector<std::map<std::string, std::string>> rows(const std::string& sql) {
    std::vector<std::map<std::string, std::string>> out;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
      ADD_FAILURE() << sqlite3_errmsg(db_) << ": " << sql;
      return out;
    }
    while (sqlite3_step(stmt) == SQLITE_ROW) {
      std::map<std::string, std::string> row;
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
        const unsigned char* text = sqlite3_column_text(stmt, i);
        row[sqlite3_column_name(stmt, i)] =
            text != nullptr ? reinterpret_cast<const char*>(text) : "";
      }
      out.push_back(std::move(row));
    }
    sqlite3_finalize(stmt);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

// Reads a Server-Sent Events stream on a thread until `done` holds for what arrived or the
// time is up.
class SseReader {
 public:
  SseReader(std::string url, std::chrono::milliseconds limit) {
    thread_ = std::thread([this, url = std::move(url), limit] {
      CURL* easy = curl_easy_init();
      curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
      curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(limit.count()));
      curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
      curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &SseReader::on_data);
      curl_easy_setopt(easy, CURLOPT_WRITEDATA, this);
      curl_easy_perform(easy);
      curl_easy_cleanup(easy);
      finished_ = true;
    });
  }
  ~SseReader() { join(); }

  // Stop reading once `text` and the rest of its event have arrived.
  void stop_after(std::string text) {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_after_ = std::move(text);
  }
  bool wait_for(const std::string& text, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (received().find(text) != std::string::npos) return true;
      if (finished_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }
  std::string received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }
  void join() {
    if (thread_.joinable()) thread_.join();
  }

 private:
  static size_t on_data(char* data, size_t size, size_t count, void* user) {
    auto* self = static_cast<SseReader*>(user);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->received_.append(data, size * count);
    // Done once the text has arrived and the event holding it is complete (a blank line).
    bool done = false;
    if (!self->stop_after_.empty()) {
      auto at = self->received_.find(self->stop_after_);
      done = at != std::string::npos && self->received_.find("\n\n", at) != std::string::npos;
    }
    return done ? 0 : size * count;  // 0 ends the transfer
  }

  mutable std::mutex mutex_;
  std::string received_;
  std::string stop_after_;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

// demo_upstream and proxy on free ports, each logging to a file in a temporary directory.
class ExamplesTest : public ::testing::Test {
 protected:
  void SetUp() override { curl_global_init(CURL_GLOBAL_DEFAULT); }

  void start(std::vector<std::string> upstream_flags = {},
             std::vector<std::string> proxy_flags = {}) {
    std::vector<std::string> up = {
        kUpstream,        "--port=0",      "--port-file=" + dir_.path() + "/up",
        "--latency-ms=1", "--jitter-ms=2", "--seed=7"};
    up.insert(up.end(), upstream_flags.begin(), upstream_flags.end());
    upstream_ = std::make_unique<ccobs_test::ChildProcess>(up, upstream_log());
    upstream_port_ = read_port_file(dir_.path() + "/up", std::chrono::seconds(10));
    ASSERT_GT(upstream_port_, 0) << "demo_upstream did not start";

    std::vector<std::string> px = {kProxy, "--port=0", "--port-file=" + dir_.path() + "/px",
                                   "--upstream=http://127.0.0.1:" + std::to_string(upstream_port_)};
    px.insert(px.end(), proxy_flags.begin(), proxy_flags.end());
    proxy_ = std::make_unique<ccobs_test::ChildProcess>(px, proxy_log());
    proxy_port_ = read_port_file(dir_.path() + "/px", std::chrono::seconds(10));
    ASSERT_GT(proxy_port_, 0) << "proxy did not start";
  }

  std::string proxy_url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(proxy_port_) + path;
  }
  std::string upstream_log() const { return dir_.path() + "/upstream.log"; }
  std::string proxy_log() const { return dir_.path() + "/proxy.log"; }
  std::string db_path() const { return dir_.path() + "/access.db"; }

  ccobs_test::TempDir dir_;
  std::unique_ptr<ccobs_test::ChildProcess> upstream_;
  std::unique_ptr<ccobs_test::ChildProcess> proxy_;
  int upstream_port_ = 0;
  int proxy_port_ = 0;
};

TEST(ExamplesCliTest, PrintsHelpAndExitsZeroWhenAskedForHelp) {
  for (const std::string& bin : {kProxy, kUpstream, kBatchJob}) {
    std::string out;
    EXPECT_EQ(ccobs_test::run_command(bin + " --help", "", &out), 0) << bin;
    EXPECT_NE(out.find("Usage:"), std::string::npos) << out;
    EXPECT_NE(out.find("Flags:"), std::string::npos) << out;
  }
}

TEST(ExamplesCliTest, ExitsTwoNamingTheFlagWhenAFlagIsBad) {
  struct Case {
    std::string command;
    std::string named;
  };
  const Case cases[] = {
      {kProxy + " --no-such-flag", "--no-such-flag"},
      {kProxy + " --port=eighty", "--port"},
      {kProxy + " --upstream=ftp://x", "--upstream"},
      {kUpstream + " --error-rate=2", "--error-rate"},
      {kUpstream + " --threads", "--threads"},
      {kBatchJob + " --method=replace --pushgateway-url=http://127.0.0.1:9", "--method"},
      {kBatchJob + " --pushgateway-url=not-a-url", "pushgateway_url"},
  };
  for (const Case& c : cases) {
    std::string out;
    EXPECT_EQ(ccobs_test::run_command(c.command, "", &out), 2) << c.command;
    EXPECT_NE(out.find(c.named), std::string::npos) << c.command << ": " << out;
  }
}

TEST_F(ExamplesTest, ForwardsTheRequestAndPropagatesRequestIdWhenProxying) {
  start();
  const std::string parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

  HttpResponse r = http(
      "POST", proxy_url("/v1/messages"), message_body("claude-test"),
      {"Content-Type: application/json", "X-Request-ID: req-forward-1", "traceparent: " + parent});

  ASSERT_EQ(r.status, 200) << r.body;
  json body = json::parse(r.body);
  EXPECT_EQ(body["model"], "claude-test");
  EXPECT_GT(body["usage"]["input_tokens"].get<int>(), 0);
  upstream_->stop();
  std::vector<json> seen = read_json_lines(upstream_log());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0]["request_id"], "req-forward-1");
  std::string forwarded = seen[0]["traceparent"];
  ASSERT_EQ(forwarded.size(), parent.size()) << forwarded;
  EXPECT_EQ(forwarded.substr(0, 36), parent.substr(0, 36)) << "same trace id";
  EXPECT_NE(forwarded.substr(36, 16), parent.substr(36, 16)) << "a new parent id";
}

TEST_F(ExamplesTest, AnswersGatewayTimeoutWhenTheUpstreamIsTooSlow) {
  start({}, {"--upstream-timeout-ms=300"});

  HttpResponse r = http("POST", proxy_url("/v1/messages"), message_body("claude-slow"),
                        {"X-Demo-Delay-Ms: 2000"});

  EXPECT_EQ(r.status, 504) << r.body;
  std::string metrics = http("GET", proxy_url("/metrics")).body;
  EXPECT_EQ(metric_sum(metrics, "ccproxy_errors_total",
                       {{"error_type", "upstream_timeout"}, {"model", "claude-slow"}}),
            1.0)
      << metrics;
  EXPECT_EQ(
      metric_sum(metrics, "ccproxy_requests_total", {{"model", "claude-slow"}, {"status", "504"}}),
      1.0);
}

TEST_F(ExamplesTest, CountsRequestsTokensAndErrorsInMetricsWhenProxying) {
  start();
  struct Sent {
    std::string model;
    std::string forced_status;
  };
  const std::vector<Sent> plan = {{"claude-a", ""},   {"claude-b", ""}, {"claude-a", ""},
                                  {"claude-a", ""},   {"claude-b", ""}, {"claude-a", "529"},
                                  {"claude-b", "500"}};
  std::map<std::string, std::map<std::string, double>> tokens;  // model -> type -> count
  for (const Sent& s : plan) {
    std::vector<std::string> headers = {"Content-Type: application/json"};
    if (!s.forced_status.empty()) headers.push_back("X-Demo-Status: " + s.forced_status);
    HttpResponse r = http("POST", proxy_url("/v1/messages"), message_body(s.model), headers);
    ASSERT_EQ(r.status, s.forced_status.empty() ? 200 : std::stol(s.forced_status)) << r.body;
    if (r.status != 200) continue;
    json usage = json::parse(r.body)["usage"];
    tokens[s.model]["input"] += usage["input_tokens"].get<double>();
    tokens[s.model]["output"] += usage["output_tokens"].get<double>();
    tokens[s.model]["cache_read"] += usage["cache_read_input_tokens"].get<double>();
    tokens[s.model]["cache_write"] += usage["cache_creation_input_tokens"].get<double>();
  }

  std::string m = http("GET", proxy_url("/metrics")).body;

  EXPECT_EQ(metric_sum(m, "ccproxy_requests_total", {{"model", "claude-a"}, {"status", "200"}}),
            3.0)
      << m;
  EXPECT_EQ(metric_sum(m, "ccproxy_requests_total", {{"model", "claude-b"}, {"status", "200"}}),
            2.0);
  EXPECT_EQ(metric_sum(m, "ccproxy_requests_total", {{"model", "claude-a"}, {"status", "529"}}),
            1.0);
  EXPECT_EQ(metric_sum(m, "ccproxy_requests_total", {{"service_type", "proxy_service"}}), 7.0);
  EXPECT_EQ(metric_sum(m, "ccproxy_errors_total", {{"error_type", "upstream_http_error"}}), 2.0);
  EXPECT_EQ(metric_sum(m, "ccproxy_response_duration_seconds_count", {{"model", "claude-a"}}), 4.0);
  for (const std::string model : {"claude-a", "claude-b"}) {
    for (const auto& [type, count] : tokens[model]) {
      EXPECT_EQ(metric_sum(m, "ccproxy_tokens_total", {{"model", model}, {"type", type}}), count)
          << model << " " << type;
    }
    EXPECT_GT(metric_sum(m, "ccproxy_cost_usd_total", {{"model", model}}), 0.0) << model;
  }
  EXPECT_EQ(metric_sum(m, "ccproxy_active_requests"), 0.0);
}

TEST_F(ExamplesTest, StreamsRequestEventsOverSseWhenRequestsPass) {
  start();
  SseReader reader(proxy_url("/logs/stream"), std::chrono::seconds(20));
  ASSERT_TRUE(reader.wait_for(": connected", std::chrono::seconds(10))) << reader.received();
  reader.stop_after("event: request_error");

  ASSERT_EQ(
      http("POST", proxy_url("/v1/messages"), message_body("claude-sse"), {"X-Request-ID: sse-ok"})
          .status,
      200);
  ASSERT_EQ(http("POST", proxy_url("/v1/messages"), message_body("claude-sse"),
                 {"X-Request-ID: sse-failed", "X-Demo-Status: 503"})
                .status,
            503);
  ASSERT_TRUE(reader.wait_for("event: request_error", std::chrono::seconds(10)))
      << reader.received();
  reader.join();

  // Each SSE event is an `event:` line and a `data:` line holding the event as JSON.
  std::map<std::string, std::vector<std::string>> ids_by_type;
  std::istringstream in(reader.received());
  std::string line, type;
  while (std::getline(in, line)) {
    if (line.rfind("event: ", 0) == 0) type = line.substr(7);
    if (line.rfind("data: ", 0) != 0) continue;
    json event = json::parse(line.substr(6), nullptr, false);
    ASSERT_FALSE(event.is_discarded()) << line;
    EXPECT_EQ(event["type"], type);
    ids_by_type[type].push_back(event["data"].value("request_id", ""));
  }
  auto has = [&ids_by_type](const std::string& type, const std::string& id) {
    const auto& ids = ids_by_type[type];
    return std::find(ids.begin(), ids.end(), id) != ids.end();
  };
  EXPECT_TRUE(has("request_start", "sse-ok")) << reader.received();
  EXPECT_TRUE(has("request_complete", "sse-ok")) << reader.received();
  EXPECT_TRUE(has("request_start", "sse-failed")) << reader.received();
  EXPECT_TRUE(has("request_error", "sse-failed")) << reader.received();
}

TEST_F(ExamplesTest, StoresOneSqliteRowPerRequestWhenGivenAFile) {
  start({}, {"--sqlite=" + db_path()});
  std::map<std::string, json> usage_by_id;
  for (int i = 0; i < 12; ++i) {
    std::string id = "row-" + std::to_string(i);
    std::vector<std::string> headers = {"X-Request-ID: " + id};
    if (i % 4 == 3) headers.push_back("X-Demo-Status: 500");
    HttpResponse r = http("POST", proxy_url("/v1/messages"),
                          message_body(i % 2 == 0 ? "claude-even" : "claude-odd"), headers);
    ASSERT_NE(r.status, 0);
    usage_by_id[id] = r.status == 200 ? json::parse(r.body)["usage"] : json();
  }
  EXPECT_EQ(proxy_->stop(std::chrono::seconds(10)), 0) << "the proxy drains and exits cleanly";

  Database db(db_path());
  auto rows = db.rows(
      "SELECT request_id, model, status_code, tokens_input, tokens_output, cache_read_tokens, "
      "cache_write_tokens, cost_usd, service_type FROM access_logs ORDER BY request_id");
  ASSERT_EQ(rows.size(), usage_by_id.size());
  for (const auto& row : rows) {
    const std::string& id = row.at("request_id");
    ASSERT_EQ(usage_by_id.count(id), 1u) << id;
    const json& usage = usage_by_id[id];
    int n = std::stoi(id.substr(4));
    EXPECT_EQ(row.at("model"), n % 2 == 0 ? "claude-even" : "claude-odd");
    EXPECT_EQ(row.at("service_type"), "proxy_service");
    if (usage.is_null()) {
      EXPECT_EQ(row.at("status_code"), "500") << id;
      continue;
    }
    EXPECT_EQ(row.at("status_code"), "200") << id;
    EXPECT_EQ(row.at("tokens_input"), std::to_string(usage["input_tokens"].get<int>())) << id;
    EXPECT_EQ(row.at("tokens_output"), std::to_string(usage["output_tokens"].get<int>())) << id;
    EXPECT_EQ(row.at("cache_read_tokens"),
              std::to_string(usage["cache_read_input_tokens"].get<int>()))
        << id;
    EXPECT_EQ(row.at("cache_write_tokens"),
              std::to_string(usage["cache_creation_input_tokens"].get<int>()))
        << id;
    EXPECT_GT(std::stod(row.at("cost_usd")), 0.0) << id;
  }
}

TEST_F(ExamplesTest, WritesOneJsonAccessLogLinePerRequest) {
  start();
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(http("POST", proxy_url("/v1/messages"), message_body("claude-log"),
                   {"X-Request-ID: log-" + std::to_string(i)})
                  .status,
              200);
  }
  proxy_->stop(std::chrono::seconds(10));

  int access_lines = 0;
  for (const json& line : read_json_lines(proxy_log())) {
    if (line.value("event", "") != "access_log") continue;
    ++access_lines;
    EXPECT_EQ(line["logger"], "ccproxy.proxy");
    EXPECT_EQ(line["model"], "claude-log");
    EXPECT_EQ(line["status_code"], 200);
    EXPECT_EQ(line["request_id"].get<std::string>().rfind("log-", 0), 0u);
    EXPECT_TRUE(line["duration_ms"].is_number());
    EXPECT_TRUE(line["tokens_input"].is_number());
  }
  EXPECT_EQ(access_lines, 5);
}

TEST_F(ExamplesTest, KeepsCountingNothingWhenInstrumentationIsOff) {
  start({}, {"--no-instrumentation"});

  ASSERT_EQ(http("POST", proxy_url("/v1/messages"), message_body("claude-bare")).status, 200);

  std::string metrics = http("GET", proxy_url("/metrics")).body;
  EXPECT_EQ(metric_sum(metrics, "ccproxy_requests_total"), 0.0);
  EXPECT_EQ(http("GET", proxy_url("/logs/stream")).status, 404);
}

// A real Pushgateway on a free loopback port, its persistence file in a temporary directory.
class BatchJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = ccobs_test::free_port();
    gateway_ = std::make_unique<ccobs_test::ChildProcess>(std::vector<std::string>{
        "prometheus-pushgateway", "--web.listen-address=127.0.0.1:" + std::to_string(port_),
        "--persistence.file=" + dir_.path() + "/pushgateway.data"});
    ASSERT_TRUE(ccobs_test::wait_for_port(port_, std::chrono::seconds(15)));
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int run(const std::string& flags, std::string* out) {
    return ccobs_test::run_command(kBatchJob + " --pushgateway-url=" + url() + " " + flags, "",
                                   out);
  }

  ccobs_test::TempDir dir_;
  int port_ = 0;
  std::unique_ptr<ccobs_test::ChildProcess> gateway_;
};

TEST_F(BatchJobTest, PushesItsMetricsAndDeletesTheGroupWhenAsked) {
  std::string out;
  ASSERT_EQ(run("--job=examples_batch --items=17", &out), 0) << out;

  std::string pushed = http("GET", url() + "/metrics").body;
  EXPECT_EQ(metric_sum(pushed, "ccproxy_requests_total",
                       {{"job", "examples_batch"}, {"service_type", "batch_job"}}),
            17.0)
      << pushed;
  EXPECT_GT(metric_sum(pushed, "ccproxy_tokens_total", {{"job", "examples_batch"}}), 0.0);
  EXPECT_GT(metric_sum(pushed, "ccproxy_batch_last_success_timestamp_seconds",
                       {{"job", "examples_batch"}}),
            0.0);

  ASSERT_EQ(run("--job=examples_batch --method=pushadd --items=3", &out), 0) << out;
  pushed = http("GET", url() + "/metrics").body;
  EXPECT_EQ(metric_sum(pushed, "ccproxy_requests_total", {{"job", "examples_batch"}}), 3.0)
      << "pushadd replaces the metrics of the same name";

  ASSERT_EQ(run("--job=examples_batch --method=delete", &out), 0) << out;
  pushed = http("GET", url() + "/metrics").body;
  EXPECT_EQ(pushed.find("job=\"examples_batch\""), std::string::npos) << pushed;
}

TEST_F(BatchJobTest, ExitsNonZeroWhenThePushFails) {
  gateway_->stop();
  std::string out;

  int rc = run("--job=examples_batch --items=2 --timeout-ms=2000", &out);

  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("batch_push_failed"), std::string::npos) << out;
}

}  // namespace
