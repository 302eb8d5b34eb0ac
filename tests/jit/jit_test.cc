// compiler/jit: modules built by hand with IRBuilder, loaded, called, replaced, cached, emitted.
#include <gtest/gtest.h>

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "rc/compiler/jit.h"
#include "rc/stdlib/runtime.h"
#include "rc/stdlib/runtime_ir.h"

namespace rc::compiler {
namespace {

using rt::GetRuntimeFn;
using rt::RuntimeFn;

struct Built {
  std::unique_ptr<llvm::LLVMContext> context = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> module;
};

// A module with one function `name` of type `type`, whose body `body` emits.
using BodyFn = std::function<void(llvm::IRBuilder<>&, llvm::Function*, llvm::Module&)>;
Built MakeModule(const std::string& name, const std::function<llvm::FunctionType*(llvm::LLVMContext&)>& type,
                 const BodyFn& body) {
  Built b;
  b.module = std::make_unique<llvm::Module>("test", *b.context);
  llvm::Function* f = llvm::Function::Create(type(*b.context), llvm::Function::ExternalLinkage, name, *b.module);
  llvm::IRBuilder<> ir(llvm::BasicBlock::Create(*b.context, "entry", f));
  body(ir, f, *b.module);
  return b;
}

// i64 name(i64 a, i64 b) = a + b + k
Built AddModule(const std::string& name = "add", int64_t k = 0) {
  return MakeModule(
      name,
      [](llvm::LLVMContext& c) {
        auto* i64 = llvm::Type::getInt64Ty(c);
        return llvm::FunctionType::get(i64, {i64, i64}, false);
      },
      [k](llvm::IRBuilder<>& ir, llvm::Function* f, llvm::Module&) {
        llvm::Value* sum = ir.CreateAdd(f->getArg(0), f->getArg(1));
        ir.CreateRet(ir.CreateAdd(sum, ir.getInt64(k)));
      });
}

// i64 version(ptr callback) { callback(); return v; }
Built VersionModule(int64_t v) {
  return MakeModule(
      "version",
      [](llvm::LLVMContext& c) {
        return llvm::FunctionType::get(llvm::Type::getInt64Ty(c), {llvm::PointerType::getUnqual(c)}, false);
      },
      [v](llvm::IRBuilder<>& ir, llvm::Function* f, llvm::Module&) {
        auto* cb_type = llvm::FunctionType::get(ir.getVoidTy(), {}, false);
        ir.CreateCall(cb_type, f->getArg(0), {});
        ir.CreateRet(ir.getInt64(v));
      });
}

class JitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto host = JitHost::Create();
    ASSERT_TRUE(host.ok()) << host.status().message();
    jit_ = std::move(*host);
  }
  std::unique_ptr<JitHost> jit_;
};

TEST_F(JitTest, AddsTwoIntegers) {
  Built b = AddModule();
  auto v = jit_->AddModule("m", std::move(b.module), std::move(b.context));
  ASSERT_TRUE(v.ok()) << v.status().message();
  EXPECT_EQ((*v)->name(), "m");
  EXPECT_TRUE((*v)->compiled());
  auto f = jit_->Lookup("m", "add");
  ASSERT_TRUE(f.ok()) << f.status().message();
  EXPECT_EQ(f->As<int64_t (*)(int64_t, int64_t)>()(2, 3), 5);
  EXPECT_EQ(f->version, *v);
}

