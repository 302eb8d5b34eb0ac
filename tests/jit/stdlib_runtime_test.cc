// stdlib/runtime: the rc_* C functions called directly, as compiled code calls them.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "rc/stdlib/runtime.h"

extern "C" {
#define P void*
#define I int64_t
#define D double
#define B uint8_t
#define W int32_t
#define V void
// Prototypes from the ABI table, with untyped pointers (what compiled code sees).
#define RC_RT(name, result, params) result name params;
#include "rc/stdlib/runtime_abi.def"
#undef RC_RT
#undef P
#undef I
#undef D
#undef B
#undef W
#undef V
}

namespace rc::rt {
namespace {

class RuntimeTest : public ::testing::Test {
 protected:
  rc_value* J(const std::string& json) {
    rc_value* v = ParseJson(&ctx_, json);
    EXPECT_NE(v, nullptr) << json;
    return v;
  }
  rc_value* S(const std::string& s) {
    return static_cast<rc_value*>(rc_new_string(&ctx_, const_cast<char*>(s.data()), static_cast<int64_t>(s.size())));
  }
  static std::string Str(void* v) {
    const char* d = static_cast<const char*>(rc_str_data(v));
    return std::string(d, static_cast<size_t>(rc_str_len(v)));
  }
  static std::string Json(void* v) { return ToJson(static_cast<rc_value*>(v)); }
  void* Get(void* obj, const char* key) { return rc_get(obj, const_cast<char*>(key), static_cast<int64_t>(strlen(key))); }

