#include "ccproxy/observability/exposer.hpp"

#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include <stdexcept>

#include "ccproxy/observability/metrics.hpp"
#include "metrics_impl.hpp"

namespace ccproxy::observability {
namespace {

// A registry passed in from outside is not flushed by its own Collect(): this collectable
// folds the facade's cells in first, then collects the registry.
class FlushingCollectable final : public prometheus::Collectable {
 public:
  explicit FlushingCollectable(std::weak_ptr<PrometheusMetrics::Impl> impl)
      : impl_(std::move(impl)) {}
  std::vector<prometheus::MetricFamily> Collect() const override {
    auto impl = impl_.lock();
    if (!impl) return {};
    impl->flush();
    return impl->registry->Collect();
  }

 private:
  std::weak_ptr<PrometheusMetrics::Impl> impl_;
};

std::unique_ptr<prometheus::Exposer> listen(const std::string& bind_address) {
  try {
    return std::make_unique<prometheus::Exposer>(bind_address, 2);
  } catch (const std::exception& e) {
    throw std::invalid_argument("MetricsExposer cannot listen on '" + bind_address +
                                "': " + e.what());
  }
}

}  // namespace

MetricsExposer::MetricsExposer(const std::string& bind_address, const PrometheusMetrics& metrics,
                               const std::string& path)
    : exposer_(listen(bind_address)), path_(path) {
  add_collectable(std::make_shared<FlushingCollectable>(metrics.impl_));
}

MetricsExposer::MetricsExposer(const std::string& bind_address,
                               std::shared_ptr<prometheus::Registry> registry,
                               const std::string& path)
    : exposer_(listen(bind_address)), path_(path) {
  add_collectable(std::move(registry));
}

MetricsExposer::~MetricsExposer() = default;

void MetricsExposer::add_collectable(std::shared_ptr<prometheus::Collectable> collectable) {
  exposer_->RegisterCollectable(collectable, path_);
  collectables_.push_back(std::move(collectable));
}

int MetricsExposer::port() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

}  // namespace ccproxy::observability