TEST_F(JitTest, CallsTheRuntimeToBuildObjectsAndMatchSelectors) {
  // ptr build(ptr ctx, ptr labels): {"name": "web", "greeting": "hello" + ", world",
  //                                    "match": selectorMatches("app=web,tier!=db", labels)}
  Built b = MakeModule(
      "build",
      [](llvm::LLVMContext& c) {
        auto* ptr = llvm::PointerType::getUnqual(c);
        return llvm::FunctionType::get(ptr, {ptr, ptr}, false);
      },
      [](llvm::IRBuilder<>& ir, llvm::Function* f, llvm::Module& m) {
        llvm::Value* ctx = f->getArg(0);
        auto str = [&](const std::string& s) {
          return ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_new_string),
                               {ctx, ir.CreateGlobalStringPtr(s), ir.getInt64(s.size())});
        };
        auto set = [&](llvm::Value* obj, const std::string& key, llvm::Value* value) {
          ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_object_set),
                        {ctx, obj, ir.CreateGlobalStringPtr(key), ir.getInt64(key.size()), value});
        };
        llvm::Value* obj = ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_new_object), {ctx});
        set(obj, "name", str("web"));
        set(obj, "greeting", ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_str_concat), {ctx, str("hello"), str(", world")}));
        llvm::Value* matched = ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_selector_string_match),
                                             {ctx, str("app=web,tier!=db"), f->getArg(1)});
        llvm::Value* as_i1 = ir.CreateICmpNE(matched, ir.getInt8(0));
        set(obj, "match", ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_new_bool), {ctx, ir.CreateZExt(as_i1, ir.getInt8Ty())}));
        ir.CreateRet(obj);
      });
  ASSERT_TRUE(jit_->AddModule("build", std::move(b.module), std::move(b.context)).ok());
  auto f = jit_->Lookup("build", "build");
  ASSERT_TRUE(f.ok()) << f.status().message();
  using Fn = rc_value* (*)(rc_ctx*, const rc_value*);
  for (const auto& [labels, expected] : std::vector<std::pair<std::string, std::string>>{
           {R"({"app":"web"})", "true"}, {R"({"app":"web","tier":"db"})", "false"}, {"{}", "false"}}) {
    rc_ctx ctx;
    rc_value* l = rt::ParseJson(&ctx, labels);
    rc_value* out = nullptr;
    auto call = [&] { out = f->As<Fn>()(&ctx, l); };
    ASSERT_TRUE(rt::InvokeFn(&ctx, call).ok());
    EXPECT_EQ(rt::ToJson(out), R"({"name":"web","greeting":"hello, world","match":)" + expected + "}");
  }
}

// i64 div(ptr ctx, i64 a, i64 b) { if (b == 0) rc_trap_code(ctx, 1); return a / b; }
Built DivModule() {
  return MakeModule(
      "div",
      [](llvm::LLVMContext& c) {
        auto* i64 = llvm::Type::getInt64Ty(c);
        return llvm::FunctionType::get(i64, {llvm::PointerType::getUnqual(c), i64, i64}, false);
      },
      [](llvm::IRBuilder<>& ir, llvm::Function* f, llvm::Module& m) {
        auto& c = m.getContext();
        auto* trap = llvm::BasicBlock::Create(c, "trap", f);
        auto* ok = llvm::BasicBlock::Create(c, "ok", f);
        ir.CreateCondBr(ir.CreateICmpEQ(f->getArg(2), ir.getInt64(0)), trap, ok);
        ir.SetInsertPoint(trap);
        ir.CreateCall(GetRuntimeFn(m, RuntimeFn::rc_trap_code), {f->getArg(0), ir.getInt32(RC_TRAP_DIV_ZERO)});
        ir.CreateUnreachable();
        ir.SetInsertPoint(ok);
        ir.CreateRet(ir.CreateSDiv(f->getArg(1), f->getArg(2)));
      });
}

TEST_F(JitTest, DivisionByZeroTrapsIntoAStatusAndTheProcessGoesOn) {
  Built b = DivModule();
  ASSERT_TRUE(jit_->AddModule("div", std::move(b.module), std::move(b.context)).ok());
  auto f = jit_->Lookup("div", "div");
  ASSERT_TRUE(f.ok());
  auto div = f->As<int64_t (*)(rc_ctx*, int64_t, int64_t)>();
  for (int i = 0; i < 100; ++i) {
    rc_ctx ctx;
    int64_t result = -1;
    int64_t denominator = i % 2;
    auto call = [&] { result = div(&ctx, 6, denominator); };
    Status st = rt::InvokeFn(&ctx, call);
    if (denominator == 0) {
      ASSERT_FALSE(st.ok());
      EXPECT_EQ(st.message(), "division by zero");
      EXPECT_EQ(ctx.trap_code, RC_TRAP_DIV_ZERO);
      EXPECT_EQ(result, -1);
    } else {
      ASSERT_TRUE(st.ok());
      EXPECT_EQ(result, 6);
    }
  }
}

