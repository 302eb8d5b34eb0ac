#include "rc/nodeagent/runc_pod_runtime.h"

#include <fcntl.h>
#include <poll.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <thread>

#include "oci_spec.h"
#include "subprocess.h"

namespace rc::nodeagent {
namespace {

namespace fs = std::filesystem;
using internal::NowUnix;
using internal::ReadFile;
using internal::ToJson;
using internal::WriteFileAtomic;

// The runtime's own state files: a JSON object, or kCorruption.
Result<rapidjson::Document> ParseStateFile(const std::string& path) {
  auto d = internal::ParseJsonFile(path);
  if (!d.ok() && d.status().code() != StatusCode::kInvalidArgument) return d.status();
  if (!d.ok() || !d->IsObject()) return Status::Corruption(path + " is not a JSON object");
  return d;
}

std::string Str(const rapidjson::Value& o, const char* k) {
  return o.HasMember(k) && o[k].IsString() ? o[k].GetString() : "";
}
int64_t Int(const rapidjson::Value& o, const char* k) {
  return o.HasMember(k) && o[k].IsInt64() ? o[k].GetInt64() : 0;
}

void SleepMs(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r')) s.pop_back();
  return s;
}

bool ValidId(const std::string& id) {
  return !id.empty() && id.size() <= 64 &&
         id.find_first_not_of("0123456789abcdef") == std::string::npos;
}

// Forks an intermediate child that enters new net/ipc/uts namespaces and a new PID namespace,
// whose own child (PID 1 there) execs rc-pause. Returns rc-pause's host pid.
Result<int> SpawnPause(const std::string& pause_path, const std::string& hostname) {
  int pid_pipe[2], err_pipe[2];
  if (pipe2(pid_pipe, O_CLOEXEC) != 0 || pipe2(err_pipe, O_CLOEXEC) != 0) {
    return Status::IOError(std::string("pipe: ") + strerror(errno));
  }
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  const char* argv[] = {pause_path.c_str(), nullptr};
  pid_t mid = fork();
  if (mid < 0) return Status::IOError(std::string("fork: ") + strerror(errno));
  if (mid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setsid();
    if (unshare(CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWPID) != 0) {
      int e = errno;
      (void)!write(err_pipe[1], &e, sizeof e);
      _exit(1);
    }
    if (!hostname.empty()) sethostname(hostname.c_str(), hostname.size());
    pid_t pause = fork();
    if (pause < 0) {
      int e = errno;
      (void)!write(err_pipe[1], &e, sizeof e);
      _exit(1);
    }
    if (pause == 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      syscall(SYS_close_range, 3, ~0U, 0);  // keep nothing of the agent's (pipes are CLOEXEC)
      execv(argv[0], const_cast<char* const*>(argv));
      _exit(127);
    }
    (void)!write(pid_pipe[1], &pause, sizeof pause);
    _exit(0);
  }
  close(pid_pipe[1]);
  close(err_pipe[1]);
  close(devnull);
  int status = 0;
  while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {
  }
  int e = 0;
  pid_t pause = 0;
  ssize_t ne = read(err_pipe[0], &e, sizeof e);
  ssize_t np = read(pid_pipe[0], &pause, sizeof pause);
  close(err_pipe[0]);
  close(pid_pipe[0]);
  if (ne == sizeof e) return Status::Internal(std::string("sandbox namespaces: ") + strerror(e));
  if (np != sizeof pause || pause <= 0) return Status::Internal("rc-pause did not start");
  return static_cast<int>(pause);
}

// Waits until `pid` (not our child) is gone.
bool WaitGone(int pid, uint64_t start_time, int timeout_ms) {
  for (int waited = 0; waited <= timeout_ms; waited += 10) {
    uint64_t now = internal::ProcessStartTime(pid);
    if (now == 0 || now != start_time) return true;
    SleepMs(10);
  }
  return false;
}

Status BindNamespace(int pid, const std::string& ns, const std::string& target) {
  int fd = open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0444);
  if (fd < 0) return Status::IOError("create " + target + ": " + strerror(errno));
  close(fd);
  std::string source = "/proc/" + std::to_string(pid) + "/ns/" + ns;
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Status::IOError("bind mount " + source + " on " + target + ": " + strerror(errno));
  }
  return Status::Ok();
}

