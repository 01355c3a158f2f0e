#include "ccproxy/observability/fields.hpp"

#include <gtest/gtest.h>

#include <clocale>
#include <cstdint>
#include <limits>

namespace obs = ccproxy::observability;

TEST(FieldsTest, KeepsTypesOfInitializerValues) {
  obs::Fields f{
      {"method", "POST"}, {"status", 200}, {"cost", 0.5}, {"stream", true}, {"x", nullptr}};
  EXPECT_EQ(f.find("method")->type(), obs::Value::Type::kString);
  EXPECT_EQ(f.find("status")->type(), obs::Value::Type::kInt);
  EXPECT_EQ(f.find("cost")->type(), obs::Value::Type::kDouble);
  EXPECT_EQ(f.find("stream")->type(), obs::Value::Type::kBool);
  EXPECT_TRUE(f.find("x")->is_null());
  EXPECT_EQ(f.find("missing"), nullptr);
}

TEST(FieldsTest, LaterDuplicateReplacesEarlierInPlace) {
  obs::Fields f{{"a", 1}, {"b", 2}, {"a", 3}};
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f.begin()->key, "a");
  EXPECT_EQ(f.begin()->value.as_int(), 3);
  f.set("b", "two");
  EXPECT_EQ(f.find("b")->as_string(), "two");
  f.merge({{"c", 4.5}, {"a", "x"}});
  ASSERT_EQ(f.size(), 3u);
  EXPECT_EQ(f.find("a")->as_string(), "x");
  EXPECT_TRUE(f.erase("a"));
  EXPECT_FALSE(f.erase("a"));
  EXPECT_EQ(f.size(), 2u);
}

TEST(FieldsTest, ConvertsBetweenNumbersAndFallsBackOtherwise) {
  EXPECT_DOUBLE_EQ(obs::Value(7).as_double(), 7.0);
  EXPECT_EQ(obs::Value(7.9).as_int(), 7);
  EXPECT_EQ(obs::Value("7").as_int(-1), -1);
  EXPECT_EQ(obs::Value(std::numeric_limits<double>::quiet_NaN()).as_int(-1), -1);
  EXPECT_EQ(obs::Value(3).as_string(), "");
  EXPECT_EQ(obs::Value(std::numeric_limits<std::uint64_t>::max()).as_int(),
            std::numeric_limits<std::int64_t>::max());
}

TEST(FieldsTest, TextFormIgnoresTheLocale) {
  const char* old = std::setlocale(LC_NUMERIC, nullptr);
  std::string saved = old != nullptr ? old : "C";
  // de_DE writes 0,5; the text form must not. The locale may be missing, which is fine.
  std::setlocale(LC_NUMERIC, "de_DE.UTF-8");
  EXPECT_EQ(obs::Value(0.5).to_string(), "0.5");
  EXPECT_EQ(obs::Value(-12).to_string(), "-12");
  EXPECT_EQ(obs::Value(false).to_string(), "false");
  EXPECT_EQ(obs::Value().to_string(), "");
  std::setlocale(LC_NUMERIC, saved.c_str());
}
