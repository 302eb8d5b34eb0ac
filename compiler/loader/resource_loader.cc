#include "rc/compiler/resource_loader.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "rc/compiler/codegen.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/program.h"
#include "rc/stdlib/runtime.h"

namespace rc::compiler {

namespace fs = std::filesystem;

Result<SourceList> ReadRcDirectory(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return Status::NotFound("not a directory: " + dir);
  SourceList out;
  for (auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() != ".rc" || !entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) return Status::IOError("cannot read " + entry.path().string());
    std::ostringstream ss;
    ss << in.rdbuf();
    out.push_back({entry.path().string(), ss.str()});
  }
  if (ec) return Status::IOError("cannot list " + dir + ": " + ec.message());
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::vector<schema::ResourceSchema>> LoadBuiltinSchemas(JitHost* jit) {
  ResourceLoader loader(jit);
  dsl::Diagnostics diags;
  auto loaded = loader.Load(BuiltinResourceSources(), {}, "builtin", diags);
  if (!loaded.ok()) return Status::Internal("the built-in resource files do not compile:\n" + loaded.status().message());
  return std::move(loaded->schemas);
}

namespace {

struct CallData {
  void* fn;
  rc_ctx* ctx;
  rc_value* arg;
  rc_value* result;
};
void CallUnary(void* d) {
  auto* c = static_cast<CallData*>(d);
  c->result = reinterpret_cast<rc_value* (*)(rc_ctx*, rc_value*)>(c->fn)(c->ctx, c->arg);
}

// Calls a compiled `(ctx, object) -> value` function on JSON text. Traps yield nullopt.
std::optional<std::string> CallOnJson(const FunctionHandle& h, const std::string& json, int64_t now) {
  rc_ctx ctx;
  ctx.now_seconds = now;
  rc_value* obj = rt::ParseJson(&ctx, json);
  if (!obj) return std::nullopt;
  CallData data{h.address, &ctx, obj, nullptr};
  if (!rt::Invoke(&ctx, CallUnary, &data).ok()) return std::nullopt;
  return rt::ToJson(data.result);
}

std::string Unquote(const std::string& json) {
  if (json.size() >= 2 && json.front() == '"' && json.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < json.size(); ++i) {
      if (json[i] == '\\' && i + 2 < json.size()) {
        char n = json[++i];
        out += n == 'n' ? '\n' : n == 't' ? '\t' : n;
      } else {
        out += json[i];
      }
    }
    return out;
  }
  return json == "null" ? "" : json;
}

}  // namespace

Result<CheckedSources> CheckWithVisible(const SourceList& sources, const SourceList& extra_visible,
                                        dsl::Diagnostics& diags) {
  SourceList all = extra_visible;
  CheckedSources checked;
  for (auto& s : sources) {
    all.push_back(s);
    checked.own.insert(s.first);
  }
  checked.program = CheckSources(all, diags);
  if (diags.HasErrors() || !checked.program) return Status::InvalidArgument(diags.FormatText());
  return checked;
}