// The callback blocks the old version's code until the test has replaced the module.
std::mutex g_mu;
std::condition_variable g_cv;
bool g_in_old_code = false;
bool g_release = false;
void BlockingCallback() {
  std::unique_lock<std::mutex> lock(g_mu);
  g_in_old_code = true;
  g_cv.notify_all();
  g_cv.wait(lock, [] { return g_release; });
}
void NoopCallback() {}

TEST_F(JitTest, ReplaceWhileTheOldVersionIsRunning) {
  g_in_old_code = false;
  g_release = false;
  Built v1 = VersionModule(1);
  ASSERT_TRUE(jit_->AddModule("mod", std::move(v1.module), std::move(v1.context)).ok());
  auto old_fn = jit_->Lookup("mod", "version");
  ASSERT_TRUE(old_fn.ok());
  std::weak_ptr<const ModuleVersion> old_version = old_fn->version;

  int64_t old_result = 0;
  std::thread caller([fn = std::move(*old_fn), &old_result]() mutable {
    old_result = fn.As<int64_t (*)(void (*)())>()(&BlockingCallback);
    fn = FunctionHandle();  // the last reference to version 1
  });
  {
    std::unique_lock<std::mutex> lock(g_mu);
    g_cv.wait(lock, [] { return g_in_old_code; });
  }
  // Version 1 is executing on `caller`. Replace it; new lookups get version 2 at once.
  Built v2 = VersionModule(2);
  auto replaced = jit_->ReplaceModule("mod", std::move(v2.module), std::move(v2.context));
  ASSERT_TRUE(replaced.ok()) << replaced.status().message();
  auto new_fn = jit_->Lookup("mod", "version");
  ASSERT_TRUE(new_fn.ok());
  EXPECT_EQ(new_fn->As<int64_t (*)(void (*)())>()(&NoopCallback), 2);
  EXPECT_FALSE(old_version.expired()) << "the running call holds version 1";
  EXPECT_EQ(jit_->Current("mod"), *replaced);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_release = true;
  }
  g_cv.notify_all();
  caller.join();
  EXPECT_EQ(old_result, 1) << "the old call finished on the old code";
  EXPECT_TRUE(old_version.expired()) << "version 1 is unloaded once no handle refers to it";
  EXPECT_EQ(new_fn->As<int64_t (*)(void (*)())>()(&NoopCallback), 2);
}

