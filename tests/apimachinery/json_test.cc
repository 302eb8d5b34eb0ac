#include "rc/apimachinery/json.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::apimachinery {
namespace {

TEST(ParseJson, ParsesValuesAndRoundTrips) {
  struct Case {
    const char* in;
    const char* out;
  } cases[] = {
      {R"({"a":1,"b":[true,false,null],"c":"x"})", R"({"a":1,"b":[true,false,null],"c":"x"})"},
      {"  [1, 2.5, -3, 18446744073709551615]  ", "[1,2.5,-3,18446744073709551615]"},
      {R"("\u00e9\n")", R"("é\n")"},
      {"0", "0"},
      {"-9223372036854775808", "-9223372036854775808"},
      {R"({"nested":{"deeper":{"x":{}}}})", R"({"nested":{"deeper":{"x":{}}}})"},
      {"\n\t{\r\n}\n", "{}"},
  };
  for (const auto& c : cases) {
    auto doc = ParseJson(c.in);
    ASSERT_TRUE(doc.ok()) << c.in << ": " << doc.status().ToString();
    EXPECT_EQ(ToJson(*doc), c.out) << c.in;
  }
}

TEST(ParseJson, DuplicateKeysLastWins) {
  auto doc = ParseJson(R"({"a":1,"b":2,"a":3,"c":{"x":1,"x":{"y":2}}})");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(ToJson(*doc), R"({"a":3,"b":2,"c":{"x":{"y":2}}})");
}

TEST(ParseJson, SyntaxErrorsCarryPosition) {
  struct Case {
    const char* in;
    const char* expect;  // substring of the message
  } cases[] = {
      {"{\"a\":1,\n\"b\" 2}", "line 2, column 5"},
      {"[1,2", "line 1, column 5"},
      {"{\"a\":1}x", "root must not be followed"},
      {"tru", "line 1, column 4"},
      {"{'a':1}", "line 1, column 2"},
      {"[1,]", "line 1, column 4"},
      {"NaN", "Invalid value"},
      {"01", "line 1, column 2"},
      {"[1e99999]", "Number too big"},
  };
  for (const auto& c : cases) {
    auto doc = ParseJson(c.in);
    ASSERT_FALSE(doc.ok()) << c.in;
    EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(doc.status().message().find(c.expect), std::string::npos)
        << c.in << " -> " << doc.status().message();
    EXPECT_EQ(doc.status().message().rfind("invalid JSON at line ", 0), 0u)
        << doc.status().message();
  }
}

TEST(ParseJson, EmptyInputIsAnError) {
  for (const char* in : {"", "   ", "\n\n"}) {
    auto doc = ParseJson(in);
    ASSERT_FALSE(doc.ok()) << '"' << in << '"';
    EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
  }
}

TEST(ParseJson, InvalidUtf8IsAnError) {
  for (std::string in : {std::string("\"\xff\""), std::string("{\"a\xc3\":1}"),
                         std::string("[\"\xed\xa0\x80\"]"), std::string("\"\xc0\xaf\"")}) {
    auto doc = ParseJson(in);
    ASSERT_FALSE(doc.ok()) << in;
    EXPECT_NE(doc.status().message().find("encoding"), std::string::npos) << doc.status().message();
  }
  // Valid multi-byte UTF-8 is fine.
  EXPECT_TRUE(ParseJson("\"日本語 \xf0\x9f\x98\x80\"").ok());
}

TEST(ParseJson, EmbeddedNulIsAnError) {
  std::string in("{\"a\":1}\0garbage", 15);
  auto doc = ParseJson(in);
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("NUL"), std::string::npos);
  std::string in2("\"a\0b\"", 5);
  EXPECT_FALSE(ParseJson(in2).ok());
}

TEST(ParseJson, DepthLimit) {
  auto nested = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(ParseJson(nested(100)).ok());
  auto too_deep = ParseJson(nested(101));
  ASSERT_FALSE(too_deep.ok());
  EXPECT_EQ(too_deep.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(too_deep.status().message().find("nesting depth exceeds the maximum of 100"),
            std::string::npos);
  EXPECT_NE(too_deep.status().message().find("column 101"), std::string::npos)
      << too_deep.status().message();
  EXPECT_TRUE(ParseJson(nested(5), 5).ok());
  EXPECT_FALSE(ParseJson(nested(6), 5).ok());
  // Objects count too.
  EXPECT_FALSE(ParseJson(R"({"a":{"b":{"c":1}}})", 2).ok());
  EXPECT_TRUE(ParseJson(R"({"a":{"b":{"c":1}}})", 3).ok());
}

TEST(ParseJson, PathologicalNestingDoesNotCrash) {
  // One million unterminated '[' and 100k nested objects: errors, not stack overflows.
  auto r1 = ParseJson(std::string(1000000, '['));
  ASSERT_FALSE(r1.ok());
  EXPECT_EQ(r1.status().code(), StatusCode::kResourceExhausted);
  std::string objs;
  for (int i = 0; i < 100000; ++i) objs += "{\"a\":";
  auto r2 = ParseJson(objs);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kResourceExhausted);
  // A huge but allowed depth still works without recursion in the parser.
  std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto r3 = ParseJson(deep, 200000);
  ASSERT_TRUE(r3.ok()) << r3.status().ToString();
  EXPECT_EQ(JsonDepth(*r3), 100000);
}

TEST(Json, EqualityAndHelpers) {
  auto a = ParseJson(R"({"x":[1,2,{"y":null}],"z":"s","n":1})");
  auto b = ParseJson(R"({"n":1.0,"z":"s","x":[1,2,{"y":null}]})");
  auto c = ParseJson(R"({"n":1,"z":"s","x":[2,1,{"y":null}]})");
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_TRUE(JsonEqual(*a, *b));
  EXPECT_FALSE(JsonEqual(*a, *c));
  auto neg = ParseJson("-1");
  auto big = ParseJson("18446744073709551615");
  EXPECT_FALSE(JsonEqual(*neg, *big));
  EXPECT_EQ(JsonDepth(*a), 3);
  EXPECT_EQ(GetStringOr(*a, "z"), "s");
  EXPECT_EQ(GetStringOr(*a, "n", "fallback"), "fallback");
  EXPECT_EQ(FindMember(*a, "missing"), nullptr);
  EXPECT_EQ(LineColumn("ab\ncd", 4), "line 2, column 2");
  EXPECT_EQ(ToPrettyJson(*ParseJson(R"({"a":[1]})")), "{\n  \"a\": [\n    1\n  ]\n}");
}

}  // namespace
}  // namespace rc::apimachinery
