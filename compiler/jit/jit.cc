#include "rc/compiler/jit.h"

#include <llvm/ExecutionEngine/ObjectCache.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Host.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Support/xxhash.h>
#include <llvm/Target/TargetMachine.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <list>
#include <set>
#include <unordered_map>

#include "rc/compiler/codegen.h"
#include "rc/stdlib/runtime.h"

namespace rc::compiler {

namespace {

std::string ErrorText(llvm::Error e) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << e;
  return os.str();
}

void InitLlvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

std::string HostFeatures() {
  llvm::StringMap<bool> features;
  std::string out;
  if (llvm::sys::getHostCPUFeatures(features)) {
    for (auto& f : features) {
      if (!out.empty()) out += ',';
      out += (f.second ? "+" : "-") + f.first().str();
    }
  }
  return out;
}

// A TargetMachine for the host, one per thread (TargetMachine caches subtargets unsynchronised).
llvm::TargetMachine* HostTargetMachine() {
  thread_local std::unique_ptr<llvm::TargetMachine> tm = []() -> std::unique_ptr<llvm::TargetMachine> {
    InitLlvm();
    auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
    if (!jtmb) {
      llvm::consumeError(jtmb.takeError());
      return nullptr;
    }
    jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Default);
    auto made = jtmb->createTargetMachine();
    if (!made) {
      llvm::consumeError(made.takeError());
      return nullptr;
    }
    return std::move(*made);
  }();
  return tm.get();
}

// What compiled code may call in the process besides the rc_* runtime: functions LLVM itself
// emits calls to (block copies, libm for frem and float intrinsics, stack protector).
bool AllowedProcessSymbol(llvm::StringRef name) {
  static const std::set<std::string, std::less<>> kAllowed = {
      "memcpy", "memmove", "memset", "memcmp", "bcmp", "strlen",
      "fmod", "fmodf", "pow", "powf", "exp", "exp2", "expf", "log", "log2", "log10", "logf",
      "floor", "floorf", "ceil", "ceilf", "round", "roundf", "trunc", "truncf", "rint", "nearbyint",
      "sqrt", "sqrtf", "fabs", "fmin", "fmax", "sin", "cos", "tan", "ldexp", "frexp",
      "__stack_chk_fail", "__stack_chk_guard",
  };
  return kAllowed.count(name) > 0;
}

// Errors ORC reports out of band (e.g. "Symbols not found: [ getpid ]" while linking), collected
// for the Install running on this thread so they reach its Status; elsewhere printed.
thread_local std::string* t_session_errors = nullptr;

void ReportSessionError(llvm::Error err) {
  std::string text = ErrorText(std::move(err));
  if (t_session_errors) {
    if (!t_session_errors->empty()) *t_session_errors += "; ";
    *t_session_errors += text;
  } else {
    fprintf(stderr, "rc jit: %s\n", text.c_str());
  }
}

}  // namespace

// Object files by module identifier (the content hash): a module re-added after removal, or the
// same content under another name, is not compiled again. Bounded LRU. Counts compilations.
class JitHost::Cache : public llvm::ObjectCache {
 public:
  explicit Cache(size_t max_bytes) : max_bytes_(max_bytes) {}

  void notifyObjectCompiled(const llvm::Module* m, llvm::MemoryBufferRef obj) override {
    compilations.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    const std::string key = m->getModuleIdentifier();
    Erase(key);
    if (obj.getBufferSize() > max_bytes_) return;
    lru_.push_front(key);
    entries_[key] = {llvm::MemoryBuffer::getMemBufferCopy(obj.getBuffer(), obj.getBufferIdentifier()), lru_.begin()};
    bytes_ += obj.getBufferSize();
    while (bytes_ > max_bytes_ && !lru_.empty()) Erase(lru_.back());
  }

