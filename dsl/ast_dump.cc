// A compact, stable s-expression dump of the AST for golden tests and `rcc --emit=ast`.
#include <sstream>

#include "rc/dsl/ast.h"

namespace rc::dsl {
namespace {

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out + "\"";
}

std::string TypeText(const TypeExpr* t) {
  if (!t) return "_";
  switch (t->kind) {
    case TypeExpr::Kind::kNamed: return t->name;
    case TypeExpr::Kind::kList: return "[" + TypeText(t->inner.get()) + "]";
    case TypeExpr::Kind::kMap: return "map<" + TypeText(t->inner.get()) + ">";
    case TypeExpr::Kind::kOptional: return TypeText(t->inner.get()) + "?";
  }
  return "_";
}

class Dumper {
 public:
  std::ostringstream out;
  int indent = 0;

  void Line(const std::string& s) { out << std::string(indent * 2, ' ') << s << "\n"; }

  std::string E(const Expr* e) {
    if (!e) return "_";
    switch (e->kind) {
      case ExprKind::kInt: return std::to_string(e->int_value);
      case ExprKind::kFloat: { std::ostringstream o; o << e->float_value; return o.str(); }
      case ExprKind::kString: return Quote(e->text);
      case ExprKind::kInterpolated: {
        std::string s = "(interp";
        for (auto& p : e->items) s += " " + E(p.get());
        return s + ")";
      }
      case ExprKind::kDuration: return "(duration " + std::to_string(e->int_value) + "ns)";
      case ExprKind::kBool: return e->bool_value ? "true" : "false";
      case ExprKind::kNull: return "null";
      case ExprKind::kName: return e->text;
      case ExprKind::kField: return "(. " + E(e->lhs.get()) + " " + e->text + ")";
      case ExprKind::kSafeField: return "(?. " + E(e->lhs.get()) + " " + e->text + ")";
      case ExprKind::kIndex: return "(index " + E(e->lhs.get()) + " " + E(e->rhs.get()) + ")";
      case ExprKind::kCall: {
        std::string s = "(call " + E(e->lhs.get());
        for (auto& a : e->args) s += " " + (a.name.empty() ? "" : a.name + ":") + E(a.value.get());
        return s + ")";
      }
      case ExprKind::kWith: return "(with " + E(e->lhs.get()) + " " + Entries(e->entries) + ")";
      case ExprKind::kUnary: return "(" + e->text + " " + E(e->lhs.get()) + ")";
      case ExprKind::kBinary: return "(" + e->text + " " + E(e->lhs.get()) + " " + E(e->rhs.get()) + ")";
      case ExprKind::kCond: return "(? " + E(e->lhs.get()) + " " + E(e->rhs.get()) + " " + E(e->third.get()) + ")";
      case ExprKind::kLambda: {
        std::string s = "(lambda (";
        for (size_t i = 0; i < e->params.size(); ++i) s += (i ? " " : "") + e->params[i];
        return s + ") " + E(e->body.get()) + ")";
      }
      case ExprKind::kList: {
        std::string s = "[";
        for (size_t i = 0; i < e->items.size(); ++i) s += (i ? " " : "") + E(e->items[i].get());
        return s + "]";
      }
      case ExprKind::kObject: return Entries(e->entries);
      case ExprKind::kNew: return "(new " + e->text + " " + Entries(e->entries) + ")";
    }
    return "?";
  }

  std::string Entries(const std::vector<ObjectEntry>& entries) {
    std::string s = "{";
    for (size_t i = 0; i < entries.size(); ++i) s += (i ? " " : "") + entries[i].key + ": " + E(entries[i].value.get());
    return s + "}";
  }

  void Stmts(const std::vector<StmtPtr>& body) {
    ++indent;
    for (auto& s : body) S(s.get());
    --indent;
  }

