#include <gtest/gtest.h>

#include "ccproxy/observability/context.hpp"

namespace obs = ccproxy::observability;

TEST(TraceContextTest, ParsesAValidVersion00Header) {
  auto tc = obs::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  ASSERT_TRUE(tc.has_value());
  EXPECT_EQ(tc->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tc->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(tc->flags, 0x01);
  EXPECT_EQ(tc->to_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
}

TEST(TraceContextTest, AcceptsALaterVersionWithExtraFields) {
  auto tc =
      obs::TraceContext::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-whatever");
  ASSERT_TRUE(tc.has_value());
  EXPECT_EQ(tc->flags, 0x09);
  // Re-emitted as version 00, the version this library speaks.
  EXPECT_EQ(tc->to_traceparent(), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09");
}

TEST(TraceContextTest, IgnoresMalformedHeaders) {
  const char* bad[] = {
      "",
      "garbage",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",     // short flags
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 with extra
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",    // upper case
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // forbidden version
      "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",    // wrong separators
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
      "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // later version, no dash
  };
  for (const char* h : bad) EXPECT_FALSE(obs::TraceContext::parse(h).has_value()) << h;
}
