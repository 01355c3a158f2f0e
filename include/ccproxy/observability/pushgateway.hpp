// (seed: the declarations the metrics facade relies on; completed with the Pushgateway work)
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace prometheus {
class Collectable;
class Registry;
}  // namespace prometheus

namespace ccproxy::observability {

enum class PushMethod { kPush, kPushAdd, kDelete };
enum class PushOutcome { kOk, kHttpError, kTransportError, kTimeout, kCircuitOpen, kDisabled };

struct [[nodiscard]] PushResult {
  PushOutcome outcome = PushOutcome::kDisabled;
  int http_status = 0;
  std::string message;
  bool ok() const noexcept { return outcome == PushOutcome::kOk; }
};

class PushgatewayClient {
 public:
  // Sends `metrics` (kDelete ignores them and deletes the group). Never throws.
  PushResult push_metrics(const prometheus::Collectable& metrics, PushMethod method) noexcept;
  bool is_enabled() const noexcept;
  // Registers the client's own metrics (circuit state, push outcomes) in `registry`.
  void register_metrics(std::shared_ptr<prometheus::Registry> registry, std::string_view ns);
};

}  // namespace ccproxy::observability
