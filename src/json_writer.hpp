// Internal: appends JSON to a std::string without nlohmann/json on the hot path. Strings are
// escaped per RFC 8259 with invalid UTF-8 replaced by U+FFFD; numbers are written with
// std::to_chars, so the process locale never changes them.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "ccproxy/observability/fields.hpp"

namespace ccproxy::observability::detail {

// Appends `s` as a quoted JSON string. When `max_bytes` is exceeded the text is cut on a
// UTF-8 boundary and the function returns true.
bool append_json_string(std::string& out, std::string_view s,
                        std::size_t max_bytes = std::string_view::npos);
// Appends a Value: null, true/false, an integer, a double (non-finite ones as null), or a
// string as above. Returns true when a string was truncated.
bool append_json_value(std::string& out, const Value& v,
                       std::size_t max_bytes = std::string_view::npos);
// Appends `t` as RFC 3339 UTC with milliseconds: 2024-05-01T12:30:45.123Z.
void append_rfc3339_ms(std::string& out, std::chrono::system_clock::time_point t);
// The value under `key` in `fields`, or nullptr. Compares lengths before bytes, which makes
// it cheaper than Fields::find for the short distinct keys of a log line.
inline const Value* find_field(const Fields& fields, std::string_view key) noexcept {
  for (const Field& f : fields) {
    if (f.key.size() == key.size() &&
        std::char_traits<char>::compare(f.key.data(), key.data(), key.size()) == 0) {
      return &f.value;
    }
  }
  return nullptr;
}
// Replaces invalid UTF-8 sequences in `s` with U+FFFD.
std::string sanitize_utf8(std::string_view s);
// The length of the longest prefix of `s` no longer than `max_bytes` that does not end inside
// a UTF-8 sequence.
std::size_t utf8_prefix_length(std::string_view s, std::size_t max_bytes) noexcept;

}  // namespace ccproxy::observability::detail
