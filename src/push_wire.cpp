#include "push_wire.hpp"

#include <prometheus/metric_family.h>
#include <snappy.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ccproxy::observability::wire {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[noreturn]] void bad_url(std::string_view setting, std::string_view why) {
  throw std::invalid_argument(std::string(setting) + " is not a valid URL: " + std::string(why));
}

bool unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

// Protobuf wire types.
constexpr int kVarint = 0;
constexpr int kFixed64 = 1;
constexpr int kLengthDelimited = 2;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_tag(std::string& out, int field, int wire_type) {
  put_varint(out, (static_cast<std::uint64_t>(field) << 3) | static_cast<std::uint64_t>(wire_type));
}

void put_bytes(std::string& out, int field, std::string_view data) {
  put_tag(out, field, kLengthDelimited);
  put_varint(out, data.size());
  out.append(data.data(), data.size());
}

void put_double(std::string& out, int field, double v) {
  put_tag(out, field, kFixed64);
  std::uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof bits);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xFF));
}

using Labels = std::vector<std::pair<std::string, std::string>>;

void add_series(std::vector<TimeSeries>& out, const std::string& name, const Labels& base,
                const std::map<std::string, std::string>& extra, const char* extra_name,
                const std::string& extra_value, double value, long long ts) {
  TimeSeries series;
  series.labels.reserve(base.size() + extra.size() + 2);
  series.labels.emplace_back("__name__", name);
  for (const auto& l : base) series.labels.push_back(l);
  if (extra_name != nullptr) series.labels.emplace_back(extra_name, extra_value);
  for (const auto& [k, v] : extra) {
    bool present = std::any_of(series.labels.begin(), series.labels.end(),
                               [&k = k](const auto& l) { return l.first == k; });
    if (!present) series.labels.emplace_back(k, v);
  }
  // Limitation: byte order, as the remote-write spec asks, puts a label name starting with an
  // upper-case letter before __name__; Prometheus and VictoriaMetrics accept that order.
  std::sort(series.labels.begin(), series.labels.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  series.samples.push_back({value, ts});
  out.push_back(std::move(series));
}

}  // namespace

ParsedUrl parse_url(std::string_view url, std::string_view setting) {
  ParsedUrl out;
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) bad_url(setting, "missing scheme://");
  out.scheme = lower(url.substr(0, scheme_end));
  if (out.scheme != "http" && out.scheme != "https") {
    bad_url(setting, "scheme must be http or https");
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7F) bad_url(setting, "control or space");
  }

  std::string_view rest = url.substr(scheme_end + 3);
  auto authority_end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, authority_end);
  std::string_view tail =
      authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    out.userinfo = std::string(authority.substr(0, at));
    authority = authority.substr(at + 1);
  }
  if (authority.empty()) bad_url(setting, "missing host");

  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos || close == 1) bad_url(setting, "bad IPv6 literal");
    host = authority.substr(0, close + 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') bad_url(setting, "bad IPv6 literal");
      port = after.substr(1);
    }
  } else {
    auto colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    if (host.empty()) bad_url(setting, "missing host");
    for (char c : host) {
      if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '-' && c != '.' && c != '_') {
        bad_url(setting, "bad character in host");
      }
    }
  }
  if (authority.find(':') != std::string_view::npos && authority.front() != '[' && port.empty()) {
    bad_url(setting, "empty port");
  }
  if (!port.empty()) {
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
          return std::isdigit(static_cast<unsigned char>(c)) != 0;
        })) {
      bad_url(setting, "port must be a number");
    }
    int n = std::atoi(std::string(port).c_str());
    if (n < 1 || n > 65535) bad_url(setting, "port out of range");
  }
  out.host_port = std::string(authority);

  auto path_end = tail.find_first_of("?#");
  out.path = std::string(tail.substr(0, path_end));
  return out;
}

std::string redact_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return "<invalid url>";
  auto start = scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", start);
  std::string_view authority = url.substr(start, authority_end - start);
  auto at = authority.rfind('@');
  if (at == std::string_view::npos) return std::string(url);
  std::string out(url.substr(0, start));
  out += "***@";
  out.append(url.substr(start + at + 1));
  return out;
}

std::string base64url(std::string_view data) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t n = (static_cast<unsigned char>(data[i]) << 16) |
                      (static_cast<unsigned char>(data[i + 1]) << 8) |
                      static_cast<unsigned char>(data[i + 2]);
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  std::size_t left = data.size() - i;
  if (left > 0) {
    std::uint32_t n = static_cast<unsigned char>(data[i]) << 16;
    if (left == 2) n |= static_cast<unsigned char>(data[i + 1]) << 8;
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    if (left == 2) out.push_back(kAlphabet[(n >> 6) & 63]);
  }
  return out;
}

