#include "yaml_resolve.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <system_error>

namespace rc::apimachinery {

namespace {

struct Exact {
  const char* text;
  ScalarKind kind;
  bool b;
};

constexpr Exact kExact[] = {
    {"y", ScalarKind::kBool, true},      {"Y", ScalarKind::kBool, true},
    {"yes", ScalarKind::kBool, true},    {"Yes", ScalarKind::kBool, true},
    {"YES", ScalarKind::kBool, true},    {"true", ScalarKind::kBool, true},
    {"True", ScalarKind::kBool, true},   {"TRUE", ScalarKind::kBool, true},
    {"on", ScalarKind::kBool, true},     {"On", ScalarKind::kBool, true},
    {"ON", ScalarKind::kBool, true},     {"n", ScalarKind::kBool, false},
    {"N", ScalarKind::kBool, false},     {"no", ScalarKind::kBool, false},
    {"No", ScalarKind::kBool, false},    {"NO", ScalarKind::kBool, false},
    {"false", ScalarKind::kBool, false}, {"False", ScalarKind::kBool, false},
    {"FALSE", ScalarKind::kBool, false}, {"off", ScalarKind::kBool, false},
    {"Off", ScalarKind::kBool, false},   {"OFF", ScalarKind::kBool, false},
    {"~", ScalarKind::kNull, false},     {"null", ScalarKind::kNull, false},
    {"Null", ScalarKind::kNull, false},  {"NULL", ScalarKind::kNull, false},
    {"<<", ScalarKind::kMerge, false},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool MatchesYamlStyleFloat(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    std::size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  } else {
    std::size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && IsDigit(s[i])) ++i;
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    std::size_t start = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    if (i == start) return false;
  }
  return i == s.size();
}

// ^\.[0-9]+([eE][-+]?[0-9]+)?$ (what strconv.ParseFloat accepts after a leading '.')
bool MatchesDotFloat(std::string_view s) {
  if (s.empty() || s[0] != '.') return false;
  return MatchesYamlStyleFloat(s);
}

// Parses a decimal float already validated by the regexes. Overflow → false (Go returns an error
// and yaml.v2 keeps the scalar as a string); underflow → 0.
bool ParseDecimalFloat(std::string_view s, double* out) {
  bool neg = false;
  if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), v, std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range) {
    std::size_t e = s.find_first_of("eE");
    bool negative_exponent = e != std::string_view::npos && e + 1 < s.size() && s[e + 1] == '-';
    if (!negative_exponent) return false;
    v = 0;
  } else if (r.ec != std::errc() || r.ptr != s.data() + s.size()) {
    return false;
  }
  *out = neg ? -v : v;
  return true;
}

}  // namespace

bool ParseGoUint(std::string_view s, std::uint64_t* out) {
  if (s.empty()) return false;
  unsigned base = 10;
  if (s[0] == '0') {
    char c1 = s.size() >= 3 ? static_cast<char>(s[1] | 0x20) : '\0';
    if (c1 == 'b') {
      base = 2;
      s.remove_prefix(2);
    } else if (c1 == 'o') {
      base = 8;
      s.remove_prefix(2);
    } else if (c1 == 'x') {
      base = 16;
      s.remove_prefix(2);
    } else {
      base = 8;
      s.remove_prefix(1);
    }
  }
  std::uint64_t n = 0;
  for (char c : s) {
    unsigned d;
    if (c >= '0' && c <= '9') {
      d = static_cast<unsigned>(c - '0');
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') {
      d = static_cast<unsigned>((c | 0x20) - 'a' + 10);
    } else {
      return false;
    }
    if (d >= base) return false;
    if (n > (std::numeric_limits<std::uint64_t>::max() - d) / base) return false;
    n = n * base + d;
  }
  *out = n;
  return true;
}

bool ParseGoInt(std::string_view s, std::int64_t* out) {
  if (s.empty()) return false;
  bool neg = false;
  if (s[0] == '+' || s[0] == '-') {
    neg = s[0] == '-';
    s.remove_prefix(1);
  }
  std::uint64_t u;
  if (!ParseGoUint(s, &u)) return false;
  constexpr std::uint64_t kCutoff = std::uint64_t{1} << 63;
  if (!neg && u >= kCutoff) return false;
  if (neg && u > kCutoff) return false;
  *out = neg ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u);
  return true;
}

