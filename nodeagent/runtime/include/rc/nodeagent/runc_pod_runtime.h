// RuncPodRuntime: PodRuntime on rc-pause sandboxes, CNI plugins and runc, one rc-shim per
// container. Everything lives under the state dir, so an agent started later over the same dir
// finds its sandboxes and containers (which keep running meanwhile):
//   STATE/sandboxes/<id>/  sandbox.json, ns/{net,ipc,uts} (bind mounts), cni-result.json,
//                          hosts, hostname, resolv.conf
//   STATE/containers/<id>/ container.json, config.json (the OCI bundle), rootfs (overlay of the
//                          image rootfs + upper/ work/), pid, started, exit, runc.log
//   STATE/runc             runc --root
//   STATE/cni/{net.d,ipam} the default conflist (when pod_cidr is set) and host-local's dataDir
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "rc/nodeagent/cni.h"
#include "rc/nodeagent/image_store.h"
#include "rc/nodeagent/pod_runtime.h"

namespace rc::nodeagent {

struct RuncPodRuntimeOptions {
  std::string state_dir;                                   // required
  ImageStore* images = nullptr;                            // required, not owned
  std::vector<std::string> cni_bin_dirs = {"/usr/lib/cni"};
  std::string cni_conf_dir;            // "" -> STATE/cni/net.d
  // When set, Create writes MakeBridgeConfList("rc", bridge_name, pod_cidr, STATE/cni/ipam) as
  // 10-rc.conflist into cni_conf_dir (replacing an older one of that name).
  std::string pod_cidr;
  std::string bridge_name = "rc0";
  std::string runc_path = "/usr/sbin/runc";
  std::string pause_path, shim_path;   // "" -> rc-pause / rc-shim beside the running binary
  // CNI plugins run in this network namespace (the node's); "" -> the agent's own.
  std::string node_netns_path;
  // Containers' cgroups: /<cgroup_parent>/<sandbox id>/<container id> in every controller;
  // cgroups (and limits) are skipped when this is "" or the hierarchy is not writable.
  std::string cgroup_parent = "rc";
  int start_timeout_ms = 30000;
};

// Measured inside rc-shim for the last container started (for benchmarks).
struct RuncTimings {
  int64_t create_us = 0, start_us = 0;  // `runc create`, `runc start` wall time
};

class RuncPodRuntime : public PodRuntime {
 public:
  // Checks the binaries, creates the state layout and the default CNI config.
  static Result<std::unique_ptr<RuncPodRuntime>> Create(RuncPodRuntimeOptions options);
  ~RuncPodRuntime() override = default;

  Result<SandboxInfo> RunSandbox(const SandboxConfig& config) override;
  Status StopSandbox(const std::string& sandbox_id) override;
  Result<std::string> CreateAndStartContainer(const ContainerConfig& config) override;
  Result<ContainerStatus> InspectContainer(const std::string& id) override;
  Status StopContainer(const std::string& id, int grace_seconds) override;
  Status RemoveContainer(const std::string& id) override;
  Result<ExecResult> Exec(const std::string& id, const std::vector<std::string>& argv,
                          int timeout_ms) override;
  Result<SandboxInfo> InspectSandbox(const std::string& sandbox_id) override { return LoadSandbox(sandbox_id); }
  Result<std::vector<SandboxInfo>> ListSandboxes() override;
  Result<std::vector<ContainerRecord>> ListContainers() override;

  // CNI CHECK of a sandbox's network.
  Status CheckSandboxNetwork(const std::string& sandbox_id);
  // runc's own timings for a container started by this process (zero when unknown).
  RuncTimings Timings(const std::string& container_id);
  const RuncPodRuntimeOptions& options() const { return options_; }

 private:
  explicit RuncPodRuntime(RuncPodRuntimeOptions options);
  // CNI DEL errors stop the teardown (so a retry can release the IP) unless ignored.
  Status TeardownSandbox(const std::string& id, bool ignore_cni_errors);
  Result<SandboxInfo> LoadSandbox(const std::string& id);
  Result<ContainerRecord> LoadContainer(const std::string& id);
  Result<std::string> Runc(const std::vector<std::string>& args, int timeout_ms = 30000);
  CniInvocation Invocation(const SandboxInfo& sandbox) const;
  std::string SandboxDir(const std::string& id) const;
  std::string ContainerDir(const std::string& id) const;

  RuncPodRuntimeOptions options_;
  CniDriver cni_;
  bool cgroups_ok_ = false;
  bool cgroup_v1_ = true;
};

}  // namespace rc::nodeagent
