// The node lifecycle controller (kube-controller-manager's node-lifecycle-controller and its
// taint-based eviction, reduced to what a cluster of rc-agents needs). See builtin_controllers.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "rc/apimachinery/json.h"
#include "rc/base/time.h"
#include "rc/controller/builtin_controllers.h"

namespace rc::controller {
namespace {

namespace am = rc::apimachinery;
using Value = rapidjson::Value;

constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";
constexpr const char* kNotReady = "node.kubernetes.io/not-ready";

std::string Str(const Value& v, const char* name) { return std::string(am::GetStringOr(v, name)); }

const Value* Path(const Value& v, std::initializer_list<const char*> path) {
  const Value* cur = &v;
  for (const char* p : path) {
    cur = cur->IsObject() ? am::FindMember(*cur, p) : nullptr;
    if (!cur) return nullptr;
  }
  return cur;
}

const Value* ConditionOf(const Value& obj, const std::string& type) {
  const Value* conds = Path(obj, {"status", "conditions"});
  if (!conds || !conds->IsArray()) return nullptr;
  for (const auto& c : conds->GetArray()) {
    if (c.IsObject() && Str(c, "type") == type) return &c;
  }
  return nullptr;
}

// Does `toleration` tolerate the taint (key, effect)? (Kubernetes' Toleration.ToleratesTaint.)
bool Tolerates(const Value& toleration, const std::string& key, const std::string& effect) {
  std::string t_effect = Str(toleration, "effect"), t_key = Str(toleration, "key");
  std::string op = Str(toleration, "operator");
  if (!t_effect.empty() && t_effect != effect) return false;
  if (!t_key.empty() && t_key != key) return false;
  if (t_key.empty() && op != "Exists") return false;  // an empty key needs Exists
  return op == "Exists" || Str(toleration, "value").empty();  // our taints have no value
}

class NodeLifecycleController : public BuiltinController {
 public:
  NodeLifecycleController(ControllerManager* m, NodeLifecycleOptions o) : m_(m), o_(o) {
    auto nodes = m_->informers().For("v1", "Node");
    auto pods = m_->informers().For("v1", "Pod");
    auto leases = m_->informers().For("coordination.k8s.io/v1", "Lease");
    if (!nodes.ok() || !pods.ok() || !leases.ok()) {
      spdlog::warn("node lifecycle: {}", (!nodes.ok() ? nodes.status() : !pods.ok() ? pods.status() : leases.status()).ToString());
      return;
    }
    nodes_ = *nodes;
    pods_ = *pods;
    leases_ = *leases;
    thread_ = std::thread([this] { Loop(); });
  }
  ~NodeLifecycleController() override { Stop(); }
  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Loop() {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(o_.monitor_period_ms), [this] { return stop_; });
        if (stop_) return;
      }
      if (!m_->IsLeader()) {
        first_seen_.clear();  // a new leader gives every node a full grace period again
        continue;
      }
      if (!nodes_->synced() || !pods_->synced() || !leases_->synced()) continue;
      try {
        Tick();
      } catch (const std::exception& e) {
        spdlog::warn("node lifecycle: {}", e.what());
      }
    }
  }

  int64_t Now() const { return NowUnixSeconds(); }

  void Tick() {
    const int64_t now = Now();
    std::map<std::string, std::vector<ObjectPtr>> pods_by_node;
    for (const auto& p : pods_->List("")) {
      if (const Value* n = Path(*p, {"spec", "nodeName"}); n && n->IsString() && n->GetStringLength() > 0) {
        pods_by_node[n->GetString()].push_back(p);
      }
    }
    std::set<std::string> present;
    for (const auto& node : nodes_->List("")) {
      std::string name(MetaString(*node, "name"));
      present.insert(name);
      first_seen_.emplace(name, now);
      // The last sign of life: the Lease's renewTime or the Ready condition's heartbeat, and
      // never before this controller first saw the node (a fresh leader waits a full grace).
      int64_t alive = first_seen_[name];
      const Value* ready = ConditionOf(*node, "Ready");
      if (ready) {
        if (auto t = ParseRfc3339(am::GetStringOr(*ready, "lastHeartbeatTime"))) alive = std::max(alive, *t);
      }
      if (ObjectPtr lease = leases_->Get("kube-node-lease/" + name)) {
        if (const Value* rt = Path(*lease, {"spec", "renewTime"}); rt && rt->IsString()) {
          if (auto t = ParseRfc3339(rt->GetString())) alive = std::max(alive, *t);
        }
      }
      // A node that never posted a Ready condition is left alone until its grace period ends.
      std::string ready_status = ready ? Str(*ready, "status") : "";
      if (now - alive > o_.grace_period_seconds && ready_status != "Unknown") {
        if (MarkUnknown(*node, now)) {
          ready_status = "Unknown";
          auto it = pods_by_node.find(name);
          if (it != pods_by_node.end()) {
            for (const auto& p : it->second) MarkPodNotReady(*p, now);
          }
        }
      }
      const char* taint = ready_status == "Unknown" ? kUnreachable : ready_status == "False" ? kNotReady : nullptr;
      auto taint_added = SyncTaints(*node, taint, now);
      if (taint && taint_added) {
        auto it = pods_by_node.find(name);
        if (it != pods_by_node.end()) {
          for (const auto& p : it->second) MaybeEvict(*p, taint, *taint_added, now);
        }
      }
    }
    for (auto it = first_seen_.begin(); it != first_seen_.end();) {
      it = present.count(it->first) ? std::next(it) : first_seen_.erase(it);
    }
  }

  // Sets the kubelet's conditions to Unknown ("Kubelet stopped posting node status."). True if
  // the node is now marked.
  bool MarkUnknown(const Value& node, int64_t now) {
    std::string name(MetaString(node, "name"));
    rapidjson::Document patch(rapidjson::kObjectType);
    auto& a = patch.GetAllocator();
    Value conds(rapidjson::kArrayType);
    bool had_ready = false;
    if (const Value* existing = Path(node, {"status", "conditions"}); existing && existing->IsArray()) {
      for (const auto& c : existing->GetArray()) {
        Value copy(c, a);
        std::string type = Str(c, "type");
        if (type == "Ready" || type == "MemoryPressure" || type == "DiskPressure" || type == "PIDPressure") {
          had_ready |= type == "Ready";
          if (Str(c, "status") != "Unknown") {
            copy.RemoveMember("lastTransitionTime");
            copy.AddMember("lastTransitionTime", Value(FormatRfc3339(now).c_str(), a), a);
          }
          copy.RemoveMember("status");
          copy.AddMember("status", "Unknown", a);
          copy.RemoveMember("reason");
          copy.AddMember("reason", "NodeStatusUnknown", a);
          copy.RemoveMember("message");
          copy.AddMember("message", "Kubelet stopped posting node status.", a);
        }
        conds.PushBack(copy, a);
      }
    }
    if (!had_ready) {
      Value c(rapidjson::kObjectType);
      c.AddMember("type", "Ready", a);
      c.AddMember("status", "Unknown", a);
      c.AddMember("lastHeartbeatTime", Value(FormatRfc3339(now).c_str(), a), a);
      c.AddMember("lastTransitionTime", Value(FormatRfc3339(now).c_str(), a), a);
      c.AddMember("reason", "NodeStatusNeverUpdated", a);
      c.AddMember("message", "Kubelet never posted node status.", a);
      conds.PushBack(c, a);
    }
    Value status(rapidjson::kObjectType);
    status.AddMember("conditions", conds, a);
    patch.AddMember("status", status, a);
    auto r = m_->client()->Do("PATCH", "/api/v1/nodes/" + name + "/status", am::ToJson(patch),
                              "application/merge-patch+json");
    Status s = r.ok() ? client::ToStatus(*r) : r.status();
    if (!s.ok()) {
      spdlog::warn("node lifecycle: marking node {} Unknown: {}", name, s.ToString());
      return false;
    }
    if (auto doc = am::ParseJson(r->body); doc.ok()) nodes_->Observe(*doc);
    spdlog::info("node lifecycle: node {} stopped posting status: Ready=Unknown", name);
    m_->events("node-controller").Record(node, "Normal", "NodeNotReady", "Node " + name + " status is now: NodeNotReady");
    return true;
  }

  void MarkPodNotReady(const Value& pod, int64_t now) {
    const Value* ready = ConditionOf(pod, "Ready");
    if (!ready || Str(*ready, "status") == "False") return;
    rapidjson::Document patch(rapidjson::kObjectType);
    auto& a = patch.GetAllocator();
    Value conds(rapidjson::kArrayType);
    for (const auto& c : Path(pod, {"status", "conditions"})->GetArray()) {
      Value copy(c, a);
      if (Str(c, "type") == "Ready") {
        copy.RemoveMember("status");
        copy.AddMember("status", "False", a);
        copy.RemoveMember("lastTransitionTime");
        copy.AddMember("lastTransitionTime", Value(FormatRfc3339(now).c_str(), a), a);
      }
      conds.PushBack(copy, a);
    }
    Value status(rapidjson::kObjectType);
    status.AddMember("conditions", conds, a);
    patch.AddMember("status", status, a);
    std::string path = "/api/v1/namespaces/" + std::string(MetaString(pod, "namespace")) + "/pods/" +
                       std::string(MetaString(pod, "name")) + "/status";
    auto r = m_->client()->Do("PATCH", path, am::ToJson(patch), "application/merge-patch+json");
    Status s = r.ok() ? client::ToStatus(*r) : r.status();
    if (!s.ok() && !s.IsNotFound()) spdlog::warn("node lifecycle: marking pod {} not ready: {}", path, s.ToString());
  }

  // Makes the node's NoSchedule + NoExecute taints for its condition exactly `taint` (null:
  // none of ours). Returns when the NoExecute taint was added (unix seconds), if present.
  std::optional<int64_t> SyncTaints(const Value& node, const char* taint, int64_t now) {
    std::string name(MetaString(node, "name"));
    std::optional<int64_t> added;
    bool have_schedule = false, have_execute = false, stale = false;
    const Value* taints = Path(node, {"spec", "taints"});
    if (taints && taints->IsArray()) {
      for (const auto& t : taints->GetArray()) {
        std::string key = Str(t, "key"), effect = Str(t, "effect");
        if (key != kUnreachable && key != kNotReady) continue;
        if (!taint || key != taint) {
          stale = true;
          continue;
        }
        if (effect == "NoSchedule") have_schedule = true;
        if (effect == "NoExecute") {
          have_execute = true;
          added = ParseRfc3339(am::GetStringOr(t, "timeAdded")).value_or(now);
        }
      }
    }
    if (!stale && (taint == nullptr || (have_schedule && have_execute))) return added;
    rapidjson::Document patch(rapidjson::kObjectType);
    auto& a = patch.GetAllocator();
    Value list(rapidjson::kArrayType);
    if (taints && taints->IsArray()) {
      for (const auto& t : taints->GetArray()) {
        std::string key = Str(t, "key");
        if (key == kUnreachable || key == kNotReady) {
          if (!taint || key != taint) continue;
        }
        list.PushBack(Value(t, a), a);
      }
    }
    if (taint) {
      for (const char* effect : {"NoSchedule", "NoExecute"}) {
        if ((std::string(effect) == "NoSchedule" && have_schedule) || (std::string(effect) == "NoExecute" && have_execute)) continue;
        Value t(rapidjson::kObjectType);
        t.AddMember("key", Value(taint, a), a);
        t.AddMember("effect", Value(effect, a), a);
        t.AddMember("timeAdded", Value(FormatRfc3339(now).c_str(), a), a);
        list.PushBack(t, a);
      }
      if (!have_execute) added = now;
    }
    Value spec(rapidjson::kObjectType);
    if (list.Empty()) {
      spec.AddMember("taints", Value(rapidjson::kNullType), a);  // no taints: the field goes, as in Kubernetes
    } else {
      spec.AddMember("taints", list, a);
    }
    patch.AddMember("spec", spec, a);
    auto r = m_->client()->Do("PATCH", "/api/v1/nodes/" + name, am::ToJson(patch), "application/merge-patch+json");
    Status s = r.ok() ? client::ToStatus(*r) : r.status();
    if (!s.ok()) {
      spdlog::warn("node lifecycle: taints of node {}: {}", name, s.ToString());
      return std::nullopt;
    }
    if (auto doc = am::ParseJson(r->body); doc.ok()) nodes_->Observe(*doc);
    spdlog::info("node lifecycle: node {} taints: {}", name, taint ? taint : "(none of ours)");
    return added;
  }

  // Taint-based eviction: a pod that does not tolerate the NoExecute taint is deleted once the
  // toleration's tolerationSeconds (or the default, as Kubernetes' DefaultTolerationSeconds
  // admission would have set it) have passed since the taint was added.
  void MaybeEvict(const Value& pod, const std::string& taint, int64_t added, int64_t now) {
    if (Path(pod, {"metadata", "deletionTimestamp"})) return;
    std::string phase = Path(pod, {"status", "phase"}) && Path(pod, {"status", "phase"})->IsString()
                            ? Path(pod, {"status", "phase"})->GetString()
                            : "";
    if (phase == "Succeeded" || phase == "Failed") return;
    if (const Value* ann = Path(pod, {"metadata", "annotations"}); ann && am::FindMember(*ann, "kubernetes.io/config.mirror")) {
      return;  // the node's agent owns it
    }
    if (const Value* owners = Path(pod, {"metadata", "ownerReferences"}); owners && owners->IsArray()) {
      for (const auto& o : owners->GetArray()) {
        if (Str(o, "kind") == "DaemonSet") return;  // DaemonSet pods tolerate node conditions
      }
    }
    int64_t tolerate = taint == kUnreachable ? o_.default_unreachable_toleration_seconds
                                             : o_.default_not_ready_toleration_seconds;
    if (const Value* tols = Path(pod, {"spec", "tolerations"}); tols && tols->IsArray()) {
      for (const auto& t : tols->GetArray()) {
        if (!t.IsObject() || !Tolerates(t, taint, "NoExecute")) continue;
        const Value* secs = am::FindMember(t, "tolerationSeconds");
        tolerate = secs && secs->IsInt64() ? std::max<int64_t>(0, secs->GetInt64()) : std::numeric_limits<int64_t>::max();
        break;
      }
    }
    if (tolerate == std::numeric_limits<int64_t>::max() || now < added + tolerate) return;
    std::string ns(MetaString(pod, "namespace")), name(MetaString(pod, "name"));
    auto r = m_->client()->Do("DELETE", "/api/v1/namespaces/" + ns + "/pods/" + name);
    Status s = r.ok() ? client::ToStatus(*r) : r.status();
    if (!s.ok() && !s.IsNotFound()) {
      spdlog::warn("node lifecycle: evicting pod {}/{}: {}", ns, name, s.ToString());
      return;
    }
    spdlog::info("node lifecycle: evicted pod {}/{} from a node tainted {}", ns, name, taint);
    m_->events("taint-eviction-controller").Record(pod, "Normal", "TaintManagerEviction", "Marking for deletion Pod " + ns + "/" + name);
  }

  ControllerManager* m_;
  NodeLifecycleOptions o_;
  Informer* nodes_ = nullptr;
  Informer* pods_ = nullptr;
  Informer* leases_ = nullptr;
  std::map<std::string, int64_t> first_seen_;  // Loop thread only
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<BuiltinController> StartNodeLifecycleController(ControllerManager* manager, NodeLifecycleOptions options) {
  return std::make_unique<NodeLifecycleController>(manager, options);
}

}  // namespace rc::controller
