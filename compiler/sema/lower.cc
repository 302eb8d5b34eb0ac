// Resource declarations -> rc::schema::ResourceSchema (what the API server serves).
#include <algorithm>
#include <cctype>
#include <map>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "rc/compiler/program.h"

namespace rc::compiler {
namespace {

using dsl::Expr;
using dsl::ExprKind;

// Go's time.Duration.String() for whole seconds ("1h0m0s", "1m30s", "30s"); the runtime has the
// general form.
std::string FormatDuration(int64_t ns) {
  if (ns == 0) return "0s";
  if (ns % 1000000000 != 0) return std::to_string(ns / 1000000) + "ms";
  int64_t s = ns / 1000000000;
  std::string out;
  if (s >= 3600) out += std::to_string(s / 3600) + "h" + std::to_string((s % 3600) / 60) + "m";
  else if (s >= 60) out += std::to_string(s / 60) + "m";
  return out + std::to_string(s % 60) + "s";
}

// JSON text of a constant expression, or nullopt when it is not constant.
bool WriteConstant(const Expr* e, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  switch (e->kind) {
    case ExprKind::kInt: w.Int64(e->int_value); return true;
    case ExprKind::kFloat: w.Double(e->float_value); return true;
    case ExprKind::kString: w.String(e->text.c_str(), e->text.size()); return true;
    case ExprKind::kBool: w.Bool(e->bool_value); return true;
    case ExprKind::kNull: w.Null(); return true;
    case ExprKind::kDuration: { auto s = FormatDuration(e->int_value); w.String(s.c_str()); return true; }
    case ExprKind::kName: w.String(e->text.c_str()); return true;  // enum value
    case ExprKind::kField:
      if (e->lhs && e->lhs->kind == ExprKind::kName) { w.String(e->text.c_str()); return true; }
      return false;
    case ExprKind::kUnary:
      if (e->text == "-" && e->lhs->kind == ExprKind::kInt) { w.Int64(-e->lhs->int_value); return true; }
      if (e->text == "-" && e->lhs->kind == ExprKind::kFloat) { w.Double(-e->lhs->float_value); return true; }
      return false;
    case ExprKind::kList:
      w.StartArray();
      for (auto& i : e->items) if (!WriteConstant(i.get(), w)) return false;
      w.EndArray();
      return true;
    case ExprKind::kObject:
      w.StartObject();
      for (auto& en : e->entries) {
        w.Key(en.key.c_str(), en.key.size());
        if (!WriteConstant(en.value.get(), w)) return false;
      }
      w.EndObject();
      return true;
    default: return false;
  }
}

std::optional<std::string> ConstantJson(const Expr* e) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  if (!WriteConstant(e, w)) return std::nullopt;
  return std::string(buf.GetString(), buf.GetSize());
}

double Number(const Expr* e) {
  if (e->kind == ExprKind::kUnary) return -Number(e->lhs.get());
  return e->kind == ExprKind::kInt ? static_cast<double>(e->int_value) : e->float_value;
}

schema::StringFormat FormatNamed(const std::string& n) {
  if (n == "dns1123Label") return schema::StringFormat::kDns1123Label;
  if (n == "dns1123Subdomain") return schema::StringFormat::kDns1123Subdomain;
  if (n == "qualifiedName") return schema::StringFormat::kQualifiedName;
  if (n == "labelValue") return schema::StringFormat::kLabelValue;
  if (n == "ip") return schema::StringFormat::kIp;
  return schema::StringFormat::kNone;
}

class Lowerer {
 public:
  explicit Lowerer(const Program& p) : p_(p) {}

  schema::TypeRef TypeOf(int id) {
    const Ty& t = p_.types.Get(id);
    switch (t.kind) {
      case TyKind::kOptional: return TypeOf(t.elem);
      case TyKind::kString: return Scalar(schema::TypeKind::kString);
      case TyKind::kInt: return Scalar(schema::TypeKind::kInt);
      case TyKind::kFloat: return Scalar(schema::TypeKind::kFloat);
      case TyKind::kBool: return Scalar(schema::TypeKind::kBool);
      case TyKind::kQuantity: return Scalar(schema::TypeKind::kQuantity);
      case TyKind::kDuration: return Scalar(schema::TypeKind::kDuration);
      case TyKind::kTimestamp: return Scalar(schema::TypeKind::kTimestamp);
      case TyKind::kIntOrString: return Scalar(schema::TypeKind::kIntOrString);
      case TyKind::kList: {
        auto l = std::make_shared<schema::Type>();
        l->kind = schema::TypeKind::kList;
        l->element = TypeOf(t.elem);
        return l;
      }
      case TyKind::kMap: {
        auto m = std::make_shared<schema::Type>();
        m->kind = schema::TypeKind::kMap;
        m->element = TypeOf(t.elem);
        return m;
      }
      case TyKind::kEnum: {
        auto it = memo_.find(t.en->name);
        if (it != memo_.end()) return it->second;
        auto e = std::make_shared<schema::Type>();
        e->kind = schema::TypeKind::kEnum;
        e->name = t.en->name;
        e->description = t.en->decl->doc;
        e->enum_values = t.en->decl->values;
        memo_[t.en->name] = e;
        return e;
      }
      case TyKind::kStruct: return Struct(*t.st, /*skip_envelope=*/false);
      default: return Scalar(schema::TypeKind::kAny);
    }
  }

