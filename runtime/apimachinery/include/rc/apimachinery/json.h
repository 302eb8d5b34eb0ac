// JSON body parsing with limits, compact serialization and small helpers over rapidjson values.
//
// Conventions shared by the whole apimachinery library:
//  - Values are rapidjson::Value / rapidjson::Document (UTF-8, MemoryPoolAllocator).
//  - Errors are rc::Status: kInvalidArgument for malformed input, kResourceExhausted for inputs
//    that exceed a limit (nesting depth, alias expansion, patch size, ...).
//  - Parse errors carry a position: "line L, column C" (both 1-based, column counted in bytes).
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "rc/base/status.h"

namespace rc::apimachinery {

// Default maximum nesting depth of arrays/objects accepted by the parsers.
inline constexpr int kDefaultMaxDepth = 100;

// Parses one JSON value (RFC 8259; NaN/Infinity, comments and trailing commas are rejected).
//  - Nesting deeper than max_depth (containers, `[[1]]` has depth 2) fails with kResourceExhausted;
//    parsing is iterative, so even 1e6 '[' cannot overflow the stack.
//  - Strings must be valid UTF-8 (invalid sequences are an error, not replaced).
//  - Empty / whitespace-only input, trailing data and embedded NUL bytes are errors.
//  - Duplicate object keys: the last occurrence wins (as Go's encoding/json), keeping the
//    position of the first one.
// Error message example: "invalid JSON at line 2, column 7 (offset 12): Missing a colon after a
// name of object member."
Result<rapidjson::Document> ParseJson(std::string_view body, int max_depth = kDefaultMaxDepth);

// Compact JSON serialization (no whitespace, object members in stored order).
std::string ToJson(const rapidjson::Value& value);
// Indented JSON (2 spaces), for human-facing output.
std::string ToPrettyJson(const rapidjson::Value& value);

// Deep equality. Objects compare as unordered maps; numbers compare by numeric value
// (1 == 1.0), as rapidjson's operator==.
bool JsonEqual(const rapidjson::Value& a, const rapidjson::Value& b);

// Maximum container nesting depth of a value (scalars: 0, `{}`: 1, `[[1]]`: 2). Iterative.
int JsonDepth(const rapidjson::Value& value);

// Removes duplicate object keys in place, recursively (last value wins, first position kept).
// Iterative. Parsers already do this; exposed for values built by hand.
void DeduplicateObjectKeys(rapidjson::Value& value, rapidjson::Document::AllocatorType& allocator);

// "line L, column C" (1-based) of a byte offset in text.
std::string LineColumn(std::string_view text, std::size_t offset);

// Convenience accessors (return nullptr / fallback when the member is absent or of another type).
const rapidjson::Value* FindMember(const rapidjson::Value& object, std::string_view name);
rapidjson::Value* FindMember(rapidjson::Value& object, std::string_view name);
std::string_view GetStringOr(const rapidjson::Value& object, std::string_view name,
                             std::string_view fallback = {});

// StringRef / copy helpers for string_view (rapidjson has no string_view support).
inline rapidjson::Value::StringRefType JsonRef(std::string_view s) {
  return rapidjson::StringRef(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}
inline rapidjson::Value JsonString(std::string_view s, rapidjson::Document::AllocatorType& a) {
  return rapidjson::Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a);
}
inline std::string_view JsonStringView(const rapidjson::Value& v) {
  return std::string_view(v.GetString(), v.GetStringLength());
}

}  // namespace rc::apimachinery
