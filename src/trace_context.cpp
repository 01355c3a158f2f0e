#include <cstdint>
#include <random>

#include "ccproxy/observability/context.hpp"
#include "ids.hpp"

namespace ccproxy::observability {
namespace detail {
namespace {

constexpr char kHex[] = "0123456789abcdef";

// A generator per thread, so no lock is taken.
std::uint64_t next_random() {
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return engine();
}

void append_hex(std::string& out, std::uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (i * 4)) & 0xF]);
}

}  // namespace

std::string new_uuid4() {
  std::uint64_t hi = next_random();
  std::uint64_t lo = next_random();
  hi = (hi & ~0xF000ull) | 0x4000ull;              // version 4
  lo = (lo & ~(0xC0ull << 56)) | (0x80ull << 56);  // variant 10xx
  std::string out;
  out.reserve(36);
  append_hex(out, hi >> 32, 8);
  out.push_back('-');
  append_hex(out, (hi >> 16) & 0xFFFF, 4);
  out.push_back('-');
  append_hex(out, hi & 0xFFFF, 4);
  out.push_back('-');
  append_hex(out, lo >> 48, 4);
  out.push_back('-');
  append_hex(out, lo & 0xFFFFFFFFFFFFull, 12);
  return out;
}

std::string new_hex_id(std::size_t bytes) {
  std::string out;
  out.reserve(bytes * 2);
  do {
    out.clear();
    for (std::size_t done = 0; done < bytes; done += 8) {
      const std::size_t take = bytes - done < 8 ? bytes - done : 8;
      append_hex(out, next_random(), static_cast<int>(take * 2));
    }
  } while (out.find_first_not_of('0') == std::string::npos);
  return out;
}

}  // namespace detail

namespace {

bool is_lower_hex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zero(std::string_view s) { return s.find_first_not_of('0') == std::string_view::npos; }

int hex_value(char c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

}  // namespace

std::optional<TraceContext> TraceContext::parse(std::string_view h) noexcept {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 bytes.
  constexpr std::size_t kLength = 55;
  if (h.size() < kLength || h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  const std::string_view version = h.substr(0, 2);
  const std::string_view trace_id = h.substr(3, 32);
  const std::string_view parent_id = h.substr(36, 16);
  const std::string_view flags = h.substr(53, 2);
  if (!is_lower_hex(version) || version == "ff") return std::nullopt;
  // Version 00 is exactly 55 bytes; a later version may append fields after a dash.
  if (version == "00" ? h.size() != kLength : (h.size() > kLength && h[kLength] != '-')) {
    return std::nullopt;
  }
  if (!is_lower_hex(trace_id) || all_zero(trace_id)) return std::nullopt;
  if (!is_lower_hex(parent_id) || all_zero(parent_id)) return std::nullopt;
  if (!is_lower_hex(flags)) return std::nullopt;
  try {
    TraceContext tc;
    tc.trace_id = std::string(trace_id);
    tc.parent_id = std::string(parent_id);
    tc.flags = static_cast<std::uint8_t>(hex_value(flags[0]) * 16 + hex_value(flags[1]));
    return tc;
  } catch (...) {
    return std::nullopt;
  }
}

std::string TraceContext::to_traceparent() const {
  std::string out = "00-";
  out.append(trace_id);
  out.push_back('-');
  out.append(parent_id);
  out.push_back('-');
  out.push_back(detail::kHex[flags >> 4]);
  out.push_back(detail::kHex[flags & 0xF]);
  return out;
}

}  // namespace ccproxy::observability
