#include "rc/apimachinery/quantity.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>

#include "rc/apimachinery/json.h"

namespace rc::apimachinery {

namespace {

using i128 = __int128;

constexpr const char* kErrFormatWrong =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
constexpr const char* kErrNumeric = "unable to parse quantity's numeric value";
constexpr const char* kErrSuffix = "unable to parse quantity's suffix";

constexpr i128 kNano = 1000000000;
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr i128 kMaxBinaryNanos =
    static_cast<i128>(kInt64Max) * kNano;  // Kubernetes caps BinarySI at 2^63-1

constexpr i128 Pow10(int n) {
  i128 r = 1;
  for (int i = 0; i < n; ++i) r *= 10;
  return r;
}

// Magnitude limit (1e27 in value units) so that formatting never overflows.
constexpr i128 kMaxNanos = Pow10(36);

i128 Clamp(i128 v) { return v > kMaxNanos ? kMaxNanos : (v < -kMaxNanos ? -kMaxNanos : v); }

bool MulOverflow(i128 a, i128 b, i128* out) { return __builtin_mul_overflow(a, b, out); }

std::string I128ToString(i128 v) {
  if (v == 0) return "0";
  bool neg = v < 0;
  // |v| may not be representable for min, which never occurs here (bounded magnitudes).
  unsigned __int128 u =
      neg ? static_cast<unsigned __int128>(-v) : static_cast<unsigned __int128>(v);
  std::string s;
  while (u > 0) {
    s.push_back(static_cast<char>('0' + static_cast<int>(u % 10)));
    u /= 10;
  }
  if (neg) s.push_back('-');
  std::reverse(s.begin(), s.end());
  return s;
}

Status Err(std::string_view text, const char* reason) {
  return Status::InvalidArgument("quantity \"" + std::string(text) + "\": " + reason);
}

struct Parts {
  bool positive = true;
  bool zero = false;  // early "all zeros" return of parseQuantityString
  std::string_view value, num, denom, suffix;
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// resource.parseQuantityString.
bool SplitQuantity(std::string_view str, Parts* p) {
  std::size_t pos = 0;
  const std::size_t end = str.size();
  if (pos < end) {
    if (str[0] == '-') {
      p->positive = false;
      ++pos;
    } else if (str[0] == '+') {
      ++pos;
    }
  }
  // strip leading zeros
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      p->num = "0";
      p->value = p->num;
      p->zero = true;
      return true;
    }
    if (str[i] == '0') {
      ++pos;
    } else {
      break;
    }
  }
  // numerator
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      p->num = str.substr(pos);
      p->value = str;
      return true;
    }
    if (!IsDigit(str[i])) {
      p->num = str.substr(pos, i - pos);
      pos = i;
      break;
    }
  }
  // denominator
  if (pos < end && str[pos] == '.') {
    ++pos;
    for (std::size_t i = pos;; ++i) {
      if (i >= end) {
        p->denom = str.substr(pos);
        p->value = str;
        return true;
      }
      if (!IsDigit(str[i])) {
        p->denom = str.substr(pos, i - pos);
        pos = i;
        break;
      }
    }
  }
  p->value = str.substr(0, pos);
  // suffix
  std::size_t suffix_start = pos;
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      p->suffix = str.substr(suffix_start);
      return true;
    }
    if (std::string_view("eEinumkKMGTP").find(str[i]) == std::string_view::npos) {
      pos = i;
      break;
    }
  }
  if (pos < end && (str[pos] == '-' || str[pos] == '+')) ++pos;
  for (std::size_t i = pos;; ++i) {
    if (i >= end) {
      p->suffix = str.substr(suffix_start);
      return true;
    }
    if (!IsDigit(str[i])) break;
  }
  return false;  // ErrFormatWrong
}

bool InterpretSuffix(std::string_view s, int* base, int* exponent, QuantityFormat* format) {
  static const std::pair<std::string_view, int> kDec[] = {
      {"n", -9}, {"u", -6}, {"m", -3}, {"", 0},   {"k", 3},
      {"M", 6},  {"G", 9},  {"T", 12}, {"P", 15}, {"E", 18}};
  static const std::pair<std::string_view, int> kBin[] = {{"Ki", 10}, {"Mi", 20}, {"Gi", 30},
                                                          {"Ti", 40}, {"Pi", 50}, {"Ei", 60}};
  for (const auto& [t, e] : kDec) {
    if (s == t) {
      *base = 10;
      *exponent = e;
      *format = QuantityFormat::kDecimalSI;
      return true;
    }
  }
  for (const auto& [t, e] : kBin) {
    if (s == t) {
      *base = 2;
      *exponent = e;
      *format = QuantityFormat::kBinarySI;
      return true;
    }
  }
  if (s.size() > 1 && (s[0] == 'e' || s[0] == 'E')) {
    std::string_view digits = s.substr(1);
    bool neg = false;
    if (!digits.empty() && (digits[0] == '+' || digits[0] == '-')) {
      neg = digits[0] == '-';
      digits.remove_prefix(1);
    }
    if (digits.empty()) return false;
    long long v = 0;
    auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v, 10);
    if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || v > 100000) return false;
    *base = 10;
    *exponent = static_cast<int>(neg ? -v : v);
    *format = QuantityFormat::kDecimalExponent;
    return true;
  }
  return false;
}

