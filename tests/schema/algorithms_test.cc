// The generic algorithms over compiled schemas (runtime/schema), on hand-built schemas: defaulting,
// validation with Kubernetes' wording, unknown fields, OpenAPI v3 and strategic-merge-patch keys.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <vector>

#include "rc/schema/algorithms.h"

namespace rc::schema {
namespace {

// ---- schema building helpers ----------------------------------------------------------------

TypeRef T(TypeKind kind, Constraints c = {}) {
  auto t = std::make_shared<Type>();
  t->kind = kind;
  t->constraints = c;
  return t;
}

TypeRef Enum(std::vector<std::string> values) {
  auto t = std::make_shared<Type>();
  t->kind = TypeKind::kEnum;
  t->enum_values = std::move(values);
  return t;
}

TypeRef List(TypeRef element, std::vector<std::string> keys = {}, bool set = false) {
  auto t = std::make_shared<Type>();
  t->kind = TypeKind::kList;
  t->element = std::move(element);
  t->list_map_keys = std::move(keys);
  t->list_is_set = set;
  return t;
}

TypeRef Map(TypeRef element) {
  auto t = std::make_shared<Type>();
  t->kind = TypeKind::kMap;
  t->element = std::move(element);
  return t;
}

struct F {
  std::string name;
  TypeRef type;
  bool required = false;
  bool immutable = false;
  std::optional<std::string> default_json = std::nullopt;
};

TypeRef Struct(std::string name, std::vector<F> fields) {
  auto t = std::make_shared<Type>();
  t->kind = TypeKind::kStruct;
  t->name = std::move(name);
  for (auto& f : fields) {
    Field field;
    field.name = f.name;
    field.type = f.type;
    field.required = f.required;
    field.immutable = f.immutable;
    field.default_json = f.default_json;
    t->fields.push_back(std::move(field));
  }
  return t;
}

Constraints Min(double m) {
  Constraints c;
  c.minimum = m;
  return c;
}

Constraints Format(StringFormat f) {
  Constraints c;
  c.format = f;
  return c;
}

// A small Deployment-like resource: spec.replicas (>= 0), spec.selector (immutable),
// spec.template.spec.containers (keyed by name, each with a required name), restartPolicy enum,
// plus one field of each scalar kind.
ResourceSchema Workload(bool native_messages = true) {
  auto port = Struct("Port", {{"containerPort", T(TypeKind::kInt), true}, {"protocol", T(TypeKind::kString), false, false, "\"TCP\""}});
  auto container = Struct("Container", {{"name", T(TypeKind::kString, Format(StringFormat::kDns1123Label)), true},
                                        {"image", T(TypeKind::kString)},
                                        {"ports", List(port, {"containerPort", "protocol"})},
                                        {"args", List(T(TypeKind::kString))},
                                        {"cpu", T(TypeKind::kQuantity)}});
  auto pod_spec = Struct("PodSpec", {{"containers", List(container, {"name"}), true},
                                     {"restartPolicy", Enum({"Always", "OnFailure", "Never"}), false, false, "\"Always\""},
                                     {"finalizers", List(T(TypeKind::kString), {}, true)},
                                     {"nodeSelector", Map(T(TypeKind::kString))}});
  auto template_spec = Struct("PodTemplateSpec", {{"metadata", T(TypeKind::kAny)}, {"spec", pod_spec}});
  auto spec = Struct("WorkloadSpec", {{"replicas", T(TypeKind::kInt, Min(0)), false, false, "1"},
                                      {"selector", T(TypeKind::kAny), true, true},
                                      {"template", template_spec},
                                      {"ratio", T(TypeKind::kFloat)},
                                      {"paused", T(TypeKind::kBool)},
                                      {"maxSurge", T(TypeKind::kIntOrString)},
                                      {"timeout", T(TypeKind::kDuration)},
                                      {"deadline", T(TypeKind::kTimestamp)},
                                      {"labels", Map(Struct("Item", {{"size", T(TypeKind::kInt), false, false, "3"}}))}});
  auto status = Struct("WorkloadStatus", {{"replicas", T(TypeKind::kInt)}});
  ResourceSchema s;
  s.group = "apps";
  s.version = "v1";
  s.kind = "Workload";
  s.plural = "workloads";
  s.singular = "workload";
  s.root = Struct("Workload", {{"spec", spec, true}, {"status", status}});
  s.native_messages = native_messages;
  return s;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

const char* kValidSpec =
    R"({"spec":{"replicas":1,"selector":{"app":"x"},"template":{"spec":{"containers":[{"name":"c","image":"i"}]}}}})";

// ---- defaulting ---------------------------------------------------------------------------------

TEST(Default, AbsentFieldsRecursivelyIntoListItemsAndMapValues) {
  ResourceSchema s = Workload();
  auto d = Parse(R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"a","ports":[{"containerPort":80}]},
                    {"name":"b","ports":[{"containerPort":81,"protocol":"UDP"}]}]}},"labels":{"x":{},"y":{"size":7}}}})");
  Default(*s.root, d, d.GetAllocator());
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/spec/replicas").Get(d)), "1");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/spec/template/spec/restartPolicy").Get(d)), "\"Always\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/spec/template/spec/containers/0/ports/0/protocol").Get(d)), "\"TCP\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/spec/template/spec/containers/1/ports/0/protocol").Get(d)), "\"UDP\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/spec/labels/x/size").Get(d)), "3");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/spec/labels/y/size").Get(d)), "7");
}

