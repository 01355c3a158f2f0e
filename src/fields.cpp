#include "ccproxy/observability/fields.hpp"

#include <charconv>
#include <cmath>

namespace ccproxy::observability {

bool Value::as_bool(bool fallback) const noexcept {
  const bool* b = std::get_if<bool>(&v_);
  return b != nullptr ? *b : fallback;
}

std::int64_t Value::as_int(std::int64_t fallback) const noexcept {
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return *i;
  if (const auto* d = std::get_if<double>(&v_)) {
    // Out-of-range and NaN doubles have no integer value.
    if (std::isfinite(*d) && std::fabs(*d) < 9.2e18) return static_cast<std::int64_t>(*d);
  }
  return fallback;
}

double Value::as_double(double fallback) const noexcept {
  if (const auto* d = std::get_if<double>(&v_)) return *d;
  if (const auto* i = std::get_if<std::int64_t>(&v_)) return static_cast<double>(*i);
  return fallback;
}

const std::string& Value::as_string() const noexcept {
  static const std::string kEmpty;
  const auto* s = std::get_if<std::string>(&v_);
  return s != nullptr ? *s : kEmpty;
}

std::string Value::to_string() const {
  char buf[32];
  switch (type()) {
    case Type::kNull:
      return {};
    case Type::kBool:
      return std::get<bool>(v_) ? "true" : "false";
    case Type::kInt: {
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<std::int64_t>(v_));
      return std::string(buf, r.ptr);
    }
    case Type::kDouble: {
      // std::to_chars ignores the locale and gives the shortest round-trip form.
      auto r = std::to_chars(buf, buf + sizeof buf, std::get<double>(v_));
      return std::string(buf, r.ptr);
    }
    case Type::kString:
      return std::get<std::string>(v_);
  }
  return {};
}

Fields::Fields(std::initializer_list<Field> fields) {
  items_.reserve(fields.size());
  for (const Field& f : fields) {
    Field* same = nullptr;
    for (Field& existing : items_) {
      if (existing.key.size() == f.key.size() && existing.key == f.key) {
        same = &existing;
        break;
      }
    }
    if (same != nullptr) {
      same->value = f.value;
    } else {
      items_.push_back(f);
    }
  }
}

void Fields::set(std::string_view key, Value value) {
  for (Field& f : items_) {
    if (f.key.size() == key.size() && f.key == key) {
      f.value = std::move(value);
      return;
    }
  }
  items_.push_back(Field{std::string(key), std::move(value)});
}

void Fields::merge(const Fields& other) {
  for (const Field& f : other.items_) set(f.key, f.value);
}

const Value* Fields::find(std::string_view key) const noexcept {
  for (const Field& f : items_) {
    if (f.key.size() == key.size() && f.key == key) return &f.value;
  }
  return nullptr;
}

bool Fields::erase(std::string_view key) noexcept {
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->key == key) {
      items_.erase(it);
      return true;
    }
  }
  return false;
}

}  // namespace ccproxy::observability
