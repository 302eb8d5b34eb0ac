// Typed AST -> LLVM IR. Values are native where the checked type is a scalar (i64, double, i1)
// and rc_value* (JSON, null = absent) otherwise; Optional(T) is always the JSON pointer.
#include "rc/compiler/codegen.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/MDBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <functional>
#include <map>
#include <set>

namespace rc::compiler {

std::string SymbolSafe(const std::string& name) {
  std::string out;
  for (char c : name) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  return out;
}

namespace {

using dsl::Expr;
using dsl::ExprKind;
using dsl::Stmt;
using dsl::StmtKind;

enum class Rt {
#define RC_RT(name, result, params) name,
#include "rc/stdlib/runtime_abi.def"
#undef RC_RT
};

struct RtSig {
  const char* name;
  char result;
  const char* params;
};

const RtSig kRtSigs[] = {
#define RC_RT(name, result, params) {#name, #result[0], #params},
#include "rc/stdlib/runtime_abi.def"
#undef RC_RT
};

class Gen {
 public:
  Gen(const Program& p, llvm::LLVMContext& ctx, llvm::Module& m)
      : p_(p), T(p.types), C(ctx), M(m), B(ctx) {
    ptr_ = llvm::PointerType::getUnqual(C);
    i64_ = llvm::Type::getInt64Ty(C);
    i32_ = llvm::Type::getInt32Ty(C);
    i8_ = llvm::Type::getInt8Ty(C);
    i1_ = llvm::Type::getInt1Ty(C);
    f64_ = llvm::Type::getDoubleTy(C);
  }

  GeneratedModule::Column column_out;
  GeneratedModule* out = nullptr;

  const std::set<std::string>* only_files = nullptr;

  void Run() {
    ComputeSelection();
    for (auto& [name, f] : p_.functions) if (fn_selected_.count(name)) Declare(f);
    for (auto& [name, f] : p_.functions) if (fn_selected_.count(name)) Define(f);
    for (auto& [name, f] : p_.functions) if (fn_selected_.count(name) && Own(f.decl->range)) DefineBoxed(f);
    for (auto& m : p_.modules) {
      for (auto& r : m->resources) if (Own(r->range)) Columns(*r);
    }
    for (auto& [name, st] : p_.structs) if (Own(st->decl ? st->decl->range : st->resource->range)) Defaults(*st);
    for (auto& [name, st] : p_.structs) if (Own(st->decl ? st->decl->range : st->resource->range)) Rules(*st);
    for (auto& c : p_.controllers) if (Own(c.decl->range)) Reconcile(c);
    for (auto& c : p_.controllers) if (Own(c.decl->range)) WatchMappers(c);
  }

  bool Own(const dsl::SourceRange& r) const {
    return !only_files || (r.file && only_files->count(r.file->path));
  }

  // The functions to generate: every function of the selected files, plus whatever their code
  // (functions, columns, defaults, rules, controllers) calls, transitively.
  void ComputeSelection() {
    std::vector<std::string> work;
    auto add = [&](const std::string& n) {
      if (p_.functions.count(n) && fn_selected_.insert(n).second) work.push_back(n);
    };
    std::function<void(const Expr*)> expr;
    std::function<void(const Stmt*)> stmt;
    expr = [&](const Expr* e) {
      if (!e) return;
      if (const Resolution* r = p_.Resolve(e); r && r->kind == Resolution::Kind::kFunction) add(r->name);
      expr(e->lhs.get()); expr(e->rhs.get()); expr(e->third.get()); expr(e->body.get());
      for (auto& a : e->args) expr(a.value.get());
      for (auto& i : e->items) expr(i.get());
      for (auto& en : e->entries) expr(en.value.get());
    };
    stmt = [&](const Stmt* s) {
      expr(s->target.get()); expr(s->value.get());
      for (auto& b : s->body) stmt(b.get());
      for (auto& b : s->else_body) stmt(b.get());
    };
    for (auto& [name, f] : p_.functions) if (Own(f.decl->range)) add(name);
    for (auto& m : p_.modules) {
      for (auto& r : m->resources) {
        if (!Own(r->range)) continue;
        for (auto& c : r->columns) expr(c.value.get());
      }
    }
    for (auto& [name, st] : p_.structs) {
      if (!Own(st->decl ? st->decl->range : st->resource->range)) continue;
      for (auto& f : st->fields) if (f.decl && f.decl->default_value) expr(f.decl->default_value.get());
      for (auto& r : st->decl ? st->decl->rules : st->resource->rules) expr(r.condition.get());
    }
    for (auto& c : p_.controllers) {
      if (!Own(c.decl->range)) continue;
      if (c.decl->reconcile) for (auto& s : c.decl->reconcile->body) stmt(s.get());
      for (auto& w : c.decl->watches) expr(w.mapping.get());
    }
    while (!work.empty()) {
      std::string n = work.back();
      work.pop_back();
      for (auto& s : p_.functions.at(n).decl->body) stmt(s.get());
    }
  }
  std::set<std::string> fn_selected_;

 private:
  // ---------- types ----------
  TyKind K(int t) const { return t < 0 ? TyKind::kError : T.Get(t).kind; }
  bool IsIntLike(int t) const {
    auto k = K(t);
    return k == TyKind::kInt || k == TyKind::kDuration || k == TyKind::kTimestamp || k == TyKind::kQuantity;
  }
  llvm::Type* Native(int t) {
    auto k = K(t);
    if (IsIntLike(t)) return i64_;
    if (k == TyKind::kFloat) return f64_;
    if (k == TyKind::kBool) return i1_;
    if (k == TyKind::kVoid) return llvm::Type::getVoidTy(C);
    return ptr_;
  }

  // ---------- runtime ----------
  llvm::Type* CodeType(char c) {
    switch (c) {
      case 'P': return ptr_;
      case 'I': return i64_;
      case 'D': return f64_;
      case 'B': return i8_;
      case 'W': return i32_;
      default: return llvm::Type::getVoidTy(C);
    }
  }
  llvm::FunctionCallee Fn(Rt rt) {
    const RtSig& s = kRtSigs[static_cast<int>(rt)];
    std::vector<llvm::Type*> params;
    for (const char* c = s.params; *c; ++c) {
      if (*c == 'P' || *c == 'I' || *c == 'D' || *c == 'B' || *c == 'W') params.push_back(CodeType(*c));
    }
    auto* fty = llvm::FunctionType::get(CodeType(s.result), params, false);
    auto callee = M.getOrInsertFunction(s.name, fty);
    if (rt == Rt::rc_trap || rt == Rt::rc_trap_code) {
      if (auto* f = llvm::dyn_cast<llvm::Function>(callee.getCallee())) f->setDoesNotReturn();
    }
    return callee;
  }
  llvm::Value* Call(Rt rt, std::vector<llvm::Value*> args) {
    const RtSig& s = kRtSigs[static_cast<int>(rt)];
    llvm::Value* v = B.CreateCall(Fn(rt), args);
    if (s.result == 'B') return B.CreateICmpNE(v, llvm::ConstantInt::get(i8_, 0));
    return v;
  }
  llvm::Value* Bool8(llvm::Value* b) { return B.CreateZExt(b, i8_); }
  llvm::Value* I64(int64_t v) { return llvm::ConstantInt::get(i64_, v); }
  llvm::Value* Null() { return llvm::ConstantPointerNull::get(llvm::cast<llvm::PointerType>(ptr_)); }

  llvm::Value* CStr(const std::string& s) {
    auto it = cstrs_.find(s);
    if (it != cstrs_.end()) return it->second;
    auto* g = B.CreateGlobalString(s, ".str", 0, &M);
    cstrs_[s] = g;
    return g;
  }
  llvm::Value* Str(const std::string& s) { return Call(Rt::rc_new_string, {ctx_, CStr(s), I64(s.size())}); }