TEST(Default, PresentValuesAndNullsAndComputedDefaults) {
  auto spec = std::make_shared<Type>(*Struct("S", {{"a", T(TypeKind::kInt), false, false, "5"}, {"b", T(TypeKind::kString)}, {"c", T(TypeKind::kString)}}));
  // b: computed from the enclosing object; c: a computed default that declines (nullopt).
  spec->fields[1].default_fn = [](const std::string& parent) -> std::optional<std::string> {
    return parent.find("\"a\":0") != std::string::npos ? std::optional<std::string>("\"zero\"") : std::optional<std::string>("\"nonzero\"");
  };
  spec->fields[2].default_fn = [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
  auto d = Parse(R"({"a":0})");
  Default(*spec, d, d.GetAllocator());
  EXPECT_EQ(ToJson(d), R"({"a":0,"b":"zero"})");
  auto n = Parse(R"({"a":null})");  // null counts as absent
  Default(*spec, n, n.GetAllocator());
  EXPECT_EQ(ToJson(n), R"({"a":5,"b":"nonzero"})");
  auto not_object = Parse(R"([1])");  // wrong shape: left alone (validation reports it)
  Default(*spec, not_object, not_object.GetAllocator());
  EXPECT_EQ(ToJson(not_object), "[1]");
}

// ---- validation (data-driven) -------------------------------------------------------------------

struct ValidateCase {
  const char* name;
  const char* object;
  const char* old;  // nullptr on create
  std::vector<std::string> causes;  // "field: message", in order
  bool native = true;
};

std::vector<std::string> Causes(const ResourceSchema& s, const char* object, const char* old) {
  auto obj = Parse(object);
  rapidjson::Document old_doc;
  if (old) old_doc = Parse(old);
  std::vector<std::string> out;
  for (const Cause& c : Validate(s, obj, old ? &old_doc : nullptr)) out.push_back(c.field + ": " + c.message);
  return out;
}

class ValidateTest : public ::testing::TestWithParam<ValidateCase> {};

TEST_P(ValidateTest, Causes) {
  const ValidateCase& c = GetParam();
  EXPECT_EQ(Causes(Workload(c.native), c.object, c.old), c.causes);
}

const ValidateCase kValidateCases[] = {
    {"valid", kValidSpec, nullptr, {}},
    {"negative_replicas_native",
     R"({"spec":{"replicas":-1,"selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.replicas: Invalid value: -1: must be greater than or equal to 0"}},
    {"negative_replicas_openapi",
     R"({"spec":{"replicas":-1,"selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.replicas: Invalid value: -1: spec.replicas in body should be greater than or equal to 0"}, false},
    {"required_nested_in_list",
     R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"image":"i"}]}}}})", nullptr,
     {"spec.template.spec.containers[0].name: Required value"}},
    {"required_empty_list", R"({"spec":{"selector":{},"template":{"spec":{"containers":[]}}}})", nullptr,
     {"spec.template.spec.containers: Required value"}},
    {"required_root", R"({"status":{}})", nullptr, {"spec: Required value"}},
    {"enum",
     R"({"spec":{"selector":{},"template":{"spec":{"restartPolicy":"Sometimes","containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""}},
    {"type_integer", R"({"spec":{"replicas":"string","selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.replicas: Invalid value: \"string\": spec.replicas in body must be of type integer: \"string\""}},
    {"type_integer_fraction", R"({"spec":{"replicas":1.5,"selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.replicas: Invalid value: 1.5: spec.replicas in body must be of type integer: 1.5"}},
    {"type_integer_whole_float_ok", R"({"spec":{"replicas":2.0,"selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr, {}},
    {"type_bool_number_array_object",
     R"({"spec":{"paused":"yes","ratio":"x","selector":{},"template":{"spec":{"containers":{"name":"c"}}},"labels":[]}})", nullptr,
     {"spec.template.spec.containers: Invalid value: {\"name\":\"c\"}: spec.template.spec.containers in body must be of type array: {\"name\":\"c\"}",
      "spec.ratio: Invalid value: \"x\": spec.ratio in body must be of type number: \"x\"",
      "spec.paused: Invalid value: \"yes\": spec.paused in body must be of type boolean: \"yes\"",
      "spec.labels: Invalid value: []: spec.labels in body must be of type object: []"}},
    {"dns1123_label",
     R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"Bad_Name"}]}}}})", nullptr,
     {"spec.template.spec.containers[0].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case "
      "alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
      "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"}},
    {"duplicate_list_key",
     R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c"},{"name":"c"}]}}}})", nullptr,
     {"spec.template.spec.containers[1].name: Duplicate value: \"c\""}},
    {"int_or_string", R"({"spec":{"maxSurge":"25%","selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr, {}},
    {"int_or_string_bad", R"({"spec":{"maxSurge":true,"selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.maxSurge: Invalid value: true: spec.maxSurge in body must be of type integer or string"}},
    {"quantity_ok",
     R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c","cpu":"500m"},{"name":"d","cpu":2}]}}}})", nullptr, {}},
    {"quantity_bad", R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c","cpu":"lots"}]}}}})", nullptr,
     {"spec.template.spec.containers[0].cpu: Invalid value: \"lots\": quantities must match the regular expression "
      "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"}},
    {"duration_and_timestamp_ok",
     R"({"spec":{"timeout":"1h5m","deadline":"2024-01-02T03:04:05Z","selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr, {}},
    {"duration_and_timestamp_bad",
     R"({"spec":{"timeout":"5 minutes","deadline":"yesterday","selector":{},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr,
     {"spec.timeout: Invalid value: \"5 minutes\": must be a duration such as \"30s\" or \"1h5m\"",
      "spec.deadline: Invalid value: \"yesterday\": must be an RFC 3339 timestamp"}},
    {"immutable_unchanged", kValidSpec, kValidSpec, {}},
    {"immutable_changed",
     R"({"spec":{"selector":{"app":"y"},"template":{"spec":{"containers":[{"name":"c"}]}}}})", kValidSpec,
     {"spec.selector: Invalid value: {\"app\":\"y\"}: field is immutable"}},
    {"immutable_not_checked_on_create",
     R"({"spec":{"selector":{"app":"y"},"template":{"spec":{"containers":[{"name":"c"}]}}}})", nullptr, {}},
    {"map_values", R"({"spec":{"selector":{},"template":{"spec":{"containers":[{"name":"c"}],"nodeSelector":{"a":1}}}}})", nullptr,
     {"spec.template.spec.nodeSelector[a]: Invalid value: 1: spec.template.spec.nodeSelector[a] in body must be of type string: 1"}},
    {"unknown_fields_are_not_errors",
     R"({"spec":{"sise":2,"selector":{},"template":{"spec":{"containers":[{"name":"c","nmae":"x"}]}}},"extra":1})", nullptr, {}},
};