void Unmount(const std::string& path) {
  while (umount2(path.c_str(), MNT_DETACH) == 0) {
  }
}

std::string RootfsDir(const std::string& cdir) { return cdir + "/rootfs"; }

}  // namespace

const char* ContainerStatusKindName(ContainerStatusKind kind) {
  switch (kind) {
    case ContainerStatusKind::kCreated: return "Created";
    case ContainerStatusKind::kRunning: return "Running";
    case ContainerStatusKind::kExited: return "Exited";
    case ContainerStatusKind::kUnknown: return "Unknown";
  }
  return "Unknown";
}

RuncPodRuntime::RuncPodRuntime(RuncPodRuntimeOptions options)
    : options_(std::move(options)),
      cni_(CniOptions{options_.cni_bin_dirs, options_.cni_conf_dir, options_.node_netns_path}) {}

Result<std::unique_ptr<RuncPodRuntime>> RuncPodRuntime::Create(RuncPodRuntimeOptions o) {
  if (o.state_dir.empty()) return Status::InvalidArgument("RuncPodRuntime: no state dir");
  if (o.images == nullptr) return Status::InvalidArgument("RuncPodRuntime: no image store");
  o.state_dir = fs::absolute(o.state_dir).string();
  std::string self = internal::SelfDir();
  if (o.pause_path.empty()) o.pause_path = self + "/rc-pause";
  if (o.shim_path.empty()) o.shim_path = self + "/rc-shim";
  if (o.cni_conf_dir.empty()) o.cni_conf_dir = o.state_dir + "/cni/net.d";
  for (const auto& bin : {o.pause_path, o.shim_path, o.runc_path}) {
    if (access(bin.c_str(), X_OK) != 0) return Status::NotFound("RuncPodRuntime: " + bin + " not found");
  }
  for (const auto& d : {o.state_dir + "/sandboxes", o.state_dir + "/containers",
                        o.state_dir + "/runc", o.state_dir + "/cni/ipam", o.cni_conf_dir}) {
    RC_RETURN_IF_ERROR(internal::MakeDirs(d));
  }
  if (!o.pod_cidr.empty()) {
    RC_RETURN_IF_ERROR(WriteFileAtomic(
        o.cni_conf_dir + "/10-rc.conflist",
        MakeBridgeConfList("rc", o.bridge_name, o.pod_cidr, o.state_dir + "/cni/ipam")));
  }
  std::unique_ptr<RuncPodRuntime> rt(new RuncPodRuntime(std::move(o)));
  const auto& opt = rt->options_;
  if (!opt.cgroup_parent.empty()) {
    rt->cgroup_v1_ = fs::exists("/sys/fs/cgroup/memory");
    std::string probe = rt->cgroup_v1_ ? "/sys/fs/cgroup/memory/" + opt.cgroup_parent
                                       : "/sys/fs/cgroup/" + opt.cgroup_parent;
    std::error_code ec;
    fs::create_directories(probe, ec);
    rt->cgroups_ok_ = !ec && access(probe.c_str(), W_OK) == 0;
  }
  return rt;
}

std::string RuncPodRuntime::SandboxDir(const std::string& id) const {
  return options_.state_dir + "/sandboxes/" + id;
}
std::string RuncPodRuntime::ContainerDir(const std::string& id) const {
  return options_.state_dir + "/containers/" + id;
}

Result<std::string> RuncPodRuntime::Runc(const std::vector<std::string>& args, int timeout_ms) {
  std::vector<std::string> argv = {options_.runc_path, "--root", options_.state_dir + "/runc"};
  argv.insert(argv.end(), args.begin(), args.end());
  internal::ProcessOptions po;
  po.timeout_ms = timeout_ms;
  auto r = internal::RunProcess(argv, po);
  if (!r.ok()) return r.status();
  if (r->timed_out) return Status::Unavailable("runc " + args[0] + " timed out");
  if (r->exit_code != 0) {
    return Status::Internal("runc " + args[0] + " failed: " + Trim(r->err.empty() ? r->out : r->err));
  }
  return r->out;
}

