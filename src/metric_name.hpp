// Internal: validation of metric-name prefixes for the counters the library registers.
#pragma once

#include <string_view>

namespace ccproxy::observability::detail {

// True when `ns` matches [a-zA-Z_:][a-zA-Z0-9_:]*.
inline bool is_metric_prefix(std::string_view ns) noexcept {
  if (ns.empty()) return false;
  for (std::size_t i = 0; i < ns.size(); ++i) {
    const char c = ns[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace ccproxy::observability::detail
