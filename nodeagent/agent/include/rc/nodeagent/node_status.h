// Node registration and heartbeats, shared by the real agent and the simulated nodes: the Node
// object (capacity, allocatable, addresses, conditions, daemon endpoints, node info), its Lease
// in kube-node-lease renewed every few seconds, and periodic status updates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"

namespace rc::nodeagent {

struct NodeResources {
  int64_t cpu_millis = 0;
  int64_t memory_bytes = 0;
  int64_t pods = 110;
  int64_t ephemeral_storage_bytes = 0;
};

// What this host offers: cpus from sched_getaffinity, memory from /proc/meminfo, disk of `dir`.
NodeResources DetectHostResources(const std::string& dir = "/");

struct NodeIdentity {
  std::string name;
  std::string internal_ip;            // reported as InternalIP (where the kubelet port listens)
  std::vector<std::string> extra_ips; // further InternalIP addresses (the node netns's)
  int kubelet_port = 10250;
  std::map<std::string, std::string> labels;  // kubernetes.io/hostname etc. are added
  NodeResources capacity, allocatable;
  std::string kernel_version, os_image, runtime_version = "runc://1.1", kubelet_version = "v1.31.0-rc";
  std::string pod_cidr;  // sent only when the agent was given one (--pod-cidr)
};

// The Node as first registered (metadata + spec + status).
std::string NodeObjectJson(const NodeIdentity& node, bool ready, const std::string& now_rfc3339);
// A merge patch for nodes/NAME/status: capacity, allocatable, addresses, daemonEndpoints,
// nodeInfo and the conditions (Ready with `ready`, the pressure conditions False), heartbeats now.
std::string NodeStatusPatchJson(const NodeIdentity& node, bool ready, const std::string& now_rfc3339);
// RFC 3339 UTC of the current time, seconds ("2026-12-01T20:00:00Z") or micro ("...00.123456Z").
std::string NowRfc3339();
std::string NowRfc3339Micro();

// Creates the Node (an existing one keeps its spec; its labels are merged) and sets its status.
Status RegisterNode(client::RestClient* client, const NodeIdentity& node, bool ready);
// Creates or renews kube-node-lease/NAME (holder NAME, duration seconds).
Status RenewNodeLease(client::RestClient* client, const std::string& node, int duration_seconds);

struct HeartbeatOptions {
  int lease_duration_seconds = 40;
  int lease_renew_ms = 10000;
  int status_update_ms = 60000;  // plus whenever MarkDirty() is called
  int threads = 1;               // nodes are spread over the threads
};

// Keeps a set of registered nodes alive: renews their Leases and refreshes their status.
class NodeHeartbeat {
 public:
  NodeHeartbeat(client::RestClient* client, std::vector<NodeIdentity> nodes, HeartbeatOptions options);
  ~NodeHeartbeat();
  // Registers every node (retrying until the API answers or Stop), then heartbeats in the
  // background. Returns the first registration error only if `stop` came first.
  Status Start();
  void Stop();
  // The status of `node` is sent again at the next tick (e.g. new readiness).
  void SetReady(const std::string& node, bool ready);
  int64_t lease_renewals() const { return renewals_.load(); }
  int64_t failures() const { return failures_.load(); }

 private:
  void Loop(size_t shard);

  client::RestClient* client_;
  std::vector<NodeIdentity> nodes_;
  HeartbeatOptions options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::map<std::string, bool> ready_;  // guarded by mu_
  std::map<std::string, bool> dirty_;
  std::atomic<int64_t> renewals_{0}, failures_{0};
  std::vector<std::thread> threads_;
};

}  // namespace rc::nodeagent
