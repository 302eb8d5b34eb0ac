#include "rc/apimachinery/selector.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/validation.h"

namespace rc::apimachinery {

namespace {

// ---- error helpers (k8s.io/apimachinery/pkg/util/validation/field formatting) ---------------

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out.push_back(c);
        }
    }
  }
  out += "\"";
  return out;
}

std::string FieldInvalid(const std::string& path, const std::string& value_repr,
                         const std::string& detail) {
  return path + ": Invalid value: " + value_repr + ": " + detail;
}

std::string Aggregate(const std::vector<std::string>& errs) {
  std::vector<std::string> unique;
  for (const auto& e : errs) {
    if (std::find(unique.begin(), unique.end(), e) == unique.end()) unique.push_back(e);
  }
  if (unique.size() == 1) return unique[0];
  std::string out = "[";
  for (std::size_t i = 0; i < unique.size(); ++i) {
    if (i > 0) out += ", ";
    out += unique[i];
  }
  return out + "]";
}

std::string ValuesRepr(const std::vector<std::string>& values) {
  std::string out = "[]string{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(values[i]);
  }
  return out + "}";
}

bool ParseInt64(std::string_view s, std::int64_t* out) {
  if (s.empty()) return false;
  std::string_view digits = s;
  bool neg = false;
  if (digits[0] == '+' || digits[0] == '-') {
    neg = digits[0] == '-';
    digits.remove_prefix(1);
  }
  if (digits.empty()) return false;
  std::uint64_t u = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), u, 10);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size()) return false;
  constexpr std::uint64_t kCutoff = std::uint64_t{1} << 63;
  if ((!neg && u >= kCutoff) || (neg && u > kCutoff)) return false;
  *out = neg ? static_cast<std::int64_t>(0 - u) : static_cast<std::int64_t>(u);
  return true;
}

std::vector<std::string> ValidateRequirement(const LabelRequirement& r) {
  std::vector<std::string> errs;
  if (auto e = IsQualifiedName(r.key); !e.empty()) {
    errs.push_back(FieldInvalid("key", Quote(r.key), JoinErrors(e)));
  }
  switch (r.op) {
    case SelectorOperator::kIn:
    case SelectorOperator::kNotIn:
      if (r.values.empty()) {
        errs.push_back(FieldInvalid("values", ValuesRepr(r.values),
                                    "for 'in', 'notin' operators, values set can't be empty"));
      }
      break;
    case SelectorOperator::kEquals:
    case SelectorOperator::kDoubleEquals:
    case SelectorOperator::kNotEquals:
      if (r.values.size() != 1) {
        errs.push_back(FieldInvalid("values", ValuesRepr(r.values),
                                    "exact-match compatibility requires one single value"));
      }
      break;
    case SelectorOperator::kExists:
    case SelectorOperator::kDoesNotExist:
      if (!r.values.empty()) {
        errs.push_back(FieldInvalid("values", ValuesRepr(r.values),
                                    "values set must be empty for exists and does not exist"));
      }
      break;
    case SelectorOperator::kGreaterThan:
    case SelectorOperator::kLessThan: {
      if (r.values.size() != 1) {
        errs.push_back(FieldInvalid("values", ValuesRepr(r.values),
                                    "for 'Gt', 'Lt' operators, exactly one value is required"));
      }
      for (std::size_t i = 0; i < r.values.size(); ++i) {
        std::int64_t v;
        if (!ParseInt64(r.values[i], &v)) {
          errs.push_back(FieldInvalid("values[" + std::to_string(i) + "]", Quote(r.values[i]),
                                      "for 'Gt', 'Lt' operators, the value must be an integer"));
        }
      }
      break;
    }
  }
  for (std::size_t i = 0; i < r.values.size(); ++i) {
    if (auto e = IsValidLabelValue(r.values[i]); !e.empty()) {
      errs.push_back(FieldInvalid("values[" + std::to_string(i) + "][" + r.key + "]",
                                  Quote(r.values[i]), JoinErrors(e)));
    }
  }
  return errs;
}

