#include "push_wire.hpp"

#include <gtest/gtest.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/summary.h>
#include <snappy.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

namespace wire = ccproxy::observability::wire;

namespace {

// A minimal protobuf reader: enough to walk WriteRequest/TimeSeries/Label/Sample back.
struct Reader {
  std::string_view data;
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; !data.empty(); shift += 7) {
      auto b = static_cast<unsigned char>(data.front());
      data.remove_prefix(1);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return v;
    }
    throw std::runtime_error("truncated varint");
  }
  std::string_view bytes() {
    auto n = varint();
    if (n > data.size()) throw std::runtime_error("truncated bytes");
    auto out = data.substr(0, n);
    data.remove_prefix(n);
    return out;
  }
  double fixed64() {
    if (data.size() < 8) throw std::runtime_error("truncated fixed64");
    std::uint64_t bits = 0;
    for (int i = 0; i < 8; ++i) {
      bits |= static_cast<std::uint64_t>(static_cast<unsigned char>(data[i])) << (8 * i);
    }
    data.remove_prefix(8);
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
  }
};

std::vector<wire::TimeSeries> decode(std::string_view data) {
  std::vector<wire::TimeSeries> out;
  Reader req{data};
  while (!req.data.empty()) {
    EXPECT_EQ(req.varint(), (1u << 3) | 2u);
    Reader ts{req.bytes()};
    wire::TimeSeries series;
    while (!ts.data.empty()) {
      auto tag = ts.varint();
      Reader inner{ts.bytes()};
      if (tag == ((1u << 3) | 2u)) {
        EXPECT_EQ(inner.varint(), (1u << 3) | 2u);
        std::string name(inner.bytes());
        EXPECT_EQ(inner.varint(), (2u << 3) | 2u);
        series.labels.emplace_back(name, std::string(inner.bytes()));
      } else {
        EXPECT_EQ(tag, (2u << 3) | 2u);
        wire::Sample s;
        EXPECT_EQ(inner.varint(), (1u << 3) | 1u);
        s.value = inner.fixed64();
        EXPECT_EQ(inner.varint(), (2u << 3) | 0u);
        s.timestamp_ms = static_cast<long long>(inner.varint());
        series.samples.push_back(s);
      }
    }
    out.push_back(series);
  }
  return out;
}

const wire::TimeSeries* find(const std::vector<wire::TimeSeries>& all, const std::string& name,
                             const std::string& label = {}, const std::string& value = {}) {
  for (const auto& s : all) {
    bool name_ok = false, label_ok = label.empty();
    for (const auto& [k, v] : s.labels) {
      name_ok = name_ok || (k == "__name__" && v == name);
      label_ok = label_ok || (k == label && v == value);
    }
    if (name_ok && label_ok) return &s;
  }
  return nullptr;
}

}  // namespace

TEST(PushWireTest, EncodesBase64UrlWithoutPaddingWhenGivenRfcVectors) {
  EXPECT_EQ(wire::base64url(""), "");
  EXPECT_EQ(wire::base64url("f"), "Zg");
  EXPECT_EQ(wire::base64url("fo"), "Zm8");
  EXPECT_EQ(wire::base64url("foo"), "Zm9v");
  EXPECT_EQ(wire::base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(wire::base64url("\xfb\xff"), "-_8");
}

TEST(PushWireTest, BuildsGroupingPathWithBase64WhenValuesHoldSlashOrAreEmpty) {
  std::map<std::string, std::string> labels{{"instance", "worker/1"}, {"zone", ""}};

  EXPECT_EQ(wire::grouping_path("nightly/batch", labels),
            "/metrics/job@base64/" + wire::base64url("nightly/batch") + "/instance@base64/" +
                wire::base64url("worker/1") + "/zone@base64/=");
  EXPECT_EQ(wire::grouping_path("a b", {{"path", "x?y"}}), "/metrics/job/a%20b/path/x%3Fy");
}

TEST(PushWireTest, ParsesUrlsAndThrowsNamingSettingWhenMalformed) {
  auto u = wire::parse_url("HTTPS://user:pw@gw.example:9091/prefix/", "pushgateway_url");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.userinfo, "user:pw");
  EXPECT_EQ(u.host_port, "gw.example:9091");
  EXPECT_EQ(u.path, "/prefix/");
  EXPECT_EQ(wire::parse_url("http://[::1]:80", "x").host_port, "[::1]:80");

  for (const char* bad : {"gw:9091", "ftp://gw", "http://", "http://gw:0", "http://gw:99999",
                          "http://gw:abc", "http://g w", "http://gw:"}) {
    try {
      wire::parse_url(bad, "pushgateway_url");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("pushgateway_url"), std::string::npos) << bad;
    }
  }
}

