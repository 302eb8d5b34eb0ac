#include <cmath>
#include <functional>
#include <regex>
#include <set>
#include <span>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rc/apimachinery/quantity.h"
#include "rc/apimachinery/validation.h"
#include "rc/schema/algorithms.h"

namespace rc::schema {

namespace am = rc::apimachinery;
using rapidjson::Value;

const Field* Type::FindField(const std::string& field_name) const {
  for (const auto& f : fields) {
    if (f.name == field_name) return &f;
  }
  return nullptr;
}

namespace {

const Type& ObjectMetaType();  // metav1.ObjectMeta, below

std::string ToJson(const Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string Quote(const std::string& s) {
  Value v(rapidjson::StringRef(s.data(), s.size()));
  return ToJson(v);
}

// Shown value in messages: scalars as JSON, small objects in full, large ones abbreviated.
std::string Shown(const Value& v) {
  if (v.IsObject() || v.IsArray()) {
    std::string s = ToJson(v);
    return s.size() <= 200 ? s : (v.IsObject() ? "\"object\"" : "\"array\"");
  }
  return ToJson(v);
}

const char* JsonTypeName(const Type& t) {
  switch (t.kind) {
    case TypeKind::kInt: return "integer";
    case TypeKind::kFloat: return "number";
    case TypeKind::kBool: return "boolean";
    case TypeKind::kList: return "array";
    case TypeKind::kMap:
    case TypeKind::kStruct: return "object";
    default: return "string";
  }
}

bool ParseDuration(const std::string& s) {
  if (s.empty()) return false;
  static const std::regex re(R"(^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$|^0$)");
  return std::regex_match(s, re);
}

bool ParseTimestamp(const std::string& s) {
  static const std::regex re(R"(^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$)");
  return std::regex_match(s, re);
}

class Validator {
 public:
  explicit Validator(bool native_messages) : native_(native_messages) {}
  std::vector<Violation> out;

  void Check(const Type& t, const Value& v, const std::string& path, const Value* old) {
    if (v.IsNull()) return;  // null = absent
    auto type_error = [&]() {
      out.push_back({"FieldValueTypeInvalid",
                     "Invalid value: " + Shown(v) + ": " + path + " in body must be of type " + JsonTypeName(t) + ": " + Shown(v),
                     path});
    };
    switch (t.kind) {
      case TypeKind::kAny: return;
      case TypeKind::kString:
      case TypeKind::kEnum: {
        if (!v.IsString()) return type_error();
        std::string s(v.GetString(), v.GetStringLength());
        if (t.kind == TypeKind::kEnum) {
          if (std::find(t.enum_values.begin(), t.enum_values.end(), s) == t.enum_values.end()) {
            std::string list;
            for (size_t i = 0; i < t.enum_values.size(); ++i) list += (i ? ", " : "") + Quote(t.enum_values[i]);
            out.push_back({"FieldValueNotSupported", "Unsupported value: " + Quote(s) + ": supported values: " + list, path});
          }
          return;
        }
        CheckString(t.constraints, s, path);
        return;
      }
      case TypeKind::kInt:
        if (!v.IsInt64() && !(v.IsNumber() && std::floor(v.GetDouble()) == v.GetDouble())) return type_error();
        CheckNumber(t.constraints, v.GetDouble(), v, path);
        return;
      case TypeKind::kFloat:
        if (!v.IsNumber()) return type_error();
        CheckNumber(t.constraints, v.GetDouble(), v, path);
        return;
      case TypeKind::kBool:
        if (!v.IsBool()) return type_error();
        return;
      case TypeKind::kQuantity: {
        auto q = am::ParseQuantityJson(v);
        if (!q.ok()) {
          // The parser says `quantity "lots": quantities must match ...`; the value is shown already.
          std::string why = q.status().message();
          if (size_t at = why.find("quantities must"); at != std::string::npos) why = why.substr(at);
          out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": " + why, path});
          return;
        }
        if (t.constraints.minimum || t.constraints.maximum) {
          CheckNumber(t.constraints, q->MilliValue() / 1000.0, v, path);
        }
        return;
      }
      case TypeKind::kDuration:
        if (!v.IsString()) return type_error();
        if (!ParseDuration(std::string(v.GetString(), v.GetStringLength()))) {
          out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": must be a duration such as \"30s\" or \"1h5m\"", path});
        }
        return;
      case TypeKind::kTimestamp:
        if (!v.IsString()) return type_error();
        if (!ParseTimestamp(std::string(v.GetString(), v.GetStringLength()))) {
          out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": must be an RFC 3339 timestamp", path});
        }
        return;
      case TypeKind::kIntOrString:
        if (!v.IsString() && !v.IsInt64()) {
          out.push_back({"FieldValueTypeInvalid", "Invalid value: " + Shown(v) + ": " + path + " in body must be of type integer or string", path});
        }
        return;
      case TypeKind::kList: {
        if (!v.IsArray()) return type_error();
        if (t.constraints.max_items && static_cast<int64_t>(v.Size()) > *t.constraints.max_items) {
          out.push_back({"FieldValueTooMany", "Too many: " + std::to_string(v.Size()) + ": must have at most " +
                                                  std::to_string(*t.constraints.max_items) + " items", path});
        }
        if (t.constraints.min_items && static_cast<int64_t>(v.Size()) < *t.constraints.min_items) {
          out.push_back({"FieldValueInvalid", "Invalid value: " + std::to_string(v.Size()) + ": " + path +
                                                  " in body should have at least " + std::to_string(*t.constraints.min_items) + " items", path});
        }
        std::set<std::string> keys;
        for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
          std::string item_path = path + "[" + std::to_string(i) + "]";
          if (t.element) Check(*t.element, v[i], item_path, nullptr);
          if (!t.list_map_keys.empty() && v[i].IsObject()) {
            std::string key;
            for (auto& k : t.list_map_keys) {
              auto m = v[i].FindMember(k.c_str());
              key += (m == v[i].MemberEnd() ? std::string("<none>") : ToJson(m->value)) + "\x1f";
            }
            if (!keys.insert(key).second) {
              out.push_back({"FieldValueDuplicate", "Duplicate value: " + ToJson(v[i].FindMember(t.list_map_keys[0].c_str()) != v[i].MemberEnd()
                                                                                    ? v[i].FindMember(t.list_map_keys[0].c_str())->value
                                                                                    : Value().Move()),
                             item_path + "." + t.list_map_keys[0]});
            }
          }
        }
        return;
      }
      case TypeKind::kMap: {
        if (!v.IsObject()) return type_error();
        if (t.constraints.max_properties && static_cast<int64_t>(v.MemberCount()) > *t.constraints.max_properties) {
          out.push_back({"FieldValueTooMany", "Too many: " + std::to_string(v.MemberCount()) + ": must have at most " +
                                                  std::to_string(*t.constraints.max_properties) + " items", path});
        }
        for (auto& m : v.GetObject()) {
          if (t.element) Check(*t.element, m.value, path + "[" + std::string(m.name.GetString(), m.name.GetStringLength()) + "]", nullptr);
        }
        return;
      }
      case TypeKind::kStruct: {
        if (!v.IsObject()) return type_error();
        for (const auto& f : t.fields) {
          std::string fpath = path.empty() ? f.name : path + "." + f.name;
          auto m = v.FindMember(f.name.c_str());
          const Value* fv = m == v.MemberEnd() ? nullptr : &m->value;
          const Value* fold = nullptr;
          if (old && old->IsObject()) {
            auto om = old->FindMember(f.name.c_str());
            if (om != old->MemberEnd()) fold = &om->value;
          }
          bool missing = !fv || fv->IsNull() || (fv->IsString() && fv->GetStringLength() == 0) ||
                         (fv->IsArray() && fv->Empty() && f.required);
          if (f.required && missing) {
            out.push_back({"FieldValueRequired", "Required value", fpath});
            continue;
          }
          if (f.immutable && old && !(fv == nullptr && fold == nullptr) &&
              (fv == nullptr || fold == nullptr || *fv != *fold)) {
            out.push_back({"FieldValueInvalid", "Invalid value: " + (fv ? Shown(*fv) : std::string("null")) + ": field is immutable", fpath});
          }
          if (fv && f.type) Check(*f.type, *fv, fpath, fold);
        }
        for (const auto& rule : t.rules) {
          if (!rule.check || rule.check(&v)) continue;
          std::string at = rule.field.empty() ? path : (path.empty() ? rule.field : path + "." + rule.field);
          const Value* shown = &v;
          if (!rule.field.empty()) {
            const Value* cur = &v;
            size_t start = 0;
            while (cur && start <= rule.field.size()) {
              size_t dot = rule.field.find('.', start);
              std::string part = rule.field.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
              auto m = cur->IsObject() ? cur->FindMember(part.c_str()) : cur->MemberEnd();
              cur = (cur->IsObject() && m != cur->MemberEnd()) ? &m->value : nullptr;
              if (dot == std::string::npos) break;
              start = dot + 1;
            }
            shown = cur;
          }
          out.push_back({"FieldValueInvalid", "Invalid value: " + (shown ? Shown(*shown) : std::string("null")) + ": " + rule.message, at});
        }
        return;
      }
    }
  }

  void CheckNumber(const Constraints& c, double x, const Value& v, const std::string& path) {
    // Built-in types: "must be greater than or equal to 0" (k8s.io/api validation); CRD-like
    // types: "spec.size in body should be greater than or equal to 1" (OpenAPI validation).
    std::string lead = native_ ? std::string("must be ") : path + " in body should be ";
    if (c.minimum && x < *c.minimum) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": " + lead + "greater than or equal to " + Num(*c.minimum), path});
    }
    if (c.maximum && x > *c.maximum) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": " + lead + "less than or equal to " + Num(*c.maximum), path});
    }
  }

  static std::string Num(double d) {
    if (std::floor(d) == d && std::fabs(d) < 1e15) return std::to_string(static_cast<int64_t>(d));
    return std::to_string(d);
  }

  void CheckString(const Constraints& c, const std::string& s, const std::string& path) {
    if (c.max_length && static_cast<int64_t>(s.size()) > *c.max_length) {
      out.push_back({"FieldValueTooLong", "Too long: may not be more than " + std::to_string(*c.max_length) + " bytes", path});
    }
    if (c.min_length && static_cast<int64_t>(s.size()) < *c.min_length) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Quote(s) + ": " + path + " in body should be at least " +
                                              std::to_string(*c.min_length) + " chars long", path});
    }
    if (c.pattern) {
      try {
        if (!std::regex_search(s, std::regex(*c.pattern, std::regex::ECMAScript))) {
          out.push_back({"FieldValueInvalid", "Invalid value: " + Quote(s) + ": " + path + " in body should match '" + *c.pattern + "'", path});
        }
      } catch (const std::regex_error&) {
      }
    }
    std::vector<std::string> errs;
    switch (c.format) {
      case StringFormat::kDns1123Label: errs = am::IsDNS1123Label(s); break;
      case StringFormat::kDns1123Subdomain: errs = am::IsDNS1123Subdomain(s); break;
      case StringFormat::kQualifiedName: errs = am::IsQualifiedName(s); break;
      case StringFormat::kLabelValue: errs = am::IsValidLabelValue(s); break;
      case StringFormat::kIp: {
        static const std::regex ip4(R"(^((25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(25[0-5]|2[0-4]\d|1?\d?\d)$)");
        if (!std::regex_match(s, ip4) && s.find(':') == std::string::npos) errs.push_back("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
        break;
      }
      case StringFormat::kNone: break;
    }
    for (auto& e : errs) out.push_back({"FieldValueInvalid", "Invalid value: " + Quote(s) + ": " + e, path});
  }

 private:
  bool native_ = false;
};