// ---- lexer / parser (k8s.io/apimachinery/pkg/labels/selector.go) --------------------------

enum class Tok {
  kError,
  kEnd,
  kClosedPar,
  kComma,
  kDoesNotExist,
  kDoubleEquals,
  kEquals,
  kGreaterThan,
  kIdentifier,
  kIn,
  kLessThan,
  kNotEquals,
  kNotIn,
  kOpenPar,
};

struct Item {
  Tok tok;
  std::string lit;
  std::size_t pos;
};

bool IsWhitespace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
bool IsSpecial(char c) {
  return c == '=' || c == '!' || c == '(' || c == ')' || c == ',' || c == '>' || c == '<';
}

bool SymbolToken(std::string_view s, Tok* tok) {
  static const std::pair<std::string_view, Tok> kTable[] = {
      {")", Tok::kClosedPar},     {",", Tok::kComma},    {"!", Tok::kDoesNotExist},
      {"==", Tok::kDoubleEquals}, {"=", Tok::kEquals},   {">", Tok::kGreaterThan},
      {"in", Tok::kIn},           {"<", Tok::kLessThan}, {"!=", Tok::kNotEquals},
      {"notin", Tok::kNotIn},     {"(", Tok::kOpenPar},
  };
  for (const auto& [text, t] : kTable) {
    if (text == s) {
      *tok = t;
      return true;
    }
  }
  return false;
}

std::vector<Item> Lex(std::string_view s) {
  std::vector<Item> items;
  std::size_t i = 0;
  while (true) {
    while (i < s.size() && IsWhitespace(s[i])) ++i;
    if (i >= s.size() || s[i] == '\0') {
      items.push_back({Tok::kEnd, "", i});
      return items;
    }
    std::size_t start = i;
    if (IsSpecial(s[i])) {
      std::string buffer;
      Tok last = Tok::kError;
      std::string last_lit;
      while (i < s.size() && IsSpecial(s[i])) {
        buffer.push_back(s[i]);
        Tok t;
        if (SymbolToken(buffer, &t)) {
          last = t;
          last_lit = buffer;
          ++i;
        } else if (last != Tok::kError) {
          break;
        } else {
          ++i;
        }
      }
      if (last == Tok::kError) {
        items.push_back({Tok::kError, "error expected: keyword found '" + buffer + "'", start});
      } else {
        items.push_back({last, last_lit, start});
      }
      continue;
    }
    while (i < s.size() && !IsWhitespace(s[i]) && !IsSpecial(s[i]) && s[i] != '\0') ++i;
    std::string lit(s.substr(start, i - start));
    Tok t = Tok::kIdentifier;
    if (lit == "in") t = Tok::kIn;
    if (lit == "notin") t = Tok::kNotIn;
    items.push_back({t, std::move(lit), start});
  }
}

enum class Ctx { kKeyAndOperator, kValues };

class Parser {
 public:
  explicit Parser(std::string_view s) : items_(Lex(s)) {}

  Result<std::vector<LabelRequirement>> Parse() {
    std::vector<LabelRequirement> reqs;
    while (true) {
      const Item& it = Lookahead(Ctx::kValues);
      Tok t = Kind(it, Ctx::kValues);
      if (t == Tok::kIdentifier || t == Tok::kDoesNotExist) {
        auto r = ParseRequirement();
        if (!r.ok()) {
          return Status::InvalidArgument("unable to parse requirement: " + r.status().message());
        }
        reqs.push_back(std::move(*r));
        const Item& next = Consume();
        Tok nt = Kind(next, Ctx::kValues);
        if (nt == Tok::kEnd) return reqs;
        if (nt == Tok::kComma) {
          const Item& after = Lookahead(Ctx::kValues);
          Tok at = Kind(after, Ctx::kValues);
          if (at != Tok::kIdentifier && at != Tok::kDoesNotExist) {
            return Err("found '" + after.lit + "', expected: identifier after ','", after);
          }
          continue;
        }
        return Err("found '" + next.lit + "', expected: ',' or 'end of string'", next);
      }
      if (t == Tok::kEnd) return reqs;
      return Err("found '" + it.lit + "', expected: !, identifier, or 'end of string'", it);
    }
  }

