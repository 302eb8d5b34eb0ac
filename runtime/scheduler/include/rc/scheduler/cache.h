// The scheduler cache: one NodeInfo per node, maintained incrementally from pod and node events,
// plus "assumed" pods (bound by this scheduler, not yet seen bound in the watch) so consecutive
// decisions see each other's effect. Kubernetes' internal/cache in miniature.
//
// Pod lifecycle in the cache:
//   AssumePod (decision made) -> FinishBinding / ForgetPod (bind failed)
//   AddPod/UpdatePod with spec.nodeName set confirms an assumed pod (on whatever node it names)
//   RemovePod (deleted, or terminal: Succeeded/Failed pods use no resources)
#pragma once

#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "rc/scheduler/types.h"

namespace rc::scheduler {

class Cache {
 public:
  Cache() = default;
  Cache(const Cache&) = delete;
  Cache& operator=(const Cache&) = delete;

  // Nodes. AddNode replaces the spec of a known node (an update).
  void AddNode(NodeSpecPtr node);
  void RemoveNode(const std::string& name);

  // A pod seen in the informer with spec.nodeName set (add or update): counted on that node. A
  // terminal pod is removed instead. Confirms an assumption for the same key.
  void AddPod(PodInfoPtr pod);
  void RemovePod(const std::string& key);

  // A decision: counts `pod` on `node` until it is confirmed by AddPod or forgotten.
  void AssumePod(PodInfoPtr pod, const std::string& node);
  // Binding failed: drops the assumption (no-op unless the key is assumed).
  void ForgetPod(const std::string& key);
  bool IsAssumed(const std::string& key) const;

  // Every node whose spec is known, in a stable order (insertion; removal moves the last node
  // into the gap). The pointers stay valid while the caller holds lock() and no mutation runs.
  std::span<const NodeInfo* const> Nodes() const { return order_; }
  const NodeInfo* Node(const std::string& name) const;
  size_t node_count() const { return order_.size(); }
  size_t pod_count() const { return pods_.size(); }
  size_t assumed_count() const;

  // Callers serialize through this mutex (informer handlers, the scheduling thread).
  std::mutex& mutex() const { return mu_; }

 private:
  struct PodState {
    PodInfoPtr pod;
    std::string node;
    bool assumed = false;
  };
  NodeInfo& NodeFor(const std::string& name);
  void Detach(const PodState& state);
  void MaybeDropNode(const std::string& name);

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<NodeInfo>> nodes_;
  std::vector<const NodeInfo*> order_;
  std::unordered_map<std::string, size_t> order_index_;
  std::unordered_map<std::string, PodState> pods_;
};

}  // namespace rc::scheduler
