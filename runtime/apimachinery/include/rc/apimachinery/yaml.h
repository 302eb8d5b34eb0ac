// YAML → JSON conversion, compatible with what the Kubernetes API server does for
// application/yaml bodies (sigs.k8s.io/yaml, i.e. go-yaml v2 resolution rules + JSON conversion).
//
// Scalar resolution (plain, untagged scalars only; quoted and block scalars always stay strings):
//  - null:  "", ~, null, Null, NULL
//  - bool:  true/True/TRUE/false/False/FALSE and the YAML 1.1 forms Kubernetes accepts too:
//           y/Y/yes/Yes/YES/n/N/no/No/NO/on/On/ON/off/Off/OFF
//  - int:   Go strconv.ParseInt(s, 0, 64) after removing '_': 42, -7, +3, 0x1F, 0o17, 0b101,
//           and a leading 0 means octal (0755 == 493, as in Kubernetes defaultMode).
//           Values beyond int64 become uint64, then float.
//  - float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? ; integral floats are emitted
//           as JSON integers (Go's json.Marshal prints float64(1) as 1). .inf/.nan are errors
//           (not representable in JSON).
//  - anything else (including timestamps) is a string.
//  - explicit tags: !!str / ! force a string; !!int, !!float, !!bool, !!null must resolve to
//    that type; other tags are ignored.
// Map keys are converted to strings like sigs.k8s.io/yaml: ints in decimal, bools as
// "true"/"false", floats with Go's %g (32-bit); null or collection keys are errors.
// Anchors/aliases are expanded (self-referencing aliases and excessive expansion — "billion
// laughs" — are errors); "<<" merge keys are supported (explicit keys win).
// Duplicate keys: last wins. Input must be UTF-8 (an optional BOM is skipped).
// Nesting deeper than max_depth is rejected with kResourceExhausted *before* the parser recurses
// further (the event handler aborts the parse), so pathological input cannot overflow the stack.
// Errors: kInvalidArgument "yaml: line L, column C: <reason>".
#pragma once

#include <rapidjson/document.h>

#include <string_view>
#include <vector>

#include "rc/apimachinery/json.h"
#include "rc/base/status.h"

namespace rc::apimachinery {

// Converts a single YAML document. Empty input (or only comments / "---") yields a Document
// holding null, like sigs.k8s.io/yaml. More than one non-empty document is an error.
Result<rapidjson::Document> ParseYamlToJson(std::string_view body,
                                            int max_depth = kDefaultMaxDepth);

// Converts a multi-document stream ("---" separated). Empty (null) documents are skipped, as
// kubectl does.
Result<std::vector<rapidjson::Document>> ParseYamlStream(std::string_view body,
                                                         int max_depth = kDefaultMaxDepth);

// Emits a JSON value as block-style YAML (keys in stored order, strings quoted when needed so that
// ParseYamlToJson(ToYaml(v)) == v). Used for application/yaml responses.
std::string ToYaml(const rapidjson::Value& value);

}  // namespace rc::apimachinery
