// The JIT host: LLVM ORC LLJIT with one JITDylib per module version, so a module is replaced
// atomically while callers holding the old version finish on the old code.
#pragma once

#include <atomic>
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
class JITDylib;
class ResourceTracker;
}  // namespace orc
}  // namespace llvm

namespace rc::compiler {

struct GeneratedModule;

// One loaded version of a module. Released (and its code freed) when the host has replaced it
// and no FunctionHandle refers to it any more.
class ModuleVersion {
 public:
  ~ModuleVersion();
  const std::string& name() const { return name_; }
  const std::string& content_hash() const { return hash_; }
  int64_t loaded_at_unix() const { return loaded_at_; }

 private:
  friend class JitHost;
  std::string name_;
  std::string hash_;
  int64_t loaded_at_ = 0;
  // Keeps the JIT (and its execution session) alive while this version's code may run: compiled
  // callables can outlive the JitHost (e.g. in the API server's registry during shutdown).
  std::shared_ptr<llvm::orc::LLJIT> jit_;
  llvm::orc::JITDylib* dylib_ = nullptr;
  llvm::orc::ResourceTracker* tracker_ = nullptr;  // one reference held (Retain/Release)
};

// A function address plus the module version that owns its code.
struct FunctionHandle {
  void* address = nullptr;
  std::shared_ptr<const ModuleVersion> version;
  template <typename F>
  F As() const { return reinterpret_cast<F>(address); }
};

class JitHost {
 public:
  static Result<std::unique_ptr<JitHost>> Create();
  ~JitHost();

  // Optimises (O2), compiles and installs `module` as the current version of `name`. When the
  // current version already has `content_hash`, nothing is compiled (returns false in *compiled).
  Status AddOrReplace(const std::string& name, const std::string& content_hash,
                      GeneratedModule module, bool* compiled = nullptr);
  Status Remove(const std::string& name);
  Result<FunctionHandle> Lookup(const std::string& name, const std::string& symbol);
  std::shared_ptr<const ModuleVersion> Current(const std::string& name) const;

  // Number of modules actually compiled to machine code (cache misses).
  int compilations() const { return compilations_.load(); }

  // Shared helpers for rcc: the O2 pipeline, IR text, object file emission for the host.
  static void Optimize(llvm::Module& module);
  static std::string IrText(const llvm::Module& module);
  static Status EmitObjectFile(llvm::Module& module, const std::string& path);

 private:
  JitHost() = default;
  class Cache;
  std::unique_ptr<Cache> cache_;  // declared first: the JIT's compiler refers to it
  std::shared_ptr<llvm::orc::LLJIT> jit_;
  llvm::orc::JITDylib* runtime_ = nullptr;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<ModuleVersion>> current_;
  std::atomic<int> compilations_{0};
  int64_t next_version_ = 1;
};

}  // namespace rc::compiler
