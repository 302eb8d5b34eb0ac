#include "rc/apimachinery/validation.h"

#include <gtest/gtest.h>

#include <string>

namespace rc::apimachinery {
namespace {

const char* kSubdomainMsg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start "
    "and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const char* kLabelMsg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end "
    "with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const char* kQualifiedNameMsg =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const char* kLabelValueMsg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex "
    "used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

TEST(Validation, DNS1123Subdomain) {
  for (const char* ok : {"a", "ab", "a-b", "a.b", "0", "1.2.3", "my-app.example.com", "a--b"}) {
    EXPECT_TRUE(IsDNS1123Subdomain(ok).empty()) << ok;
  }
  for (const char* bad : {"", "A", "-a", "a-", ".a", "a.", "a..b", "a_b", "a b", "a.-b", "ä"}) {
    auto errs = IsDNS1123Subdomain(bad);
    ASSERT_EQ(errs.size(), 1u) << bad;
    EXPECT_EQ(errs[0], kSubdomainMsg);
  }
  std::string long_ok;
  while (long_ok.size() < 253) long_ok += "a.";
  long_ok.resize(253);  // ends with 'a'
  EXPECT_TRUE(IsDNS1123Subdomain(long_ok).empty());
  auto errs = IsDNS1123Subdomain(std::string(254, 'a'));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0], "must be no more than 253 characters");
  auto both = IsDNS1123Subdomain(std::string(254, 'A'));
  ASSERT_EQ(both.size(), 2u);
}

TEST(Validation, DNS1123Label) {
  for (const std::string& ok :
       {std::string("a"), std::string("abc-123"), std::string("1"), std::string(63, 'x')})
    EXPECT_TRUE(IsDNS1123Label(ok).empty()) << ok;
  auto dots = IsDNS1123Label("a.b");
  ASSERT_EQ(dots.size(), 1u);
  EXPECT_EQ(dots[0], "must not contain dots");
  auto bad = IsDNS1123Label("Abc");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0], kLabelMsg);
  auto longer = IsDNS1123Label(std::string(64, 'a'));
  ASSERT_EQ(longer.size(), 1u);
  EXPECT_EQ(longer[0], "must be no more than 63 characters");
}

TEST(Validation, DNS1035Label) {
  EXPECT_TRUE(IsDNS1035Label("my-svc").empty());
  auto errs = IsDNS1035Label("1abc");
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start "
            "with an alphabetic "
            "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', "
            "regex used for "
            "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')");
}

TEST(Validation, QualifiedName) {
  for (const char* ok : {"app", "App_1", "a.b-c", "example.com/app", "k8s.io/x", "a/B", "1"}) {
    EXPECT_TRUE(IsQualifiedName(ok).empty()) << ok;
  }
  auto bad = IsQualifiedName("-app");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0], kQualifiedNameMsg);
  auto empty = IsQualifiedName("");
  ASSERT_EQ(empty.size(), 2u);
  EXPECT_EQ(empty[0], "name part must be non-empty");
  auto prefix = IsQualifiedName("/app");
  ASSERT_EQ(prefix.size(), 1u);
  EXPECT_EQ(prefix[0], "prefix part must be non-empty");
  auto upper = IsQualifiedName("Example.com/app");
  ASSERT_EQ(upper.size(), 1u);
  EXPECT_EQ(upper[0], std::string("prefix part ") + kSubdomainMsg);
  auto too_long = IsQualifiedName(std::string(64, 'a'));
  ASSERT_EQ(too_long.size(), 1u);
  EXPECT_EQ(too_long[0], "name part must be no more than 63 characters");
  auto slashes = IsQualifiedName("a/b/c");
  ASSERT_EQ(slashes.size(), 1u);
  EXPECT_EQ(slashes[0],
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with "
            "an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
            "for validation is "
            "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and "
            "'/' (e.g. "
            "'example.com/MyName')");
}

TEST(Validation, LabelValue) {
  for (const std::string& ok : {std::string(""), std::string("a"), std::string("A-b_c.d"),
                                std::string("123"), std::string(63, 'v')}) {
    EXPECT_TRUE(IsValidLabelValue(ok).empty()) << ok;
  }
  auto bad = IsValidLabelValue("a b");
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0], kLabelValueMsg);
  auto longer = IsValidLabelValue(std::string(64, 'v'));
  ASSERT_EQ(longer.size(), 1u);
  EXPECT_EQ(longer[0], "must be no more than 63 characters");
  EXPECT_EQ(IsValidLabelValue("-" + std::string(63, 'v')).size(), 2u);
}

TEST(Validation, Misc) {
  EXPECT_EQ(IsValidPathSegmentName(".."), std::vector<std::string>{"may not be '..'"});
  EXPECT_EQ(IsValidPathSegmentName("a/b%c"),
            (std::vector<std::string>{"may not contain '/'", "may not contain '%'"}));
  EXPECT_TRUE(IsValidPathSegmentName("ok").empty());
  EXPECT_TRUE(IsValidPortName("http").empty());
  EXPECT_EQ(IsValidPortName("80"),
            std::vector<std::string>{"must contain at least one letter (a-z)"});
  EXPECT_EQ(IsValidPortName("a--b"),
            std::vector<std::string>{"must not contain consecutive hyphens"});
  EXPECT_TRUE(IsValidPortNum(443).empty());
  EXPECT_EQ(IsValidPortNum(0), std::vector<std::string>{"must be between 1 and 65535, inclusive"});
  EXPECT_TRUE(IsConfigMapKey("app.properties").empty());
  EXPECT_FALSE(IsConfigMapKey("a/b").empty());
  EXPECT_EQ(IsConfigMapKey("..a"), std::vector<std::string>{"must not start with '..'"});
  EXPECT_TRUE(IsCIdentifier("_abc1").empty());
  EXPECT_FALSE(IsCIdentifier("1abc").empty());
  EXPECT_EQ(RegexError("msg", "re"), "msg (regex used for validation is 're')");
  EXPECT_EQ(JoinErrors({"a", "b"}), "a; b");
}

}  // namespace
}  // namespace rc::apimachinery
