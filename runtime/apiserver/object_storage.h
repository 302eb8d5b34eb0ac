// Kubernetes object semantics on top of the Store (internal to the API server): keys, metadata
// (uid, generation, resourceVersion, finalizers, deletion), optimistic concurrency, lists with
// selectors and continue tokens.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api_error.h"
#include "json_util.h"
#include "rc/apimachinery/selector.h"
#include "rc/apiserver/registry.h"
#include "rc/store/store.h"

namespace rc::apiserver {

class AllocationPlan;
class ServiceAllocator;

// Label and field selectors of a LIST or WATCH.
struct ListFilter {
  std::optional<apimachinery::LabelSelector> labels;
  std::optional<apimachinery::FieldSelector> fields;
  bool Empty() const { return !labels && !fields; }
  bool Matches(const JsonValue& obj) const;
};

// Parses labelSelector / fieldSelector query values; fields must be supported by `r`.
ApiResult<ListFilter> ParseListFilter(const ResourceInfo& r, const std::string& label_selector,
                                      const std::string& field_selector);

// The value a field selector compares for `field` ("" when absent, like Kubernetes).
std::string FieldValue(const JsonValue& obj, std::string_view field);

struct ListOptions {
  ListFilter filter;
  int64_t limit = 0;
  std::string continue_token;
  std::string resource_version;        // "", "0", or a revision
  std::string resource_version_match;  // "", "Exact", "NotOlderThan"
};

struct ListResult {
  std::vector<std::string> items;  // object JSON with resourceVersion
  int64_t revision = 0;
  std::string continue_token;
  std::optional<int64_t> remaining;
};

// kBinding (pods/binding): a full-object write whose mutator may also set status (PodScheduled).
enum class Subresource { kNone, kStatus, kFinalize, kBinding };

struct DeleteOptions {
  std::string propagation_policy;  // "", Background, Foreground, Orphan
  std::optional<int64_t> grace_period_seconds;
  std::string precondition_uid;
  std::string precondition_resource_version;
  bool dry_run = false;
};

class ObjectStorage {
 public:
  explicit ObjectStorage(store::Store* store) : store_(store) {}

  static std::string Key(const ResourceInfo& r, const std::string& ns, const std::string& name);
  // The key prefix of every object of `r` in `ns` (all namespaces if empty); ends with '/'.
  static std::string Prefix(const ResourceInfo& r, const std::string& ns);
  // Serialized for storage: apiVersion, kind, metadata first; resourceVersion dropped.
  static std::string Encode(const JsonValue& obj);
  // Stored bytes with "resourceVersion" spliced into the top-level metadata.
  static std::string WithResourceVersion(const std::string& stored, int64_t revision);

  // The object's JSON (with resourceVersion).
  ApiResult<std::string> Get(const ResourceInfo& r, const std::string& ns, const std::string& name);
  ApiResult<std::string> Create(const ResourceInfo& r, const std::string& ns, JsonDoc& obj, bool dry_run);
  // Read-modify-write with optimistic concurrency: `mutate` turns a copy of the current object
  // (with its resourceVersion) into the desired one. A resourceVersion left in the result is a
  // precondition (409 if stale); otherwise concurrent writers are retried transparently.
  using Mutator = std::function<std::optional<ApiError>(JsonDoc& object)>;
  ApiResult<std::string> Update(const ResourceInfo& r, const std::string& ns, const std::string& name,
                                Subresource sub, const Mutator& mutate, bool dry_run);
  // Deletes, or marks for deletion while finalizers (or a graceful pod shutdown) remain.
  ApiResult<std::string> Delete(const ResourceInfo& r, const std::string& ns, const std::string& name,
                                const DeleteOptions& options);
  ApiResult<ListResult> List(const ResourceInfo& r, const std::string& ns, const ListOptions& options);

  store::Store* store() { return store_; }
  // Services get their clusterIP/nodePorts from `allocator` from now on (null: none); the
  // reservations are written in the Services' own Txns (service_allocator.h). Set before serving.
  void SetServiceAllocator(ServiceAllocator* allocator) { services_ = allocator; }

 private:
  // Writes `next` over `current` (mod revision `mod_revision`) or deletes it when its last
  // finalizer went away; nullopt = lost a race, retry.
  std::optional<ApiResult<std::string>> Commit(const ResourceInfo& r, const std::string& key,
                                               int64_t mod_revision, const std::string& current_bytes,
                                               JsonDoc& next, bool dry_run, AllocationPlan* plan);

  store::Store* store_;
  ServiceAllocator* services_ = nullptr;
};

std::string Base64Encode(std::string_view in);
std::optional<std::string> Base64Decode(std::string_view in);

}  // namespace rc::apiserver
