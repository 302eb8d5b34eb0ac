// The type checker: resolves names and types, verifies field paths against the declared schemas,
// and reports precise diagnostics (codes E01xx) with suggestions.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <sstream>

#include "rc/compiler/program.h"

namespace rc::compiler {
namespace {

using dsl::Expr;
using dsl::ExprKind;
using dsl::SourceRange;
using dsl::Stmt;
using dsl::StmtKind;

const std::vector<std::string> kAttributes = {"required", "immutable", "min", "max", "minLength",
                                              "maxLength", "pattern", "minItems", "maxItems",
                                              "maxProperties", "format", "listMapKeys", "listSet"};
const std::vector<std::string> kFormats = {"dns1123Label", "dns1123Subdomain", "qualifiedName",
                                           "labelValue", "ip"};
const std::vector<std::string> kResourceSettings = {"group", "version", "plural", "singular",
                                                    "shortNames", "categories", "scope",
                                                    "nameFormat", "fieldSelectors", "nameColumn"};
const std::vector<std::string> kControllerSettings = {"resync", "workers"};
const std::vector<std::string> kBuiltinFunctions = {
    "len", "str", "int", "float", "now", "since", "humanDuration", "hash", "podTemplateHash",
    "labelsMatch", "selectorMatches", "selectorString", "quantity", "milli", "abs", "min", "max",
    "range", "get", "list", "create", "update", "updateStatus", "patch", "delete", "emit"};
const std::set<std::string> kEffects = {"get", "list", "create", "update", "updateStatus", "patch",
                                        "delete", "emit"};
const std::vector<std::string> kListMethods = {"len", "count", "filter", "map", "any", "all", "first",
                                               "sum", "min", "max", "minBy", "maxBy", "sortBy",
                                               "take", "contains", "reverse", "join"};
const std::vector<std::string> kMapMethods = {"len", "keys", "values", "has", "get"};
const std::vector<std::string> kStringMethods = {"len", "contains", "startsWith", "endsWith", "lower",
                                                 "upper", "trim", "split", "replace"};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

std::string Hint(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best = dsl::ClosestMatch(word, candidates);
  return best.empty() ? "" : "did you mean " + Quote(best) + "?";
}

class Checker {
 public:
  Checker(Program& p, dsl::Diagnostics& d) : p_(p), d_(d), T(p.types) {}

  void Run() {
    Collect();
    ResolveStructs();
    for (auto& [name, st] : p_.structs) CheckFieldDecls(*st);
    for (auto& m : p_.modules) {
      for (auto& r : m->resources) CheckResource(*r);
      for (auto& c : m->consts) CheckConst(*c);
    }
    for (auto& [name, f] : p_.functions) CheckFunction(f);
    for (auto& c : p_.controllers) CheckController(c);
  }

 private:
  // ---------- declarations ----------
  void Declare(const std::string& name, SourceRange range) {
    auto it = declared_.find(name);
    if (it != declared_.end()) {
      auto [line, col] = it->second.file->LineCol(it->second.begin);
      d_.Error("E0102", range, Quote(name) + " is already declared",
               "the first declaration is at " + it->second.file->path + ":" + std::to_string(line) +
                   ":" + std::to_string(col));
      return;
    }
    declared_[name] = range;
  }

  void Collect() {
    for (auto& m : p_.modules) {
      for (auto& s : m->structs) {
        Declare(s->name, s->name_range);
        auto info = std::make_unique<StructInfo>();
        info->name = s->name;
        info->decl = s.get();
        p_.structs.emplace(s->name, std::move(info));
      }
      for (auto& r : m->resources) {
        Declare(r->name, r->name_range);
        auto info = std::make_unique<StructInfo>();
        info->name = r->name;
        info->resource = r.get();
        p_.structs.emplace(r->name, std::move(info));
      }
      for (auto& e : m->enums) {
        Declare(e->name, e->name_range);
        auto info = std::make_unique<EnumInfo>();
        info->name = e->name;
        info->decl = e.get();
        std::set<std::string> seen;
        for (size_t i = 0; i < e->values.size(); ++i) {
          if (!seen.insert(e->values[i]).second) {
            d_.Error("E0102", e->value_ranges[i], "enum value " + Quote(e->values[i]) + " is listed twice");
          }
        }
        p_.enums.emplace(e->name, std::move(info));
      }
      for (auto& f : m->functions) {
        Declare(f->name, f->name_range);
        FunctionInfo info;
        info.name = f->name;
        info.decl = f.get();
        p_.functions.emplace(f->name, std::move(info));
      }
      for (auto& c : m->consts) {
        Declare(c->name, c->range);
        p_.consts.emplace(c->name, std::make_pair(c.get(), T.error));
      }
      for (auto& c : m->controllers) {
        Declare(c->name, c->name_range);
        ControllerInfo info;
        info.name = c->name;
        info.decl = c.get();
        p_.controllers.push_back(std::move(info));
        for (auto& h : c->helpers) {
          FunctionInfo fi;
          fi.name = c->name + "." + h->name;
          fi.decl = h.get();
          fi.in_controller = true;
          p_.functions.emplace(fi.name, std::move(fi));
        }
      }
    }
    // Signatures first: bodies may call functions declared later.
    for (auto& [name, f] : p_.functions) {
      for (auto& param : f.decl->params) f.params.push_back(ResolveType(param.type.get()));
      f.result = f.decl->result ? ResolveType(f.decl->result.get()) : T.void_;
    }
  }

  std::vector<std::string> TypeNames() const {
    std::vector<std::string> names = {"string", "int", "float", "bool", "quantity", "duration",
                                      "timestamp", "intOrString", "any"};
    for (auto& [n, s] : p_.structs) names.push_back(n);
    for (auto& [n, e] : p_.enums) names.push_back(n);
    return names;
  }

  int NamedType(const std::string& full, SourceRange range, bool report = true) {
    if (full.empty()) return T.error;  // after a syntax error
    std::string name = full;
    if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
    static const std::map<std::string, TyKind> builtins = {
        {"string", TyKind::kString}, {"int", TyKind::kInt}, {"float", TyKind::kFloat},
        {"bool", TyKind::kBool}, {"quantity", TyKind::kQuantity}, {"duration", TyKind::kDuration},
        {"timestamp", TyKind::kTimestamp}, {"intOrString", TyKind::kIntOrString}, {"any", TyKind::kAny}};
    if (auto it = builtins.find(name); it != builtins.end()) return T.Of(it->second);
    if (auto it = p_.structs.find(name); it != p_.structs.end()) return T.Intern(Ty{TyKind::kStruct, -1, it->second.get()});
    if (auto it = p_.enums.find(name); it != p_.enums.end()) return T.Intern(Ty{TyKind::kEnum, -1, nullptr, it->second.get()});
    if (report) d_.Error("E0101", range, "unknown type " + Quote(full), Hint(name, TypeNames()));
    return T.error;
  }

  int ResolveType(const dsl::TypeExpr* t) {
    if (!t) return T.error;
    switch (t->kind) {
      case dsl::TypeExpr::Kind::kNamed: return NamedType(t->name, t->range);
      case dsl::TypeExpr::Kind::kList: return T.List(ResolveType(t->inner.get()));
      case dsl::TypeExpr::Kind::kMap: return T.Map(ResolveType(t->inner.get()));
      case dsl::TypeExpr::Kind::kOptional: return T.Optional(ResolveType(t->inner.get()));
    }
    return T.error;
  }

  void ResolveStructs() {
    for (auto& [name, st] : p_.structs) {
      const auto& fields = st->decl ? st->decl->fields : st->resource->fields;
      std::set<std::string> seen;
      if (st->resource) {
        st->fields.push_back({"apiVersion", T.string, nullptr});
        st->fields.push_back({"kind", T.string, nullptr});
        int meta = NamedType("ObjectMeta", st->resource->name_range, /*report=*/false);
        st->fields.push_back({"metadata", meta == T.error ? T.any : meta, nullptr});
        seen = {"apiVersion", "kind", "metadata"};
      }
      for (const auto& f : fields) {
        if (!seen.insert(f.name).second) {
          d_.Error("E0102", f.name_range, "field " + Quote(f.name) + " is declared twice in " + Quote(name));
          continue;
        }
        st->fields.push_back({f.name, ResolveType(f.type.get()), &f});
      }
    }
  }

  // ---------- constants ----------
  static bool IsConstant(const Expr* e) {
    if (!e) return true;
    switch (e->kind) {
      case ExprKind::kInt: case ExprKind::kFloat: case ExprKind::kString: case ExprKind::kDuration:
      case ExprKind::kBool: case ExprKind::kNull: return true;
      case ExprKind::kUnary: return e->text == "-" && IsConstant(e->lhs.get());
      case ExprKind::kList:
        for (auto& i : e->items) if (!IsConstant(i.get())) return false;
        return true;
      case ExprKind::kObject:
        for (auto& en : e->entries) if (!IsConstant(en.value.get())) return false;
        return true;
      case ExprKind::kName: return true;  // enum value or Namespaced/Cluster: checked by type
      case ExprKind::kField: return e->lhs && e->lhs->kind == ExprKind::kName;  // Enum.Value
      default: return false;
    }
  }

  // ---------- field declarations ----------
  void CheckRules(const StructInfo& st, const std::vector<dsl::RuleDecl>& rules) {
    for (auto& r : rules) {
      BeginScope(&st);
      RequireBool(r.condition.get(), "a rule");
      EndScope();
      if (!r.field.empty()) {
        // The path must name fields of this object.
        const StructInfo* cur = &st;
        std::string rest = r.field;
        while (cur && !rest.empty()) {
          std::string head = rest.substr(0, rest.find('.'));
          rest = rest.find('.') == std::string::npos ? "" : rest.substr(rest.find('.') + 1);
          const FieldInfo* f = cur->Find(head);
          if (!f) {
            d_.Error("E0120", r.range, "unknown field " + Quote(head) + " in " + Quote(cur->name) + " (rule path " + r.field + ")",
                     Hint(head, FieldNames(*cur)));
            break;
          }
          int ft = f->type;
          if (T.Get(ft).kind == TyKind::kOptional) ft = T.Get(ft).elem;
          cur = T.Get(ft).kind == TyKind::kStruct ? T.Get(ft).st : nullptr;
        }
      }
    }
  }

