// Internal: go-yaml v2 style resolution of plain scalars.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace rc::apimachinery {

enum class ScalarKind { kString, kNull, kBool, kInt, kUint, kFloat, kMerge };

struct ScalarValue {
  ScalarKind kind = ScalarKind::kString;
  bool b = false;
  std::int64_t i = 0;
  std::uint64_t u = 0;
  double d = 0;
};

// Resolves an untagged plain scalar like gopkg.in/yaml.v2 resolve().
ScalarValue ResolvePlainScalar(std::string_view text);

// strconv.FormatFloat(f, 'g', -1, 32), with sigs.k8s.io/yaml's .inf/-.inf/.nan spellings.
std::string FormatGoFloat32(double value);

// strconv.ParseInt(s, 0, 64) / ParseUint(s, 0, 64) (no underscores).
bool ParseGoInt(std::string_view s, std::int64_t* out);
bool ParseGoUint(std::string_view s, std::uint64_t* out);

}  // namespace rc::apimachinery
