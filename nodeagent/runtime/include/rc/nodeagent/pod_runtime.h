// PodRuntime: the node agent's view of the container runtime (CRI-like). RuncPodRuntime
// (runc_pod_runtime.h) is the real one; FakePodRuntime (fake_pod_runtime.h) serves the agent's
// unit tests. Every method is thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rc/base/status.h"

namespace rc::nodeagent {

// A container port published on the node (containers[].ports[].hostPort).
struct PortMapping {
  int host_port = 0, container_port = 0;
  std::string protocol = "tcp";  // "tcp", "udp" or "sctp", as CNI's portMappings spell them
  std::string host_ip;           // "" = every address of the node
};

struct SandboxConfig {
  std::string pod_uid, pod_namespace, pod_name, hostname;
  std::vector<PortMapping> port_mappings;
  // Written to the sandbox's /etc/resolv.conf; both empty: a copy of the host's.
  std::vector<std::string> dns_servers, dns_searches;
};

struct SandboxInfo {
  std::string id;
  int pause_pid = 0;
  std::string netns_path;  // bind mount of the pod's network namespace (survives agent restarts)
  std::string ip;          // the pod IP from CNI ("" when the network is not set up)
  // Recovery: who the sandbox belongs to, and whether its pause process is still alive.
  std::string pod_uid, pod_namespace, pod_name, hostname;
  bool ready = false;
  int64_t created_at_unix = 0;
  std::string cni_capability_args;  // what ADD was given ({"portMappings":[...]}), for CHECK and DEL
};

struct ContainerConfig {
  std::string sandbox_id, name, image;
  std::vector<std::string> command, args;  // Kubernetes semantics against the image's Entrypoint/Cmd
  std::vector<std::pair<std::string, std::string>> env;  // after the image's env, same name wins
  std::string working_dir;                 // "" -> image WorkingDir -> "/"
  int64_t memory_limit_bytes = 0;          // 0: unlimited
  int64_t cpu_limit_millis = 0;            // 0: unlimited
  std::string log_path;                    // stdout+stderr appended here (parent dirs created)
  int attempt = 0;                         // restart count, kept for ListContainers
};

enum class ContainerStatusKind { kCreated, kRunning, kExited, kUnknown };
const char* ContainerStatusKindName(ContainerStatusKind kind);

struct ContainerStatus {
  std::string id;
  ContainerStatusKind kind = ContainerStatusKind::kUnknown;
  int pid = 0;                // host pid of the container's init while running
  int exit_code = 0;          // 128+N when killed by signal N
  std::string reason;         // exited: "Completed" (0), "Error", "OOMKilled"
  std::string message;        // e.g. why the state is unknown
  int64_t started_at_unix = 0, finished_at_unix = 0;
};

struct ContainerRecord {
  std::string id, sandbox_id, name, image;
  int attempt = 0;
  std::string log_path;
  int64_t created_at_unix = 0;
  ContainerStatus status;
};

struct ExecResult {
  int exit_code = 0;
  std::string output;  // stdout then stderr interleaved as written (one pipe)
  bool timed_out = false;
};

class PodRuntime {
 public:
  virtual ~PodRuntime() = default;
  // Starts the pause process (new net/ipc/uts/pid namespaces) and sets up the network (CNI ADD).
  virtual Result<SandboxInfo> RunSandbox(const SandboxConfig& config) = 0;
  // Kills and removes the sandbox's containers, CNI DEL, kills pause, unmounts, removes its
  // state. Ok for an unknown id (idempotent).
  virtual Status StopSandbox(const std::string& sandbox_id) = 0;
  // Returns the new container's id once its process runs. Missing image: kNotFound; unknown
  // sandbox: kNotFound; no command (none given, none in the image): kInvalidArgument; runc
  // refused to start the process (a missing executable, a bad working dir): kInternal; the
  // node's trouble (files, a shim that never answered): kIOError / kUnavailable.
  virtual Result<std::string> CreateAndStartContainer(const ContainerConfig& config) = 0;
  virtual Result<ContainerStatus> InspectContainer(const std::string& id) = 0;
  // SIGTERM, waits up to grace_seconds, then SIGKILL; returns once the process has exited.
  // Ok when already exited.
  virtual Status StopContainer(const std::string& id, int grace_seconds) = 0;
  // Removes a container (killing it if still running) and its state; the log file stays.
  virtual Status RemoveContainer(const std::string& id) = 0;
  // Runs argv inside the container (runc exec); timed_out kills the process.
  virtual Result<ExecResult> Exec(const std::string& id, const std::vector<std::string>& argv,
                                  int timeout_ms) = 0;
  // One sandbox; ready is false once its pause process is gone. Unknown id: kNotFound.
  // ListSandboxes/ListContainers fail (never return a partial list as complete) when the
  // runtime's state cannot be read.
  virtual Result<SandboxInfo> InspectSandbox(const std::string& sandbox_id) = 0;
  virtual Result<std::vector<SandboxInfo>> ListSandboxes() = 0;
  virtual Result<std::vector<ContainerRecord>> ListContainers() = 0;
};

}  // namespace rc::nodeagent