CniInvocation RuncPodRuntime::Invocation(const SandboxInfo& s) const {
  CniInvocation inv;
  inv.container_id = s.id;
  inv.netns_path = s.netns_path;
  inv.ifname = "eth0";
  inv.capability_args = s.cni_capability_args;
  inv.args = {{"IgnoreUnknown", "1"},
              {"K8S_POD_NAMESPACE", s.pod_namespace},
              {"K8S_POD_NAME", s.pod_name},
              {"K8S_POD_INFRA_CONTAINER_ID", s.id},
              {"K8S_POD_UID", s.pod_uid}};
  return inv;
}

Result<SandboxInfo> RuncPodRuntime::LoadSandbox(const std::string& id) {
  if (!ValidId(id)) return Status::NotFound("sandbox " + id + " not found");
  std::string dir = SandboxDir(id);
  auto d = ParseStateFile(dir + "/sandbox.json");
  if (!d.ok()) return Status::NotFound("sandbox " + id + " not found");
  SandboxInfo s;
  s.id = id;
  s.pause_pid = static_cast<int>(Int(*d, "pause_pid"));
  s.netns_path = dir + "/ns/net";
  s.ip = Str(*d, "ip");
  s.pod_uid = Str(*d, "pod_uid");
  s.pod_namespace = Str(*d, "pod_namespace");
  s.pod_name = Str(*d, "pod_name");
  s.hostname = Str(*d, "hostname");
  s.created_at_unix = Int(*d, "created_at");
  s.cni_capability_args = Str(*d, "cni_capability_args");
  uint64_t start = static_cast<uint64_t>(Int(*d, "pause_start"));
  s.ready = s.pause_pid > 0 && start != 0 && internal::ProcessStartTime(s.pause_pid) == start;
  return s;
}

