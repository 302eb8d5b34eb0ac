#include "rc/nodeagent/fake_pod_runtime.h"

#include <chrono>
#include <thread>

#include "rc/nodeagent/image_store.h"

namespace rc::nodeagent {
namespace {

int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void FakePodRuntime::AddImage(const std::string& ref) {
  std::lock_guard lock(mu_);
  images_.insert(NormalizeImageRef(ref));
}

Result<SandboxInfo> FakePodRuntime::RunSandbox(const SandboxConfig& config) {
  std::lock_guard lock(mu_);
  if (!fail_sandbox_.ok()) {
    Status s = fail_sandbox_;
    fail_sandbox_ = Status::Ok();
    return s;
  }
  int n = ++next_;
  SandboxInfo s;
  s.id = "sandbox" + std::to_string(n);
  s.pause_pid = 100 + n;
  s.netns_path = "/fake/netns/" + s.id;
  s.ip = "10.88." + std::to_string(n / 250) + "." + std::to_string(n % 250 + 2);
  s.pod_uid = config.pod_uid;
  s.pod_namespace = config.pod_namespace;
  s.pod_name = config.pod_name;
  s.hostname = config.hostname.empty() ? config.pod_name : config.hostname;
  s.ready = true;
  s.created_at_unix = Now();
  sandboxes_[s.id] = s;
  return s;
}

Status FakePodRuntime::StopSandbox(const std::string& sandbox_id) {
  std::lock_guard lock(mu_);
  for (auto it = containers_.begin(); it != containers_.end();) {
    it = it->second.second.sandbox_id == sandbox_id ? containers_.erase(it) : std::next(it);
  }
  sandboxes_.erase(sandbox_id);
  return Status::Ok();
}

Result<std::string> FakePodRuntime::CreateAndStartContainer(const ContainerConfig& config) {
  std::lock_guard lock(mu_);
  if (!fail_create_.ok()) {
    Status s = fail_create_;
    fail_create_ = Status::Ok();
    return s;
  }
  if (!sandboxes_.count(config.sandbox_id)) {
    return Status::NotFound("sandbox " + config.sandbox_id + " not found");
  }
  if (!sandboxes_[config.sandbox_id].ready) {
    return Status::Unavailable("sandbox " + config.sandbox_id + " is not ready (pause not running)");
  }
  if (!images_.count(NormalizeImageRef(config.image))) {
    return Status::NotFound("image \"" + config.image + "\" is not in the node's image store");
  }
  int n = ++next_;
  ContainerRecord r;
  r.id = "container" + std::to_string(n);
  r.sandbox_id = config.sandbox_id;
  r.name = config.name;
  r.image = config.image;
  r.attempt = config.attempt;
  r.log_path = config.log_path;
  r.created_at_unix = Now();
  r.status.id = r.id;
  r.status.kind = ContainerStatusKind::kRunning;
  r.status.pid = 1000 + n;
  r.status.started_at_unix = r.created_at_unix;
  containers_[r.id] = {config, r};
  return r.id;
}

Result<ContainerStatus> FakePodRuntime::InspectContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return Status::NotFound("container " + id + " not found");
  return it->second.second.status;
}

void FakePodRuntime::Exit(const std::string& id, int exit_code, std::string reason) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return;
  auto& s = it->second.second.status;
  if (s.kind == ContainerStatusKind::kExited) return;
  s.kind = ContainerStatusKind::kExited;
  s.exit_code = exit_code;
  s.reason = !reason.empty() ? reason : exit_code == 0 ? "Completed" : "Error";
  s.pid = 0;
  s.finished_at_unix = Now();
}