  std::unique_ptr<llvm::MemoryBuffer> getObject(const llvm::Module* m) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(m->getModuleIdentifier());
    if (it == entries_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.lru);
    cache_hits.fetch_add(1);
    return llvm::MemoryBuffer::getMemBufferCopy(it->second.object->getBuffer(), it->second.object->getBufferIdentifier());
  }

  bool Has(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return entries_.count(key) > 0;
  }

  std::atomic<int> compilations{0};
  std::atomic<int> cache_hits{0};

 private:
  void Erase(const std::string& key) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return;
    bytes_ -= it->second.object->getBufferSize();
    lru_.erase(it->second.lru);
    entries_.erase(it);
  }
  struct Entry {
    std::unique_ptr<llvm::MemoryBuffer> object;
    std::list<std::string>::iterator lru;
  };
  const size_t max_bytes_;
  std::mutex mu_;
  std::list<std::string> lru_;  // most recently used first
  std::unordered_map<std::string, Entry> entries_;
  size_t bytes_ = 0;
};

ModuleVersion::~ModuleVersion() {
  // No handle refers to this version any more, so none of its code runs: drop the dylib and its
  // code. The session (jit_) goes after it.
  if (dylib_ && jit_) {
    if (auto err = jit_->getExecutionSession().removeJITDylib(*dylib_)) {
      fprintf(stderr, "rc jit: cannot unload %s: %s\n", name_.c_str(), ErrorText(std::move(err)).c_str());
    }
  }
}

JitHost::~JitHost() {
  std::lock_guard<std::mutex> lock(mu_);
  current_.clear();
}

int JitHost::compilations() const { return cache_->compilations.load(); }
int JitHost::cache_hits() const { return cache_->cache_hits.load(); }

Result<std::unique_ptr<JitHost>> JitHost::Create() { return Create(Options()); }

Result<std::unique_ptr<JitHost>> JitHost::Create(Options options) {
  InitLlvm();
  std::unique_ptr<JitHost> host(new JitHost());
  host->cache_ = std::make_shared<Cache>(options.object_cache_bytes);
  std::shared_ptr<Cache> cache = host->cache_;
  auto jit = llvm::orc::LLJITBuilder()
                 .setCompileFunctionCreator([cache](llvm::orc::JITTargetMachineBuilder jtmb)
                                                -> llvm::Expected<std::unique_ptr<llvm::orc::IRCompileLayer::IRCompiler>> {
                   jtmb.setCodeGenOptLevel(llvm::CodeGenOpt::Default);
                   auto tm = jtmb.createTargetMachine();
                   if (!tm) return tm.takeError();
                   // One compiler per JIT; ORC serialises calls into it per module, and the
                   // cache is thread-safe.
                   return std::make_unique<llvm::orc::TMOwningSimpleCompiler>(std::move(*tm), cache.get());
                 })
                 .create();
  if (!jit) return Status::Internal("cannot create the JIT: " + ErrorText(jit.takeError()));
  // The compile function (holding `cache`) lives in the LLJIT, which versions share; keep the
  // cache alive as long as the JIT by tying it to the JIT's lifetime through the lambda above.
  host->jit_ = std::move(*jit);
  auto& es = host->jit_->getExecutionSession();
  es.setErrorReporter(ReportSessionError);
  auto& rt = es.createBareJITDylib("rc_runtime");
  llvm::orc::SymbolMap symbols;
  for (const auto& [name, address] : rt::RuntimeSymbols()) {
    symbols[host->jit_->mangleAndIntern(name)] =
        llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(address),
                                 llvm::JITSymbolFlags::Exported | llvm::JITSymbolFlags::Callable);
  }
  if (auto err = rt.define(llvm::orc::absoluteSymbols(std::move(symbols)))) {
    return Status::Internal("cannot define runtime symbols: " + ErrorText(std::move(err)));
  }
  const char prefix = host->jit_->getDataLayout().getGlobalPrefix();
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
      prefix, [prefix](const llvm::orc::SymbolStringPtr& name) {
        llvm::StringRef n = *name;
        if (prefix && !n.empty() && n.front() == prefix) n = n.drop_front();
        return AllowedProcessSymbol(n);
      });
  if (!gen) return Status::Internal("cannot search the process: " + ErrorText(gen.takeError()));
  rt.addGenerator(std::move(*gen));
  host->runtime_ = &rt;
  return host;
}

std::string JitHost::ContentHash(const llvm::Module& module) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(llvm::xxHash64(IrText(module))));
  return buf;
}

