// Name and label validation with Kubernetes' exact error strings
// (k8s.io/apimachinery/pkg/util/validation). Each function returns the list of problems; an
// empty vector means valid.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rc::apimachinery {

inline constexpr std::size_t kDNS1123LabelMaxLength = 63;
inline constexpr std::size_t kDNS1123SubdomainMaxLength = 253;
inline constexpr std::size_t kDNS1035LabelMaxLength = 63;
inline constexpr std::size_t kQualifiedNameMaxLength = 63;
inline constexpr std::size_t kLabelValueMaxLength = 63;

// Object names of most resources, label key prefixes: lower-case RFC 1123 subdomain, ≤ 253.
std::vector<std::string> IsDNS1123Subdomain(std::string_view value);
// Namespace names and many others: lower-case RFC 1123 label, ≤ 63.
std::vector<std::string> IsDNS1123Label(std::string_view value);
// Service names: RFC 1035 label (starts with a letter), ≤ 63.
std::vector<std::string> IsDNS1035Label(std::string_view value);
// Label / annotation keys: [prefix/]name, prefix a DNS-1123 subdomain, name ≤ 63 of
// [A-Za-z0-9-_.] starting and ending alphanumeric.
std::vector<std::string> IsQualifiedName(std::string_view value);
// Label values: empty or ≤ 63 of [A-Za-z0-9-_.] starting and ending alphanumeric.
std::vector<std::string> IsValidLabelValue(std::string_view value);
// Names used as a path segment: not "." / "..", no '/' or '%' (path.IsValidPathSegmentName).
std::vector<std::string> IsValidPathSegmentName(std::string_view value);
// Named container/service ports (IANA_SVC_NAME).
std::vector<std::string> IsValidPortName(std::string_view value);
// 1..65535.
std::vector<std::string> IsValidPortNum(std::int64_t port);
// ConfigMap / Secret data keys.
std::vector<std::string> IsConfigMapKey(std::string_view value);
// C identifiers ([A-Za-z_][A-Za-z0-9_]*).
std::vector<std::string> IsCIdentifier(std::string_view value);

// Message helpers (validation.MaxLenError, RegexError, EmptyError, InclusiveRangeError).
std::string MaxLenError(std::size_t length);
std::string RegexError(std::string_view msg, std::string_view regex,
                       const std::vector<std::string_view>& examples = {});
std::string EmptyError();
std::string InclusiveRangeError(std::int64_t lo, std::int64_t hi);

// Joins errors like Kubernetes does inside one field error ("; " separated).
std::string JoinErrors(const std::vector<std::string>& errors, std::string_view sep = "; ");

}  // namespace rc::apimachinery