INSTANTIATE_TEST_SUITE_P(Cases, ValidateTest, ::testing::ValuesIn(kValidateCases),
                         [](const ::testing::TestParamInfo<ValidateCase>& info) { return std::string(info.param.name); });

TEST(Validate, ConstraintsAndRules) {
  Constraints str;
  str.max_length = 3;
  str.pattern = "^[a-z]+$";
  Constraints items;
  items.max_items = 1;
  auto t = std::make_shared<Type>(*Struct("S", {{"s", T(TypeKind::kString, str)}, {"l", List(T(TypeKind::kInt), {}), false}, {"max", T(TypeKind::kInt)}}));
  const_cast<Type&>(*t->fields[1].type).constraints = items;
  Constraints max;
  max.maximum = 10;
  const_cast<Type&>(*t->fields[2].type).constraints = max;
  t->rules.push_back({"must be even", "max", [](const void* obj) {
                        auto* v = static_cast<const rapidjson::Value*>(obj);
                        auto m = v->FindMember("max");
                        return m == v->MemberEnd() || m->value.GetInt64() % 2 == 0;
                      }});
  ResourceSchema s;
  s.root = t;
  auto d = Parse(R"({"s":"ABCD","l":[1,2],"max":11})");
  std::vector<std::string> got;
  for (auto& c : Validate(s, d, nullptr)) got.push_back(c.reason + " " + c.field + ": " + c.message);
  EXPECT_EQ(got, (std::vector<std::string>{
                     "FieldValueTooLong s: Too long: may not be more than 3 bytes",
                     "FieldValueInvalid s: Invalid value: \"ABCD\": s in body should match '^[a-z]+$'",
                     "FieldValueTooMany l: Too many: 2: must have at most 1 items",
                     "FieldValueInvalid max: Invalid value: 11: max in body should be less than or equal to 10",
                     "FieldValueInvalid max: Invalid value: 11: must be even",
                 }));
  s.native_messages = true;
  auto e = Parse(R"({"max":12})");
  ASSERT_EQ(Validate(s, e, nullptr).size(), 1u);
  EXPECT_EQ(Validate(s, e, nullptr)[0].message, "Invalid value: 12: must be less than or equal to 10");
}