  void CheckFieldDecls(StructInfo& st) {
    CheckRules(st, st.decl ? st.decl->rules : st.resource->rules);
    for (auto& f : st.fields) {
      if (!f.decl) continue;
      const Ty& ty = T.Get(f.type);
      int base = ty.kind == TyKind::kOptional ? ty.elem : f.type;
      const Ty& bt = T.Get(base);
      for (auto& a : f.decl->attributes) CheckAttribute(a, base, bt);
      if (f.decl->default_value) {
        // Defaults see the enclosing object's fields (a computed default such as the image pull
        // policy reads the image).
        BeginScope(&st);
        // An optional field's default may be null (no default in that case).
        int target = ty.kind == TyKind::kOptional ? f.type : base;
        int dt = Check(f.decl->default_value.get(), target);
        RequireAssignable(dt, target, f.decl->default_value->range, "default value");
        EndScope();
      }
    }
  }

  void ArgCount(const dsl::Attribute& a, size_t n) {
    if (a.args.size() != n) {
      d_.Error("E0111", a.range, "@" + a.name + " takes " + std::to_string(n) + " argument" + (n == 1 ? "" : "s") +
                                     ", found " + std::to_string(a.args.size()));
    }
  }

  void NumberArg(const dsl::Attribute& a) {
    ArgCount(a, 1);
    if (a.args.size() == 1) {
      const Expr* e = a.args[0].get();
      bool neg = e->kind == ExprKind::kUnary && e->text == "-";
      const Expr* lit = neg ? e->lhs.get() : e;
      if (!lit || (lit->kind != ExprKind::kInt && lit->kind != ExprKind::kFloat)) {
        d_.Error("E0111", e->range, "@" + a.name + " takes a number");
      }
    }
  }

  void CheckAttribute(const dsl::Attribute& a, int base, const Ty& bt) {
    auto not_for = [&](const char* what) {
      d_.Error("E0111", a.range, "@" + a.name + " applies to " + what + ", not to " + T.Name(base));
    };
    bool numeric = bt.kind == TyKind::kInt || bt.kind == TyKind::kFloat || bt.kind == TyKind::kQuantity;
    bool stringy = bt.kind == TyKind::kString;
    if (a.name == "required" || a.name == "immutable" || a.name == "listSet") {
      ArgCount(a, 0);
      if (a.name == "listSet" && bt.kind != TyKind::kList) not_for("lists");
    } else if (a.name == "min" || a.name == "max") {
      NumberArg(a);
      if (!numeric && bt.kind != TyKind::kError) not_for("numbers");
    } else if (a.name == "minLength" || a.name == "maxLength") {
      NumberArg(a);
      if (!stringy && bt.kind != TyKind::kError) not_for("strings");
    } else if (a.name == "minItems" || a.name == "maxItems") {
      NumberArg(a);
      if (bt.kind != TyKind::kList && bt.kind != TyKind::kError) not_for("lists");
    } else if (a.name == "maxProperties") {
      NumberArg(a);
      if (bt.kind != TyKind::kMap && bt.kind != TyKind::kError) not_for("maps");
    } else if (a.name == "pattern") {
      ArgCount(a, 1);
      if (!stringy && bt.kind != TyKind::kError) not_for("strings");
      if (a.args.size() == 1) {
        if (a.args[0]->kind != ExprKind::kString) {
          d_.Error("E0111", a.args[0]->range, "@pattern takes a string literal");
        } else {
          try {
            std::regex re(a.args[0]->text, std::regex::ECMAScript);
          } catch (const std::regex_error& e) {
            d_.Error("E0112", a.args[0]->range, std::string("invalid regular expression: ") + e.what());
          }
        }
      }
    } else if (a.name == "format") {
      ArgCount(a, 1);
      if (!stringy && bt.kind != TyKind::kError) not_for("strings");
      if (a.args.size() == 1) {
        const Expr* e = a.args[0].get();
        std::string v = e->kind == ExprKind::kName || e->kind == ExprKind::kString ? e->text : "";
        if (std::find(kFormats.begin(), kFormats.end(), v) == kFormats.end()) {
          d_.Error("E0113", e->range, "unknown format " + Quote(v), Hint(v, kFormats));
        }
      }
    } else if (a.name == "listMapKeys") {
      if (a.args.empty()) d_.Error("E0111", a.range, "@listMapKeys takes at least one key");
      const StructInfo* elem = nullptr;
      if (bt.kind == TyKind::kList && T.Get(bt.elem).kind == TyKind::kStruct) elem = T.Get(bt.elem).st;
      else if (bt.kind != TyKind::kError) not_for("lists of structs");
      for (auto& arg : a.args) {
        if (arg->kind != ExprKind::kString) {
          d_.Error("E0111", arg->range, "@listMapKeys takes field names as string literals");
        } else if (elem && !elem->Find(arg->text)) {
          d_.Error("E0120", arg->range, "unknown field " + Quote(arg->text) + " in " + Quote(elem->name),
                   Hint(arg->text, FieldNames(*elem)));
        }
      }
    } else {
      d_.Error("E0110", a.range, "unknown attribute @" + a.name, Hint(a.name, kAttributes));
    }
  }

  static std::vector<std::string> FieldNames(const StructInfo& st) {
    std::vector<std::string> names;
    for (auto& f : st.fields) names.push_back(f.name);
    return names;
  }

  // ---------- resources ----------
  void CheckResource(const dsl::ResourceDecl& r) {
    std::set<std::string> seen;
    for (auto& s : r.settings) {
      if (std::find(kResourceSettings.begin(), kResourceSettings.end(), s.name) == kResourceSettings.end()) {
        d_.Error("E0114", s.range, "unknown resource setting " + Quote(s.name), Hint(s.name, kResourceSettings));
        continue;
      }
      if (!seen.insert(s.name).second) d_.Error("E0102", s.range, "setting " + Quote(s.name) + " is given twice");
      const Expr* v = s.value.get();
      if (s.name == "group" || s.name == "version" || s.name == "plural" || s.name == "singular") {
        if (v->kind != ExprKind::kString) d_.Error("E0115", v->range, Quote(s.name) + " must be a string literal");
      } else if (s.name == "shortNames" || s.name == "categories" || s.name == "fieldSelectors") {
        bool ok = v->kind == ExprKind::kList;
        if (ok) for (auto& i : v->items) ok = ok && i->kind == ExprKind::kString;
        if (!ok) d_.Error("E0115", v->range, Quote(s.name) + " must be a list of string literals");
      } else if (s.name == "scope") {
        if (v->kind != ExprKind::kName || (v->text != "Namespaced" && v->text != "Cluster")) {
          d_.Error("E0115", v->range, "scope must be Namespaced or Cluster",
                   v->kind == ExprKind::kName ? Hint(v->text, {"Namespaced", "Cluster"}) : "");
        }
      } else if (s.name == "nameColumn") {
        if (v->kind != ExprKind::kBool) d_.Error("E0115", v->range, "nameColumn must be true or false");
      } else if (s.name == "nameFormat") {
        if (v->kind != ExprKind::kName || (v->text != "dns1123Label" && v->text != "dns1123Subdomain")) {
          d_.Error("E0115", v->range, "nameFormat must be dns1123Label or dns1123Subdomain");
        }
      }
    }
    if (!seen.count("version")) {
      d_.Error("E0115", r.name_range, "resource " + Quote(r.name) + " has no version",
               "add: version = \"v1\";");
    }
    for (auto& sub : r.subresources) {
      if (sub.name != "status" && sub.name != "scale") {
        d_.Error("E0116", sub.range, "unknown subresource " + Quote(sub.name), Hint(sub.name, {"status", "scale"}));
        continue;
      }
      for (auto& s : sub.settings) {
        static const std::vector<std::string> scale = {"specReplicasPath", "statusReplicasPath", "labelSelectorPath"};
        if (sub.name == "status" || std::find(scale.begin(), scale.end(), s.name) == scale.end()) {
          d_.Error("E0116", s.range, "unknown setting " + Quote(s.name) + " of subresource " + sub.name,
                   sub.name == "scale" ? Hint(s.name, scale) : "");
        } else if (s.value->kind != ExprKind::kString) {
          d_.Error("E0115", s.value->range, Quote(s.name) + " must be a string literal");
        }
      }
    }
    const StructInfo* self = p_.structs.at(r.name).get();
    for (auto& c : r.columns) {
      BeginScope(self);
      int declared = c.type ? ResolveType(c.type.get()) : -1;
      int t = Check(c.value.get(), declared);
      // A column may show an absent value (an empty cell): T? is fine where T is declared.
      int shown = T.Get(t).kind == TyKind::kOptional ? T.Get(t).elem : t;
      if (declared >= 0) RequireAssignable(shown, declared, c.value->range, "column value");
      for (auto& flag : c.flags) {
        if (flag != "wide") d_.Error("E0117", c.range, "unknown column flag " + Quote(flag), "the only flag is 'wide'");
      }
      ColumnInfo info;
      info.decl = &c;
      info.type = declared >= 0 ? declared : t;
      info.locals = max_slot_;
      p_.columns[&c] = info;
      EndScope();
    }
  }

