// Simulated nodes (like kwok): `rc-agent --simulate N` registers N Nodes that heartbeat like real
// ones (Lease renewals, periodic status) and turn every pod bound to them Running at once — status
// phase Running, conditions, a fake pod IP, running/ready containers — without any container. Pods
// being deleted (deletionTimestamp set) are removed with gracePeriodSeconds=0 and their uid as the
// precondition, as a real agent does once the containers stopped. For scale tests and benchmarks.
//
//   SimulatorOptions o;
//   o.nodes = 1000;
//   Simulator sim(client.get(), o);
//   if (Status s = sim.Start(); !s.ok()) ...   // blocks until all nodes are registered
//   ...
//   sim.Stop();
//
// Cost model (thousands of nodes, tens of thousands of pods on two cores): one pod informer
// (fieldSelector spec.nodeName!=, filtered to this simulator's nodes by name), one work queue, a
// few worker threads issuing exactly one status PATCH per started pod and one DELETE per deleted
// pod; heartbeats spread over a few threads through NodeHeartbeat.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"
#include "rc/nodeagent/node_status.h"

namespace rc::controller {
class Informer;
class WorkQueue;
}  // namespace rc::controller

namespace rc::nodeagent {

struct SimulatorOptions {
  int nodes = 1;
  std::string name_prefix = "sim-";  // nodes are PREFIX0 .. PREFIX{N-1}
  // Capacity (= allocatable) of every node.
  NodeResources capacity{.cpu_millis = 32000, .memory_bytes = int64_t{256} << 30, .pods = 110};
  // Labels of every node (kubernetes.io/hostname, os and arch are added). Default type=kwok.
  std::map<std::string, std::string> labels = {{"type", "kwok"}};
  // Heartbeats. Kubernetes' kubelet renews every 10 s (duration 40 s) and reports status every
  // 5 min when nothing changed; simulated nodes renew less often so that thousands of them leave
  // the API server to the workload being measured.
  int lease_duration_seconds = 60;
  int lease_renew_ms = 30000;
  int status_update_ms = 300000;
  // Nodes are split into this many NodeHeartbeats (one thread each), registered in parallel.
  int heartbeat_shards = 4;
  // Threads writing pod status / deletions (each blocks on one request at a time).
  int workers = 4;
  // Pod IPs: node i gets the i-th block of 2^k addresses (k fitting pods+2, at least /24) inside
  // 10.0.0.0/8; node i's InternalIP is 172.16.0.0 + i + 1.
};

struct SimulatorStats {
  int64_t nodes = 0;             // registered
  int64_t pods_running = 0;      // started and not yet deleted
  int64_t pods_started = 0;      // status PATCHes to Running that succeeded
  int64_t pods_deleted = 0;      // DELETEs with grace 0 that succeeded (or found the pod gone)
  int64_t status_failures = 0;   // failed status PATCHes (retried with back-off)
  int64_t delete_failures = 0;   // failed DELETEs (retried with back-off)
  int64_t lease_renewals = 0;
  int64_t heartbeat_failures = 0;
};

// Parses the --simulate-cpu/--simulate-memory/--simulate-pods values ("32", "500m"; "256Gi").
Result<NodeResources> ParseSimulatedResources(const std::string& cpu, const std::string& memory, int64_t pods);

class Simulator {
 public:
  // `client` must outlive the simulator.
  Simulator(client::RestClient* client, SimulatorOptions options);
  ~Simulator();  // Stop()
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Validates the options, registers every node (retrying until the API server answers), then
  // starts the heartbeats, the pod informer and the workers. Returns once the nodes are
  // registered and the pod cache has synced. InvalidArgument for bad options; the registration
  // error if Stop() was called meanwhile.
  Status Start();
  // Stops everything (safe from another thread while Start() blocks; idempotent). Pods and nodes
  // are left in place (their Leases expire).
  void Stop();

  SimulatorStats stats() const;
  const std::vector<std::string>& node_names() const { return names_; }
  // One line for logs: "nodes=1000 running=9990 started=10000 deleted=10 ...".
  std::string StatsLine() const;

 private:
  struct PodState {
    std::string uid;
    uint32_t ip = 0;  // 0 = none yet
    bool started = false;  // nothing left to do until it is deleted
    bool running = false;  // counted in pods_running_
  };
  void Worker();
  // Returns ok when the key needs no further work; an error to retry with back-off.
  Status Sync(const std::string& key);
  uint32_t AllocateIpLocked(size_t node_index);
  void ReleaseLocked(const std::string& key);
  bool IsMine(const std::string& node_name, size_t* index) const;

  client::RestClient* client_;
  SimulatorOptions options_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, size_t> index_of_;
  std::vector<NodeIdentity> identities_;
  int block_bits_ = 8;

  mutable std::mutex start_mu_;  // guards stopped_, heartbeats_, pods_, queue_ creation
  bool stopped_ = false;
  std::vector<std::unique_ptr<NodeHeartbeat>> heartbeats_;
  std::unique_ptr<controller::Informer> pods_;
  std::unique_ptr<controller::WorkQueue> queue_;
  std::vector<std::thread> workers_;

  std::mutex mu_;  // guards pod_state_, used_, next_offset_
  std::unordered_map<std::string, PodState> pod_state_;  // by namespace/name
  std::vector<std::vector<bool>> used_;                  // per node: IP offsets in use
  std::vector<uint32_t> next_offset_;                    // per node: where the next search starts

  std::atomic<int64_t> nodes_registered_{0}, pods_running_{0}, pods_started_{0}, pods_deleted_{0},
      status_failures_{0}, delete_failures_{0};
};

}  // namespace rc::nodeagent
