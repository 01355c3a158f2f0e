// Wire encodings of the push client, kept apart from libcurl so tests can check them byte by
// byte: URL parsing and redaction, the Pushgateway grouping-key path, and the remote-write
// protobuf messages.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
struct MetricFamily;
}  // namespace prometheus

namespace ccproxy::observability::wire {

struct ParsedUrl {
  std::string scheme;     // lower case: http or https
  std::string userinfo;   // "user[:password]", percent-encoded as given
  std::string host_port;  // "host[:port]" or "[v6][:port]"
  std::string path;       // "" or starting with '/', query and fragment removed
};

// Throws std::invalid_argument naming `setting` when `url` is not
// http(s)://[userinfo@]host[:port][/path] with a port in 1..65535.
ParsedUrl parse_url(std::string_view url, std::string_view setting);

// `url` with user-info replaced by "***@"; unparsable text yields "<invalid url>".
std::string redact_url(std::string_view url);

// URL-safe base64 (RFC 4648 §5) without padding.
std::string base64url(std::string_view data);
// Percent-encodes everything but RFC 3986 unreserved characters.
std::string percent_encode(std::string_view data);
// "/metrics/job/<job>{/<label>/<value>}" with `@base64` for values holding '/' and for empty
// ones, as the Pushgateway defines.
std::string grouping_path(std::string_view job, const std::map<std::string, std::string>& labels);

// A float as Prometheus prints it in `le` and `quantile` labels: shortest round-trip text,
// "+Inf", "-Inf", "NaN".
std::string format_float(double value);

struct Sample {
  double value = 0.0;
  long long timestamp_ms = 0;
};

struct TimeSeries {
  // Sorted by name, __name__ first, unique names.
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<Sample> samples;
};

// Flattens families into series at `timestamp_ms`: counters, gauges and untyped values as
// one series; summaries as quantile series plus _sum and _count; histograms as _bucket{le}
// (cumulative, +Inf included) plus _sum and _count. `extra` labels are added to each series
// that does not carry the name already. Labels are sorted by name.
std::vector<TimeSeries> to_time_series(const std::vector<prometheus::MetricFamily>& families,
                                       const std::map<std::string, std::string>& extra,
                                       long long timestamp_ms);

// The protobuf encoding of prometheus.WriteRequest{timeseries} (remote write 1.0).
std::string encode_write_request(const std::vector<TimeSeries>& series);

// Snappy block format.
std::string snappy_compress(std::string_view data);
// gzip (RFC 1952) of `data`; empty on a zlib failure.
std::string gzip_compress(std::string_view data);

}  // namespace ccproxy::observability::wire