void Unknown(const Type& t, const Value& v, const std::string& path, bool is_patch, std::vector<std::string>& out) {
  if (t.kind == TypeKind::kStruct && v.IsObject()) {
    for (auto& m : v.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      if (!name.empty() && name[0] == '$') continue;  // patch directive
      if (is_patch && m.value.IsNull()) continue;     // a deletion
      const Field* f = t.FindField(name);
      std::string fpath = path.empty() ? name : path + "." + name;
      if (!f) {
        out.push_back(fpath);
      } else if (f->type) {
        Unknown(*f->type, m.value, fpath, is_patch, out);
      }
    }
  } else if (t.kind == TypeKind::kList && v.IsArray() && t.element) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) Unknown(*t.element, v[i], path + "[" + std::to_string(i) + "]", is_patch, out);
  } else if (t.kind == TypeKind::kMap && v.IsObject() && t.element) {
    for (auto& m : v.GetObject()) Unknown(*t.element, m.value, path + "[" + std::string(m.name.GetString(), m.name.GetStringLength()) + "]", is_patch, out);
  }
}

void Emit(const Type& t, rapidjson::Writer<rapidjson::StringBuffer>& w, std::set<const Type*>& stack,
          const Field* field = nullptr) {
  w.StartObject();
  if (field && field->default_json) {
    rapidjson::Document d;
    d.Parse(field->default_json->c_str(), field->default_json->size());
    if (!d.HasParseError() && !d.IsNull()) { w.Key("default"); d.Accept(w); }
  }
  const std::string& description = field && !field->description.empty() ? field->description : t.description;
  if (!description.empty()) { w.Key("description"); w.String(description.c_str()); }
  auto c = t.constraints;
  switch (t.kind) {
    case TypeKind::kString: case TypeKind::kEnum: case TypeKind::kDuration:
      w.Key("type"); w.String("string");
      if (t.kind == TypeKind::kEnum) {
        w.Key("enum"); w.StartArray();
        for (auto& e : t.enum_values) w.String(e.c_str());
        w.EndArray();
      }
      break;
    case TypeKind::kTimestamp: w.Key("type"); w.String("string"); w.Key("format"); w.String("date-time"); break;
    case TypeKind::kInt: w.Key("type"); w.String("integer"); w.Key("format"); w.String("int64"); break;
    case TypeKind::kFloat: w.Key("type"); w.String("number"); w.Key("format"); w.String("double"); break;
    case TypeKind::kBool: w.Key("type"); w.String("boolean"); break;
    case TypeKind::kQuantity: case TypeKind::kIntOrString:
      // As CRDs write it (structural schemas need the anyOf).
      w.Key("anyOf"); w.StartArray();
      w.StartObject(); w.Key("type"); w.String("integer"); w.EndObject();
      w.StartObject(); w.Key("type"); w.String("string"); w.EndObject();
      w.EndArray();
      w.Key("x-kubernetes-int-or-string"); w.Bool(true);
      break;
    case TypeKind::kAny: w.Key("x-kubernetes-preserve-unknown-fields"); w.Bool(true); break;
    case TypeKind::kList:
      w.Key("type"); w.String("array");
      if (t.element) { w.Key("items"); Emit(*t.element, w, stack); }
      if (!t.list_map_keys.empty()) {
        w.Key("x-kubernetes-list-type"); w.String("map");
        w.Key("x-kubernetes-list-map-keys"); w.StartArray();
        for (auto& k : t.list_map_keys) w.String(k.c_str());
        w.EndArray();
        w.Key("x-kubernetes-patch-merge-key"); w.String(t.list_map_keys[0].c_str());
        w.Key("x-kubernetes-patch-strategy"); w.String("merge");
      } else if (t.list_is_set) {
        w.Key("x-kubernetes-list-type"); w.String("set");
        w.Key("x-kubernetes-patch-strategy"); w.String("merge");
      }
      break;
    case TypeKind::kMap:
      w.Key("type"); w.String("object");
      if (t.element) { w.Key("additionalProperties"); Emit(*t.element, w, stack); }
      break;
    case TypeKind::kStruct: {
      w.Key("type"); w.String("object");
      if (!stack.insert(&t).second) {  // recursive type: stop here
        w.Key("x-kubernetes-preserve-unknown-fields"); w.Bool(true);
        break;
      }
      w.Key("properties"); w.StartObject();
      std::vector<std::string> required;
      for (auto& f : t.fields) {
        w.Key(f.name.c_str());
        if (f.type) {
          // Field-level facts (default, description) merge into the field's schema.
          // Field-level facts (description, default) go into the field's schema.
          Emit(*f.type, w, stack, &f);
        } else {
          w.StartObject(); w.EndObject();
        }
        if (f.required) required.push_back(f.name);
      }
      w.EndObject();
      if (!required.empty()) {
        w.Key("required"); w.StartArray();
        for (auto& r : required) w.String(r.c_str());
        w.EndArray();
      }
      stack.erase(&t);
      break;
    }
  }
  if (c.minimum) { w.Key("minimum"); w.Double(*c.minimum); }
  if (c.maximum) { w.Key("maximum"); w.Double(*c.maximum); }
  if (c.max_length) { w.Key("maxLength"); w.Int64(*c.max_length); }
  if (c.min_length) { w.Key("minLength"); w.Int64(*c.min_length); }
  if (c.pattern) { w.Key("pattern"); w.String(c.pattern->c_str()); }
  if (c.max_items) { w.Key("maxItems"); w.Int64(*c.max_items); }
  if (c.min_items) { w.Key("minItems"); w.Int64(*c.min_items); }
  if (c.max_properties) { w.Key("maxProperties"); w.Int64(*c.max_properties); }
  w.EndObject();
}

}  // namespace

