// Controllers from .rc files, ready to run: check (the built-in resource types visible), generate
// code for the files' controllers, JIT-compile them as one module, and describe each controller
// (primary/owned/watched types, settings, entry points) for rc::controller::ControllerManager.
#pragma once

#include <string>
#include <vector>

#include "rc/base/status.h"
#include "rc/compiler/resource_loader.h"
#include "rc/controller/controller_manager.h"
#include "rc/dsl/source.h"

namespace rc::compiler {

class JitHost;

// stdlib/controllers/*.rc, embedded in the binary.
const SourceList& StdlibControllerSources();

struct LoadedControllers {
  std::vector<controller::CompiledController> controllers;
  std::string content_hash;
  bool compiled = false;  // false when the JIT already had this exact content
};

class ControllerLoader {
 public:
  explicit ControllerLoader(JitHost* jit) : jit_(jit) {}
  // Checks `sources` with `extra_visible` (resource types they use); on errors returns
  // kInvalidArgument with the formatted diagnostics (also in `diags`) and installs nothing.
  // Replaces JIT module `module_name` on success. `origin` is recorded on each controller.
  Result<LoadedControllers> Load(const SourceList& sources, const SourceList& extra_visible,
                                 const std::string& module_name, const std::string& origin, dsl::Diagnostics& diags);

 private:
  JitHost* jit_;
};

}  // namespace rc::compiler
