#include "rc/compiler/controller_loader.h"

#include <ctime>
#include <set>

#include "rc/compiler/codegen.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/program.h"

namespace rc::compiler {

namespace {

controller::TypeRef TypeOf(const StructInfo* st) {
  std::string group, version = "v1";
  if (st && st->resource) {
    for (auto& s : st->resource->settings) {
      if (s.name == "group" && s.value) group = s.value->text;
      if (s.name == "version" && s.value) version = s.value->text;
    }
  }
  return {group.empty() ? version : group + "/" + version, st ? st->name : ""};
}

}  // namespace

Result<LoadedControllers> ControllerLoader::Load(const SourceList& sources, const SourceList& extra_visible,
                                                 const std::string& module_name, const std::string& origin,
                                                 dsl::Diagnostics& diags) {
  auto checked = CheckWithVisible(sources, extra_visible, diags);
  if (!checked.ok()) return checked.status();
  const auto& program = checked->program;
  const std::set<std::string>& own = checked->own;
  GeneratedModule gen = GenerateModule(*program, module_name, &own);
  LoadedControllers result;
  result.content_hash = program->content_hash;
  bool compiled = false;
  RC_RETURN_IF_ERROR(jit_->AddOrReplace(module_name, program->content_hash, std::move(gen), &compiled));
  result.compiled = compiled;
  for (auto& c : program->controllers) {
    if (!c.decl || !own.count(c.decl->range.file ? c.decl->range.file->path : "")) continue;
    controller::CompiledController cc;
    cc.name = c.name;
    cc.origin = origin;
    cc.source_hash = program->content_hash;
    cc.primary = TypeOf(c.primary);
    for (auto* o : c.owns) cc.owns.push_back(TypeOf(o));
    for (size_t i = 0; i < c.decl->watches.size(); ++i) {
      const StructInfo* st = i < c.watches.size() ? c.watches[i] : nullptr;
      controller::CompiledController::Watch w;
      w.type = TypeOf(st);
      if (c.decl->watches[i].mapping) {
        auto h = jit_->Lookup(module_name, "rc_watch_" + SymbolSafe(c.name) + "_" + std::to_string(i));
        if (h.ok()) w.mapper = h->As<controller::CompiledController::MapperFn>();
      }
      cc.watches.push_back(w);
    }
    cc.resync_ns = c.resync_ns;
    for (auto& s : c.decl->settings) {
      if (s.name == "workers" && s.value) cc.workers = static_cast<int>(s.value->int_value);
    }
    auto h = jit_->Lookup(module_name, "rc_reconcile_" + SymbolSafe(c.name));
    if (!h.ok()) return Status::Internal(c.name + ": compiled module has no reconcile entry: " + h.status().message());
    cc.reconcile = h->As<controller::CompiledController::ReconcileFn>();
    cc.loaded_at_unix = h->version ? h->version->loaded_at_unix() : time(nullptr);
    cc.code = std::shared_ptr<const void>(h->version);
    result.controllers.push_back(std::move(cc));
  }
  return result;
}

}  // namespace rc::compiler
