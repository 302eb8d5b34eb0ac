// Shared by the integration tests that start a real API server in-process: the JIT host and
// the built-in resource types compiled once per test binary, and a polling wait.
#pragma once

#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>
#include <vector>

#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"

namespace rc::testing {

// One JIT host per test binary (never destroyed: compiled code may outlive any one test).
inline compiler::JitHost* Jit() {
  static compiler::JitHost* jit = [] {
    auto host = compiler::JitHost::Create();
    if (!host.ok()) std::abort();
    return host->release();
  }();
  return jit;
}

// resources/*.rc compiled once; what RegistryFromSchemas(..., "builtin") serves.
inline const std::vector<schema::ResourceSchema>& BuiltinSchemas() {
  static const std::vector<schema::ResourceSchema> schemas = [] {
    auto loaded = compiler::LoadBuiltinSchemas(Jit());
    if (!loaded.ok()) std::abort();
    return std::move(*loaded);
  }();
  return schemas;
}

// Polls `pred` every 20 ms until it holds or `timeout` passes; its last value.
inline bool WaitFor(const std::function<bool()>& pred,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

}  // namespace rc::testing