 private:
  static Tok Kind(const Item& it, Ctx ctx) {
    if (ctx == Ctx::kValues && (it.tok == Tok::kIn || it.tok == Tok::kNotIn))
      return Tok::kIdentifier;
    return it.tok;
  }
  const Item& Lookahead(Ctx) const { return items_[pos_]; }
  const Item& Consume() {
    const Item& it = items_[pos_];
    if (pos_ + 1 < items_.size()) ++pos_;
    return it;
  }
  static Status Err(const std::string& msg, const Item& at) {
    return Status::InvalidArgument(msg + " (at position " + std::to_string(at.pos) + ")");
  }
  // Errors inside a requirement: wrapped by Parse() with "unable to parse requirement: ".
  static Status ReqErr(const std::string& msg, const Item& at) {
    return Status::InvalidArgument(msg + " (at position " + std::to_string(at.pos) + ")");
  }

  Result<LabelRequirement> ParseRequirement() {
    LabelRequirement r;
    bool does_not_exist = false;
    const Item* key = &Consume();
    if (key->tok == Tok::kDoesNotExist) {
      does_not_exist = true;
      key = &Consume();
    }
    if (Kind(*key, Ctx::kValues) != Tok::kIdentifier) {
      return ReqErr("found '" + key->lit + "', expected: identifier", *key);
    }
    if (auto e = IsQualifiedName(key->lit); !e.empty()) {
      return ReqErr(FieldInvalid("key", Quote(key->lit), JoinErrors(e)), *key);
    }
    r.key = key->lit;
    Tok next = Kind(Lookahead(Ctx::kValues), Ctx::kValues);
    if (does_not_exist || next == Tok::kEnd || next == Tok::kComma) {
      // "!a=b" yields "!a"; the caller then rejects the unexpected "=".
      r.op = does_not_exist ? SelectorOperator::kDoesNotExist : SelectorOperator::kExists;
      return Finish(std::move(r), *key);
    }
    const Item& op = Consume();
    switch (Kind(op, Ctx::kKeyAndOperator)) {
      case Tok::kIn:
        r.op = SelectorOperator::kIn;
        break;
      case Tok::kNotIn:
        r.op = SelectorOperator::kNotIn;
        break;
      case Tok::kEquals:
        r.op = SelectorOperator::kEquals;
        break;
      case Tok::kDoubleEquals:
        r.op = SelectorOperator::kDoubleEquals;
        break;
      case Tok::kNotEquals:
        r.op = SelectorOperator::kNotEquals;
        break;
      case Tok::kGreaterThan:
        r.op = SelectorOperator::kGreaterThan;
        break;
      case Tok::kLessThan:
        r.op = SelectorOperator::kLessThan;
        break;
      default:
        return ReqErr("found '" + op.lit + "', expected: in, notin, =, ==, !=, gt, lt", op);
    }
    if (r.op == SelectorOperator::kIn || r.op == SelectorOperator::kNotIn) {
      RC_RETURN_IF_ERROR(ParseValues(&r.values));
    } else {
      RC_RETURN_IF_ERROR(ParseExactValue(&r.values));
    }
    return Finish(std::move(r), *key);
  }

  static Result<LabelRequirement> Finish(LabelRequirement r, const Item& at) {
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
    auto errs = ValidateRequirement(r);
    if (!errs.empty()) return ReqErr(Aggregate(errs), at);
    return r;
  }