  // ---------- boxing ----------
  // Native value of checked type `t` -> rc_value*.
  llvm::Value* Box(llvm::Value* v, int t) {
    switch (K(t)) {
      case TyKind::kInt: return Call(Rt::rc_new_int, {ctx_, v});
      case TyKind::kFloat: return Call(Rt::rc_new_float, {ctx_, v});
      case TyKind::kBool: return Call(Rt::rc_new_bool, {ctx_, Bool8(v)});
      case TyKind::kDuration: return Call(Rt::rc_box_duration, {ctx_, v});
      case TyKind::kTimestamp: return Call(Rt::rc_box_timestamp, {ctx_, v});
      case TyKind::kQuantity: return Call(Rt::rc_box_quantity, {ctx_, v});
      case TyKind::kVoid: return Null();
      default: return v;
    }
  }
  // rc_value* (JSON) -> native value of checked type `t` (absent reads as the zero value).
  llvm::Value* Unbox(llvm::Value* v, int t) {
    switch (K(t)) {
      case TyKind::kInt: return Call(Rt::rc_as_int, {v, I64(0)});
      case TyKind::kFloat: return Call(Rt::rc_as_float, {v, llvm::ConstantFP::get(f64_, 0.0)});
      case TyKind::kBool: return Call(Rt::rc_as_bool, {v, llvm::ConstantInt::get(i8_, 0)});
      case TyKind::kDuration: return Call(Rt::rc_as_duration, {ctx_, v});
      case TyKind::kTimestamp: return Call(Rt::rc_as_timestamp, {ctx_, v});
      case TyKind::kQuantity: return Call(Rt::rc_as_quantity, {ctx_, v});
      default: return v;
    }
  }
  // Converts a native value of type `from` to type `to` (the checker proved assignability).
  llvm::Value* Coerce(llvm::Value* v, int from, int to) {
    if (from == to || to < 0 || from < 0) return v;
    TyKind f = K(from), k = K(to);
    if (f == TyKind::kError || k == TyKind::kError) return v;
    if (f == TyKind::kNull) {
      if (IsIntLike(to)) return I64(0);
      if (k == TyKind::kFloat) return llvm::ConstantFP::get(f64_, 0.0);
      if (k == TyKind::kBool) return llvm::ConstantInt::getFalse(C);
      return Null();
    }
    if (k == TyKind::kOptional || k == TyKind::kAny || k == TyKind::kIntOrString) {
      if (f == TyKind::kOptional) return v;
      return Box(v, from);
    }
    if (f == TyKind::kAny || f == TyKind::kOptional) return Unbox(v, k == TyKind::kOptional ? T.Get(to).elem : to);
    if (k == TyKind::kFloat && f == TyKind::kInt) return B.CreateSIToFP(v, f64_);
    if (k == TyKind::kQuantity && f == TyKind::kInt) return B.CreateMul(v, I64(1000));
    return v;  // enum -> string, list/map covariance: same representation
  }

  // ---------- scopes ----------
  struct Var {
    llvm::AllocaInst* slot;
    int type;
  };
  std::vector<std::map<std::string, Var>> scopes_;
  llvm::AllocaInst* Alloca(llvm::Type* ty, const std::string& name) {
    llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
    return entry.CreateAlloca(ty, nullptr, name);
  }
  void Bind(const std::string& name, llvm::Value* v, int type) {
    auto* slot = Alloca(Native(type), name);
    B.CreateStore(v, slot);
    scopes_.back()[name] = {slot, type};
  }
  const Var* Lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = it->find(name);
      if (f != it->end()) return &f->second;
    }
    return nullptr;
  }

