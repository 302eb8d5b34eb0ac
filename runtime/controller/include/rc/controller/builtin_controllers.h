// The generic controllers written in C++ because they act on every resource type, including
// operator types that appear while rcd runs:
//  - GarbageCollector: ownerReferences. A dependent whose owners are all gone is deleted; dangling
//    references are removed; an owner deleted with propagationPolicy=Orphan ("orphan" finalizer)
//    has its dependents' references removed, then the finalizer; Foreground ("foregroundDeletion")
//    deletes the dependents first (foreground too) and drops the finalizer once no dependent with
//    blockOwnerDeletion remains. Owner absence is confirmed with a live GET before deleting.
//  - NamespaceController: a namespace being deleted (phase Terminating) has every namespaced object
//    in it deleted; when none is left the `kubernetes` finalizer is removed through
//    /api/v1/namespaces/{name}/finalize and the namespace disappears.
// Both only act while the manager leads.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "rc/controller/controller_manager.h"

namespace rc::controller {

class BuiltinController {
 public:
  virtual ~BuiltinController() = default;
  virtual void Stop() = 0;
};

std::unique_ptr<BuiltinController> StartGarbageCollector(ControllerManager* manager);
std::unique_ptr<BuiltinController> StartNamespaceController(ControllerManager* manager);
// Publishes every loaded controller as an rc.dev/v1 Controller object (name: the controller name
// lower-cased without a "Controller" suffix) with its source hash, load time, version and
// counters, every `period_ms` while leading; removes objects of controllers no longer loaded.
std::unique_ptr<BuiltinController> StartControllerStatusReporter(ControllerManager* manager, int period_ms = 1000);
// Node IPAM (kube-controller-manager's range allocator): each Node without spec.podCIDR gets the
// next free /node_mask_size block of cluster_cidr (IPv4), written as spec.podCIDR(s); blocks of
// deleted nodes are reused; an exhausted range gives a CIDRNotAvailable Event. Leader only.
Result<std::unique_ptr<BuiltinController>> StartNodeIpamController(ControllerManager* manager,
                                                                   const std::string& cluster_cidr,
                                                                   int node_mask_size);
// The node lifecycle controller (kube-controller-manager's, simplified), leader only, every
// monitor_period_ms:
//  - a node whose Lease renewTime and Ready heartbeat are both older than grace_period_seconds
//    gets its kubelet conditions set to Unknown (NodeStatusUnknown, "Kubelet stopped posting
//    node status.", a NodeNotReady Event) and the Ready condition of its pods set to False (so
//    Endpoints drop them);
//  - nodes carry node.kubernetes.io/unreachable (Ready Unknown) or node.kubernetes.io/not-ready
//    (Ready False) NoSchedule + NoExecute taints, removed when Ready is True again;
//  - pods on a NoExecute-tainted node that do not tolerate the taint are deleted after their
//    toleration's tolerationSeconds, or the default_*_toleration_seconds Kubernetes'
//    DefaultTolerationSeconds admission would have given them (TaintManagerEviction Event).
//    Mirror pods and DaemonSet pods stay.
struct NodeLifecycleOptions {
  int monitor_period_ms = 5000;
  int grace_period_seconds = 40;
  int64_t default_unreachable_toleration_seconds = 300;
  int64_t default_not_ready_toleration_seconds = 300;
};
std::unique_ptr<BuiltinController> StartNodeLifecycleController(ControllerManager* manager,
                                                                NodeLifecycleOptions options = {});
// "ReplicaSetController" -> "replicaset".
std::string ControllerObjectName(const std::string& controller_name);

}  // namespace rc::controller
