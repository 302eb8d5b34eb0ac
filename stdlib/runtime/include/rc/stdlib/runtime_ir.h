// LLVM-side view of the runtime: declares rc_* functions in an llvm::Module with the signatures of
// runtime_abi.def, so code generators never restate them. Header-only; include it only from code
// that links LLVM (rc_stdlib_runtime itself does not).
//
//   llvm::FunctionCallee f = rc::rt::GetRuntimeFn(module, rc::rt::RuntimeFn::rc_str_concat);
//   builder.CreateCall(f, {ctx, a, b});
//
// ABI mapping of the type codes: P ptr, I i64, D double, W i32, V void, B i8 with `zeroext` on
// parameters and results (C's uint8_t); callers turn i1 into i8 (zext) and back (icmp ne 0).
// Every runtime function is `nounwind` (traps longjmp, they do not unwind); the trap functions are
// also `noreturn` and `cold`.
#pragma once

#include <llvm/IR/Attributes.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/Module.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rc::rt {

// One enumerator per runtime function, named like it: RuntimeFn::rc_get, RuntimeFn::rc_trap, ...
enum class RuntimeFn {
#define RC_RT(name, result, params) name,
#include "rc/stdlib/runtime_abi.def"
#undef RC_RT
};

struct RuntimeFnInfo {
  const char* name;
  char result;         // type code
  const char* params;  // "(P, P, I)": type codes between punctuation
};

inline const RuntimeFnInfo* RuntimeFnTable(size_t* count) {
  static const RuntimeFnInfo kTable[] = {
#define RC_RT(name, result, params) {#name, #result[0], #params},
#include "rc/stdlib/runtime_abi.def"
#undef RC_RT
  };
  *count = sizeof(kTable) / sizeof(kTable[0]);
  return kTable;
}

inline const RuntimeFnInfo& GetRuntimeFnInfo(RuntimeFn fn) {
  size_t n = 0;
  return RuntimeFnTable(&n)[static_cast<size_t>(fn)];
}

// Type codes of the parameters, in order ("PPI" for "(P, P, I)").
inline std::string RuntimeFnParamCodes(RuntimeFn fn) {
  std::string out;
  for (const char* c = GetRuntimeFnInfo(fn).params; *c; ++c) {
    if (*c == 'P' || *c == 'I' || *c == 'D' || *c == 'B' || *c == 'W') out += *c;
  }
  return out;
}

inline llvm::Type* RuntimeTypeOf(llvm::LLVMContext& c, char code) {
  switch (code) {
    case 'P': return llvm::PointerType::getUnqual(c);
    case 'I': return llvm::Type::getInt64Ty(c);
    case 'D': return llvm::Type::getDoubleTy(c);
    case 'B': return llvm::Type::getInt8Ty(c);
    case 'W': return llvm::Type::getInt32Ty(c);
    default: return llvm::Type::getVoidTy(c);
  }
}

inline llvm::FunctionType* RuntimeFnType(llvm::LLVMContext& c, RuntimeFn fn) {
  std::vector<llvm::Type*> params;
  for (char code : RuntimeFnParamCodes(fn)) params.push_back(RuntimeTypeOf(c, code));
  return llvm::FunctionType::get(RuntimeTypeOf(c, GetRuntimeFnInfo(fn).result), params, false);
}

inline bool RuntimeFnIsTrap(RuntimeFn fn) {
  return fn == RuntimeFn::rc_trap || fn == RuntimeFn::rc_trap_code || fn == RuntimeFn::rc_trap_with;
}

// Declares (once per module) and returns the runtime function with its attributes.
inline llvm::FunctionCallee GetRuntimeFn(llvm::Module& m, RuntimeFn fn) {
  const RuntimeFnInfo& info = GetRuntimeFnInfo(fn);
  llvm::FunctionType* type = RuntimeFnType(m.getContext(), fn);
  if (llvm::Function* existing = m.getFunction(info.name)) return {type, existing};
  llvm::Function* f = llvm::Function::Create(type, llvm::Function::ExternalLinkage, info.name, m);
  f->setDoesNotThrow();
  if (RuntimeFnIsTrap(fn)) {
    f->setDoesNotReturn();
    f->addFnAttr(llvm::Attribute::Cold);
  }
  if (info.result == 'B') f->addRetAttr(llvm::Attribute::ZExt);
  std::string codes = RuntimeFnParamCodes(fn);
  for (unsigned i = 0; i < codes.size(); ++i) {
    if (codes[i] == 'B') f->addParamAttr(i, llvm::Attribute::ZExt);
  }
  return {type, f};
}

}  // namespace rc::rt
