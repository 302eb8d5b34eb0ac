#include "rc/scheduler/cache.h"

namespace rc::scheduler {

NodeInfo& Cache::NodeFor(const std::string& name) {
  auto& slot = nodes_[name];
  if (!slot) slot = std::make_unique<NodeInfo>();
  return *slot;
}

void Cache::AddNode(NodeSpecPtr node) {
  std::string name = node->name;
  NodeInfo& ni = NodeFor(name);
  ni.node = std::move(node);
  ++ni.generation;
  if (!order_index_.count(name)) {
    order_index_[name] = order_.size();
    order_.push_back(&ni);
  }
}

void Cache::RemoveNode(const std::string& name) {
  auto it = nodes_.find(name);
  if (it == nodes_.end()) return;
  if (auto oi = order_index_.find(name); oi != order_index_.end()) {
    size_t idx = oi->second;
    order_index_.erase(oi);
    const NodeInfo* last = order_.back();
    order_.pop_back();
    if (idx < order_.size()) {
      order_[idx] = last;
      order_index_[last->node->name] = idx;
    }
  }
  // Pods still bound to it keep an anonymous NodeInfo until they go (as Kubernetes' cache).
  if (it->second->pods.empty()) {
    nodes_.erase(it);
  } else {
    it->second->node.reset();
  }
}

void Cache::MaybeDropNode(const std::string& name) {
  auto it = nodes_.find(name);
  if (it != nodes_.end() && !it->second->node && it->second->pods.empty()) nodes_.erase(it);
}

void Cache::Detach(const PodState& state) {
  auto it = nodes_.find(state.node);
  if (it == nodes_.end()) return;
  it->second->RemovePod(*state.pod);
  MaybeDropNode(state.node);
}

void Cache::AddPod(PodInfoPtr pod) {
  std::string key = pod->key;
  auto it = pods_.find(key);
  if (it != pods_.end()) {
    Detach(it->second);
    pods_.erase(it);
  }
  if (pod->terminal || pod->node_name.empty()) return;
  std::string node = pod->node_name;
  NodeFor(node).AddPod(pod);
  pods_[key] = PodState{std::move(pod), std::move(node), false};
}

void Cache::RemovePod(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  Detach(it->second);
  pods_.erase(it);
}

void Cache::AssumePod(PodInfoPtr pod, const std::string& node) {
  std::string key = pod->key;
  RemovePod(key);
  NodeFor(node).AddPod(pod);
  pods_[key] = PodState{std::move(pod), node, true};
}

void Cache::ForgetPod(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end() || !it->second.assumed) return;
  Detach(it->second);
  pods_.erase(it);
}

bool Cache::IsAssumed(const std::string& key) const {
  auto it = pods_.find(key);
  return it != pods_.end() && it->second.assumed;
}

size_t Cache::assumed_count() const {
  size_t n = 0;
  for (auto& [k, s] : pods_) n += s.assumed ? 1 : 0;
  return n;
}

const NodeInfo* Cache::Node(const std::string& name) const {
  auto it = nodes_.find(name);
  return it == nodes_.end() ? nullptr : it->second.get();
}

}  // namespace rc::scheduler