Result<SandboxInfo> RuncPodRuntime::RunSandbox(const SandboxConfig& config) {
  std::string id = internal::RandomHex(16);
  std::string dir = SandboxDir(id);
  // Known here even before sandbox.json records it, so a failed start never leaks rc-pause.
  int pause_pid = 0;
  uint64_t pause_start = 0;
  auto fail = [&](Status s) -> Result<SandboxInfo> {
    // Nothing of a failed start may stay behind: no pause process, no namespace bind mounts, no
    // state dir (else ListSandboxes reports the half-made sandbox and its netns stays pinned).
    // rc-pause first, with SIGKILL: it holds nothing, and as PID 1 of its namespace it drops a
    // SIGTERM that arrives before its handler is installed. The bind mounts keep the netns alive
    // for the DEL below.
    if (pause_pid > 0 && pause_start != 0 && internal::ProcessStartTime(pause_pid) == pause_start) {
      kill(pause_pid, SIGKILL);
      WaitGone(pause_pid, pause_start, 5000);
    }
    // A failed ADD still gets its DEL (the spec asks for it); its errors must not stop the
    // cleanup (a broken config fails DEL as it failed ADD).
    (void)TeardownSandbox(id, /*ignore_cni_errors=*/true);
    // Whatever the teardown did not get to (it returns early on some errors): unconditionally.
    for (const char* ns : {"net", "ipc", "uts"}) Unmount(dir + "/ns/" + ns);
    (void)internal::RemoveAll(dir);
    return s;
  };
  if (auto s = internal::MakeDirs(dir + "/ns"); !s.ok()) return fail(s);
  std::string hostname = config.hostname.empty() ? config.pod_name : config.hostname;
  if (hostname.size() > 63) hostname.resize(63);

  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto put = [&](const char* k, const std::string& v) {
    d.RemoveMember(k);
    d.AddMember(rapidjson::StringRef(k), rapidjson::Value(v.c_str(), a), a);
  };
  auto put_int = [&](const char* k, int64_t v) {
    d.RemoveMember(k);
    d.AddMember(rapidjson::StringRef(k), rapidjson::Value(v), a);
  };
  put("id", id);
  put("pod_uid", config.pod_uid);
  put("pod_namespace", config.pod_namespace);
  put("pod_name", config.pod_name);
  put("hostname", hostname);
  put_int("created_at", NowUnix());
  std::string capability_args;
  if (!config.port_mappings.empty()) {
    rapidjson::Document caps(rapidjson::kObjectType);
    auto& ca = caps.GetAllocator();
    rapidjson::Value mappings(rapidjson::kArrayType);
    for (const auto& m : config.port_mappings) {
      rapidjson::Value e(rapidjson::kObjectType);
      e.AddMember("hostPort", m.host_port, ca);
      e.AddMember("containerPort", m.container_port, ca);
      e.AddMember("protocol", rapidjson::Value(m.protocol.c_str(), ca), ca);
      if (!m.host_ip.empty()) e.AddMember("hostIP", rapidjson::Value(m.host_ip.c_str(), ca), ca);
      mappings.PushBack(e, ca);
    }
    caps.AddMember("portMappings", mappings, ca);
    capability_args = ToJson(caps);
    put("cni_capability_args", capability_args);
  }
  // Written first so a failed or interrupted start can be found and cleaned up.
  if (auto s = WriteFileAtomic(dir + "/sandbox.json", ToJson(d)); !s.ok()) return fail(s);

  auto pause = SpawnPause(options_.pause_path, hostname);
  if (!pause.ok()) return fail(pause.status());
  pause_pid = *pause;
  pause_start = internal::ProcessStartTime(pause_pid);
  put_int("pause_pid", pause_pid);
  put_int("pause_start", static_cast<int64_t>(pause_start));
  if (auto s = WriteFileAtomic(dir + "/sandbox.json", ToJson(d)); !s.ok()) return fail(s);
  for (const char* ns : {"net", "ipc", "uts"}) {
    if (auto s = BindNamespace(*pause, ns, dir + "/ns/" + ns); !s.ok()) return fail(s);
  }
  SandboxInfo info;
  info.id = id;
  info.pause_pid = *pause;
  info.netns_path = dir + "/ns/net";
  info.pod_uid = config.pod_uid;
  info.pod_namespace = config.pod_namespace;
  info.pod_name = config.pod_name;
  info.hostname = hostname;
  info.created_at_unix = Int(d, "created_at");
  info.cni_capability_args = capability_args;
  auto net = cni_.Add(Invocation(info));
  if (!net.ok()) return fail(net.status());
  info.ip = net->ip;
  info.ready = true;
  if (auto s = WriteFileAtomic(dir + "/cni-result.json", net->json); !s.ok()) return fail(s);
  put("ip", info.ip);
  if (auto s = WriteFileAtomic(dir + "/sandbox.json", ToJson(d)); !s.ok()) return fail(s);

  // Files bind-mounted into every container of the pod.
  std::string hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
                      info.ip + "\t" + hostname + "\n";
  std::string resolv;
  if (config.dns_servers.empty() && config.dns_searches.empty()) {
    resolv = ReadFile("/etc/resolv.conf").ok() ? *ReadFile("/etc/resolv.conf") : "";
  } else {
    for (const auto& s : config.dns_servers) resolv += "nameserver " + s + "\n";
    if (!config.dns_searches.empty()) {
      resolv += "search";
      for (const auto& s : config.dns_searches) resolv += " " + s;
      resolv += "\n";
    }
  }
  for (const auto& [name, content] : {std::pair<std::string, std::string>{"hosts", hosts},
                                      {"hostname", hostname + "\n"},
                                      {"resolv.conf", resolv}}) {
    if (auto s = WriteFileAtomic(dir + "/" + name, content); !s.ok()) return fail(s);
  }
  return info;
}

Status RuncPodRuntime::CheckSandboxNetwork(const std::string& sandbox_id) {
  auto s = LoadSandbox(sandbox_id);
  if (!s.ok()) return s.status();
  auto cached = ReadFile(SandboxDir(sandbox_id) + "/cni-result.json");
  return cni_.Check(Invocation(*s), cached.ok() ? *cached : "");
}

Status RuncPodRuntime::StopSandbox(const std::string& sandbox_id) {
  return TeardownSandbox(sandbox_id, false);
}

