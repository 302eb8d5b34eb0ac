#include <gtest/gtest.h>

#include <string>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/patch.h"

namespace rc::apimachinery {
namespace {

std::string Merge(const char* target, const char* patch) {
  auto t = ParseJson(target);
  auto p = ParseJson(patch);
  EXPECT_TRUE(t.ok() && p.ok());
  Status s = ApplyMergePatch(*t, *p, t->GetAllocator());
  EXPECT_TRUE(s.ok()) << s.ToString();
  return ToJson(*t);
}

// The examples of RFC 7386, appendix A, plus a few more.
TEST(MergePatch, Rfc7386Examples) {
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  } cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"a":"foo"})", "null", "null"},
      {R"({"a":"foo"})", R"("bar")", R"("bar")"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
      // Kubernetes-style: labels merge, annotations removed, order of existing members kept.
      {R"({"metadata":{"name":"x","labels":{"a":"1","b":"2"},"annotations":{"k":"v"}},"spec":{"replicas":1}})",
       R"({"metadata":{"labels":{"b":null,"c":"3"},"annotations":null},"spec":{"replicas":3}})",
       R"({"metadata":{"name":"x","labels":{"a":"1","c":"3"}},"spec":{"replicas":3}})"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(Merge(c.target, c.patch), c.result) << c.target << " + " << c.patch;
  }
}

TEST(MergePatch, PatchInsideTargetDocumentIsSafe) {
  auto doc = ParseJson(R"({"obj":{"a":1,"b":{"c":2}},"patch":{"b":{"c":null,"d":3}}})");
  ASSERT_TRUE(doc.ok());
  rapidjson::Value& obj = (*doc)["obj"];
  const rapidjson::Value& patch = (*doc)["patch"];
  ASSERT_TRUE(ApplyMergePatch(obj, patch, doc->GetAllocator()).ok());
  EXPECT_EQ(ToJson((*doc)["obj"]), R"({"a":1,"b":{"d":3}})");
}

}  // namespace
}  // namespace rc::apimachinery
