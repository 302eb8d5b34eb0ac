// libFuzzer target for the apimachinery parsers. Built only with -DRC_BUILD_FUZZERS=ON (clang).
// The first input byte selects the parser; the rest is the input. Every parser must return a
// Status for any input — never crash, hang or overflow the stack.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/patch.h"
#include "rc/apimachinery/quantity.h"
#include "rc/apimachinery/selector.h"
#include "rc/apimachinery/yaml.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  using namespace rc::apimachinery;
  switch (selector % 6) {
    case 0: {
      auto doc = ParseJson(input);
      if (doc.ok()) {
        // Round trip must be stable.
        auto again = ParseJson(ToJson(*doc));
        if (!again.ok() || !JsonEqual(*doc, *again)) __builtin_trap();
      }
      break;
    }
    case 1: {
      auto doc = ParseYamlToJson(input);
      if (doc.ok()) (void)ToJson(*doc);
      break;
    }
    case 2: {
      auto s = ParseLabelSelector(input);
      if (s.ok()) {
        // The canonical form must parse to the same canonical form.
        auto again = ParseLabelSelector(s->ToString());
        if (!again.ok() || again->ToString() != s->ToString()) __builtin_trap();
      }
      break;
    }
    case 3: {
      auto s = ParseFieldSelector(input);
      if (s.ok()) (void)s->ToString();
      break;
    }
    case 4: {
      auto q = ParseQuantity(input);
      if (q.ok()) (void)q->ToString();
      break;
    }
    case 5: {
      // "<target json>\n<patch json>": strategic merge and JSON merge patch.
      std::size_t nl = input.find('\n');
      if (nl == std::string_view::npos) break;
      auto target = ParseJson(input.substr(0, nl));
      auto patch = ParseJson(input.substr(nl + 1));
      if (!target.ok() || !patch.ok()) break;
      if (target->IsObject() && patch->IsObject()) {
        (void)ApplyStrategicMergePatch(*target, *patch, target->GetAllocator(),
                                       KubernetesPatchSchema());
      }
      (void)ApplyMergePatch(*target, *patch, target->GetAllocator());
      (void)ApplyJsonPatch(*target, *patch);
      break;
    }
  }
  return 0;
}
