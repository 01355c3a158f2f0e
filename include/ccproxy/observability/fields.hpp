// Structured fields: the key/value pairs carried by log lines, request metadata, events and
// access-log rows. A `Value` is null, a bool, a 64-bit integer, a double or a string, so a
// JSON writer can keep numbers as numbers.
//
// Example:
//   ccproxy::observability::Fields f{{"method", "POST"}, {"status_code", 200}};
//   f.set("cost_usd", 0.0125);
//   if (const auto* v = f.find("status_code")) std::int64_t code = v->as_int();
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace ccproxy::observability {

// One field value. Integers of any width become `std::int64_t` (unsigned values above its
// range are clamped); floats become double. Not synchronised: a Value is a plain value type.
class Value {
 public:
  enum class Type { kNull, kBool, kInt, kDouble, kString };

  Value() noexcept = default;
  Value(std::nullptr_t) noexcept {}
  Value(bool v) noexcept : v_(v) {}
  template <typename T,
            std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Value(T v) noexcept : v_(clamp(v)) {}
  Value(double v) noexcept : v_(v) {}
  Value(float v) noexcept : v_(static_cast<double>(v)) {}
  Value(const char* v) : v_(std::string(v == nullptr ? "" : v)) {}
  Value(std::string_view v) : v_(std::string(v)) {}
  Value(std::string v) noexcept : v_(std::move(v)) {}

  Type type() const noexcept { return static_cast<Type>(v_.index()); }
  bool is_null() const noexcept { return type() == Type::kNull; }
  bool is_string() const noexcept { return type() == Type::kString; }
  bool is_number() const noexcept { return type() == Type::kInt || type() == Type::kDouble; }

  // Typed reads. Each returns the fallback when the value holds another type, except that
  // as_double() also reads an integer and as_int() a double (truncated toward zero).
  bool as_bool(bool fallback = false) const noexcept;
  std::int64_t as_int(std::int64_t fallback = 0) const noexcept;
  double as_double(double fallback = 0.0) const noexcept;
  // The string held, or an empty string for any other type.
  const std::string& as_string() const noexcept;

  // The value as text: strings as they are, numbers in the C locale's shortest round-trip
  // form, bools as true/false, null as an empty string.
  std::string to_string() const;

  friend bool operator==(const Value& a, const Value& b) noexcept { return a.v_ == b.v_; }
  friend bool operator!=(const Value& a, const Value& b) noexcept { return !(a == b); }

 private:
  template <typename T>
  static std::int64_t clamp(T v) noexcept {
    if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
      constexpr auto kMax = static_cast<T>(std::numeric_limits<std::int64_t>::max());
      return v > kMax ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(v);
    } else {
      return static_cast<std::int64_t>(v);
    }
  }

  std::variant<std::monostate, bool, std::int64_t, double, std::string> v_;
};

struct Field {
  std::string key;
  Value value;
};

// An ordered set of fields with unique keys: setting a key that is present replaces its value
// in place, a new key is appended. Not synchronised.
class Fields {
 public:
  using const_iterator = std::vector<Field>::const_iterator;

  Fields() = default;
  // Later duplicates of a key replace earlier ones.
  Fields(std::initializer_list<Field> fields);

  void set(std::string_view key, Value value);
  // Sets every field of `other`, in its order.
  void merge(const Fields& other);
  // The value under `key`, or nullptr.
  const Value* find(std::string_view key) const noexcept;
  bool contains(std::string_view key) const noexcept { return find(key) != nullptr; }
  bool erase(std::string_view key) noexcept;

  const_iterator begin() const noexcept { return items_.begin(); }
  const_iterator end() const noexcept { return items_.end(); }
  std::size_t size() const noexcept { return items_.size(); }
  bool empty() const noexcept { return items_.empty(); }
  void reserve(std::size_t n) { items_.reserve(n); }

 private:
  std::vector<Field> items_;
};

}  // namespace ccproxy::observability