Status RuncPodRuntime::TeardownSandbox(const std::string& sandbox_id, bool ignore_cni_errors) {
  if (!ValidId(sandbox_id)) return Status::Ok();
  std::string dir = SandboxDir(sandbox_id);
  if (!fs::exists(dir)) return Status::Ok();
  // The pod's containers first.
  if (auto containers = ListContainers(); containers.ok()) {
    for (const auto& c : *containers) {
      if (c.sandbox_id != sandbox_id) continue;
      RC_RETURN_IF_ERROR(RemoveContainer(c.id));
    }
  }
  auto d = ParseStateFile(dir + "/sandbox.json");
  SandboxInfo info;
  info.id = sandbox_id;
  if (d.ok()) {
    info.pod_uid = Str(*d, "pod_uid");
    info.pod_namespace = Str(*d, "pod_namespace");
    info.pod_name = Str(*d, "pod_name");
    info.cni_capability_args = Str(*d, "cni_capability_args");
  }
  // Mounted: the nsfs file has another device than its directory.
  struct stat netns_st {}, dir_st {};
  bool netns_mounted = stat((dir + "/ns/net").c_str(), &netns_st) == 0 &&
                       stat((dir + "/ns").c_str(), &dir_st) == 0 && netns_st.st_dev != dir_st.st_dev;
  // CNI DEL (idempotent in the plugins): releases the IP and the veth. Without a netns the
  // plugins still release the IPAM allocation.
  if (fs::exists(dir + "/ns/net") || fs::exists(dir + "/cni-result.json")) {
    info.netns_path = netns_mounted ? dir + "/ns/net" : "";
    auto cached = ReadFile(dir + "/cni-result.json");
    Status del = cni_.Del(Invocation(info), cached.ok() ? *cached : "");
    if (!del.ok() && !del.IsNotFound() && !ignore_cni_errors) return del;
  }
  if (d.ok()) {
    int pid = static_cast<int>(Int(*d, "pause_pid"));
    uint64_t start = static_cast<uint64_t>(Int(*d, "pause_start"));
    if (pid > 0 && start != 0 && internal::ProcessStartTime(pid) == start) {
      kill(pid, SIGTERM);
      if (!WaitGone(pid, start, 2000)) {
        kill(pid, SIGKILL);
        WaitGone(pid, start, 5000);
      }
    }
  }
  for (const char* ns : {"net", "ipc", "uts"}) Unmount(dir + "/ns/" + ns);
  if (cgroups_ok_) {
    std::error_code ec;
    for (const auto& ctrl : fs::directory_iterator("/sys/fs/cgroup", ec)) {
      std::string p = ctrl.path().string() + "/" + options_.cgroup_parent + "/" + sandbox_id;
      rmdir(p.c_str());
    }
    rmdir(("/sys/fs/cgroup/" + options_.cgroup_parent + "/" + sandbox_id).c_str());
  }
  return internal::RemoveAll(dir);
}

Result<std::vector<SandboxInfo>> RuncPodRuntime::ListSandboxes() {
  std::vector<SandboxInfo> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.state_dir + "/sandboxes", ec)) {
    auto s = LoadSandbox(e.path().filename().string());
    if (s.ok()) out.push_back(std::move(*s));
  }
  // An unreadable state dir must not look like an empty node (pods would be started twice).
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("listing " + options_.state_dir + "/sandboxes: " + ec.message());
  }
  return out;
}

