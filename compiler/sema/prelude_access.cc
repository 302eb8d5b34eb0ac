#include "rc/compiler/program.h"

extern "C" const char PreludeText[];

namespace rc::compiler {

const std::string& PreludeSource() {
  static const std::string text(PreludeText);
  return text;
}

}  // namespace rc::compiler
