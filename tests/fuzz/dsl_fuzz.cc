// libFuzzer target: the rc front end (parser + AST builder) and the type checker on arbitrary
// bytes. Any input must end in diagnostics or success — never a crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string>

#include "rc/compiler/program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  rc::dsl::Diagnostics diags;
  rc::compiler::CheckOptions options;
  options.limits.max_bytes = 1 << 20;
  auto program = rc::compiler::CheckSources({{"fuzz.rc", text}}, diags, options);
  if (program && !diags.HasErrors()) (void)rc::compiler::LowerResources(*program);
  (void)diags.FormatText();
  (void)diags.FormatJson();
  return 0;
}
