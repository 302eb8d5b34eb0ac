// The node agent's pod manager: watches the pods bound to its node
// (fieldSelector=spec.nodeName=NODE) and drives each one, level-triggered, towards its spec on a
// PodRuntime: sandbox, init containers in order, containers with restart policy and crash
// back-off, probes, status through pods/NAME/status, Events as the kubelet writes them, and
// graceful deletion (SIGTERM, grace, SIGKILL, sandbox removed, then the pod object deleted with
// gracePeriodSeconds=0). State is rebuilt from the runtime after a restart: running containers
// are adopted, not restarted.
#pragma once

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"
#include "rc/controller/event_recorder.h"
#include "rc/controller/informer.h"
#include "rc/controller/work_queue.h"
#include "rc/nodeagent/pod_runtime.h"
#include "rc/nodeagent/prober.h"

namespace rc::nodeagent {

class ImageStore;

struct PodManagerOptions {
  std::string node_name;
  std::string host_ip;           // status.hostIP
  std::string log_dir;           // STATE/pods: <uid>/<container>/<attempt>.log
  std::string pod_netns_path;    // where probes dial ("" = the agent's own network)
  int workers = 4;
  std::chrono::milliseconds resync{1000};  // each pod is looked at least this often
  int initial_backoff_seconds = 10, max_backoff_seconds = 300;
  ImageStore* images = nullptr;  // imagePullPolicy checks; null: the runtime decides
  // The Services of a namespace (spec.enableServiceLinks: their Docker-links style variables go
  // into every container's environment, before its own env). Null: no Service variables.
  std::function<std::vector<controller::ObjectPtr>(const std::string& ns)> services;
  int adopt_attempts = 5;        // listing the runtime at Start, this many times
  std::chrono::milliseconds adopt_retry{1000};
};

struct PodCounters {
  int64_t syncs = 0, containers_started = 0, restarts = 0, status_updates = 0, deletions = 0;
};

// The kubelet's Service environment variables for `services` (those with a cluster IP), in
// name order: NAME_SERVICE_HOST, NAME_SERVICE_PORT[_PORTNAME], NAME_PORT,
// NAME_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR] with NAME upper-cased and '-' -> '_'.
std::vector<std::pair<std::string, std::string>> ServiceEnvironment(
    const std::vector<controller::ObjectPtr>& services);

class PodManager {
 public:
  PodManager(client::RestClient* client, client::ResourceInfo pods, PodRuntime* runtime,
             controller::EventRecorder* events, PodManagerOptions options);
  ~PodManager();
  // Adopts what the runtime already runs, then starts watching and syncing. If the runtime
  // cannot be listed (retried for options.adopt_attempts), fails without starting anything:
  // starting pods blind would run a second copy of containers that already run.
  Status Start();
  void Stop();

  // Static pods (from files): synced like API pods; `pod` carries the mirror's name and uid.
  void UpsertStaticPod(const std::string& key, std::shared_ptr<const rapidjson::Document> pod);
  void RemoveStaticPod(const std::string& key);
  // The pod's status is written again at its next sync (a recreated mirror pod has none).
  void ResendStatus(const std::string& key);

  // The pods this node runs, as last seen (API and static), for GET /pods.
  std::vector<controller::ObjectPtr> Pods() const;
  struct LogLocation {
    std::string path;
    bool running = false;  // the attempt is still running (follow goes on)
  };
  // The log of ns/pod's container: the current attempt, or the previous one.
  Result<LogLocation> LogFor(const std::string& ns, const std::string& pod, const std::string& container,
                             bool previous);
  // Whether the log's container attempt still runs (a follow ends when it does not).
  bool AttemptRunning(const std::string& log_path);
  PodCounters counters() const;
  bool synced() const;