void ApplyDefaults(const Type& type, Value& obj, JsonAlloc& alloc) {
  if (type.kind == TypeKind::kList && obj.IsArray() && type.element) {
    for (auto& item : obj.GetArray()) ApplyDefaults(*type.element, item, alloc);
    return;
  }
  if (type.kind == TypeKind::kMap && obj.IsObject() && type.element) {
    for (auto& m : obj.GetObject()) ApplyDefaults(*type.element, m.value, alloc);
    return;
  }
  if (type.kind != TypeKind::kStruct || !obj.IsObject()) return;
  for (const auto& f : type.fields) {
    auto m = obj.FindMember(f.name.c_str());
    bool absent = m == obj.MemberEnd() || m->value.IsNull();
    if (absent && (f.default_json || f.default_fn)) {
      std::optional<std::string> json = f.default_json;
      if (!json && f.default_fn) json = f.default_fn(ToJson(obj));
      if (json && *json != "null") {
        rapidjson::Document d(&alloc);
        d.Parse(json->c_str(), json->size());
        if (!d.HasParseError()) {
          Value v(d, alloc);
          if (m != obj.MemberEnd()) {
            m->value = v;
          } else {
            obj.AddMember(Value(f.name.c_str(), alloc), v, alloc);
          }
          m = obj.FindMember(f.name.c_str());
        }
      }
    }
    if (m != obj.MemberEnd() && f.type) ApplyDefaults(*f.type, m->value, alloc);
  }
}

