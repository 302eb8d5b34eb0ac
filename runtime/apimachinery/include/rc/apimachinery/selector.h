// Label and field selectors, as k8s.io/apimachinery/pkg/labels and pkg/fields.
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rc/base/status.h"

namespace rc::apimachinery {

// Returns the value of a label / field, or nullopt when absent.
using ValueGetter = std::function<std::optional<std::string_view>(std::string_view key)>;

enum class SelectorOperator {
  kEquals,        // "="
  kDoubleEquals,  // "=="
  kNotEquals,     // "!="
  kIn,            // "in"
  kNotIn,         // "notin"
  kExists,        // "key"
  kDoesNotExist,  // "!key"
  kGreaterThan,   // ">" (label selectors only; values must be integers)
  kLessThan,      // "<"
};

const char* SelectorOperatorName(SelectorOperator op);

// ---------------------------------------------------------------------------------------------
// Label selectors.

struct LabelRequirement {
  std::string key;
  SelectorOperator op = SelectorOperator::kExists;
  // Sorted and de-duplicated for in/notin; exactly one for =, ==, !=, >, <; empty for (!)exists.
  std::vector<std::string> values;

  bool Matches(const ValueGetter& get_label) const;
  std::string ToString() const;
};

class LabelSelector {
 public:
  // Matches every object (the empty selector "" / {}).
  LabelSelector() = default;
  static LabelSelector Everything() { return LabelSelector(); }
  // Matches no object (a null / absent metav1.LabelSelector).
  static LabelSelector Nothing();

  // Validates the requirement like labels.NewRequirement (key: qualified name, values: label
  // values, arity per operator) and adds it (requirements stay sorted by key).
  Status Add(LabelRequirement requirement);

  // True when the selector has no requirements and matches everything.
  bool Empty() const { return !nothing_ && requirements_.empty(); }
  bool MatchesNothing() const { return nothing_; }
  const std::vector<LabelRequirement>& requirements() const { return requirements_; }

  bool Matches(const ValueGetter& get_label) const;
  // labels: a JSON object of string values (metadata.labels); nullptr / non-object = no labels.
  bool Matches(const rapidjson::Value* labels) const;

  // Canonical form as labels.Selector.String(): requirements sorted by key, comma-separated;
  // "" for Everything() and Nothing().
  std::string ToString() const;

 private:
  bool nothing_ = false;
  std::vector<LabelRequirement> requirements_;
};

// Parses the string syntax: "a=b", "a==b", "a!=b", "a in (x,y)", "a notin (x)", "a", "!a",
// "a>1", "a<1", comma-separated (AND), whitespace tolerant; "" selects everything.
// Errors are kInvalidArgument with the Kubernetes wording plus the byte position, e.g.
// "unable to parse requirement: found '', expected: identifier (at position 3)".
Result<LabelSelector> ParseLabelSelector(std::string_view selector);

// metav1.LabelSelector {matchLabels: {k: v}, matchExpressions: [{key, operator, values}]} with
// operators In, NotIn, Exists, DoesNotExist (metav1.LabelSelectorAsSelector):
//  - JSON null               → Nothing()   (a nil *LabelSelector selects nothing)
//  - {} (no requirements)    → Everything() (what workloads use: an empty selector matches all)
// Anything that is not an object/null, wrong member types, unknown operators and invalid
// keys/values are kInvalidArgument.
Result<LabelSelector> LabelSelectorFromJson(const rapidjson::Value& selector);
// nullptr (absent field) → Nothing().
Result<LabelSelector> LabelSelectorFromJson(const rapidjson::Value* selector);
// A map of label → value selecting by equality (Service / ReplicationController .spec.selector,
// labels.SelectorFromValidatedSet). An empty or null map → Everything(); callers that want
// "no selector selects nothing" (Services) must check that themselves.
Result<LabelSelector> LabelSelectorFromMap(const rapidjson::Value& match_labels);

// ---------------------------------------------------------------------------------------------
// Field selectors.

struct FieldRequirement {
  std::string field;
  SelectorOperator op = SelectorOperator::kEquals;  // kEquals ("=" and "==") or kNotEquals
  std::string value;                                // unescaped

  // An absent field reads as "" (fields.Set semantics).
  bool Matches(const ValueGetter& get_field) const;
  std::string ToString() const;  // field=value / field!=value, value escaped
};

class FieldSelector {
 public:
  FieldSelector() = default;

  bool Empty() const { return requirements_.empty(); }
  // Sorted by their text, as fields.ParseSelector does.
  const std::vector<FieldRequirement>& requirements() const { return requirements_; }
  bool Matches(const ValueGetter& get_field) const;
  // If the selector requires field == value (e.g. metadata.name), returns that value.
  std::optional<std::string> RequiresExactMatch(std::string_view field) const;
  std::string ToString() const;

  void Add(FieldRequirement requirement) { requirements_.push_back(std::move(requirement)); }

 private:
  std::vector<FieldRequirement> requirements_;
};

// "k=v", "k==v", "k!=v", comma-separated; values escape '\', ',' and '=' with a backslash.
// Whitespace is significant (as in Kubernetes). "" selects everything.
// Errors: "invalid selector: 'x'; can't understand 'x'",
// "invalid field selector: invalid escape sequence: \\x",
// "invalid field selector: unescaped character in value: '='".
Result<FieldSelector> ParseFieldSelector(std::string_view selector);

// fields.EscapeValue / UnescapeValue.
std::string EscapeFieldSelectorValue(std::string_view value);
Result<std::string> UnescapeFieldSelectorValue(std::string_view value);

}  // namespace rc::apimachinery
