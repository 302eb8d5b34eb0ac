// The abstract syntax tree of one .rc file. Produced by dsl::Parse (the only place that sees ANTLR
// types), consumed by compiler/sema. Nodes own their children; every node carries its range.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rc/dsl/source.h"

namespace rc::dsl {

// ---- types written in source ----
struct TypeExpr {
  enum class Kind { kNamed, kList, kMap, kOptional } kind = Kind::kNamed;
  SourceRange range;
  std::string name;                 // kNamed: "string", "PodSpec", "core.Pod"
  std::unique_ptr<TypeExpr> inner;  // kList, kMap, kOptional
};

// ---- expressions ----
struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Arg {
  std::string name;  // named argument ("namespace: x"), else empty
  SourceRange name_range;
  ExprPtr value;
};

struct ObjectEntry {
  std::string key;
  SourceRange key_range;
  ExprPtr value;
};

enum class ExprKind {
  kInt, kFloat, kString, kInterpolated, kDuration, kBool, kNull,
  kName,          // identifier
  kField,         // base.name
  kSafeField,     // base?.name
  kIndex,         // base[index]
  kCall,          // callee(args)
  kWith,          // base with { ... }
  kUnary,         // op operand
  kBinary,        // lhs op rhs (arithmetic, comparison, &&, ||, ??, in)
  kCond,          // cond ? a : b
  kLambda,        // (a, b) => body
  kList,          // [a, b]
  kObject,        // { k: v }
  kNew,           // new Type { k: v }
};

struct Expr {
  ExprKind kind;
  SourceRange range;
  // Literals.
  int64_t int_value = 0;       // kInt; kDuration in nanoseconds
  double float_value = 0;      // kFloat
  bool bool_value = false;     // kBool
  std::string text;            // kString (unescaped); kName/kField/kSafeField name; kNew type
                               // name; kUnary/kBinary operator ("+", "&&", "??", "in", ...)
  SourceRange name_range;      // kField/kSafeField: the member name
  ExprPtr lhs;                 // base, operand, callee, left side, condition
  ExprPtr rhs;                 // index, right side, then-branch
  ExprPtr third;               // else-branch
  std::vector<Arg> args;       // kCall
  std::vector<ExprPtr> items;  // kList; kInterpolated parts (strings and expressions, in order)
  std::vector<ObjectEntry> entries;  // kObject, kWith, kNew
  std::vector<std::string> params;   // kLambda
  ExprPtr body;                      // kLambda

  // Filled by sema: an index into the checker's type table (-1: unchecked).
  int type_id = -1;

  Expr(ExprKind k, SourceRange r) : kind(k), range(r) {}
};

// ---- statements ----
struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;

enum class StmtKind { kLet, kAssign, kIf, kFor, kReturn, kRequeue, kFail, kBreak, kContinue, kBlock, kExpr };

struct Stmt {
  StmtKind kind;
  SourceRange range;
  bool is_var = false;                  // kLet: `var` (mutable) vs `let`
  std::string name;                     // kLet, kFor (item variable)
  std::string second_name;              // kFor: `for i, x in xs` -> name "i", second "x"
  std::unique_ptr<TypeExpr> declared;   // kLet with a type annotation
  ExprPtr target;                       // kAssign left side
  ExprPtr value;                        // kLet/kAssign/kReturn/kRequeue/kFail/kExpr; kIf/kFor
                                        // condition / iterated expression
  std::vector<StmtPtr> body;            // kIf then-branch, kFor, kBlock
  std::vector<StmtPtr> else_body;       // kIf (an `else if` is one kIf statement inside)
  bool has_else = false;