std::vector<Violation> Validate(const ResourceSchema& schema, const Value& obj, const Value* old) {
  Validator v(schema.native_messages);
  if (schema.root) v.Check(*schema.root, obj, "", old);
  return v.out;
}

std::vector<std::string> UnknownFields(const ResourceSchema& schema, const Value& obj, bool is_patch) {
  std::vector<std::string> out;
  if (!schema.root || !obj.IsObject()) return out;
  for (auto& m : obj.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name == "apiVersion" || name == "kind") continue;
    if (!name.empty() && name[0] == '$') continue;  // patch directive
    if (is_patch && m.value.IsNull()) continue;     // a deletion
    if (name == "metadata") {
      Unknown(ObjectMetaType(), m.value, name, is_patch, out);  // "metadata.lables"
      continue;
    }
    const Field* f = schema.root->FindField(name);
    if (!f) out.push_back(name);
    else if (f->type) Unknown(*f->type, m.value, name, is_patch, out);
  }
  return out;
}

std::string OpenApiV3(const Type& type) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  std::set<const Type*> stack;
  Emit(type, w, stack);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string OpenApiV3Resource(const ResourceSchema& s) {
  rapidjson::Document doc;
  std::string root = s.root ? OpenApiV3(*s.root) : R"({"type":"object"})";
  doc.Parse(root.c_str(), root.size());
  auto& a = doc.GetAllocator();
  // The envelope first (as Kubernetes orders it), then the root type's properties.
  Value props(rapidjson::kObjectType);
  rapidjson::Document envelope(&a);
  envelope.Parse(std::string(
      R"({"apiVersion":{"type":"string","description":"APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values."},)"
      R"("kind":{"type":"string","description":"Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. In CamelCase."},)"
      R"("metadata":{"allOf":[{"$ref":"#/components/schemas/)" + std::string(kObjectMetaSchemaName) +
      R"("}],"default":{},"description":"Standard object's metadata."}})").c_str());
  for (auto& m : envelope.GetObject()) props.AddMember(Value(m.name, a), Value(m.value, a), a);
  if (auto p = doc.FindMember("properties"); p != doc.MemberEnd() && p->value.IsObject()) {
    for (auto& m : p->value.GetObject()) {
      if (props.HasMember(m.name)) continue;
      props.AddMember(Value(m.name, a), Value(m.value, a), a);
    }
    p->value = props;
  } else {
    doc.AddMember("properties", props, a);
  }
  if (!doc.HasMember("description")) {
    std::string d = s.kind + " (" + (s.group.empty() ? s.version : s.group + "/" + s.version) + ")";
    doc.AddMember("description", Value(d.c_str(), a), a);
  }
  Value gvk(rapidjson::kObjectType);
  gvk.AddMember("group", Value(s.group.c_str(), a), a);
  gvk.AddMember("kind", Value(s.kind.c_str(), a), a);
  gvk.AddMember("version", Value(s.version.c_str(), a), a);
  Value gvks(rapidjson::kArrayType);
  gvks.PushBack(gvk, a);
  doc.AddMember("x-kubernetes-group-version-kind", gvks, a);
  return ToJson(doc);
}