  void CheckConst(const dsl::ConstDecl& c) {
    BeginScope(nullptr);
    int declared = c.type ? ResolveType(c.type.get()) : -1;
    int t = Check(c.value.get(), declared);
    if (declared >= 0) RequireAssignable(t, declared, c.value->range, "constant");
    if (!IsConstant(c.value.get())) d_.Error("E0115", c.value->range, "a const must be a literal value");
    p_.consts[c.name].second = declared >= 0 ? declared : t;
    EndScope();
  }

  // ---------- functions and controllers ----------
  void CheckFunction(FunctionInfo& f) {
    BeginScope(nullptr);
    in_controller_ = f.in_controller;
    current_controller_ = f.in_controller ? f.name.substr(0, f.name.rfind('.')) : "";
    in_reconcile_ = false;
    fn_result_ = f.result;
    for (size_t i = 0; i < f.decl->params.size(); ++i) {
      Bind(f.decl->params[i].name, f.params[i], false, f.decl->params[i].range);
    }
    bool falls = CheckBlock(f.decl->body);
    if (falls && f.result != T.void_ && T.Get(f.result).kind != TyKind::kError) {
      d_.Error("E0130", f.decl->name_range, "function " + Quote(f.decl->name) + " may reach its end without returning a value of type " + T.Name(f.result),
               "add a return statement at the end");
    }
    f.locals = max_slot_;
    in_controller_ = false;
    current_controller_.clear();
    EndScope();
  }

  const StructInfo* ResourceNamed(const std::string& full, SourceRange range, const char* role) {
    std::string name = full;
    if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
    auto it = p_.structs.find(name);
    if (it == p_.structs.end() || !it->second->resource) {
      std::vector<std::string> resources;
      for (auto& [n, s] : p_.structs) if (s->resource) resources.push_back(n);
      d_.Error("E0142", range, std::string(role) + " " + Quote(full) + " is not a resource type", Hint(name, resources));
      return nullptr;
    }
    return it->second.get();
  }

  void CheckController(ControllerInfo& c) {
    const dsl::ControllerDecl& d = *c.decl;
    if (d.primary.empty()) {
      d_.Error("E0143", d.name_range, "controller " + Quote(d.name) + " has no primary type", "add: primary Deployment;");
    } else {
      c.primary = ResourceNamed(d.primary, d.primary_range, "primary type");
    }
    for (size_t i = 0; i < d.owns.size(); ++i) {
      if (auto* s = ResourceNamed(d.owns[i], d.owns_ranges[i], "owned type")) c.owns.push_back(s);
    }
    for (auto& s : d.settings) {
      if (std::find(kControllerSettings.begin(), kControllerSettings.end(), s.name) == kControllerSettings.end()) {
        d_.Error("E0114", s.range, "unknown controller setting " + Quote(s.name), Hint(s.name, kControllerSettings));
      } else if (s.name == "resync") {
        if (s.value->kind != ExprKind::kDuration) d_.Error("E0115", s.value->range, "resync must be a duration literal such as 30s");
        else c.resync_ns = s.value->int_value;
      } else if (s.name == "workers") {
        if (s.value->kind != ExprKind::kInt || s.value->int_value < 1 || s.value->int_value > 64) {
          d_.Error("E0115", s.value->range, "workers must be an integer from 1 to 64");
        }
      }
    }
    int primary_ty = c.primary ? T.Intern(Ty{TyKind::kStruct, -1, c.primary}) : T.error;
    for (auto& w : d.watches) {
      const StructInfo* s = ResourceNamed(w.type_name, w.range, "watched type");
      if (s) c.watches.push_back(s);
      if (w.mapping) {
        BeginScope(nullptr);
        in_controller_ = true;
        current_controller_ = d.name;
        int wt = s ? T.Intern(Ty{TyKind::kStruct, -1, s}) : T.error;
        int result = CheckLambdaOrFn(w.mapping.get(), {wt});
        const Ty& rt = T.Get(result);
        bool ok = rt.kind == TyKind::kError ||
                  (rt.kind == TyKind::kList && (T.Get(rt.elem).kind == TyKind::kString || rt.elem == primary_ty));
        if (!ok) {
          d_.Error("E0125", w.mapping->range, "a watch mapping must return the primary keys as [string] (\"namespace/name\") or [" +
                                                  (c.primary ? c.primary->name : std::string("primary")) + "], found " + T.Name(result));
        }
        in_controller_ = false;
        current_controller_.clear();
        EndScope();
      }
    }
    if (!d.reconcile) {
      d_.Error("E0143", d.name_range, "controller " + Quote(d.name) + " has no reconcile function",
               "add: reconcile(obj: " + (d.primary.empty() ? std::string("Primary") : d.primary) + ") { ... }");
      return;
    }
    c.reconcile.name = d.name + ".reconcile";
    c.reconcile.decl = d.reconcile.get();
    c.reconcile.in_controller = true;
    c.reconcile.result = T.void_;
    for (auto& param : d.reconcile->params) {
      int t = ResolveType(param.type.get());
      if (c.primary && t != primary_ty && T.Get(t).kind != TyKind::kError) {
        d_.Error("E0125", param.type->range, "reconcile takes the primary type " + Quote(c.primary->name) + ", found " + T.Name(t));
      }
      c.reconcile.params.push_back(t);
    }
    BeginScope(nullptr);
    in_controller_ = true;
    in_reconcile_ = true;
    current_controller_ = d.name;
    fn_result_ = T.void_;
    for (size_t i = 0; i < d.reconcile->params.size(); ++i) {
      Bind(d.reconcile->params[i].name, c.reconcile.params[i], false, d.reconcile->params[i].range);
    }
    CheckBlock(d.reconcile->body);
    c.reconcile.locals = max_slot_;
    in_controller_ = in_reconcile_ = false;
    current_controller_.clear();
    EndScope();
  }

  // A lambda `x => expr` or the name of a function, applied to `params`. Returns the result type.
  int CheckLambdaOrFn(const Expr* e, const std::vector<int>& params) {
    if (e->kind == ExprKind::kLambda) return CheckLambda(e, params);
    if (e->kind == ExprKind::kName) {
      // A controller's own helpers shadow global functions of the same name (as in calls).
      auto it = p_.functions.end();
      if (!current_controller_.empty()) it = p_.functions.find(current_controller_ + "." + e->text);
      if (it == p_.functions.end()) it = p_.functions.find(e->text);
      if (it != p_.functions.end() && it->second.in_controller && !in_controller_) it = p_.functions.end();
      if (it != p_.functions.end()) {
        p_.resolutions[e] = {Resolution::Kind::kFunction, it->first};
        if (it->second.params.size() != params.size()) {
          d_.Error("E0151", e->range, "function " + Quote(e->text) + " takes " + std::to_string(it->second.params.size()) +
                                          " parameters, expected " + std::to_string(params.size()));
        } else {
          for (size_t i = 0; i < params.size(); ++i) RequireAssignable(params[i], it->second.params[i], e->range, "argument");
        }
        p_.expr_types[e] = it->second.result;
        return it->second.result;
      }
    }
    d_.Error("E0128", e->range, "expected a lambda (x => ...) or a function name");
    return T.error;
  }

  int CheckLambda(const Expr* e, const std::vector<int>& params) {
    if (e->params.size() != params.size()) {
      d_.Error("E0151", e->range, "this lambda takes " + std::to_string(e->params.size()) + " parameter" +
                                      (e->params.size() == 1 ? "" : "s") + ", expected " + std::to_string(params.size()));
    }
    PushBlock();
    for (size_t i = 0; i < e->params.size(); ++i) {
      Bind(e->params[i], i < params.size() ? params[i] : T.error, false, e->range);
    }
    int t = Check(e->body.get());
    PopBlock();
    p_.expr_types[e] = t;
    return t;
  }

  // ---------- scopes ----------
  struct Local {
    std::string name;
    int type;
    bool is_mutable;
    int slot;
  };

  void BeginScope(const StructInfo* self) {
    self_ = self;
    blocks_.clear();
    blocks_.emplace_back();
    next_slot_ = 0;
    max_slot_ = 0;
    loop_depth_ = 0;
  }
  void EndScope() {
    blocks_.clear();
    self_ = nullptr;
  }
  void PushBlock() { blocks_.emplace_back(); }
  void PopBlock() {
    next_slot_ -= static_cast<int>(blocks_.back().size());
    blocks_.pop_back();
  }
  int Bind(const std::string& name, int type, bool is_mutable, SourceRange range) {
    for (auto& l : blocks_.back()) {
      if (l.name == name) d_.Error("E0102", range, Quote(name) + " is already declared in this block");
    }
    int slot = next_slot_++;
    max_slot_ = std::max(max_slot_, next_slot_);
    blocks_.back().push_back({name, type, is_mutable, slot});
    return slot;
  }
  const Local* Lookup(const std::string& name) const {
    for (auto b = blocks_.rbegin(); b != blocks_.rend(); ++b) {
      for (auto l = b->rbegin(); l != b->rend(); ++l) {
        if (l->name == name) return &*l;
      }
    }
    return nullptr;
  }
  std::vector<std::string> VisibleNames() const {
    std::vector<std::string> names;
    for (auto& b : blocks_) for (auto& l : b) names.push_back(l.name);
    if (self_) for (auto& f : self_->fields) names.push_back(f.name);
    for (auto& [n, f] : p_.functions) names.push_back(n);
    for (auto& [n, c] : p_.consts) names.push_back(n);
    for (auto& n : kBuiltinFunctions) names.push_back(n);
    return names;
  }

  // ---------- statements ----------
  // Returns whether control can reach the end of the block.
  bool CheckBlock(const std::vector<dsl::StmtPtr>& body) {
    PushBlock();
    bool falls = true;
    bool reported = false;
    for (auto& s : body) {
      if (!falls && !reported) {
        d_.Error("E0131", s->range, "unreachable code", "nothing after a return, fail, requeue, break or continue runs");
        reported = true;
      }
      bool f = CheckStmt(*s);
      falls = falls && f;
    }
    PopBlock();
    return falls;
  }

