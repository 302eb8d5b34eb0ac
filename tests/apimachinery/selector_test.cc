#include "rc/apimachinery/selector.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "rc/apimachinery/json.h"

namespace rc::apimachinery {
namespace {

ValueGetter MapGetter(const std::map<std::string, std::string>& m) {
  return [&m](std::string_view key) -> std::optional<std::string_view> {
    auto it = m.find(std::string(key));
    if (it == m.end()) return std::nullopt;
    return std::string_view(it->second);
  };
}

TEST(LabelSelector, ParseAndCanonicalString) {
  struct Case {
    const char* in;
    const char* canonical;
  } cases[] = {
      {"", ""},
      {"   ", ""},
      {"x=a", "x=a"},
      {"x==a", "x==a"},
      {"x!=a", "x!=a"},
      {"x", "x"},
      {"!x", "!x"},
      {" ! x ", "!x"},
      {"x in (b,a)", "x in (a,b)"},
      {"x in(a)", "x in (a)"},
      {"x notin (a, b ,c)", "x notin (a,b,c)"},
      {"x in ()", "x in ()"},
      {"x in (,a)", "x in (,a)"},
      {"x=", "x="},
      {"x>1", "x>1"},
      {"x < 5", "x<5"},
      {"z=1,a=2 , m in (q)", "a=2,m in (q),z=1"},
      {"example.com/app=web,app.kubernetes.io/name=x",
       "app.kubernetes.io/name=x,example.com/app=web"},
      {"in=notin", "in=notin"},
      {"x in (in,notin)", "x in (in,notin)"},
      {"a=b,a!=c", "a=b,a!=c"},
      {"\tx = a \n", "x=a"},
  };
  for (const auto& c : cases) {
    auto s = ParseLabelSelector(c.in);
    ASSERT_TRUE(s.ok()) << '"' << c.in << "\": " << s.status().ToString();
    EXPECT_EQ(s->ToString(), c.canonical) << c.in;
    auto again = ParseLabelSelector(s->ToString());
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(again->ToString(), c.canonical);
  }
  EXPECT_TRUE(ParseLabelSelector("")->Empty());
  EXPECT_FALSE(ParseLabelSelector("a")->Empty());
}

TEST(LabelSelector, ParseErrors) {
  struct Case {
    const char* in;
    const char* message;  // substring
  } cases[] = {
      {"x=a,", "found '', expected: identifier after ','"},
      {",x", "found ',', expected: !, identifier, or 'end of string'"},
      {"x in (a", "found '', expected: ',' or ')'"},
      {"x in a", "found 'a' expected: '('"},
      {"x in (a b)", "found 'b', expected: ',' or ')'"},
      {"x=a=b", "found '=', expected: ',' or 'end of string'"},
      {"x=a b", "found 'b', expected: ',' or 'end of string' (at position 4)"},
      {"x in (a,=)", "found '=', expected: ',', or identifier"},
      {"!x=a", "found '=', expected: ',' or 'end of string'"},
      {"=a", "found '=', expected: !, identifier, or 'end of string'"},
      {"x (a)", "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"},
      {"x>a", "for 'Gt', 'Lt' operators, the value must be an integer"},
      {"-x=a", "key: Invalid value: \"-x\": name part must consist of alphanumeric characters"},
      {"a/b/c=d", "a qualified name must consist of"},
      {"x=-a",
       "values[0][x]: Invalid value: \"-a\": a valid label must be an empty string or consist of"},
      {"x=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       "must be no more than 63 characters"},
      {"x in (a,-b)", "values[0][x]: Invalid value: \"-b\""},  // values are sorted first
      {"x<-5", "values[0][x]"},
      {"x<>1", "found '>', expected: identifier (at position 2)"},
  };
  for (const auto& c : cases) {
    auto s = ParseLabelSelector(c.in);
    ASSERT_FALSE(s.ok()) << c.in;
    EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s.status().message().find(c.message), std::string::npos)
        << c.in << " -> " << s.status().message();
  }
}

TEST(LabelSelector, Matching) {
  std::map<std::string, std::string> labels = {
      {"app", "web"}, {"tier", "frontend"}, {"n", "10"}, {"empty", ""}};
  struct Case {
    const char* selector;
    bool match;
  } cases[] = {
      {"", true},
      {"app=web", true},
      {"app==web", true},
      {"app=db", false},
      {"app!=db", true},
      {"missing!=x", true},
      {"app in (db,web)", true},
      {"app notin (db,web)", false},
      {"missing notin (x)", true},
      {"missing in (x)", false},
      {"app", true},
      {"missing", false},
      {"!missing", true},
      {"!app", false},
      {"n>5", true},
      {"n>10", false},
      {"n<11", true},
      {"app>1", false},
      {"missing<1", false},
      {"empty=", true},
      {"empty", true},
      {"missing=", false},
      {"app=web,tier=frontend", true},
      {"app=web,tier=backend", false},
  };
  for (const auto& c : cases) {
    auto s = ParseLabelSelector(c.selector);
    ASSERT_TRUE(s.ok()) << c.selector;
    EXPECT_EQ(s->Matches(MapGetter(labels)), c.match) << c.selector;
  }
  auto obj = ParseJson(R"({"app":"web","tier":"frontend","weird":1})");
  EXPECT_TRUE(ParseLabelSelector("app=web,tier")->Matches(&*obj));
  EXPECT_FALSE(ParseLabelSelector("weird")->Matches(&*obj));
  EXPECT_FALSE(ParseLabelSelector("app")->Matches(nullptr));
  EXPECT_TRUE(ParseLabelSelector("!app")->Matches(nullptr));
  EXPECT_TRUE(ParseLabelSelector("")->Matches(nullptr));
}

TEST(LabelSelector, FromJson) {
  struct Case {
    const char* json;
    const char* canonical;
    bool everything;
    bool nothing;
  } cases[] = {
      {"null", "", false, true},
      {"{}", "", true, false},
      {R"({"matchLabels":{}})", "", true, false},
      {R"({"matchLabels":{"b":"2","a":"1"}})", "a=1,b=2", false, false},
      {R"({"matchExpressions":[{"key":"x","operator":"In","values":["b","a"]},{"key":"y","operator":"DoesNotExist"}]})",
       "x in (a,b),!y", false, false},
      {R"({"matchLabels":{"app":"web"},"matchExpressions":[{"key":"env","operator":"NotIn","values":["prod"]},
          {"key":"tier","operator":"Exists","values":[]}]})",
       "app=web,env notin (prod),tier", false, false},
  };
  for (const auto& c : cases) {
    auto v = ParseJson(c.json);
    ASSERT_TRUE(v.ok());
    auto s = LabelSelectorFromJson(*v);
    ASSERT_TRUE(s.ok()) << c.json << ": " << s.status().ToString();
    EXPECT_EQ(s->ToString(), c.canonical) << c.json;
    EXPECT_EQ(s->Empty(), c.everything) << c.json;
    EXPECT_EQ(s->MatchesNothing(), c.nothing) << c.json;
  }
  auto absent = LabelSelectorFromJson(nullptr);
  ASSERT_TRUE(absent.ok());
  EXPECT_TRUE(absent->MatchesNothing());
  auto labels = ParseJson(R"({"app":"web"})");
  EXPECT_FALSE(absent->Matches(&*labels));
  EXPECT_TRUE(LabelSelectorFromJson(*ParseJson("{}"))->Matches(&*labels));

  const char* bad[] = {
      R"({"matchExpressions":[{"key":"x","operator":"Equals","values":["a"]}]})",
      R"({"matchExpressions":[{"key":"x","operator":"In","values":[]}]})",
      R"({"matchExpressions":[{"key":"x","operator":"Exists","values":["a"]}]})",
      R"({"matchExpressions":[{"key":"x","operator":"In","values":[1]}]})",
      R"({"matchExpressions":[{"key":"-x","operator":"Exists"}]})",
      R"({"matchExpressions":[{"operator":"Exists"}]})",
      R"({"matchLabels":{"a":1}})",
      R"({"matchLabels":{"a":"-bad-"}})",
      R"({"matchLabels":[]})",
      R"("app=web")",
  };
  for (const char* b : bad) {
    auto v = ParseJson(b);
    ASSERT_TRUE(v.ok());
    EXPECT_FALSE(LabelSelectorFromJson(*v).ok()) << b;
  }
  auto e = LabelSelectorFromJson(
      *ParseJson(R"({"matchExpressions":[{"key":"x","operator":"Equals"}]})"));
  EXPECT_EQ(e.status().message(), "\"Equals\" is not a valid label selector operator");
  auto empty_in = LabelSelectorFromJson(
      *ParseJson(R"({"matchExpressions":[{"key":"x","operator":"In","values":[]}]})"));
  EXPECT_NE(
      empty_in.status().message().find("for 'in', 'notin' operators, values set can't be empty"),
      std::string::npos);
}