TEST_F(JitTest, RemoveKeepsOutstandingHandlesWorking) {
  Built b = AddModule();
  ASSERT_TRUE(jit_->AddModule("m", std::move(b.module), std::move(b.context)).ok());
  auto f = jit_->Lookup("m", "add");
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(jit_->RemoveModule("m").ok());
  EXPECT_EQ(jit_->RemoveModule("m").code(), StatusCode::kNotFound);
  EXPECT_EQ(jit_->Lookup("m", "add").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(jit_->Current("m"), nullptr);
  EXPECT_EQ(f->As<int64_t (*)(int64_t, int64_t)>()(40, 2), 42);
}

TEST_F(JitTest, HandlesOutliveTheHost) {
  Built b = AddModule();
  ASSERT_TRUE(jit_->AddModule("m", std::move(b.module), std::move(b.context)).ok());
  auto f = jit_->Lookup("m", "add");
  ASSERT_TRUE(f.ok());
  jit_.reset();
  EXPECT_EQ(f->As<int64_t (*)(int64_t, int64_t)>()(1, 1), 2);
}

TEST_F(JitTest, UnchangedContentIsNotRecompiled) {
  Built a = AddModule("add", 0);
  auto v1 = jit_->AddModule("m", std::move(a.module), std::move(a.context), "hash-a");
  ASSERT_TRUE(v1.ok());
  EXPECT_EQ(jit_->compilations(), 1);
  // Same hash under the same name: a no-op returning the loaded version (Add or Replace).
  Built again = AddModule("add", 0);
  auto v2 = jit_->AddModule("m", std::move(again.module), std::move(again.context), "hash-a");
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*v2, *v1);
  Built again2 = AddModule("add", 0);
  auto v3 = jit_->ReplaceModule("m", std::move(again2.module), std::move(again2.context), "hash-a");
  ASSERT_TRUE(v3.ok());
  EXPECT_EQ(*v3, *v1);
  EXPECT_EQ(jit_->compilations(), 1);
  // Other content under a loaded name: AddModule refuses, ReplaceModule compiles.
  Built other = AddModule("add", 100);
  EXPECT_EQ(jit_->AddModule("m", std::move(other.module), std::move(other.context), "hash-b").status().code(),
            StatusCode::kAlreadyExists);
  Built other2 = AddModule("add", 100);
  ASSERT_TRUE(jit_->ReplaceModule("m", std::move(other2.module), std::move(other2.context), "hash-b").ok());
  EXPECT_EQ(jit_->compilations(), 2);
  EXPECT_EQ(jit_->Lookup("m", "add")->As<int64_t (*)(int64_t, int64_t)>()(1, 2), 103);
  // Back to content a, after a removal, and under another name: the object cache serves it.
  ASSERT_TRUE(jit_->RemoveModule("m").ok());
  Built back = AddModule("add", 0);
  auto v4 = jit_->AddModule("m", std::move(back.module), std::move(back.context), "hash-a");
  ASSERT_TRUE(v4.ok());
  EXPECT_FALSE((*v4)->compiled());
  EXPECT_NE(*v4, *v1);
  Built twin = AddModule("add", 0);
  ASSERT_TRUE(jit_->AddModule("twin", std::move(twin.module), std::move(twin.context), "hash-a").ok());
  EXPECT_EQ(jit_->compilations(), 2);
  EXPECT_EQ(jit_->cache_hits(), 2);
  EXPECT_EQ(jit_->Lookup("m", "add")->As<int64_t (*)(int64_t, int64_t)>()(1, 2), 3);
  EXPECT_EQ(jit_->Lookup("twin", "add")->As<int64_t (*)(int64_t, int64_t)>()(1, 2), 3);
}

TEST_F(JitTest, ContentHashDefaultsToTheIr) {
  Built a = AddModule("add", 1), b = AddModule("add", 1), c = AddModule("add", 2);
  EXPECT_EQ(JitHost::ContentHash(*a.module), JitHost::ContentHash(*b.module));
  EXPECT_NE(JitHost::ContentHash(*a.module), JitHost::ContentHash(*c.module));
  ASSERT_TRUE(jit_->AddModule("m", std::move(a.module), std::move(a.context)).ok());
  ASSERT_TRUE(jit_->ReplaceModule("m", std::move(b.module), std::move(b.context)).ok());
  EXPECT_EQ(jit_->compilations(), 1);
  ASSERT_TRUE(jit_->ReplaceModule("m", std::move(c.module), std::move(c.context)).ok());
  EXPECT_EQ(jit_->compilations(), 2);
}