Status FakePodRuntime::StopContainer(const std::string& id, int grace_seconds) {
  {
    std::lock_guard lock(mu_);
    ++stop_calls_;
    if (!containers_.count(id)) return Status::NotFound("container " + id + " not found");
  }
  bool ignores;
  {
    std::lock_guard lock(mu_);
    ignores = ignore_sigterm_;
  }
  // A process that ignores SIGTERM is killed when the grace period ends, or sooner by a
  // concurrent stop with a shorter one; either way the call returns once it has exited.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ignores ? grace_seconds : 0);
  while (std::chrono::steady_clock::now() < deadline) {
    {
      std::lock_guard lock(mu_);
      auto it = containers_.find(id);
      if (it == containers_.end() || it->second.second.status.kind != ContainerStatusKind::kRunning) return Status::Ok();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Exit(id, 137, "Error");
  return Status::Ok();
}

void FakePodRuntime::IgnoreSigterm(bool ignore) {
  std::lock_guard lock(mu_);
  ignore_sigterm_ = ignore;
}

Status FakePodRuntime::RemoveContainer(const std::string& id) {
  std::lock_guard lock(mu_);
  containers_.erase(id);
  return Status::Ok();
}

Result<ExecResult> FakePodRuntime::Exec(const std::string& id,
                                        const std::vector<std::string>& argv, int timeout_ms) {
  std::function<ExecResult(const std::string&, const std::vector<std::string>&)> handler;
  {
    std::lock_guard lock(mu_);
    auto it = containers_.find(id);
    if (it == containers_.end()) return Status::NotFound("container " + id + " not found");
    if (it->second.second.status.kind != ContainerStatusKind::kRunning) {
      return Status::Unavailable("container " + id + " is not running");
    }
    handler = exec_;
  }
  if (handler) return handler(id, argv);
  return ExecResult{};
}

Result<SandboxInfo> FakePodRuntime::InspectSandbox(const std::string& sandbox_id) {
  std::lock_guard lock(mu_);
  auto it = sandboxes_.find(sandbox_id);
  if (it == sandboxes_.end()) return Status::NotFound("sandbox " + sandbox_id + " not found");
  return it->second;
}

void FakePodRuntime::KillSandbox(const std::string& sandbox_id) {
  std::lock_guard lock(mu_);
  auto it = sandboxes_.find(sandbox_id);
  if (it == sandboxes_.end()) return;
  it->second.ready = false;
  for (auto& [id, c] : containers_) {
    auto& s = c.second.status;
    if (c.second.sandbox_id != sandbox_id || s.kind != ContainerStatusKind::kRunning) continue;
    s.kind = ContainerStatusKind::kExited;
    s.exit_code = 137;
    s.reason = "Error";
    s.pid = 0;
    s.finished_at_unix = Now();
  }
}

void FakePodRuntime::FailLists(Status status, int count) {
  std::lock_guard lock(mu_);
  fail_list_ = std::move(status);
  fail_list_count_ = count;
}

Result<std::vector<SandboxInfo>> FakePodRuntime::ListSandboxes() {
  std::lock_guard lock(mu_);
  if (fail_list_count_ > 0) {
    --fail_list_count_;
    return fail_list_;
  }
  std::vector<SandboxInfo> out;
  for (const auto& [id, s] : sandboxes_) out.push_back(s);
  return out;
}

Result<std::vector<ContainerRecord>> FakePodRuntime::ListContainers() {
  std::lock_guard lock(mu_);
  std::vector<ContainerRecord> out;
  for (const auto& [id, c] : containers_) out.push_back(c.second);
  return out;
}

void FakePodRuntime::FailNextRunSandbox(Status status) {
  std::lock_guard lock(mu_);
  fail_sandbox_ = std::move(status);
}

void FakePodRuntime::FailNextCreate(Status status) {
  std::lock_guard lock(mu_);
  fail_create_ = std::move(status);
}

void FakePodRuntime::SetExecHandler(
    std::function<ExecResult(const std::string&, const std::vector<std::string>&)> handler) {
  std::lock_guard lock(mu_);
  exec_ = std::move(handler);
}

Result<ContainerConfig> FakePodRuntime::ConfigOf(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = containers_.find(id);
  if (it == containers_.end()) return Status::NotFound("container " + id + " not found");
  return it->second.first;
}

int FakePodRuntime::stop_calls() const {
  std::lock_guard lock(mu_);
  return stop_calls_;
}

}  // namespace rc::nodeagent
