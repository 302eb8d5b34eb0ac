// Defaulting, validation, unknown fields and OpenAPI emission over a hand-built schema.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rc/schema/algorithms.h"

namespace rc::schema {
namespace {

TypeRef Scalar(TypeKind k, Constraints c = {}) {
  auto t = std::make_shared<Type>();
  t->kind = k;
  t->constraints = c;
  return t;
}

// Widget: spec { size: int = 1 @min(1) @max(10); color: Color = "Blue"; owner: string @required
// @format(dns1123Label); tags: [string] @maxItems(2); ports: [Port] keyed by "port"; id @immutable }
ResourceSchema WidgetSchema() {
  auto color = std::make_shared<Type>();
  color->kind = TypeKind::kEnum;
  color->name = "Color";
  color->enum_values = {"Red", "Blue"};
  auto port = std::make_shared<Type>();
  port->kind = TypeKind::kStruct;
  port->name = "Port";
  port->fields.push_back({"port", Scalar(TypeKind::kInt), true, false, std::nullopt, nullptr, ""});
  port->fields.push_back({"protocol", Scalar(TypeKind::kString), false, false, std::string("\"TCP\""), nullptr, ""});
  auto ports = std::make_shared<Type>();
  ports->kind = TypeKind::kList;
  ports->element = port;
  ports->list_map_keys = {"port"};
  Constraints tag_c;
  tag_c.max_items = 2;
  auto tags = std::make_shared<Type>();
  tags->kind = TypeKind::kList;
  tags->element = Scalar(TypeKind::kString);
  tags->constraints = tag_c;
  Constraints size_c;
  size_c.minimum = 1;
  size_c.maximum = 10;
  Constraints owner_c;
  owner_c.format = StringFormat::kDns1123Label;
  auto spec = std::make_shared<Type>();
  spec->kind = TypeKind::kStruct;
  spec->name = "WidgetSpec";
  spec->fields.push_back({"size", Scalar(TypeKind::kInt, size_c), false, false, std::string("1"), nullptr, ""});
  spec->fields.push_back({"color", color, false, false, std::string("\"Blue\""), nullptr, ""});
  spec->fields.push_back({"owner", Scalar(TypeKind::kString, owner_c), true, false, std::nullopt, nullptr, ""});
  spec->fields.push_back({"tags", tags, false, false, std::nullopt, nullptr, ""});
  spec->fields.push_back({"ports", ports, false, false, std::nullopt, nullptr, ""});
  spec->fields.push_back({"id", Scalar(TypeKind::kString), false, true, std::nullopt, nullptr, ""});
  spec->fields.push_back({"label", Scalar(TypeKind::kString), false, false, std::nullopt,
                          [](const std::string& parent) -> std::optional<std::string> {
                            return parent.find("\"owner\":\"team-a\"") != std::string::npos ? std::optional<std::string>("\"A\"") : std::nullopt;
                          }, ""});
  spec->rules.push_back({"size must be even", "size", [](const void* obj) {
                           auto* v = static_cast<const rapidjson::Value*>(obj);
                           auto m = v->FindMember("size");
                           return m == v->MemberEnd() || m->value.GetInt64() % 2 == 0;
                         }});
  auto root = std::make_shared<Type>();
  root->kind = TypeKind::kStruct;
  root->name = "Widget";
  root->fields.push_back({"spec", spec, true, false, std::string("{}"), nullptr, ""});
  ResourceSchema s;
  s.group = "example.com";
  s.kind = "Widget";
  s.plural = "widgets";
  s.root = root;
  return s;
}

std::string Json(const rapidjson::Value& v) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  v.Accept(w);
  return b.GetString();
}

std::vector<std::string> Errors(const std::string& json, const std::string& old_json = "") {
  auto s = WidgetSchema();
  rapidjson::Document d, old;
  d.Parse(json.c_str());
  if (!old_json.empty()) old.Parse(old_json.c_str());
  std::vector<std::string> out;
  for (auto& v : Validate(s, d, old_json.empty() ? nullptr : &old)) out.push_back(v.field + ": " + v.message);
  return out;
}

TEST(SchemaDefaults, ConstantComputedNestedAndListItems) {
  auto s = WidgetSchema();
  rapidjson::Document d;
  d.Parse(R"({"spec":{"owner":"team-a","ports":[{"port":80},{"port":53,"protocol":"UDP"}]}})");
  ApplyDefaults(*s.root, d, d.GetAllocator());
  EXPECT_EQ(Json(d), R"({"spec":{"owner":"team-a","ports":[{"port":80,"protocol":"TCP"},{"port":53,"protocol":"UDP"}],"size":1,"color":"Blue","label":"A"}})");
  rapidjson::Document empty;
  empty.Parse("{}");
  ApplyDefaults(*s.root, empty, empty.GetAllocator());
  EXPECT_EQ(Json(empty), R"({"spec":{"size":1,"color":"Blue"}})");  // no label: the function declined
}

TEST(SchemaValidate, KubernetesWording) {
  EXPECT_TRUE(Errors(R"({"spec":{"owner":"team-a","size":2}})").empty());
  EXPECT_EQ(Errors(R"({"spec":{"size":2}})"), std::vector<std::string>{"spec.owner: Required value"});
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","size":0}})"),
            std::vector<std::string>{"spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"});
  auto e = Errors(R"({"spec":{"owner":"a","size":12}})");
  ASSERT_FALSE(e.empty());
  EXPECT_EQ(e[0], "spec.size: Invalid value: 12: spec.size in body should be less than or equal to 10");
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","size":3}})"), std::vector<std::string>{"spec.size: Invalid value: 3: size must be even"});
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","size":"2"}})")[0],
            "spec.size: Invalid value: \"2\": spec.size in body must be of type integer: \"2\"");
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","color":"Green"}})")[0],
            "spec.color: Unsupported value: \"Green\": supported values: \"Red\", \"Blue\"");
  EXPECT_EQ(Errors(R"({"spec":{"owner":"Team_A"}})")[0].rfind("spec.owner: Invalid value: \"Team_A\": a lowercase RFC 1123 label", 0), 0u);
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","tags":["x","y","z"]}})")[0], "spec.tags: Too many: 3: must have at most 2 items");
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","ports":[{"port":1},{"port":1}]}})")[0], "spec.ports[1].port: Duplicate value: 1");
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","ports":[{"protocol":"TCP"}]}})")[0], "spec.ports[0].port: Required value");
}

