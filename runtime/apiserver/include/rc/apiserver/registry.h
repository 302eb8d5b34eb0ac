// The resource registry: what the API server serves, built from the compiled DSL resource
// declarations (resources/*.rc for the built-in types, `rcd --resources DIR` for the rest).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "rc/apimachinery/patch.h"
#include "rc/schema/schema.h"

namespace rc::apiserver {

// A printer column of the server-side Table view (kubectl get).
struct ColumnInfo {
  std::string name;         // "NAME", "READY", ...
  std::string type;         // "string", "integer", "date", ...
  std::string format;       // "name" for the NAME column, else empty
  std::string description;
  int priority = 0;         // 0: always shown; 1: only with -o wide
  // Where the value comes from: a dotted JSON path into the object ("spec.replicas",
  // "metadata.name"), or a named computation starting with '$' ("$age", "$pod.ready", ...).
  std::string source;
  // A compiled DSL column: object JSON + now (unix seconds) -> cell text. Used when set.
  std::function<std::string(const std::string& object_json, int64_t now_seconds)> compute;
  std::function<std::string(const void* object, int64_t now_seconds)> compute_value;  // same, parsed
};

struct ResourceInfo {
  std::string group;     // "" for core
  std::string version;   // "v1"
  std::string kind;      // "Deployment"
  std::string plural;    // "deployments"
  std::string singular;  // "deployment"
  std::vector<std::string> short_names;
  std::vector<std::string> categories;  // e.g. "all"
  bool namespaced = true;
  bool has_status = false;  // a /status subresource
  bool has_scale = false;   // a /scale subresource (autoscaling/v1 Scale)
  std::string scale_spec_replicas_path = "spec.replicas";
  std::string scale_status_replicas_path = "status.replicas";
  std::string scale_selector_path = "spec.selector";  // a LabelSelector object
  bool name_is_dns_label = false;  // names must be RFC 1123 labels (else subdomains)
  std::vector<std::string> field_selectors;  // supported beyond metadata.name/namespace
  std::vector<ColumnInfo> columns;           // NAME first; AGE included where wanted
  // The compiled DSL schema this resource was built from (validation, defaulting, OpenAPI);
  // null for the hand-written built-in table.
  std::shared_ptr<const schema::ResourceSchema> schema;
  // Strategic-merge-patch list strategies: from the schema's list keys (schema::PatchSchemaFor,
  // with the k8s.io/api table as fallback for the built-in types); null: the k8s.io/api table.
  std::shared_ptr<const apimachinery::PatchSchema> patch_schema;
  std::string origin;  // who installed it: "builtin", or a resources directory

  std::string GroupVersion() const { return group.empty() ? version : group + "/" + version; }
  std::string ListKind() const { return kind + "List"; }
  // "deployments.apps" or "pods": how Kubernetes names the resource in messages.
  std::string QualifiedResource() const { return group.empty() ? plural : plural + "." + group; }
  // "Deployment.apps": the kind qualified by group, as in 422 messages.
  std::string QualifiedKind() const { return group.empty() ? kind : kind + "." + group; }
  // The strategic-merge-patch strategies to merge this resource's objects with.
  const apimachinery::PatchSchema& PatchStrategies() const;
};

// Thread-safe: resources can be installed and removed while requests are served. Entries are never
// freed (a replaced or removed entry moves to a graveyard), so a `const ResourceInfo*` obtained
// earlier stays valid for in-flight requests and watches.
class ResourceRegistry {
 public:
  ResourceRegistry() = default;
  ResourceRegistry(ResourceRegistry&& other) noexcept;
  ResourceRegistry& operator=(ResourceRegistry&& other) noexcept;

  void Add(ResourceInfo info);
  // Adds or replaces the entry with the same group/version/plural; returns the served entry.
  const ResourceInfo* Upsert(ResourceInfo info);
  // Stops serving group/version/plural. Returns false when it was not served.
  bool Remove(const std::string& group, const std::string& version, const std::string& plural);
  // nullptr if not served.
  const ResourceInfo* Find(const std::string& group, const std::string& version,
                           const std::string& plural) const;
  const ResourceInfo* FindByKind(const std::string& group, const std::string& version,
                                 const std::string& kind) const;
  // A snapshot of the served entries, in registration order.
  std::vector<const ResourceInfo*> All() const;
  // Group names in preferred order ("" first), and the versions of each.
  std::vector<std::string> Groups() const;
  std::vector<std::string> Versions(const std::string& group) const;
  std::vector<const ResourceInfo*> InGroupVersion(const std::string& group,
                                                  const std::string& version) const;

 private:
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<ResourceInfo>> resources_;
  std::vector<std::unique_ptr<ResourceInfo>> graveyard_;
};

// A served resource built from a compiled DSL schema (columns, subresources, validation).
// origin "builtin" marks the built-in types: Kubernetes' native validation wording and the
// k8s.io/api strategic-merge table where their schema declares no list keys.
ResourceInfo FromSchema(const schema::ResourceSchema& schema, const std::string& origin);

// A registry serving compiled DSL schemas (rcd passes the built-in types from resources/*.rc).
ResourceRegistry RegistryFromSchemas(const std::vector<schema::ResourceSchema>& schemas,
                                     const std::string& origin);

}  // namespace rc::apiserver