Result<LoadResult> ResourceLoader::Load(const SourceList& sources, const SourceList& extra_visible,
                                        const std::string& module_name, dsl::Diagnostics& diags) {
  auto checked = CheckWithVisible(sources, extra_visible, diags);
  if (!checked.ok()) return checked.status();
  const auto& program = checked->program;
  const std::set<std::string>& own = checked->own;
  LoadResult result;
  result.content_hash = program->content_hash;
  std::vector<schema::ResourceSchema> lowered = LowerResources(*program);
  // Only the files being loaded get code; the visible ones (imports, built-ins) are compiled
  // where they are loaded themselves.
  GeneratedModule gen = GenerateModule(*program, module_name, extra_visible.empty() ? nullptr : &own);
  auto columns = gen.columns;
  auto defaults = gen.defaults;
  auto rules = gen.rules;
  bool compiled = false;
  Status st = jit_->AddOrReplace(module_name, program->content_hash, std::move(gen), &compiled);
  if (!st.ok()) return st;
  result.compiled = compiled;

  // Wire compiled columns and defaults into the schemas.
  std::map<std::string, std::shared_ptr<FunctionHandle>> handles;
  auto handle = [&](const std::string& symbol) -> std::shared_ptr<FunctionHandle> {
    auto it = handles.find(symbol);
    if (it != handles.end()) return it->second;
    auto h = jit_->Lookup(module_name, symbol);
    if (!h.ok()) return nullptr;
    auto sp = std::make_shared<FunctionHandle>(std::move(*h));
    handles[symbol] = sp;
    return sp;
  };
  for (auto& schema : lowered) {
    if (!own.count(schema.source_file)) continue;
    // Declared columns follow the automatic Name column (when the resource has one).
    size_t declared = 0;
    for (auto& c : columns) declared += c.kind == schema.kind;
    size_t offset = schema.columns.size() - declared;
    for (auto& c : columns) {
      if (c.kind != schema.kind || c.index + offset >= schema.columns.size()) continue;
      schema::Column& col = schema.columns[c.index + offset];
      if (!col.json_path.empty()) continue;  // plain paths are read without compiled code
      auto h = handle(c.symbol);
      if (!h) continue;
      bool date = col.type == "date";
      col.compute = [h, date](const std::string& object_json, int64_t now) -> std::string {
        auto v = CallOnJson(*h, object_json, now);
        if (!v) return "<error>";
        (void)date;
        return Unquote(*v);
      };
      col.compute_value = [h](const void* object, int64_t now) -> std::string {
        rc_ctx ctx;
        ctx.now_seconds = now;
        CallData data{h->address, &ctx, const_cast<rc_value*>(static_cast<const rc_value*>(object)), nullptr};
        if (!rt::Invoke(&ctx, CallUnary, &data).ok()) return "<error>";
        const rc_value* v = data.result;
        if (!v || v->IsNull()) return "";
        if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
        return Unquote(rt::ToJson(v));
      };
    }
    result.schemas.push_back(std::move(schema));
  }
  // Computed defaults live on struct types shared by several resources: walk each schema's types.
  std::map<std::pair<std::string, std::string>, std::shared_ptr<FunctionHandle>> default_fns;
  for (auto& d : defaults) {
    if (auto h = handle(d.symbol)) default_fns[{d.struct_name, d.field}] = h;
  }
  std::map<std::pair<std::string, size_t>, std::shared_ptr<FunctionHandle>> rule_fns;
  for (auto& r : rules) {
    if (auto h = handle(r.symbol)) rule_fns[{r.struct_name, r.index}] = h;
  }
  if (!default_fns.empty() || !rule_fns.empty()) {
    std::set<const schema::Type*> seen;
    std::function<void(const schema::TypeRef&)> walk = [&](const schema::TypeRef& t) {
      if (!t || !seen.insert(t.get()).second) return;
      auto* mt = const_cast<schema::Type*>(t.get());
      for (size_t i = 0; i < mt->rules.size(); ++i) {
        auto it = rule_fns.find({mt->name, i});
        if (it == rule_fns.end()) continue;
        auto h = it->second;
        mt->rules[i].check = [h](const void* object) {
          rc_ctx ctx;
          CallData data{h->address, &ctx, const_cast<rc_value*>(static_cast<const rc_value*>(object)), nullptr};
          if (!rt::Invoke(&ctx, CallUnary, &data).ok()) return false;  // a trapping rule rejects
          return data.result && data.result->IsBool() && data.result->GetBool();
        };
      }
      for (auto& f : mt->fields) {
        auto it = default_fns.find({mt->name, f.name});
        if (it != default_fns.end() && !f.default_json) {
          auto h = it->second;
          f.default_fn = [h](const std::string& parent_json) { return CallOnJson(*h, parent_json, 0); };
        }
        walk(f.type);
      }
      walk(mt->element);
    };
    for (auto& s : result.schemas) walk(s.root);
  }
  return result;
}

}  // namespace rc::compiler