  bool CheckStmt(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::kLet: {
        int declared = s.declared ? ResolveType(s.declared.get()) : -1;
        int t = Check(s.value.get(), declared);
        if (declared >= 0) {
          RequireAssignable(t, declared, s.value->range, "value");
          t = declared;
        } else if (T.Get(t).kind == TyKind::kNull) {
          d_.Error("E0135", s.value->range, "cannot infer the type of null", "declare it: let x: string? = null;");
          t = T.error;
        } else if (T.Get(t).kind == TyKind::kVoid) {
          d_.Error("E0125", s.value->range, "this expression has no value");
          t = T.error;
        }
        int slot = Bind(s.name, t, s.is_var, s.range);
        let_slots_[&s] = slot;
        return true;
      }
      case StmtKind::kAssign: {
        const Expr* target = s.target.get();
        if (target->kind != ExprKind::kName) {
          d_.Error("E0136", target->range, "only variables can be assigned", "build a changed copy with 'with { ... }' and assign it to a var");
          Check(s.value.get());
          return true;
        }
        const Local* l = Lookup(target->text);
        if (!l) {
          d_.Error("E0103", target->range, "unknown name " + Quote(target->text), Hint(target->text, VisibleNames()));
          Check(s.value.get());
          return true;
        }
        if (!l->is_mutable) {
          d_.Error("E0136", target->range, "cannot assign to " + Quote(target->text) + ": it is declared with let",
                   "declare it with var to assign to it");
        }
        p_.resolutions[target] = {Resolution::Kind::kLocal, target->text, l->slot};
        p_.expr_types[target] = l->type;
        int t = Check(s.value.get(), l->type);
        RequireAssignable(t, l->type, s.value->range, "value");
        return true;
      }
      case StmtKind::kIf: {
        RequireBool(s.value.get(), "condition");
        bool then_falls = CheckBlock(s.body);
        bool else_falls = s.has_else ? CheckBlock(s.else_body) : true;
        return then_falls || else_falls;
      }
      case StmtKind::kFor: {
        int t = Check(s.value.get());
        const Ty& ty = T.Get(t);
        int first = T.error, second = T.error;
        if (ty.kind == TyKind::kList) {
          if (s.second_name.empty()) first = ty.elem; else { first = T.int_; second = ty.elem; }
        } else if (ty.kind == TyKind::kMap) {
          if (s.second_name.empty()) {
            d_.Error("E0125", s.value->range, "iterate a map with two variables: for key, value in m");
          }
          first = T.string;
          second = ty.elem;
        } else if (ty.kind == TyKind::kAny) {
          first = s.second_name.empty() ? T.any : T.int_;
          second = T.any;
        } else if (ty.kind != TyKind::kError) {
          d_.Error("E0125", s.value->range, "cannot iterate over " + T.Name(t),
                   ty.kind == TyKind::kOptional ? "the value may be absent: iterate over (x ?? [])" : "");
        }
        PushBlock();
        Bind(s.name, first, false, s.range);
        if (!s.second_name.empty()) Bind(s.second_name, second, false, s.range);
        ++loop_depth_;
        CheckBlock(s.body);
        --loop_depth_;
        PopBlock();
        return true;
      }
      case StmtKind::kReturn: {
        if (s.value) {
          int t = Check(s.value.get(), fn_result_);
          if (fn_result_ == T.void_) {
            d_.Error("E0132", s.value->range, in_reconcile_ ? "reconcile returns no value" : "this function has no result type",
                     in_reconcile_ ? "use 'requeue after 30s;' to run again later" : "declare one: fn f(...) -> T");
          } else {
            RequireAssignable(t, fn_result_, s.value->range, "returned value");
          }
        } else if (fn_result_ != T.void_ && T.Get(fn_result_).kind != TyKind::kError) {
          d_.Error("E0133", s.range, "missing return value of type " + T.Name(fn_result_));
        }
        return false;
      }
      case StmtKind::kRequeue: {
        if (!in_reconcile_) {
          d_.Error("E0141", s.range, "'requeue after' is only allowed in a controller's reconcile");
        }
        int t = Check(s.value.get(), T.duration);
        RequireAssignable(t, T.duration, s.value->range, "requeue delay");
        return false;
      }
      case StmtKind::kFail: {
        int t = Check(s.value.get(), T.string);
        RequireAssignable(t, T.string, s.value->range, "failure message");
        return false;
      }
      case StmtKind::kBreak:
      case StmtKind::kContinue:
        if (loop_depth_ == 0) {
          d_.Error("E0134", s.range, std::string(s.kind == StmtKind::kBreak ? "break" : "continue") + " outside a loop");
        }
        return false;
      case StmtKind::kBlock: return CheckBlock(s.body);
      case StmtKind::kExpr: {
        Check(s.value.get());
        return true;
      }
    }
    return true;
  }

  // ---------- types ----------
  bool Assignable(int from, int to) {
    if (from == to || from < 0 || to < 0) return true;
    const Ty& f = T.Get(from);
    const Ty& t = T.Get(to);
    if (f.kind == TyKind::kError || t.kind == TyKind::kError) return true;
    if (f.kind == TyKind::kAny || t.kind == TyKind::kAny) return true;
    if (t.kind == TyKind::kOptional) {
      if (f.kind == TyKind::kNull) return true;
      if (f.kind == TyKind::kOptional) return Assignable(f.elem, t.elem);
      return Assignable(from, t.elem);
    }
    switch (t.kind) {
      case TyKind::kFloat: return f.kind == TyKind::kInt;
      case TyKind::kIntOrString: return f.kind == TyKind::kInt || f.kind == TyKind::kString;
      case TyKind::kQuantity: return f.kind == TyKind::kInt;
      case TyKind::kString: return f.kind == TyKind::kEnum;
      case TyKind::kList: return f.kind == TyKind::kList && Assignable(f.elem, t.elem);
      case TyKind::kMap: return f.kind == TyKind::kMap && Assignable(f.elem, t.elem);
      default: return false;
    }
  }

  void RequireAssignable(int from, int to, SourceRange range, const char* what) {
    if (Assignable(from, to)) return;
    const Ty& f = T.Get(from);
    std::string hint;
    if (f.kind == TyKind::kOptional && Assignable(f.elem, to)) hint = "the value may be absent: supply a default with '??'";
    else if (T.Get(to).kind == TyKind::kString) hint = "convert it with str(...)";
    d_.Error("E0125", range, std::string(what) + " has type " + T.Name(from) + ", expected " + T.Name(to), hint);
  }

  void RequireBool(const Expr* e, const char* what) {
    int t = Check(e, T.bool_);
    const Ty& ty = T.Get(t);
    if (ty.kind != TyKind::kBool && ty.kind != TyKind::kError && ty.kind != TyKind::kAny) {
      d_.Error("E0124", e->range, std::string(what) + " must be bool, found " + T.Name(t),
               ty.kind == TyKind::kOptional ? "compare with null or supply a default with '??'" : "");
    }
  }

  bool IsNumeric(int t) const {
    auto k = T.Get(t).kind;
    return k == TyKind::kInt || k == TyKind::kFloat;
  }
  bool IsScalar(int t) const {
    auto k = T.Get(t).kind;
    return k == TyKind::kInt || k == TyKind::kFloat || k == TyKind::kBool || k == TyKind::kString ||
           k == TyKind::kDuration || k == TyKind::kTimestamp || k == TyKind::kQuantity ||
           k == TyKind::kIntOrString || k == TyKind::kEnum || k == TyKind::kAny || k == TyKind::kError;
  }

  // ---------- expressions ----------
  int Check(const Expr* e, int expected = -1) {
    if (!e) return T.error;
    int t = CheckInner(e, expected);
    p_.expr_types[e] = t;
    return t;
  }

  int CheckObjectEntries(const std::vector<dsl::ObjectEntry>& entries, const StructInfo* st, int map_elem) {
    std::set<std::string> seen;
    for (auto& en : entries) {
      if (!seen.insert(en.key).second) d_.Error("E0102", en.key_range, "key " + Quote(en.key) + " is given twice");
      if (st) {
        const FieldInfo* f = st->Find(en.key);
        if (!f) {
          d_.Error("E0120", en.key_range, "unknown field " + Quote(en.key) + " in " + Quote(st->name), Hint(en.key, FieldNames(*st)));
          Check(en.value.get());
          continue;
        }
        int ft = f->type;
        int vt = Check(en.value.get(), ft);
        // A literal `null` is accepted for any field: in `with` and patch() it deletes the field.
        if (en.value->kind != ExprKind::kNull) RequireAssignable(vt, ft, en.value->range, ("field " + Quote(en.key)).c_str());
      } else {
        int vt = Check(en.value.get(), map_elem);
        if (map_elem >= 0 && en.value->kind != ExprKind::kNull) RequireAssignable(vt, map_elem, en.value->range, "map value");
      }
    }
    return 0;
  }