TEST(LabelSelector, FromMapAndAdd) {
  auto s = LabelSelectorFromMap(*ParseJson(R"({"app":"web","tier":"fe"})"));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->ToString(), "app=web,tier=fe");
  EXPECT_TRUE(LabelSelectorFromMap(*ParseJson("{}"))->Empty());
  LabelSelector sel;
  EXPECT_TRUE(sel.Add({"b", SelectorOperator::kExists, {}}).ok());
  EXPECT_TRUE(sel.Add({"a", SelectorOperator::kIn, {"y", "x", "x"}}).ok());
  EXPECT_EQ(sel.ToString(), "a in (x,y),b");
  EXPECT_FALSE(sel.Add({"c", SelectorOperator::kEquals, {"1", "2"}}).ok());
  EXPECT_FALSE(sel.Add({"c", SelectorOperator::kGreaterThan, {"x"}}).ok());
  EXPECT_EQ(sel.requirements().size(), 2u);
}

TEST(FieldSelector, ParseMatchAndString) {
  struct Case {
    const char* in;
    const char* canonical;
  } cases[] = {
      {"", ""},
      {"metadata.name=web", "metadata.name=web"},
      {"metadata.name==web", "metadata.name=web"},
      {"status.phase!=Running", "status.phase!=Running"},
      {"spec.nodeName=n1,metadata.namespace=default",
       "metadata.namespace=default,spec.nodeName=n1"},
      {"a=x\\,y\\=z\\\\", "a=x\\,y\\=z\\\\"},
      {"a=", "a="},
      {"a=b,,", "a=b"},
  };
  for (const auto& c : cases) {
    auto s = ParseFieldSelector(c.in);
    ASSERT_TRUE(s.ok()) << c.in << ": " << s.status().ToString();
    EXPECT_EQ(s->ToString(), c.canonical) << c.in;
  }
  auto esc = ParseFieldSelector("a=x\\,y\\=z\\\\");
  ASSERT_EQ(esc->requirements().size(), 1u);
  EXPECT_EQ(esc->requirements()[0].value, "x,y=z\\");
  EXPECT_EQ(esc->requirements()[0].field, "a");

  std::map<std::string, std::string> fields = {{"metadata.name", "web"},
                                               {"status.phase", "Running"}};
  auto sel = ParseFieldSelector("metadata.name=web,status.phase!=Pending");
  ASSERT_TRUE(sel.ok());
  EXPECT_TRUE(sel->Matches(MapGetter(fields)));
  EXPECT_FALSE(ParseFieldSelector("status.phase!=Running")->Matches(MapGetter(fields)));
  EXPECT_TRUE(
      ParseFieldSelector("spec.nodeName=")->Matches(MapGetter(fields)));  // absent reads as ""
  EXPECT_FALSE(ParseFieldSelector("spec.nodeName!=")->Matches(MapGetter(fields)));
  EXPECT_TRUE(ParseFieldSelector("")->Empty());
  EXPECT_EQ(sel->RequiresExactMatch("metadata.name"), "web");
  EXPECT_EQ(sel->RequiresExactMatch("status.phase"), std::nullopt);
  // Whitespace is part of the value, as in Kubernetes.
  EXPECT_EQ(ParseFieldSelector("a= b")->requirements()[0].value, " b");
}

TEST(FieldSelector, Errors) {
  struct Case {
    const char* in;
    const char* message;
  } cases[] = {
      {"metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"},
      {"a=b,c", "can't understand 'c'"},
      {"a=b=c", "invalid field selector: unescaped character in value: '='"},
      {"a=b\\x", "invalid field selector: invalid escape sequence: \\x"},
      {"a=b\\", "invalid field selector: invalid escape sequence: \\"},
  };
  for (const auto& c : cases) {
    auto s = ParseFieldSelector(c.in);
    ASSERT_FALSE(s.ok()) << c.in;
    EXPECT_NE(s.status().message().find(c.message), std::string::npos)
        << c.in << " -> " << s.status().message();
  }
  EXPECT_EQ(EscapeFieldSelectorValue("a,b=c\\"), "a\\,b\\=c\\\\");
  EXPECT_EQ(*UnescapeFieldSelectorValue("a\\,b\\=c\\\\"), "a,b=c\\");
}

}  // namespace
}  // namespace rc::apimachinery
