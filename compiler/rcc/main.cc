// rcc: the rc compiler CLI. `rcc check FILE...` parses and type-checks; exit 0 when clean, 1 on
// errors, 2 on usage errors. Diagnostics go to stderr (text) or stdout (--format=json).
// `rcc test FILE.rc... TEST.yaml...|DIR` runs reconciler unit tests (docs/language.md).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>

#include "rc/compiler/codegen.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/program.h"
#include "rc/compiler/rcctest/runner.h"
#include "rc/schema/algorithms.h"

namespace {

struct Common {
  std::vector<std::string> files;
  std::vector<std::string> import_paths;
  std::string format = "text";
};

void AddCommon(CLI::App* cmd, Common& c) {
  cmd->add_option("files", c.files, "the .rc files (their imports are loaded too)")->required();
  cmd->add_option("-I,--import-path", c.import_paths, "more directories searched for imports (one per -I)")->allow_extra_args(false);
  cmd->add_option("--format", c.format, "diagnostics format")->check(CLI::IsMember({"text", "json"}));
}

// Prints diagnostics; returns the exit code for them.
int Report(const rc::dsl::Diagnostics& diags, const Common& c) {
  if (c.format == "json") {
    std::cout << diags.FormatJson();
  } else {
    std::cerr << diags.FormatText();
    if (diags.HasErrors()) {
      std::cerr << diags.ErrorCount() << " error" << (diags.ErrorCount() == 1 ? "" : "s") << " generated.\n";
    }
  }
  return diags.HasErrors() ? 1 : 0;
}

std::unique_ptr<rc::compiler::Program> Load(const Common& c, rc::dsl::Diagnostics& diags) {
  rc::compiler::CheckOptions options;
  options.import_paths = c.import_paths;
  return rc::compiler::CheckFiles(c.files, diags, options);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rcc: compiler for rc resource types, functions and controllers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "rcc 0.1");

  Common check_opts;
  auto* check = app.add_subcommand("check", "parse and type-check; exit 1 on errors");
  AddCommon(check, check_opts);

  Common compile_opts;
  std::string emit = "obj";
  std::string output;
  auto* compile = app.add_subcommand("compile", "check, then emit an object file, LLVM IR or the AST");
  AddCommon(compile, compile_opts);
  compile->add_option("--emit", emit, "what to emit: obj (default), llvm (optimised IR), ast")
      ->check(CLI::IsMember({"obj", "llvm", "ast"}));
  compile->add_option("-o,--output", output, "output file (default: stdout for llvm/ast, required for obj)");

  Common schema_opts;
  auto* schema_cmd = app.add_subcommand("schema", "print the OpenAPI v3 schema of each declared resource");
  AddCommon(schema_cmd, schema_opts);

  std::vector<std::string> test_paths;
  std::vector<std::string> test_imports;
  auto* test_cmd = app.add_subcommand(
      "test",
      "run reconciler unit tests: .rc files (or the test files' files: lists) and YAML test files or "
      "directories of them; one line per test, then \"N passed, N failed\"; exit 1 on failures");
  test_cmd->add_option("paths", test_paths, ".rc files, .yaml test files, directories")->required();
  test_cmd->add_option("-I,--import-path", test_imports, "more directories searched for imports (one per -I)")->allow_extra_args(false);
  std::string test_filter;
  bool test_verbose = false;
  test_cmd->add_option("-k,--filter", test_filter, "run only the tests whose name contains this");
  test_cmd->add_flag("-v,--verbose", test_verbose, "print reconciles, writes and failures of every run (perturbations too)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  rc::dsl::Diagnostics diags;
  if (test_cmd->parsed()) {
    return rc::rcctest::RunTestCommand(test_paths, test_imports, std::cout, std::cerr, test_filter, test_verbose);
  }
  if (check->parsed()) {
    auto program = Load(check_opts, diags);
    return Report(diags, check_opts);
  }
  if (schema_cmd->parsed()) {
    auto program = Load(schema_opts, diags);
    int rc = Report(diags, schema_opts);
    if (rc != 0) return rc;
    // {"<group>/<version>/<Kind>": schema, ...}
    std::string out = "{";
    bool first = true;
    for (const auto& s : rc::compiler::LowerResources(*program)) {
      out += std::string(first ? "" : ",") + "\n  \"" + (s.group.empty() ? "core" : s.group) + "/" + s.version + "/" + s.kind +
             "\": " + rc::schema::OpenApiV3Resource(s);
      first = false;
    }
    std::cout << out << "\n}\n";
    return 0;
  }
  if (compile->parsed()) {
    auto program = Load(compile_opts, diags);
    int rc = Report(diags, compile_opts);
    if (rc != 0) return rc;
    std::string text;
    if (emit == "ast") {
      for (auto& m : program->modules) {
        if (m->file->path.rfind("<prelude>", 0) == 0) continue;
        text += "; " + m->file->path + "\n" + rc::dsl::DumpAst(*m);
      }
    } else {
      auto gen = rc::compiler::GenerateModule(*program, compile_opts.files.front());
      if (emit == "obj") {
        if (output.empty()) {
          std::cerr << "rcc: --emit=obj needs -o FILE\n";
          return 2;
        }
        rc::Status st = rc::compiler::JitHost::EmitObjectFile(*gen.module, output);
        if (!st.ok()) {
          std::cerr << "rcc: " << st.message() << "\n";
          return 1;
        }
        return 0;
      }
      rc::compiler::JitHost::Optimize(*gen.module);
      text = rc::compiler::JitHost::IrText(*gen.module);
    }
    if (output.empty()) {
      std::cout << text;
    } else {
      std::ofstream out(output, std::ios::binary);
      out << text;
      if (!out) {
        std::cerr << "rcc: cannot write " << output << "\n";
        return 1;
      }
    }
    return 0;
  }
  return 2;
}
