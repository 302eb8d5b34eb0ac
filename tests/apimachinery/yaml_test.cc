#include "rc/apimachinery/yaml.h"

#include <gtest/gtest.h>

#include <string>

#include "rc/apimachinery/json.h"

namespace rc::apimachinery {
namespace {

std::string Y2J(const std::string& yaml) {
  auto doc = ParseYamlToJson(yaml);
  if (!doc.ok()) return "ERROR: " + doc.status().message();
  return ToJson(*doc);
}

TEST(ParseYamlToJson, Manifest) {
  const char* manifest = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: "frontend"}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - name: A
          value: "1"
        args: ["--flag", '--other']
        command:
          - sh
          - -c
          - |
            echo hello
            exit 0
)";
  EXPECT_EQ(
      Y2J(manifest),
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"app":"web","tier":"frontend"}},)"
      R"("spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.25","ports":[{"containerPort":80}],)"
      R"("env":[{"name":"A","value":"1"}],"args":["--flag","--other"],"command":["sh","-c","echo hello\nexit 0\n"]}]}}}})");
}

TEST(ParseYamlToJson, ScalarResolutionLikeSigsK8sYaml) {
  struct Case {
    const char* yaml;
    const char* json;
  } cases[] = {
      {"v: 42", R"({"v":42})"},
      {"v: -7", R"({"v":-7})"},
      {"v: +3", R"({"v":3})"},
      {"v: 0x1F", R"({"v":31})"},
      {"v: 0o17", R"({"v":15})"},
      {"v: 0b101", R"({"v":5})"},
      {"v: 0755", R"({"v":493})"},  // octal, as Kubernetes' defaultMode
      {"v: 09", R"({"v":9})"},      // not octal: float 9 → 9
      {"v: 1_000", R"({"v":1000})"},
      {"v: 18446744073709551615", R"({"v":18446744073709551615})"},
      {"v: 1.5", R"({"v":1.5})"},
      {"v: 1.0", R"({"v":1})"},
      {"v: 1e3", R"({"v":1000})"},
      {"v: .5", R"({"v":0.5})"},
      {"v: -.5", R"({"v":-0.5})"},
      {"v: 1.", R"({"v":1})"},
      {"v: 1e400", R"({"v":"1e400"})"},
      {"v: true", R"({"v":true})"},
      {"v: False", R"({"v":false})"},
      {"v: yes", R"({"v":true})"},
      {"v: off", R"({"v":false})"},
      {"v: y", R"({"v":true})"},
      {"v: ~", R"({"v":null})"},
      {"v: null", R"({"v":null})"},
      {"v:", R"({"v":null})"},
      {"v: NULL", R"({"v":null})"},
      {"v: nil", R"({"v":"nil"})"},
      {"v: \"42\"", R"({"v":"42"})"},
      {"v: 'true'", R"({"v":"true"})"},
      {"v: \"\"", R"({"v":""})"},
      {"v: !!str 42", R"({"v":"42"})"},
      {"v: !!float 1", R"({"v":1})"},
      {"v: 2001-12-14", R"({"v":"2001-12-14"})"},
      {"v: 1.2.3", R"({"v":"1.2.3"})"},
      {"v: 100m", R"({"v":"100m"})"},
      {"v: 0x", R"({"v":"0x"})"},
      {"v: -x", R"({"v":"-x"})"},
      {"v: +.inf", "ERROR"},
      {"v: .nan", "ERROR"},
      {"v: !!int abc", "ERROR"},
      {"v: \"\\u00e9\\t\"", R"({"v":"é\t"})"},
      {"v: >\n  folded\n  text\n", R"({"v":"folded text\n"})"},
  };
  for (const auto& c : cases) {
    std::string got = Y2J(c.yaml);
    if (std::string(c.json) == "ERROR") {
      EXPECT_EQ(got.rfind("ERROR", 0), 0u) << c.yaml << " -> " << got;
    } else {
      EXPECT_EQ(got, c.json) << c.yaml;
    }
  }
}

TEST(ParseYamlToJson, KeysBecomeStrings) {
  EXPECT_EQ(Y2J("1: a\ntrue: b\n1.5: c\n0x10: d\nyes: e\n\"2\": f\n1000000.0: g"),
            R"({"1":"a","true":"e","1.5":"c","16":"d","2":"f","1e+06":"g"})");
  EXPECT_NE(Y2J("~: a").find("unsupported map key of type null"), std::string::npos);
  EXPECT_NE(Y2J("? [a, b]\n: c").find("unsupported map key"), std::string::npos);
}