Result<std::string> RuncPodRuntime::CreateAndStartContainer(const ContainerConfig& config) {
  auto sandbox = LoadSandbox(config.sandbox_id);
  if (!sandbox.ok()) return sandbox.status();
  if (!sandbox->ready) {
    return Status::Unavailable("sandbox " + config.sandbox_id + " is not ready (pause not running)");
  }
  auto image = options_.images->Get(config.image);
  if (!image.ok()) return image.status();
  if (config.log_path.empty()) return Status::InvalidArgument("container " + config.name + ": no log path");

  OciSpecInput in;
  in.image = &image->config;
  in.config = &config;
  in.hostname = sandbox->hostname;
  std::string sdir = SandboxDir(config.sandbox_id);
  in.pid_ns = "/proc/" + std::to_string(sandbox->pause_pid) + "/ns/pid";
  in.net_ns = sdir + "/ns/net";
  in.ipc_ns = sdir + "/ns/ipc";
  in.uts_ns = sdir + "/ns/uts";
  in.hosts_file = sdir + "/hosts";
  in.hostname_file = sdir + "/hostname";
  in.resolv_file = sdir + "/resolv.conf";
  std::string id = internal::RandomHex(16);
  if (cgroups_ok_) in.cgroups_path = "/" + options_.cgroup_parent + "/" + config.sandbox_id + "/" + id;
  auto spec = BuildOciSpec(in);
  if (!spec.ok()) return spec.status();

  std::string cdir = ContainerDir(id);
  RC_RETURN_IF_ERROR(internal::MakeDirs(cdir + "/upper"));
  RC_RETURN_IF_ERROR(internal::MakeDirs(cdir + "/work"));
  RC_RETURN_IF_ERROR(internal::MakeDirs(RootfsDir(cdir)));
  auto fail = [&](Status s) -> Result<std::string> {
    (void)RemoveContainer(id);
    return s;
  };
  rapidjson::Document meta(rapidjson::kObjectType);
  auto& a = meta.GetAllocator();
  auto put = [&](const char* k, const std::string& v) {
    meta.RemoveMember(k);
    meta.AddMember(rapidjson::StringRef(k), rapidjson::Value(v.c_str(), a), a);
  };
  auto put_int = [&](const char* k, int64_t v) {
    meta.RemoveMember(k);
    meta.AddMember(rapidjson::StringRef(k), rapidjson::Value(v), a);
  };
  put("id", id);
  put("sandbox_id", config.sandbox_id);
  put("name", config.name);
  put("image", config.image);
  put("image_id", image->id);
  put("log_path", config.log_path);
  put("cgroups_path", in.cgroups_path);
  put_int("attempt", config.attempt);
  put_int("created_at", NowUnix());
  RC_RETURN_IF_ERROR(WriteFileAtomic(cdir + "/container.json", ToJson(meta)));

  // rootfs: overlay of the image (lower) + upper/work, or a copy where overlay is refused.
  std::string opts = "lowerdir=" + image->rootfs + ",upperdir=" + cdir + "/upper,workdir=" + cdir + "/work";
  if (mount("overlay", RootfsDir(cdir).c_str(), "overlay", 0, opts.c_str()) != 0) {
    internal::ProcessOptions po;
    auto cp = internal::RunProcess({"/bin/cp", "-a", image->rootfs + "/.", RootfsDir(cdir)}, po);
    if (!cp.ok() || cp->exit_code != 0) {
      return fail(Status::IOError("cannot prepare rootfs of " + config.name + ": overlay: " +
                                  strerror(errno)));
    }
  }
  fs::path log_dir = fs::path(config.log_path).parent_path();
  if (!log_dir.empty()) {
    if (auto s = internal::MakeDirs(log_dir.string()); !s.ok()) return fail(s);
  }

  std::string memcg;
  if (cgroups_ok_ && cgroup_v1_) memcg = "/sys/fs/cgroup/memory" + in.cgroups_path;
  // Limits the host refuses (no CFS quota, ...) must not keep the pod from running: retry once
  // without resources.
  for (int round = 0; round < 2; ++round) {
    std::string spec_json = round == 0 ? *spec : *BuildOciSpec([&] {
      OciSpecInput plain = in;
      plain.with_resources = false;
      return plain;
    }());
    if (auto s = WriteFileAtomic(cdir + "/config.json", spec_json); !s.ok()) return fail(s);
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return fail(Status::IOError("pipe"));
    std::vector<std::string> args = {options_.shim_path, options_.runc_path,
                                     options_.state_dir + "/runc", cdir, id, cdir, config.log_path};
    if (!memcg.empty()) args.push_back(memcg);
    std::vector<char*> argv;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    pid_t pid = fork();
    if (pid < 0) return fail(Status::IOError("fork"));
    if (pid == 0) {
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      dup2(devnull, 0);
      dup2(devnull, 1);
      dup2(devnull, 2);
      dup2(ready[1], 3);
      syscall(SYS_close_range, 4, ~0U, 0);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(ready[1]);
    close(devnull);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.start_timeout_ms);
    char buf[1024];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{ready[0], POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      ssize_t n = read(ready[0], buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
      if (line.find('\n') != std::string::npos) break;
    }
    close(ready[0]);
    line = Trim(line);
    if (line.rfind("ok ", 0) == 0) {
      std::istringstream is(line.substr(3));
      int64_t cpid = 0, create_us = 0, start_us = 0;
      is >> cpid >> create_us >> start_us;
      put_int("pid", cpid);
      put_int("pid_start", static_cast<int64_t>(internal::ProcessStartTime(static_cast<int>(cpid))));
      put_int("runc_create_us", create_us);
      put_int("runc_start_us", start_us);
      put_int("with_resources", round == 0 ? 1 : 0);
      if (auto s = WriteFileAtomic(cdir + "/container.json", ToJson(meta)); !s.ok()) return fail(s);
      return id;
    }
    std::string why = line.rfind("err ", 0) == 0 ? line.substr(4)
                      : line.empty() ? "rc-shim gave no answer" : line;
    bool resource_problem = in.with_resources &&
                            (config.memory_limit_bytes > 0 || config.cpu_limit_millis > 0) &&
                            round == 0;
    if (!resource_problem) {
      // runc's own refusal (the shim's "err" line: a missing executable...) is the container's
      // fault; a shim that never answered is the node's (retried, not a StartError).
      if (line.rfind("err ", 0) != 0) return fail(Status::Unavailable("container " + config.name + " failed to start: " + why));
      return fail(Status::Internal("container " + config.name + " failed to start: " + why));
    }
    (void)Runc({"delete", "--force", id});
    unlink((cdir + "/runc.log").c_str());
  }
  return fail(Status::Internal("container " + config.name + " failed to start"));
}

Result<ContainerRecord> RuncPodRuntime::LoadContainer(const std::string& id) {
  if (!ValidId(id)) return Status::NotFound("container " + id + " not found");
  std::string cdir = ContainerDir(id);
  auto d = ParseStateFile(cdir + "/container.json");
  if (!d.ok()) return Status::NotFound("container " + id + " not found");
  ContainerRecord c;
  c.id = id;
  c.sandbox_id = Str(*d, "sandbox_id");
  c.name = Str(*d, "name");
  c.image = Str(*d, "image");
  c.attempt = static_cast<int>(Int(*d, "attempt"));
  c.log_path = Str(*d, "log_path");
  c.created_at_unix = Int(*d, "created_at");
  ContainerStatus& s = c.status;
  s.id = id;
  if (auto started = ReadFile(cdir + "/started"); started.ok()) {
    s.started_at_unix = atoll(started->c_str());
  }
  auto read_exit = [&]() {
    auto exit = ReadFile(cdir + "/exit");
    if (!exit.ok()) return false;
    std::istringstream is(*exit);
    is >> s.exit_code >> s.finished_at_unix >> s.reason;
    s.kind = ContainerStatusKind::kExited;
    return true;
  };
  if (read_exit()) return c;
  int pid = static_cast<int>(Int(*d, "pid"));
  uint64_t pid_start = static_cast<uint64_t>(Int(*d, "pid_start"));
  if (pid == 0) {
    s.kind = ContainerStatusKind::kCreated;  // still starting (or a start that was interrupted)
    return c;
  }
  s.pid = pid;
  if (internal::ProcessStartTime(pid) == pid_start && pid_start != 0) {
    s.kind = ContainerStatusKind::kRunning;
    return c;
  }
  // Gone: the shim writes the exit file right after reaping; give it a moment.
  for (int i = 0; i < 50; ++i) {
    SleepMs(10);
    if (read_exit()) return c;
  }
  s.kind = ContainerStatusKind::kExited;
  s.exit_code = 255;
  s.reason = "Unknown";
  s.message = "the container's process is gone and its shim recorded no exit code";
  s.pid = 0;
  return c;
}

Result<ContainerStatus> RuncPodRuntime::InspectContainer(const std::string& id) {
  auto c = LoadContainer(id);
  if (!c.ok()) return c.status();
  return c->status;
}

Result<std::vector<ContainerRecord>> RuncPodRuntime::ListContainers() {
  std::vector<ContainerRecord> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(options_.state_dir + "/containers", ec)) {
    auto c = LoadContainer(e.path().filename().string());
    if (c.ok()) out.push_back(std::move(*c));
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    return Status::IOError("listing " + options_.state_dir + "/containers: " + ec.message());
  }
  return out;
}

