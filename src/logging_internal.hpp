// Internal: logging several field sets in one line without merging them first, for callers
// that keep their own fields (request scopes, timed operations).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string_view>

#include "ccproxy/observability/fields.hpp"
#include "ccproxy/observability/logging.hpp"

namespace ccproxy::observability::detail {

constexpr std::size_t kMaxFieldSets = 10;

// Logs the logger's bound fields, then each of `sets` in order (null entries are skipped; a
// key in a later set wins and is written once). At most kMaxFieldSets - 1 sets.
void log_sets(const Logger& logger, LogLevel level, std::string_view event,
              const Fields* const* sets, std::size_t n) noexcept;
inline void log_sets(const Logger& logger, LogLevel level, std::string_view event,
                     std::initializer_list<const Fields*> sets) noexcept {
  log_sets(logger, level, event, sets.begin(), sets.size());
}

}  // namespace ccproxy::observability::detail