namespace {

TypeRef Scalar(TypeKind kind, std::string description = "") {
  auto t = std::make_shared<Type>();
  t->kind = kind;
  t->description = std::move(description);
  return t;
}

TypeRef ListOf(TypeRef element, std::vector<std::string> keys = {}, bool set = false) {
  auto t = std::make_shared<Type>();
  t->kind = TypeKind::kList;
  t->element = std::move(element);
  t->list_map_keys = std::move(keys);
  t->list_is_set = set;
  return t;
}

Field MakeField(std::string name, TypeRef type, std::string description = "", bool required = false) {
  Field f;
  f.name = std::move(name);
  f.type = std::move(type);
  f.description = std::move(description);
  f.required = required;
  return f;
}

// metav1.ObjectMeta as k8s.io/apimachinery declares it (descriptions abridged).
const Type& ObjectMetaType() {
  static const Type* meta = [] {
    auto owner = std::make_shared<Type>();
    owner->kind = TypeKind::kStruct;
    owner->name = "OwnerReference";
    owner->description = "OwnerReference contains enough information to let you identify an owning object.";
    owner->fields = {
        MakeField("apiVersion", Scalar(TypeKind::kString), "API version of the referent.", true),
        MakeField("blockOwnerDeletion", Scalar(TypeKind::kBool)),
        MakeField("controller", Scalar(TypeKind::kBool), "If true, this reference points to the managing controller."),
        MakeField("kind", Scalar(TypeKind::kString), "Kind of the referent.", true),
        MakeField("name", Scalar(TypeKind::kString), "Name of the referent.", true),
        MakeField("uid", Scalar(TypeKind::kString), "UID of the referent.", true),
    };
    auto managed = std::make_shared<Type>();
    managed->kind = TypeKind::kStruct;
    managed->name = "ManagedFieldsEntry";
    managed->fields = {
        MakeField("apiVersion", Scalar(TypeKind::kString)),
        MakeField("fieldsType", Scalar(TypeKind::kString)),
        MakeField("fieldsV1", Scalar(TypeKind::kAny)),
        MakeField("manager", Scalar(TypeKind::kString)),
        MakeField("operation", Scalar(TypeKind::kString)),
        MakeField("subresource", Scalar(TypeKind::kString)),
        MakeField("time", Scalar(TypeKind::kTimestamp)),
    };
    auto strings = std::make_shared<Type>();
    strings->kind = TypeKind::kMap;
    strings->element = Scalar(TypeKind::kString);
    auto* t = new Type;
    t->kind = TypeKind::kStruct;
    t->name = "ObjectMeta";
    t->description = "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.";
    t->fields = {
        MakeField("annotations", strings, "Annotations is an unstructured key value map stored with a resource."),
        MakeField("creationTimestamp", Scalar(TypeKind::kTimestamp), "The time this object was created (server-set)."),
        MakeField("deletionGracePeriodSeconds", Scalar(TypeKind::kInt)),
        MakeField("deletionTimestamp", Scalar(TypeKind::kTimestamp), "When this resource will be deleted (server-set)."),
        MakeField("finalizers", ListOf(Scalar(TypeKind::kString), {}, true), "Must be empty before the object is deleted from the registry."),
        MakeField("generateName", Scalar(TypeKind::kString), "Prefix the server uses to generate a unique name when name is empty."),
        MakeField("generation", Scalar(TypeKind::kInt), "A sequence number representing a specific generation of the desired state."),
        MakeField("labels", strings, "Map of string keys and values that can be used to organize and categorize objects."),
        MakeField("managedFields", ListOf(managed), "Field ownership (server-side apply)."),
        MakeField("name", Scalar(TypeKind::kString), "Name must be unique within a namespace."),
        MakeField("namespace", Scalar(TypeKind::kString), "The namespace the object belongs to."),
        MakeField("ownerReferences", ListOf(owner, {"uid"}), "Objects depended by this object."),
        MakeField("resourceVersion", Scalar(TypeKind::kString), "An opaque value that represents the internal version of this object."),
        MakeField("selfLink", Scalar(TypeKind::kString), "Deprecated."),
        MakeField("uid", Scalar(TypeKind::kString), "UID is the unique in time and space value for this object (server-set)."),
    };
    return t;
  }();
  return *meta;
}

// Strategic merge patch strategies from a schema (see PatchSchemaFor).
class SchemaPatchSchema : public am::PatchSchema {
 public:
  SchemaPatchSchema(TypeRef root, const am::PatchSchema* fallback) : root_(std::move(root)), fallback_(fallback) {}

