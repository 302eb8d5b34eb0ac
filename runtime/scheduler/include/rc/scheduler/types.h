// The scheduler's parsed view of pods, nodes and volumes. Each object is parsed from its JSON once
// (when an informer event arrives) into these structs; scheduling decisions read only them.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "rc/apimachinery/selector.h"
#include "rc/base/status.h"

namespace rc::scheduler {

using Labels = std::map<std::string, std::string, std::less<>>;

// Resource amounts: cpu in millicores, memory and ephemeral storage in bytes, extended resources
// (nvidia.com/gpu, hugepages-2Mi, ...) by name in their own units.
struct Resources {
  int64_t milli_cpu = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  std::vector<std::pair<std::string, int64_t>> scalar;  // sorted by name

  int64_t Scalar(std::string_view name) const;
  void Add(const Resources& other);
  void Sub(const Resources& other);
  // Component-wise max (init containers).
  void Max(const Resources& other);
  bool operator==(const Resources& other) const = default;
};

// Kubernetes' defaults for pods that request nothing, used by the scores only (not the fit filter):
// 100m cpu and 200Mi memory per container.
inline constexpr int64_t kDefaultMilliCpuRequest = 100;
inline constexpr int64_t kDefaultMemoryRequest = 200LL * 1024 * 1024;

struct HostPort {
  std::string ip;        // "" = 0.0.0.0 (every address)
  std::string protocol;  // "TCP", "UDP", "SCTP"
  int32_t port = 0;
  // Conflicts like Kubernetes' HostPortInfo: same protocol and port, and same IP or either is
  // the wildcard.
  bool ConflictsWith(const HostPort& other) const;
  bool operator==(const HostPort& other) const = default;
};

enum class TaintEffect { kNoSchedule, kPreferNoSchedule, kNoExecute, kOther };

struct Taint {
  std::string key, value;
  TaintEffect effect = TaintEffect::kNoSchedule;
  bool operator==(const Taint& other) const = default;
};

struct Toleration {
  std::string key;
  bool exists = false;             // operator Exists (else Equal)
  std::string value;
  std::optional<TaintEffect> effect;  // nullopt: every effect
  // v1.Toleration.ToleratesTaint.
  bool Tolerates(const Taint& taint) const;
};

// v1.NodeSelectorRequirement (matchExpressions on labels, matchFields on metadata.name).
struct NodeSelectorRequirement {
  enum class Op { kIn, kNotIn, kExists, kDoesNotExist, kGt, kLt };
  std::string key;
  Op op = Op::kIn;
  std::vector<std::string> values;
};

struct NodeSelectorTerm {
  std::vector<NodeSelectorRequirement> match_expressions;
  std::vector<NodeSelectorRequirement> match_fields;
  // Both lists ANDed; a term with no requirements matches nothing (as Kubernetes).
  bool Matches(std::string_view node_name, const Labels& labels) const;
};

// Terms ORed.
struct NodeSelector {
  std::vector<NodeSelectorTerm> terms;
  bool Matches(std::string_view node_name, const Labels& labels) const;
};

struct PreferredSchedulingTerm {
  int32_t weight = 0;
  NodeSelectorTerm term;
};

// v1.PodAffinityTerm.
struct PodAffinityTerm {
  apimachinery::LabelSelector selector = apimachinery::LabelSelector::Nothing();
  std::vector<std::string> namespaces;  // empty and no namespace selector: the pod's own namespace
  // Set when namespaceSelector is given: {} selects every namespace.
  std::optional<apimachinery::LabelSelector> namespace_selector;
  std::string topology_key;
};

struct WeightedPodAffinityTerm {
  int32_t weight = 0;
  PodAffinityTerm term;
};

// What the scheduler needs of a pod.
struct PodInfo {
  std::string ns, name, uid, key;  // key "ns/name"
  int64_t resource_version = 0;
  Labels labels;
  std::string node_name;       // spec.nodeName ("" = pending)
  std::string scheduler_name;  // spec.schedulerName ("" reads as default-scheduler)
  bool deleting = false;       // metadata.deletionTimestamp set
  bool terminal = false;       // status.phase Succeeded or Failed
  Resources requests;          // for the fit filter (sum of containers, max with init containers, + overhead)
  Resources nonzero_requests;  // for scores: cpu/memory defaulted per container like Kubernetes
  std::vector<HostPort> host_ports;
  Labels node_selector;
  std::optional<NodeSelector> required_node_affinity;
  std::vector<PreferredSchedulingTerm> preferred_node_affinity;
  std::vector<PodAffinityTerm> required_affinity, required_anti_affinity;
  std::vector<WeightedPodAffinityTerm> preferred_affinity, preferred_anti_affinity;
  std::vector<Toleration> tolerations;
  std::vector<std::string> pvc_names;  // spec.volumes[].persistentVolumeClaim.claimName
  std::string owner_uid;               // the controller ownerReference's uid

