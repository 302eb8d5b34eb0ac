// The compiled form of a resource declaration: what `rcc` produces from a `resource` block in a
// .rc file and what the API server serves (registry, discovery, OpenAPI v3, validation,
// defaulting, table columns). Plain data: no ANTLR, no LLVM. Built by compiler/ (lowering), read by
// runtime/apiserver; runtime/schema also holds the generic algorithms over it (validate, default,
// OpenAPI v3 emission), so no resource is described twice.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rc::schema {

enum class TypeKind {
  kString,
  kInt,        // int64
  kFloat,      // double
  kBool,
  kQuantity,   // "500m", "1Gi" (JSON string or number)
  kDuration,   // "30s", "1h5m" (JSON string)
  kTimestamp,  // RFC 3339 (JSON string)
  kIntOrString,
  kAny,        // any JSON value; unknown fields preserved
  kList,       // JSON array of `element`
  kMap,        // JSON object string -> `element`
  kStruct,     // JSON object with declared `fields`
  kEnum,       // JSON string, one of `enum_values`
};

struct Type;
using TypeRef = std::shared_ptr<const Type>;

// Well-known string formats checked by validation.
enum class StringFormat {
  kNone,
  kDns1123Label,      // RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, <= 63
  kDns1123Subdomain,  // RFC 1123 subdomain, <= 253
  kQualifiedName,     // label key: [prefix/]name
  kLabelValue,        // label value, <= 63
  kIp,                // IPv4 or IPv6 address
};

struct Constraints {
  std::optional<double> minimum;        // numbers
  std::optional<double> maximum;
  std::optional<int64_t> min_length;    // strings
  std::optional<int64_t> max_length;
  std::optional<std::string> pattern;   // ECMAScript regex a string must match (whole string)
  std::optional<int64_t> min_items;     // lists
  std::optional<int64_t> max_items;
  std::optional<int64_t> max_properties;  // maps
  StringFormat format = StringFormat::kNone;
};

struct Field {
  std::string name;       // JSON name
  TypeRef type;
  bool required = false;  // must be present (and, for strings, non-empty) after defaulting
  bool immutable = false; // an update may not change it (422 "field is immutable")
  // Constant default, as JSON text ("1", "\"Always\"", "{}"), applied when the field is absent.
  std::optional<std::string> default_json;
  // Computed default (a compiled DSL expression over the enclosing object), applied when the
  // field is absent and default_json is not set. Returns JSON text, or nullopt for "no default".
  // `parent_json` is the enclosing object's JSON text.
  std::function<std::optional<std::string>(const std::string& parent_json)> default_fn;
  std::string description;
};

// A validation rule of a struct (DSL `rule "message" for path = expr;`): when `check` returns
// false for the object, validation reports FieldValueInvalid at `field` (relative to the object).
struct Rule {
  std::string message;
  std::string field;
  std::function<bool(const void* object)> check;  // object: const rapidjson::Value*
};

struct Type {
  TypeKind kind = TypeKind::kAny;
  std::string name;  // declared name of a struct or enum type ("PodSpec"); empty for built-ins
  std::string description;
  Constraints constraints;
  TypeRef element;                       // kList, kMap
  std::vector<Field> fields;             // kStruct, in declaration order
  std::vector<std::string> enum_values;  // kEnum
  // kList of kStruct: the keys identifying an item (x-kubernetes-list-map-keys; the strategic
  // merge patch key is the first). Empty: the list is atomic.
  std::vector<std::string> list_map_keys;
  bool list_is_set = false;              // kList of scalars merged as a set
  std::vector<Rule> rules;               // kStruct: compiled validation rules

  const Field* FindField(const std::string& field_name) const;
};

// A printer column of the server-side Table (kubectl get).
struct Column {
  std::string name;         // "Ready"
  std::string type;         // OpenAPI type: "string", "integer", "number", "boolean", "date"
  std::string format;       // "name" for the name column
  std::string description;
  int priority = 0;         // 0: always shown; 1: only with -o wide
  // Either a dotted path into the object ("status.readyReplicas"; "metadata.creationTimestamp")...
  std::string json_path;
  // ...or a compiled DSL expression: object JSON text + now (unix seconds) -> cell text.
  std::function<std::string(const std::string& object_json, int64_t now_seconds)> compute;
  // The same over a parsed object (a const rapidjson::Value*), without serialising it.
  std::function<std::string(const void* object, int64_t now_seconds)> compute_value;
};

struct ScaleSubresource {
  std::string spec_replicas_path = "spec.replicas";
  std::string status_replicas_path = "status.replicas";
  std::string label_selector_path = "status.selector";
};

struct ResourceSchema {
  std::string group;     // "" for core
  std::string version;   // "v1"
  std::string kind;      // "Deployment"
  std::string plural;    // "deployments"
  std::string singular;  // "deployment"
  std::vector<std::string> short_names;
  std::vector<std::string> categories;
  bool namespaced = true;
  bool has_status = false;
  std::optional<ScaleSubresource> scale;
  StringFormat name_format = StringFormat::kDns1123Subdomain;
  std::vector<std::string> field_selectors;  // beyond metadata.name / metadata.namespace
  // The object's top-level fields other than apiVersion, kind and metadata (spec, status, data,
  // ...), as one struct type.
  TypeRef root;
  std::vector<Column> columns;  // NAME first
  // Kubernetes' native wording for number bounds ("must be greater than or equal to 0", as
  // k8s.io/api validation words it) instead of the CRD/OpenAPI wording ("spec.size in body should
  // be greater than or equal to 1"). Set for the built-in types.
  bool native_messages = false;
  std::string source_file;      // where it was declared
  std::string source_hash;      // content hash of the module it came from
};

}  // namespace rc::schema