  Status ParseValues(std::vector<std::string>* values) {
    const Item& open = Consume();
    if (Kind(open, Ctx::kValues) != Tok::kOpenPar)
      return ReqErr("found '" + open.lit + "' expected: '('", open);
    const Item& la = Lookahead(Ctx::kValues);
    Tok t = Kind(la, Ctx::kValues);
    if (t == Tok::kIdentifier || t == Tok::kComma) {
      RC_RETURN_IF_ERROR(ParseIdentifiersList(values));
      const Item& close = Consume();
      if (Kind(close, Ctx::kValues) != Tok::kClosedPar) {
        return ReqErr("found '" + close.lit + "', expected: ')'", close);
      }
      return Status::Ok();
    }
    if (t == Tok::kClosedPar) {
      Consume();
      values->push_back("");
      return Status::Ok();
    }
    return ReqErr("found '" + la.lit + "', expected: ',', ')' or identifier", la);
  }

  Status ParseIdentifiersList(std::vector<std::string>* values) {
    std::set<std::string> s;
    while (true) {
      const Item& it = Consume();
      Tok t = Kind(it, Ctx::kValues);
      if (t == Tok::kIdentifier) {
        s.insert(it.lit);
        const Item& la = Lookahead(Ctx::kValues);
        Tok lt = Kind(la, Ctx::kValues);
        if (lt == Tok::kComma) continue;
        if (lt == Tok::kClosedPar) break;
        return ReqErr("found '" + la.lit + "', expected: ',' or ')'", la);
      }
      if (t == Tok::kComma) {
        if (s.empty()) s.insert("");  // "(,"
        Tok lt = Kind(Lookahead(Ctx::kValues), Ctx::kValues);
        if (lt == Tok::kClosedPar) {  // ",)"
          s.insert("");
          break;
        }
        if (lt == Tok::kComma) {  // ",,"
          Consume();
          s.insert("");
        }
        continue;
      }
      return ReqErr("found '" + it.lit + "', expected: ',', or identifier", it);
    }
    values->assign(s.begin(), s.end());
    return Status::Ok();
  }

  Status ParseExactValue(std::vector<std::string>* values) {
    Tok lt = Kind(Lookahead(Ctx::kValues), Ctx::kValues);
    if (lt == Tok::kEnd || lt == Tok::kComma) {
      values->push_back("");
      return Status::Ok();
    }
    const Item& it = Consume();
    if (Kind(it, Ctx::kValues) == Tok::kIdentifier) {
      values->push_back(it.lit);
      return Status::Ok();
    }
    return ReqErr("found '" + it.lit + "', expected: identifier", it);
  }

  std::vector<Item> items_;
  std::size_t pos_ = 0;
};

// ---- field selectors -----------------------------------------------------------------------

std::vector<std::string_view> SplitTerms(std::string_view s) {
  std::vector<std::string_view> terms;
  if (s.empty()) return terms;
  std::size_t start = 0;
  bool in_slash = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (in_slash) {
      in_slash = false;
    } else if (c == '\\') {
      in_slash = true;
    } else if (c == ',') {
      terms.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  terms.push_back(s.substr(start));
  return terms;
}

bool SplitTerm(std::string_view term, std::string_view* lhs, std::string_view* op,
               std::string_view* rhs) {
  static constexpr std::string_view kOps[] = {"!=", "==", "="};
  for (std::size_t i = 0; i < term.size(); ++i) {
    std::string_view rest = term.substr(i);
    for (std::string_view o : kOps) {
      if (rest.substr(0, o.size()) == o) {
        *lhs = term.substr(0, i);
        *op = o;
        *rhs = term.substr(i + o.size());
        return true;
      }
    }
  }
  return false;
}

}  // namespace

const char* SelectorOperatorName(SelectorOperator op) {
  switch (op) {
    case SelectorOperator::kEquals:
      return "=";
    case SelectorOperator::kDoubleEquals:
      return "==";
    case SelectorOperator::kNotEquals:
      return "!=";
    case SelectorOperator::kIn:
      return "in";
    case SelectorOperator::kNotIn:
      return "notin";
    case SelectorOperator::kExists:
      return "exists";
    case SelectorOperator::kDoesNotExist:
      return "!";
    case SelectorOperator::kGreaterThan:
      return "gt";
    case SelectorOperator::kLessThan:
      return "lt";
  }
  return "?";
}

