#include "rc/compiler/program.h"

namespace rc::compiler {

TypeTable::TypeTable() {
  error = Of(TyKind::kError);
  void_ = Of(TyKind::kVoid);
  null = Of(TyKind::kNull);
  int_ = Of(TyKind::kInt);
  float_ = Of(TyKind::kFloat);
  bool_ = Of(TyKind::kBool);
  string = Of(TyKind::kString);
  duration = Of(TyKind::kDuration);
  timestamp = Of(TyKind::kTimestamp);
  quantity = Of(TyKind::kQuantity);
  int_or_string = Of(TyKind::kIntOrString);
  any = Of(TyKind::kAny);
}

int TypeTable::Intern(const Ty& t) {
  for (size_t i = 0; i < types_.size(); ++i) {
    if (types_[i] == t) return static_cast<int>(i);
  }
  types_.push_back(t);
  return static_cast<int>(types_.size() - 1);
}

int TypeTable::Optional(int elem) {
  const Ty& t = Get(elem);
  if (t.kind == TyKind::kOptional || t.kind == TyKind::kError || t.kind == TyKind::kAny ||
      t.kind == TyKind::kNull) {
    return elem;
  }
  return Intern(Ty{TyKind::kOptional, elem});
}

std::string TypeTable::Name(int id) const {
  if (id < 0) return "<unknown>";
  const Ty& t = Get(id);
  switch (t.kind) {
    case TyKind::kError: return "<error>";
    case TyKind::kVoid: return "void";
    case TyKind::kNull: return "null";
    case TyKind::kInt: return "int";
    case TyKind::kFloat: return "float";
    case TyKind::kBool: return "bool";
    case TyKind::kString: return "string";
    case TyKind::kDuration: return "duration";
    case TyKind::kTimestamp: return "timestamp";
    case TyKind::kQuantity: return "quantity";
    case TyKind::kIntOrString: return "intOrString";
    case TyKind::kAny: return "any";
    case TyKind::kList: return "[" + Name(t.elem) + "]";
    case TyKind::kMap: return "map<" + Name(t.elem) + ">";
    case TyKind::kOptional: return Name(t.elem) + "?";
    case TyKind::kStruct: return t.st ? t.st->name : "struct";
    case TyKind::kEnum: return t.en ? t.en->name : "enum";
    case TyKind::kTypeName: return "type " + Name(t.elem);
    case TyKind::kLambda: return "lambda";
  }
  return "?";
}

}  // namespace rc::compiler