  // ---------- functions ----------
  llvm::Function* NewFunction(const std::string& symbol, llvm::Type* result, std::vector<llvm::Type*> params) {
    auto* fty = llvm::FunctionType::get(result, params, false);
    auto* f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, symbol, M);
    return f;
  }
  void Begin(llvm::Function* f) {
    fn_ = f;
    auto* entry = llvm::BasicBlock::Create(C, "entry", f);
    B.SetInsertPoint(entry);
    ctx_ = f->getArg(0);
    scopes_.clear();
    scopes_.emplace_back();
    loops_.clear();
  }
  void Declare(const FunctionInfo& f) {
    std::vector<llvm::Type*> params{ptr_};
    for (int p : f.params) params.push_back(Native(p));
    fns_[f.name] = NewFunction("rc_fn_" + SymbolSafe(f.name), Native(f.result), params);
  }
  void Define(const FunctionInfo& f) {
    llvm::Function* fn = fns_.at(f.name);
    Begin(fn);
    result_type_ = f.result;
    for (size_t i = 0; i < f.params.size(); ++i) Bind(f.decl->params[i].name, fn->getArg(i + 1), f.params[i]);
    EmitBlock(f.decl->body);
    Terminate();
  }
  // Ends the current block if it is still open (the checker proved non-void functions return).
  void Terminate() {
    if (B.GetInsertBlock()->getTerminator()) return;
    if (fn_->getReturnType()->isVoidTy()) B.CreateRetVoid();
    else B.CreateUnreachable();
  }
  void DefineBoxed(const FunctionInfo& f) {
    if (f.in_controller) return;
    llvm::Function* fn = NewFunction("rc_boxed_" + SymbolSafe(f.name), ptr_, {ptr_, ptr_});
    Begin(fn);
    std::vector<llvm::Value*> args{ctx_};
    for (size_t i = 0; i < f.params.size(); ++i) {
      llvm::Value* slot = B.CreateGEP(ptr_, fn->getArg(1), I64(i));
      llvm::Value* boxed = B.CreateLoad(ptr_, slot);
      args.push_back(Unbox(boxed, f.params[i]));
    }
    llvm::Value* r = B.CreateCall(fns_.at(f.name), args);
    B.CreateRet(f.result == T.void_ ? Null() : Box(r, f.result));
    if (out) out->functions.push_back(f.name);
  }

  void Columns(const dsl::ResourceDecl& r) {
    const StructInfo* self = p_.structs.at(r.name).get();
    for (size_t i = 0; i < r.columns.size(); ++i) {
      const auto& c = r.columns[i];
      auto it = p_.columns.find(&c);
      if (it == p_.columns.end()) continue;
      std::string symbol = "rc_col_" + SymbolSafe(r.name) + "_" + std::to_string(i);
      llvm::Function* fn = NewFunction(symbol, ptr_, {ptr_, ptr_});
      Begin(fn);
      self_ = fn->getArg(1);
      self_struct_ = self;
      llvm::Value* v = Emit(c.value.get());
      int t = p_.TypeOf(c.value.get());
      llvm::Value* boxed = K(t) == TyKind::kTimestamp ? Box(v, t) : ToText(v, t);
      B.CreateRet(boxed);
      self_ = nullptr;
      if (out) out->columns.push_back({r.name, i, symbol});
    }
  }

  void Defaults(const StructInfo& st) {
    for (const auto& f : st.fields) {
      if (!f.decl || !f.decl->default_value || IsConstantExpr(p_, f.decl->default_value.get())) continue;
      std::string symbol = "rc_default_" + SymbolSafe(st.name) + "_" + SymbolSafe(f.name);
      llvm::Function* fn = NewFunction(symbol, ptr_, {ptr_, ptr_});
      Begin(fn);
      self_ = fn->getArg(1);
      self_struct_ = &st;
      int base = f.type;  // optional fields keep their JSON form (null = no default)
      llvm::Value* v = Emit(f.decl->default_value.get());
      v = Coerce(v, p_.TypeOf(f.decl->default_value.get()), base);
      B.CreateRet(Box(v, base));
      self_ = nullptr;
      if (out) out->defaults.push_back({st.name, f.name, symbol});
    }
  }
  void Rules(const StructInfo& st) {
    const auto& rules = st.decl ? st.decl->rules : st.resource->rules;
    for (size_t i = 0; i < rules.size(); ++i) {
      std::string symbol = "rc_rule_" + SymbolSafe(st.name) + "_" + std::to_string(i);
      llvm::Function* fn = NewFunction(symbol, ptr_, {ptr_, ptr_});
      Begin(fn);
      self_ = fn->getArg(1);
      self_struct_ = &st;
      llvm::Value* v = Cond(rules[i].condition.get());
      B.CreateRet(Box(v, T.bool_));
      self_ = nullptr;
      if (out) out->rules.push_back({st.name, i, symbol});
    }
  }

  void Reconcile(const ControllerInfo& c) {
    if (!c.decl->reconcile) return;
    llvm::Function* fn = NewFunction("rc_reconcile_" + SymbolSafe(c.name), llvm::Type::getVoidTy(C), {ptr_, ptr_});
    Begin(fn);
    result_type_ = T.void_;
    if (!c.decl->reconcile->params.empty()) Bind(c.decl->reconcile->params[0].name, fn->getArg(1), c.reconcile.params[0]);
    EmitBlock(c.decl->reconcile->body);
    Terminate();
    if (out) out->controllers.push_back(c.name);
  }

  // rc_watch_<Controller>_<i>(ctx, watched object) -> JSON list of primary keys: what the
  // mapping returns when it returns [string], else each returned primary's "namespace/name"
  // ("name" when it has no namespace).
  void WatchMappers(const ControllerInfo& c) {
    for (size_t i = 0; i < c.decl->watches.size(); ++i) {
      const dsl::WatchDecl& w = c.decl->watches[i];
      if (!w.mapping) continue;
      std::string type = w.type_name;
      if (auto dot = type.rfind('.'); dot != std::string::npos) type = type.substr(dot + 1);
      auto st = p_.structs.find(type);
      if (st == p_.structs.end()) continue;
      std::string symbol = "rc_watch_" + SymbolSafe(c.name) + "_" + std::to_string(i);
      llvm::Function* fn = NewFunction(symbol, ptr_, {ptr_, ptr_});
      Begin(fn);
      result_type_ = T.void_;
      int wt = const_cast<TypeTable&>(T).Intern(Ty{TyKind::kStruct, -1, st->second.get()});
      llvm::Value* result = Apply(w.mapping.get(), {{fn->getArg(1), wt}});
      int rt = ResultOf(w.mapping.get());
      int el = K(rt) == TyKind::kList ? T.Get(rt).elem : T.any;
      if (K(el) == TyKind::kString) {
        B.CreateRet(result);
      } else {
        llvm::Value* keys = Call(Rt::rc_new_list, {ctx_});
        llvm::Value* n = Call(Rt::rc_list_len, {result});
        Loop0(n, [&](llvm::Value* k) {
          llvm::Value* item = Call(Rt::rc_list_at, {ctx_, result, k});
          llvm::Value* meta = Call(Rt::rc_get, {item, CStr("metadata"), I64(8)});
          llvm::Value* name = Call(Rt::rc_get, {meta, CStr("name"), I64(4)});
          llvm::Value* ns = Call(Rt::rc_get, {meta, CStr("namespace"), I64(9)});
          llvm::Value* has_ns = B.CreateICmpSGT(Call(Rt::rc_str_len, {ns}), I64(0));
          auto* with_ns = llvm::BasicBlock::Create(C, "key.ns", fn_);
          auto* without = llvm::BasicBlock::Create(C, "key.name", fn_);
          auto* done = llvm::BasicBlock::Create(C, "key.done", fn_);
          B.CreateCondBr(has_ns, with_ns, without);
          B.SetInsertPoint(with_ns);
          llvm::Value* joined = Call(Rt::rc_str_concat, {ctx_, Call(Rt::rc_str_concat, {ctx_, Call(Rt::rc_to_string, {ctx_, ns}), Str("/")}),
                                                         Call(Rt::rc_to_string, {ctx_, name})});
          Call(Rt::rc_list_push, {ctx_, keys, joined});
          B.CreateBr(done);
          B.SetInsertPoint(without);
          Call(Rt::rc_list_push, {ctx_, keys, Call(Rt::rc_to_string, {ctx_, name})});
          B.CreateBr(done);
          B.SetInsertPoint(done);
        });
        B.CreateRet(keys);
      }
      if (out) out->watch_mappers.push_back({c.name, i, st->first, symbol});
    }
  }

  // ---------- statements ----------
  struct Loop {
    llvm::BasicBlock* cont;
    llvm::BasicBlock* brk;
  };
  std::vector<Loop> loops_;

  void EmitBlock(const std::vector<dsl::StmtPtr>& body) {
    scopes_.emplace_back();
    for (auto& s : body) {
      if (B.GetInsertBlock()->getTerminator()) break;  // unreachable code (the checker reported it)
      EmitStmt(*s);
    }
    scopes_.pop_back();
  }

  void EmitStmt(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::kLet: {
        llvm::Value* v = Emit(s.value.get());
        int vt = p_.TypeOf(s.value.get());
        int t = vt;
        if (s.declared) t = DeclaredType(s);
        Bind(s.name, Coerce(v, vt, t), t);
        return;
      }
      case StmtKind::kAssign: {
        const Var* var = Lookup(s.target->text);
        llvm::Value* v = Emit(s.value.get());
        B.CreateStore(Coerce(v, p_.TypeOf(s.value.get()), var->type), var->slot);
        return;
      }
      case StmtKind::kIf: {
        llvm::Value* cond = Cond(s.value.get());
        auto* then_bb = llvm::BasicBlock::Create(C, "then", fn_);
        auto* else_bb = llvm::BasicBlock::Create(C, "else", fn_);
        auto* end_bb = llvm::BasicBlock::Create(C, "endif", fn_);
        B.CreateCondBr(cond, then_bb, else_bb);
        B.SetInsertPoint(then_bb);
        EmitBlock(s.body);
        if (!B.GetInsertBlock()->getTerminator()) B.CreateBr(end_bb);
        B.SetInsertPoint(else_bb);
        if (s.has_else) EmitBlock(s.else_body);
        if (!B.GetInsertBlock()->getTerminator()) B.CreateBr(end_bb);
        B.SetInsertPoint(end_bb);
        return;
      }
      case StmtKind::kFor: {
        int t = p_.TypeOf(s.value.get());
        llvm::Value* coll = Emit(s.value.get());
        bool is_map = K(t) == TyKind::kMap;
        int elem = K(t) == TyKind::kList || is_map ? T.Get(t).elem : T.any;
        llvm::Value* n = is_map ? Call(Rt::rc_map_len, {coll}) : Call(Rt::rc_list_len, {coll});
        auto* idx = Alloca(i64_, "i");
        B.CreateStore(I64(0), idx);
        auto* cond_bb = llvm::BasicBlock::Create(C, "for.cond", fn_);
        auto* body_bb = llvm::BasicBlock::Create(C, "for.body", fn_);
        auto* step_bb = llvm::BasicBlock::Create(C, "for.step", fn_);
        auto* end_bb = llvm::BasicBlock::Create(C, "for.end", fn_);
        B.CreateBr(cond_bb);
        B.SetInsertPoint(cond_bb);
        llvm::Value* i = B.CreateLoad(i64_, idx);
        B.CreateCondBr(B.CreateICmpSLT(i, n), body_bb, end_bb);
        B.SetInsertPoint(body_bb);
        scopes_.emplace_back();
        if (is_map) {
          Bind(s.name, Call(Rt::rc_map_key_at, {ctx_, coll, i}), T.string);
          if (!s.second_name.empty()) Bind(s.second_name, Unbox(Call(Rt::rc_map_value_at, {coll, i}), elem), elem);
        } else {
          llvm::Value* item = Unbox(Call(Rt::rc_list_at, {ctx_, coll, i}), elem);
          if (s.second_name.empty()) {
            Bind(s.name, item, elem);
          } else {
            Bind(s.name, i, T.int_);
            Bind(s.second_name, item, elem);
          }
        }
        loops_.push_back({step_bb, end_bb});
        EmitBlock(s.body);
        loops_.pop_back();
        scopes_.pop_back();
        if (!B.GetInsertBlock()->getTerminator()) B.CreateBr(step_bb);
        B.SetInsertPoint(step_bb);
        B.CreateStore(B.CreateAdd(B.CreateLoad(i64_, idx), I64(1)), idx);
        B.CreateBr(cond_bb);
        B.SetInsertPoint(end_bb);
        return;
      }
      case StmtKind::kReturn: {
        if (!s.value || result_type_ == T.void_) {
          B.CreateRetVoid();
        } else {
          llvm::Value* v = Emit(s.value.get());
          B.CreateRet(Coerce(v, p_.TypeOf(s.value.get()), result_type_));
        }
        return;
      }
      case StmtKind::kRequeue: {
        llvm::Value* v = Emit(s.value.get());
        Call(Rt::rc_requeue_after, {ctx_, v});
        B.CreateRetVoid();
        return;
      }
      case StmtKind::kFail: {
        llvm::Value* v = Emit(s.value.get());
        Call(Rt::rc_trap, {ctx_, v});
        B.CreateUnreachable();
        return;
      }
      case StmtKind::kBreak: B.CreateBr(loops_.back().brk); return;
      case StmtKind::kContinue: B.CreateBr(loops_.back().cont); return;
      case StmtKind::kBlock: EmitBlock(s.body); return;
      case StmtKind::kExpr: Emit(s.value.get()); return;
    }
  }

  int DeclaredType(const Stmt& s) {
    // The checker bound the let to its declared type; recover it from the value's context.
    // Declared types are resolved again here through the same table.
    return ResolveTypeExpr(s.declared.get());
  }
  int ResolveTypeExpr(const dsl::TypeExpr* t) {
    auto& TT = const_cast<TypeTable&>(T);
    switch (t->kind) {
      case dsl::TypeExpr::Kind::kList: return TT.List(ResolveTypeExpr(t->inner.get()));
      case dsl::TypeExpr::Kind::kMap: return TT.Map(ResolveTypeExpr(t->inner.get()));
      case dsl::TypeExpr::Kind::kOptional: return TT.Optional(ResolveTypeExpr(t->inner.get()));
      case dsl::TypeExpr::Kind::kNamed: {
        std::string name = t->name;
        if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
        static const std::map<std::string, TyKind> builtins = {
            {"string", TyKind::kString}, {"int", TyKind::kInt}, {"float", TyKind::kFloat},
            {"bool", TyKind::kBool}, {"quantity", TyKind::kQuantity}, {"duration", TyKind::kDuration},
            {"timestamp", TyKind::kTimestamp}, {"intOrString", TyKind::kIntOrString}, {"any", TyKind::kAny}};
        if (auto it = builtins.find(name); it != builtins.end()) return TT.Of(it->second);
        if (auto it = p_.structs.find(name); it != p_.structs.end()) return TT.Intern(Ty{TyKind::kStruct, -1, it->second.get()});
        if (auto it = p_.enums.find(name); it != p_.enums.end()) return TT.Intern(Ty{TyKind::kEnum, -1, nullptr, it->second.get()});
        return T.any;
      }
    }
    return T.any;
  }

  // ---------- expressions ----------
  llvm::Value* Cond(const Expr* e) {
    llvm::Value* v = Emit(e);
    int t = p_.TypeOf(e);
    if (K(t) == TyKind::kBool) return v;
    return Coerce(v, t, T.bool_);
  }

  // Text of a native value (interpolation, columns).
  llvm::Value* ToText(llvm::Value* v, int t) {
    switch (K(t)) {
      case TyKind::kString: case TyKind::kEnum: return Call(Rt::rc_to_string, {ctx_, v});
      case TyKind::kInt: return Call(Rt::rc_int_to_string, {ctx_, v});
      case TyKind::kFloat: return Call(Rt::rc_float_to_string, {ctx_, v});
      case TyKind::kBool: case TyKind::kDuration: case TyKind::kTimestamp: case TyKind::kQuantity:
        return Call(Rt::rc_to_string, {ctx_, Box(v, t)});
      default: return Call(Rt::rc_to_string, {ctx_, v});
    }
  }

  llvm::Value* Emit(const Expr* e) {
    int t = p_.TypeOf(e);
    switch (e->kind) {
      case ExprKind::kInt: return I64(e->int_value);
      case ExprKind::kFloat: return llvm::ConstantFP::get(f64_, e->float_value);
      case ExprKind::kString:
        if (K(t) == TyKind::kQuantity) return Call(Rt::rc_as_quantity, {ctx_, Str(e->text)});
        return Str(e->text);
      case ExprKind::kInterpolated: {
        llvm::Value* acc = nullptr;
        for (auto& part : e->items) {
          llvm::Value* s = part->kind == ExprKind::kString ? Str(part->text) : ToText(Emit(part.get()), p_.TypeOf(part.get()));
          acc = acc ? Call(Rt::rc_str_concat, {ctx_, acc, s}) : s;
        }
        return acc ? acc : Str("");
      }
      case ExprKind::kDuration: return I64(e->int_value);
      case ExprKind::kBool: return llvm::ConstantInt::getBool(C, e->bool_value);
      case ExprKind::kNull: return Null();
      case ExprKind::kName: return EmitName(e);
      case ExprKind::kField:
      case ExprKind::kSafeField: return EmitField(e);
      case ExprKind::kIndex: {
        int bt = p_.TypeOf(e->lhs.get());
        llvm::Value* base = Emit(e->lhs.get());
        if (K(bt) == TyKind::kList) {
          llvm::Value* i = Coerce(Emit(e->rhs.get()), p_.TypeOf(e->rhs.get()), T.int_);
          return Unbox(Call(Rt::rc_list_at, {ctx_, base, i}), t);
        }
        llvm::Value* key = Emit(e->rhs.get());
        if (K(bt) == TyKind::kAny && IsIntLike(p_.TypeOf(e->rhs.get()))) return Call(Rt::rc_list_at, {ctx_, base, key});
        return MapGet(base, ToText(key, p_.TypeOf(e->rhs.get())));
      }
      case ExprKind::kCall: return EmitCall(e);
      case ExprKind::kWith: {
        llvm::Value* base = Emit(e->lhs.get());
        int bt = p_.TypeOf(e->lhs.get());
        const StructInfo* st = K(bt) == TyKind::kStruct ? T.Get(bt).st : nullptr;
        int elem = K(bt) == TyKind::kMap ? T.Get(bt).elem : -1;
        llvm::Value* overrides = Object(e->entries, st, elem);
        return Call(Rt::rc_merge, {ctx_, base, overrides});
      }
      case ExprKind::kUnary: {
        llvm::Value* v = Emit(e->lhs.get());
        if (e->text == "!") return B.CreateNot(Cond(e->lhs.get()) == v ? v : Coerce(v, p_.TypeOf(e->lhs.get()), T.bool_));
        if (K(t) == TyKind::kFloat) return B.CreateFNeg(v);
        return B.CreateNeg(v);
      }
      case ExprKind::kBinary: return EmitBinary(e);
      case ExprKind::kCond: {
        llvm::Value* c = Cond(e->lhs.get());
        auto* a_bb = llvm::BasicBlock::Create(C, "cond.a", fn_);
        auto* b_bb = llvm::BasicBlock::Create(C, "cond.b", fn_);
        auto* end = llvm::BasicBlock::Create(C, "cond.end", fn_);
        B.CreateCondBr(c, a_bb, b_bb);
        B.SetInsertPoint(a_bb);
        llvm::Value* a = Coerce(Emit(e->rhs.get()), p_.TypeOf(e->rhs.get()), t);
        a_bb = B.GetInsertBlock();
        B.CreateBr(end);
        B.SetInsertPoint(b_bb);
        llvm::Value* b = Coerce(Emit(e->third.get()), p_.TypeOf(e->third.get()), t);
        b_bb = B.GetInsertBlock();
        B.CreateBr(end);
        B.SetInsertPoint(end);
        auto* phi = B.CreatePHI(Native(t), 2);
        phi->addIncoming(a, a_bb);
        phi->addIncoming(b, b_bb);
        return phi;
      }
      case ExprKind::kLambda: return Null();  // only reachable through methods, which inline them
      case ExprKind::kList: {
        llvm::Value* list = Call(Rt::rc_new_list, {ctx_});
        int elem = K(t) == TyKind::kList ? T.Get(t).elem : T.any;
        for (auto& item : e->items) {
          int it = p_.TypeOf(item.get());
          llvm::Value* v = Coerce(Emit(item.get()), it, elem);
          Call(Rt::rc_list_push, {ctx_, list, Box(v, elem)});
        }
        return list;
      }
      case ExprKind::kObject: {
        const StructInfo* st = K(t) == TyKind::kStruct ? T.Get(t).st : nullptr;
        int elem = K(t) == TyKind::kMap ? T.Get(t).elem : -1;
        return Object(e->entries, st, elem);
      }
      case ExprKind::kNew: {
        const StructInfo* st = K(t) == TyKind::kStruct ? T.Get(t).st : nullptr;
        llvm::Value* obj = Object(e->entries, st, -1);
        if (st && st->resource) {
          // new Pod {...} carries its apiVersion and kind.
          std::string group, version = "v1";
          for (auto& s : st->resource->settings) {
            if (s.name == "group") group = s.value->text;
            if (s.name == "version") version = s.value->text;
          }
          std::string api_version = group.empty() ? version : group + "/" + version;
          llvm::Value* envelope = Call(Rt::rc_new_object, {ctx_});
          Call(Rt::rc_object_set, {ctx_, envelope, CStr("apiVersion"), I64(10), Str(api_version)});
          Call(Rt::rc_object_set, {ctx_, envelope, CStr("kind"), I64(4), Str(st->name)});
          obj = Call(Rt::rc_merge, {ctx_, envelope, obj});
        }
        return obj;
      }
    }
    return Null();
  }

  llvm::Value* Object(const std::vector<dsl::ObjectEntry>& entries, const StructInfo* st, int elem) {
    llvm::Value* obj = Call(Rt::rc_new_object, {ctx_});
    for (auto& en : entries) {
      if (en.value->kind == ExprKind::kNull) {
        // A literal `null` is a JSON null: `x with { f: null }` and patch(obj, { f: null }) delete
        // `f` (RFC 7386). A value that is absent at run time leaves the field unset instead.
        Call(Rt::rc_object_set, {ctx_, obj, CStr(en.key), I64(en.key.size()), Call(Rt::rc_new_null, {ctx_})});
        continue;
      }
      int vt = p_.TypeOf(en.value.get());
      int ft = vt;
      if (st) {
        if (const FieldInfo* f = st->Find(en.key)) ft = f->type;
      } else if (elem >= 0) {
        ft = elem;
      }
      llvm::Value* v = Coerce(Emit(en.value.get()), vt, ft);
      Call(Rt::rc_object_set, {ctx_, obj, CStr(en.key), I64(en.key.size()), Box(v, ft)});
    }
    return obj;
  }

  llvm::Value* EmitName(const Expr* e) {
    const Resolution* r = p_.Resolve(e);
    int t = p_.TypeOf(e);
    if (!r) return Null();
    switch (r->kind) {
      case Resolution::Kind::kLocal: {
        const Var* v = Lookup(e->text);
        return B.CreateLoad(Native(v->type), v->slot);
      }
      case Resolution::Kind::kSelfField: {
        if (r->name.empty()) return self_;
        return FieldValue(self_, r->name, t);
      }
      case Resolution::Kind::kConst: {
        const auto& [decl, ct] = p_.consts.at(e->text);
        return Coerce(Emit(decl->value.get()), p_.TypeOf(decl->value.get()), ct);
      }
      case Resolution::Kind::kEnumValue: return Str(e->text);
      default: return Null();
    }
  }

  // Reads field `name` of object `base` as a native value of checked type `t`.
  llvm::Value* FieldValue(llvm::Value* base, const std::string& name, int t) {
    llvm::Value* v = Call(Rt::rc_get, {base, CStr(name), I64(name.size())});
    return Unbox(v, t);
  }

  llvm::Value* EmitField(const Expr* e) {
    const Resolution* r = p_.Resolve(e);
    int t = p_.TypeOf(e);
    if (r && r->kind == Resolution::Kind::kEnumValue) return Str(e->text);
    llvm::Value* base = Emit(e->lhs.get());
    int bt = p_.TypeOf(e->lhs.get());
    if (K(bt) != TyKind::kStruct && K(bt) != TyKind::kOptional && K(bt) != TyKind::kAny) return Null();
    return FieldValue(base, e->text, t);
  }

  llvm::Value* EmitBinary(const Expr* e) {
    const std::string& op = e->text;
    int t = p_.TypeOf(e);
    if (op == "&&" || op == "||") {
      llvm::Value* a = Cond(e->lhs.get());
      auto* start = B.GetInsertBlock();
      auto* rhs_bb = llvm::BasicBlock::Create(C, "logic.rhs", fn_);
      auto* end = llvm::BasicBlock::Create(C, "logic.end", fn_);
      if (op == "&&") B.CreateCondBr(a, rhs_bb, end); else B.CreateCondBr(a, end, rhs_bb);
      B.SetInsertPoint(rhs_bb);
      llvm::Value* b = Cond(e->rhs.get());
      rhs_bb = B.GetInsertBlock();
      B.CreateBr(end);
      B.SetInsertPoint(end);
      auto* phi = B.CreatePHI(i1_, 2);
      phi->addIncoming(llvm::ConstantInt::getBool(C, op == "||"), start);
      phi->addIncoming(b, rhs_bb);
      return phi;
    }
    if (op == "??") {
      llvm::Value* a = Emit(e->lhs.get());
      int at = p_.TypeOf(e->lhs.get());
      if (K(at) != TyKind::kOptional && K(at) != TyKind::kAny) return Coerce(a, at, t);
      auto* start = B.GetInsertBlock();
      llvm::Value* absent = Call(Rt::rc_is_null, {a});
      auto* present_bb = llvm::BasicBlock::Create(C, "coalesce.present", fn_);
      auto* dflt_bb = llvm::BasicBlock::Create(C, "coalesce.default", fn_);
      auto* end = llvm::BasicBlock::Create(C, "coalesce.end", fn_);
      (void)start;
      B.CreateCondBr(absent, dflt_bb, present_bb);
      B.SetInsertPoint(present_bb);
      llvm::Value* pv = Coerce(a, at, t);
      present_bb = B.GetInsertBlock();
      B.CreateBr(end);
      B.SetInsertPoint(dflt_bb);
      llvm::Value* dv = Coerce(Emit(e->rhs.get()), p_.TypeOf(e->rhs.get()), t);
      dflt_bb = B.GetInsertBlock();
      B.CreateBr(end);
      B.SetInsertPoint(end);
      auto* phi = B.CreatePHI(Native(t), 2);
      phi->addIncoming(pv, present_bb);
      phi->addIncoming(dv, dflt_bb);
      return phi;
    }
    int at = p_.TypeOf(e->lhs.get()), bt = p_.TypeOf(e->rhs.get());
    llvm::Value* a = Emit(e->lhs.get());
    llvm::Value* b = Emit(e->rhs.get());
    if (op == "in") {
      if (K(bt) == TyKind::kList) return Call(Rt::rc_list_contains, {b, Box(Coerce(a, at, T.Get(bt).elem), T.Get(bt).elem)});
      if (K(bt) == TyKind::kString) return Call(Rt::rc_str_contains, {b, a});
      // map (or any): key present
      llvm::Value* key = Call(Rt::rc_to_string, {ctx_, Box(a, at)});
      return B.CreateNot(Call(Rt::rc_is_null, {MapGet(b, key)}));
    }
    auto k = [&](int x) { return K(x); };
    bool af = k(at) == TyKind::kFloat, bf = k(bt) == TyKind::kFloat;
    bool numeric = (IsIntLike(at) || af) && (IsIntLike(bt) || bf) && k(at) != TyKind::kTimestamp;
    if (op == "==" || op == "!=") {
      llvm::Value* eq;
      if (k(at) == TyKind::kNull || k(bt) == TyKind::kNull) {
        llvm::Value* other = k(at) == TyKind::kNull ? b : a;
        int ot = k(at) == TyKind::kNull ? bt : at;
        eq = Native(ot) == ptr_ ? Call(Rt::rc_is_null, {other}) : llvm::ConstantInt::getFalse(C);
      } else if (IsIntLike(at) && IsIntLike(bt)) {
        eq = B.CreateICmpEQ(a, b);
      } else if ((af || IsIntLike(at)) && (bf || IsIntLike(bt)) && (af || bf)) {
        eq = B.CreateFCmpOEQ(af ? a : B.CreateSIToFP(a, f64_), bf ? b : B.CreateSIToFP(b, f64_));
      } else if (k(at) == TyKind::kBool && k(bt) == TyKind::kBool) {
        eq = B.CreateICmpEQ(a, b);
      } else {
        eq = Call(Rt::rc_value_eq, {Box(a, at), Box(b, bt)});
      }
      return op == "==" ? eq : B.CreateNot(eq);
    }
    if (op == "<" || op == "<=" || op == ">" || op == ">=") {
      if (IsIntLike(at) && IsIntLike(bt)) {
        if (op == "<") return B.CreateICmpSLT(a, b);
        if (op == "<=") return B.CreateICmpSLE(a, b);
        if (op == ">") return B.CreateICmpSGT(a, b);
        return B.CreateICmpSGE(a, b);
      }
      if (numeric) {
        llvm::Value* x = af ? a : B.CreateSIToFP(a, f64_);
        llvm::Value* y = bf ? b : B.CreateSIToFP(b, f64_);
        if (op == "<") return B.CreateFCmpOLT(x, y);
        if (op == "<=") return B.CreateFCmpOLE(x, y);
        if (op == ">") return B.CreateFCmpOGT(x, y);
        return B.CreateFCmpOGE(x, y);
      }
      llvm::Value* c = k(at) == TyKind::kString ? Call(Rt::rc_str_cmp, {a, b}) : Call(Rt::rc_value_cmp, {Box(a, at), Box(b, bt)});
      llvm::Value* zero = llvm::ConstantInt::get(i32_, 0);
      if (op == "<") return B.CreateICmpSLT(c, zero);
      if (op == "<=") return B.CreateICmpSLE(c, zero);
      if (op == ">") return B.CreateICmpSGT(c, zero);
      return B.CreateICmpSGE(c, zero);
    }
    // Arithmetic.
    if (k(t) == TyKind::kAny) {
      // Dynamic operands: numbers as floats, otherwise string concatenation.
      return Call(Rt::rc_str_concat, {ctx_, Call(Rt::rc_to_string, {ctx_, Box(a, at)}), Call(Rt::rc_to_string, {ctx_, Box(b, bt)})});
    }
    if (k(t) == TyKind::kString) return Call(Rt::rc_str_concat, {ctx_, a, b});
    if (k(t) == TyKind::kList) return Call(Rt::rc_list_concat, {ctx_, a, b});
    if (k(t) == TyKind::kFloat) {
      llvm::Value* x = af ? a : B.CreateSIToFP(a, f64_);
      llvm::Value* y = bf ? b : B.CreateSIToFP(b, f64_);
      if (op == "+") return B.CreateFAdd(x, y);
      if (op == "-") return B.CreateFSub(x, y);
      if (op == "*") return B.CreateFMul(x, y);
      return B.CreateFDiv(x, y);
    }
    // Integer-like: int, duration (ns), timestamp (s), quantity (milli).
    if (k(at) == TyKind::kTimestamp && k(bt) == TyKind::kDuration) {
      llvm::Value* secs = B.CreateSDiv(b, I64(1000000000));
      return op == "+" ? B.CreateAdd(a, secs) : B.CreateSub(a, secs);
    }
    if (k(at) == TyKind::kTimestamp && k(bt) == TyKind::kTimestamp) return B.CreateMul(B.CreateSub(a, b), I64(1000000000));
    if (op == "+") return Checked(llvm::Intrinsic::sadd_with_overflow, a, b);
    if (op == "-") return Checked(llvm::Intrinsic::ssub_with_overflow, a, b);
    if (op == "*") return Checked(llvm::Intrinsic::smul_with_overflow, a, b);
    // / and %: trap on zero and on INT64_MIN / -1.
    llvm::Value* zero = B.CreateICmpEQ(b, I64(0));
    Trap(zero, 1);
    llvm::Value* overflow = B.CreateAnd(B.CreateICmpEQ(a, I64(INT64_MIN)), B.CreateICmpEQ(b, I64(-1)));
    Trap(overflow, 2);
    return op == "/" ? B.CreateSDiv(a, b) : B.CreateSRem(a, b);
  }

  llvm::Value* MapGet(llvm::Value* map, llvm::Value* key_string) {
    return Call(Rt::rc_get_key, {map, key_string});
  }

  void Trap(llvm::Value* cond, int code) {
    auto* trap_bb = llvm::BasicBlock::Create(C, "trap", fn_);
    auto* ok_bb = llvm::BasicBlock::Create(C, "ok", fn_);
    B.CreateCondBr(cond, trap_bb, ok_bb, llvm::MDBuilder(C).createBranchWeights(1, 1000));
    B.SetInsertPoint(trap_bb);
    Call(Rt::rc_trap_code, {ctx_, llvm::ConstantInt::get(i32_, code)});
    B.CreateUnreachable();
    B.SetInsertPoint(ok_bb);
  }
  llvm::Value* Checked(llvm::Intrinsic::ID id, llvm::Value* a, llvm::Value* b) {
    llvm::Function* f = llvm::Intrinsic::getDeclaration(&M, id, {i64_});
    llvm::Value* r = B.CreateCall(f, {a, b});
    Trap(B.CreateExtractValue(r, 1), 2);
    return B.CreateExtractValue(r, 0);
  }

  // ---------- calls ----------
  std::vector<const Expr*> Positional(const Expr* e) {
    std::vector<const Expr*> out;
    for (auto& a : e->args) if (a.name.empty()) out.push_back(a.value.get());
    return out;
  }
  const Expr* Named(const Expr* e, const std::string& name) {
    for (auto& a : e->args) if (a.name == name) return a.value.get();
    return nullptr;
  }
  llvm::Value* Arg(const Expr* a, int to) { return Coerce(Emit(a), p_.TypeOf(a), to); }

  llvm::Value* EmitCall(const Expr* e) {
    const Expr* callee = e->lhs.get();
    const Resolution* r = p_.Resolve(callee);
    int t = p_.TypeOf(e);
    if (!r) return Null();
    if (r->kind == Resolution::Kind::kMethod) return EmitMethod(e);
    if (r->kind == Resolution::Kind::kFunction) {
      const FunctionInfo& f = p_.functions.at(r->name);
      std::vector<llvm::Value*> args{ctx_};
      auto pos = Positional(e);
      for (size_t i = 0; i < f.params.size() && i < pos.size(); ++i) args.push_back(Arg(pos[i], f.params[i]));
      llvm::Value* v = B.CreateCall(fns_.at(r->name), args);
      return f.result == T.void_ ? Null() : v;
    }
    const std::string& n = r->name;
    auto pos = Positional(e);
    auto arg_t = [&](size_t i) { return p_.TypeOf(pos[i]); };
    if (n == "len") {
      llvm::Value* v = Emit(pos[0]);
      switch (K(arg_t(0))) {
        case TyKind::kList: return Call(Rt::rc_list_len, {v});
        case TyKind::kMap: return Call(Rt::rc_map_len, {v});
        case TyKind::kString: return Call(Rt::rc_str_len, {v});
        default: return Call(Rt::rc_len_any, {v});
      }
    }
    if (n == "str") return ToText(Emit(pos[0]), arg_t(0));
    if (n == "int") {
      llvm::Value* v = Emit(pos[0]);
      switch (K(arg_t(0))) {
        case TyKind::kInt: return v;
        case TyKind::kFloat: return B.CreateFPToSI(v, i64_);
        case TyKind::kDuration: return B.CreateSDiv(v, I64(1000000000));
        case TyKind::kQuantity: return B.CreateSDiv(v, I64(1000));
        default: return Call(Rt::rc_parse_int, {ctx_, v});
      }
    }
    if (n == "float") {
      llvm::Value* v = Emit(pos[0]);
      switch (K(arg_t(0))) {
        case TyKind::kInt: return B.CreateSIToFP(v, f64_);
        case TyKind::kFloat: return v;
        case TyKind::kDuration: return B.CreateFDiv(B.CreateSIToFP(v, f64_), llvm::ConstantFP::get(f64_, 1e9));
        case TyKind::kQuantity: return B.CreateFDiv(B.CreateSIToFP(v, f64_), llvm::ConstantFP::get(f64_, 1e3));
        default: return Call(Rt::rc_parse_float, {ctx_, v});
      }
    }
    if (n == "now") return Call(Rt::rc_now, {ctx_});
    if (n == "since") return B.CreateMul(B.CreateSub(Call(Rt::rc_now, {ctx_}), Emit(pos[0])), I64(1000000000));
    if (n == "humanDuration") return Call(Rt::rc_human_duration, {ctx_, Emit(pos[0])});
    if (n == "hash") return Call(Rt::rc_hash, {Box(Emit(pos[0]), arg_t(0))});
    if (n == "podTemplateHash") return Call(Rt::rc_pod_template_hash, {ctx_, Box(Emit(pos[0]), arg_t(0))});
    if (n == "labelsMatch") return Call(Rt::rc_labels_match, {ctx_, Emit(pos[0]), Emit(pos[1])});
    if (n == "selectorMatches") return Call(Rt::rc_selector_string_match, {ctx_, Emit(pos[0]), Emit(pos[1])});
    if (n == "selectorString") return Call(Rt::rc_selector_to_string, {ctx_, Emit(pos[0])});
    if (n == "quantity") return Call(Rt::rc_as_quantity, {ctx_, Emit(pos[0])});
    if (n == "milli") return Emit(pos[0]);
    if (n == "abs") {
      llvm::Value* v = Emit(pos[0]);
      if (K(t) == TyKind::kFloat) return B.CreateSelect(B.CreateFCmpOLT(v, llvm::ConstantFP::get(f64_, 0.0)), B.CreateFNeg(v), v);
      return B.CreateSelect(B.CreateICmpSLT(v, I64(0)), B.CreateNeg(v), v);
    }
    if (n == "min" || n == "max") {
      llvm::Value* a = Arg(pos[0], t);
      llvm::Value* b = Arg(pos[1], t);
      llvm::Value* less;
      if (K(t) == TyKind::kFloat) less = B.CreateFCmpOLT(a, b);
      else if (IsIntLike(t)) less = B.CreateICmpSLT(a, b);
      else less = B.CreateICmpSLT(Call(Rt::rc_value_cmp, {a, b}), llvm::ConstantInt::get(i32_, 0));
      return n == "min" ? B.CreateSelect(less, a, b) : B.CreateSelect(less, b, a);
    }
    if (n == "range") {
      llvm::Value* count = Emit(pos[0]);
      llvm::Value* list = Call(Rt::rc_new_list, {ctx_});
      Loop0(count, [&](llvm::Value* i) { Call(Rt::rc_list_push, {ctx_, list, Call(Rt::rc_new_int, {ctx_, i})}); });
      return list;
    }
    if (n == "get" || n == "list") {
      int tt = p_.TypeOf(pos[0]);
      const StructInfo* st = T.Get(T.Get(tt).elem).st;
      auto [api_version, kind] = ApiVersionKind(st);
      auto opt = [&](const char* name) -> llvm::Value* {
        const Expr* a = Named(e, name);
        return a ? Emit(a) : Null();
      };
      if (n == "get") {
        return Call(Rt::rc_effect_get, {ctx_, Str(api_version), Str(kind), Emit(pos[1]), opt("namespace")});
      }
      return Call(Rt::rc_effect_list, {ctx_, Str(api_version), Str(kind), opt("namespace"), opt("selector"), opt("labels"), opt("owner")});
    }
    static const std::map<std::string, int> writes = {{"create", 1}, {"update", 2}, {"updateStatus", 3}, {"delete", 4}, {"patch", 5}};
    if (auto it = writes.find(n); it != writes.end()) {
      llvm::Value* obj = Emit(pos[0]);
      llvm::Value* patch = it->second == 5 ? Box(Emit(pos[1]), arg_t(1)) : Null();
      Call(Rt::rc_effect_write, {ctx_, llvm::ConstantInt::get(i32_, it->second), obj, patch});
      if (it->second == 4) return Null();
      return Call(Rt::rc_effect_written, {ctx_});  // the stored object (null when the host does not say)
    }
    if (n == "emit") {
      Call(Rt::rc_effect_emit, {ctx_, Emit(pos[0]), Emit(pos[1]), Emit(pos[2]), Emit(pos[3])});
      return Null();
    }
    return Null();
  }

  std::pair<std::string, std::string> ApiVersionKind(const StructInfo* st) {
    std::string group, version = "v1";
    if (st && st->resource) {
      for (auto& s : st->resource->settings) {
        if (s.name == "group") group = s.value->text;
        if (s.name == "version") version = s.value->text;
      }
    }
    return {group.empty() ? version : group + "/" + version, st ? st->name : ""};
  }

  // for (i = 0; i < n; ++i) body(i)
  template <typename F>
  void Loop0(llvm::Value* n, F body) {
    LoopUntil(n, [&](llvm::Value* i) -> llvm::Value* {
      body(i);
      return llvm::ConstantInt::getFalse(C);  // never stops early (folded away at O2)
    });
  }
  // Loop with an early exit: body returns a flag; when true the loop ends.
  template <typename F>
  void LoopUntil(llvm::Value* n, F body) {
    auto* idx = Alloca(i64_, "k");
    B.CreateStore(I64(0), idx);
    auto* cond_bb = llvm::BasicBlock::Create(C, "loop.cond", fn_);
    auto* body_bb = llvm::BasicBlock::Create(C, "loop.body", fn_);
    auto* step_bb = llvm::BasicBlock::Create(C, "loop.step", fn_);
    auto* end_bb = llvm::BasicBlock::Create(C, "loop.end", fn_);
    B.CreateBr(cond_bb);
    B.SetInsertPoint(cond_bb);
    llvm::Value* i = B.CreateLoad(i64_, idx);
    B.CreateCondBr(B.CreateICmpSLT(i, n), body_bb, end_bb);
    B.SetInsertPoint(body_bb);
    llvm::Value* stop = body(i);
    B.CreateCondBr(stop, end_bb, step_bb);
    B.SetInsertPoint(step_bb);
    B.CreateStore(B.CreateAdd(B.CreateLoad(i64_, idx), I64(1)), idx);
    B.CreateBr(cond_bb);
    B.SetInsertPoint(end_bb);
  }

  // Applies a lambda (or a function name) to native arguments.
  llvm::Value* Apply(const Expr* fn, std::vector<std::pair<llvm::Value*, int>> args) {
    if (fn->kind == ExprKind::kLambda) {
      scopes_.emplace_back();
      for (size_t i = 0; i < fn->params.size() && i < args.size(); ++i) Bind(fn->params[i], args[i].first, args[i].second);
      llvm::Value* v = Emit(fn->body.get());
      scopes_.pop_back();
      return v;
    }
    const Resolution* r = p_.Resolve(fn);
    const FunctionInfo& f = p_.functions.at(r->name);
    std::vector<llvm::Value*> call{ctx_};
    for (size_t i = 0; i < args.size(); ++i) call.push_back(Coerce(args[i].first, args[i].second, f.params[i]));
    return B.CreateCall(fns_.at(r->name), call);
  }
  int ResultOf(const Expr* fn) {
    if (fn->kind == ExprKind::kLambda) return p_.TypeOf(fn->body.get());
    return p_.functions.at(p_.Resolve(fn)->name).result;
  }

  llvm::Value* EmitMethod(const Expr* e) {
    const Expr* callee = e->lhs.get();
    const std::string& m = callee->text;
    int rt = p_.TypeOf(callee->lhs.get());
    int t = p_.TypeOf(e);
    static const std::set<std::string> kFusable = {"map", "count", "len", "any", "first", "sum"};
    const Expr* inner = callee->lhs.get();
    const Expr* fused_pred = nullptr;
    if (K(rt) == TyKind::kList && kFusable.count(m) && inner->kind == ExprKind::kCall && inner->lhs->kind == ExprKind::kField) {
      const Resolution* ir = p_.Resolve(inner->lhs.get());
      if (ir && ir->kind == Resolution::Kind::kMethod && ir->name == "filter" && inner->args.size() == 1) {
        fused_pred = inner->args[0].value.get();
        inner = inner->lhs->lhs.get();  // the list being filtered
      }
    }
    llvm::Value* recv = Emit(inner);
    filter_pred_ = fused_pred;
    auto pos = Positional(e);
    if (K(rt) == TyKind::kString || K(rt) == TyKind::kEnum) {
      if (m == "len") return Call(Rt::rc_str_len, {recv});
      if (m == "contains") return Call(Rt::rc_str_contains, {recv, Emit(pos[0])});
      if (m == "startsWith") return Call(Rt::rc_str_starts_with, {recv, Emit(pos[0])});
      if (m == "endsWith") return Call(Rt::rc_str_ends_with, {recv, Emit(pos[0])});
      if (m == "lower") return Call(Rt::rc_str_lower, {ctx_, recv});
      if (m == "upper") return Call(Rt::rc_str_upper, {ctx_, recv});
      if (m == "trim") return Call(Rt::rc_str_trim, {ctx_, recv});
      if (m == "split") return Call(Rt::rc_str_split, {ctx_, recv, Emit(pos[0])});
      if (m == "replace") return Call(Rt::rc_str_replace, {ctx_, recv, Emit(pos[0]), Emit(pos[1])});
      return Null();
    }
    if (K(rt) == TyKind::kMap) {
      if (m == "len") return Call(Rt::rc_map_len, {recv});
      if (m == "has") return B.CreateNot(Call(Rt::rc_is_null, {MapGet(recv, Emit(pos[0]))}));
      if (m == "get") return MapGet(recv, Emit(pos[0]));
      llvm::Value* out_list = Call(Rt::rc_new_list, {ctx_});
      llvm::Value* n = Call(Rt::rc_map_len, {recv});
      Loop0(n, [&](llvm::Value* i) {
        llvm::Value* v = m == "keys" ? Call(Rt::rc_map_key_at, {ctx_, recv, i}) : Call(Rt::rc_map_value_at, {recv, i});
        Call(Rt::rc_list_push_ref, {ctx_, out_list, v});  // entries of a live map: no copy
      });
      return out_list;
    }
    // Lists.
    int el = K(rt) == TyKind::kList ? T.Get(rt).elem : T.any;
    llvm::Value* n = Call(Rt::rc_list_len, {recv});
    auto item_json = [&](llvm::Value* i) { return Call(Rt::rc_list_at, {ctx_, recv, i}); };
    if (filter_pred_) {
      // xs.filter(p).m(...) fused into one loop over xs guarded by p: no intermediate list.
      const Expr* pred = filter_pred_;
      filter_pred_ = nullptr;
      return EmitFusedAfterFilter(e, m, recv, el, pred, t);
    }
    if (m == "len" || (m == "count" && pos.empty())) return n;
    if (m == "reverse") return Call(Rt::rc_list_reverse, {ctx_, recv});
    if (m == "take") return Call(Rt::rc_list_take, {ctx_, recv, Emit(pos[0])});
    if (m == "contains") return Call(Rt::rc_list_contains, {recv, Box(Arg(pos[0], el), el)});
    if (m == "join") return Call(Rt::rc_list_join, {ctx_, recv, Emit(pos[0])});
    if (m == "filter" || m == "map") {
      llvm::Value* out_list = Call(Rt::rc_new_list, {ctx_});
      int rtype = ResultOf(pos[0]);
      Loop0(n, [&](llvm::Value* i) {
        llvm::Value* j = item_json(i);
        llvm::Value* v = Apply(pos[0], {{Unbox(j, el), el}});
        if (m == "map") {
          int dst = K(t) == TyKind::kList ? T.Get(t).elem : rtype;
          Call(Rt::rc_list_push, {ctx_, out_list, Box(Coerce(v, rtype, dst), dst)});
        } else {
          auto* yes = llvm::BasicBlock::Create(C, "filter.keep", fn_);
          auto* next = llvm::BasicBlock::Create(C, "filter.next", fn_);
          B.CreateCondBr(Coerce(v, rtype, T.bool_), yes, next);
          B.SetInsertPoint(yes);
          Call(Rt::rc_list_push_ref, {ctx_, out_list, j});  // elements of a live list: no copy
          B.CreateBr(next);
          B.SetInsertPoint(next);
        }
      });
      return out_list;
    }
    if (m == "count") {
      auto* acc = Alloca(i64_, "count");
      B.CreateStore(I64(0), acc);
      int rtype = ResultOf(pos[0]);
      Loop0(n, [&](llvm::Value* i) {
        llvm::Value* v = Coerce(Apply(pos[0], {{Unbox(item_json(i), el), el}}), rtype, T.bool_);
        B.CreateStore(B.CreateAdd(B.CreateLoad(i64_, acc), B.CreateZExt(v, i64_)), acc);
      });
      return B.CreateLoad(i64_, acc);
    }
    if (m == "any" || m == "all" || m == "first") {
      bool is_first = m == "first";
      auto* found = Alloca(is_first ? ptr_ : i1_, "found");
      B.CreateStore(is_first ? Null() : static_cast<llvm::Value*>(llvm::ConstantInt::getBool(C, m == "all")), found);
      int rtype = pos.empty() ? T.bool_ : ResultOf(pos[0]);
      LoopUntil(n, [&](llvm::Value* i) -> llvm::Value* {
        llvm::Value* j = item_json(i);
        llvm::Value* hit = pos.empty() ? llvm::ConstantInt::getTrue(C) : Coerce(Apply(pos[0], {{Unbox(j, el), el}}), rtype, T.bool_);
        if (m == "all") hit = B.CreateNot(hit);
        auto* yes = llvm::BasicBlock::Create(C, "hit", fn_);
        auto* after = llvm::BasicBlock::Create(C, "after", fn_);
        B.CreateCondBr(hit, yes, after);
        B.SetInsertPoint(yes);
        B.CreateStore(is_first ? j : static_cast<llvm::Value*>(llvm::ConstantInt::getBool(C, m == "any")), found);
        B.CreateBr(after);
        B.SetInsertPoint(after);
        return hit;
      });
      return B.CreateLoad(is_first ? ptr_ : i1_, found);
    }
    if (m == "sum") {
      int st = t;
      auto* acc = Alloca(Native(st), "sum");
      B.CreateStore(K(st) == TyKind::kFloat ? static_cast<llvm::Value*>(llvm::ConstantFP::get(f64_, 0.0)) : I64(0), acc);
      Loop0(n, [&](llvm::Value* i) {
        llvm::Value* item = Unbox(item_json(i), el);
        llvm::Value* v = pos.empty() ? item : Coerce(Apply(pos[0], {{item, el}}), ResultOf(pos[0]), st);
        if (pos.empty()) v = Coerce(v, el, st);
        llvm::Value* cur = B.CreateLoad(Native(st), acc);
        B.CreateStore(K(st) == TyKind::kFloat ? B.CreateFAdd(cur, v) : B.CreateAdd(cur, v), acc);
      });
      return B.CreateLoad(Native(st), acc);
    }
    if (m == "min" || m == "max" || m == "minBy" || m == "maxBy") {
      bool by = m == "minBy" || m == "maxBy";
      bool want_min = m == "min" || m == "minBy";
      int kt = by ? ResultOf(pos[0]) : el;
      auto* best_key = Alloca(Native(kt), "best");
      auto* best_item = Alloca(ptr_, "bestItem");
      auto* have = Alloca(i1_, "have");
      B.CreateStore(llvm::Constant::getNullValue(Native(kt)), best_key);
      B.CreateStore(Null(), best_item);
      B.CreateStore(llvm::ConstantInt::getFalse(C), have);
      Loop0(n, [&](llvm::Value* i) {
        llvm::Value* j = item_json(i);
        llvm::Value* item = Unbox(j, el);
        llvm::Value* key = by ? Apply(pos[0], {{item, el}}) : item;
        llvm::Value* cur = B.CreateLoad(Native(kt), best_key);
        llvm::Value* better;
        if (K(kt) == TyKind::kFloat) better = want_min ? B.CreateFCmpOLT(key, cur) : B.CreateFCmpOGT(key, cur);
        else if (IsIntLike(kt)) better = want_min ? B.CreateICmpSLT(key, cur) : B.CreateICmpSGT(key, cur);
        else {
          llvm::Value* c = Call(Rt::rc_value_cmp, {Box(key, kt), Box(cur, kt)});
          better = want_min ? B.CreateICmpSLT(c, llvm::ConstantInt::get(i32_, 0)) : B.CreateICmpSGT(c, llvm::ConstantInt::get(i32_, 0));
        }
        llvm::Value* take = B.CreateOr(B.CreateNot(B.CreateLoad(i1_, have)), better);
        B.CreateStore(B.CreateSelect(take, key, cur), best_key);
        B.CreateStore(B.CreateSelect(take, j, B.CreateLoad(ptr_, best_item)), best_item);
        B.CreateStore(llvm::ConstantInt::getTrue(C), have);
      });
      if (by) return B.CreateLoad(ptr_, best_item);
      return B.CreateLoad(Native(kt), best_key);
    }
    if (m == "sortBy") {
      int kt = ResultOf(pos[0]);
      llvm::Value* keys = Call(Rt::rc_new_list, {ctx_});
      Loop0(n, [&](llvm::Value* i) {
        llvm::Value* key = Apply(pos[0], {{Unbox(item_json(i), el), el}});
        Call(Rt::rc_list_push, {ctx_, keys, Box(key, kt)});
      });
      return Call(Rt::rc_list_sort_by_keys, {ctx_, recv, keys});
    }
    return Null();
  }

  // Runs body(j, item) for each element j (JSON) / item (native) of `recv` accepted by `pred`.
  template <typename F>
  void ForEachAccepted(llvm::Value* recv, int el, const Expr* pred, F body) {
    llvm::Value* n = Call(Rt::rc_list_len, {recv});
    int pt = ResultOf(pred);
    Loop0(n, [&](llvm::Value* i) {
      llvm::Value* j = Call(Rt::rc_list_at, {ctx_, recv, i});
      llvm::Value* item = Unbox(j, el);
      llvm::Value* ok = Coerce(Apply(pred, {{item, el}}), pt, T.bool_);
      auto* yes = llvm::BasicBlock::Create(C, "fused.keep", fn_);
      auto* next = llvm::BasicBlock::Create(C, "fused.next", fn_);
      B.CreateCondBr(ok, yes, next);
      B.SetInsertPoint(yes);
      body(j, item);
      B.CreateBr(next);
      B.SetInsertPoint(next);
    });
  }

  llvm::Value* EmitFusedAfterFilter(const Expr* e, const std::string& m, llvm::Value* recv, int el,
                                    const Expr* pred, int t) {
    auto pos = Positional(e);
    if (m == "map") {
      llvm::Value* out_list = Call(Rt::rc_new_list, {ctx_});
      int rtype = ResultOf(pos[0]);
      int dst = K(t) == TyKind::kList ? T.Get(t).elem : rtype;
      ForEachAccepted(recv, el, pred, [&](llvm::Value*, llvm::Value* item) {
        llvm::Value* v = Apply(pos[0], {{item, el}});
        Call(Rt::rc_list_push, {ctx_, out_list, Box(Coerce(v, rtype, dst), dst)});
      });
      return out_list;
    }
    if (m == "count" || m == "len") {
      auto* acc = Alloca(i64_, "count");
      B.CreateStore(I64(0), acc);
      int rtype = pos.empty() ? T.bool_ : ResultOf(pos[0]);
      ForEachAccepted(recv, el, pred, [&](llvm::Value*, llvm::Value* item) {
        llvm::Value* inc = pos.empty() ? I64(1) : B.CreateZExt(Coerce(Apply(pos[0], {{item, el}}), rtype, T.bool_), i64_);
        B.CreateStore(B.CreateAdd(B.CreateLoad(i64_, acc), inc), acc);
      });
      return B.CreateLoad(i64_, acc);
    }
    if (m == "sum") {
      auto* acc = Alloca(Native(t), "sum");
      B.CreateStore(K(t) == TyKind::kFloat ? static_cast<llvm::Value*>(llvm::ConstantFP::get(f64_, 0.0)) : I64(0), acc);
      ForEachAccepted(recv, el, pred, [&](llvm::Value*, llvm::Value* item) {
        llvm::Value* v = pos.empty() ? Coerce(item, el, t) : Coerce(Apply(pos[0], {{item, el}}), ResultOf(pos[0]), t);
        llvm::Value* cur = B.CreateLoad(Native(t), acc);
        B.CreateStore(K(t) == TyKind::kFloat ? B.CreateFAdd(cur, v) : B.CreateAdd(cur, v), acc);
      });
      return B.CreateLoad(Native(t), acc);
    }
    // any / first: the first accepted element (that also passes the method's own predicate).
    bool is_first = m == "first";
    auto* found = Alloca(is_first ? ptr_ : i1_, "found");
    B.CreateStore(is_first ? Null() : static_cast<llvm::Value*>(llvm::ConstantInt::getFalse(C)), found);
    int rtype = pos.empty() ? T.bool_ : ResultOf(pos[0]);
    ForEachAccepted(recv, el, pred, [&](llvm::Value* j, llvm::Value* item) {
      llvm::Value* hit = pos.empty() ? llvm::ConstantInt::getTrue(C) : Coerce(Apply(pos[0], {{item, el}}), rtype, T.bool_);
      llvm::Value* already = is_first ? B.CreateNot(Call(Rt::rc_is_null, {B.CreateLoad(ptr_, found)})) : B.CreateLoad(i1_, found);
      llvm::Value* take = B.CreateAnd(hit, B.CreateNot(already));
      if (is_first) B.CreateStore(B.CreateSelect(take, j, B.CreateLoad(ptr_, found)), found);
      else B.CreateStore(B.CreateOr(already, hit), found);
    });
    return B.CreateLoad(is_first ? ptr_ : i1_, found);
  }

  const Expr* filter_pred_ = nullptr;
  const Program& p_;
  const TypeTable& T;
  llvm::LLVMContext& C;
  llvm::Module& M;
  llvm::IRBuilder<> B;
  llvm::Type *ptr_, *i64_, *i32_, *i8_, *i1_, *f64_;
  llvm::Function* fn_ = nullptr;
  llvm::Value* ctx_ = nullptr;
  llvm::Value* self_ = nullptr;
  const StructInfo* self_struct_ = nullptr;
  int result_type_ = -1;
  std::map<std::string, llvm::Function*> fns_;
  std::map<std::string, llvm::Value*> cstrs_;
};

}  // namespace

GeneratedModule GenerateModule(const Program& program, const std::string& module_name,
                               const std::set<std::string>* only_files) {
  GeneratedModule out;
  out.context = std::make_unique<llvm::LLVMContext>();
  out.module = std::make_unique<llvm::Module>(module_name, *out.context);
  Gen gen(program, *out.context, *out.module);
  gen.out = &out;
  gen.only_files = only_files;
  gen.Run();
  return out;
}

}  // namespace rc::compiler