  void S(const Stmt* s) {
    switch (s->kind) {
      case StmtKind::kLet:
        Line(std::string(s->is_var ? "var " : "let ") + s->name +
             (s->declared ? ": " + TypeText(s->declared.get()) : "") + " = " + E(s->value.get()));
        break;
      case StmtKind::kAssign: Line("set " + E(s->target.get()) + " = " + E(s->value.get())); break;
      case StmtKind::kIf:
        Line("if " + E(s->value.get()));
        Stmts(s->body);
        if (s->has_else) {
          Line("else");
          Stmts(s->else_body);
        }
        break;
      case StmtKind::kFor:
        Line("for " + s->name + (s->second_name.empty() ? "" : ", " + s->second_name) + " in " + E(s->value.get()));
        Stmts(s->body);
        break;
      case StmtKind::kReturn: Line("return " + (s->value ? E(s->value.get()) : std::string())); break;
      case StmtKind::kRequeue: Line("requeue after " + E(s->value.get())); break;
      case StmtKind::kFail: Line("fail " + E(s->value.get())); break;
      case StmtKind::kBreak: Line("break"); break;
      case StmtKind::kContinue: Line("continue"); break;
      case StmtKind::kBlock: Line("block"); Stmts(s->body); break;
      case StmtKind::kExpr: Line("expr " + E(s->value.get())); break;
    }
  }

  void Field(const FieldDecl& f) {
    std::string s = "field " + f.name + ": " + TypeText(f.type.get());
    for (auto& a : f.attributes) {
      s += " @" + a.name;
      if (!a.args.empty()) {
        s += "(";
        for (size_t i = 0; i < a.args.size(); ++i) s += (i ? ", " : "") + E(a.args[i].get());
        s += ")";
      }
    }
    if (f.default_value) s += " = " + E(f.default_value.get());
    Line(s);
  }

  void Fn(const FnDecl& f) {
    std::string s = "fn " + f.name + "(";
    for (size_t i = 0; i < f.params.size(); ++i) s += (i ? ", " : "") + f.params[i].name + ": " + TypeText(f.params[i].type.get());
    s += ")";
    if (f.result) s += " -> " + TypeText(f.result.get());
    Line(s);
    Stmts(f.body);
  }
};

}  // namespace

std::string DumpAst(const Module& m) {
  Dumper d;
  for (auto& i : m.imports) d.Line("import " + Quote(i.path) + (i.alias.empty() ? "" : " as " + i.alias));
  for (auto& e : m.enums) {
    std::string s = "enum " + e->name + " {";
    for (size_t i = 0; i < e->values.size(); ++i) s += (i ? ", " : " ") + e->values[i];
    d.Line(s + " }");
  }
  for (auto& s : m.structs) {
    d.Line("struct " + s->name);
    ++d.indent;
    for (auto& f : s->fields) d.Field(f);
    for (auto& r : s->rules) d.Line("rule " + Quote(r.message) + (r.field.empty() ? "" : " for " + r.field) + " = " + d.E(r.condition.get()));
    --d.indent;
  }
  for (auto& r : m.resources) {
    d.Line("resource " + r->name);
    ++d.indent;
    for (auto& st : r->settings) d.Line("set " + st.name + " = " + d.E(st.value.get()));
    for (auto& sub : r->subresources) {
      std::string s = "subresource " + sub.name;
      for (auto& st : sub.settings) s += " " + st.name + "=" + d.E(st.value.get());
      d.Line(s);
    }
    for (auto& f : r->fields) d.Field(f);
    for (auto& c : r->columns) {
      std::string s = "column " + Quote(c.name);
      if (c.type) s += ": " + TypeText(c.type.get());
      for (auto& f : c.flags) s += " " + f;
      d.Line(s + " = " + d.E(c.value.get()));
    }
    for (auto& ru : r->rules) d.Line("rule " + Quote(ru.message) + (ru.field.empty() ? "" : " for " + ru.field) + " = " + d.E(ru.condition.get()));
    --d.indent;
  }
  for (auto& c : m.consts) d.Line("const " + c->name + " = " + d.E(c->value.get()));
  for (auto& f : m.functions) d.Fn(*f);
  for (auto& c : m.controllers) {
    d.Line("controller " + c->name);
    ++d.indent;
    d.Line("primary " + c->primary);
    for (auto& o : c->owns) d.Line("owns " + o);
    for (auto& w : c->watches) d.Line("watches " + w.type_name + (w.mapping ? " by " + d.E(w.mapping.get()) : ""));
    for (auto& st : c->settings) d.Line("set " + st.name + " = " + d.E(st.value.get()));
    if (c->reconcile) d.Fn(*c->reconcile);
    for (auto& h : c->helpers) d.Fn(*h);
    --d.indent;
  }
  return d.out.str();
}

}  // namespace rc::dsl