// ---- unknown fields -----------------------------------------------------------------------------

TEST(UnknownFields, NamesEveryUndeclaredFieldWithItsPath) {
  ResourceSchema s = Workload();
  auto d = Parse(R"({"apiVersion":"apps/v1","kind":"Workload","metadata":{"name":"x","whatever":1},"extra":1,
                     "spec":{"sise":2,"selector":{"any":{"thing":1}},"template":{"metadata":{"free":1},
                       "spec":{"containers":[{"name":"c"},{"name":"d","nmae":"x"}],"nodeSelector":{"k":"v"}}},
                       "labels":{"a":{"size":1,"colour":2}}}})");
  EXPECT_EQ(UnknownFields(s, d), (std::vector<std::string>{"metadata.whatever", "extra", "spec.sise",
                                                           "spec.template.spec.containers[1].nmae", "spec.labels[a].colour"}));
  // Every ObjectMeta field is known (what kubectl and controllers send), owner references too.
  auto meta = Parse(R"({"metadata":{"name":"a","generateName":"a-","namespace":"n","uid":"u","resourceVersion":"1",
                        "generation":1,"creationTimestamp":null,"deletionTimestamp":"2024-01-01T00:00:00Z",
                        "deletionGracePeriodSeconds":30,"labels":{"a":"b"},"annotations":{"c":"d"},"selfLink":"",
                        "ownerReferences":[{"apiVersion":"v1","kind":"K","name":"o","uid":"x","controller":true,"blockOwnerDeletion":true}],
                        "finalizers":["f"],"managedFields":[{"manager":"m","operation":"Update","apiVersion":"v1",
                        "time":"2024-01-01T00:00:00Z","fieldsType":"FieldsV1","fieldsV1":{"f:a":{}},"subresource":""}]}})");
  EXPECT_TRUE(UnknownFields(s, meta).empty());
  auto typo = Parse(R"({"metadata":{"name":"a","lables":{"a":"b"},"ownerReferences":[{"uid":"x","kindd":"K"}]}})");
  EXPECT_EQ(UnknownFields(s, typo), (std::vector<std::string>{"metadata.lables", "metadata.ownerReferences[0].kindd"}));
}