TEST(PushWireTest, RedactsUserInfoWhenUrlCarriesCredentials) {
  EXPECT_EQ(wire::redact_url("http://u:secret@h:1/p"), "http://***@h:1/p");
  EXPECT_EQ(wire::redact_url("http://h:1/p?a=b@c"), "http://h:1/p?a=b@c");
  EXPECT_EQ(wire::redact_url("no scheme"), "<invalid url>");
}

TEST(PushWireTest, FormatsFloatsAsShortestRoundTripText) {
  EXPECT_EQ(wire::format_float(0.1), "0.1");
  EXPECT_EQ(wire::format_float(2.5), "2.5");
  EXPECT_EQ(wire::format_float(10), "10");
  EXPECT_EQ(wire::format_float(1e-05), "1e-05");
  EXPECT_EQ(wire::format_float(0.0001), "0.0001");
  EXPECT_EQ(wire::format_float(123456), "123456");
  EXPECT_EQ(wire::format_float(1e6), "1e+06");
  EXPECT_EQ(wire::format_float(INFINITY), "+Inf");
  EXPECT_EQ(wire::format_float(-INFINITY), "-Inf");
  double third = 1.0 / 3.0;
  EXPECT_EQ(std::strtod(wire::format_float(third).c_str(), nullptr), third);
}

TEST(PushWireTest, EncodesWriteRequestBytesWhenGivenOneSeries) {
  wire::TimeSeries s;
  s.labels = {{"__name__", "a"}};
  s.samples = {{1.0, 2}};

  std::string bytes = wire::encode_write_request({s});

  // WriteRequest.timeseries(1) { labels(1) { name(1) "__name__" value(2) "a" }
  //                              samples(2) { value(1) fixed64 1.0, timestamp(2) varint 2 } }
  const unsigned char expected[] = {0x0A, 0x1C, 0x0A, 0x0D, 0x0A, 0x08, '_',  '_',  'n',  'a',
                                    'm',  'e',  '_',  '_',  0x12, 0x01, 'a',  0x12, 0x0B, 0x09,
                                    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF0, 0x3F, 0x10, 0x02};
  EXPECT_EQ(bytes, std::string(reinterpret_cast<const char*>(expected), sizeof expected));
}

TEST(PushWireTest, FlattensHistogramsAndSummariesWithSortedLabelsWhenConverting) {
  prometheus::Registry registry;
  prometheus::BuildCounter()
      .Name("req_total")
      .Register(registry)
      .Add({{"z", "1"}, {"a", "2"}})
      .Increment(3);
  auto& h = prometheus::BuildHistogram()
                .Name("lat_seconds")
                .Register(registry)
                .Add({}, prometheus::Histogram::BucketBoundaries{0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(7);
  auto& sm = prometheus::BuildSummary().Name("sz").Register(registry).Add(
      {}, prometheus::Summary::Quantiles{{0.5, 0.05}});
  sm.Observe(4);

  auto series = wire::to_time_series(registry.Collect(), {{"job", "j"}, {"a", "ignored"}}, 1234);
  auto decoded = decode(wire::encode_write_request(series));

  ASSERT_EQ(decoded.size(), series.size());
  const auto* counter = find(decoded, "req_total");
  ASSERT_NE(counter, nullptr);
  std::vector<std::pair<std::string, std::string>> want{
      {"__name__", "req_total"}, {"a", "2"}, {"job", "j"}, {"z", "1"}};
  EXPECT_EQ(counter->labels, want);
  EXPECT_EQ(counter->samples.at(0).value, 3.0);
  EXPECT_EQ(counter->samples.at(0).timestamp_ms, 1234);
  EXPECT_EQ(find(decoded, "lat_seconds_bucket", "le", "0.1")->samples.at(0).value, 1.0);
  EXPECT_EQ(find(decoded, "lat_seconds_bucket", "le", "1")->samples.at(0).value, 2.0);
  EXPECT_EQ(find(decoded, "lat_seconds_bucket", "le", "+Inf")->samples.at(0).value, 3.0);
  EXPECT_DOUBLE_EQ(find(decoded, "lat_seconds_sum")->samples.at(0).value, 7.55);
  EXPECT_EQ(find(decoded, "lat_seconds_count")->samples.at(0).value, 3.0);
  EXPECT_EQ(find(decoded, "sz", "quantile", "0.5")->samples.at(0).value, 4.0);
  EXPECT_EQ(find(decoded, "sz_count")->samples.at(0).value, 1.0);
  for (const auto& s : decoded) {
    EXPECT_TRUE(std::is_sorted(s.labels.begin(), s.labels.end()));
  }
}

TEST(PushWireTest, SnappyBlockRoundTripsWhenDecompressedBySnappy) {
  std::string data(5000, 'a');
  data += "tail";

  std::string compressed = wire::snappy_compress(data);
  std::string back;

  ASSERT_TRUE(snappy::Uncompress(compressed.data(), compressed.size(), &back));
  EXPECT_EQ(back, data);
  EXPECT_LT(compressed.size(), data.size());
}