// ---- LabelRequirement / LabelSelector ----------------------------------------------------------

bool LabelRequirement::Matches(const ValueGetter& get_label) const {
  std::optional<std::string_view> v = get_label(key);
  auto has_value = [&](std::string_view x) {
    return std::find(values.begin(), values.end(), x) != values.end();
  };
  switch (op) {
    case SelectorOperator::kIn:
    case SelectorOperator::kEquals:
    case SelectorOperator::kDoubleEquals:
      return v.has_value() && has_value(*v);
    case SelectorOperator::kNotIn:
    case SelectorOperator::kNotEquals:
      return !v.has_value() || !has_value(*v);
    case SelectorOperator::kExists:
      return v.has_value();
    case SelectorOperator::kDoesNotExist:
      return !v.has_value();
    case SelectorOperator::kGreaterThan:
    case SelectorOperator::kLessThan: {
      if (!v.has_value() || values.size() != 1) return false;
      std::int64_t lhs, rhs;
      if (!ParseInt64(*v, &lhs) || !ParseInt64(values[0], &rhs)) return false;
      return op == SelectorOperator::kGreaterThan ? lhs > rhs : lhs < rhs;
    }
  }
  return false;
}

std::string LabelRequirement::ToString() const {
  std::string out;
  if (op == SelectorOperator::kDoesNotExist) out += "!";
  out += key;
  switch (op) {
    case SelectorOperator::kEquals:
      out += "=";
      break;
    case SelectorOperator::kDoubleEquals:
      out += "==";
      break;
    case SelectorOperator::kNotEquals:
      out += "!=";
      break;
    case SelectorOperator::kIn:
      out += " in ";
      break;
    case SelectorOperator::kNotIn:
      out += " notin ";
      break;
    case SelectorOperator::kGreaterThan:
      out += ">";
      break;
    case SelectorOperator::kLessThan:
      out += "<";
      break;
    case SelectorOperator::kExists:
    case SelectorOperator::kDoesNotExist:
      return out;
  }
  bool parens = op == SelectorOperator::kIn || op == SelectorOperator::kNotIn;
  if (parens) out += "(";
  std::vector<std::string> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (std::size_t i = 0; i < sorted.size(); ++i) {
    if (i > 0) out += ",";
    out += sorted[i];
  }
  if (parens) out += ")";
  return out;
}

LabelSelector LabelSelector::Nothing() {
  LabelSelector s;
  s.nothing_ = true;
  return s;
}

Status LabelSelector::Add(LabelRequirement requirement) {
  if (requirement.op == SelectorOperator::kIn || requirement.op == SelectorOperator::kNotIn) {
    std::sort(requirement.values.begin(), requirement.values.end());
    requirement.values.erase(std::unique(requirement.values.begin(), requirement.values.end()),
                             requirement.values.end());
  }
  auto errs = ValidateRequirement(requirement);
  if (!errs.empty()) return Status::InvalidArgument(Aggregate(errs));
  // Keep sorted by key; equal keys stay in insertion order.
  auto pos = std::upper_bound(
      requirements_.begin(), requirements_.end(), requirement.key,
      [](const std::string& key, const LabelRequirement& r) { return key < r.key; });
  requirements_.insert(pos, std::move(requirement));
  return Status::Ok();
}

bool LabelSelector::Matches(const ValueGetter& get_label) const {
  if (nothing_) return false;
  for (const auto& r : requirements_) {
    if (!r.Matches(get_label)) return false;
  }
  return true;
}

