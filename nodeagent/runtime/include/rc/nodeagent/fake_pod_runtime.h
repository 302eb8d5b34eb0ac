// FakePodRuntime: an in-memory PodRuntime for the agent's unit tests. Sandboxes get IPs from
// 10.88.0.0/16 in order; containers start Running (pid 1000+n) and change state only through
// the test's hooks (Exit, FailNext...) or StopContainer. Thread-safe.
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <set>

#include "rc/nodeagent/pod_runtime.h"

namespace rc::nodeagent {

class FakePodRuntime : public PodRuntime {
 public:
  Result<SandboxInfo> RunSandbox(const SandboxConfig& config) override;
  Status StopSandbox(const std::string& sandbox_id) override;
  Result<std::string> CreateAndStartContainer(const ContainerConfig& config) override;
  Result<ContainerStatus> InspectContainer(const std::string& id) override;
  Status StopContainer(const std::string& id, int grace_seconds) override;
  Status RemoveContainer(const std::string& id) override;
  Result<ExecResult> Exec(const std::string& id, const std::vector<std::string>& argv,
                          int timeout_ms) override;
  Result<SandboxInfo> InspectSandbox(const std::string& sandbox_id) override;
  Result<std::vector<SandboxInfo>> ListSandboxes() override;
  Result<std::vector<ContainerRecord>> ListContainers() override;

  // Test hooks.
  void AddImage(const std::string& ref);              // CreateAndStart of other images: kNotFound
  void Exit(const std::string& container_id, int exit_code, std::string reason = "");
  // The pause process dies: the sandbox turns not ready, its running containers exit 137.
  void KillSandbox(const std::string& sandbox_id);
  void FailNextRunSandbox(Status status);
  // Containers ignore SIGTERM: StopContainer kills them when the grace period ends.
  void IgnoreSigterm(bool ignore);
  // The next `count` ListSandboxes calls fail with `status`.
  void FailLists(Status status, int count);
  void FailNextCreate(Status status);
  // Exec answers; default: exit 0, empty output.
  void SetExecHandler(std::function<ExecResult(const std::string& id,
                                               const std::vector<std::string>& argv)> handler);
  // A copy of the config a container was created with.
  Result<ContainerConfig> ConfigOf(const std::string& container_id);
  int stop_calls() const;

 private:
  mutable std::mutex mu_;
  int next_ = 0;
  std::set<std::string> images_;
  std::map<std::string, SandboxInfo> sandboxes_;
  std::map<std::string, std::pair<ContainerConfig, ContainerRecord>> containers_;
  Status fail_sandbox_, fail_create_, fail_list_;
  int fail_list_count_ = 0;
  bool ignore_sigterm_ = false;
  std::function<ExecResult(const std::string&, const std::vector<std::string>&)> exec_;
  int stop_calls_ = 0;
};

}  // namespace rc::nodeagent
