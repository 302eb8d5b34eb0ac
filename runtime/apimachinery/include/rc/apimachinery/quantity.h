// Kubernetes resource.Quantity: fixed-point decimal with a preferred format.
//
// Grammar: [+-]? digits [. digits]? suffix, suffix one of
//   decimal SI  n u m "" k M G T P E
//   binary SI   Ki Mi Gi Ti Pi Ei
//   exponent    e<int> / E<int> (e.g. 1e3, 5E-3)
// Values are stored exactly down to nano units (1e-9); finer values round up (away from zero),
// as Kubernetes does. Binary-SI values are capped at 2^63-1 (like Kubernetes); other values must
// fit ±1.7e29 (Kubernetes would accept more; nothing real needs it).
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "rc/base/status.h"

namespace rc::apimachinery {

enum class QuantityFormat {
  kDecimalExponent,  // 12e6
  kBinarySI,         // 12Mi
  kDecimalSI,        // 12M
};

class Quantity {
 public:
  // Zero, DecimalSI.
  Quantity() = default;
  static Quantity FromInt(std::int64_t value, QuantityFormat format = QuantityFormat::kDecimalSI);
  static Quantity FromMilli(std::int64_t milli, QuantityFormat format = QuantityFormat::kDecimalSI);

  // ceil(q) / ceil(q * 1000) — rounding away from zero, saturating at the int64 range
  // (resource.Quantity.Value / MilliValue).
  std::int64_t Value() const;
  std::int64_t MilliValue() const;
  // ceil(q / 10^scale) for scale in [-9, 18] (e.g. -3 == MilliValue()).
  std::int64_t ScaledValue(int scale) const;

  bool IsZero() const { return nanos_ == 0; }
  int Sign() const { return nanos_ < 0 ? -1 : (nanos_ > 0 ? 1 : 0); }
  // -1, 0, 1.
  int Cmp(const Quantity& other) const;
  bool operator==(const Quantity& other) const { return nanos_ == other.nanos_; }

  // Arithmetic keeps this quantity's format (or takes other's if this one is zero), like
  // Kubernetes. Saturates instead of overflowing.
  void Add(const Quantity& other);
  void Sub(const Quantity& other);
  void Neg();

  QuantityFormat format() const { return format_; }

  // Canonical string, e.g. "100m", "1536Mi", "1k", "1e3", "0". A string that was already
  // canonical-enough when parsed is returned as given (Kubernetes keeps it too).
  std::string ToString() const;

 private:
  friend Result<Quantity> ParseQuantity(std::string_view);
  __int128 nanos_ = 0;
  QuantityFormat format_ = QuantityFormat::kDecimalSI;
  std::string original_;  // set only when Kubernetes would reuse the input string
};

// Errors (kInvalidArgument) use Kubernetes' texts:
//   "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
//   "unable to parse quantity's suffix", "unable to parse quantity's numeric value"
// prefixed with the offending input: `quantity "1Kb": ...`.
Result<Quantity> ParseQuantity(std::string_view text);
// A JSON string, or a JSON number (parsed from its canonical text), as Quantity.UnmarshalJSON.
Result<Quantity> ParseQuantityJson(const rapidjson::Value& value);

}  // namespace rc::apimachinery
