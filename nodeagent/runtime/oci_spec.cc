#include "oci_spec.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

namespace rc::nodeagent {

Result<std::vector<std::string>> ContainerArgv(const ImageConfig& image,
                                               const ContainerConfig& config) {
  std::vector<std::string> argv;
  if (!config.command.empty()) {
    argv = config.command;
    argv.insert(argv.end(), config.args.begin(), config.args.end());
  } else {
    argv = image.entrypoint;
    const auto& rest = config.args.empty() ? image.cmd : config.args;
    argv.insert(argv.end(), rest.begin(), rest.end());
  }
  if (argv.empty()) {
    return Status::InvalidArgument("container " + config.name +
                                   ": no command given and the image " + config.image +
                                   " has no Entrypoint or Cmd");
  }
  return argv;
}

std::vector<std::string> ContainerEnv(const ImageConfig& image, const ContainerConfig& config,
                                      const std::string& hostname) {
  std::vector<std::string> env;
  auto set = [&](const std::string& name, const std::string& value) {
    for (auto& e : env) {
      if (e.compare(0, name.size() + 1, name + "=") == 0) {
        e = name + "=" + value;
        return;
      }
    }
    env.push_back(name + "=" + value);
  };
  set("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  if (!hostname.empty()) set("HOSTNAME", hostname);
  for (const auto& e : image.env) {
    auto eq = e.find('=');
    if (eq == std::string::npos) continue;
    set(e.substr(0, eq), e.substr(eq + 1));
  }
  for (const auto& [k, v] : config.env) set(k, v);
  return env;
}

Result<std::string> BuildOciSpec(const OciSpecInput& in) {
  auto argv = ContainerArgv(*in.image, *in.config);
  if (!argv.ok()) return argv.status();
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto s = [&](const std::string& v) { return rapidjson::Value(v.c_str(), a); };
  auto arr = [&](const std::vector<std::string>& v) {
    rapidjson::Value x(rapidjson::kArrayType);
    for (const auto& e : v) x.PushBack(s(e), a);
    return x;
  };
  d.AddMember("ociVersion", "1.0.2", a);

  rapidjson::Value process(rapidjson::kObjectType);
  process.AddMember("terminal", false, a);
  rapidjson::Value user(rapidjson::kObjectType);
  user.AddMember("uid", 0, a);
  user.AddMember("gid", 0, a);
  process.AddMember("user", user, a);
  process.AddMember("args", arr(*argv), a);
  process.AddMember("env", arr(ContainerEnv(*in.image, *in.config, in.hostname)), a);
  std::string cwd = !in.config->working_dir.empty() ? in.config->working_dir
                    : !in.image->working_dir.empty() ? in.image->working_dir
                                                     : "/";
  process.AddMember("cwd", s(cwd), a);
  // Docker's / containerd's default capability set.
  std::vector<std::string> caps = {
      "CAP_CHOWN",  "CAP_DAC_OVERRIDE", "CAP_FSETID",     "CAP_FOWNER",     "CAP_MKNOD",
      "CAP_NET_RAW", "CAP_SETGID",      "CAP_SETUID",     "CAP_SETFCAP",    "CAP_SETPCAP",
      "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"};
  rapidjson::Value capabilities(rapidjson::kObjectType);
  capabilities.AddMember("bounding", arr(caps), a);
  capabilities.AddMember("effective", arr(caps), a);
  capabilities.AddMember("permitted", arr(caps), a);
  process.AddMember("capabilities", capabilities, a);
  // No rlimits: the container inherits the shim's (raising them may be refused).
  process.AddMember("noNewPrivileges", false, a);
  d.AddMember("process", process, a);

  rapidjson::Value root(rapidjson::kObjectType);
  root.AddMember("path", "rootfs", a);
  root.AddMember("readonly", false, a);
  d.AddMember("root", root, a);
  if (!in.hostname.empty()) d.AddMember("hostname", s(in.hostname), a);

  rapidjson::Value mounts(rapidjson::kArrayType);
  auto mount = [&](const std::string& dest, const std::string& type, const std::string& source,
                   const std::vector<std::string>& options) {
    rapidjson::Value m(rapidjson::kObjectType);
    m.AddMember("destination", s(dest), a);
    m.AddMember("type", s(type), a);
    m.AddMember("source", s(source), a);
    m.AddMember("options", arr(options), a);
    mounts.PushBack(m, a);
  };
  mount("/proc", "proc", "proc", {"nosuid", "noexec", "nodev"});
  mount("/dev", "tmpfs", "tmpfs", {"nosuid", "strictatime", "mode=755", "size=65536k"});
  mount("/dev/pts", "devpts", "devpts",
        {"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"});
  mount("/dev/shm", "tmpfs", "shm", {"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"});
  mount("/dev/mqueue", "mqueue", "mqueue", {"nosuid", "noexec", "nodev"});
  mount("/sys", "sysfs", "sysfs", {"nosuid", "noexec", "nodev", "ro"});
  if (!in.hosts_file.empty()) mount("/etc/hosts", "bind", in.hosts_file, {"rbind", "rw"});
  if (!in.hostname_file.empty()) mount("/etc/hostname", "bind", in.hostname_file, {"rbind", "rw"});
  if (!in.resolv_file.empty()) mount("/etc/resolv.conf", "bind", in.resolv_file, {"rbind", "rw"});
  d.AddMember("mounts", mounts, a);

  rapidjson::Value linux_cfg(rapidjson::kObjectType);
  rapidjson::Value namespaces(rapidjson::kArrayType);
  auto ns = [&](const char* type, const std::string& path) {
    rapidjson::Value n(rapidjson::kObjectType);
    n.AddMember("type", rapidjson::StringRef(type), a);
    if (!path.empty()) n.AddMember("path", s(path), a);
    namespaces.PushBack(n, a);
  };
  ns("pid", in.pid_ns);
  ns("network", in.net_ns);
  ns("ipc", in.ipc_ns);
  ns("uts", in.uts_ns);
  ns("mount", "");
  linux_cfg.AddMember("namespaces", namespaces, a);
  if (!in.cgroups_path.empty()) linux_cfg.AddMember("cgroupsPath", s(in.cgroups_path), a);
  rapidjson::Value resources(rapidjson::kObjectType);
  rapidjson::Value devices(rapidjson::kArrayType);
  rapidjson::Value deny(rapidjson::kObjectType);
  deny.AddMember("allow", false, a);
  deny.AddMember("access", "rwm", a);
  devices.PushBack(deny, a);
  resources.AddMember("devices", devices, a);
  if (in.with_resources && !in.cgroups_path.empty()) {
    if (in.config->memory_limit_bytes > 0) {
      rapidjson::Value memory(rapidjson::kObjectType);
      memory.AddMember("limit", rapidjson::Value(in.config->memory_limit_bytes), a);
      resources.AddMember("memory", memory, a);
    }
    if (in.config->cpu_limit_millis > 0) {
      rapidjson::Value cpu(rapidjson::kObjectType);
      int64_t period = 100000;
      int64_t quota = std::max<int64_t>(1000, in.config->cpu_limit_millis * period / 1000);
      uint64_t shares = std::max<uint64_t>(2, static_cast<uint64_t>(in.config->cpu_limit_millis) * 1024 / 1000);
      cpu.AddMember("shares", rapidjson::Value(shares), a);
      cpu.AddMember("quota", rapidjson::Value(quota), a);
      cpu.AddMember("period", rapidjson::Value(static_cast<uint64_t>(period)), a);
      resources.AddMember("cpu", cpu, a);
    }
  }
  linux_cfg.AddMember("resources", resources, a);
  linux_cfg.AddMember("maskedPaths",
                  arr({"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                       "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                       "/proc/sched_debug", "/sys/firmware", "/proc/scsi"}),
                  a);
  linux_cfg.AddMember("readonlyPaths",
                  arr({"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}),
                  a);
  d.AddMember("linux", linux_cfg, a);

  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  d.Accept(w);
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace rc::nodeagent