TEST_F(JitTest, GeneratedModulesSeeOnlyTheRuntimeAndLibcHelpers) {
  // A call into the process outside the allow-list does not link.
  Built b = MakeModule(
      "pid",
      [](llvm::LLVMContext& c) { return llvm::FunctionType::get(llvm::Type::getInt32Ty(c), {}, false); },
      [](llvm::IRBuilder<>& ir, llvm::Function*, llvm::Module& m) {
        auto getpid = m.getOrInsertFunction("getpid", llvm::FunctionType::get(ir.getInt32Ty(), {}, false));
        ir.CreateRet(ir.CreateCall(getpid, {}));
      });
  auto st = jit_->AddModule("pid", std::move(b.module), std::move(b.context));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().message().find("getpid"), std::string::npos) << st.status().message();
  EXPECT_EQ(jit_->Current("pid"), nullptr);
  // Nor does an rc_ function that is not in the runtime table.
  Built c = MakeModule(
      "f", [](llvm::LLVMContext& c) { return llvm::FunctionType::get(llvm::Type::getVoidTy(c), {}, false); },
      [](llvm::IRBuilder<>& ir, llvm::Function*, llvm::Module& m) {
        ir.CreateCall(m.getOrInsertFunction("rc_not_a_runtime_fn", llvm::FunctionType::get(ir.getVoidTy(), {}, false)));
        ir.CreateRetVoid();
      });
  EXPECT_FALSE(jit_->AddModule("f", std::move(c.module), std::move(c.context)).ok());
  // fmod (what frem lowers to) is allowed.
  Built d = MakeModule(
      "mod",
      [](llvm::LLVMContext& c) {
        auto* f64 = llvm::Type::getDoubleTy(c);
        return llvm::FunctionType::get(f64, {f64, f64}, false);
      },
      [](llvm::IRBuilder<>& ir, llvm::Function* f, llvm::Module&) { ir.CreateRet(ir.CreateFRem(f->getArg(0), f->getArg(1))); });
  ASSERT_TRUE(jit_->AddModule("fmod", std::move(d.module), std::move(d.context)).ok());
  EXPECT_DOUBLE_EQ(jit_->Lookup("fmod", "mod")->As<double (*)(double, double)>()(7.5, 2), 1.5);
}

TEST_F(JitTest, LookupErrors) {
  EXPECT_EQ(jit_->Lookup("nope", "add").status().code(), StatusCode::kNotFound);
  Built b = AddModule();
  ASSERT_TRUE(jit_->AddModule("m", std::move(b.module), std::move(b.context)).ok());
  EXPECT_EQ(jit_->Lookup("m", "sub").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(jit_->Lookup("m", "rc_new_int").status().code(), StatusCode::kNotFound)
      << "runtime functions are not symbols of the module";
}

TEST_F(JitTest, InvalidIrIsRefused) {
  Built b = MakeModule(
      "bad", [](llvm::LLVMContext& c) { return llvm::FunctionType::get(llvm::Type::getInt64Ty(c), {}, false); },
      [](llvm::IRBuilder<>& ir, llvm::Function*, llvm::Module&) { ir.CreateRetVoid(); });
  auto v = jit_->AddModule("bad", std::move(b.module), std::move(b.context));
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.status().message().find("invalid"), std::string::npos);
}

