#include <cmath>
#include <functional>
#include <regex>
#include <set>

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
          out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": " + q.status().message(), path});
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
    if (c.minimum && x < *c.minimum) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": " + path + " in body should be greater than or equal to " + Num(*c.minimum), path});
    }
    if (c.maximum && x > *c.maximum) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Shown(v) + ": " + path + " in body should be less than or equal to " + Num(*c.maximum), path});
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
};

void Unknown(const Type& t, const Value& v, const std::string& path, std::vector<std::string>& out) {
  if (t.kind == TypeKind::kStruct && v.IsObject()) {
    for (auto& m : v.GetObject()) {
      std::string name(m.name.GetString(), m.name.GetStringLength());
      const Field* f = t.FindField(name);
      std::string fpath = path.empty() ? name : path + "." + name;
      if (!f) {
        out.push_back(fpath);
      } else if (f->type) {
        Unknown(*f->type, m.value, fpath, out);
      }
    }
  } else if (t.kind == TypeKind::kList && v.IsArray() && t.element) {
    for (rapidjson::SizeType i = 0; i < v.Size(); ++i) Unknown(*t.element, v[i], path + "[" + std::to_string(i) + "]", out);
  } else if (t.kind == TypeKind::kMap && v.IsObject() && t.element) {
    for (auto& m : v.GetObject()) Unknown(*t.element, m.value, path + "[" + std::string(m.name.GetString()) + "]", out);
  }
}

void Emit(const Type& t, rapidjson::Writer<rapidjson::StringBuffer>& w, std::set<const Type*>& stack) {
  w.StartObject();
  if (!t.description.empty()) { w.Key("description"); w.String(t.description.c_str()); }
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
    case TypeKind::kQuantity: case TypeKind::kIntOrString: w.Key("x-kubernetes-int-or-string"); w.Bool(true); break;
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
          Type copy = *f.type;
          if (!f.description.empty()) copy.description = f.description;
          Emit(copy, w, stack);
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
  Validator v;
  if (schema.root) v.Check(*schema.root, obj, "", old);
  return v.out;
}

std::vector<std::string> UnknownFields(const ResourceSchema& schema, const Value& obj) {
  std::vector<std::string> out;
  if (!schema.root || !obj.IsObject()) return out;
  for (auto& m : obj.GetObject()) {
    std::string name(m.name.GetString(), m.name.GetStringLength());
    if (name == "apiVersion" || name == "kind" || name == "metadata") continue;
    const Field* f = schema.root->FindField(name);
    if (!f) out.push_back(name);
    else if (f->type) Unknown(*f->type, m.value, name, out);
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
  std::string root = s.root ? OpenApiV3(*s.root) : R"({"type":"object"})";
  // root is {"type":"object","properties":{...}...}: splice the envelope into its properties.
  std::string envelope =
      R"("apiVersion":{"type":"string","description":"APIVersion defines the versioned schema of this representation of an object."},)"
      R"("kind":{"type":"string","description":"Kind is a string value representing the REST resource this object represents."},)"
      R"("metadata":{"type":"object","x-kubernetes-preserve-unknown-fields":true})";
  size_t props = root.find("\"properties\":{");
  if (props == std::string::npos) {
    root.insert(root.size() - 1, std::string(",\"properties\":{") + envelope + "}");
  } else {
    size_t at = props + std::string("\"properties\":{").size();
    bool empty = root[at] == '}';
    root.insert(at, envelope + (empty ? "" : ","));
  }
  std::string gvk = R"(,"x-kubernetes-group-version-kind":[{"group":)" + Quote(s.group) + R"(,"kind":)" + Quote(s.kind) +
                    R"(,"version":)" + Quote(s.version) + "}]";
  root.insert(root.size() - 1, gvk);
  return root;
}

}  // namespace rc::schema