  bool HasPodAffinity() const {
    return !required_affinity.empty() || !required_anti_affinity.empty() || !preferred_affinity.empty() ||
           !preferred_anti_affinity.empty();
  }
  bool TolerationsTolerate(const Taint& taint) const;
};
using PodInfoPtr = std::shared_ptr<const PodInfo>;

// What the scheduler needs of a node.
struct NodeSpec {
  std::string name;
  Labels labels;
  Resources allocatable;  // status.allocatable (capacity where allocatable is absent)
  int64_t allowed_pods = 0;
  bool unschedulable = false;  // spec.unschedulable (cordon)
  bool ready = false;          // condition Ready == "True"
  std::vector<Taint> taints;
  // True when a change from `other` may make unschedulable pods fit (anything but heartbeats).
  bool SchedulingEquals(const NodeSpec& other) const;
};
using NodeSpecPtr = std::shared_ptr<const NodeSpec>;

enum class AccessMode { kReadWriteOnce, kReadOnlyMany, kReadWriteMany, kReadWriteOncePod };

struct ClaimInfo {
  std::string ns, name;
  bool bound = false;  // status.phase Bound (or spec.volumeName set)
  bool deleting = false;
  std::string volume_name;
  std::vector<AccessMode> access_modes;  // status.accessModes, else spec.accessModes
};

struct VolumeInfo {
  std::string name;
  std::vector<AccessMode> access_modes;
  std::optional<NodeSelector> node_affinity;  // spec.nodeAffinity.required
};

// Parsers: a pod/node/claim/volume JSON object (as the API server serves it) into the structs.
// Malformed parts that the API server would have rejected are skipped, not errors; only a missing
// metadata.name is an error.
Result<PodInfo> ParsePod(const rapidjson::Value& pod);
Result<NodeSpec> ParseNode(const rapidjson::Value& node);
Result<ClaimInfo> ParseClaim(const rapidjson::Value& claim);
Result<VolumeInfo> ParseVolume(const rapidjson::Value& volume);
// Convenience for tests: parses the JSON text first.
Result<PodInfo> ParsePodJson(std::string_view json);
Result<NodeSpec> ParseNodeJson(std::string_view json);
Result<ClaimInfo> ParseClaimJson(std::string_view json);
Result<VolumeInfo> ParseVolumeJson(std::string_view json);

// An aggregate over one node: its spec plus what the pods on it (bound or assumed) use.
struct NodeInfo {
  NodeSpecPtr node;  // null while pods name a node the cache has not seen
  Resources requested;
  Resources nonzero_requested;
  int64_t pod_count = 0;
  std::vector<std::pair<HostPort, int>> used_ports;  // with the number of pods using each
  std::unordered_map<std::string, int> owner_counts;  // controller uid -> pods
  std::unordered_map<std::string, int> claims;        // "ns/claim" -> pods using it
  std::vector<PodInfoPtr> pods;
  std::vector<PodInfoPtr> pods_with_affinity;
  std::vector<PodInfoPtr> pods_with_required_anti_affinity;
  int64_t generation = 0;  // bumped on every change

  void AddPod(const PodInfoPtr& pod);
  // Removes the pod with pod->key; false if it is not on this node.
  bool RemovePod(const PodInfo& pod);
  bool PortInUse(const HostPort& port) const;
  int OwnerCount(const std::string& uid) const;
};

}  // namespace rc::scheduler
