#include "rc/compiler/jit.h"

#include <llvm/ExecutionEngine/ObjectCache.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
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
#include <llvm/Target/TargetMachine.h>

#include <chrono>

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
}  // namespace

// Object files by module identifier (the content hash): a module re-added after removal is not
// compiled again. Counts real compilations.
class JitHost::Cache : public llvm::ObjectCache {
 public:
  explicit Cache(std::atomic<int>& compilations) : compilations_(compilations) {}
  void notifyObjectCompiled(const llvm::Module* m, llvm::MemoryBufferRef obj) override {
    compilations_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    objects_[m->getModuleIdentifier()] = llvm::MemoryBuffer::getMemBufferCopy(obj.getBuffer(), obj.getBufferIdentifier());
  }
  std::unique_ptr<llvm::MemoryBuffer> getObject(const llvm::Module* m) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(m->getModuleIdentifier());
    if (it == objects_.end()) return nullptr;
    return llvm::MemoryBuffer::getMemBufferCopy(it->second->getBuffer(), it->second->getBufferIdentifier());
  }

 private:
  std::atomic<int>& compilations_;
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<llvm::MemoryBuffer>> objects_;
};

ModuleVersion::~ModuleVersion() {
  if (tracker_) {
    if (auto err = tracker_->remove()) llvm::consumeError(std::move(err));
    tracker_->Release();
  }
  // jit_ (a shared owner of the session) is released after the tracker is gone.
}

JitHost::~JitHost() {
  current_.clear();
}

// The object cache must outlive every compile, so the JIT keeps a reference to it too.

Result<std::unique_ptr<JitHost>> JitHost::Create() {
  InitLlvm();
  std::unique_ptr<JitHost> host(new JitHost());
  host->cache_ = std::make_unique<Cache>(host->compilations_);
  Cache* cache = host->cache_.get();
  auto jit = llvm::orc::LLJITBuilder()
                 .setCompileFunctionCreator([cache](llvm::orc::JITTargetMachineBuilder jtmb)
                                                -> llvm::Expected<std::unique_ptr<llvm::orc::IRCompileLayer::IRCompiler>> {
                   jtmb.setCodeGenOptLevel(llvm::CodeGenOpt::Default);
                   auto tm = jtmb.createTargetMachine();
                   if (!tm) return tm.takeError();
                   return std::make_unique<llvm::orc::TMOwningSimpleCompiler>(std::move(*tm), cache);
                 })
                 .create();
  if (!jit) return Status::Internal("cannot create the JIT: " + ErrorText(jit.takeError()));
  host->jit_ = std::move(*jit);
  auto& es = host->jit_->getExecutionSession();
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
  // libc (memcpy, memset ...) for what LLVM itself emits.
  auto gen = llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(host->jit_->getDataLayout().getGlobalPrefix());
  if (!gen) return Status::Internal("cannot search the process: " + ErrorText(gen.takeError()));
  rt.addGenerator(std::move(*gen));
  host->runtime_ = &rt;
  return host;
}

void JitHost::Optimize(llvm::Module& module) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb;
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

Status JitHost::EmitObjectFile(llvm::Module& module, const std::string& path) {
  InitLlvm();
  std::string triple = llvm::sys::getDefaultTargetTriple();
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) return Status::Internal("no target for " + triple + ": " + error);
  llvm::TargetOptions options;
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple, llvm::sys::getHostCPUName(), "", options, llvm::Reloc::PIC_));
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
  return Status::Ok();
}

Status JitHost::AddOrReplace(const std::string& name, const std::string& content_hash,
                             GeneratedModule module, bool* compiled) {
  if (compiled) *compiled = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = current_.find(name);
    if (it != current_.end() && it->second->hash_ == content_hash) return Status::Ok();
  }
  std::string verify_errors;
  llvm::raw_string_ostream vs(verify_errors);
  if (llvm::verifyModule(*module.module, &vs)) {
    return Status::Internal("generated IR is invalid: " + vs.str());
  }
  std::vector<std::string> generated_symbols;
  for (auto& f : *module.module) {
    if (!f.isDeclaration()) generated_symbols.push_back(f.getName().str());
  }
  // The module identifier keys the object cache: the content hash, so equal sources share code.
  module.module->setModuleIdentifier(content_hash);
  module.module->setDataLayout(jit_->getDataLayout());
  module.module->setTargetTriple(jit_->getTargetTriple().str());
  Optimize(*module.module);

  auto version = std::make_shared<ModuleVersion>();
  version->name_ = name;
  version->hash_ = content_hash;
  version->jit_ = jit_;
  version->loaded_at_ = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch()).count();
  auto& es = jit_->getExecutionSession();
  int64_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = next_version_++;
  }
  auto dylib = es.createJITDylib(name + "#" + std::to_string(n));
  if (!dylib) return Status::Internal(ErrorText(dylib.takeError()));
  dylib->addToLinkOrder(*runtime_);
  version->dylib_ = &*dylib;
  llvm::orc::ResourceTrackerSP tracker = dylib->createResourceTracker();
  tracker->Retain();
  version->tracker_ = tracker.get();
  int before = compilations_.load();
  if (auto err = jit_->addIRModule(tracker, llvm::orc::ThreadSafeModule(std::move(module.module), std::move(module.context)))) {
    return Status::Internal("cannot add module: " + ErrorText(std::move(err)));
  }
  // Materialise now, so compile errors and the compilation count show here, not at first call:
  // looking up any symbol compiles the whole module.
  for (auto& f : generated_symbols) {
    auto addr = jit_->lookup(*version->dylib_, f);
    if (!addr) return Status::Internal("cannot compile module " + name + ": " + ErrorText(addr.takeError()));
    break;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_[name] = version;
  }
  if (compiled) *compiled = compilations_.load() > before;
  return Status::Ok();
}

Status JitHost::Remove(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  if (current_.erase(name) == 0) return Status::NotFound("module " + name + " is not loaded");
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
  auto addr = jit_->lookup(*version->dylib_, symbol);
  if (!addr) return Status::NotFound("symbol " + symbol + " in " + name + ": " + ErrorText(addr.takeError()));
  FunctionHandle h;
  h.address = addr->toPtr<void*>();
  h.version = version;
  return h;
}

}  // namespace rc::compiler
