#include "ccproxy/observability/clock.hpp"

namespace ccproxy::observability {
namespace {

class SteadyClock final : public Clock {
 public:
  time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
};

}  // namespace

const Clock& Clock::steady() noexcept {
  static const SteadyClock clock;
  return clock;
}

}  // namespace ccproxy::observability