Status RuncPodRuntime::StopContainer(const std::string& id, int grace_seconds) {
  auto status = InspectContainer(id);
  if (!status.ok()) return status.status();
  if (status->kind == ContainerStatusKind::kExited) return Status::Ok();
  std::string exit_file = ContainerDir(id) + "/exit";
  auto wait_exit = [&](int ms) {
    for (int waited = 0; waited <= ms; waited += 10) {
      if (fs::exists(exit_file)) return true;
      SleepMs(10);
    }
    return false;
  };
  if (status->kind == ContainerStatusKind::kRunning) {
    (void)Runc({"kill", id, "TERM"});
    if (wait_exit(std::max(0, grace_seconds) * 1000)) return Status::Ok();
  }
  (void)Runc({"kill", id, "KILL"});
  if (status->pid > 0) kill(status->pid, SIGKILL);  // in case runc lost track of it
  if (wait_exit(10000)) return Status::Ok();
  if (status->kind == ContainerStatusKind::kCreated) return Status::Ok();
  return Status::Unavailable("container " + id + " did not exit after SIGKILL");
}

Status RuncPodRuntime::RemoveContainer(const std::string& id) {
  if (!ValidId(id)) return Status::Ok();
  std::string cdir = ContainerDir(id);
  if (!fs::exists(cdir)) return Status::Ok();
  auto del = Runc({"delete", "--force", id});
  if (!del.ok() && del.status().message().find("does not exist") == std::string::npos) {
    // Still try to clean up what we can; the container may never have been created.
    (void)Runc({"kill", id, "KILL"});
    (void)Runc({"delete", "--force", id});
  }
  Unmount(RootfsDir(cdir));
  // Wait for the shim to finish writing before removing its dir.
  for (int i = 0; i < 100 && fs::exists(cdir + "/pid") && !fs::exists(cdir + "/exit"); ++i) SleepMs(10);
  return internal::RemoveAll(cdir);
}