  int CheckInner(const Expr* e, int expected) {
    switch (e->kind) {
      case ExprKind::kInt: return T.int_;
      case ExprKind::kFloat: return T.float_;
      case ExprKind::kString: {
        if (expected >= 0 && T.Get(expected).kind == TyKind::kEnum) return CheckEnumLiteral(e, expected);
        if (expected >= 0 && T.Get(expected).kind == TyKind::kOptional && T.Get(T.Get(expected).elem).kind == TyKind::kEnum) {
          return CheckEnumLiteral(e, T.Get(expected).elem);
        }
        return T.string;
      }
      case ExprKind::kInterpolated: {
        for (auto& part : e->items) {
          int t = Check(part.get());
          if (!IsScalar(t)) {
            d_.Error("E0125", part->range, "cannot interpolate a value of type " + T.Name(t),
                     T.Get(t).kind == TyKind::kOptional ? "supply a default with '??'" : "");
          }
        }
        return T.string;
      }
      case ExprKind::kDuration: return T.duration;
      case ExprKind::kBool: return T.bool_;
      case ExprKind::kNull: return T.null;
      case ExprKind::kName: return CheckName(e, expected);
      case ExprKind::kField:
      case ExprKind::kSafeField: return CheckField(e);
      case ExprKind::kIndex: {
        int bt = Check(e->lhs.get());
        const Ty& b = T.Get(bt);
        if (b.kind == TyKind::kList) {
          int it = Check(e->rhs.get(), T.int_);
          RequireAssignable(it, T.int_, e->rhs->range, "list index");
          return b.elem;
        }
        if (b.kind == TyKind::kMap) {
          int it = Check(e->rhs.get(), T.string);
          RequireAssignable(it, T.string, e->rhs->range, "map key");
          return T.Optional(b.elem);
        }
        Check(e->rhs.get());
        if (b.kind == TyKind::kAny || b.kind == TyKind::kError) return b.kind == TyKind::kAny ? T.any : T.error;
        d_.Error("E0122", e->range, "cannot index a value of type " + T.Name(bt));
        return T.error;
      }
      case ExprKind::kCall: return CheckCall(e);
      case ExprKind::kWith: {
        int bt = Check(e->lhs.get(), expected);
        const Ty& b = T.Get(bt);
        if (b.kind == TyKind::kStruct) {
          CheckObjectEntries(e->entries, b.st, -1);
        } else if (b.kind == TyKind::kMap) {
          CheckObjectEntries(e->entries, nullptr, b.elem);
        } else if (b.kind == TyKind::kAny || b.kind == TyKind::kError) {
          CheckObjectEntries(e->entries, nullptr, -1);
        } else {
          d_.Error("E0122", e->lhs->range, "'with' needs an object, found " + T.Name(bt),
                   b.kind == TyKind::kOptional ? "the value may be absent: supply a default with '??'" : "");
        }
        return bt;
      }
      case ExprKind::kUnary: {
        if (e->text == "!") {
          RequireBool(e->lhs.get(), "operand of '!'");
          return T.bool_;
        }
        int t = Check(e->lhs.get());
        auto k = T.Get(t).kind;
        if (k == TyKind::kInt || k == TyKind::kFloat || k == TyKind::kDuration || k == TyKind::kError) return t;
        d_.Error("E0126", e->range, "operator '-' cannot be applied to " + T.Name(t));
        return T.error;
      }
      case ExprKind::kBinary: return CheckBinary(e, expected);
      case ExprKind::kCond: {
        RequireBool(e->lhs.get(), "condition");
        int a = Check(e->rhs.get(), expected);
        int b = Check(e->third.get(), expected >= 0 ? expected : a);
        return Unify(a, b, e->range);
      }
      case ExprKind::kLambda:
        d_.Error("E0128", e->range, "a lambda can only be passed to a list method such as filter or map");
        return T.error;
      case ExprKind::kList: {
        int elem = -1;
        if (expected >= 0 && T.Get(expected).kind == TyKind::kList) elem = T.Get(expected).elem;
        int result_elem = elem;
        for (auto& item : e->items) {
          int t = Check(item.get(), elem);
          if (elem >= 0) {
            RequireAssignable(t, elem, item->range, "list item");
          } else if (result_elem < 0 || T.Get(result_elem).kind == TyKind::kNull) {
            result_elem = t;
          } else {
            result_elem = Unify(result_elem, t, item->range);
          }
        }
        if (result_elem < 0) return expected >= 0 && T.Get(expected).kind == TyKind::kList ? expected : T.List(T.any);
        return T.List(result_elem);
      }
      case ExprKind::kObject: {
        int target = expected;
        if (target >= 0 && T.Get(target).kind == TyKind::kOptional) target = T.Get(target).elem;
        if (target >= 0 && T.Get(target).kind == TyKind::kStruct) {
          CheckObjectEntries(e->entries, T.Get(target).st, -1);
          return target;
        }
        if (target >= 0 && T.Get(target).kind == TyKind::kMap) {
          CheckObjectEntries(e->entries, nullptr, T.Get(target).elem);
          return target;
        }
        CheckObjectEntries(e->entries, nullptr, -1);
        return T.any;
      }
      case ExprKind::kNew: {
        int t = NamedType(e->text, e->name_range);
        const Ty& ty = T.Get(t);
        if (ty.kind == TyKind::kStruct) {
          CheckObjectEntries(e->entries, ty.st, -1);
        } else {
          if (ty.kind != TyKind::kError) d_.Error("E0122", e->name_range, "'new' builds structs and resources, not " + T.Name(t));
          CheckObjectEntries(e->entries, nullptr, -1);
        }
        return t;
      }
    }
    return T.error;
  }

  int CheckEnumLiteral(const Expr* e, int enum_type) {
    const EnumInfo* en = T.Get(enum_type).en;
    const auto& values = en->decl->values;
    if (std::find(values.begin(), values.end(), e->text) == values.end()) {
      std::string list;
      for (size_t i = 0; i < values.size() && i < 8; ++i) list += (i ? ", " : "") + values[i];
      d_.Error("E0125", e->range, "\"" + e->text + "\" is not a value of " + Quote(en->name) + " (" + list + ")",
               Hint(e->text, values));
      return T.error;
    }
    return enum_type;
  }

  int Unify(int a, int b, SourceRange range) {
    if (Assignable(a, b)) return T.Get(a).kind == TyKind::kNull ? T.Optional(b) : b;
    if (Assignable(b, a)) return T.Get(b).kind == TyKind::kNull ? T.Optional(a) : a;
    if (T.Get(a).kind == TyKind::kNull) return T.Optional(b);
    if (T.Get(b).kind == TyKind::kNull) return T.Optional(a);
    d_.Error("E0125", range, "the branches have different types: " + T.Name(a) + " and " + T.Name(b));
    return T.error;
  }

  int CheckName(const Expr* e, int expected) {
    if (e->text.empty()) return T.error;  // a missing operand after a syntax error
    if (const Local* l = Lookup(e->text)) {
      p_.resolutions[e] = {Resolution::Kind::kLocal, e->text, l->slot};
      return l->type;
    }
    if (self_) {
      if (e->text == "self") {
        p_.resolutions[e] = {Resolution::Kind::kSelfField, ""};
        return T.Intern(Ty{TyKind::kStruct, -1, self_});
      }
      if (const FieldInfo* f = self_->Find(e->text)) {
        p_.resolutions[e] = {Resolution::Kind::kSelfField, e->text};
        return f->type;
      }
    }
    if (auto it = p_.consts.find(e->text); it != p_.consts.end()) {
      p_.resolutions[e] = {Resolution::Kind::kConst, e->text};
      if (it->second.second == T.error && it->second.first) {
        // Used before its own check ran: check it now (constants are literals).
        BeginScopeSaved saved(*this);
        CheckConst(*it->second.first);
      }
      return it->second.second;
    }
    if (expected >= 0) {
      int et = T.Get(expected).kind == TyKind::kOptional ? T.Get(expected).elem : expected;
      if (T.Get(et).kind == TyKind::kEnum) {
        const auto& values = T.Get(et).en->decl->values;
        if (std::find(values.begin(), values.end(), e->text) != values.end()) {
          p_.resolutions[e] = {Resolution::Kind::kEnumValue, e->text};
          return et;
        }
      }
    }
    if (p_.structs.count(e->text) || p_.enums.count(e->text)) {
      int t = NamedType(e->text, e->range);
      p_.resolutions[e] = {Resolution::Kind::kType, e->text};
      return T.Intern(Ty{TyKind::kTypeName, t});
    }
    if (p_.functions.count(e->text) ||
        std::find(kBuiltinFunctions.begin(), kBuiltinFunctions.end(), e->text) != kBuiltinFunctions.end()) {
      d_.Error("E0150", e->range, Quote(e->text) + " is a function; call it", e->text + "(...)");
      return T.error;
    }
    std::string hint = Hint(e->text, VisibleNames());
    if (hint.empty() && expected >= 0 && T.Get(expected).kind == TyKind::kEnum) {
      hint = Hint(e->text, T.Get(expected).en->decl->values);
    }
    d_.Error("E0103", e->range, "unknown name " + Quote(e->text), hint);
    return T.error;
  }

  int CheckField(const Expr* e) {
    int bt = Check(e->lhs.get());
    const Ty* b = &T.Get(bt);
    bool safe = e->kind == ExprKind::kSafeField;
    if (b->kind == TyKind::kError) return T.error;
    if (b->kind == TyKind::kTypeName) {
      const Ty& named = T.Get(b->elem);
      if (named.kind == TyKind::kEnum) {
        const auto& values = named.en->decl->values;
        if (std::find(values.begin(), values.end(), e->text) == values.end()) {
          d_.Error("E0120", e->name_range, Quote(e->text) + " is not a value of " + Quote(named.en->name), Hint(e->text, values));
          return T.error;
        }
        p_.resolutions[e] = {Resolution::Kind::kEnumValue, e->text};
        return b->elem;
      }
      d_.Error("E0122", e->range, "a type has no fields; use a value of type " + T.Name(b->elem));
      return T.error;
    }
    bool optional = false;
    if (b->kind == TyKind::kOptional) {
      optional = true;
      if (!safe) {
        d_.Error("E0121", e->name_range, Quote(e->text) + " is read from a value that may be absent (" + T.Name(bt) + ")",
                 "use '?.' to read it safely, or supply a default with '??'");
      }
      b = &T.Get(b->elem);
    }
    if (b->kind == TyKind::kAny) return T.any;
    if (b->kind == TyKind::kStruct) {
      const FieldInfo* f = b->st->Find(e->text);
      if (!f) {
        d_.Error("E0120", e->name_range, "unknown field " + Quote(e->text) + " in " + Quote(b->st->name), Hint(e->text, FieldNames(*b->st)));
        return T.error;
      }
      return safe && optional ? T.Optional(f->type) : f->type;
    }
    if (b->kind == TyKind::kMap) {
      d_.Error("E0122", e->name_range, "maps are read with [\"key\"], not '.'", "write m[\"" + e->text + "\"]");
      return T.error;
    }
    d_.Error("E0122", e->name_range, "a value of type " + T.Name(bt) + " has no field " + Quote(e->text));
    return T.error;
  }