std::string percent_encode(std::string_view data) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(data.size());
  for (char ch : data) {
    auto c = static_cast<unsigned char>(ch);
    if (unreserved(c)) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string grouping_path(std::string_view job, const std::map<std::string, std::string>& labels) {
  auto segment = [](std::string& out, std::string_view name, std::string_view value) {
    out += '/';
    out += name;
    if (value.empty()) {
      out += "@base64/=";
    } else if (value.find('/') != std::string_view::npos) {
      out += "@base64/";
      out += base64url(value);
    } else {
      out += '/';
      out += percent_encode(value);
    }
  };
  std::string out = "/metrics";
  segment(out, "job", job);
  for (const auto& [name, value] : labels) segment(out, name, value);
  return out;
}

std::string format_float(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  // The fewest significant digits that read back as `value`, laid out like Go's
  // strconv.FormatFloat(v, 'g', -1, 64), which Prometheus uses: exponent form below 1e-4
  // and from 1e6 on.
  char buf[48];
  int digits = 1;
  for (; digits < 17; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*e", digits - 1, value);
    if (std::strtod(buf, nullptr) == value) break;
  }
  std::snprintf(buf, sizeof buf, "%.*e", digits - 1, value);
  int exponent = std::atoi(std::strchr(buf, 'e') + 1);
  if (exponent < -4 || exponent >= 6) return buf;
  std::snprintf(buf, sizeof buf, "%.*f", std::max(digits - 1 - exponent, 0), value);
  return buf;
}

std::vector<TimeSeries> to_time_series(const std::vector<prometheus::MetricFamily>& families,
                                       const std::map<std::string, std::string>& extra,
                                       long long timestamp_ms) {
  std::vector<TimeSeries> out;
  for (const auto& family : families) {
    for (const auto& metric : family.metric) {
      Labels base;
      base.reserve(metric.label.size());
      for (const auto& l : metric.label) base.emplace_back(l.name, l.value);
      long long ts = metric.timestamp_ms != 0 ? metric.timestamp_ms : timestamp_ms;
      const std::string& name = family.name;
      switch (family.type) {
        case prometheus::MetricType::Counter:
          add_series(out, name, base, extra, nullptr, {}, metric.counter.value, ts);
          break;
        case prometheus::MetricType::Gauge:
          add_series(out, name, base, extra, nullptr, {}, metric.gauge.value, ts);
          break;
        case prometheus::MetricType::Untyped:
          add_series(out, name, base, extra, nullptr, {}, metric.untyped.value, ts);
          break;
        case prometheus::MetricType::Summary:
          for (const auto& q : metric.summary.quantile) {
            add_series(out, name, base, extra, "quantile", format_float(q.quantile), q.value, ts);
          }
          add_series(out, name + "_sum", base, extra, nullptr, {}, metric.summary.sample_sum, ts);
          add_series(out, name + "_count", base, extra, nullptr, {},
                     static_cast<double>(metric.summary.sample_count), ts);
          break;
        case prometheus::MetricType::Histogram: {
          bool has_inf = false;
          for (const auto& b : metric.histogram.bucket) {
            has_inf = has_inf || std::isinf(b.upper_bound);
            add_series(out, name + "_bucket", base, extra, "le", format_float(b.upper_bound),
                       static_cast<double>(b.cumulative_count), ts);
          }
          if (!has_inf) {
            add_series(out, name + "_bucket", base, extra, "le", "+Inf",
                       static_cast<double>(metric.histogram.sample_count), ts);
          }
          add_series(out, name + "_sum", base, extra, nullptr, {}, metric.histogram.sample_sum, ts);
          add_series(out, name + "_count", base, extra, nullptr, {},
                     static_cast<double>(metric.histogram.sample_count), ts);
          break;
        }
      }
    }
  }
  return out;
}

std::string encode_write_request(const std::vector<TimeSeries>& series) {
  std::string out;
  std::string ts_buf;
  std::string buf;
  for (const auto& s : series) {
    ts_buf.clear();
    for (const auto& [name, value] : s.labels) {
      buf.clear();
      put_bytes(buf, 1, name);
      put_bytes(buf, 2, value);
      put_bytes(ts_buf, 1, buf);
    }
    for (const auto& sample : s.samples) {
      buf.clear();
      put_double(buf, 1, sample.value);
      put_tag(buf, 2, kVarint);
      put_varint(buf, static_cast<std::uint64_t>(sample.timestamp_ms));
      put_bytes(ts_buf, 2, buf);
    }
    put_bytes(out, 1, ts_buf);
  }
  return out;
}

std::string snappy_compress(std::string_view data) {
  std::string out;
  snappy::Compress(data.data(), data.size(), &out);
  return out;
}

std::string gzip_compress(std::string_view data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK) {
    return {};
  }
  std::string out(deflateBound(&zs, static_cast<uLong>(data.size())) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return rc == Z_STREAM_END ? out : std::string{};
}

}  // namespace ccproxy::observability::wire