TEST(UnknownFields, PatchDirectivesAreNotFields) {
  ResourceSchema s = Workload();
  auto d = Parse(R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"c"}],
                     "containers":[{"name":"c","$patch":"delete"}]}}},"$retainKeys":["spec"]})");
  EXPECT_TRUE(UnknownFields(s, d).empty());
  // In a patch, null deletes (kubectl apply drops a field it applied before this way).
  auto p = Parse(R"({"spec":{"sise":null,"template":{"spec":{"containers":[{"name":"c","nmae":null,"x":1}]}}},"old":null})");
  EXPECT_EQ(UnknownFields(s, p, /*is_patch=*/true), (std::vector<std::string>{"spec.template.spec.containers[0].x"}));
  EXPECT_EQ(UnknownFields(s, p).size(), 4u);
}

// ---- OpenAPI v3 ---------------------------------------------------------------------------------

TEST(OpenApiV3, ScalarsAndConstraints) {
  Constraints c;
  c.minimum = 1;
  c.maximum = 5;
  EXPECT_EQ(OpenApiV3Schema(*T(TypeKind::kInt, c)), R"({"type":"integer","format":"int64","minimum":1.0,"maximum":5.0})");
  EXPECT_EQ(OpenApiV3Schema(*T(TypeKind::kTimestamp)), R"({"type":"string","format":"date-time"})");
  EXPECT_EQ(OpenApiV3Schema(*T(TypeKind::kIntOrString)),
            R"({"anyOf":[{"type":"integer"},{"type":"string"}],"x-kubernetes-int-or-string":true})");
  EXPECT_EQ(OpenApiV3Schema(*T(TypeKind::kAny)), R"({"x-kubernetes-preserve-unknown-fields":true})");
  EXPECT_EQ(OpenApiV3Schema(*Enum({"A", "B"})), R"({"type":"string","enum":["A","B"]})");
  Constraints s;
  s.max_length = 63;
  s.pattern = "^[a-z]+$";
  EXPECT_EQ(OpenApiV3Schema(*T(TypeKind::kString, s)), R"({"type":"string","maxLength":63,"pattern":"^[a-z]+$"})");
  EXPECT_EQ(OpenApiV3Schema(*Map(T(TypeKind::kString))), R"({"type":"object","additionalProperties":{"type":"string"}})");
  EXPECT_EQ(OpenApiV3Schema(*List(T(TypeKind::kString), {}, true)),
            R"({"type":"array","items":{"type":"string"},"x-kubernetes-list-type":"set","x-kubernetes-patch-strategy":"merge"})");
}

TEST(OpenApiV3, StructsWithRequiredDefaultsAndKeyedLists) {
  auto item = Struct("Item", {{"name", T(TypeKind::kString), true}, {"n", T(TypeKind::kInt), false, false, "1"}});
  EXPECT_EQ(OpenApiV3Schema(*List(item, {"name"})),
            R"({"type":"array","items":{"type":"object","properties":{"name":{"type":"string"},)"
            R"("n":{"default":1,"type":"integer","format":"int64"}},"required":["name"]},)"
            R"("x-kubernetes-list-type":"map","x-kubernetes-list-map-keys":["name"],)"
            R"("x-kubernetes-patch-merge-key":"name","x-kubernetes-patch-strategy":"merge"})");
}

TEST(OpenApiV3, RecursiveTypesTerminate) {
  auto node = std::make_shared<Type>();
  node->kind = TypeKind::kStruct;
  node->name = "Node";
  Field child;
  child.name = "children";
  child.type = List(node);
  node->fields.push_back(child);
  std::string out = OpenApiV3Schema(*node);
  EXPECT_NE(out.find(R"("items":{"type":"object","x-kubernetes-preserve-unknown-fields":true})"), std::string::npos) << out;
  node->fields.clear();  // break the cycle so the test does not leak
}