// Parses a decimal digit string (no sign) into i128; false on overflow.
bool DigitsToI128(std::string_view digits, i128* out) {
  i128 v = 0;
  for (char c : digits) {
    if (MulOverflow(v, 10, &v)) return false;
    v += c - '0';
    if (v < 0) return false;
  }
  *out = v;
  return true;
}

// digits * 10^k rounded up (away from zero) when k < 0; false on overflow.
bool ScaleDigits(std::string_view digits, int k, i128* out) {
  if (k >= 0) {
    i128 v;
    if (!DigitsToI128(digits, &v)) return false;
    if (k > 38) return v == 0 ? (*out = 0, true) : false;
    return !MulOverflow(v, Pow10(k), out);
  }
  std::size_t drop = static_cast<std::size_t>(-k);
  std::string_view keep =
      drop >= digits.size() ? std::string_view() : digits.substr(0, digits.size() - drop);
  std::string_view rest = drop >= digits.size() ? digits : digits.substr(digits.size() - drop);
  i128 v = 0;
  if (!DigitsToI128(keep, &v)) return false;
  if (rest.find_first_not_of('0') != std::string_view::npos) ++v;
  *out = v;
  return true;
}

}  // namespace

Quantity Quantity::FromInt(std::int64_t value, QuantityFormat format) {
  Quantity q;
  q.nanos_ = static_cast<i128>(value) * kNano;
  q.format_ = format;
  return q;
}

Quantity Quantity::FromMilli(std::int64_t milli, QuantityFormat format) {
  Quantity q;
  q.nanos_ = static_cast<i128>(milli) * 1000000;
  q.format_ = format;
  return q;
}

std::int64_t Quantity::ScaledValue(int scale) const {
  scale = std::clamp(scale, -9, 18);
  i128 div = Pow10(scale + 9);
  i128 q = nanos_ / div;
  if (nanos_ % div != 0) q += nanos_ > 0 ? 1 : -1;
  if (q > kInt64Max) return kInt64Max;
  if (q < std::numeric_limits<std::int64_t>::min()) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(q);
}

std::int64_t Quantity::Value() const { return ScaledValue(0); }
std::int64_t Quantity::MilliValue() const { return ScaledValue(-3); }

int Quantity::Cmp(const Quantity& other) const {
  if (nanos_ < other.nanos_) return -1;
  if (nanos_ > other.nanos_) return 1;
  return 0;
}

void Quantity::Add(const Quantity& other) {
  original_.clear();
  if (nanos_ == 0) format_ = other.format_;
  nanos_ = Clamp(nanos_ + other.nanos_);
}

void Quantity::Sub(const Quantity& other) {
  original_.clear();
  if (nanos_ == 0) format_ = other.format_;
  nanos_ = Clamp(nanos_ - other.nanos_);
}

void Quantity::Neg() {
  original_.clear();
  nanos_ = -nanos_;
}