  int CheckBinary(const Expr* e, int expected) {
    const std::string& op = e->text;
    if (op == "&&" || op == "||") {
      RequireBool(e->lhs.get(), ("operand of '" + op + "'").c_str());
      RequireBool(e->rhs.get(), ("operand of '" + op + "'").c_str());
      return T.bool_;
    }
    if (op == "??") {
      int a = Check(e->lhs.get(), expected >= 0 ? T.Optional(expected) : -1);
      const Ty& at = T.Get(a);
      int inner = at.kind == TyKind::kOptional ? at.elem : a;
      if (at.kind != TyKind::kOptional && at.kind != TyKind::kAny && at.kind != TyKind::kError) {
        d_.Warning("W0127", e->lhs->range, "the left side of '??' is never absent (type " + T.Name(a) + ")");
      }
      int b = Check(e->rhs.get(), at.kind == TyKind::kAny ? expected : inner);
      if (at.kind == TyKind::kAny) return b;
      // a ?? b ?? c: a default that may itself be absent keeps the result optional.
      if (T.Get(b).kind == TyKind::kOptional && Assignable(T.Get(b).elem, inner)) return T.Optional(inner);
      RequireAssignable(b, inner, e->rhs->range, "default");
      return T.Get(inner).kind == TyKind::kNull ? b : inner;
    }
    if (op == "in") {
      int a = Check(e->lhs.get());
      int b = Check(e->rhs.get());
      const Ty& bt = T.Get(b);
      if (bt.kind == TyKind::kList) RequireAssignable(a, bt.elem, e->lhs->range, "left side of 'in'");
      else if (bt.kind == TyKind::kMap || bt.kind == TyKind::kString) RequireAssignable(a, T.string, e->lhs->range, "left side of 'in'");
      else if (bt.kind != TyKind::kAny && bt.kind != TyKind::kError) {
        d_.Error("E0126", e->rhs->range, "'in' needs a list, map or string on the right, found " + T.Name(b));
      }
      return T.bool_;
    }
    int a = Check(e->lhs.get());
    int b = Check(e->rhs.get(), T.Get(a).kind == TyKind::kEnum ? a : -1);
    if (T.Get(a).kind == TyKind::kString && T.Get(b).kind == TyKind::kEnum) {
      // "Always" == policy: check the literal against the enum as well.
      if (e->lhs->kind == ExprKind::kString) a = CheckEnumLiteral(e->lhs.get(), b);
    }
    auto k = [&](int t) { return T.Get(t).kind; };
    if (k(a) == TyKind::kError || k(b) == TyKind::kError) return op == "==" || op == "!=" || op[0] == '<' || op[0] == '>' ? T.bool_ : T.error;
    auto fail = [&]() {
      std::string hint;
      if (k(a) == TyKind::kOptional || k(b) == TyKind::kOptional) hint = "a value may be absent: supply a default with '??'";
      d_.Error("E0126", e->range, "operator '" + op + "' cannot be applied to " + T.Name(a) + " and " + T.Name(b), hint);
      return T.error;
    };
    if (op == "==" || op == "!=") {
      if (Assignable(a, b) || Assignable(b, a) || k(a) == TyKind::kNull || k(b) == TyKind::kNull) {
        if ((k(a) == TyKind::kNull && k(b) != TyKind::kOptional && k(b) != TyKind::kAny && k(b) != TyKind::kNull) ||
            (k(b) == TyKind::kNull && k(a) != TyKind::kOptional && k(a) != TyKind::kAny && k(a) != TyKind::kNull)) {
          d_.Warning("W0127", e->range, "comparing a value that is never absent with null");
        }
        return T.bool_;
      }
      fail();
      return T.bool_;
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      bool ok = (IsNumeric(a) && IsNumeric(b)) || (k(a) == k(b) && (k(a) == TyKind::kString || k(a) == TyKind::kDuration ||
                                                                   k(a) == TyKind::kTimestamp || k(a) == TyKind::kQuantity)) ||
                k(a) == TyKind::kAny || k(b) == TyKind::kAny;
      if (!ok) fail();
      return T.bool_;
    }
    if (k(a) == TyKind::kAny || k(b) == TyKind::kAny) return T.any;
    if (op == "+") {
      if (IsNumeric(a) && IsNumeric(b)) return k(a) == TyKind::kFloat || k(b) == TyKind::kFloat ? T.float_ : T.int_;
      if (k(a) == TyKind::kString && (k(b) == TyKind::kString || k(b) == TyKind::kEnum)) return T.string;
      if (k(a) == TyKind::kList && Assignable(b, a)) return a;
      if (k(a) == TyKind::kDuration && k(b) == TyKind::kDuration) return T.duration;
      if (k(a) == TyKind::kTimestamp && k(b) == TyKind::kDuration) return T.timestamp;
      if (k(a) == TyKind::kQuantity && k(b) == TyKind::kQuantity) return T.quantity;
      return fail();
    }
    if (op == "-") {
      if (IsNumeric(a) && IsNumeric(b)) return k(a) == TyKind::kFloat || k(b) == TyKind::kFloat ? T.float_ : T.int_;
      if (k(a) == TyKind::kDuration && k(b) == TyKind::kDuration) return T.duration;
      if (k(a) == TyKind::kTimestamp && k(b) == TyKind::kDuration) return T.timestamp;
      if (k(a) == TyKind::kTimestamp && k(b) == TyKind::kTimestamp) return T.duration;
      if (k(a) == TyKind::kQuantity && k(b) == TyKind::kQuantity) return T.quantity;
      return fail();
    }
    // * / %
    if (IsNumeric(a) && IsNumeric(b)) {
      if (op == "%" && (k(a) != TyKind::kInt || k(b) != TyKind::kInt)) return fail();
      return k(a) == TyKind::kFloat || k(b) == TyKind::kFloat ? T.float_ : T.int_;
    }
    if (k(a) == TyKind::kDuration && k(b) == TyKind::kInt && op != "%") return T.duration;
    return fail();
  }

  // ---------- calls ----------
  void NoNamedArgs(const Expr* e, const std::string& fn) {
    for (auto& a : e->args) {
      if (!a.name.empty()) d_.Error("E0152", a.name_range, Quote(fn) + " takes no named arguments");
    }
  }
  bool Arity(const Expr* e, const std::string& fn, size_t lo, size_t hi) {
    size_t n = 0;
    for (auto& a : e->args) if (a.name.empty()) ++n;
    if (n < lo || n > hi) {
      std::string want = lo == hi ? std::to_string(lo) : std::to_string(lo) + " to " + std::to_string(hi);
      d_.Error("E0151", e->range, Quote(fn) + " takes " + want + " argument" + (hi == 1 ? "" : "s") + ", found " + std::to_string(n));
      for (auto& a : e->args) Check(a.value.get());
      return false;
    }
    return true;
  }
  int Arg(const Expr* e, size_t i, int expected) {
    int t = Check(e->args[i].value.get(), expected);
    if (expected >= 0) RequireAssignable(t, expected, e->args[i].value->range, "argument");
    return t;
  }

  int CheckCall(const Expr* e) {
    const Expr* callee = e->lhs.get();
    if (callee->kind == ExprKind::kField) return CheckMethod(e);
    if (callee->kind != ExprKind::kName) {
      d_.Error("E0150", callee->range, "only functions and methods can be called");
      for (auto& a : e->args) Check(a.value.get());
      return T.error;
    }
    const std::string& name = callee->text;
    if (Lookup(name)) {
      d_.Error("E0150", callee->range, Quote(name) + " is a variable, not a function");
      return T.error;
    }
    // A controller's own helpers shadow global functions of the same name.
    auto it = p_.functions.end();
    if (!current_controller_.empty()) it = p_.functions.find(current_controller_ + "." + name);
    if (it == p_.functions.end()) it = p_.functions.find(name);
    if (it != p_.functions.end()) {
      const FunctionInfo& f = it->second;
      if (f.in_controller && !in_controller_) {
        d_.Error("E0140", callee->range, Quote(name) + " is a controller helper and may only be called inside its controller");
      }
      p_.resolutions[callee] = {Resolution::Kind::kFunction, it->first};
      p_.expr_types[callee] = f.result;
      NoNamedArgs(e, name);
      if (!Arity(e, name, f.params.size(), f.params.size())) return f.result;
      for (size_t i = 0; i < f.params.size(); ++i) Arg(e, i, f.params[i]);
      return f.result;
    }
    if (std::find(kBuiltinFunctions.begin(), kBuiltinFunctions.end(), name) == kBuiltinFunctions.end()) {
      std::vector<std::string> fns(kBuiltinFunctions);
      for (auto& [n, f] : p_.functions) fns.push_back(n);
      d_.Error("E0104", callee->range, "unknown function " + Quote(name), Hint(name, fns));
      for (auto& a : e->args) Check(a.value.get());
      return T.error;
    }
    p_.resolutions[callee] = {Resolution::Kind::kBuiltin, name};
    if (kEffects.count(name) && !in_controller_) {
      d_.Error("E0140", callee->range, "effect " + Quote(name) + " is only allowed inside a controller",
               "functions are pure; move this into a controller's reconcile");
    }
    return CheckBuiltin(e, name);
  }

