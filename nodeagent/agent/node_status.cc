#include "rc/nodeagent/node_status.h"

#include <rapidjson/document.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "rc/apimachinery/json.h"

namespace rc::nodeagent {

namespace am = rc::apimachinery;

NodeResources DetectHostResources(const std::string& dir) {
  NodeResources r;
  cpu_set_t set;
  CPU_ZERO(&set);
  int cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
  r.cpu_millis = static_cast<int64_t>(cpus) * 1000;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  int64_t kb = 0;
  std::string unit;
  while (meminfo >> key >> kb >> unit) {
    if (key == "MemTotal:") {
      r.memory_bytes = kb * 1024;
      break;
    }
  }
  struct statvfs fs {};
  if (statvfs(dir.c_str(), &fs) == 0) r.ephemeral_storage_bytes = static_cast<int64_t>(fs.f_blocks) * fs.f_frsize;
  return r;
}

std::string NowRfc3339() {
  time_t t = time(nullptr);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string NowRfc3339Micro() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  time_t t = static_cast<time_t>(us / 1000000);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%06lldZ", static_cast<long long>(us % 1000000));
  return buf;
}

namespace {

std::string Q(const std::string& s) {
  rapidjson::Value v(rapidjson::StringRef(s.data(), s.size()));
  return am::ToJson(v);
}

std::string Resources(const NodeResources& r) {
  std::string out = R"({"cpu":)" + Q(r.cpu_millis % 1000 == 0 ? std::to_string(r.cpu_millis / 1000) : std::to_string(r.cpu_millis) + "m") +
                    R"(,"memory":)" + Q(std::to_string(r.memory_bytes / 1024) + "Ki") + R"(,"pods":)" + Q(std::to_string(r.pods));
  if (r.ephemeral_storage_bytes > 0) out += R"(,"ephemeral-storage":)" + Q(std::to_string(r.ephemeral_storage_bytes / 1024) + "Ki");
  return out + "}";
}

std::string Condition(const std::string& type, bool status, const std::string& reason, const std::string& message,
                      const std::string& now) {
  return R"({"type":)" + Q(type) + R"(,"status":)" + Q(status ? "True" : "False") + R"(,"lastHeartbeatTime":)" + Q(now) +
         R"(,"lastTransitionTime":)" + Q(now) + R"(,"reason":)" + Q(reason) + R"(,"message":)" + Q(message) + "}";
}

std::string StatusJson(const NodeIdentity& n, bool ready, const std::string& now) {
  std::string addresses = "[";
  addresses += R"({"type":"InternalIP","address":)" + Q(n.internal_ip) + "}";
  for (const auto& ip : n.extra_ips) addresses += R"(,{"type":"InternalIP","address":)" + Q(ip) + "}";
  addresses += R"(,{"type":"Hostname","address":)" + Q(n.name) + "}]";
  std::string conditions = "[" +
      Condition("MemoryPressure", false, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now) + "," +
      Condition("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now) + "," +
      Condition("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available", now) + "," +
      Condition("Ready", ready, ready ? "KubeletReady" : "KubeletNotReady",
                ready ? "kubelet is posting ready status" : "container runtime is not ready", now) + "]";
  return R"({"capacity":)" + Resources(n.capacity) + R"(,"allocatable":)" + Resources(n.allocatable) +
         R"(,"conditions":)" + conditions + R"(,"addresses":)" + addresses +
         R"(,"daemonEndpoints":{"kubeletEndpoint":{"Port":)" + std::to_string(n.kubelet_port) + "}}" +
         R"(,"nodeInfo":{"machineID":"","systemUUID":"","bootID":"","kernelVersion":)" + Q(n.kernel_version) +
         R"(,"osImage":)" + Q(n.os_image) + R"(,"containerRuntimeVersion":)" + Q(n.runtime_version) +
         R"(,"kubeletVersion":)" + Q(n.kubelet_version) + R"(,"kubeProxyVersion":)" + Q(n.kubelet_version) +
         R"(,"operatingSystem":"linux","architecture":"amd64"}})";
}

std::string Labels(const NodeIdentity& n) {
  std::map<std::string, std::string> labels = n.labels;
  labels.emplace("kubernetes.io/hostname", n.name);
  labels.emplace("kubernetes.io/os", "linux");
  labels.emplace("kubernetes.io/arch", "amd64");
  std::string out = "{";
  for (const auto& [k, v] : labels) out += (out.size() > 1 ? "," : "") + Q(k) + ":" + Q(v);
  return out + "}";
}

}  // namespace

std::string NodeObjectJson(const NodeIdentity& n, bool ready, const std::string& now) {
  std::string spec = n.pod_cidr.empty() ? "{}" : R"({"podCIDR":)" + Q(n.pod_cidr) + R"(,"podCIDRs":[)" + Q(n.pod_cidr) + "]}";
  return R"({"apiVersion":"v1","kind":"Node","metadata":{"name":)" + Q(n.name) + R"(,"labels":)" + Labels(n) +
         R"(},"spec":)" + spec + R"(,"status":)" + StatusJson(n, ready, now) + "}";
}

std::string NodeStatusPatchJson(const NodeIdentity& n, bool ready, const std::string& now) {
  return R"({"status":)" + StatusJson(n, ready, now) + "}";
}

Status RegisterNode(client::RestClient* client, const NodeIdentity& n, bool ready) {
  std::string now = NowRfc3339();
  auto created = client->Do("POST", "/api/v1/nodes", NodeObjectJson(n, ready, now));
  if (!created.ok()) return created.status();
  Status s = client::ToStatus(*created);
  if (s.code() == StatusCode::kAlreadyExists) {
    auto labeled = client->Do("PATCH", "/api/v1/nodes/" + n.name, R"({"metadata":{"labels":)" + Labels(n) + "}}",
                              "application/merge-patch+json");
    if (!labeled.ok()) return labeled.status();
    if (Status ls = client::ToStatus(*labeled); !ls.ok()) return ls;
  } else if (!s.ok()) {
    return s;
  }
  // The status subresource: a create ignores status, so it is always written here.
  auto st = client->Do("PATCH", "/api/v1/nodes/" + n.name + "/status", NodeStatusPatchJson(n, ready, now),
                       "application/merge-patch+json");
  if (!st.ok()) return st.status();
  return client::ToStatus(*st);
}

Status RenewNodeLease(client::RestClient* client, const std::string& node, int duration_seconds) {
  const std::string base = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
  std::string spec = R"({"holderIdentity":)" + Q(node) + R"(,"leaseDurationSeconds":)" + std::to_string(duration_seconds) +
                     R"(,"renewTime":)" + Q(NowRfc3339Micro()) + "}";
  auto r = client->Do("PATCH", base + "/" + node, R"({"spec":)" + spec + "}", "application/merge-patch+json");
  if (!r.ok()) return r.status();
  if (r->status != 404) return client::ToStatus(*r);
  auto c = client->Do("POST", base, R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":)" + Q(node) +
                                        R"(,"namespace":"kube-node-lease"},"spec":)" + spec + "}");
  if (!c.ok()) return c.status();
  Status s = client::ToStatus(*c);
  return s.code() == StatusCode::kAlreadyExists ? Status::Ok() : s;
}

NodeHeartbeat::NodeHeartbeat(client::RestClient* client, std::vector<NodeIdentity> nodes, HeartbeatOptions options)
    : client_(client), nodes_(std::move(nodes)), options_(options) {
  for (const auto& n : nodes_) ready_[n.name] = true;
}

NodeHeartbeat::~NodeHeartbeat() { Stop(); }

Status NodeHeartbeat::Start() {
  for (const auto& n : nodes_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Status::Unavailable("stopped while registering nodes");
    }
    for (int attempt = 0;; ++attempt) {
      Status s = RegisterNode(client_, n, ready_[n.name]);
      if (s.ok()) s = RenewNodeLease(client_, n.name, options_.lease_duration_seconds);
      if (s.ok()) break;
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (stop_) return s;
        if (attempt % 10 == 0) spdlog::warn("registering node {}: {} (retrying)", n.name, s.ToString());
        cv_.wait_for(lock, std::chrono::milliseconds(500));
        if (stop_) return s;
      }
    }
  }
  int threads = std::max(1, std::min<int>(options_.threads, static_cast<int>(nodes_.size())));
  std::lock_guard<std::mutex> lock(mu_);  // Stop() may run concurrently
  if (stop_) return Status::Unavailable("stopped while registering nodes");
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this, i] { Loop(static_cast<size_t>(i)); });
  return Status::Ok();
}