  rc_ctx ctx_;
};

// ---- reading ----

TEST_F(RuntimeTest, GetAndScalarReads) {
  rc_value* o = J(R"({"a":1,"b":2.5,"c":true,"d":"x","n":null,"o":{"k":[1,2]}})");
  EXPECT_EQ(rc_as_int(Get(o, "a"), -1), 1);
  EXPECT_DOUBLE_EQ(rc_as_float(Get(o, "b"), -1), 2.5);
  EXPECT_DOUBLE_EQ(rc_as_float(Get(o, "a"), -1), 1.0);
  EXPECT_EQ(rc_as_bool(Get(o, "c"), 0), 1);
  EXPECT_EQ(Str(Get(o, "d")), "x");
  EXPECT_EQ(Get(o, "missing"), nullptr);
  EXPECT_EQ(Get(Get(o, "d"), "x"), nullptr) << "get on a non-object";
  EXPECT_EQ(Get(nullptr, "x"), nullptr);
  EXPECT_TRUE(rc_is_null(Get(o, "n")));
  EXPECT_TRUE(rc_is_null(nullptr));
  EXPECT_FALSE(rc_is_null(Get(o, "a")));
  // Defaults for absent and mistyped values.
  EXPECT_EQ(rc_as_int(nullptr, 7), 7);
  EXPECT_EQ(rc_as_int(Get(o, "c"), 7), 7);
  EXPECT_DOUBLE_EQ(rc_as_float(Get(o, "d"), 1.5), 1.5);
  EXPECT_EQ(rc_as_bool(Get(o, "a"), 1), 1);
  // Strings of absent values are empty, never null.
  EXPECT_EQ(Str(nullptr), "");
  EXPECT_STREQ(static_cast<const char*>(rc_str_data(nullptr)), "");
  // Lists and maps.
  void* k = Get(Get(o, "o"), "k");
  EXPECT_EQ(rc_list_len(k), 2);
  EXPECT_EQ(rc_as_int(rc_list_at(&ctx_, k, 1), 0), 2);
  EXPECT_EQ(rc_list_len(nullptr), 0);
  EXPECT_EQ(rc_map_len(o), 6);
  EXPECT_EQ(Str(rc_map_key_at(&ctx_, o, 3)), "d");
  EXPECT_EQ(Str(rc_map_value_at(o, 3)), "x");
  EXPECT_EQ(rc_map_value_at(o, 6), nullptr);
  EXPECT_EQ(rc_map_len(k), 0) << "a list is not a map";
}

TEST_F(RuntimeTest, InputsAreReadInPlace) {
  // An object from the host is read without copying: field pointers point into it.
  rapidjson::Document doc;
  doc.Parse(R"({"spec":{"replicas":3}})");
  void* spec = Get(&doc, "spec");
  EXPECT_EQ(spec, &doc["spec"]);
  // Building from it copies into the arena; the input does not change.
  void* obj = rc_new_object(&ctx_);
  rc_object_set(&ctx_, obj, const_cast<char*>("spec"), 4, spec);
  rc_object_set(&ctx_, Get(obj, "spec"), const_cast<char*>("replicas"), 8, rc_new_int(&ctx_, 5));
  EXPECT_EQ(Json(obj), R"({"spec":{"replicas":5}})");
  EXPECT_EQ(ToJson(&doc), R"({"spec":{"replicas":3}})");
}

TEST_F(RuntimeTest, TimeDurationQuantity) {
  EXPECT_EQ(rc_as_duration(&ctx_, S("1m30s")), 90'000'000'000LL);
  EXPECT_EQ(rc_as_duration(&ctx_, S("1.5h")), 5'400'000'000'000LL);
  EXPECT_EQ(rc_as_duration(&ctx_, S("250ms")), 250'000'000LL);
  EXPECT_EQ(Str(rc_box_duration(&ctx_, 90'000'000'000LL)), "1m30s");
  EXPECT_EQ(Str(rc_box_duration(&ctx_, 3'600'000'000'000LL)), "1h0m0s");
  EXPECT_EQ(rc_as_timestamp(&ctx_, S("2024-01-02T03:04:05Z")), 1704164645);
  EXPECT_EQ(rc_as_timestamp(&ctx_, S("2024-01-02T04:04:05+01:00")), 1704164645);
  EXPECT_EQ(Str(rc_box_timestamp(&ctx_, 1704164645)), "2024-01-02T03:04:05Z");
  EXPECT_EQ(rc_as_quantity(&ctx_, S("500m")), 500);
  EXPECT_EQ(rc_as_quantity(&ctx_, S("2")), 2000);
  EXPECT_EQ(rc_as_quantity(&ctx_, S("1Ki")), 1024000);
  EXPECT_EQ(rc_as_quantity(&ctx_, J("3")), 3000);
  EXPECT_EQ(Str(rc_box_quantity(&ctx_, 1500)), "1500m");
  EXPECT_EQ(Str(rc_box_quantity(&ctx_, 2000)), "2");
  ctx_.now_seconds = 1700000000;
  EXPECT_EQ(rc_now(&ctx_), 1700000000);
  ctx_.now_seconds = 0;
  EXPECT_GT(rc_now(&ctx_), 1700000000);
  EXPECT_EQ(Str(rc_human_duration(&ctx_, 3LL * 3600 * 1'000'000'000)), "3h");
}

// ---- building ----

TEST_F(RuntimeTest, BuildObjectsAndLists) {
  void* o = rc_new_object(&ctx_);
  rc_object_set(&ctx_, o, const_cast<char*>("name"), 4, rc_new_string(&ctx_, const_cast<char*>("web"), 3));
  rc_object_set(&ctx_, o, const_cast<char*>("n"), 1, rc_new_int(&ctx_, 3));
  rc_object_set(&ctx_, o, const_cast<char*>("f"), 1, rc_new_float(&ctx_, 0.5));
  rc_object_set(&ctx_, o, const_cast<char*>("b"), 1, rc_new_bool(&ctx_, 1));
  rc_object_set(&ctx_, o, const_cast<char*>("z"), 1, rc_new_null(&ctx_));
  rc_object_set(&ctx_, o, const_cast<char*>("skipped"), 7, nullptr);  // absent: not set
  rc_object_set(&ctx_, o, const_cast<char*>("n"), 1, rc_new_int(&ctx_, 4));  // overwrite
  void* l = rc_new_list(&ctx_);
  rc_list_push(&ctx_, l, rc_new_int(&ctx_, 1));
  rc_list_push(&ctx_, l, S("two"));
  rc_list_push(&ctx_, l, nullptr);
  rc_list_push(&ctx_, nullptr, S("ignored"));
  rc_object_set(&ctx_, o, const_cast<char*>("l"), 1, l);
  EXPECT_EQ(Json(o), R"({"name":"web","n":4,"f":0.5,"b":true,"z":null,"l":[1,"two",null]})");
  // set copies: changing the list afterwards does not change the object
  rc_list_push(&ctx_, l, rc_new_int(&ctx_, 9));
  EXPECT_EQ(Json(Get(o, "l")), R"([1,"two",null])");
}

TEST_F(RuntimeTest, DeepCopyIsIndependent) {
  rc_value* src = J(R"({"a":{"b":[1,{"c":2}]}})");
  void* copy = rc_copy(&ctx_, src);
  EXPECT_NE(copy, src);
  EXPECT_TRUE(rc_value_eq(copy, src));
  rc_object_set(&ctx_, Get(copy, "a"), const_cast<char*>("x"), 1, rc_new_int(&ctx_, 1));
  EXPECT_EQ(ToJson(src), R"({"a":{"b":[1,{"c":2}]}})");
  EXPECT_EQ(rc_copy(&ctx_, nullptr), nullptr);
}

TEST_F(RuntimeTest, MergeIsJsonMergePatch) {
  rc_value* base = J(R"({"a":1,"b":{"c":2,"d":3},"l":[1,2],"k":"v"})");
  rc_value* patch = J(R"({"a":null,"b":{"d":4,"e":{"f":null,"g":1}},"l":[3],"n":"new"})");
  void* out = rc_merge(&ctx_, base, patch);
  EXPECT_EQ(Json(out), R"({"b":{"c":2,"d":4,"e":{"g":1}},"l":[3],"k":"v","n":"new"})");
  EXPECT_EQ(ToJson(base), R"({"a":1,"b":{"c":2,"d":3},"l":[1,2],"k":"v"})") << "inputs unchanged";
  EXPECT_EQ(Json(rc_merge(&ctx_, nullptr, J(R"({"x":1})"))), R"({"x":1})");
  EXPECT_EQ(Json(rc_merge(&ctx_, J(R"({"x":1})"), nullptr)), R"({"x":1})");
  EXPECT_EQ(Json(rc_merge(&ctx_, J(R"({"x":1})"), J("[1]"))), "[1]");
  EXPECT_EQ(Json(rc_merge(&ctx_, J("5"), J(R"({"x":null,"y":2})"))), R"({"y":2})");
  // RFC 7386 appendix examples.
  EXPECT_EQ(Json(rc_merge(&ctx_, J(R"({"a":[{"b":"c"}]})"), J(R"({"a":[1]})"))), R"({"a":[1]})");
  EXPECT_EQ(Json(rc_merge(&ctx_, J(R"({"e":null})"), J(R"({"a":1})"))), R"({"e":null,"a":1})");
}

// ---- strings ----

TEST_F(RuntimeTest, Strings) {
  EXPECT_EQ(Str(rc_str_concat(&ctx_, S("ab"), S("cd"))), "abcd");
  EXPECT_EQ(Str(rc_str_concat(&ctx_, nullptr, S("cd"))), "cd");
  EXPECT_EQ(rc_str_cmp(S("a"), S("b")), -1);
  EXPECT_EQ(rc_str_cmp(S("b"), S("b")), 0);
  EXPECT_EQ(rc_str_cmp(S("ba"), S("b")), 1);
  EXPECT_TRUE(rc_str_eq(S("x"), S("x")));
  EXPECT_FALSE(rc_str_eq(S("x"), S("y")));
  EXPECT_TRUE(rc_str_eq(nullptr, S("")));
  EXPECT_TRUE(rc_str_contains(S("hello"), S("ell")));
  EXPECT_FALSE(rc_str_contains(S("hello"), S("lle")));
  EXPECT_TRUE(rc_str_starts_with(S("hello"), S("he")));
  EXPECT_TRUE(rc_str_ends_with(S("hello"), S("llo")));
  EXPECT_FALSE(rc_str_ends_with(S("lo"), S("hello")));
  EXPECT_EQ(Str(rc_str_lower(&ctx_, S("AbC"))), "abc");
  EXPECT_EQ(Str(rc_str_upper(&ctx_, S("AbC"))), "ABC");
  EXPECT_EQ(Str(rc_str_trim(&ctx_, S(" \t x y \n"))), "x y");
  EXPECT_EQ(Json(rc_str_split(&ctx_, S("a,b,,c"), S(","))), R"(["a","b","","c"])");
  EXPECT_EQ(Json(rc_str_split(&ctx_, S("abc"), S(""))), R"(["a","b","c"])");
  EXPECT_EQ(Str(rc_list_join(&ctx_, J(R"(["a",1,true])"), S("-"))), "a-1-true");
  EXPECT_EQ(Str(rc_str_replace(&ctx_, S("a.b.c"), S("."), S("::"))), "a::b::c");
  EXPECT_EQ(Str(rc_int_to_string(&ctx_, -42)), "-42");
  EXPECT_EQ(Str(rc_float_to_string(&ctx_, 1.5)), "1.5");
  EXPECT_EQ(Str(rc_float_to_string(&ctx_, 2.0)), "2");
  EXPECT_EQ(Str(rc_bool_to_string(&ctx_, 1)), "true");
  EXPECT_EQ(Str(rc_bool_to_string(&ctx_, 0)), "false");
  EXPECT_EQ(Str(rc_to_string(&ctx_, J(R"({"a":1})"))), R"({"a":1})");
  EXPECT_EQ(rc_str_len(S("héllo")), 6) << "bytes";
  EXPECT_EQ(rc_parse_int(&ctx_, S("-17")), -17);
  EXPECT_DOUBLE_EQ(rc_parse_float(&ctx_, S("2.25")), 2.25);
}

TEST_F(RuntimeTest, InterpolationConcatenatesTexts) {
  const rc_value* parts[] = {S("pod "), static_cast<rc_value*>(rc_new_int(&ctx_, 3)), S(" ready="),
                             static_cast<rc_value*>(rc_new_bool(&ctx_, 1)), nullptr,
                             static_cast<rc_value*>(rc_new_float(&ctx_, 0.25)), J(R"(["x"])")};
  EXPECT_EQ(Str(rc_str_concat_n(&ctx_, parts, 7)), R"(pod 3 ready=true0.25["x"])");
  EXPECT_EQ(Str(rc_str_concat_n(&ctx_, parts, 0)), "");
}

TEST_F(RuntimeTest, JsonTextRoundTrip) {
  const char* text = R"({"a":[1,2.5,"x",null,true],"b":{}})";
  void* v = rc_json_parse(&ctx_, const_cast<char*>(text), static_cast<int64_t>(strlen(text)));
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(Str(rc_json_text(&ctx_, v)), text);
  EXPECT_EQ(Str(rc_json_text(&ctx_, nullptr)), "null");
  EXPECT_EQ(rc_json_parse(&ctx_, const_cast<char*>("{"), 1), nullptr);
  EXPECT_EQ(rc_json_parse(&ctx_, const_cast<char*>("1 2"), 3), nullptr);
  EXPECT_NE(rc_json_parse(&ctx_, const_cast<char*>(" [] "), 4), nullptr);
  EXPECT_EQ(ParseJson(&ctx_, "nope"), nullptr);
}

// ---- equality and lists ----

TEST_F(RuntimeTest, DeepEquality) {
  EXPECT_TRUE(rc_value_eq(J(R"({"a":[1,{"b":"c"}],"d":2})"), J(R"({"d":2.0,"a":[1,{"b":"c"}]})")));
  EXPECT_FALSE(rc_value_eq(J(R"({"a":[1,2]})"), J(R"({"a":[2,1]})")));
  EXPECT_FALSE(rc_value_eq(J(R"({"a":1})"), J(R"({"a":1,"b":1})")));
  EXPECT_TRUE(rc_value_eq(J("1"), J("1.0")));
  EXPECT_TRUE(rc_value_eq(nullptr, J("null")));
  EXPECT_TRUE(rc_list_contains(J(R"([1,"a",{"x":1}])"), J(R"({"x":1})")));
  EXPECT_FALSE(rc_list_contains(J(R"([1,"a"])"), J(R"("b")")));
  EXPECT_EQ(Json(rc_list_concat(&ctx_, J("[1]"), J("[2,3]"))), "[1,2,3]");
  EXPECT_EQ(Json(rc_list_take(&ctx_, J("[1,2,3]"), 2)), "[1,2]");
  EXPECT_EQ(Json(rc_list_reverse(&ctx_, J("[1,2,3]"))), "[3,2,1]");
  EXPECT_EQ(Json(rc_list_sort_by_keys(&ctx_, J(R"(["a","b","c"])"), J("[3,1,2]"))), R"(["b","c","a"])");
  EXPECT_EQ(rc_len_any(J(R"({"a":1})")), 1);
  EXPECT_EQ(rc_len_any(J(R"("abc")")), 3);
}

// ---- selectors ----

TEST_F(RuntimeTest, LabelSelectorObjects) {
  rc_value* labels = J(R"({"app":"web","tier":"front","env":"prod"})");
  auto match = [&](const char* selector) { return rc_labels_match(&ctx_, J(selector), labels) != 0; };
  EXPECT_TRUE(match(R"({"matchLabels":{"app":"web"}})"));
  EXPECT_FALSE(match(R"({"matchLabels":{"app":"db"}})"));
  EXPECT_TRUE(match(R"({"matchExpressions":[{"key":"env","operator":"In","values":["prod","staging"]}]})"));
  EXPECT_FALSE(match(R"({"matchExpressions":[{"key":"env","operator":"NotIn","values":["prod"]}]})"));
  EXPECT_TRUE(match(R"({"matchExpressions":[{"key":"tier","operator":"Exists"}]})"));
  EXPECT_TRUE(match(R"({"matchExpressions":[{"key":"gpu","operator":"DoesNotExist"}]})"));
  EXPECT_FALSE(match(R"({"matchLabels":{"app":"web"},"matchExpressions":[{"key":"gpu","operator":"Exists"}]})"));
  EXPECT_TRUE(match("{}")) << "an empty selector matches everything";
  EXPECT_FALSE(rc_labels_match(&ctx_, nullptr, labels)) << "an absent selector matches nothing";
  EXPECT_EQ(Str(rc_selector_to_string(&ctx_, J(R"({"matchLabels":{"app":"web"}})"))), "app=web");
}

TEST_F(RuntimeTest, SelectorStrings) {
  rc_value* labels = J(R"({"app":"web","tier":"front","env":"a"})");
  auto match = [&](const std::string& s) { return rc_selector_string_match(&ctx_, S(s), labels) != 0; };
  EXPECT_TRUE(match("app=web,tier!=db,env in (a,b),!x"));
  EXPECT_FALSE(match("app=web,tier!=front"));
  EXPECT_FALSE(match("env notin (a)"));
  EXPECT_TRUE(match("tier"));
  EXPECT_TRUE(match(""));
  EXPECT_TRUE(match("app==web"));
  // Cached: a second context sees the same parse (process-wide cache), results unchanged.
  rc_ctx other;
  EXPECT_TRUE(rc_selector_string_match(&other, S("app=web,tier!=db,env in (a,b),!x"), labels));
}

// ---- hashing ----

TEST_F(RuntimeTest, HashIsStableAndOrderIndependent) {
  int64_t h1 = rc_hash(J(R"({"a":1,"b":{"c":[1,2],"d":"x"}})"));
  int64_t h2 = rc_hash(J(R"({"b":{"d":"x","c":[1,2]},"a":1.0})"));
  EXPECT_EQ(h1, h2);
  EXPECT_NE(h1, rc_hash(J(R"({"a":2,"b":{"c":[1,2],"d":"x"}})")));
  EXPECT_GE(h1, 0);
  EXPECT_LE(h1, 0xffffffffLL);
  // FNV-1a 32 of the canonical text: "null" hashes as the 4 bytes n,u,l,l.
  uint32_t expected = 2166136261u;
  for (char c : std::string("null")) { expected ^= static_cast<unsigned char>(c); expected *= 16777619u; }
  EXPECT_EQ(rc_hash(nullptr), static_cast<int64_t>(expected));
  EXPECT_EQ(CanonicalJson(J(R"({"b":1,"a":[{"d":1,"c":2}]})")), R"({"a":[{"c":2,"d":1}],"b":1})");
}

TEST_F(RuntimeTest, PodTemplateHashEncoding) {
  // SafeEncodeString over the decimal FNV-1a 32 text: digit d maps to alphanums[('0'+d) % 27].
  rc_value* tmpl = J(R"({"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"c","image":"nginx"}]}})");
  std::string h = Str(rc_pod_template_hash(&ctx_, tmpl));
  uint32_t fnv = static_cast<uint32_t>(rc_hash(tmpl));
  std::string digits = std::to_string(fnv);
  const std::string alphabet = "bcdfghjklmnpqrstvwxz2456789";
  std::string expected;
  for (char c : digits) expected += alphabet[static_cast<unsigned char>(c) % 27];
  EXPECT_EQ(h, expected);
  // Digits 0..9 are bytes 48..57: 48 % 27 = 21 -> '4', ..., 57 % 27 = 3 -> 'f'.
  EXPECT_EQ(expected.find_first_not_of("456789bcdf"), std::string::npos);
  EXPECT_EQ(Str(rc_pod_template_hash_n(&ctx_, tmpl, -1)), h);
  std::string with_collision = Str(rc_pod_template_hash_n(&ctx_, tmpl, 1));
  EXPECT_NE(with_collision, h);
  EXPECT_EQ(Str(rc_pod_template_hash_n(&ctx_, tmpl, 1)), with_collision) << "stable";
  // The collision count is hashed as 8 little-endian bytes after the template.
  uint32_t h2 = fnv;
  const unsigned char count_bytes[8] = {1, 0, 0, 0, 0, 0, 0, 0};
  for (unsigned char b : count_bytes) { h2 ^= b; h2 *= 16777619u; }
  std::string expected2;
  for (char c : std::to_string(h2)) expected2 += alphabet[static_cast<unsigned char>(c) % 27];
  EXPECT_EQ(with_collision, expected2);
}

// ---- traps ----

struct TrapCall {
  rc_ctx* ctx;
  void* list;
  int64_t index;
  void* result;
};

TEST_F(RuntimeTest, TrapsReturnAStatusThroughInvoke) {
  TrapCall call{&ctx_, J("[1,2]"), 3, nullptr};
  Status st = Invoke(&ctx_, [](void* p) {
    auto* c = static_cast<TrapCall*>(p);
    c->result = rc_list_at(c->ctx, c->list, c->index);
  }, &call);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.message(), "index 3 out of range for a list of 2");
  EXPECT_EQ(ctx_.trap_code, RC_TRAP_INDEX);
  EXPECT_EQ(call.result, nullptr);
  // The same context works again afterwards.
  call.index = 1;
  ASSERT_TRUE(Invoke(&ctx_, [](void* p) {
    auto* c = static_cast<TrapCall*>(p);
    c->result = rc_list_at(c->ctx, c->list, c->index);
  }, &call).ok());
  EXPECT_EQ(rc_as_int(call.result, 0), 2);
  EXPECT_EQ(ctx_.trap_code, -1);
}

TEST_F(RuntimeTest, EveryTrapKind) {
  struct Case {
    const char* expected;
    int32_t code;
    std::function<void(rc_ctx*)> call;
  };
  // Arguments are built up front: nothing with a destructor may be alive when a trap jumps.
  rc_value* fail_message = S("replicas must be positive");
  rc_value* s12x = S("12x");
  rc_value* parsecs = S("5 parsecs");
  rc_value* yesterday = S("yesterday");
  rc_value* bad_quantity = S("1.2.3");
  rc_value* bad_selector = S("app in (");
  rc_value* small_map = J(R"({"a":1})");
  const Case cases[] = {
      {"division by zero", RC_TRAP_DIV_ZERO, [](rc_ctx* c) { rc_trap_code(c, RC_TRAP_DIV_ZERO); }},
      {"integer overflow", RC_TRAP_OVERFLOW, [](rc_ctx* c) { rc_trap_code(c, RC_TRAP_OVERFLOW); }},
      {"replicas must be positive", RC_TRAP_FAIL, [=](rc_ctx* c) { rc_trap(c, fail_message); }},
      {"custom", 42, [](rc_ctx* c) { rc_trap_with(c, 42, const_cast<char*>("custom!"), 6); }},
      {"not an integer: \"12x\"", RC_TRAP_INVALID_VALUE, [=](rc_ctx* c) { rc_parse_int(c, s12x); }},
      {"not a number: \"\"", RC_TRAP_INVALID_VALUE, [](rc_ctx* c) { rc_parse_float(c, nullptr); }},
      {"invalid duration \"5 parsecs\"", RC_TRAP_INVALID_VALUE, [=](rc_ctx* c) { rc_as_duration(c, parsecs); }},
      {"invalid timestamp \"yesterday\"", RC_TRAP_INVALID_VALUE, [=](rc_ctx* c) { rc_as_timestamp(c, yesterday); }},
      {"invalid quantity 1.2.3", RC_TRAP_INVALID_VALUE, [=](rc_ctx* c) { rc_as_quantity(c, bad_quantity); }},
      {"invalid label selector \"app in (\"", RC_TRAP_BAD_SELECTOR,
       [=](rc_ctx* c) { rc_selector_string_match(c, bad_selector, nullptr); }},
      {"entry 5 out of range for a map of 1", RC_TRAP_INDEX, [=](rc_ctx* c) { rc_map_key_at(c, small_map, 5); }},
      {"no effect host: get", RC_TRAP_EFFECT, [](rc_ctx* c) { rc_effect_get(c, nullptr, nullptr, nullptr, nullptr); }},
  };
  for (const Case& tc : cases) {
    struct Data {
      const Case* tc;
      rc_ctx* ctx;
    } data{&tc, &ctx_};
    Status st = Invoke(&ctx_, [](void* p) {
      auto* d = static_cast<Data*>(p);
      d->tc->call(d->ctx);
      ADD_FAILURE() << "did not trap: " << d->tc->expected;
    }, &data);
    ASSERT_FALSE(st.ok()) << tc.expected;
    EXPECT_EQ(st.message().rfind(tc.expected, 0), 0u) << st.message();
    EXPECT_EQ(ctx_.trap_code, tc.code) << tc.expected;
  }
}

TEST_F(RuntimeTest, NestedInvokeRestoresTheOuterTarget) {
  struct Data {
    rc_ctx* ctx;
    Status inner;
  } data{&ctx_, Status::Ok()};
  Status outer = Invoke(&ctx_, [](void* p) {
    auto* d = static_cast<Data*>(p);
    d->inner = Invoke(d->ctx, [](void* q) { rc_trap_code(static_cast<rc_ctx*>(q), RC_TRAP_DIV_ZERO); }, d->ctx);
    rc_trap_code(d->ctx, RC_TRAP_OVERFLOW);  // lands in the outer Invoke
  }, &data);
  EXPECT_EQ(data.inner.message(), "division by zero");
  EXPECT_EQ(outer.message(), "integer overflow");
}

TEST_F(RuntimeTest, InvokeFnWithALambda) {
  int64_t got = 0;
  rc_value* list = J("[10,20]");
  auto ok = [&] { got = rc_as_int(rc_list_at(&ctx_, list, 1), 0); };
  EXPECT_TRUE(InvokeFn(&ctx_, ok).ok());
  EXPECT_EQ(got, 20);
  auto bad = [&] { got = rc_as_int(rc_list_at(&ctx_, list, -1), 0); };
  Status st = InvokeFn(&ctx_, bad);
  EXPECT_EQ(st.message(), "index -1 out of range for a list of 2");
}

TEST_F(RuntimeTest, TrapsOnManyThreadsAreIndependent) {
  std::atomic<int> traps{0}, oks{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        rc_ctx ctx;
        struct D {
          rc_ctx* ctx;
          int64_t index;
          rc_value* list;
        } d{&ctx, (i + t) % 3, ParseJson(&ctx, "[1,2]")};
        Status st = Invoke(&ctx, [](void* p) {
          auto* x = static_cast<D*>(p);
          rc_list_at(x->ctx, x->list, x->index);
        }, &d);
        (st.ok() ? oks : traps).fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(traps.load() + oks.load(), 2000);
  EXPECT_GT(traps.load(), 600);
  EXPECT_GT(oks.load(), 1300);
}

// ---- effects ----

class FakeHost : public EffectHost {
 public:
  const rc_value* Get(const std::string& api_version, const std::string& kind, const std::string& name,
                      const std::string& ns) override {
    gets.push_back(api_version + "/" + kind + "/" + ns + "/" + name);
    return &object;
  }
  std::vector<const rc_value*> List(const std::string&, const std::string&, const std::string&, const rc_value*,
                                    const rc_value*, const rc_value*) override {
    return {&object, &object};
  }
  Status Apply(Write op, const rc_value& obj, const rc_value*) override {
    if (op == Write::kDelete) return Status::Conflict("the object has been modified");
    writes.push_back(ToJson(&obj));
    return Status::Ok();
  }
  void Emit(const rc_value&, const std::string& type, const std::string& reason, const std::string&) override {
    events.push_back(type + " " + reason);
  }
  rapidjson::Document object;
  std::vector<std::string> gets, writes, events;
};

TEST_F(RuntimeTest, EffectsGoThroughTheHost) {
  FakeHost host;
  host.object.Parse(R"({"kind":"Pod"})");
  ctx_.host = &host;
  EXPECT_EQ(rc_effect_get(&ctx_, S("v1"), S("Pod"), S("p"), S("ns")), &host.object);
  EXPECT_EQ(host.gets[0], "v1/Pod/ns/p");
  EXPECT_EQ(Json(rc_effect_list(&ctx_, S("v1"), S("Pod"), S("ns"), nullptr, nullptr, nullptr)),
            R"([{"kind":"Pod"},{"kind":"Pod"}])");
  rc_effect_write(&ctx_, 1, J(R"({"kind":"Pod","x":1})"), nullptr);
  EXPECT_EQ(host.writes[0], R"({"kind":"Pod","x":1})");
  rc_effect_emit(&ctx_, &host.object, S("Normal"), S("Created"), S("m"));
  EXPECT_EQ(host.events[0], "Normal Created");
  rc_requeue_after(&ctx_, 5);
  EXPECT_EQ(ctx_.requeue_after_ns, 5);
  // A failed write traps with the host's message.
  struct D {
    rc_ctx* ctx;
    rc_value* obj;
  } d{&ctx_, J("{}")};
  Status st = Invoke(&ctx_, [](void* p) {
    auto* x = static_cast<D*>(p);
    rc_effect_write(x->ctx, 4, x->obj, nullptr);
  }, &d);
  EXPECT_EQ(st.message(), "the object has been modified");
  EXPECT_EQ(ctx_.trap_code, RC_TRAP_EFFECT);
}

TEST_F(RuntimeTest, ResetFreesTheArena) {
  for (int i = 0; i < 1000; ++i) rc_new_string(&ctx_, const_cast<char*>("0123456789012345678901234567890123456789"), 40);
  EXPECT_GT(ctx_.arena.Size(), 40000u);
  ctx_.requeue_after_ns = 3;
  ctx_.now_seconds = 99;
  ctx_.Reset();
  EXPECT_LT(ctx_.arena.Size(), 1000u);
  EXPECT_EQ(ctx_.requeue_after_ns, -1);
  EXPECT_EQ(ctx_.now_seconds, 99);
}

TEST(RuntimeSymbols, EveryAbiFunctionHasAnAddress) {
  const auto& symbols = RuntimeSymbols();
  EXPECT_GT(symbols.size(), 60u);
  for (const auto& [name, address] : symbols) {
    EXPECT_EQ(std::string(name).rfind("rc_", 0), 0u) << name;
    EXPECT_NE(address, nullptr) << name;
  }
}

}  // namespace
}  // namespace rc::rt