std::string Quantity::ToString() const {
  if (!original_.empty()) return original_;
  if (nanos_ == 0) return "0";
  QuantityFormat format = format_;
  i128 abs = nanos_ < 0 ? -nanos_ : nanos_;
  if (format == QuantityFormat::kBinarySI) {
    if (abs < 1024 * kNano || nanos_ % kNano != 0) format = QuantityFormat::kDecimalSI;
  }
  if (format == QuantityFormat::kBinarySI) {
    static const char* kSuffix[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"};
    i128 v = nanos_ / kNano;
    int exp = 0;
    while (exp < 6 && v % 1024 == 0) {
      v /= 1024;
      ++exp;
    }
    return I128ToString(v) + kSuffix[exp];
  }
  i128 mantissa = nanos_;
  int exp = -9;
  while (mantissa % 10 == 0) {
    mantissa /= 10;
    ++exp;
  }
  switch (((exp % 3) + 3) % 3) {
    case 1:  // exp ≡ 1 (mod 3)
      mantissa *= 10;
      exp -= 1;
      break;
    case 2:
      mantissa *= 100;
      exp -= 2;
      break;
    default:
      break;
  }
  if (format == QuantityFormat::kDecimalExponent) {
    if (exp == 0) return I128ToString(mantissa);
    return I128ToString(mantissa) + "e" + std::to_string(exp);
  }
  if (exp > 18) {
    mantissa *= Pow10(exp - 18);
    exp = 18;
  }
  const char* suffix = "";
  switch (exp) {
    case -9:
      suffix = "n";
      break;
    case -6:
      suffix = "u";
      break;
    case -3:
      suffix = "m";
      break;
    case 3:
      suffix = "k";
      break;
    case 6:
      suffix = "M";
      break;
    case 9:
      suffix = "G";
      break;
    case 12:
      suffix = "T";
      break;
    case 15:
      suffix = "P";
      break;
    case 18:
      suffix = "E";
      break;
    default:
      break;
  }
  return I128ToString(mantissa) + suffix;
}

Result<Quantity> ParseQuantity(std::string_view text) {
  if (text.empty()) return Err(text, kErrFormatWrong);
  Quantity q;
  if (text == "0") {
    q.original_ = "0";
    return q;
  }
  Parts p;
  if (!SplitQuantity(text, &p)) return Err(text, kErrFormatWrong);
  if (p.zero) return q;  // "+", "-0", "000": zero, DecimalSI
  int base, exponent;
  QuantityFormat format;
  if (!InterpretSuffix(p.suffix, &base, &exponent, &format)) return Err(text, kErrSuffix);
  if (p.num.empty() && p.denom.empty()) return Err(text, kErrNumeric);

  std::string digits = std::string(p.num) + std::string(p.denom);
  const int denom_len = static_cast<int>(p.denom.size());

  // Kubernetes' int64 fast path decides whether the input string is kept as the canonical form.
  bool reuse = false;
  {
    int precision = -1;
    int scale = 0;
    std::int64_t mantissa = 1;
    if (format == QuantityFormat::kBinarySI) {
      if (exponent >= 0 && denom_len == 0) {
        mantissa = exponent < 63 ? (std::int64_t{1} << exponent) : 0;
        precision = 15 - static_cast<int>(p.num.size()) -
                    static_cast<int>(static_cast<float>(exponent) * 3 / 10) - 1;
      }
    } else {
      scale = exponent;
      precision = 18 - static_cast<int>(p.num.size() + p.denom.size());
    }
    if (precision >= 0) {
      scale -= denom_len;
      if (scale >= -9) {
        std::int64_t value = 0;
        auto r = std::from_chars(digits.data(), digits.data() + digits.size(), value, 10);
        if (r.ec != std::errc() || r.ptr != digits.data() + digits.size())
          return Err(text, kErrNumeric);
        std::int64_t result;
        if (!__builtin_mul_overflow(value, mantissa, &result)) {
          if (format == QuantityFormat::kBinarySI) {
            reuse = exponent % 10 == 0 && (value & 0x07) != 0;
          } else {
            reuse = scale % 3 == 0 &&
                    !(digits.size() >= 3 && digits.compare(digits.size() - 3, 3, "000") == 0) &&
                    digits[0] != '0';
          }
        }
      }
    }
  }

  // Strip leading zeros (the denominator may start with zeros when the numerator is empty).
  std::string_view sig(digits);
  std::size_t nz = sig.find_first_not_of('0');
  sig = nz == std::string_view::npos ? std::string_view() : sig.substr(nz);

  i128 nanos = 0;
  if (base == 10) {
    if (!sig.empty()) {
      int k = exponent - denom_len + 9;
      if (sig.size() > 60 && k >= 0) return Err(text, "value is out of the supported range");
      if (!ScaleDigits(sig, k, &nanos) || nanos > kMaxNanos)
        return Err(text, "value is out of the supported range");
    }
  } else {
    // digits * 2^exponent * 10^(9 - denom_len)
    std::string_view trimmed = sig;
    int d = denom_len;
    while (d > 0 && !trimmed.empty() && trimmed.back() == '0') {
      trimmed.remove_suffix(1);
      --d;
    }
    i128 v = 0;
    bool overflow = !DigitsToI128(trimmed, &v);
    i128 m = 0;
    if (!overflow) overflow = MulOverflow(v, static_cast<i128>(1) << exponent, &m);
    if (!overflow) {
      if (d <= 9) {
        overflow = MulOverflow(m, Pow10(9 - d), &nanos);
      } else {
        i128 div = Pow10(d - 9 > 38 ? 38 : d - 9);
        nanos = m / div + (m % div != 0 ? 1 : 0);
      }
    }
    if (overflow) {
      if (d > 18) return Err(text, "value has too many digits");
      nanos = kMaxBinaryNanos;
    }
    if (nanos > kMaxBinaryNanos) nanos = kMaxBinaryNanos;
    if (nanos > 0 && nanos < kNano) format = QuantityFormat::kDecimalSI;
  }
  q.nanos_ = p.positive ? nanos : -nanos;
  q.format_ = format;
  if (reuse) q.original_ = std::string(text);
  return q;
}

Result<Quantity> ParseQuantityJson(const rapidjson::Value& value) {
  if (value.IsString()) return ParseQuantity(JsonStringView(value));
  if (value.IsNumber()) return ParseQuantity(ToJson(value));
  return Status::InvalidArgument("quantity must be a string or a number");
}

}  // namespace rc::apimachinery
