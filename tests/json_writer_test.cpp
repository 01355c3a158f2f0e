#include "json_writer.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <limits>
#include <string>

namespace obs = ccproxy::observability;
namespace detail = ccproxy::observability::detail;

namespace {

// What append_json_member must produce: the general path, piece by piece.
std::string reference_member(std::string_view key, const obs::Value& v) {
  std::string out = ",";
  detail::append_json_string(out, key);
  out.push_back(':');
  detail::append_json_value(out, v);
  return out;
}

std::string member(std::string_view key, const obs::Value& v) {
  std::string out;
  detail::append_json_member(out, ',', key, v);
  return out;
}

}  // namespace

// Every byte value at every position of a word-sized and a tail-sized string: the fast path
// takes a string as it is only when no byte needs escaping.
TEST(JsonWriterTest, MemberMatchesTheGeneralPathForEveryByteAtEveryPosition) {
  for (int b = 0; b < 256; ++b) {
    for (std::size_t len : {1, 3, 5, 8, 16, 21}) {
      for (std::size_t pos = 0; pos < len; ++pos) {
        std::string s(len, 'a');
        s[pos] = static_cast<char>(b);
        ASSERT_EQ(member("key", obs::Value(s)), reference_member("key", obs::Value(s)))
            << "byte " << b << " at " << pos << " of " << len;
        ASSERT_EQ(member(s, obs::Value(1)), reference_member(s, obs::Value(1)))
            << "key byte " << b << " at " << pos << " of " << len;
      }
    }
  }
}

TEST(JsonWriterTest, MemberWritesNumbersBoolsAndNullLikeTheGeneralPath) {
  for (const obs::Value& v :
       {obs::Value(42), obs::Value(-7), obs::Value(1e300), obs::Value(true), obs::Value(false),
        obs::Value(), obs::Value(std::numeric_limits<double>::infinity()),
        obs::Value(std::string(300, 'x'))}) {
    EXPECT_EQ(member("k", v), reference_member("k", v));
  }
  EXPECT_EQ(member("duration_ms", obs::Value(12.5)), ",\"duration_ms\":12.5");
}

TEST(JsonWriterTest, MemberCutsLongValuesLikeTheGeneralPath) {
  std::string out;
  EXPECT_TRUE(detail::append_json_member(out, ',', "k", obs::Value(std::string(20, 'x')), 8));
  EXPECT_EQ(out, ",\"k\":\"xxxxxxxx\"");
}

// Numbers with at most six decimals take an integer path; whatever path a double takes, the
// text reads back as the same double.
TEST(JsonWriterTest, MemberDoublesReadBackExactly) {
  for (double v : {12.345, 0.0125, -3.5, 100.0, 0.000001, 1e-7, 123456.654321, 999999999.5, 1e9,
                   1.0 / 3.0, 2.5e-300, -0.0, 42.000001}) {
    const std::string out = member("d", obs::Value(v));
    const std::string text = out.substr(std::string(",\"d\":").size());
    EXPECT_EQ(std::strtod(text.c_str(), nullptr), v) << text;
  }
  EXPECT_EQ(member("d", obs::Value(12.345)), ",\"d\":12.345");
  EXPECT_EQ(member("d", obs::Value(0.0125)), ",\"d\":0.0125");
  EXPECT_EQ(member("d", obs::Value(-3.5)), ",\"d\":-3.5");
  EXPECT_EQ(member("d", obs::Value(100.0)), ",\"d\":100");
}
