// The JIT host: LLVM ORC LLJIT with one JITDylib per module version, so a module is replaced
// atomically while callers holding the old version finish on the old code.
//
//   auto jit = JitHost::Create();                                  // Result<unique_ptr<JitHost>>
//   auto v = (*jit)->AddModule("widgets", std::move(module), std::move(context));
//   auto f = (*jit)->Lookup("widgets", "rc_fn_double");            // FunctionHandle
//   rc_ctx ctx;
//   int64_t r = 0;
//   auto call = [&] { r = f->As<int64_t (*)(rc_ctx*, int64_t)>()(&ctx, 21); };
//   Status st = rc::rt::InvokeFn(&ctx, call);                       // traps -> !st.ok()
//
// Every module sees the rc_* runtime (absolute symbols from rc::rt::RuntimeSymbols) and a short
// allow-list of libc/libm functions LLVM itself emits calls to (memcpy, fmod, ...); nothing else
// of the process. Thread-safe.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "rc/base/status.h"

namespace llvm {
class Module;
class LLVMContext;
namespace orc {
class LLJIT;
class ThreadSafeModule;
class JITDylib;
class ResourceTracker;
}  // namespace orc
}  // namespace llvm

namespace rc::compiler {

struct GeneratedModule;

// One loaded version of a module. Its code (JITDylib) is freed when the host has replaced or
// removed it and no FunctionHandle refers to it any more.
class ModuleVersion {
 public:
  ~ModuleVersion();
  const std::string& name() const { return name_; }
  const std::string& content_hash() const { return hash_; }
  int64_t loaded_at_unix() const { return loaded_at_; }
  int64_t serial() const { return serial_; }  // 1, 2, ... per host, in load order
  // False when the object cache served the machine code (no optimisation, no codegen).
  bool compiled() const { return compiled_; }

 private:
  friend class JitHost;
  std::string name_;
  std::string hash_;
  int64_t loaded_at_ = 0;
  int64_t serial_ = 0;
  bool compiled_ = false;
  // Keeps the JIT (and its execution session) alive while this version's code may run: compiled
  // callables can outlive the JitHost (e.g. in the API server's registry during shutdown).
  std::shared_ptr<llvm::orc::LLJIT> jit_;
  llvm::orc::JITDylib* dylib_ = nullptr;
};

// A function address plus the module version that owns its code: the code stays loaded while
// any copy of the handle lives, even across ReplaceModule / RemoveModule.
struct FunctionHandle {
  void* address = nullptr;
  std::shared_ptr<const ModuleVersion> version;
  template <typename F>
  F As() const { return reinterpret_cast<F>(address); }
};

class JitHost {
 public:
  struct Options {
    // Bound on the object cache (machine code by content hash); least recently used go first.
    size_t object_cache_bytes = size_t{256} << 20;
  };
  static Result<std::unique_ptr<JitHost>> Create();
  static Result<std::unique_ptr<JitHost>> Create(Options options);
  ~JitHost();

  // Verifies, optimises (O2), compiles and installs `module` as the first version of `name`.
  // AlreadyExists when `name` is loaded with different content; when it is loaded with the same
  // content hash nothing happens and the current version is returned. `content_hash` identifies
  // the source (rcc uses the program's source hash); empty: ContentHash(*module).
  Result<std::shared_ptr<const ModuleVersion>> AddModule(const std::string& name,
                                                         std::unique_ptr<llvm::Module> module,
                                                         std::unique_ptr<llvm::LLVMContext> context,
                                                         std::string content_hash = "");
  // Same, but installs over a loaded version (or adds): new lookups get the new code at once;
  // handles to the old version keep it alive until the last one is dropped.
  Result<std::shared_ptr<const ModuleVersion>> ReplaceModule(const std::string& name,
                                                             std::unique_ptr<llvm::Module> module,
                                                             std::unique_ptr<llvm::LLVMContext> context,
                                                             std::string content_hash = "");
  // Unloads `name` (NotFound if absent); outstanding handles keep their code.
  Status RemoveModule(const std::string& name);

  // ReplaceModule for codegen output; *compiled says whether machine code was generated (false
  // for an unchanged hash or an object-cache hit).
  Status AddOrReplace(const std::string& name, const std::string& content_hash,
                      GeneratedModule module, bool* compiled = nullptr);
  Status Remove(const std::string& name) { return RemoveModule(name); }

  // The address of `symbol` in the current version of module `name`.
  Result<FunctionHandle> Lookup(const std::string& name, const std::string& symbol);
  std::shared_ptr<const ModuleVersion> Current(const std::string& name) const;

  // Modules compiled to machine code (object-cache misses), and object-cache hits.
  int compilations() const;
  int cache_hits() const;

  // Shared with rcc: a content hash of a module's IR (hex xxHash64 of its text), the O2 pipeline
  // for the host CPU, IR text (rcc --emit=llvm prints IrText after Optimize), and .o emission for
  // the host triple (optimises first).
  static std::string ContentHash(const llvm::Module& module);
  static void Optimize(llvm::Module& module);
  static std::string IrText(const llvm::Module& module);
  static std::string OptimizedIrText(llvm::Module& module);  // Optimize, then IrText
  static Status EmitObjectFile(llvm::Module& module, const std::string& path);

 private:
  JitHost() = default;
  Result<std::shared_ptr<const ModuleVersion>> Install(const std::string& name,
                                                       std::unique_ptr<llvm::Module> module,
                                                       std::unique_ptr<llvm::LLVMContext> context,
                                                       std::string content_hash, bool replace);
  Result<std::shared_ptr<const ModuleVersion>> InstallModule(const std::string& name, llvm::orc::ThreadSafeModule tsm,
                                                             llvm::Module& module, std::string content_hash,
                                                             bool replace);
  class Cache;
  std::shared_ptr<Cache> cache_;  // the JIT's compiler holds a reference too
  std::shared_ptr<llvm::orc::LLJIT> jit_;
  llvm::orc::JITDylib* runtime_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ModuleVersion>> current_;
  int64_t next_version_ = 1;
};

}  // namespace rc::compiler