  int ResourceArg(const Expr* e, size_t i) {
    int t = Check(e->args[i].value.get());
    const Ty& ty = T.Get(t);
    if (ty.kind == TyKind::kError) return T.error;
    if (ty.kind == TyKind::kStruct && ty.st->resource) return t;
    d_.Error("E0144", e->args[i].value->range, "expected a resource object, found " + T.Name(t));
    return T.error;
  }

  int CheckBuiltin(const Expr* e, const std::string& name) {
    auto positional = [&]() {
      std::vector<size_t> idx;
      for (size_t i = 0; i < e->args.size(); ++i) if (e->args[i].name.empty()) idx.push_back(i);
      return idx;
    };
    if (name != "get" && name != "list") NoNamedArgs(e, name);
    if (name == "len") {
      if (!Arity(e, name, 1, 1)) return T.int_;
      int t = Arg(e, 0, -1);
      auto k = T.Get(t).kind;
      if (k != TyKind::kList && k != TyKind::kMap && k != TyKind::kString && k != TyKind::kAny && k != TyKind::kError) {
        d_.Error("E0125", e->args[0].value->range, "len needs a list, map or string, found " + T.Name(t));
      }
      return T.int_;
    }
    if (name == "str") {
      if (!Arity(e, name, 1, 1)) return T.string;
      int t = Arg(e, 0, -1);
      if (!IsScalar(t)) d_.Error("E0125", e->args[0].value->range, "str needs a scalar, found " + T.Name(t));
      return T.string;
    }
    if (name == "int" || name == "float") {
      if (!Arity(e, name, 1, 1)) return name == "int" ? T.int_ : T.float_;
      int t = Arg(e, 0, -1);
      auto k = T.Get(t).kind;
      if (k != TyKind::kInt && k != TyKind::kFloat && k != TyKind::kString && k != TyKind::kIntOrString &&
          k != TyKind::kDuration && k != TyKind::kQuantity && k != TyKind::kAny && k != TyKind::kError) {
        d_.Error("E0125", e->args[0].value->range, name + " cannot convert " + T.Name(t));
      }
      return name == "int" ? T.int_ : T.float_;
    }
    if (name == "now") { Arity(e, name, 0, 0); return T.timestamp; }
    if (name == "since") { if (Arity(e, name, 1, 1)) Arg(e, 0, T.timestamp); return T.duration; }
    if (name == "humanDuration") { if (Arity(e, name, 1, 1)) Arg(e, 0, T.duration); return T.string; }
    if (name == "hash") { if (Arity(e, name, 1, 1)) Arg(e, 0, -1); return T.int_; }
    if (name == "podTemplateHash") { if (Arity(e, name, 1, 1)) Arg(e, 0, -1); return T.string; }
    if (name == "labelsMatch") {
      if (!Arity(e, name, 2, 2)) return T.bool_;
      int sel = NamedType("LabelSelector", e->range, false);
      Arg(e, 0, T.Optional(sel == T.error ? T.any : sel));
      Arg(e, 1, T.Map(T.string));
      return T.bool_;
    }
    if (name == "selectorMatches") {
      if (!Arity(e, name, 2, 2)) return T.bool_;
      Arg(e, 0, T.string);
      Arg(e, 1, T.Map(T.string));
      return T.bool_;
    }
    if (name == "selectorString") {
      if (!Arity(e, name, 1, 1)) return T.string;
      int sel = NamedType("LabelSelector", e->range, false);
      Arg(e, 0, T.Optional(sel == T.error ? T.any : sel));
      return T.string;
    }
    if (name == "quantity") { if (Arity(e, name, 1, 1)) Arg(e, 0, T.string); return T.quantity; }
    if (name == "milli") { if (Arity(e, name, 1, 1)) Arg(e, 0, T.quantity); return T.int_; }
    if (name == "abs") {
      if (!Arity(e, name, 1, 1)) return T.error;
      int t = Arg(e, 0, -1);
      if (!IsNumeric(t) && T.Get(t).kind != TyKind::kDuration && T.Get(t).kind != TyKind::kError) {
        d_.Error("E0125", e->args[0].value->range, "abs needs a number, found " + T.Name(t));
      }
      return t;
    }
    if (name == "min" || name == "max") {
      if (!Arity(e, name, 2, 2)) return T.error;
      int a = Arg(e, 0, -1), b = Arg(e, 1, -1);
      if (IsNumeric(a) && IsNumeric(b)) return T.Get(a).kind == TyKind::kFloat || T.Get(b).kind == TyKind::kFloat ? T.float_ : T.int_;
      if (a == b && (T.Get(a).kind == TyKind::kDuration || T.Get(a).kind == TyKind::kTimestamp ||
                     T.Get(a).kind == TyKind::kString || T.Get(a).kind == TyKind::kQuantity)) return a;
      if (T.Get(a).kind != TyKind::kError && T.Get(b).kind != TyKind::kError) {
        d_.Error("E0125", e->range, name + " needs two comparable values, found " + T.Name(a) + " and " + T.Name(b));
      }
      return T.error;
    }
    if (name == "range") { if (Arity(e, name, 1, 1)) Arg(e, 0, T.int_); return T.List(T.int_); }
    if (name == "get" || name == "list") {
      auto pos = positional();
      bool is_get = name == "get";
      if (pos.size() != (is_get ? 2u : 1u)) {
        d_.Error("E0151", e->range, is_get ? "get takes a type and a name: get(Pod, name, namespace: ns)"
                                           : "list takes a type: list(Pod, namespace: ns, selector: sel, owner: obj)");
        for (auto& a : e->args) Check(a.value.get());
        return T.error;
      }
      int tt = Check(e->args[pos[0]].value.get());
      int obj = T.error;
      if (T.Get(tt).kind == TyKind::kTypeName && T.Get(T.Get(tt).elem).kind == TyKind::kStruct &&
          T.Get(T.Get(tt).elem).st->resource) {
        obj = T.Get(tt).elem;
      } else if (T.Get(tt).kind != TyKind::kError) {
        d_.Error("E0144", e->args[pos[0]].value->range, Quote(name) + " needs a resource type as its first argument");
      }
      if (is_get) Arg(e, pos[1], T.string);
      static const std::vector<std::string> get_named = {"namespace"};
      static const std::vector<std::string> list_named = {"namespace", "selector", "labels", "owner"};
      const auto& allowed = is_get ? get_named : list_named;
      for (auto& a : e->args) {
        if (a.name.empty()) continue;
        if (std::find(allowed.begin(), allowed.end(), a.name) == allowed.end()) {
          d_.Error("E0152", a.name_range, "unknown argument " + Quote(a.name) + " of " + name, Hint(a.name, allowed));
          Check(a.value.get());
          continue;
        }
        int want = T.string;
        if (a.name == "selector") {
          int sel = NamedType("LabelSelector", e->range, false);
          want = T.Optional(sel == T.error ? T.any : sel);
        } else if (a.name == "labels") {
          want = T.Map(T.string);
        } else if (a.name == "owner") {
          want = -1;
        }
        int t = Check(a.value.get(), want);
        if (want >= 0) RequireAssignable(t, want, a.value->range, "argument");
        else if (!(T.Get(t).kind == TyKind::kStruct && T.Get(t).st->resource) && T.Get(t).kind != TyKind::kError) {
          d_.Error("E0144", a.value->range, "owner must be a resource object, found " + T.Name(t));
        }
      }
      return is_get ? T.Optional(obj) : T.List(obj);
    }
    if (name == "delete") {
      if (Arity(e, name, 1, 1)) ResourceArg(e, 0);
      return T.void_;
    }
    if (name == "create" || name == "update" || name == "updateStatus") {
      // The object as the server stored it (generated name, uid, resourceVersion).
      if (!Arity(e, name, 1, 1)) return T.error;
      return ResourceArg(e, 0);
    }
    if (name == "patch") {
      if (!Arity(e, name, 2, 2)) return T.error;
      int t = ResourceArg(e, 0);
      int pt = Check(e->args[1].value.get(), t);
      RequireAssignable(pt, t == T.error ? T.any : t, e->args[1].value->range, "patch");
      return t;
    }
    if (name == "emit") {
      if (!Arity(e, name, 4, 4)) return T.void_;
      ResourceArg(e, 0);
      if (e->args[1].value->kind == ExprKind::kString && e->args[1].value->text != "Normal" && e->args[1].value->text != "Warning") {
        d_.Error("E0125", e->args[1].value->range, "event type must be \"Normal\" or \"Warning\"");
      }
      Arg(e, 1, T.string);
      Arg(e, 2, T.string);
      Arg(e, 3, T.string);
      return T.void_;
    }
    return T.error;
  }

