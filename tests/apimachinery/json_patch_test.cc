#include <gtest/gtest.h>

#include <string>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/patch.h"

namespace rc::apimachinery {
namespace {

struct Outcome {
  bool ok;
  std::string text;  // resulting document, or the error message
};

Outcome Apply(const char* doc, const char* patch, const JsonPatchOptions& options = {}) {
  auto d = ParseJson(doc);
  auto p = ParseJson(patch);
  EXPECT_TRUE(d.ok()) << doc;
  EXPECT_TRUE(p.ok()) << patch;
  std::string before = ToJson(*d);
  Status s = ApplyJsonPatch(*d, *p, options);
  if (!s.ok()) {
    // Failure leaves the document unchanged.
    EXPECT_EQ(ToJson(*d), before);
    return {false, s.message()};
  }
  return {true, ToJson(*d)};
}

TEST(JsonPatch, Operations) {
  struct Case {
    const char* doc;
    const char* patch;
    const char* result;
  } cases[] = {
      // add
      {R"({"a":1})", R"([{"op":"add","path":"/b","value":2}])", R"({"a":1,"b":2})"},
      {R"({"a":1})", R"([{"op":"add","path":"/a","value":[1]}])", R"({"a":[1]})"},
      {R"({"a":[1,2]})", R"([{"op":"add","path":"/a/1","value":9}])", R"({"a":[1,9,2]})"},
      {R"({"a":[1,2]})", R"([{"op":"add","path":"/a/0","value":9}])", R"({"a":[9,1,2]})"},
      {R"({"a":[1,2]})", R"([{"op":"add","path":"/a/2","value":9}])", R"({"a":[1,2,9]})"},
      {R"({"a":[1,2]})", R"([{"op":"add","path":"/a/-","value":{"x":null}}])",
       R"({"a":[1,2,{"x":null}]})"},
      {R"({"a":1})", R"([{"op":"add","path":"","value":[true]}])", R"([true])"},
      {R"({})", R"([{"op":"add","path":"/","value":1}])", R"({"":1})"},
      // escapes: ~1 is '/', ~0 is '~'
      {R"({"metadata":{"labels":{"app.kubernetes.io/name":"x","a~b":"y"}}})",
       R"([{"op":"replace","path":"/metadata/labels/app.kubernetes.io~1name","value":"z"},
           {"op":"remove","path":"/metadata/labels/a~0b"}])",
       R"({"metadata":{"labels":{"app.kubernetes.io/name":"z"}}})"},
      // remove
      {R"({"a":1,"b":2,"c":3})", R"([{"op":"remove","path":"/b"}])", R"({"a":1,"c":3})"},
      {R"({"a":[1,2,3]})", R"([{"op":"remove","path":"/a/0"}])", R"({"a":[2,3]})"},
      // replace
      {R"({"spec":{"replicas":1}})", R"([{"op":"replace","path":"/spec/replicas","value":5}])",
       R"({"spec":{"replicas":5}})"},
      {R"({"a":[1,2]})", R"([{"op":"replace","path":"/a/1","value":null}])", R"({"a":[1,null]})"},
      {R"({"a":1})", R"([{"op":"replace","path":"","value":{"b":2}}])", R"({"b":2})"},
      // move
      {R"({"a":{"b":1},"c":{}})", R"([{"op":"move","from":"/a/b","path":"/c/d"}])",
       R"({"a":{},"c":{"d":1}})"},
      {R"({"a":[1,2,3]})", R"([{"op":"move","from":"/a/0","path":"/a/-"}])", R"({"a":[2,3,1]})"},
      {R"({"a":[1,2,3]})", R"([{"op":"move","from":"/a/2","path":"/a/0"}])", R"({"a":[3,1,2]})"},
      {R"({"a":1})", R"([{"op":"move","from":"/a","path":"/a"}])", R"({"a":1})"},
      // copy
      {R"({"a":{"b":[1]}})", R"([{"op":"copy","from":"/a","path":"/c"}])",
       R"({"a":{"b":[1]},"c":{"b":[1]}})"},
      {R"({"a":[1,2]})", R"([{"op":"copy","from":"/a/0","path":"/a/-"}])", R"({"a":[1,2,1]})"},
      // test
      {R"({"a":{"b":[1,"x",null]}})", R"([{"op":"test","path":"/a","value":{"b":[1,"x",null]}}])",
       R"({"a":{"b":[1,"x",null]}})"},
      {R"({"a":1})",
       R"([{"op":"test","path":"/a","value":1.0},{"op":"add","path":"/b","value":2}])",
       R"({"a":1,"b":2})"},
      // numeric-looking keys on objects are keys
      {R"({"0":"x"})", R"([{"op":"replace","path":"/0","value":"y"}])", R"({"0":"y"})"},
      // empty patch
      {R"({"a":1})", "[]", R"({"a":1})"},
  };
  for (const auto& c : cases) {
    Outcome o = Apply(c.doc, c.patch);
    EXPECT_TRUE(o.ok) << c.patch << ": " << o.text;
    EXPECT_EQ(o.text, c.result) << c.doc << " + " << c.patch;
  }
}