void NodeHeartbeat::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    threads.swap(threads_);
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

void NodeHeartbeat::SetReady(const std::string& node, bool ready) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ready_[node] != ready) dirty_[node] = true;
  ready_[node] = ready;
  cv_.notify_all();
}

void NodeHeartbeat::Loop(size_t shard) {
  using Clock = std::chrono::steady_clock;
  size_t threads = std::max<size_t>(1, std::min<size_t>(std::max(1, options_.threads), nodes_.size()));
  std::vector<const NodeIdentity*> mine;
  for (size_t i = shard; i < nodes_.size(); i += threads) mine.push_back(&nodes_[i]);
  // Spread the renewals of many nodes over the period instead of bursting.
  auto lease_period = std::chrono::milliseconds(options_.lease_renew_ms);
  auto status_period = std::chrono::milliseconds(options_.status_update_ms);
  std::vector<Clock::time_point> next_lease(mine.size()), next_status(mine.size()), last_renewal(mine.size());
  auto start = Clock::now();
  for (size_t i = 0; i < mine.size(); ++i) {
    next_lease[i] = start + lease_period * static_cast<int64_t>(i) / std::max<size_t>(1, mine.size());
    next_status[i] = start + status_period + status_period * static_cast<int64_t>(i) / std::max<size_t>(1, mine.size());
  }
  while (true) {
    auto now = Clock::now();
    auto wake = now + std::chrono::milliseconds(200);
    for (size_t i = 0; i < mine.size(); ++i) {
      const NodeIdentity& n = *mine[i];
      bool dirty = false, ready = true;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) return;
        dirty = dirty_[n.name];
        dirty_[n.name] = false;
        ready = ready_[n.name];
      }
      if (now >= next_lease[i]) {
        Status s = RenewNodeLease(client_, n.name, options_.lease_duration_seconds);
        if (s.ok()) {
          renewals_++;
          // Renewals were missed (partitioned, stopped): the node lifecycle controller may have
          // marked the node Unknown meanwhile, so the status goes out now, not in a minute.
          if (last_renewal[i] != Clock::time_point{} && now - last_renewal[i] > 2 * lease_period) dirty = true;
          last_renewal[i] = now;
        } else {
          failures_++;
          spdlog::warn("node {}: lease renewal: {}", n.name, s.ToString());
        }
        next_lease[i] = now + lease_period;
      }
      if (dirty || now >= next_status[i]) {
        auto r = client_->Do("PATCH", "/api/v1/nodes/" + n.name + "/status", NodeStatusPatchJson(n, ready, NowRfc3339()),
                             "application/merge-patch+json");
        Status s = r.ok() ? client::ToStatus(*r) : r.status();
        if (s.IsNotFound()) s = RegisterNode(client_, n, ready);  // deleted by someone: register again
        if (!s.ok()) {
          failures_++;
          spdlog::warn("node {}: status update: {}", n.name, s.ToString());
        }
        next_status[i] = now + status_period;
      }
      wake = std::min({wake, next_lease[i], next_status[i]});
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stop_) return;
    cv_.wait_until(lock, wake);
  }
}

}  // namespace rc::nodeagent
