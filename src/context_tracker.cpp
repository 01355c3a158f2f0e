#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>

#include "ccproxy/observability/context.hpp"
#include "names.hpp"
#include "rate_limit.hpp"

namespace ccproxy::observability {
struct ContextTracker::Impl {
  explicit Impl(const Clock& c) : clock(&c), warn_limiter(std::chrono::seconds(10), c) {}

  const Clock* clock;
  detail::RateLimiter warn_limiter;
  Logger log{"ccproxy.observability.context"};

  // Limitation: one mutex guards the map; adding and removing are a map insert and erase
  // under it, which two threads x 10,000 requests do not contend on measurably, but a
  // many-core proxy may want shards.
  mutable std::mutex mutex;
  std::map<std::uint64_t, TrackedRequest> active;  // by handle, so oldest first; guarded
  std::uint64_t next_handle = 1;                   // guarded by mutex
  std::shared_ptr<prometheus::Registry> registry;  // guarded by mutex

  std::atomic<std::size_t> count{0};
  std::atomic<std::uint64_t> stale_removed{0};
  std::atomic<prometheus::Counter*> stale_counter{nullptr};
};

ContextTracker::ContextTracker(const Clock& clock) : impl_(std::make_unique<Impl>(clock)) {}

ContextTracker::~ContextTracker() = default;

std::uint64_t ContextTracker::add_context(std::string request_id, Fields fields) noexcept {
  TrackedRequest entry{std::move(request_id), std::move(fields), impl_->clock->now()};
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const std::uint64_t handle = impl_->next_handle++;
  impl_->active.emplace(handle, std::move(entry));
  impl_->count.store(impl_->active.size(), std::memory_order_relaxed);
  return handle;
}

bool ContextTracker::remove_context(std::uint64_t handle) noexcept {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  const bool removed = impl_->active.erase(handle) > 0;
  impl_->count.store(impl_->active.size(), std::memory_order_relaxed);
  return removed;
}

bool ContextTracker::remove_context(std::string_view request_id) noexcept {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto it = impl_->active.begin(); it != impl_->active.end(); ++it) {
    if (it->second.request_id == request_id) {
      impl_->active.erase(it);
      impl_->count.store(impl_->active.size(), std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

std::optional<TrackedRequest> ContextTracker::get_context(std::string_view request_id) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (const auto& [handle, entry] : impl_->active) {
    if (entry.request_id == request_id) return entry;
  }
  return std::nullopt;
}

std::size_t ContextTracker::get_active_count() const noexcept {
  return impl_->count.load(std::memory_order_relaxed);
}

std::vector<TrackedRequest> ContextTracker::get_all_active_contexts() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  std::vector<TrackedRequest> out;
  out.reserve(impl_->active.size());
  for (const auto& [handle, entry] : impl_->active) out.push_back(entry);
  return out;
}

std::size_t ContextTracker::cleanup_stale_contexts(
    std::chrono::steady_clock::duration max_age) noexcept {
  const Clock::time_point now = impl_->clock->now();
  std::size_t removed = 0;
  std::size_t remaining = 0;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    for (auto it = impl_->active.begin(); it != impl_->active.end();) {
      if (now - it->second.started > max_age) {
        it = impl_->active.erase(it);
        ++removed;
      } else {
        ++it;
      }
    }
    remaining = impl_->active.size();
    impl_->count.store(remaining, std::memory_order_relaxed);
  }
  if (removed == 0) return 0;

  const std::uint64_t total =
      impl_->stale_removed.fetch_add(removed, std::memory_order_relaxed) + removed;
  if (auto* counter = impl_->stale_counter.load(std::memory_order_acquire)) {
    counter->Increment(static_cast<double>(removed));
  }
  std::uint64_t suppressed = 0;
  if (impl_->warn_limiter.allow("stale_contexts_removed", &suppressed)) {
    const double max_age_s = std::chrono::duration<double>(max_age).count();
    impl_->log.warning("stale_contexts_removed", {{"removed", removed},
                                                  {"removed_total", total},
                                                  {"max_age_seconds", max_age_s},
                                                  {"active", remaining},
                                                  {"suppressed_warnings", suppressed}});
  }
  return removed;
}

std::uint64_t ContextTracker::stale_removed_total() const noexcept {
  return impl_->stale_removed.load(std::memory_order_relaxed);
}

void ContextTracker::register_metrics(std::shared_ptr<prometheus::Registry> registry,
                                      std::string_view ns) {
  if (!registry) throw std::invalid_argument("ContextTracker::register_metrics: registry is null");
  if (!detail::is_valid_metric_name(ns)) {
    throw std::invalid_argument("ContextTracker::register_metrics: namespace '" + std::string(ns) +
                                "' is not a valid metric-name prefix");
  }
  auto& counter = prometheus::BuildCounter()
                      .Name(std::string(ns) + "_stale_contexts_removed_total")
                      .Help("Requests the tracker dropped because they stayed active too long")
                      .Register(*registry)
                      .Add({});
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->registry = std::move(registry);
  impl_->stale_counter.store(&counter, std::memory_order_release);
}

ContextTracker& get_context_tracker() {
  static ContextTracker tracker;
  return tracker;
}

}  // namespace ccproxy::observability