TEST(ParseYamlToJson, Yaml11BooleansLikeKubernetes) {
  // go-yaml v2 (used by sigs.k8s.io/yaml) resolves y/n/yes/no/on/off as booleans, keys included.
  EXPECT_EQ(Y2J("x: 1\ny: 2\nn: [y, n, on, \"y\"]"),
            R"({"x":1,"true":2,"false":[true,false,true,"y"]})");
}

TEST(ParseYamlToJson, DuplicateKeysLastWins) {
  EXPECT_EQ(Y2J("a: 1\nb: 2\na: 3"), R"({"a":3,"b":2})");
}

TEST(ParseYamlToJson, AnchorsAliasesAndMergeKeys) {
  EXPECT_EQ(Y2J("base: &b {p: 1, q: 2}\nuse: *b\nlist: [&v 5, *v]"),
            R"({"base":{"p":1,"q":2},"use":{"p":1,"q":2},"list":[5,5]})");
  EXPECT_EQ(Y2J("base: &b {p: 1, q: 2}\nderived:\n  <<: *b\n  q: 3\n  z: 4"),
            R"({"base":{"p":1,"q":2},"derived":{"q":3,"z":4,"p":1}})");
  EXPECT_EQ(Y2J("a: &a {p: 1}\nb: &b {p: 2, q: 2}\nc:\n  <<: [*a, *b]"),
            R"({"a":{"p":1},"b":{"p":2,"q":2},"c":{"p":1,"q":2}})");
  EXPECT_EQ(Y2J("\"<<\": {p: 1}"), R"({"<<":{"p":1}})");  // quoted: an ordinary key
  EXPECT_EQ(Y2J("k: &k key\n*k : v"), R"({"k":"key","key":"v"})");
  EXPECT_NE(Y2J("a: *nothere").find("ERROR"), std::string::npos);
  EXPECT_NE(Y2J("a: &x [1, *x]").find("ERROR"), std::string::npos);
  EXPECT_NE(Y2J("a:\n  <<: 5").find("map merge requires"), std::string::npos);
}

TEST(ParseYamlToJson, BillionLaughsIsRejected) {
  std::string yaml =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'j'; ++c) {
    yaml += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 9; ++i) yaml += std::string(i ? "," : "") + "*" + prev;
    yaml += "]\n";
    prev = c;
  }
  auto doc = ParseYamlToJson(yaml);
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(doc.status().message().find("excessive aliasing"), std::string::npos)
      << doc.status().message();
}

