// The scheduling algorithm: pure functions over parsed snapshots (types.h), Kubernetes'
// framework in miniature. One decision is
//   PreFilter (pod-level checks and the state filters share: affinity topology counts, volumes)
//   Filter    (per node, first failing plugin wins, in Kubernetes' default plugin order)
//   Score     (per feasible node and plugin, normalized to 0..100, weighted sum)
//   select    (the highest total; ties broken round-robin)
// Filtering stops once enough feasible nodes are found (percentageOfNodesToScore, adaptive by
// default) and the next decision starts where this one stopped, as kube-scheduler does.
//
// Reasons are Kubernetes' own strings, so FailedScheduling messages read like kube-scheduler's:
//   "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "rc/scheduler/types.h"

namespace rc::scheduler {

// Filter reasons (Kubernetes' wording).
inline constexpr const char* kReasonUnschedulable = "node(s) were unschedulable";
inline constexpr const char* kReasonNotReady = "node(s) were not ready";
inline constexpr const char* kReasonNodeName = "node(s) didn't match the requested node name";
inline constexpr const char* kReasonNodeAffinity = "node(s) didn't match Pod's node affinity/selector";
inline constexpr const char* kReasonNodePorts = "node(s) didn't have free ports for the requested pod ports";
inline constexpr const char* kReasonTooManyPods = "Too many pods";
inline constexpr const char* kReasonPodAffinity = "node(s) didn't match pod affinity rules";
inline constexpr const char* kReasonPodAntiAffinity = "node(s) didn't match pod anti-affinity rules";
inline constexpr const char* kReasonExistingAntiAffinity = "node(s) didn't satisfy existing pods anti-affinity rules";
inline constexpr const char* kReasonVolumeNodeAffinity = "node(s) had volume node affinity conflict";
inline constexpr const char* kReasonDiskConflict = "node(s) had no available disk";
inline constexpr const char* kReasonReadWriteOncePod =
    "node has pod using PersistentVolumeClaim with the same name and ReadWriteOncePod access mode";
// PreFilter (pod-level) messages.
inline constexpr const char* kMessageUnboundClaims = "pod has unbound immediate PersistentVolumeClaims";
inline constexpr const char* kMessageNoNodes = "no nodes available to schedule pods";
// "Insufficient cpu", "Insufficient memory", "Insufficient nvidia.com/gpu".
std::string InsufficientReason(std::string_view resource);
// "node(s) had untolerated taint {key: value}".
std::string UntoleratedTaintReason(const Taint& taint);

// Taint Kubernetes' node lifecycle controller puts on nodes whose Ready condition is not True;
// a node with !ready is treated as carrying it (NoSchedule).
inline constexpr const char* kTaintNotReady = "node.kubernetes.io/not-ready";
inline constexpr const char* kTaintUnschedulable = "node.kubernetes.io/unschedulable";

// Volumes and namespaces a decision may look up (pods with PVCs, namespaceSelector terms).
class ClusterLister {
 public:
  virtual ~ClusterLister() = default;
  virtual std::optional<ClaimInfo> Claim(const std::string& ns, const std::string& name) const = 0;
  virtual std::optional<VolumeInfo> Volume(const std::string& name) const = 0;
  // nullopt: namespace unknown (matches no namespaceSelector).
  virtual std::optional<Labels> NamespaceLabels(const std::string& ns) const = 0;
};

// A lister over plain maps (tests, benchmarks).
class StaticLister : public ClusterLister {
 public:
  std::map<std::string, ClaimInfo> claims;   // "ns/name"
  std::map<std::string, VolumeInfo> volumes;  // name
  std::map<std::string, Labels> namespaces;
  std::optional<ClaimInfo> Claim(const std::string& ns, const std::string& name) const override;
  std::optional<VolumeInfo> Volume(const std::string& name) const override;
  std::optional<Labels> NamespaceLabels(const std::string& ns) const override;
};

// Plugin weights (kube-scheduler's defaults).
struct ScoreWeights {
  int least_allocated = 1;      // NodeResourcesFit (LeastAllocated)
  int balanced_allocation = 1;  // NodeResourcesBalancedAllocation
  int spread = 2;               // spreading pods of one owner (SelectorSpread / PodTopologySpread defaults)
  int node_affinity = 2;        // preferred node affinity
  int inter_pod_affinity = 2;   // preferred pod (anti-)affinity
  int taint_toleration = 3;     // PreferNoSchedule taints
};

struct AlgorithmOptions {
  // 0: adaptive (50% - nodes/125, at least 5%, at least 100 nodes); 100: every node.
  int percentage_of_nodes_to_score = 0;
  ScoreWeights weights;
};

// Per-decision state computed once before filtering (Kubernetes' CycleState).
struct CycleState {
  using TopologyCounts = std::map<std::pair<std::string, std::string>, int64_t>;  // (key, value) -> pods
  const PodInfo* pod = nullptr;
  // A pod-level failure (unbound or missing claims): no node can fit.
  std::string prefilter_message;
  TopologyCounts affinity_counts;        // pods matching the pod's required affinity terms
  TopologyCounts anti_affinity_counts;   // pods matching its required anti-affinity terms
  TopologyCounts existing_anti_affinity; // topologies whose pods' anti-affinity the pod violates
  bool matches_own_affinity = false;     // the pod matches all of its own required affinity terms
  struct Claim {
    ClaimInfo info;
    std::optional<VolumeInfo> volume;
    bool read_write_once = false, read_write_once_pod = false;
    std::vector<std::string> used_on;  // nodes running pods that use the claim
  };
  std::vector<Claim> claims;
};

// PreFilter over every node (not only the sampled ones).
CycleState PreFilter(const PodInfo& pod, std::span<const NodeInfo* const> nodes, const ClusterLister& lister);

// The failure reasons of `node` for the pod (empty: it fits). Plugins run in kube-scheduler's
// order and the first failing one decides, so a node yields one reason, except NodeResourcesFit
// which reports every insufficient resource.
std::vector<std::string> Filter(const CycleState& state, const NodeInfo& node);

// The individual filters (Kubernetes plugin names), each empty when the node passes.
std::vector<std::string> FilterNodeUnschedulable(const PodInfo& pod, const NodeSpec& node);
std::vector<std::string> FilterNodeName(const PodInfo& pod, const NodeSpec& node);
std::vector<std::string> FilterTaintToleration(const PodInfo& pod, const NodeSpec& node);
std::vector<std::string> FilterNodeAffinity(const PodInfo& pod, const NodeSpec& node);
std::vector<std::string> FilterNodePorts(const PodInfo& pod, const NodeInfo& node);
std::vector<std::string> FilterNodeResourcesFit(const PodInfo& pod, const NodeInfo& node);
std::vector<std::string> FilterVolumes(const CycleState& state, const NodeInfo& node);
std::vector<std::string> FilterInterPodAffinity(const CycleState& state, const NodeInfo& node);

// Scores of one feasible node, per plugin (0..100 after normalization) and weighted total.
struct NodeScore {
  const NodeInfo* node = nullptr;
  int64_t least_allocated = 0, balanced_allocation = 0, spread = 0, node_affinity = 0, inter_pod_affinity = 0,
          taint_toleration = 0;
  int64_t total = 0;
};
// Scores `feasible` (normalizing over them); `all` is every node (inter-pod affinity counts pods
// on nodes that were not sampled too).
std::vector<NodeScore> Score(const PodInfo& pod, std::span<const NodeInfo* const> feasible,
                             std::span<const NodeInfo* const> all, const ScoreWeights& weights);

// How many feasible nodes to look for among `num_nodes` (kube-scheduler's numFeasibleNodesToFind).
int NumFeasibleNodesToFind(int num_nodes, int percentage_of_nodes_to_score);

// Why a pod fits nowhere: per reason, the number of nodes that gave it.
struct Diagnosis {
  int num_nodes = 0;
  std::string prefilter_message;
  std::map<std::string, int> reasons;
};
// "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
// (reasons as "<count> <reason>" sorted as strings, like kube-scheduler's FitError), or
// "0/3 nodes are available: <prefilter message>.", or "no nodes available to schedule pods".
std::string FailedSchedulingMessage(const Diagnosis& diagnosis);

struct ScheduleResult {
  std::string node;  // empty: unschedulable (see diagnosis)
  int evaluated_nodes = 0;
  int feasible_nodes = 0;
  Diagnosis diagnosis;
  bool ok() const { return !node.empty(); }
  std::string Message() const { return FailedSchedulingMessage(diagnosis); }
};

// Stateful only in the sampling start index and the round-robin tie counter. Not thread-safe.
class Algorithm {
 public:
  explicit Algorithm(AlgorithmOptions options = {}) : options_(options) {}
  // `nodes` in a stable order (the cache's), only nodes whose spec is known.
  ScheduleResult Schedule(const PodInfo& pod, std::span<const NodeInfo* const> nodes, const ClusterLister& lister);
  const AlgorithmOptions& options() const { return options_; }

 private:
  AlgorithmOptions options_;
  size_t next_start_ = 0;
  uint64_t ties_ = 0;
};

}  // namespace rc::scheduler
