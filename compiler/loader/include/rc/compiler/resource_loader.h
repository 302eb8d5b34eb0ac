// Resource types from .rc files, ready to serve: check + lower + JIT-compile the column and
// computed-default expressions, wiring them into the schemas as callables. Used by rcd for the
// built-in types (embedded at build time) and for `rcd --resources DIR` (hot reload).
#pragma once

#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rc/base/status.h"
#include "rc/dsl/source.h"
#include "rc/schema/schema.h"

namespace rc::compiler {

class JitHost;

using SourceList = std::vector<std::pair<std::string, std::string>>;  // (path, text)

// The built-in resource files (resources/*.rc), embedded in the binary.
const SourceList& BuiltinResourceSources();

// Every *.rc file directly inside `dir` (sorted by name). Unreadable files are errors.
Result<SourceList> ReadRcDirectory(const std::string& dir);

struct LoadResult {
  std::vector<schema::ResourceSchema> schemas;  // only those declared in `sources` (not imports)
  std::string content_hash;
  bool compiled = false;  // false when the JIT already had this exact content
};

struct Program;

// `sources` checked together with `extra_visible` (types they use but do not own); `own` holds
// the paths of `sources`, for generating code only for them. kInvalidArgument with the formatted
// diagnostics (also in `diags`) on errors. Shared by the resource and controller loaders.
struct CheckedSources {
  std::unique_ptr<Program> program;
  std::set<std::string> own;
};
Result<CheckedSources> CheckWithVisible(const SourceList& sources, const SourceList& extra_visible,
                                        dsl::Diagnostics& diags);

// The built-in types (BuiltinResourceSources) compiled into `jit` as module "builtin".
Result<std::vector<schema::ResourceSchema>> LoadBuiltinSchemas(JitHost* jit);

class ResourceLoader {
 public:
  explicit ResourceLoader(JitHost* jit) : jit_(jit) {}
  // Checks `sources` together (they may use each other's types; the built-in files are visible to
  // user files through `extra_visible`). On errors returns kInvalidArgument and fills `diags`;
  // nothing is installed then. `module_name` names the JIT module replaced on success.
  Result<LoadResult> Load(const SourceList& sources, const SourceList& extra_visible,
                          const std::string& module_name, dsl::Diagnostics& diags);

 private:
  JitHost* jit_;
};

}  // namespace rc::compiler