TEST(SchemaValidate, Immutable) {
  EXPECT_TRUE(Errors(R"({"spec":{"owner":"a","id":"x"}})", R"({"spec":{"owner":"a","id":"x"}})").empty());
  EXPECT_EQ(Errors(R"({"spec":{"owner":"a","id":"y"}})", R"({"spec":{"owner":"a","id":"x"}})"),
            std::vector<std::string>{"spec.id: Invalid value: \"y\": field is immutable"});
}

TEST(SchemaUnknownFields, NamesEveryUndeclaredPath) {
  auto s = WidgetSchema();
  rapidjson::Document d;
  d.Parse(R"({"apiVersion":"x","kind":"Widget","metadata":{"zzz":1},"spec":{"owner":"a","sise":1,"ports":[{"port":1,"prot":"x"}]},"extra":true})");
  // metadata is checked against metav1.ObjectMeta, as Kubernetes' strict decoding does.
  EXPECT_EQ(UnknownFields(s, d), (std::vector<std::string>{"metadata.zzz", "spec.sise", "spec.ports[0].prot", "extra"}));
}

TEST(SchemaOpenApi, PropertiesConstraintsAndListKeys) {
  auto s = WidgetSchema();
  rapidjson::Document d;
  d.Parse(OpenApiV3Resource(s).c_str());
  ASSERT_FALSE(d.HasParseError());
  const auto& spec = d["properties"]["spec"];
  EXPECT_EQ(spec["properties"]["size"]["minimum"].GetDouble(), 1);
  EXPECT_EQ(std::string(spec["properties"]["color"]["enum"][1].GetString()), "Blue");
  EXPECT_EQ(std::string(spec["required"][0].GetString()), "owner");
  EXPECT_EQ(std::string(spec["properties"]["ports"]["x-kubernetes-list-type"].GetString()), "map");
  EXPECT_EQ(std::string(spec["properties"]["ports"]["x-kubernetes-patch-merge-key"].GetString()), "port");
  EXPECT_EQ(std::string(d["x-kubernetes-group-version-kind"][0]["kind"].GetString()), "Widget");
  EXPECT_TRUE(d["properties"].HasMember("metadata"));
}

}  // namespace
}  // namespace rc::schema