  schema::TypeRef Scalar(schema::TypeKind k) {
    auto t = std::make_shared<schema::Type>();
    t->kind = k;
    return t;
  }

  schema::TypeRef Struct(const StructInfo& st, bool skip_envelope) {
    std::string key = st.name + (skip_envelope ? "#root" : "");
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    auto s = std::make_shared<schema::Type>();
    s->kind = schema::TypeKind::kStruct;
    s->name = st.name;
    s->description = st.decl ? st.decl->doc : st.resource->doc;
    memo_[key] = s;  // before the fields: recursive types refer to themselves
    for (const auto& f : st.fields) {
      if (skip_envelope && (f.name == "apiVersion" || f.name == "kind" || f.name == "metadata")) continue;
      s->fields.push_back(Field(f));
    }
    // Rules: messages and paths here; the loader attaches the compiled checks.
    for (const auto& r : st.decl ? st.decl->rules : st.resource->rules) s->rules.push_back({r.message, r.field, nullptr});
    return s;
  }

  schema::Field Field(const FieldInfo& f) {
    schema::Field out;
    out.name = f.name;
    schema::TypeRef base = TypeOf(f.type);
    if (!f.decl) {
      out.type = base;
      return out;
    }
    out.description = f.decl->doc;
    // Attributes refine the type; copy it so shared declared types stay untouched.
    auto t = std::make_shared<schema::Type>(*base);
    for (const auto& a : f.decl->attributes) {
      if (a.name == "required") out.required = true;
      else if (a.name == "immutable") out.immutable = true;
      else if (a.args.empty() && a.name != "listSet") continue;
      else if (a.name == "min") t->constraints.minimum = Number(a.args[0].get());
      else if (a.name == "max") t->constraints.maximum = Number(a.args[0].get());
      else if (a.name == "minLength") t->constraints.min_length = static_cast<int64_t>(Number(a.args[0].get()));
      else if (a.name == "maxLength") t->constraints.max_length = static_cast<int64_t>(Number(a.args[0].get()));
      else if (a.name == "minItems") t->constraints.min_items = static_cast<int64_t>(Number(a.args[0].get()));
      else if (a.name == "maxItems") t->constraints.max_items = static_cast<int64_t>(Number(a.args[0].get()));
      else if (a.name == "maxProperties") t->constraints.max_properties = static_cast<int64_t>(Number(a.args[0].get()));
      else if (a.name == "pattern") t->constraints.pattern = a.args[0]->text;
      else if (a.name == "format") t->constraints.format = FormatNamed(a.args[0]->text);
      else if (a.name == "listMapKeys") for (auto& k : a.args) t->list_map_keys.push_back(k->text);
      else if (a.name == "listSet") t->list_is_set = true;
    }
    out.type = t;
    if (f.decl->default_value && IsConstantExpr(p_, f.decl->default_value.get())) {
      out.default_json = ConstantJson(f.decl->default_value.get());
    }
    return out;
  }

  static std::string StringSetting(const dsl::ResourceDecl& r, const std::string& name, std::string dflt) {
    for (auto& s : r.settings) {
      if (s.name == name && s.value->kind == ExprKind::kString) return s.value->text;
      if (s.name == name && s.value->kind == ExprKind::kName) return s.value->text;
    }
    return dflt;
  }
  static std::vector<std::string> ListSetting(const dsl::ResourceDecl& r, const std::string& name) {
    std::vector<std::string> out;
    for (auto& s : r.settings) {
      if (s.name == name && s.value->kind == ExprKind::kList) {
        for (auto& i : s.value->items) out.push_back(i->text);
      }
    }
    return out;
  }

  // "spec.replicas" when the column is a plain field path from the object, else "".
  std::string PathOf(const Expr* e) {
    if (e->kind == ExprKind::kName) {
      const Resolution* r = p_.Resolve(e);
      return r && r->kind == Resolution::Kind::kSelfField && !r->name.empty() ? r->name : "";
    }
    if (e->kind == ExprKind::kField || e->kind == ExprKind::kSafeField) {
      std::string base = PathOf(e->lhs.get());
      return base.empty() ? "" : base + "." + e->text;
    }
    return "";
  }

