#include "support/servers.hpp"

#include <crypt.h>
#include <memory>

#include <curl/curl.h>

#include <fstream>
#include <functional>
#include <stdexcept>
#include <vector>

namespace ccobs_test {
namespace {

using ArgvFor = std::function<std::vector<std::string>(int port, const std::string& dir)>;

RunningServer start(const std::string& name, const ArgvFor& argv_for) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    RunningServer s;
    s.dir = std::make_unique<TempDir>();
    s.port = free_port();
    s.process = std::make_unique<ChildProcess>(argv_for(s.port, s.dir->path()),
                                               s.dir->path() + "/server.log");
    if (wait_for_port(s.port, std::chrono::seconds(20)) && s.process->running()) {
      s.url = "http://127.0.0.1:" + std::to_string(s.port);
      return s;
    }
  }
  throw std::runtime_error(name + " did not start");
}

size_t append(char* data, size_t size, size_t nmemb, void* user) {
  static_cast<std::string*>(user)->append(data, size * nmemb);
  return size * nmemb;
}

}  // namespace

RunningServer start_pushgateway() {
  return start("prometheus-pushgateway", [](int port, const std::string& dir) {
    return std::vector<std::string>{"/usr/bin/prometheus-pushgateway",
                                    "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                    "--persistence.file=" + dir + "/pushgateway.data"};
  });
}

RunningServer start_pushgateway_tls(std::string* ca_file) {
  auto certs = std::make_shared<TempDir>();
  std::string cert = certs->path() + "/cert.pem";
  std::string key = certs->path() + "/key.pem";
  std::string out;
  int rc = run_command(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1"
      " -addext subjectAltName=IP:127.0.0.1 -keyout " +
          key + " -out " + cert,
      "", &out);
  if (rc != 0) throw std::runtime_error("openssl failed: " + out);
  std::ofstream(certs->path() + "/web.yml")
      << "tls_server_config:\n  cert_file: " << cert << "\n  key_file: " << key << "\n";
  RunningServer s = start("prometheus-pushgateway (TLS)", [&](int port, const std::string& dir) {
    return std::vector<std::string>{"/usr/bin/prometheus-pushgateway",
                                    "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                    "--persistence.file=" + dir + "/pushgateway.data",
                                    "--web.config.file=" + certs->path() + "/web.yml"};
  });
  s.url = "https://127.0.0.1:" + std::to_string(s.port);
  s.extra_dir = certs;
  *ca_file = cert;
  return s;
}

RunningServer start_pushgateway_basic_auth(const std::string& user, const std::string& password) {
  // The Pushgateway's web config holds bcrypt hashes; libcrypt makes one.
  const char* salt = crypt_gensalt("$2b$", 10, nullptr, 0);
  if (salt == nullptr) throw std::runtime_error("crypt_gensalt failed");
  auto data = std::make_unique<crypt_data>();
  const char* hash = crypt_r(password.c_str(), salt, data.get());
  if (hash == nullptr || hash[0] == '*') throw std::runtime_error("bcrypt failed");
  auto config = std::make_shared<TempDir>();
  std::ofstream(config->path() + "/web.yml")
      << "basic_auth_users:\n  " << user << ": '" << hash << "'\n";
  RunningServer s =
      start("prometheus-pushgateway (basic auth)", [&](int port, const std::string& dir) {
        return std::vector<std::string>{"/usr/bin/prometheus-pushgateway",
                                        "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                        "--persistence.file=" + dir + "/pushgateway.data",
                                        "--web.config.file=" + config->path() + "/web.yml"};
      });
  s.extra_dir = config;
  return s;
}

RunningServer start_victoria_metrics() {
  return start("victoria-metrics", [](int port, const std::string& dir) {
    return std::vector<std::string>{
        "/usr/bin/victoria-metrics", "-httpListenAddr=127.0.0.1:" + std::to_string(port),
        "-storageDataPath=" + dir + "/data", "-search.latencyOffset=0s", "-search.disableCache"};
  });
}

RunningServer start_prometheus() {
  return start("prometheus", [](int port, const std::string& dir) {
    std::ofstream(dir + "/prometheus.yml") << "global:\n  scrape_interval: 1h\n";
    return std::vector<std::string>{"/usr/bin/prometheus",
                                    "--config.file=" + dir + "/prometheus.yml",
                                    "--storage.tsdb.path=" + dir + "/tsdb",
                                    "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                    "--web.enable-remote-write-receiver"};
  });
}

HttpReply http_request(const std::string& method, const std::string& url, const std::string& body) {
  HttpReply reply;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return reply;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  if (!body.empty() || method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    reply.status = static_cast<int>(status);
  }
  curl_easy_cleanup(curl);
  return reply;
}

}  // namespace ccobs_test
