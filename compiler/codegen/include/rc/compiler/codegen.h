// Checked program -> LLVM IR. Every user function, column expression, computed default and
// controller reconcile becomes an exported function that calls the C runtime (stdlib/runtime).
//
// Exported symbols (all take `rc_ctx*` first; see stdlib/runtime for the object model):
//   rc_fn_<name>(ctx, params...) -> result       native types: i64 int/duration(ns)/timestamp(s)/
//                                                quantity(milli), double, i1 bool, ptr otherwise
//   rc_boxed_<name>(ctx, rc_value** args) -> rc_value*      the same with boxed JSON values
//   rc_col_<Kind>_<n>(ctx, const rc_value* object) -> rc_value*   column n (declaration order)
//   rc_default_<Struct>_<field>(ctx, const rc_value* parent) -> rc_value*   computed defaults
//   rc_rule_<Struct>_<n>(ctx, const rc_value* object) -> rc_value* (bool)  validation rules
//   rc_reconcile_<Controller>(ctx, const rc_value* object) -> void
//   rc_watch_<Controller>_<i>(ctx, const rc_value* watched) -> rc_value* (list of strings)
//        the primary keys ("namespace/name", "name" for cluster-scoped primaries) of the i-th
//        `watches T by f` declaration (i counts every `watches`; one without `by` has none)
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "rc/compiler/program.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

namespace rc::compiler {

struct GeneratedModule {
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  struct Column {
    std::string kind;
    size_t index = 0;      // among the resource's declared columns
    std::string symbol;    // rc_col_...; empty when the column is a plain json_path
  };
  std::vector<Column> columns;
  struct Default {
    std::string struct_name;
    std::string field;
    std::string symbol;
  };
  std::vector<Default> defaults;
  struct RuleFn {
    std::string struct_name;  // struct or resource
    size_t index = 0;         // among its rules
    std::string symbol;       // rc_rule_<Struct>_<n>(ctx, object) -> boxed bool
  };
  std::vector<RuleFn> rules;
  std::vector<std::string> functions;    // user function names with an rc_boxed_ entry
  std::vector<std::string> controllers;  // controller names with an rc_reconcile_ entry
  struct WatchMapper {
    std::string controller;
    size_t index = 0;    // among the controller's `watches` declarations
    std::string type;    // the watched resource (kind)
    std::string symbol;  // rc_watch_<Controller>_<index>(ctx, object) -> list of key strings
  };
  std::vector<WatchMapper> watch_mappers;
};

// Generates the module. The program must have checked without errors. With `only_files`, code
// is generated only for what those files declare (plus the functions it calls), so editing one
// file does not recompile the files it imports.
GeneratedModule GenerateModule(const Program& program, const std::string& module_name,
                               const std::set<std::string>* only_files = nullptr);

std::string SymbolSafe(const std::string& name);  // "Ctrl.helper" -> "Ctrl_helper"

}  // namespace rc::compiler