bool LabelSelector::Matches(const rapidjson::Value* labels) const {
  if (nothing_) return false;
  if (requirements_.empty()) return true;
  ValueGetter getter = [labels](std::string_view key) -> std::optional<std::string_view> {
    if (labels == nullptr || !labels->IsObject()) return std::nullopt;
    const rapidjson::Value* v = FindMember(*labels, key);
    if (v == nullptr || !v->IsString()) return std::nullopt;
    return JsonStringView(*v);
  };
  return Matches(getter);
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (std::size_t i = 0; i < requirements_.size(); ++i) {
    if (i > 0) out += ",";
    out += requirements_[i].ToString();
  }
  return out;
}

Result<LabelSelector> ParseLabelSelector(std::string_view selector) {
  Parser parser(selector);
  auto reqs = parser.Parse();
  if (!reqs.ok()) return reqs.status();
  LabelSelector s;
  for (auto& r : *reqs) {
    // Already validated by the parser.
    Status st = s.Add(std::move(r));
    if (!st.ok()) return st;
  }
  return s;
}

Result<LabelSelector> LabelSelectorFromJson(const rapidjson::Value* selector) {
  if (selector == nullptr) return LabelSelector::Nothing();
  return LabelSelectorFromJson(*selector);
}

Result<LabelSelector> LabelSelectorFromJson(const rapidjson::Value& selector) {
  if (selector.IsNull()) return LabelSelector::Nothing();
  if (!selector.IsObject()) return Status::InvalidArgument("label selector must be an object");
  LabelSelector out;
  const rapidjson::Value* match_labels = FindMember(selector, "matchLabels");
  if (match_labels != nullptr && !match_labels->IsNull()) {
    if (!match_labels->IsObject())
      return Status::InvalidArgument("matchLabels: must be a map of strings");
    for (auto it = match_labels->MemberBegin(); it != match_labels->MemberEnd(); ++it) {
      if (!it->value.IsString()) {
        return Status::InvalidArgument("matchLabels: value of " + Quote(JsonStringView(it->name)) +
                                       " must be a string");
      }
      LabelRequirement r;
      r.key = std::string(JsonStringView(it->name));
      r.op = SelectorOperator::kEquals;
      r.values.emplace_back(JsonStringView(it->value));
      RC_RETURN_IF_ERROR(out.Add(std::move(r)));
    }
  }
  const rapidjson::Value* exprs = FindMember(selector, "matchExpressions");
  if (exprs != nullptr && !exprs->IsNull()) {
    if (!exprs->IsArray()) return Status::InvalidArgument("matchExpressions: must be a list");
    for (rapidjson::SizeType i = 0; i < exprs->Size(); ++i) {
      const rapidjson::Value& e = (*exprs)[i];
      std::string where = "matchExpressions[" + std::to_string(i) + "]";
      if (!e.IsObject()) return Status::InvalidArgument(where + ": must be an object");
      const rapidjson::Value* key = FindMember(e, "key");
      const rapidjson::Value* op = FindMember(e, "operator");
      const rapidjson::Value* values = FindMember(e, "values");
      if (key != nullptr && !key->IsString())
        return Status::InvalidArgument(where + ".key: must be a string");
      if (op == nullptr || !op->IsString())
        return Status::InvalidArgument(where + ".operator: must be a string");
      LabelRequirement r;
      r.key = key != nullptr ? std::string(JsonStringView(*key)) : std::string();
      std::string_view opname = JsonStringView(*op);
      if (opname == "In") {
        r.op = SelectorOperator::kIn;
      } else if (opname == "NotIn") {
        r.op = SelectorOperator::kNotIn;
      } else if (opname == "Exists") {
        r.op = SelectorOperator::kExists;
      } else if (opname == "DoesNotExist") {
        r.op = SelectorOperator::kDoesNotExist;
      } else {
        return Status::InvalidArgument(Quote(opname) + " is not a valid label selector operator");
      }
      if (values != nullptr && !values->IsNull()) {
        if (!values->IsArray())
          return Status::InvalidArgument(where + ".values: must be a list of strings");
        for (const auto& v : values->GetArray()) {
          if (!v.IsString())
            return Status::InvalidArgument(where + ".values: must be a list of strings");
          r.values.emplace_back(JsonStringView(v));
        }
      }
      RC_RETURN_IF_ERROR(out.Add(std::move(r)));
    }
  }
  return out;
}

