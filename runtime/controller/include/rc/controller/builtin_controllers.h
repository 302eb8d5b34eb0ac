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
// "ReplicaSetController" -> "replicaset".
std::string ControllerObjectName(const std::string& controller_name);

}  // namespace rc::controller
