// Patch strategies of well-known built-in Kubernetes list fields (the patchStrategy /
// patchMergeKey struct tags of k8s.io/api), as a data table.
#include <string>
#include <utility>
#include <vector>

#include "rc/apimachinery/patch.h"

namespace rc::apimachinery {

namespace {

ListStrategy MergeBy(std::string key) { return ListStrategy{true, std::move(key)}; }
ListStrategy MergePrimitive() { return ListStrategy{true, ""}; }
ListStrategy Replace() { return ListStrategy{false, ""}; }

bool SegmentMatches(const std::string& pattern, const std::string& segment) {
  return pattern == "*" || pattern == segment;
}

}  // namespace

TablePatchSchema::TablePatchSchema(std::vector<Entry> entries) : entries_(std::move(entries)) {}

void TablePatchSchema::Add(Entry entry) { entries_.push_back(std::move(entry)); }

std::optional<ListStrategy> TablePatchSchema::ForPath(std::span<const std::string> path) const {
  const Entry* best = nullptr;
  std::size_t best_len = 0;
  for (const Entry& e : entries_) {
    std::span<const std::string> suffix(e.suffix);
    bool anchored = !suffix.empty() && suffix.front() == "^";
    if (anchored) suffix = suffix.subspan(1);
    if (suffix.empty() || suffix.size() > path.size()) continue;
    if (anchored && suffix.size() != path.size()) continue;
    std::size_t offset = path.size() - suffix.size();
    bool match = true;
    for (std::size_t i = 0; i < suffix.size() && match; ++i)
      match = SegmentMatches(suffix[i], path[offset + i]);
    if (!match) continue;
    std::size_t len = suffix.size() + (anchored ? 1 : 0);
    if (best == nullptr || len > best_len) {
      best = &e;
      best_len = len;
    }
  }
  if (best == nullptr) return std::nullopt;
  return best->strategy;
}

// Suffixes are matched against the field path from the object root without list indices.
// "^" anchors an entry at the root. Keep this a table: a later milestone generates more entries
// from resource schemas.
const std::vector<TablePatchSchema::Entry>& KubernetesPatchEntries() {
  static const std::vector<TablePatchSchema::Entry> kEntries = {
      // ObjectMeta
      {{"metadata", "finalizers"}, MergePrimitive()},
      {{"metadata", "ownerReferences"}, MergeBy("uid")},
      // PodSpec (Pod .spec, every .spec.template.spec, CronJob jobTemplate, ...)
      {{"spec", "containers"}, MergeBy("name")},
      {{"spec", "initContainers"}, MergeBy("name")},
      {{"spec", "ephemeralContainers"}, MergeBy("name")},
      {{"spec", "volumes"}, MergeBy("name")},
      {{"spec", "imagePullSecrets"}, MergeBy("name")},
      {{"spec", "hostAliases"}, MergeBy("ip")},
      {{"spec", "topologySpreadConstraints"}, MergeBy("topologyKey")},
      {{"spec", "resourceClaims"}, MergeBy("name")},
      {{"spec", "schedulingGates"}, MergeBy("name")},
      {{"spec", "tolerations"}, Replace()},
      // Container fields (containers, initContainers, ephemeralContainers)
      {{"containers", "env"}, MergeBy("name")},
      {{"initContainers", "env"}, MergeBy("name")},
      {{"ephemeralContainers", "env"}, MergeBy("name")},
      {{"containers", "ports"}, MergeBy("containerPort")},
      {{"initContainers", "ports"}, MergeBy("containerPort")},
      {{"ephemeralContainers", "ports"}, MergeBy("containerPort")},
      {{"containers", "volumeMounts"}, MergeBy("mountPath")},
      {{"initContainers", "volumeMounts"}, MergeBy("mountPath")},
      {{"ephemeralContainers", "volumeMounts"}, MergeBy("mountPath")},
      {{"containers", "volumeDevices"}, MergeBy("devicePath")},
      {{"initContainers", "volumeDevices"}, MergeBy("devicePath")},
      {{"ephemeralContainers", "volumeDevices"}, MergeBy("devicePath")},
      // Service .spec.ports (containers' ports are matched by the longer entries above)
      {{"^", "spec", "ports"}, MergeBy("port")},
      // ServiceAccount
      {{"^", "secrets"}, MergeBy("name")},
      // Node
      {{"^", "spec", "podCIDRs"}, MergePrimitive()},
      {{"^", "status", "addresses"}, MergeBy("type")},
      // Status of Pods, Nodes, workloads, ...
      {{"status", "conditions"}, MergeBy("type")},
      {{"status", "podIPs"}, MergeBy("ip")},
      {{"status", "hostIPs"}, MergeBy("ip")},
      {{"status", "resourceClaimStatuses"}, MergeBy("name")},
  };
  return kEntries;
}

const PatchSchema& KubernetesPatchSchema() {
  static const TablePatchSchema kSchema(KubernetesPatchEntries());
  return kSchema;
}

const PatchSchema& EmptyPatchSchema() {
  static const TablePatchSchema kSchema;
  return kSchema;
}

}  // namespace rc::apimachinery