Result<LabelSelector> LabelSelectorFromMap(const rapidjson::Value& match_labels) {
  LabelSelector out;
  if (match_labels.IsNull()) return out;
  if (!match_labels.IsObject()) return Status::InvalidArgument("selector must be a map of strings");
  for (auto it = match_labels.MemberBegin(); it != match_labels.MemberEnd(); ++it) {
    if (!it->value.IsString()) {
      return Status::InvalidArgument("selector: value of " + Quote(JsonStringView(it->name)) +
                                     " must be a string");
    }
    LabelRequirement r;
    r.key = std::string(JsonStringView(it->name));
    r.op = SelectorOperator::kEquals;
    r.values.emplace_back(JsonStringView(it->value));
    RC_RETURN_IF_ERROR(out.Add(std::move(r)));
  }
  return out;
}

// ---- FieldRequirement / FieldSelector ------------------------------------------------------

std::string EscapeFieldSelectorValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\' || c == ',' || c == '=') out.push_back('\\');
    out.push_back(c);
  }
  return out;
}

Result<std::string> UnescapeFieldSelectorValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  bool in_slash = false;
  for (char c : value) {
    if (in_slash) {
      if (c == '\\' || c == ',' || c == '=') {
        out.push_back(c);
      } else {
        return Status::InvalidArgument(
            std::string("invalid field selector: invalid escape sequence: \\") + c);
      }
      in_slash = false;
      continue;
    }
    if (c == '\\') {
      in_slash = true;
    } else if (c == ',' || c == '=') {
      return Status::InvalidArgument(
          std::string("invalid field selector: unescaped character in value: '") + c + "'");
    } else {
      out.push_back(c);
    }
  }
  if (in_slash)
    return Status::InvalidArgument("invalid field selector: invalid escape sequence: \\");
  return out;
}

bool FieldRequirement::Matches(const ValueGetter& get_field) const {
  std::string_view v = get_field(field).value_or(std::string_view());
  return op == SelectorOperator::kNotEquals ? v != value : v == value;
}

std::string FieldRequirement::ToString() const {
  return field + (op == SelectorOperator::kNotEquals ? "!=" : "=") +
         EscapeFieldSelectorValue(value);
}

bool FieldSelector::Matches(const ValueGetter& get_field) const {
  for (const auto& r : requirements_) {
    if (!r.Matches(get_field)) return false;
  }
  return true;
}

std::optional<std::string> FieldSelector::RequiresExactMatch(std::string_view field) const {
  for (const auto& r : requirements_) {
    if (r.field == field && r.op != SelectorOperator::kNotEquals) return r.value;
  }
  return std::nullopt;
}

std::string FieldSelector::ToString() const {
  std::string out;
  for (std::size_t i = 0; i < requirements_.size(); ++i) {
    if (i > 0) out += ",";
    out += requirements_[i].ToString();
  }
  return out;
}

Result<FieldSelector> ParseFieldSelector(std::string_view selector) {
  std::vector<std::string_view> parts = SplitTerms(selector);
  std::sort(parts.begin(), parts.end());
  FieldSelector out;
  for (std::string_view part : parts) {
    if (part.empty()) continue;
    std::string_view lhs, op, rhs;
    if (!SplitTerm(part, &lhs, &op, &rhs)) {
      return Status::InvalidArgument("invalid selector: '" + std::string(selector) +
                                     "'; can't understand '" + std::string(part) + "'");
    }
    auto value = UnescapeFieldSelectorValue(rhs);
    if (!value.ok()) return value.status();
    FieldRequirement r;
    r.field = std::string(lhs);
    r.op = op == "!=" ? SelectorOperator::kNotEquals : SelectorOperator::kEquals;
    r.value = std::move(*value);
    out.Add(std::move(r));
  }
  return out;
}

}  // namespace rc::apimachinery