TEST(ParseYamlToJson, ErrorsHaveLineAndColumn) {
  auto doc = ParseYamlToJson("a: 1\nb: [1, 2\nc: 3\n");
  ASSERT_FALSE(doc.ok());
  EXPECT_EQ(doc.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(doc.status().message().rfind("yaml: line ", 0), 0u) << doc.status().message();
  auto bad = ParseYamlToJson("a: b: c");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 1, column"), std::string::npos)
      << bad.status().message();
  auto tab = ParseYamlToJson("a:\n\t- b");
  EXPECT_FALSE(tab.ok());
  // yaml-cpp reports endless empty documents for a stray top-level ','; found by the fuzzer.
  auto comma = ParseYamlToJson(",<,g");
  ASSERT_FALSE(comma.ok());
  EXPECT_EQ(comma.status().message(), "yaml: line 1, column 1: unexpected character ','");
  EXPECT_FALSE(ParseYamlStream("a: 1\n---\n,\n").ok());
  EXPECT_FALSE(ParseYamlToJson("[a, b],").ok());
}

TEST(ParseYamlToJson, EmptyAndMultiDocument) {
  for (const char* in : {"", "   \n", "# only a comment\n", "---\n", "---\n...\n"}) {
    auto doc = ParseYamlToJson(in);
    ASSERT_TRUE(doc.ok()) << in << ": " << doc.status().ToString();
    EXPECT_TRUE(doc->IsNull()) << in;
  }
  EXPECT_EQ(Y2J("---\na: 1\n"), R"({"a":1})");
  EXPECT_EQ(Y2J("---\na: 1\n---\n"), R"({"a":1})");
  auto two = ParseYamlToJson("a: 1\n---\nb: 2\n");
  ASSERT_FALSE(two.ok());
  EXPECT_NE(two.status().message().find("single document"), std::string::npos);
}

TEST(ParseYamlStream, MultipleDocumentsSkippingEmptyOnes) {
  auto docs = ParseYamlStream("a: 1\n---\n---\n# comment\n---\n- x\n- z\n---\nplain\n");
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ(ToJson((*docs)[0]), R"({"a":1})");
  EXPECT_EQ(ToJson((*docs)[1]), R"(["x","z"])");
  EXPECT_EQ(ToJson((*docs)[2]), R"("plain")");
  auto empty = ParseYamlStream("");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  auto bad = ParseYamlStream("a: 1\n---\nb: [\n");
  EXPECT_FALSE(bad.ok());
}

TEST(ParseYamlToJson, JsonIsYaml) {
  EXPECT_EQ(Y2J(R"({"kind": "Pod", "spec": {"n": [1, 2.5, true, null, "s"]}})"),
            R"({"kind":"Pod","spec":{"n":[1,2.5,true,null,"s"]}})");
}

TEST(ParseYamlToJson, InvalidUtf8AndControlCharacters) {
  auto r1 = ParseYamlToJson("a: \xff\xfe\n");
  ASSERT_FALSE(r1.ok());
  EXPECT_NE(r1.status().message().find("line 1, column 4"), std::string::npos)
      << r1.status().message();
  auto r2 = ParseYamlToJson("a: b\nc: \"\xc3\"\n");
  ASSERT_FALSE(r2.ok());
  EXPECT_NE(r2.status().message().find("line 2"), std::string::npos) << r2.status().message();
  auto r3 = ParseYamlToJson(std::string("a: b\0c", 6));
  EXPECT_FALSE(r3.ok());
  // BOM is accepted, multibyte text too.
  EXPECT_EQ(Y2J("\xef\xbb\xbf"
                "a: 日本"),
            R"({"a":"日本"})");
}

TEST(ParseYamlToJson, DepthLimit) {
  auto flow = [](int depth) { return std::string(depth, '[') + std::string(depth, ']'); };
  EXPECT_TRUE(ParseYamlToJson(flow(100)).ok());
  auto r = ParseYamlToJson(flow(101));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(r.status().message().find("nesting depth exceeds the maximum of 100"),
            std::string::npos);
  EXPECT_TRUE(ParseYamlToJson("a:\n  b:\n    c: 1\n", 3).ok());
  EXPECT_FALSE(ParseYamlToJson("a:\n  b:\n    c: 1\n", 2).ok());
  // Alias expansion counts towards the depth.
  EXPECT_FALSE(ParseYamlToJson("a: &a [[1]]\nb: [[*a]]\n", 4).ok());
  EXPECT_TRUE(ParseYamlToJson("a: &a [[1]]\nb: [[*a]]\n", 5).ok());
}

TEST(ParseYamlToJson, PathologicalNestingDoesNotCrash) {
  const int kDeep = 100000;
  for (const std::string& input : {
           std::string(kDeep, '['),                            // unterminated flow sequences
           std::string(kDeep, '[') + std::string(kDeep, ']'),  // terminated
           std::string(kDeep, '{'),                            // flow maps
       }) {
    auto r = ParseYamlToJson(input);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  }
  // Block sequences nested on one line: "- - - - ... x".
  std::string dashes;
  for (int i = 0; i < kDeep; ++i) dashes += "- ";
  dashes += "x\n";
  auto r = ParseYamlToJson(dashes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kResourceExhausted) << r.status().ToString();
  // Indentation-nested maps (1000 levels keeps the input small).
  std::string maps;
  for (int i = 0; i < 1000; ++i) maps += std::string(static_cast<std::size_t>(i), ' ') + "k:\n";
  auto r2 = ParseYamlToJson(maps);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kResourceExhausted);
}

TEST(ToYaml, RoundTrips) {
  const char* json =
      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","labels":{}},"data":{"yes":"no","n":"42",)"
      R"("e":"","multi":"a\nb","quote":"it's \"q\"","colon":"a: b","list":[1,2.5,true,null,[],{}],)"
      R"("nested":[[1,2],{"a":[{"b":1,"c":[3]}]}],"lead":"-x","space":" x","tilde":"~","merge":"<<"}})";
  auto doc = ParseJson(json);
  ASSERT_TRUE(doc.ok());
  std::string yaml = ToYaml(*doc);
  auto back = ParseYamlToJson(yaml);
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << yaml;
  EXPECT_EQ(ToJson(*back), json) << yaml;
  EXPECT_NE(yaml.find("apiVersion: v1\n"), std::string::npos) << yaml;
  EXPECT_EQ(ToYaml(*ParseJson("\"s\"")), "s\n");
}

}  // namespace
}  // namespace rc::apimachinery
