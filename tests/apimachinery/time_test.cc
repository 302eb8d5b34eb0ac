// rc/base/time.h: the RFC 3339 forms the Kubernetes API uses (Time, MicroTime, offsets).
#include "rc/base/time.h"

#include <gtest/gtest.h>

namespace rc {
namespace {

TEST(Rfc3339Test, FormatAndParseRoundTrip) {
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(1796195045), "2026-12-02T07:04:05Z");
  EXPECT_EQ(ParseRfc3339("2026-12-02T07:04:05Z"), 1796195045);
  EXPECT_EQ(ParseRfc3339(FormatRfc3339(NowUnixSeconds())), NowUnixSeconds());
}

TEST(Rfc3339Test, FractionsAndOffsets) {
  EXPECT_EQ(ParseRfc3339("2026-12-02T07:04:05.123456Z"), 1796195045);  // a Lease's MicroTime
  EXPECT_EQ(ParseRfc3339("2026-12-02T09:04:05+02:00"), 1796195045);
  EXPECT_EQ(ParseRfc3339("2026-12-02T02:04:05.5-05:00"), 1796195045);
}

TEST(Rfc3339Test, GarbageIsNullopt) {
  EXPECT_FALSE(ParseRfc3339(""));
  EXPECT_FALSE(ParseRfc3339("yesterday"));
  EXPECT_FALSE(ParseRfc3339("2026-12-02"));
}

}  // namespace
}  // namespace rc
