// MetricsExposer: serves registries at /metrics over HTTP for Prometheus to scrape, through
// prometheus-cpp's pull module.
//
// Example:
//   ccproxy::observability::PrometheusMetrics metrics("ccproxy");
//   ccproxy::observability::MetricsExposer exposer("127.0.0.1:9464", metrics);
//   int port = exposer.port();  // the bound port, useful with "127.0.0.1:0"
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace prometheus {
class Collectable;
class Exposer;
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

class PrometheusMetrics;

// Thread-safe: the HTTP server runs its own threads; add_registry may be called at any time.
// Stops serving when destroyed.
class MetricsExposer {
 public:
  // Listens on `bind_address` ("host:port"; port 0 picks a free one) and serves the
  // facade's registry at `path`. Throws std::invalid_argument naming the address when it
  // cannot listen there.
  MetricsExposer(const std::string& bind_address, const PrometheusMetrics& metrics,
                 const std::string& path = "/metrics");
  // Serves a registry of your own.
  MetricsExposer(const std::string& bind_address, std::shared_ptr<prometheus::Registry> registry,
                 const std::string& path = "/metrics");
  ~MetricsExposer();
  MetricsExposer(const MetricsExposer&) = delete;
  MetricsExposer& operator=(const MetricsExposer&) = delete;

  // Serves another collectable (for example a second registry) at the same path.
  void add_collectable(std::shared_ptr<prometheus::Collectable> collectable);
  // The port it listens on.
  int port() const;

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::string path_;
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables_;
};

}  // namespace ccproxy::observability