  std::string ColumnType(int id) {
    const Ty& t = p_.types.Get(id);
    int k = id;
    if (t.kind == TyKind::kOptional) k = t.elem;
    switch (p_.types.Get(k).kind) {
      case TyKind::kInt: return "integer";
      case TyKind::kFloat: return "number";
      case TyKind::kBool: return "boolean";
      case TyKind::kTimestamp: return "date";
      default: return "string";
    }
  }

  schema::ResourceSchema Resource(const dsl::ResourceDecl& r) {
    schema::ResourceSchema out;
    std::string lower = r.name;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    out.group = StringSetting(r, "group", "");
    out.version = StringSetting(r, "version", "v1");
    out.kind = r.name;
    out.singular = StringSetting(r, "singular", lower);
    out.plural = StringSetting(r, "plural", lower + "s");
    out.short_names = ListSetting(r, "shortNames");
    out.categories = ListSetting(r, "categories");
    out.namespaced = StringSetting(r, "scope", "Namespaced") == "Namespaced";
    out.name_format = StringSetting(r, "nameFormat", "dns1123Subdomain") == "dns1123Label"
                          ? schema::StringFormat::kDns1123Label
                          : schema::StringFormat::kDns1123Subdomain;
    out.field_selectors = ListSetting(r, "fieldSelectors");
    for (auto& sub : r.subresources) {
      if (sub.name == "status") out.has_status = true;
      if (sub.name == "scale") {
        schema::ScaleSubresource scale;
        for (auto& s : sub.settings) {
          std::string v = s.value->text;
          if (!v.empty() && v[0] == '.') v.erase(0, 1);
          if (s.name == "specReplicasPath") scale.spec_replicas_path = v;
          if (s.name == "statusReplicasPath") scale.status_replicas_path = v;
          if (s.name == "labelSelectorPath") scale.label_selector_path = v;
        }
        out.scale = scale;
      }
    }
    out.root = Struct(*p_.structs.at(r.name), /*skip_envelope=*/true);
    bool name_column = true;
    for (auto& st : r.settings) {
      if (st.name == "nameColumn" && st.value->kind == ExprKind::kBool) name_column = st.value->bool_value;
    }
    schema::Column name_col;
    name_col.name = "Name";
    name_col.type = "string";
    name_col.format = "name";
    name_col.description = "Name must be unique within a namespace.";
    name_col.json_path = "metadata.name";
    if (name_column) out.columns.push_back(name_col);
    for (auto& c : r.columns) {
      schema::Column col;
      col.name = c.name;
      auto it = p_.columns.find(&c);
      col.type = it != p_.columns.end() ? ColumnType(it->second.type) : "string";
      col.priority = std::find(c.flags.begin(), c.flags.end(), "wide") != c.flags.end() ? 1 : 0;
      col.json_path = PathOf(c.value.get());
      out.columns.push_back(std::move(col));
    }
    out.source_file = r.range.file ? r.range.file->path : "";
    out.source_hash = p_.content_hash;
    return out;
  }

 private:
  const Program& p_;
  std::map<std::string, schema::TypeRef> memo_;
};

}  // namespace

bool IsConstantExpr(const Program& program, const Expr* e) {
  switch (e->kind) {
    case ExprKind::kInt: case ExprKind::kFloat: case ExprKind::kString: case ExprKind::kDuration:
    case ExprKind::kBool: case ExprKind::kNull: return true;
    case ExprKind::kName:
    case ExprKind::kField: {
      const Resolution* r = program.Resolve(e);
      return r && r->kind == Resolution::Kind::kEnumValue;
    }
    case ExprKind::kUnary: return e->text == "-" && IsConstantExpr(program, e->lhs.get());
    case ExprKind::kList:
      for (auto& i : e->items) if (!IsConstantExpr(program, i.get())) return false;
      return true;
    case ExprKind::kObject:
      for (auto& en : e->entries) if (!IsConstantExpr(program, en.value.get())) return false;
      return true;
    default: return false;
  }
}

std::vector<schema::ResourceSchema> LowerResources(const Program& program) {
  Lowerer lowerer(program);
  std::vector<schema::ResourceSchema> out;
  for (auto& m : program.modules) {
    if (m->file && m->file->path.rfind("<prelude>", 0) == 0) continue;
    for (auto& r : m->resources) out.push_back(lowerer.Resource(*r));
  }
  return out;
}

}  // namespace rc::compiler
