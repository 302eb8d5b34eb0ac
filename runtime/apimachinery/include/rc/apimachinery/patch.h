// PATCH support: JSON merge patch (RFC 7386), JSON patch (RFC 6902) and Kubernetes strategic
// merge patch.
//
// All functions are transactional: on error the target is left unchanged. The patch is only read
// and may live in any document (also the target's), it is never modified. Every error is
// kInvalidArgument (or kResourceExhausted for the JSON patch limits) with a message that says
// which operation / path failed.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rc/base/status.h"

namespace rc::apimachinery {

// ---------------------------------------------------------------------------------------------
// RFC 7386 JSON merge patch: objects merge recursively, null deletes a member, any non-object
// patch replaces the target. Nulls inside newly added objects are dropped (per the RFC).
Status ApplyMergePatch(rapidjson::Value& target, const rapidjson::Value& patch,
                       rapidjson::Document::AllocatorType& allocator);

// ---------------------------------------------------------------------------------------------
// RFC 6902 JSON patch: an array of {op, path, [from], [value]} with op in add, remove, replace,
// move, copy, test. JSON pointers (RFC 6901) with ~0 / ~1 escapes; "-" appends for add.
// Array indices must be canonical decimal (no sign, no leading zeros).
struct JsonPatchOptions {
  // Kubernetes rejects patches with more operations ("The allowed maximum operations in a JSON
  // patch is 10000").
  std::size_t max_operations = 10000;
  // Total number of JSON nodes that copy operations may create (guards against doubling bombs).
  std::size_t max_copied_nodes = 1u << 20;
};
// Errors look like: `json patch operation 2 ("replace" at "/spec/replicas"): path does not exist`
// or for a failed test: `json patch operation 0 ("test" at "/a"): test failed: value is 1`.
Status ApplyJsonPatch(rapidjson::Document& doc, const rapidjson::Value& patch,
                      const JsonPatchOptions& options = {});

// Parses a JSON pointer ("" is the whole document) into unescaped reference tokens.
Result<std::vector<std::string>> ParseJsonPointer(std::string_view pointer);
// Escapes one reference token (~ → ~0, / → ~1).
std::string EscapeJsonPointerToken(std::string_view token);

// ---------------------------------------------------------------------------------------------
// Strategic merge patch.

// Patch strategy of a list field. merge == false means "replace" (the default for lists).
// merge_key is empty for primitive lists (set union, e.g. finalizers).
struct ListStrategy {
  bool merge = false;
  std::string merge_key;

  bool operator==(const ListStrategy&) const = default;
};

// Answers the list strategy for a field, given the field names from the object root without list
// indices, e.g. {"spec","template","spec","containers"} or {"spec","containers","env"}.
class PatchSchema {
 public:
  virtual ~PatchSchema() = default;
  virtual std::optional<ListStrategy> ForPath(std::span<const std::string> path) const = 0;
};

// A PatchSchema backed by a table of {path suffix, strategy}. A suffix matches when it equals the
// last N segments of the path; "*" in a suffix matches any single segment. The longest matching
// suffix wins (ties: first entry). Lists that match nothing are replaced.
class TablePatchSchema : public PatchSchema {
 public:
  struct Entry {
    std::vector<std::string> suffix;
    ListStrategy strategy;
  };

  TablePatchSchema() = default;
  explicit TablePatchSchema(std::vector<Entry> entries);

  void Add(Entry entry);
  const std::vector<Entry>& entries() const { return entries_; }

  std::optional<ListStrategy> ForPath(std::span<const std::string> path) const override;

 private:
  std::vector<Entry> entries_;
};

// The table for well-known built-in Kubernetes types (see KubernetesPatchEntries()).
const PatchSchema& KubernetesPatchSchema();
// The entries behind KubernetesPatchSchema(), to extend into a bigger TablePatchSchema.
const std::vector<TablePatchSchema::Entry>& KubernetesPatchEntries();
// A schema without list strategies: every list is replaced (directives are still honoured).
const PatchSchema& EmptyPatchSchema();

// Applies a strategic merge patch the way the API server does
// (k8s.io/apimachinery/pkg/util/strategicpatch StrategicMergeMapPatch, i.e. MergeParallelList
// and IgnoreUnmatchedNulls):
//  - maps merge recursively, null deletes the key;
//  - lists with strategy merge + merge key are merged element-wise by the key (a patch element
//    with a known key merges into the existing one, unknown ones are added); lists of primitives
//    with strategy merge are set-unioned; all other lists are replaced;
//  - order: $setElementOrder/<list> wins; otherwise patch items keep the patch order and
//    server-only items are interleaved by their position in the live list, exactly as
//    Kubernetes does (so an item that is new to the live list ends up before the live items it
//    is compared with, unless $setElementOrder says otherwise — kubectl always sends it);
//  - directives: "$patch": "replace" | "delete" | "merge" on a map, {"<key>": v, "$patch":
//    "delete"} and {"$patch": "replace"} inside a merge list, "$setElementOrder/<list>",
//    "$deleteFromPrimitiveList/<list>", "$retainKeys". Directives never appear in the result
//    (also not from values that are new to the target).
// target and patch must be objects.
Status ApplyStrategicMergePatch(rapidjson::Value& target, const rapidjson::Value& patch,
                                rapidjson::Document::AllocatorType& allocator,
                                const PatchSchema& schema);

}  // namespace rc::apimachinery