ScalarValue ResolvePlainScalar(std::string_view text) {
  ScalarValue r;
  if (text.empty()) {
    r.kind = ScalarKind::kNull;
    return r;
  }
  for (const Exact& e : kExact) {
    if (text == e.text) {
      r.kind = e.kind;
      r.b = e.b;
      return r;
    }
  }
  if (text == ".nan" || text == ".NaN" || text == ".NAN") {
    r.kind = ScalarKind::kFloat;
    r.d = std::numeric_limits<double>::quiet_NaN();
    return r;
  }
  if (text == ".inf" || text == ".Inf" || text == ".INF" || text == "+.inf" || text == "+.Inf" ||
      text == "+.INF") {
    r.kind = ScalarKind::kFloat;
    r.d = std::numeric_limits<double>::infinity();
    return r;
  }
  if (text == "-.inf" || text == "-.Inf" || text == "-.INF") {
    r.kind = ScalarKind::kFloat;
    r.d = -std::numeric_limits<double>::infinity();
    return r;
  }
  char c = text[0];
  if (c == '.') {
    double d;
    if (MatchesDotFloat(text) && ParseDecimalFloat(text, &d)) {
      r.kind = ScalarKind::kFloat;
      r.d = d;
    }
    return r;
  }
  if (!(IsDigit(c) || c == '+' || c == '-')) return r;
  std::string plain;
  plain.reserve(text.size());
  for (char ch : text) {
    if (ch != '_') plain.push_back(ch);
  }
  std::int64_t i;
  if (ParseGoInt(plain, &i)) {
    r.kind = ScalarKind::kInt;
    r.i = i;
    return r;
  }
  std::uint64_t u;
  if (ParseGoUint(plain, &u)) {
    r.kind = ScalarKind::kUint;
    r.u = u;
    return r;
  }
  double d;
  if (MatchesYamlStyleFloat(plain) && ParseDecimalFloat(plain, &d)) {
    r.kind = ScalarKind::kFloat;
    r.d = d;
    return r;
  }
  return r;
}

std::string FormatGoFloat32(double value) {
  if (std::isnan(value)) return ".nan";
  if (std::isinf(value)) return value > 0 ? ".inf" : "-.inf";
  float f = static_cast<float>(value);
  if (std::isinf(f)) return f > 0 ? ".inf" : "-.inf";
  if (f == 0) return std::signbit(f) ? "-0" : "0";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
  bool neg = false;
  if (!sci.empty() && sci[0] == '-') {
    neg = true;
    sci.remove_prefix(1);
  }
  std::size_t e = sci.find('e');
  std::string digits;
  for (char ch : sci.substr(0, e)) {
    if (ch != '.') digits.push_back(ch);
  }
  int exp = std::atoi(std::string(sci.substr(e + 1)).c_str());
  std::string out = neg ? "-" : "";
  const int nd = static_cast<int>(digits.size());
  if (exp < -4 || exp >= 6) {
    out.push_back(digits[0]);
    if (nd > 1) {
      out.push_back('.');
      out.append(digits, 1);
    }
    out.push_back('e');
    out.push_back(exp < 0 ? '-' : '+');
    int ae = exp < 0 ? -exp : exp;
    if (ae < 10) out.push_back('0');
    out += std::to_string(ae);
    return out;
  }
  if (exp >= 0) {
    int int_digits = exp + 1;
    if (nd <= int_digits) {
      out += digits;
      out.append(static_cast<std::size_t>(int_digits - nd), '0');
    } else {
      out.append(digits, 0, static_cast<std::size_t>(int_digits));
      out.push_back('.');
      out.append(digits, static_cast<std::size_t>(int_digits));
    }
  } else {
    out += "0.";
    out.append(static_cast<std::size_t>(-exp - 1), '0');
    out += digits;
  }
  return out;
}

}  // namespace rc::apimachinery
