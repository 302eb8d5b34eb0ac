// Semantic analysis of rc modules: name resolution, the type checker, and the checked program
// that lowering (schemas) and codegen (LLVM IR) consume. No ANTLR and no LLVM types here.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "rc/dsl/ast.h"
#include "rc/schema/schema.h"

namespace rc::compiler {

// ---- checked types ----
enum class TyKind {
  kError,  // after a reported error: compatible with everything, never reported twice
  kVoid, kNull, kInt, kFloat, kBool, kString, kDuration, kTimestamp, kQuantity, kIntOrString,
  kAny,       // dynamic JSON value
  kList, kMap, kOptional,
  kStruct,    // struct or resource
  kEnum,
  kTypeName,  // a type used as a value: list(Pod, ...)
  kLambda,
};

struct StructInfo;
struct EnumInfo;

struct Ty {
  TyKind kind = TyKind::kError;
  int elem = -1;                       // kList/kMap/kOptional element; kTypeName: the named type
  const StructInfo* st = nullptr;      // kStruct
  const EnumInfo* en = nullptr;        // kEnum
  bool operator==(const Ty& o) const { return kind == o.kind && elem == o.elem && st == o.st && en == o.en; }
};

class TypeTable {
 public:
  TypeTable();
  int Intern(const Ty& t);
  const Ty& Get(int id) const { return types_[id]; }
  int Of(TyKind k) { return Intern(Ty{k}); }
  int List(int elem) { return Intern(Ty{TyKind::kList, elem}); }
  int Map(int elem) { return Intern(Ty{TyKind::kMap, elem}); }
  int Optional(int elem);  // Optional(Optional(T)) == Optional(T)
  std::string Name(int id) const;

  // Pre-interned ids of the scalar kinds.
  int error, void_, null, int_, float_, bool_, string, duration, timestamp, quantity, int_or_string, any;

 private:
  std::vector<Ty> types_;
};

struct FieldInfo {
  std::string name;
  int type = -1;  // checked type (Optional(T) when declared `T?`)
  const dsl::FieldDecl* decl = nullptr;
};

struct StructInfo {
  std::string name;
  const dsl::StructDecl* decl = nullptr;      // a struct...
  const dsl::ResourceDecl* resource = nullptr;  // ...or a resource (fields + apiVersion/kind/metadata)
  std::vector<FieldInfo> fields;
  const FieldInfo* Find(const std::string& n) const {
    for (const auto& f : fields) if (f.name == n) return &f;
    return nullptr;
  }
};

struct EnumInfo {
  std::string name;
  const dsl::EnumDecl* decl = nullptr;
};

// What a name or call in the source refers to (filled by the checker for codegen).
struct Resolution {
  enum class Kind {
    kNone,
    kLocal,       // a let/var/param/for variable: `slot`
    kSelfField,   // an implicit field of the column's object (`spec` in a column expression)
    kConst,       // a global constant: `name`
    kFunction,    // a user function: `name` (called by kCall)
    kBuiltin,     // a builtin function: `name` ("len", "now", "create", ...)
    kMethod,      // a builtin method on the receiver's type: `name` ("filter", "join", ...)
    kType,        // a type name used as a value
    kEnumValue,   // Enum.Value: `name` is the value
  } kind = Kind::kNone;
  std::string name;
  int slot = -1;
};

struct FunctionInfo {
  std::string name;  // "podReady"; controller helpers are "Controller.helper"
  const dsl::FnDecl* decl = nullptr;
  std::vector<int> params;
  int result = -1;  // void_ when none
  bool in_controller = false;
  int locals = 0;   // number of local slots (params first)
};

struct ControllerInfo {
  std::string name;
  const dsl::ControllerDecl* decl = nullptr;
  const StructInfo* primary = nullptr;
  std::vector<const StructInfo*> owns;
  std::vector<const StructInfo*> watches;
  int64_t resync_ns = 0;
  FunctionInfo reconcile;
};

struct ColumnInfo {
  const dsl::ColumnDecl* decl = nullptr;
  int type = -1;
  int locals = 0;
};

// All modules of one compilation, with everything the checker learned.
struct Program {
  std::vector<std::unique_ptr<dsl::SourceFile>> files;
  std::vector<std::unique_ptr<dsl::Module>> modules;
  TypeTable types;
  std::map<std::string, std::unique_ptr<StructInfo>> structs;  // structs and resources by name
  std::map<std::string, std::unique_ptr<EnumInfo>> enums;
  std::map<std::string, FunctionInfo> functions;
  std::map<std::string, std::pair<const dsl::ConstDecl*, int>> consts;
  std::vector<ControllerInfo> controllers;
  std::map<const dsl::ColumnDecl*, ColumnInfo> columns;
  std::unordered_map<const dsl::Expr*, Resolution> resolutions;
  std::unordered_map<const dsl::Expr*, int> expr_types;  // checked type of every expression
  std::string content_hash;  // hash over every file's path and text

  int TypeOf(const dsl::Expr* e) const {
    auto it = expr_types.find(e);
    return it == expr_types.end() ? -1 : it->second;
  }
  const Resolution* Resolve(const dsl::Expr* e) const {
    auto it = resolutions.find(e);
    return it == resolutions.end() ? nullptr : &it->second;
  }
};

struct CheckOptions {
  // Directories searched for `import "x.rc"` after the importing file's own directory.
  std::vector<std::string> import_paths;
  // Load the prelude (meta/v1 types: ObjectMeta, LabelSelector, ...) before user files.
  bool prelude = true;
  dsl::ParseLimits limits;
};

// Parses and checks `paths` (and what they import). Diagnostics go to `diags`; the returned
// program is usable for lowering and codegen only when diags has no errors.
std::unique_ptr<Program> CheckFiles(const std::vector<std::string>& paths, dsl::Diagnostics& diags,
                                    const CheckOptions& options = {});
// Same over in-memory sources (path, text) — tests, fuzzing and embedded resources.
std::unique_ptr<Program> CheckSources(const std::vector<std::pair<std::string, std::string>>& sources,
                                      dsl::Diagnostics& diags, const CheckOptions& options = {});

// Whether a (checked) default needs no compiled code: literals, enum values, and lists/objects of
// those — not references to fields. Lowering stores these as JSON; codegen compiles the rest.
bool IsConstantExpr(const Program& program, const dsl::Expr* e);

// The prelude source text (resources/meta_v1.rc, embedded at build time).
const std::string& PreludeSource();

// Lowers every `resource` declared in the program's user files to its compiled schema
// (columns that are plain field paths become json_path; others are left for codegen to fill).
std::vector<schema::ResourceSchema> LowerResources(const Program& program);

}  // namespace rc::compiler
