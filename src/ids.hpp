// Internal: random identifiers for requests, operations, traces and spans.
#pragma once

#include <cstddef>
#include <string>

namespace ccproxy::observability::detail {

// A random (version 4) UUID in its 36-character lowercase form.
std::string new_uuid4();
// `bytes` random bytes as lowercase hex, never all zero (W3C trace and span ids).
std::string new_hex_id(std::size_t bytes);

}  // namespace ccproxy::observability::detail