TEST_F(JitTest, ConcurrentCallsDuringReplacements) {
  Built first = AddModule("add", 0);
  ASSERT_TRUE(jit_->AddModule("m", std::move(first.module), std::move(first.context)).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, wrong{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 3; ++t) {
    callers.emplace_back([&] {
      while (!stop.load()) {
        auto f = jit_->Lookup("m", "add");
        if (!f.ok()) {
          ++wrong;
          continue;
        }
        int64_t r = f->As<int64_t (*)(int64_t, int64_t)>()(1, 1);
        if (r != 2 && r != 12) ++wrong;
        ++calls;
      }
    });
  }
  while (calls.load() < 3) std::this_thread::yield();
  for (int i = 1; i <= 40; ++i) {
    Built next = AddModule("add", i % 2 ? 10 : 0);
    ASSERT_TRUE(jit_->ReplaceModule("m", std::move(next.module), std::move(next.context)).ok());
  }
  stop = true;
  for (auto& th : callers) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_GT(calls.load(), 0);
  EXPECT_EQ(jit_->compilations(), 2) << "alternating contents come from the object cache";
}

TEST(JitStatic, OptimizedIrTextIsO2) {
  // i64 f(i64 x) { var t = x; t = t + 0; return t * 1; } -> no alloca, no arithmetic left
  Built b = MakeModule(
      "f",
      [](llvm::LLVMContext& c) {
        auto* i64 = llvm::Type::getInt64Ty(c);
        return llvm::FunctionType::get(i64, {i64}, false);
      },
      [](llvm::IRBuilder<>& ir, llvm::Function* f, llvm::Module&) {
        llvm::Value* slot = ir.CreateAlloca(ir.getInt64Ty());
        ir.CreateStore(f->getArg(0), slot);
        llvm::Value* t = ir.CreateAdd(ir.CreateLoad(ir.getInt64Ty(), slot), ir.getInt64(0));
        ir.CreateStore(t, slot);
        ir.CreateRet(ir.CreateMul(ir.CreateLoad(ir.getInt64Ty(), slot), ir.getInt64(1)));
      });
  EXPECT_NE(JitHost::IrText(*b.module).find("alloca"), std::string::npos);
  std::string ir = JitHost::OptimizedIrText(*b.module);
  EXPECT_EQ(ir.find("alloca"), std::string::npos) << ir;
  EXPECT_NE(ir.find("ret i64 %0"), std::string::npos) << ir;
}

TEST(JitStatic, EmitsAnObjectFileForTheHost) {
  Built b = DivModule();
  std::string path = ::testing::TempDir() + "/rc_jit_test_div.o";
  Status st = JitHost::EmitObjectFile(*b.module, path);
  ASSERT_TRUE(st.ok()) << st.message();
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  in.read(magic, 4);
  EXPECT_EQ(std::string(magic, 4), "\x7f" "ELF");
  std::remove(path.c_str());
  EXPECT_EQ(JitHost::EmitObjectFile(*DivModule().module, "/nonexistent-dir/x.o").code(), StatusCode::kIOError);
}

TEST(RuntimeIr, DeclaresEveryRuntimeFunctionWithItsAbiTypes) {
  llvm::LLVMContext c;
  llvm::Module m("decls", c);
  size_t n = 0;
  const rt::RuntimeFnInfo* table = rt::RuntimeFnTable(&n);
  ASSERT_EQ(n, rt::RuntimeSymbols().size());
  for (size_t i = 0; i < n; ++i) {
    llvm::FunctionCallee f = GetRuntimeFn(m, static_cast<RuntimeFn>(i));
    auto* fn = llvm::cast<llvm::Function>(f.getCallee());
    EXPECT_EQ(fn->getName(), table[i].name);
    EXPECT_EQ(fn->getName(), rt::RuntimeSymbols()[i].first);
    EXPECT_TRUE(fn->doesNotThrow());
    EXPECT_EQ(GetRuntimeFn(m, static_cast<RuntimeFn>(i)).getCallee(), fn) << "declared once";
  }
  auto* concat = m.getFunction("rc_str_concat");
  EXPECT_EQ(concat->getFunctionType()->getNumParams(), 3u);
  EXPECT_TRUE(concat->getReturnType()->isPointerTy());
  auto* eq = m.getFunction("rc_value_eq");
  EXPECT_TRUE(eq->getReturnType()->isIntegerTy(8));
  EXPECT_TRUE(eq->hasRetAttribute(llvm::Attribute::ZExt));
  auto* new_bool = m.getFunction("rc_new_bool");
  EXPECT_TRUE(new_bool->hasParamAttribute(1, llvm::Attribute::ZExt));
  EXPECT_TRUE(m.getFunction("rc_trap")->doesNotReturn());
  EXPECT_TRUE(m.getFunction("rc_trap_with")->doesNotReturn());
  EXPECT_TRUE(m.getFunction("rc_list_at")->getFunctionType()->getParamType(2)->isIntegerTy(64));
  EXPECT_FALSE(llvm::verifyModule(m, &llvm::errs()));
}

}  // namespace
}  // namespace rc::compiler