  int CheckMethod(const Expr* e) {
    const Expr* callee = e->lhs.get();
    const std::string& m = callee->text;
    int rt = Check(callee->lhs.get());
    const Ty& r = T.Get(rt);
    p_.expr_types[callee] = rt;
    NoNamedArgs(e, m);
    if (r.kind == TyKind::kError) {
      for (auto& a : e->args) if (a.value->kind != ExprKind::kLambda) Check(a.value.get());
      return T.error;
    }
    p_.resolutions[callee] = {Resolution::Kind::kMethod, m};
    if (r.kind == TyKind::kList) {
      int el = r.elem;
      auto pred = [&](size_t i) {
        int t = CheckLambdaOrFn(e->args[i].value.get(), {el});
        if (T.Get(t).kind != TyKind::kBool && T.Get(t).kind != TyKind::kError && T.Get(t).kind != TyKind::kAny) {
          d_.Error("E0124", e->args[i].value->range, "the predicate must return bool, found " + T.Name(t));
        }
      };
      auto comparable = [&](int t) {
        auto k = T.Get(t).kind;
        return IsNumeric(t) || k == TyKind::kString || k == TyKind::kDuration || k == TyKind::kTimestamp ||
               k == TyKind::kQuantity || k == TyKind::kError || k == TyKind::kAny;
      };
      if (m == "len") { Arity(e, m, 0, 0); return T.int_; }
      if (m == "count") { if (Arity(e, m, 0, 1) && e->args.size() == 1) pred(0); return T.int_; }
      if (m == "filter") { if (Arity(e, m, 1, 1)) pred(0); return rt; }
      if (m == "any" || m == "all") { if (Arity(e, m, 1, 1)) pred(0); return T.bool_; }
      if (m == "first") { if (Arity(e, m, 0, 1) && e->args.size() == 1) pred(0); return T.Optional(el); }
      if (m == "map") {
        if (!Arity(e, m, 1, 1)) return T.error;
        int t = CheckLambdaOrFn(e->args[0].value.get(), {el});
        return T.List(t);
      }
      if (m == "sum") {
        int t = el;
        if (Arity(e, m, 0, 1) && e->args.size() == 1) t = CheckLambdaOrFn(e->args[0].value.get(), {el});
        if (!IsNumeric(t) && T.Get(t).kind != TyKind::kDuration && T.Get(t).kind != TyKind::kError && T.Get(t).kind != TyKind::kAny) {
          d_.Error("E0125", e->range, "sum needs numbers, found " + T.Name(t));
        }
        return t;
      }
      if (m == "min" || m == "max") {
        Arity(e, m, 0, 0);
        if (!comparable(el)) d_.Error("E0125", e->range, m + " needs comparable items, found " + T.Name(el), "use " + m + "By(x => key)");
        return el;
      }
      if (m == "minBy" || m == "maxBy" || m == "sortBy") {
        if (!Arity(e, m, 1, 1)) return T.error;
        int k = CheckLambdaOrFn(e->args[0].value.get(), {el});
        if (!comparable(k)) d_.Error("E0125", e->args[0].value->range, "the key must be comparable, found " + T.Name(k));
        return m == "sortBy" ? rt : T.Optional(el);
      }
      if (m == "take") { if (Arity(e, m, 1, 1)) Arg(e, 0, T.int_); return rt; }
      if (m == "contains") { if (Arity(e, m, 1, 1)) Arg(e, 0, el); return T.bool_; }
      if (m == "reverse") { Arity(e, m, 0, 0); return rt; }
      if (m == "join") {
        if (Arity(e, m, 1, 1)) Arg(e, 0, T.string);
        if (!Assignable(el, T.string)) d_.Error("E0125", e->range, "join needs a list of strings, found " + T.Name(rt), "map the items to strings first");
        return T.string;
      }
      d_.Error("E0105", callee->name_range, "unknown list method " + Quote(m), Hint(m, kListMethods));
      return T.error;
    }
    if (r.kind == TyKind::kMap) {
      if (m == "len") { Arity(e, m, 0, 0); return T.int_; }
      if (m == "keys") { Arity(e, m, 0, 0); return T.List(T.string); }
      if (m == "values") { Arity(e, m, 0, 0); return T.List(r.elem); }
      if (m == "has") { if (Arity(e, m, 1, 1)) Arg(e, 0, T.string); return T.bool_; }
      if (m == "get") { if (Arity(e, m, 1, 1)) Arg(e, 0, T.string); return T.Optional(r.elem); }
      d_.Error("E0105", callee->name_range, "unknown map method " + Quote(m), Hint(m, kMapMethods));
      return T.error;
    }
    if (r.kind == TyKind::kString || r.kind == TyKind::kEnum) {
      if (m == "len") { Arity(e, m, 0, 0); return T.int_; }
      if (m == "contains" || m == "startsWith" || m == "endsWith") { if (Arity(e, m, 1, 1)) Arg(e, 0, T.string); return T.bool_; }
      if (m == "lower" || m == "upper" || m == "trim") { Arity(e, m, 0, 0); return T.string; }
      if (m == "split") { if (Arity(e, m, 1, 1)) Arg(e, 0, T.string); return T.List(T.string); }
      if (m == "replace") { if (Arity(e, m, 2, 2)) { Arg(e, 0, T.string); Arg(e, 1, T.string); } return T.string; }
      d_.Error("E0105", callee->name_range, "unknown string method " + Quote(m), Hint(m, kStringMethods));
      return T.error;
    }
    if (r.kind == TyKind::kStruct) {
      // A field holding a function is not a thing; most likely a misspelled field or method.
      d_.Error("E0105", callee->name_range, Quote(T.Name(rt)) + " has no methods", Hint(m, FieldNames(*r.st)));
      return T.error;
    }
    std::string hint = r.kind == TyKind::kOptional ? "the value may be absent: supply a default with '??' first" : "";
    d_.Error("E0105", callee->name_range, "a value of type " + T.Name(rt) + " has no method " + Quote(m), hint);
    for (auto& a : e->args) if (a.value->kind != ExprKind::kLambda) Check(a.value.get());
    return T.error;
  }

  // Saves and restores the scope state around a nested check (constants used before checked).
  struct BeginScopeSaved {
    Checker& c;
    std::vector<std::vector<Local>> blocks;
    const StructInfo* self;
    int next, max, loop;
    explicit BeginScopeSaved(Checker& ch)
        : c(ch), blocks(ch.blocks_), self(ch.self_), next(ch.next_slot_), max(ch.max_slot_), loop(ch.loop_depth_) {}
    ~BeginScopeSaved() {
      c.blocks_ = blocks;
      c.self_ = self;
      c.next_slot_ = next;
      c.max_slot_ = max;
      c.loop_depth_ = loop;
    }
  };

 public:
  std::map<const Stmt*, int> let_slots_;

 private:
  Program& p_;
  dsl::Diagnostics& d_;
  TypeTable& T;
  std::map<std::string, SourceRange> declared_;
  std::vector<std::vector<Local>> blocks_;
  const StructInfo* self_ = nullptr;
  int next_slot_ = 0;
  int max_slot_ = 0;
  int loop_depth_ = 0;
  bool in_controller_ = false;
  bool in_reconcile_ = false;
  int fn_result_ = -1;
  std::string current_controller_;
};

std::string ReadFile(const std::string& path, bool& ok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ok = false;
    return "";
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  ok = true;
  return ss.str();
}

std::string Fnv64Hex(const std::string& data) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string DirOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

std::unique_ptr<Program> CheckLoaded(std::unique_ptr<Program> p,
                                     std::vector<std::pair<std::string, std::string>> sources,
                                     dsl::Diagnostics& diags, const CheckOptions& options, bool from_disk) {
  std::set<std::string> loaded;
  if (options.prelude) sources.insert(sources.begin(), {"<prelude>/meta_v1.rc", PreludeSource()});
  std::string hash_input;
  // Breadth-first over imports; each file once.
  for (size_t i = 0; i < sources.size(); ++i) {
    auto [path, text] = sources[i];
    if (options.prelude && i > 0 && text == PreludeSource()) continue;  // the prelude file itself
    std::string key = path;
    if (from_disk) {
      std::error_code ec;
      auto canon = std::filesystem::weakly_canonical(path, ec);
      if (!ec) key = canon.string();
    }
    if (!loaded.insert(key).second) continue;
    hash_input += path + '\0' + text + '\0';
    p->files.push_back(std::make_unique<dsl::SourceFile>(path, std::move(text)));
    const dsl::SourceFile& file = *p->files.back();
    auto module = dsl::Parse(file, diags, options.limits);
    for (auto& imp : module->imports) {
      if (imp.path == "std" || imp.path == "meta_v1.rc") continue;  // the prelude is always loaded
      if (!from_disk) {
        // In-memory sources match by path or by file name ("core_v1.rc" finds "resources/core_v1.rc").
        bool found = false;
        for (auto& s : sources) {
          const std::string& p = s.first;
          found = found || p == imp.path ||
                  (p.size() > imp.path.size() && p.compare(p.size() - imp.path.size(), std::string::npos, imp.path) == 0 &&
                   p[p.size() - imp.path.size() - 1] == '/');
        }
        if (!found) diags.Error("E0106", imp.range, "cannot find import \"" + imp.path + "\"");
        continue;
      }
      std::vector<std::string> candidates = {DirOf(path) + "/" + imp.path};
      for (auto& dir : options.import_paths) candidates.push_back(dir + "/" + imp.path);
      bool found = false;
      for (auto& c : candidates) {
        bool ok = false;
        std::string t = ReadFile(c, ok);
        if (ok) {
          // Normalise "./a/../b.rc"-style duplicates by their text identity as well.
          sources.push_back({c, std::move(t)});
          found = true;
          break;
        }
      }
      if (!found) diags.Error("E0106", imp.range, "cannot find import \"" + imp.path + "\"", "searched " + candidates[0]);
    }
    p->modules.push_back(std::move(module));
  }
  p->content_hash = Fnv64Hex(hash_input);
  if (diags.HasErrors()) {
    // Syntax errors: still check what parsed, so several kinds of errors show in one run.
  }
  Checker checker(*p, diags);
  checker.Run();
  diags.Sort();
  return p;
}

}  // namespace

std::unique_ptr<Program> CheckFiles(const std::vector<std::string>& paths, dsl::Diagnostics& diags,
                                    const CheckOptions& options) {
  auto p = std::make_unique<Program>();
  std::vector<std::pair<std::string, std::string>> sources;
  for (auto& path : paths) {
    bool ok = false;
    std::string text = ReadFile(path, ok);
    if (!ok) {
      diags.Error("E0106", {}, "cannot read " + path);
      continue;
    }
    sources.push_back({path, std::move(text)});
  }
  return CheckLoaded(std::move(p), std::move(sources), diags, options, /*from_disk=*/true);
}

std::unique_ptr<Program> CheckSources(const std::vector<std::pair<std::string, std::string>>& sources,
                                      dsl::Diagnostics& diags, const CheckOptions& options) {
  return CheckLoaded(std::make_unique<Program>(), sources, diags, options, /*from_disk=*/false);
}

}  // namespace rc::compiler
