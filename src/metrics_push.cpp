// The facade's push methods and the process-wide instance: the part of PrometheusMetrics
// that reaches PushgatewayClient.
#include <prometheus/registry.h>

#include <mutex>

#include "ccproxy/observability/logging.hpp"
#include "ccproxy/observability/metrics.hpp"
#include "ccproxy/observability/pushgateway.hpp"
#include "metrics_impl.hpp"

namespace ccproxy::observability {
namespace {

const Logger& push_logger() {
  static const Logger logger("ccproxy.observability.metrics");
  return logger;
}

std::mutex g_metrics_mutex;
std::shared_ptr<PrometheusMetrics> g_metrics;  // guarded by g_metrics_mutex

}  // namespace

void PrometheusMetrics::attach_pushgateway() {
  if (impl_->pushgateway) impl_->pushgateway->register_metrics(impl_->registry, impl_->ns);
}

bool PrometheusMetrics::push_to_gateway(std::string_view method) noexcept {
  PushMethod m;
  if (method == "push") {
    m = PushMethod::kPush;
  } else if (method == "pushadd") {
    m = PushMethod::kPushAdd;
  } else if (method == "delete") {
    m = PushMethod::kDelete;
  } else {
    push_logger().error("pushgateway_unknown_method",
                        {{"method", std::string(method)}, {"expected", "push|pushadd|delete"}});
    return false;
  }
  if (!is_pushgateway_enabled()) return false;
  impl_->flush();
  return impl_->pushgateway->push_metrics(*impl_->registry, m).ok();
}

bool PrometheusMetrics::push_add_to_gateway() noexcept { return push_to_gateway("pushadd"); }
bool PrometheusMetrics::delete_from_gateway() noexcept { return push_to_gateway("delete"); }

bool PrometheusMetrics::is_pushgateway_enabled() const noexcept {
  return impl_->pushgateway && impl_->pushgateway->is_enabled();
}

std::shared_ptr<PrometheusMetrics> get_metrics(std::string_view ns,
                                               std::shared_ptr<prometheus::Registry> registry,
                                               std::shared_ptr<PushgatewayClient> pushgateway) {
  std::lock_guard<std::mutex> lock(g_metrics_mutex);
  if (!g_metrics) {
    if (!pushgateway) pushgateway = get_pushgateway_client();
    g_metrics =
        std::make_shared<PrometheusMetrics>(ns, std::move(registry), std::move(pushgateway));
  }
  return g_metrics;
}

void reset_metrics() {
  {
    std::lock_guard<std::mutex> lock(g_metrics_mutex);
    g_metrics.reset();
  }
  reset_pushgateway_client();
}

}  // namespace ccproxy::observability
