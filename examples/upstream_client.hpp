// UpstreamClient: sends one HTTP request to the upstream with a libcurl easy handle that is
// kept for the life of the thread, so connections to the upstream are reused (keep-alive)
// instead of opened per request.
//
// Example:
//   UpstreamClient& client = UpstreamClient::for_this_thread();
//   UpstreamResponse r = client.send("POST", url, headers, body, std::chrono::seconds(30));
//   if (r.outcome == UpstreamOutcome::kTimeout) ...
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace ccproxy::observability::examples {

enum class UpstreamOutcome { kOk, kTimeout, kTransportError };

struct UpstreamResponse {
  UpstreamOutcome outcome = UpstreamOutcome::kTransportError;
  long status = 0;  // the upstream's HTTP status when outcome is kOk
  std::string body;
  std::string content_type;
  std::string error;  // curl's message otherwise
};

// One per thread (for_this_thread()); not shared between threads.
class UpstreamClient {
 public:
  UpstreamClient() : easy_(curl_easy_init()) {}
  ~UpstreamClient() {
    if (easy_ != nullptr) curl_easy_cleanup(easy_);
  }
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // The calling thread's client. curl_global_init must have run before the first call.
  static UpstreamClient& for_this_thread() {
    thread_local UpstreamClient client;
    return client;
  }

  // `headers` are full header lines ("Name: value").
  UpstreamResponse send(const std::string& method, const std::string& url,
                        const std::vector<std::string>& headers, const std::string& body,
                        std::chrono::milliseconds timeout,
                        std::chrono::milliseconds connect_timeout) {
    UpstreamResponse response;
    if (easy_ == nullptr) {
      response.error = "curl_easy_init failed";
      return response;
    }

    // curl_easy_reset keeps the connection cache, so the connection stays open between
    // requests.
    curl_easy_reset(easy_);
    curl_slist* list = nullptr;
    for (const std::string& h : headers) list = curl_slist_append(list, h.c_str());
    // Without this, curl adds "Expect: 100-continue" to larger bodies and waits a round trip.
    list = curl_slist_append(list, "Expect:");
    curl_easy_setopt(easy_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(easy_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(easy_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(easy_, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min(connect_timeout, timeout).count()));
    curl_easy_setopt(easy_, CURLOPT_TCP_NODELAY, 1L);
    if (method == "GET") {
      curl_easy_setopt(easy_, CURLOPT_HTTPGET, 1L);
    } else {
      curl_easy_setopt(easy_, CURLOPT_CUSTOMREQUEST, method.c_str());
      curl_easy_setopt(easy_, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(easy_, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(easy_, CURLOPT_WRITEFUNCTION, &UpstreamClient::on_data);
    curl_easy_setopt(easy_, CURLOPT_WRITEDATA, &response.body);
    char error[CURL_ERROR_SIZE] = {};
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, error);

    CURLcode code = curl_easy_perform(easy_);
    curl_slist_free_all(list);

    if (code == CURLE_OK) {
      response.outcome = UpstreamOutcome::kOk;
      curl_easy_getinfo(easy_, CURLINFO_RESPONSE_CODE, &response.status);
      char* type = nullptr;
      curl_easy_getinfo(easy_, CURLINFO_CONTENT_TYPE, &type);
      if (type != nullptr) response.content_type = type;
    } else {
      response.outcome = code == CURLE_OPERATION_TIMEDOUT ? UpstreamOutcome::kTimeout
                                                          : UpstreamOutcome::kTransportError;
      response.error = error[0] != '\0' ? error : curl_easy_strerror(code);
    }
    curl_easy_setopt(easy_, CURLOPT_ERRORBUFFER, nullptr);
    return response;
  }

 private:
  static size_t on_data(char* data, size_t size, size_t count, void* user) {
    static_cast<std::string*>(user)->append(data, size * count);
    return size * count;
  }

  CURL* easy_;
};

}  // namespace ccproxy::observability::examples