  std::optional<am::ListStrategy> ForPath(std::span<const std::string> path) const override {
    if (path.empty()) return std::nullopt;
    const Type* t = nullptr;
    std::span<const std::string> rest = path;
    if (path[0] == "metadata") {
      t = &ObjectMetaType();
      rest = path.subspan(1);
    } else {
      t = root_.get();
    }
    for (size_t i = 0; t && i < rest.size(); ++i) {
      while (t && t->kind == TypeKind::kList) t = t->element.get();  // lists are implicit in paths
      if (!t) break;
      if (t->kind == TypeKind::kMap) {
        t = t->element.get();  // the segment is a map key
      } else if (t->kind == TypeKind::kStruct) {
        const Field* f = t->FindField(rest[i]);
        t = f ? f->type.get() : nullptr;
      } else {
        t = nullptr;
      }
    }
    if (t && t->kind == TypeKind::kList) {
      if (!t->list_map_keys.empty()) return am::ListStrategy{true, t->list_map_keys[0]};
      if (t->list_is_set) return am::ListStrategy{true, ""};
    }
    // The schema does not say (undeclared, kAny, or an atomic list): the fallback may.
    if (fallback_) {
      if (auto s = fallback_->ForPath(path)) return s;
    }
    if (t && t->kind == TypeKind::kList) return am::ListStrategy{false, ""};
    return std::nullopt;
  }

 private:
  TypeRef root_;
  const am::PatchSchema* fallback_;
};

}  // namespace

std::string ObjectMetaOpenApiV3() { return OpenApiV3(ObjectMetaType()); }

std::unique_ptr<am::PatchSchema> PatchSchemaFor(const ResourceSchema& schema, const am::PatchSchema* fallback) {
  return std::make_unique<SchemaPatchSchema>(schema.root, fallback);
}

}  // namespace rc::schema