TEST(JsonPatch, FailuresAreAtomicAndExplained) {
  struct Case {
    const char* doc;
    const char* patch;
    const char* message;  // substring
  } cases[] = {
      {R"({"a":1})", R"([{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":2}])",
       R"(json patch operation 1 ("test" at "/a"): test failed: value is 1)"},
      {R"({"a":1})", R"([{"op":"replace","path":"/missing","value":2}])",
       R"(json patch operation 0 ("replace" at "/missing"): path does not exist)"},
      {R"({"a":1})", R"([{"op":"remove","path":"/missing"}])", "path does not exist"},
      {R"({"a":1})", R"([{"op":"add","path":"/x/y","value":2}])",
       "parent of the path does not exist"},
      {R"({"a":[1]})", R"([{"op":"add","path":"/a/5","value":2}])", "out of bounds"},
      {R"({"a":[1]})", R"([{"op":"add","path":"/a/01","value":2}])", "invalid array index"},
      {R"({"a":[1]})", R"([{"op":"remove","path":"/a/-"}])", "path does not exist"},
      {R"({"a":[1]})", R"([{"op":"replace","path":"/a/-1","value":0}])", "path does not exist"},
      {R"({"a":1})", R"([{"op":"add","path":"/a/b","value":2}])",
       "cannot add a member to a number"},
      {R"({"a":1})", R"([{"op":"add","path":"a","value":2}])", "must be empty or start with '/'"},
      {R"({"a":1})", R"([{"op":"add","path":"/a~2","value":2}])",
       "'~' must be followed by '0' or '1'"},
      {R"({"a":1})", R"([{"op":"add","path":"/b"}])", R"(missing "value")"},
      {R"({"a":1})", R"([{"op":"launch","path":"/a"}])", R"(unknown operation "launch")"},
      {R"({"a":1})", R"([{"path":"/a"}])", R"(missing or non-string "op")"},
      {R"({"a":1})", R"([{"op":"add","value":1}])", R"(missing or non-string "path")"},
      {R"({"a":1})", R"([{"op":"move","path":"/b"}])", R"(missing or non-string "from")"},
      {R"({"a":{"b":1}})", R"([{"op":"move","from":"/a","path":"/a/b/c"}])",
       "into one of its children"},
      {R"({"a":1})", R"([{"op":"copy","from":"/nope","path":"/b"}])",
       R"("from" path does not exist)"},
      {R"({"a":1})", R"([{"op":"remove","path":""}])", "cannot remove the whole document"},
      {R"({"a":1})", R"([1])", "operation must be an object"},
      {R"({"a":1})", R"({"op":"add"})", "must be a JSON array of operations"},
  };
  for (const auto& c : cases) {
    Outcome o = Apply(c.doc, c.patch);
    EXPECT_FALSE(o.ok) << c.patch;
    EXPECT_NE(o.text.find(c.message), std::string::npos) << c.patch << " -> " << o.text;
  }
}

TEST(JsonPatch, Limits) {
  std::string many = "[";
  for (int i = 0; i < 10001; ++i)
    many += std::string(i ? "," : "") + R"({"op":"test","path":"/a","value":1})";
  many += "]";
  Outcome o = Apply(R"({"a":1})", many.c_str());
  EXPECT_FALSE(o.ok);
  EXPECT_NE(o.text.find("The allowed maximum operations in a JSON patch is 10000, got 10001"),
            std::string::npos);

  // Copy doubling bomb.
  std::string bomb = "[";
  for (int i = 0; i < 40; ++i) {
    bomb += std::string(i ? "," : "") + R"({"op":"copy","from":"/a","path":"/a/-"})";
  }
  bomb += "]";
  Outcome b = Apply(R"({"a":[1]})", bomb.c_str());
  EXPECT_FALSE(b.ok);
  EXPECT_NE(b.text.find("copy operations exceed the limit"), std::string::npos) << b.text;
}

TEST(JsonPointer, ParseAndEscape) {
  auto t = ParseJsonPointer("/a~1b/~0c/0/");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->size(), 4u);
  EXPECT_EQ((*t)[0], "a/b");
  EXPECT_EQ((*t)[1], "~c");
  EXPECT_EQ((*t)[2], "0");
  EXPECT_EQ((*t)[3], "");
  EXPECT_TRUE(ParseJsonPointer("")->empty());
  EXPECT_EQ(EscapeJsonPointerToken("a/b~c"), "a~1b~0c");
  EXPECT_FALSE(ParseJsonPointer("/~").ok());
}

}  // namespace
}  // namespace rc::apimachinery