void JitHost::Optimize(llvm::Module& module) {
  llvm::TargetMachine* tm = HostTargetMachine();
  if (tm && module.getDataLayout().isDefault()) {
    module.setDataLayout(tm->createDataLayout());
    module.setTargetTriple(tm->getTargetTriple().str());
  }
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  auto mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2);
  mpm.run(module, mam);
}

std::string JitHost::IrText(const llvm::Module& module) {
  std::string s;
  llvm::raw_string_ostream os(s);
  module.print(os, nullptr);
  return os.str();
}

std::string JitHost::OptimizedIrText(llvm::Module& module) {
  Optimize(module);
  return IrText(module);
}

Status JitHost::EmitObjectFile(llvm::Module& module, const std::string& path) {
  InitLlvm();
  std::string triple = llvm::sys::getDefaultTargetTriple();
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) return Status::Internal("no target for " + triple + ": " + error);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, llvm::sys::getHostCPUName(), HostFeatures(), options, llvm::Reloc::PIC_));
  if (!tm) return Status::Internal("cannot create a target machine for " + triple);
  module.setTargetTriple(triple);
  module.setDataLayout(tm->createDataLayout());
  Optimize(module);
  std::error_code ec;
  llvm::raw_fd_ostream out(path, ec, llvm::sys::fs::OF_None);
  if (ec) return Status::IOError("cannot write " + path + ": " + ec.message());
  llvm::legacy::PassManager pm;
  if (tm->addPassesToEmitFile(pm, out, nullptr, llvm::CGFT_ObjectFile)) {
    return Status::Internal("the target cannot emit object files");
  }
  pm.run(module);
  out.flush();
  if (out.has_error()) {
    out.clear_error();
    return Status::IOError("cannot write " + path);
  }
  return Status::Ok();
}

Result<std::shared_ptr<const ModuleVersion>> JitHost::AddModule(const std::string& name,
                                                                std::unique_ptr<llvm::Module> module,
                                                                std::unique_ptr<llvm::LLVMContext> context,
                                                                std::string content_hash) {
  return Install(name, std::move(module), std::move(context), std::move(content_hash), false);
}

Result<std::shared_ptr<const ModuleVersion>> JitHost::ReplaceModule(const std::string& name,
                                                                    std::unique_ptr<llvm::Module> module,
                                                                    std::unique_ptr<llvm::LLVMContext> context,
                                                                    std::string content_hash) {
  return Install(name, std::move(module), std::move(context), std::move(content_hash), true);
}

Status JitHost::AddOrReplace(const std::string& name, const std::string& content_hash,
                             GeneratedModule module, bool* compiled) {
  if (compiled) *compiled = false;
  std::shared_ptr<const ModuleVersion> before = Current(name);
  auto version = Install(name, std::move(module.module), std::move(module.context), content_hash, true);
  if (!version.ok()) return version.status();
  if (compiled) *compiled = *version != before && (*version)->compiled();
  return Status::Ok();
}

Result<std::shared_ptr<const ModuleVersion>> JitHost::Install(const std::string& name,
                                                              std::unique_ptr<llvm::Module> module,
                                                              std::unique_ptr<llvm::LLVMContext> context,
                                                              std::string content_hash, bool replace) {
  if (!module || !context) return Status::InvalidArgument("no module to load as " + name);
  // Owned together from here on: the module must die before its context on every path.
  llvm::orc::ThreadSafeModule tsm(std::move(module), std::move(context));
  llvm::Module* m = tsm.getModuleUnlocked();
  return InstallModule(name, std::move(tsm), *m, std::move(content_hash), replace);
}

