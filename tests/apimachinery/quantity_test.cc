#include "rc/apimachinery/quantity.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "rc/apimachinery/json.h"

namespace rc::apimachinery {
namespace {

TEST(Quantity, ParseAndCanonicalize) {
  struct Case {
    const char* in;
    const char* canonical;
    std::int64_t milli;
    std::int64_t value;
  } cases[] = {
      {"0", "0", 0, 0},
      {"000", "0", 0, 0},
      {"-0", "0", 0, 0},
      {"100m", "100m", 100, 1},
      {"1", "1", 1000, 1},
      {"1.5", "1500m", 1500, 2},
      {"0.1", "100m", 100, 1},
      {".5", "500m", 500, 1},
      {"1000", "1k", 1000000, 1000},
      {"2000m", "2", 2000, 2},
      {"1k", "1k", 1000000, 1000},
      {"1M", "1M", 1000000000, 1000000},
      {"1.001", "1.001", 1001, 2},  // kept as written, like Kubernetes
      {"1.0010", "1001m", 1001, 2},
      {"1Ki", "1Ki", 1024000, 1024},
      {"1024Ki", "1Mi", 1048576000, 1048576},
      {"1.5Gi", "1536Mi", 1610612736000, 1610612736},
      {"5.5Mi", "5632Ki", 5767168000, 5767168},
      {"0.5Ki", "512", 512000, 512},
      {"100Mi", "100Mi", 104857600000, 104857600},
      {"1Ei", "1Ei", std::numeric_limits<std::int64_t>::max(), 1152921504606846976},
      {"8Ei", "9223372036854775807", std::numeric_limits<std::int64_t>::max(),
       std::numeric_limits<std::int64_t>::max()},
      {"1e3", "1e3", 1000000, 1000},
      {"1E3", "1E3", 1000000, 1000},
      {"1.5e3", "1500", 1500000, 1500},
      {"1e-3", "1e-3", 1, 1},
      {"12e6", "12e6", 12000000000, 12000000},
      {"1n", "1n", 1, 1},
      {"1u", "1u", 1, 1},
      {"0.0000000001", "1n", 1, 1},
      {"-0.0000000001", "-1n", -1, -1},
      {"-100m", "-100m", -100, -1},
      {"-1Ki", "-1Ki", -1024000, -1024},
      {"+5", "+5", 5000, 5},
      {"1E", "1E", std::numeric_limits<std::int64_t>::max(), 1000000000000000000},
      {"250M", "250M", 250000000000, 250000000},
      {"0.25", "250m", 250, 1},
  };
  for (const auto& c : cases) {
    auto q = ParseQuantity(c.in);
    ASSERT_TRUE(q.ok()) << c.in << ": " << q.status().ToString();
    EXPECT_EQ(q->ToString(), c.canonical) << c.in;
    EXPECT_EQ(q->MilliValue(), c.milli) << c.in;
    EXPECT_EQ(q->Value(), c.value) << c.in;
  }
}

TEST(Quantity, Errors) {
  struct Case {
    const char* in;
    const char* message;
  } cases[] = {
      {"", "quantities must match the regular expression"},
      {"1Kb",
       "quantities must match the regular expression "
       "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
      {"abc", "quantities must match the regular expression"},
      {"1.2.3", "quantities must match the regular expression"},
      {"1 ", "quantities must match the regular expression"},
      {"1i", "unable to parse quantity's suffix"},
      {"1K", "unable to parse quantity's suffix"},
      {"1e", "unable to parse quantity's suffix"},
      {"1ee3", "unable to parse quantity's suffix"},
      {".", "unable to parse quantity's numeric value"},
      {"Ki", "unable to parse quantity's numeric value"},
      {"1e999999", "unable to parse quantity's suffix"},
      {"1e60", "out of the supported range"},
  };
  for (const auto& c : cases) {
    auto q = ParseQuantity(c.in);
    ASSERT_FALSE(q.ok()) << c.in;
    EXPECT_EQ(q.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(q.status().message().find(c.message), std::string::npos)
        << c.in << " -> " << q.status().message();
  }
  EXPECT_EQ(ParseQuantity("1Kb").status().message().rfind("quantity \"1Kb\": ", 0), 0u);
}

TEST(Quantity, ArithmeticAndComparison) {
  auto a = *ParseQuantity("1500m");
  auto b = *ParseQuantity("1.5");
  auto c = *ParseQuantity("2");
  EXPECT_EQ(a.Cmp(b), 0);
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a.Cmp(c), -1);
  EXPECT_EQ(c.Cmp(a), 1);
  Quantity sum;
  sum.Add(*ParseQuantity("1Gi"));
  EXPECT_EQ(sum.format(), QuantityFormat::kBinarySI);
  sum.Add(*ParseQuantity("512Mi"));
  EXPECT_EQ(sum.ToString(), "1536Mi");
  sum.Sub(*ParseQuantity("1536Mi"));
  EXPECT_TRUE(sum.IsZero());
  EXPECT_EQ(sum.ToString(), "0");
  auto cpu = Quantity::FromMilli(250);
  cpu.Add(Quantity::FromMilli(750));
  EXPECT_EQ(cpu.ToString(), "1");
  EXPECT_EQ(cpu.Sign(), 1);
  cpu.Neg();
  EXPECT_EQ(cpu.ToString(), "-1");
  EXPECT_EQ(Quantity::FromInt(3 * 1024 * 1024, QuantityFormat::kBinarySI).ToString(), "3Mi");
  EXPECT_EQ(Quantity::FromInt(5000).ToString(), "5k");
  EXPECT_EQ(ParseQuantity("1.5")->ScaledValue(-6), 1500000);
  EXPECT_EQ(ParseQuantity("1500")->ScaledValue(3), 2);
}

TEST(Quantity, FromJson) {
  auto doc = ParseJson(R"({"cpu":"250m","mem":"64Mi","n":2,"f":0.5,"bad":true})");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(ParseQuantityJson((*doc)["cpu"])->MilliValue(), 250);
  EXPECT_EQ(ParseQuantityJson((*doc)["mem"])->Value(), 64 * 1024 * 1024);
  EXPECT_EQ(ParseQuantityJson((*doc)["n"])->ToString(), "2");
  EXPECT_EQ(ParseQuantityJson((*doc)["f"])->ToString(), "500m");
  EXPECT_FALSE(ParseQuantityJson((*doc)["bad"]).ok());
}

}  // namespace
}  // namespace rc::apimachinery
