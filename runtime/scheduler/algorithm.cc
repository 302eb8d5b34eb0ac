#include "rc/scheduler/algorithm.h"

#include <algorithm>
#include <cmath>

namespace rc::scheduler {

namespace {

constexpr int64_t kMaxNodeScore = 100;
constexpr int kMinFeasibleNodesToFind = 100;
constexpr int kMinFeasibleNodesPercentageToFind = 5;

const std::string* LabelOf(const Labels& labels, const std::string& key) {
  auto it = labels.find(key);
  return it == labels.end() ? nullptr : &it->second;
}

bool SelectorMatches(const apimachinery::LabelSelector& sel, const Labels& labels) {
  if (sel.MatchesNothing()) return false;
  if (sel.Empty()) return true;
  return sel.Matches([&](std::string_view key) -> std::optional<std::string_view> {
    auto it = labels.find(key);
    if (it == labels.end()) return std::nullopt;
    return std::string_view(it->second);
  });
}

// Whether `target` matches `term`, a term of a pod in namespace `term_ns`.
bool TermMatches(const PodAffinityTerm& term, const std::string& term_ns, const PodInfo& target,
                 const ClusterLister* lister) {
  bool ns_ok;
  if (term.namespaces.empty() && !term.namespace_selector) {
    ns_ok = target.ns == term_ns;
  } else {
    ns_ok = std::find(term.namespaces.begin(), term.namespaces.end(), target.ns) != term.namespaces.end();
    if (!ns_ok && term.namespace_selector) {
      if (term.namespace_selector->Empty()) {
        ns_ok = true;
      } else if (lister) {
        auto labels = lister->NamespaceLabels(target.ns);
        ns_ok = labels && SelectorMatches(*term.namespace_selector, *labels);
      }
    }
  }
  return ns_ok && SelectorMatches(term.selector, target.labels);
}

bool HasMode(const std::vector<AccessMode>& modes, AccessMode m) {
  return std::find(modes.begin(), modes.end(), m) != modes.end();
}

}  // namespace

std::string InsufficientReason(std::string_view resource) { return "Insufficient " + std::string(resource); }

std::string UntoleratedTaintReason(const Taint& taint) {
  return "node(s) had untolerated taint {" + taint.key + ": " + taint.value + "}";
}

std::optional<ClaimInfo> StaticLister::Claim(const std::string& ns, const std::string& name) const {
  auto it = claims.find(ns + "/" + name);
  if (it == claims.end()) return std::nullopt;
  return it->second;
}
std::optional<VolumeInfo> StaticLister::Volume(const std::string& name) const {
  auto it = volumes.find(name);
  if (it == volumes.end()) return std::nullopt;
  return it->second;
}
std::optional<Labels> StaticLister::NamespaceLabels(const std::string& ns) const {
  auto it = namespaces.find(ns);
  if (it == namespaces.end()) return std::nullopt;
  return it->second;
}

// ---------------------------------------------------------------------------------------------
// PreFilter

CycleState PreFilter(const PodInfo& pod, std::span<const NodeInfo* const> nodes, const ClusterLister& lister) {
  CycleState s;
  s.pod = &pod;

  // Volumes: every claim must exist, not be terminating, and be bound.
  bool unbound = false;
  for (auto& name : pod.pvc_names) {
    auto claim = lister.Claim(pod.ns, name);
    if (!claim) {
      s.prefilter_message = "persistentvolumeclaim \"" + name + "\" not found";
      return s;
    }
    if (claim->deleting) {
      s.prefilter_message = "persistentvolumeclaim \"" + name + "\" is being deleted";
      return s;
    }
    if (!claim->bound && claim->volume_name.empty()) {
      unbound = true;
      continue;
    }
    CycleState::Claim c;
    c.info = std::move(*claim);
    if (!c.info.volume_name.empty()) c.volume = lister.Volume(c.info.volume_name);
    const auto& modes = c.volume && !c.volume->access_modes.empty() ? c.volume->access_modes : c.info.access_modes;
    c.read_write_once_pod = HasMode(modes, AccessMode::kReadWriteOncePod);
    c.read_write_once = !c.read_write_once_pod && HasMode(modes, AccessMode::kReadWriteOnce) &&
                        !HasMode(modes, AccessMode::kReadWriteMany) && !HasMode(modes, AccessMode::kReadOnlyMany);
    if (c.read_write_once || c.read_write_once_pod) {
      std::string key = pod.ns + "/" + name;
      for (const NodeInfo* n : nodes) {
        if (n->claims.count(key)) c.used_on.push_back(n->node->name);
      }
    }
    s.claims.push_back(std::move(c));
  }
  if (unbound) {
    s.prefilter_message = kMessageUnboundClaims;
    return s;
  }

  // Inter-pod affinity: topology counts over every node's pods.
  bool incoming = !pod.required_affinity.empty() || !pod.required_anti_affinity.empty();
  for (const NodeInfo* n : nodes) {
    const Labels& node_labels = n->node->labels;
    if (incoming) {
      for (auto& other : n->pods) {
        for (auto& t : pod.required_affinity) {
          const std::string* v = LabelOf(node_labels, t.topology_key);
          if (v && TermMatches(t, pod.ns, *other, &lister)) ++s.affinity_counts[{t.topology_key, *v}];
        }
        for (auto& t : pod.required_anti_affinity) {
          const std::string* v = LabelOf(node_labels, t.topology_key);
          if (v && TermMatches(t, pod.ns, *other, &lister)) ++s.anti_affinity_counts[{t.topology_key, *v}];
        }
      }
    }
    for (auto& other : n->pods_with_required_anti_affinity) {
      for (auto& t : other->required_anti_affinity) {
        const std::string* v = LabelOf(node_labels, t.topology_key);
        if (v && TermMatches(t, other->ns, pod, &lister)) ++s.existing_anti_affinity[{t.topology_key, *v}];
      }
    }
  }
  s.matches_own_affinity = !pod.required_affinity.empty();
  for (auto& t : pod.required_affinity) {
    if (!TermMatches(t, pod.ns, pod, &lister)) s.matches_own_affinity = false;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Filters

std::vector<std::string> FilterNodeUnschedulable(const PodInfo& pod, const NodeSpec& node) {
  if (!node.unschedulable) return {};
  if (pod.TolerationsTolerate(Taint{kTaintUnschedulable, "", TaintEffect::kNoSchedule})) return {};
  return {kReasonUnschedulable};
}

std::vector<std::string> FilterNodeName(const PodInfo& pod, const NodeSpec& node) {
  if (pod.node_name.empty() || pod.node_name == node.name) return {};
  return {kReasonNodeName};
}

std::vector<std::string> FilterTaintToleration(const PodInfo& pod, const NodeSpec& node) {
  if (!node.ready && !pod.TolerationsTolerate(Taint{kTaintNotReady, "", TaintEffect::kNoSchedule})) {
    return {kReasonNotReady};
  }
  for (auto& t : node.taints) {
    if (t.effect != TaintEffect::kNoSchedule && t.effect != TaintEffect::kNoExecute) continue;
    if (!pod.TolerationsTolerate(t)) return {UntoleratedTaintReason(t)};
  }
  return {};
}

std::vector<std::string> FilterNodeAffinity(const PodInfo& pod, const NodeSpec& node) {
  for (auto& [k, v] : pod.node_selector) {
    const std::string* have = LabelOf(node.labels, k);
    if (!have || *have != v) return {kReasonNodeAffinity};
  }
  if (pod.required_node_affinity && !pod.required_node_affinity->Matches(node.name, node.labels)) {
    return {kReasonNodeAffinity};
  }
  return {};
}

std::vector<std::string> FilterNodePorts(const PodInfo& pod, const NodeInfo& node) {
  for (auto& p : pod.host_ports) {
    if (node.PortInUse(p)) return {kReasonNodePorts};
  }
  return {};
}

std::vector<std::string> FilterNodeResourcesFit(const PodInfo& pod, const NodeInfo& node) {
  std::vector<std::string> out;
  const NodeSpec& n = *node.node;
  if (node.pod_count + 1 > n.allowed_pods) out.push_back(kReasonTooManyPods);
  const Resources& r = pod.requests;
  if (r.milli_cpu > 0 && r.milli_cpu > n.allocatable.milli_cpu - node.requested.milli_cpu) {
    out.push_back(InsufficientReason("cpu"));
  }
  if (r.memory > 0 && r.memory > n.allocatable.memory - node.requested.memory) {
    out.push_back(InsufficientReason("memory"));
  }
  if (r.ephemeral_storage > 0 &&
      r.ephemeral_storage > n.allocatable.ephemeral_storage - node.requested.ephemeral_storage) {
    out.push_back(InsufficientReason("ephemeral-storage"));
  }
  for (auto& [name, v] : r.scalar) {
    if (v > 0 && v > n.allocatable.Scalar(name) - node.requested.Scalar(name)) out.push_back(InsufficientReason(name));
  }
  return out;
}

std::vector<std::string> FilterVolumes(const CycleState& state, const NodeInfo& node) {
  const std::string& name = node.node->name;
  for (auto& c : state.claims) {
    if (c.read_write_once_pod && !c.used_on.empty()) return {kReasonReadWriteOncePod};
    if (c.read_write_once && !c.used_on.empty() &&
        std::find(c.used_on.begin(), c.used_on.end(), name) == c.used_on.end()) {
      return {kReasonDiskConflict};
    }
  }
  for (auto& c : state.claims) {
    if (c.volume && c.volume->node_affinity && !c.volume->node_affinity->Matches(name, node.node->labels)) {
      return {kReasonVolumeNodeAffinity};
    }
  }
  return {};
}

std::vector<std::string> FilterInterPodAffinity(const CycleState& state, const NodeInfo& node) {
  const PodInfo& pod = *state.pod;
  const Labels& labels = node.node->labels;
  for (auto& [pair, count] : state.existing_anti_affinity) {
    const std::string* v = LabelOf(labels, pair.first);
    if (count > 0 && v && *v == pair.second) return {kReasonExistingAntiAffinity};
  }
  for (auto& t : pod.required_anti_affinity) {
    const std::string* v = LabelOf(labels, t.topology_key);
    if (!v) continue;
    auto it = state.anti_affinity_counts.find({t.topology_key, *v});
    if (it != state.anti_affinity_counts.end() && it->second > 0) return {kReasonPodAntiAffinity};
  }
  if (!pod.required_affinity.empty()) {
    bool pods_exist = true;
    for (auto& t : pod.required_affinity) {
      const std::string* v = LabelOf(labels, t.topology_key);
      if (!v) return {kReasonPodAffinity};  // every topology label must exist on the node
      auto it = state.affinity_counts.find({t.topology_key, *v});
      if (it == state.affinity_counts.end() || it->second <= 0) pods_exist = false;
    }
    // The first pod of a group that selects itself may go anywhere.
    if (!pods_exist && !(state.affinity_counts.empty() && state.matches_own_affinity)) return {kReasonPodAffinity};
  }
  return {};
}

std::vector<std::string> Filter(const CycleState& state, const NodeInfo& node) {
  const PodInfo& pod = *state.pod;
  const NodeSpec& n = *node.node;
  if (auto r = FilterNodeUnschedulable(pod, n); !r.empty()) return r;
  if (auto r = FilterNodeName(pod, n); !r.empty()) return r;
  if (auto r = FilterTaintToleration(pod, n); !r.empty()) return r;
  if (auto r = FilterNodeAffinity(pod, n); !r.empty()) return r;
  if (auto r = FilterNodePorts(pod, node); !r.empty()) return r;
  if (auto r = FilterNodeResourcesFit(pod, node); !r.empty()) return r;
  if (!state.claims.empty()) {
    if (auto r = FilterVolumes(state, node); !r.empty()) return r;
  }
  if (!pod.required_affinity.empty() || !pod.required_anti_affinity.empty() || !state.existing_anti_affinity.empty()) {
    if (auto r = FilterInterPodAffinity(state, node); !r.empty()) return r;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Scores

namespace {

int64_t LeastAllocatedOne(int64_t requested, int64_t capacity) {
  if (capacity <= 0 || requested > capacity) return 0;
  return (capacity - requested) * kMaxNodeScore / capacity;
}

double Fraction(int64_t requested, int64_t capacity) {
  if (capacity <= 0) return 1.0;
  return std::min(1.0, static_cast<double>(requested) / static_cast<double>(capacity));
}

// Raw scores normalized so the highest is 100 (reverse: the lowest is 100), kube-scheduler's
// DefaultNormalizeScore.
void NormalizeMax(std::vector<int64_t>& v, bool reverse) {
  int64_t max = 0;
  for (int64_t x : v) max = std::max(max, x);
  for (int64_t& x : v) {
    if (max == 0) {
      x = reverse ? kMaxNodeScore : 0;
    } else {
      x = x * kMaxNodeScore / max;
      if (reverse) x = kMaxNodeScore - x;
    }
  }
}

const std::string* ZoneOf(const Labels& labels) {
  if (auto* z = LabelOf(labels, "topology.kubernetes.io/zone")) return z;
  return LabelOf(labels, "failure-domain.beta.kubernetes.io/zone");
}

}  // namespace

std::vector<NodeScore> Score(const PodInfo& pod, std::span<const NodeInfo* const> feasible,
                             std::span<const NodeInfo* const> all, const ScoreWeights& w) {
  size_t n = feasible.size();
  std::vector<NodeScore> out(n);
  std::vector<int64_t> spread(n, 0), node_aff(n, 0), taints(n, 0), inter(n, 0);

  // Resources (non-zero requests: a pod asking nothing still counts as 100m / 200Mi).
  for (size_t i = 0; i < n; ++i) {
    const NodeInfo& ni = *feasible[i];
    out[i].node = &ni;
    const Resources& alloc = ni.node->allocatable;
    int64_t cpu = ni.nonzero_requested.milli_cpu + pod.nonzero_requests.milli_cpu;
    int64_t mem = ni.nonzero_requested.memory + pod.nonzero_requests.memory;
    out[i].least_allocated = (LeastAllocatedOne(cpu, alloc.milli_cpu) + LeastAllocatedOne(mem, alloc.memory)) / 2;
    double fc = Fraction(cpu, alloc.milli_cpu), fm = Fraction(mem, alloc.memory);
    double std_dev = std::abs(fc - fm) / 2;
    out[i].balanced_allocation = static_cast<int64_t>((1 - std_dev) * kMaxNodeScore);
  }

  // Spreading pods of the same controller over nodes and zones (SelectorSpread).
  if (!pod.owner_uid.empty()) {
    std::map<std::string, int64_t> zone_counts;
    int64_t max_node = 0, max_zone = 0;
    for (size_t i = 0; i < n; ++i) {
      spread[i] = feasible[i]->OwnerCount(pod.owner_uid);
      max_node = std::max(max_node, spread[i]);
      if (auto* z = ZoneOf(feasible[i]->node->labels)) zone_counts[*z] += spread[i];
    }
    for (auto& [z, c] : zone_counts) max_zone = std::max(max_zone, c);
    constexpr double kZoneWeighting = 2.0 / 3.0;
    for (size_t i = 0; i < n; ++i) {
      double score = max_node > 0 ? static_cast<double>(kMaxNodeScore * (max_node - spread[i])) / max_node
                                  : static_cast<double>(kMaxNodeScore);
      if (!zone_counts.empty()) {
        double zone_score = kMaxNodeScore;
        if (auto* z = ZoneOf(feasible[i]->node->labels); z && max_zone > 0) {
          zone_score = static_cast<double>(kMaxNodeScore * (max_zone - zone_counts[*z])) / max_zone;
        }
        score = score * (1.0 - kZoneWeighting) + kZoneWeighting * zone_score;
      }
      out[i].spread = static_cast<int64_t>(score);
    }
  }

  // Preferred node affinity.
  if (!pod.preferred_node_affinity.empty()) {
    for (size_t i = 0; i < n; ++i) {
      for (auto& t : pod.preferred_node_affinity) {
        if (t.weight != 0 && t.term.Matches(feasible[i]->node->name, feasible[i]->node->labels)) {
          node_aff[i] += t.weight;
        }
      }
    }
    NormalizeMax(node_aff, false);
    for (size_t i = 0; i < n; ++i) out[i].node_affinity = node_aff[i];
  }

  // PreferNoSchedule taints the pod does not tolerate (fewer is better).
  bool any_taint = false;
  for (size_t i = 0; i < n; ++i) {
    for (auto& t : feasible[i]->node->taints) {
      if (t.effect != TaintEffect::kPreferNoSchedule) continue;
      bool tolerated = false;
      for (auto& tol : pod.tolerations) {
        if ((!tol.effect || *tol.effect == TaintEffect::kPreferNoSchedule) && tol.Tolerates(t)) tolerated = true;
      }
      if (!tolerated) {
        ++taints[i];
        any_taint = true;
      }
    }
  }
  NormalizeMax(taints, true);
  for (size_t i = 0; i < n; ++i) out[i].taint_toleration = taints[i];
  (void)any_taint;

  // Preferred inter-pod affinity: topology scores from the pod's preferred terms matching
  // existing pods, and existing pods' terms matching the pod (required affinity weighs 1).
  bool has_preferred = !pod.preferred_affinity.empty() || !pod.preferred_anti_affinity.empty();
  std::map<std::pair<std::string, std::string>, int64_t> topology_score;
  for (const NodeInfo* ni : all) {
    const auto& candidates = has_preferred ? ni->pods : ni->pods_with_affinity;
    const Labels& labels = ni->node->labels;
    for (auto& other : candidates) {
      auto add = [&](const PodAffinityTerm& t, const std::string& term_ns, const PodInfo& target, int64_t weight) {
        const std::string* v = LabelOf(labels, t.topology_key);
        if (v && weight != 0 && TermMatches(t, term_ns, target, nullptr)) topology_score[{t.topology_key, *v}] += weight;
      };
      for (auto& t : pod.preferred_affinity) add(t.term, pod.ns, *other, t.weight);
      for (auto& t : pod.preferred_anti_affinity) add(t.term, pod.ns, *other, -t.weight);
      for (auto& t : other->required_affinity) add(t, other->ns, pod, 1);
      for (auto& t : other->preferred_affinity) add(t.term, other->ns, pod, t.weight);
      for (auto& t : other->preferred_anti_affinity) add(t.term, other->ns, pod, -t.weight);
    }
  }
  if (!topology_score.empty()) {
    int64_t min = 0, max = 0;
    bool first = true;
    for (size_t i = 0; i < n; ++i) {
      int64_t s = 0;
      for (auto& [pair, score] : topology_score) {
        const std::string* v = LabelOf(feasible[i]->node->labels, pair.first);
        if (v && *v == pair.second) s += score;
      }
      inter[i] = s;
      min = first ? s : std::min(min, s);
      max = first ? s : std::max(max, s);
      first = false;
    }
    for (size_t i = 0; i < n; ++i) {
      out[i].inter_pod_affinity = max > min ? kMaxNodeScore * (inter[i] - min) / (max - min) : 0;
    }
  }

  for (auto& s : out) {
    s.total = w.least_allocated * s.least_allocated + w.balanced_allocation * s.balanced_allocation +
              w.spread * s.spread + w.node_affinity * s.node_affinity + w.inter_pod_affinity * s.inter_pod_affinity +
              w.taint_toleration * s.taint_toleration;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Selection

int NumFeasibleNodesToFind(int num_nodes, int percentage) {
  if (num_nodes < kMinFeasibleNodesToFind || percentage >= 100) return num_nodes;
  int pct = percentage;
  if (pct <= 0) {
    pct = 50 - num_nodes / 125;
    if (pct < kMinFeasibleNodesPercentageToFind) pct = kMinFeasibleNodesPercentageToFind;
  }
  int n = static_cast<int>(static_cast<int64_t>(num_nodes) * pct / 100);
  return std::max(n, kMinFeasibleNodesToFind);
}

std::string FailedSchedulingMessage(const Diagnosis& d) {
  if (d.num_nodes == 0) return kMessageNoNodes;
  std::string prefix = "0/" + std::to_string(d.num_nodes) + " nodes are available: ";
  if (!d.prefilter_message.empty()) return prefix + d.prefilter_message + ".";
  std::vector<std::string> parts;
  for (auto& [reason, count] : d.reasons) parts.push_back(std::to_string(count) + " " + reason);
  std::sort(parts.begin(), parts.end());
  std::string out = prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += ", ";
    out += parts[i];
  }
  return out + ".";
}

ScheduleResult Algorithm::Schedule(const PodInfo& pod, std::span<const NodeInfo* const> nodes,
                                   const ClusterLister& lister) {
  ScheduleResult res;
  int num = static_cast<int>(nodes.size());
  res.diagnosis.num_nodes = num;
  if (num == 0) return res;
  CycleState state = PreFilter(pod, nodes, lister);
  if (!state.prefilter_message.empty()) {
    res.diagnosis.prefilter_message = state.prefilter_message;
    return res;
  }
  int want = NumFeasibleNodesToFind(num, options_.percentage_of_nodes_to_score);
  std::vector<const NodeInfo*> feasible;
  feasible.reserve(want);
  size_t start = next_start_ % nodes.size();
  int processed = 0;
  for (int i = 0; i < num && static_cast<int>(feasible.size()) < want; ++i) {
    const NodeInfo* ni = nodes[(start + i) % nodes.size()];
    ++processed;
    auto reasons = Filter(state, *ni);
    if (reasons.empty()) {
      feasible.push_back(ni);
    } else {
      for (auto& r : reasons) ++res.diagnosis.reasons[r];
    }
  }
  next_start_ = (start + processed) % nodes.size();
  res.evaluated_nodes = processed;
  res.feasible_nodes = static_cast<int>(feasible.size());
  if (feasible.empty()) return res;
  if (feasible.size() == 1) {
    res.node = feasible[0]->node->name;
    return res;
  }
  auto scores = Score(pod, feasible, nodes, options_.weights);
  int64_t best = scores[0].total;
  for (auto& s : scores) best = std::max(best, s.total);
  std::vector<const NodeInfo*> tied;
  for (auto& s : scores) {
    if (s.total == best) tied.push_back(s.node);
  }
  res.node = tied[ties_++ % tied.size()]->node->name;
  return res;
}

}  // namespace rc::scheduler