Result<std::shared_ptr<const ModuleVersion>> JitHost::InstallModule(const std::string& name,
                                                                    llvm::orc::ThreadSafeModule tsm,
                                                                    llvm::Module& module_ref,
                                                                    std::string content_hash, bool replace) {
  llvm::Module* module = &module_ref;
  if (content_hash.empty()) content_hash = ContentHash(*module);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = current_.find(name);
    if (it != current_.end()) {
      if (it->second->hash_ == content_hash) return std::shared_ptr<const ModuleVersion>(it->second);
      if (!replace) return Status::AlreadyExists("module " + name + " is already loaded");
    }
  }
  std::string verify_errors;
  llvm::raw_string_ostream vs(verify_errors);
  if (llvm::verifyModule(*module, &vs)) return Status::Internal("generated IR is invalid: " + vs.str());
  std::string first_symbol;
  for (auto& f : *module) {
    if (!f.isDeclaration() && !f.hasLocalLinkage()) {
      first_symbol = f.getName().str();
      break;
    }
  }
  // The module identifier keys the object cache: the content hash, so equal content shares
  // machine code. A cached object needs no optimisation either.
  module->setModuleIdentifier(content_hash);
  module->setDataLayout(jit_->getDataLayout());
  module->setTargetTriple(jit_->getTargetTriple().str());
  if (!cache_->Has(content_hash)) Optimize(*module);

  auto version = std::make_shared<ModuleVersion>();
  version->name_ = name;
  version->hash_ = content_hash;
  version->jit_ = jit_;
  version->loaded_at_ = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  {
    std::lock_guard<std::mutex> lock(mu_);
    version->serial_ = next_version_++;
  }
  auto& es = jit_->getExecutionSession();
  auto dylib = es.createJITDylib(name + "#" + std::to_string(version->serial_));
  if (!dylib) return Status::Internal(ErrorText(dylib.takeError()));
  dylib->addToLinkOrder(*runtime_);
  version->dylib_ = &*dylib;  // from here on, ~ModuleVersion unloads it (also on errors below)
  int before = cache_->compilations.load();
  std::string session_errors;
  struct CollectErrors {
    explicit CollectErrors(std::string* into) { t_session_errors = into; }
    ~CollectErrors() { t_session_errors = nullptr; }
  } collect(&session_errors);
  auto with_session_errors = [&](std::string text) {
    return session_errors.empty() ? text : text + " (" + session_errors + ")";
  };
  if (auto err = jit_->addIRModule(*version->dylib_, std::move(tsm))) {
    return Status::Internal(with_session_errors("cannot add module " + name + ": " + ErrorText(std::move(err))));
  }
  // Materialise now, so compile and link errors (an unknown runtime function) show here, not at
  // the first call: looking up one symbol compiles the whole module.
  if (!first_symbol.empty()) {
    auto addr = jit_->lookup(*version->dylib_, first_symbol);
    if (!addr) {
      return Status::Internal(with_session_errors("cannot compile module " + name + ": " + ErrorText(addr.takeError())));
    }
  }
  version->compiled_ = cache_->compilations.load() > before;
  std::shared_ptr<ModuleVersion> replaced;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = current_[name];
    if (slot && !replace) return Status::AlreadyExists("module " + name + " is already loaded");
    replaced = std::move(slot);
    slot = version;
  }
  // `replaced` (if no handle holds it) unloads here, outside the lock.
  return std::shared_ptr<const ModuleVersion>(version);
}

Status JitHost::RemoveModule(const std::string& name) {
  std::shared_ptr<ModuleVersion> removed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = current_.find(name);
    if (it == current_.end()) return Status::NotFound("module " + name + " is not loaded");
    removed = std::move(it->second);
    current_.erase(it);
  }
  return Status::Ok();
}

std::shared_ptr<const ModuleVersion> JitHost::Current(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = current_.find(name);
  return it == current_.end() ? nullptr : it->second;
}

Result<FunctionHandle> JitHost::Lookup(const std::string& name, const std::string& symbol) {
  std::shared_ptr<ModuleVersion> version;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = current_.find(name);
    if (it == current_.end()) return Status::NotFound("module " + name + " is not loaded");
    version = it->second;
  }
  // Only this module's own definitions: the runtime is in its link order, but a runtime
  // function is not a symbol of the module.
  auto addr = jit_->getExecutionSession().lookup(
      llvm::orc::makeJITDylibSearchOrder(version->dylib_, llvm::orc::JITDylibLookupFlags::MatchAllSymbols),
      jit_->mangleAndIntern(symbol));
  if (!addr) return Status::NotFound("symbol " + symbol + " in " + name + ": " + ErrorText(addr.takeError()));
  FunctionHandle h;
  h.address = llvm::jitTargetAddressToPointer<void*>(addr->getAddress());
  h.version = std::move(version);
  return h;
}

}  // namespace rc::compiler