TEST(OpenApiV3, ResourceEnvelope) {
  ResourceSchema s = Workload();
  auto doc = Parse(OpenApiV3Resource(s));
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/metadata/allOf/0/$ref").Get(doc)),
            "\"#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/apiVersion/type").Get(doc)), "\"string\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/kind/type").Get(doc)), "\"string\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/spec/properties/replicas/default").Get(doc)), "1");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/required").Get(doc)), R"(["spec"])");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/x-kubernetes-group-version-kind").Get(doc)),
            R"([{"group":"apps","kind":"Workload","version":"v1"}])");
  // The keys come in Kubernetes' order: apiVersion, kind, metadata, then the resource's own.
  std::vector<std::string> keys;
  for (auto& m : rapidjson::Pointer("/properties").Get(doc)->GetObject()) keys.push_back(m.name.GetString());
  EXPECT_EQ(keys, (std::vector<std::string>{"apiVersion", "kind", "metadata", "spec", "status"}));

  ResourceSchema bare;  // no root type: the envelope alone
  bare.version = "v1";
  bare.kind = "Thing";
  auto b = Parse(OpenApiV3Resource(bare));
  EXPECT_TRUE(rapidjson::Pointer("/properties/metadata").Get(b));
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/x-kubernetes-group-version-kind/0/group").Get(b)), "\"\"");
}

TEST(OpenApiV3, ObjectMeta) {
  auto doc = Parse(ObjectMetaOpenApiV3());
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/name/type").Get(doc)), "\"string\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/creationTimestamp/format").Get(doc)), "\"date-time\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/labels/additionalProperties/type").Get(doc)), "\"string\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/ownerReferences/x-kubernetes-patch-merge-key").Get(doc)), "\"uid\"");
  EXPECT_EQ(ToJson(*rapidjson::Pointer("/properties/finalizers/x-kubernetes-list-type").Get(doc)), "\"set\"");
}

// ---- strategic merge patch keys -------------------------------------------------------------------

std::string Strategy(const apimachinery::PatchSchema& p, std::vector<std::string> path) {
  auto s = p.ForPath(path);
  if (!s) return "none";
  return s->merge ? "merge:" + s->merge_key : "replace";
}

TEST(PatchSchemaFor, KeysComeFromTheSchema) {
  ResourceSchema s = Workload();
  auto p = PatchSchemaFor(s, nullptr);
  EXPECT_EQ(Strategy(*p, {"spec", "template", "spec", "containers"}), "merge:name");
  EXPECT_EQ(Strategy(*p, {"spec", "template", "spec", "containers", "ports"}), "merge:containerPort");
  EXPECT_EQ(Strategy(*p, {"spec", "template", "spec", "containers", "args"}), "replace");
  EXPECT_EQ(Strategy(*p, {"spec", "template", "spec", "finalizers"}), "merge:");
  EXPECT_EQ(Strategy(*p, {"metadata", "finalizers"}), "merge:");
  EXPECT_EQ(Strategy(*p, {"metadata", "ownerReferences"}), "merge:uid");
  EXPECT_EQ(Strategy(*p, {"spec", "nothing"}), "none");
  EXPECT_EQ(Strategy(*p, {"spec", "selector", "inside"}), "none");  // kAny
}

TEST(PatchSchemaFor, FallbackAnswersWhereTheSchemaDoesNot) {
  ResourceSchema s = Workload();
  apimachinery::TablePatchSchema table({{{"containers", "args"}, {true, ""}}, {{"selector", "inside"}, {true, "k"}}});
  auto p = PatchSchemaFor(s, &table);
  EXPECT_EQ(Strategy(*p, {"spec", "template", "spec", "containers", "args"}), "merge:");
  EXPECT_EQ(Strategy(*p, {"spec", "selector", "inside"}), "merge:k");
  EXPECT_EQ(Strategy(*p, {"spec", "template", "spec", "containers"}), "merge:name");
  ResourceSchema no_root;
  auto q = PatchSchemaFor(no_root, &apimachinery::KubernetesPatchSchema());
  EXPECT_EQ(Strategy(*q, {"spec", "containers"}), "merge:name");
}

TEST(PatchSchemaFor, MergesAPatchByTheSchemasKeys) {
  ResourceSchema s = Workload();
  auto p = PatchSchemaFor(s, nullptr);
  auto target = Parse(R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"2"}]}}}})");
  auto patch = Parse(R"({"spec":{"template":{"spec":{"containers":[{"name":"b","image":"3"}]}}}})");
  ASSERT_TRUE(apimachinery::ApplyStrategicMergePatch(target, patch, target.GetAllocator(), *p).ok());
  EXPECT_EQ(ToJson(target), R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"3"}]}}}})");
}

}  // namespace
}  // namespace rc::schema