 private:
  struct ProbeState {
    ProbeSpec spec;
    std::chrono::steady_clock::time_point next;
    int successes = 0, failures = 0;
    std::optional<bool> result;  // unknown until the first probe
  };
  struct ContainerState {
    std::string name, id, image, image_id;
    int restart_count = 0;  // == the running attempt
    bool ready = false, started = false;
    std::string waiting_reason, waiting_message;
    int backoff_seconds = 0;
    std::chrono::steady_clock::time_point restart_not_before;
    bool init = false;
    ProbeState liveness, readiness, startup;
    std::string probes_for;  // container id the probe states belong to
    std::string log_path;
    // The previous attempt's terminated state, for lastState.
    std::optional<ContainerStatus> last_termination;
    std::string last_container_id;
    std::string last_log_path;
    // A terminated state no runtime container backs, which the restart policy handles like an
    // exit: the runtime could not start the attempt (kubelet's StartError, exit code 128), or
    // the attempt died with its sandbox (the runtime's container is gone with it).
    std::optional<ContainerStatus> detached_exit;
    bool stopping = false;  // a liveness kill is in flight: no more probes for this attempt
  };
  struct PodState {
    std::string uid, ns, name;
    std::optional<SandboxInfo> sandbox;
    std::map<std::string, ContainerState> containers;  // by name
    std::string last_status;  // the status JSON last written (worker only)
    std::atomic<bool> resend{false};  // set by ResendStatus from other threads
    std::string start_time;
    bool is_static = false;
    bool finished = false;  // Succeeded/Failed reported and the sandbox released
    std::string sandbox_error;
    bool sandbox_lost = false;  // the sandbox died under restartPolicy Never: no new one
    std::string sandbox_changed_for;  // the dead sandbox a SandboxChanged Event was sent for
    // Container stops in flight (graceful deletion, liveness kills): they run on threads of
    // their own so a long grace period never holds a worker that other pods need.
    std::vector<std::future<Status>> stops;
    int stopping_grace = -1;  // the grace period the deletion's stops were started with
  };

  // The pod's pause process is gone: its containers are stopped with their last states kept,
  // the sandbox (and IP) released; a new one is made unless restartPolicy is Never. False: the
  // sandbox could not be removed yet (retried).
  bool ReplaceDeadSandbox(const rapidjson::Value& pod, PodState& st, const std::string& restart_policy);
  void StartStop(PodState& st, const std::string& container_id, int grace_seconds);
  // True once every stop in flight has returned; the first failure goes to *error.
  bool StopsDone(PodState& st, Status* error);
  void WaitStops(PodState& st);  // after Teardown: the stops in flight end with the processes
  void Worker();
  Status Sync(const std::string& key, std::chrono::milliseconds* requeue);
  controller::ObjectPtr Lookup(const std::string& key) const;
  Status Teardown(PodState& st, int grace_seconds, const rapidjson::Value* pod);
  Status StartContainer(const rapidjson::Value& pod, const rapidjson::Value& spec, PodState& st, ContainerState& cs,
                        bool restart);
  void ProbeContainer(const rapidjson::Value& pod, const rapidjson::Value& spec, PodState& st, ContainerState& cs,
                      std::chrono::milliseconds* requeue);
  Status WriteStatus(const rapidjson::Value& pod, PodState& st, const std::string& phase,
                     const std::string& reason, const std::string& message);
  void Event(const rapidjson::Value& pod, const std::string& type, const std::string& reason, const std::string& message);
  // Lists what the runtime already runs; an error means nothing may be started (it could run
  // already).
  Status Adopt();

  client::RestClient* client_;
  client::ResourceInfo pods_resource_;
  PodRuntime* runtime_;
  controller::EventRecorder* events_;
  PodManagerOptions options_;
  std::unique_ptr<controller::Informer> informer_;
  controller::WorkQueue queue_;
  mutable std::mutex mu_;  // guards states_, static_pods_, counters_
  std::map<std::string, std::shared_ptr<PodState>> states_;  // by ns/name
  std::map<std::string, controller::ObjectPtr> static_pods_;
  std::map<std::string, std::unique_ptr<std::mutex>> pod_locks_;
  PodCounters counters_;
  // What the HTTP threads read (LogFor, AttemptRunning), kept apart from the workers' PodState:
  // "ns/pod/container" -> the current attempt's log and container id, the previous attempt's log.
  struct LogEntry {
    std::string current, previous, container_id;
  };
  std::map<std::string, LogEntry> logs_;  // guarded by mu_
  void IndexLog(const PodState& st, const ContainerState& cs);
  void ForgetLogs(const std::string& key);
  // Adopted from the runtime at start: pod uid -> (sandbox, containers).
  std::map<std::string, std::pair<SandboxInfo, std::vector<ContainerRecord>>> adopted_;
  std::mutex first_sandbox_mu_;
  std::atomic<bool> first_sandbox_done_{false};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

}  // namespace rc::nodeagent