  Stmt(StmtKind k, SourceRange r) : kind(k), range(r) {}
};

// ---- declarations ----
struct Attribute {
  std::string name;  // "min", "required", "listMapKeys"
  SourceRange range;
  std::vector<ExprPtr> args;
};

struct FieldDecl {
  std::string name;
  SourceRange range;
  SourceRange name_range;
  std::string doc;
  std::unique_ptr<TypeExpr> type;
  std::vector<Attribute> attributes;
  ExprPtr default_value;
};

struct Setting {
  std::string name;  // "group", "plural", "resync"
  SourceRange range;
  ExprPtr value;
};

struct Subresource {
  std::string name;  // "status", "scale"
  SourceRange range;
  std::vector<Setting> settings;
};

struct ColumnDecl {
  std::string name;  // "Ready"
  SourceRange range;
  std::unique_ptr<TypeExpr> type;    // optional
  std::vector<std::string> flags;    // "wide"
  ExprPtr value;
};

// rule "message" for path = expr;  (expr sees the enclosing object's fields)
struct RuleDecl {
  std::string message;
  std::string field;  // dotted path relative to the enclosing object ("" = the object itself)
  SourceRange range;
  ExprPtr condition;
};

struct ResourceDecl {
  std::string name;  // the kind
  SourceRange range;
  SourceRange name_range;
  std::string doc;
  std::vector<Setting> settings;
  std::vector<Subresource> subresources;
  std::vector<FieldDecl> fields;
  std::vector<ColumnDecl> columns;
  std::vector<RuleDecl> rules;
};

struct StructDecl {
  std::string name;
  SourceRange range;
  SourceRange name_range;
  std::string doc;
  std::vector<FieldDecl> fields;
  std::vector<RuleDecl> rules;
};

struct EnumDecl {
  std::string name;
  SourceRange range;
  SourceRange name_range;
  std::string doc;
  std::vector<std::string> values;
  std::vector<SourceRange> value_ranges;
};

struct Param {
  std::string name;
  SourceRange range;
  std::unique_ptr<TypeExpr> type;
};

struct FnDecl {
  std::string name;
  SourceRange range;
  SourceRange name_range;
  std::string doc;
  std::vector<Param> params;
  std::unique_ptr<TypeExpr> result;  // null: no result
  std::vector<StmtPtr> body;         // a `= expr;` function has one kReturn statement
  bool expression_bodied = false;
};

struct ConstDecl {
  std::string name;
  SourceRange range;
  std::unique_ptr<TypeExpr> type;
  ExprPtr value;
};

struct WatchDecl {
  std::string type_name;
  SourceRange range;
  ExprPtr mapping;  // `by expr`: a function from the watched object to primary keys (may be null)
};

struct ControllerDecl {
  std::string name;
  SourceRange range;
  SourceRange name_range;
  std::string doc;
  std::string primary;
  SourceRange primary_range;
  std::vector<std::string> owns;
  std::vector<SourceRange> owns_ranges;
  std::vector<WatchDecl> watches;
  std::vector<Setting> settings;
  std::unique_ptr<FnDecl> reconcile;  // named "reconcile", one parameter, no result
  std::vector<std::unique_ptr<FnDecl>> helpers;
};

struct ImportDecl {
  std::string path;
  std::string alias;
  SourceRange range;
};

struct Module {
  const SourceFile* file = nullptr;
  std::vector<ImportDecl> imports;
  std::vector<std::unique_ptr<ResourceDecl>> resources;
  std::vector<std::unique_ptr<StructDecl>> structs;
  std::vector<std::unique_ptr<EnumDecl>> enums;
  std::vector<std::unique_ptr<FnDecl>> functions;
  std::vector<std::unique_ptr<ConstDecl>> consts;
  std::vector<std::unique_ptr<ControllerDecl>> controllers;
};

// Limits that keep hostile input from crashing or hanging the compiler.
struct ParseLimits {
  size_t max_bytes = 8u << 20;  // 8 MiB per file
  int max_depth = 200;          // nesting of brackets, blocks and prefix operators
};

// Parses one file. Syntax errors go to `diags` (the parser recovers and reports several); the
// returned module holds whatever parsed. Never throws.
std::unique_ptr<Module> Parse(const SourceFile& file, Diagnostics& diags,
                              const ParseLimits& limits = {});

// Textual dump of a module for golden tests and `rcc --emit=ast`.
std::string DumpAst(const Module& module);

}  // namespace rc::dsl