Result<ExecResult> RuncPodRuntime::Exec(const std::string& id, const std::vector<std::string>& argv,
                                        int timeout_ms) {
  auto status = InspectContainer(id);
  if (!status.ok()) return status.status();
  if (status->kind != ContainerStatusKind::kRunning) {
    return Status::Unavailable("container " + id + " is not running");
  }
  if (argv.empty()) return Status::InvalidArgument("exec: empty command");
  std::string pid_file = ContainerDir(id) + "/exec-" + internal::RandomHex(6) + ".pid";
  std::vector<std::string> args = {options_.runc_path, "--root", options_.state_dir + "/runc",
                                   "exec", "--pid-file", pid_file, id};
  args.insert(args.end(), argv.begin(), argv.end());
  internal::ProcessOptions po;
  po.timeout_ms = timeout_ms;
  po.merge_stderr = true;
  po.pid_file_to_kill = pid_file;
  auto r = internal::RunProcess(args, po);
  unlink(pid_file.c_str());
  if (!r.ok()) return r.status();
  ExecResult out;
  out.exit_code = r->exit_code;
  out.output = std::move(r->out);
  out.timed_out = r->timed_out;
  return out;
}

RuncTimings RuncPodRuntime::Timings(const std::string& container_id) {
  RuncTimings t;
  if (!ValidId(container_id)) return t;
  auto d = ParseStateFile(ContainerDir(container_id) + "/container.json");
  if (!d.ok()) return t;
  t.create_us = Int(*d, "runc_create_us");
  t.start_us = Int(*d, "runc_start_us");
  return t;
}

}  // namespace rc::nodeagent
