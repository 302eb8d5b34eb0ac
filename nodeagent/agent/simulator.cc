#include "rc/nodeagent/simulator.h"

#include <rapidjson/document.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/quantity.h"
#include "rc/controller/informer.h"
#include "rc/controller/work_queue.h"

namespace rc::nodeagent {

namespace am = rc::apimachinery;

namespace {

constexpr uint32_t kPodNet = 10u << 24;                     // 10.0.0.0/8
constexpr uint32_t kNodeNet = (172u << 24) | (16u << 16);   // 172.16.0.0/12

std::string Ip(uint32_t a) {
  char buf[16];
  snprintf(buf, sizeof buf, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
  return buf;
}

std::string Q(std::string_view s) {
  rapidjson::Value v(rapidjson::StringRef(s.data(), s.size()));
  return am::ToJson(v);
}

std::string Condition(const char* type, const std::string& now) {
  return std::string(R"({"type":")") + type + R"(","status":"True","lastProbeTime":null,"lastTransitionTime":)" + Q(now) + "}";
}

// The containers of `list` (spec.containers or spec.initContainers) as statuses: running and
// ready, or terminated with exit 0 for init containers.
std::string ContainerStatuses(const rapidjson::Value* list, const std::string& uid, bool init, const std::string& now) {
  std::string out = "[";
  if (list != nullptr && list->IsArray()) {
    int i = 0;
    for (const auto& c : list->GetArray()) {
      if (!c.IsObject()) continue;
      std::string name(am::GetStringOr(c, "name"));
      std::string image(am::GetStringOr(c, "image"));
      if (out.size() > 1) out += ",";
      out += R"({"name":)" + Q(name) + R"(,"image":)" + Q(image) + R"(,"imageID":)" + Q("sim://" + image) +
             R"(,"containerID":)" + Q("sim://" + uid + "-" + (init ? "init-" : "") + std::to_string(i++)) +
             R"(,"restartCount":0,)";
      if (init) {
        out += R"("ready":true,"started":false,"state":{"terminated":{"exitCode":0,"reason":"Completed","startedAt":)" +
               Q(now) + R"(,"finishedAt":)" + Q(now) + "}}}";
      } else {
        out += R"("ready":true,"started":true,"state":{"running":{"startedAt":)" + Q(now) + "}}}";
      }
    }
  }
  return out + "]";
}

// The pod's current status with `fields` written over it: conditions merged by type (a present
// PodScheduled keeps the scheduler's transition time, which benchmarks read), startTime kept when
// set, every other member of `fields` replacing the current one; the rest (qosClass, nominated
// node, ...) is kept.
std::string MergedStatus(const rapidjson::Value* current, rapidjson::Document& fields) {
  rapidjson::Document out;
  auto& a = out.GetAllocator();
  if (current != nullptr && current->IsObject()) {
    out.CopyFrom(*current, a);
  } else {
    out.SetObject();
  }
  for (auto& m : fields.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    rapidjson::Value* existing = am::FindMember(out, name);
    if (name == "startTime" && existing != nullptr) continue;
    if (name == "conditions" && existing != nullptr && existing->IsArray()) {
      for (auto& c : m.value.GetArray()) {
        std::string_view type = am::GetStringOr(c, "type");
        rapidjson::Value* same = nullptr;
        for (auto& e : existing->GetArray()) {
          if (e.IsObject() && am::GetStringOr(e, "type") == type) same = &e;
        }
        if (same == nullptr) {
          existing->PushBack(rapidjson::Value(c, a), a);
        } else if (type != "PodScheduled" || am::GetStringOr(*same, "status") != "True") {
          same->CopyFrom(c, a);
        }
      }
      continue;
    }
    if (existing != nullptr) {
      existing->CopyFrom(m.value, a);
    } else {
      out.AddMember(rapidjson::Value(m.name, a), rapidjson::Value(m.value, a), a);
    }
  }
  return am::ToJson(out);
}

int64_t ParseQ(const std::string& text, bool milli, Status* error) {
  auto q = am::ParseQuantity(text);
  if (!q.ok()) {
    *error = Status::InvalidArgument("\"" + text + "\": " + q.status().message());
    return 0;
  }
  return milli ? q->MilliValue() : q->Value();
}

}  // namespace

Result<NodeResources> ParseSimulatedResources(const std::string& cpu, const std::string& memory, int64_t pods) {
  Status error = Status::Ok();
  NodeResources r;
  r.cpu_millis = ParseQ(cpu, true, &error);
  if (!error.ok()) return error;
  r.memory_bytes = ParseQ(memory, false, &error);
  if (!error.ok()) return error;
  r.pods = pods;
  if (r.cpu_millis <= 0 || r.memory_bytes <= 0 || r.pods <= 0) {
    return Status::InvalidArgument("simulated node cpu, memory and pods must be positive");
  }
  return r;
}

Simulator::Simulator(client::RestClient* client, SimulatorOptions options)
    : client_(client), options_(std::move(options)) {}

Simulator::~Simulator() { Stop(); }

bool Simulator::IsMine(const std::string& node_name, size_t* index) const {
  auto it = index_of_.find(node_name);
  if (it == index_of_.end()) return false;
  if (index != nullptr) *index = it->second;
  return true;
}

Status Simulator::Start() {
  const SimulatorOptions& o = options_;
  if (o.nodes < 1) return Status::InvalidArgument("--simulate needs at least 1 node");
  if (o.name_prefix.empty() || o.name_prefix.size() > 200) return Status::InvalidArgument("bad simulated node name prefix");
  for (char c : o.name_prefix) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) {
      return Status::InvalidArgument("simulated node name prefix \"" + o.name_prefix +
                                     "\": lowercase letters, digits, '-' and '.' only");
    }
  }
  if (o.capacity.cpu_millis <= 0 || o.capacity.memory_bytes <= 0 || o.capacity.pods <= 0) {
    return Status::InvalidArgument("simulated node cpu, memory and pods must be positive");
  }
  block_bits_ = 8;
  while ((int64_t{1} << block_bits_) < o.capacity.pods + 2) ++block_bits_;
  if (block_bits_ > 24 || (int64_t{o.nodes} << block_bits_) > (int64_t{1} << 24)) {
    return Status::InvalidArgument("10.0.0.0/8 cannot hold " + std::to_string(o.nodes) + " nodes of " +
                                   std::to_string(o.capacity.pods) + " pods");
  }
  if (o.nodes >= (1 << 20) - 2) return Status::InvalidArgument("too many simulated nodes");

  std::vector<std::vector<NodeIdentity>> shards;
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    if (stopped_) return Status::Unavailable("simulator stopped");
    if (!names_.empty()) return Status::InvalidArgument("simulator already started");
    int nshards = std::max(1, std::min(o.heartbeat_shards, o.nodes));
    shards.resize(static_cast<size_t>(nshards));
    for (int i = 0; i < o.nodes; ++i) {
      NodeIdentity n;
      n.name = o.name_prefix + std::to_string(i);
      n.internal_ip = Ip(kNodeNet + static_cast<uint32_t>(i) + 1);
      n.labels = o.labels;
      n.capacity = o.capacity;
      n.allocatable = o.capacity;
      n.kernel_version = "simulated";
      n.os_image = "rc simulated node";
      n.runtime_version = "sim://1";
      names_.push_back(n.name);
      index_of_[n.name] = static_cast<size_t>(i);
      shards[static_cast<size_t>(i % nshards)].push_back(std::move(n));
    }
    used_.assign(static_cast<size_t>(o.nodes), std::vector<bool>(size_t{1} << block_bits_, false));
    next_offset_.assign(static_cast<size_t>(o.nodes), 1);
    HeartbeatOptions ho;
    ho.lease_duration_seconds = o.lease_duration_seconds;
    ho.lease_renew_ms = o.lease_renew_ms;
    ho.status_update_ms = o.status_update_ms;
    ho.threads = 1;
    for (auto& shard : shards) heartbeats_.push_back(std::make_unique<NodeHeartbeat>(client_, shard, ho));
  }

  // Registration: the shards in parallel (each NodeHeartbeat registers its nodes one by one).
  auto t0 = std::chrono::steady_clock::now();
  std::vector<Status> results(heartbeats_.size(), Status::Ok());
  {
    std::vector<std::thread> regs;
    for (size_t i = 0; i < heartbeats_.size(); ++i) {
      regs.emplace_back([this, i, &results, &shards] {
        results[i] = heartbeats_[i]->Start();
        if (results[i].ok()) nodes_registered_ += static_cast<int64_t>(shards[i].size());
      });
    }
    for (auto& t : regs) t.join();
  }
  for (const Status& s : results) {
    if (!s.ok()) return s;
  }
  {
    std::lock_guard<std::mutex> lock(start_mu_);
    if (stopped_) return Status::Unavailable("simulator stopped");
  }
  spdlog::info("simulator: {} nodes registered in {} ms", o.nodes,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());

  // Pods bound to any node; the handlers keep the ones on this simulator's nodes.
  client::ResourceInfo pods_info;
  pods_info.version = "v1";
  pods_info.kind = "Pod";
  pods_info.plural = "pods";
  pods_info.namespaced = true;
  pods_info.verbs = {"get", "list", "watch", "patch", "delete"};
  pods_info.subresources = {"status", "binding"};
  std::unique_lock<std::mutex> lock(start_mu_);
  if (stopped_) return Status::Unavailable("simulator stopped");
  queue_ = std::make_unique<controller::WorkQueue>(
      controller::WorkQueue::Options{.base_delay = std::chrono::milliseconds(50), .max_delay = std::chrono::seconds(10)});
  pods_ = std::make_unique<controller::Informer>(client_, pods_info);
  pods_->SetSelectors("spec.nodeName!=");
  auto needs_work = [this](const controller::ObjectPtr& pod) {
    const rapidjson::Value* spec = am::FindMember(*pod, "spec");
    if (spec == nullptr || !IsMine(std::string(am::GetStringOr(*spec, "nodeName")), nullptr)) return false;
    const rapidjson::Value* meta = am::FindMember(*pod, "metadata");
    if (meta != nullptr && am::FindMember(*meta, "deletionTimestamp") != nullptr) return true;
    std::string key = controller::KeyOf(*pod);
    std::string uid(controller::MetaString(*pod, "uid"));
    std::lock_guard<std::mutex> l(mu_);
    auto it = pod_state_.find(key);
    return it == pod_state_.end() || !it->second.started || it->second.uid != uid;
  };
  controller::EventHandler h;
  h.on_add = [this, needs_work](const controller::ObjectPtr& pod) {
    if (needs_work(pod)) queue_->Add(controller::KeyOf(*pod));
  };
  h.on_update = [this, needs_work](const controller::ObjectPtr&, const controller::ObjectPtr& pod) {
    if (needs_work(pod)) queue_->Add(controller::KeyOf(*pod));
  };
  h.on_delete = [this](const controller::ObjectPtr& pod) {
    const rapidjson::Value* spec = am::FindMember(*pod, "spec");
    if (spec == nullptr || !IsMine(std::string(am::GetStringOr(*spec, "nodeName")), nullptr)) return;
    queue_->Add(controller::KeyOf(*pod));  // the worker finds it gone and releases its IP
  };
  pods_->AddHandler(std::move(h));
  pods_->Start();
  for (int i = 0; i < std::max(1, o.workers); ++i) workers_.emplace_back([this] { Worker(); });
  lock.unlock();
  // Wait for the first list without holding up Stop for long.
  while (!pods_->WaitForSync(200)) {
    lock.lock();
    if (stopped_) return Status::Unavailable("simulator stopped");
    lock.unlock();
  }
  return Status::Ok();
}

void Simulator::Stop() {
  std::unique_lock<std::mutex> lock(start_mu_);
  if (stopped_) return;
  stopped_ = true;
  // NodeHeartbeat::Stop interrupts a registration that is retrying.
  for (auto& hb : heartbeats_) hb->Stop();
  if (queue_) queue_->ShutDown();
  lock.unlock();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  if (pods_) pods_->Stop();
}

void Simulator::Worker() {
  while (auto key = queue_->Get()) {
    Status s = Sync(*key);
    if (s.ok()) {
      queue_->Forget(*key);
    } else {
      if (queue_->Failures(*key) % 10 == 0) spdlog::warn("simulator: pod {}: {} (retrying)", *key, s.ToString());
      queue_->AddRateLimited(*key);
    }
    queue_->Done(*key);
  }
}

uint32_t Simulator::AllocateIpLocked(size_t node) {
  std::vector<bool>& used = used_[node];
  uint32_t size = uint32_t{1} << block_bits_;
  uint32_t start = next_offset_[node];
  // Offsets 1 .. size-2 (not the block's network and broadcast addresses).
  for (uint32_t n = 0; n < size; ++n) {
    uint32_t off = (start + n) % size;
    if (off == 0 || off == size - 1 || used[off]) continue;
    used[off] = true;
    next_offset_[node] = off + 1;
    return kPodNet + (static_cast<uint32_t>(node) << block_bits_) + off;
  }
  return 0;
}

void Simulator::ReleaseLocked(const std::string& key) {
  auto it = pod_state_.find(key);
  if (it == pod_state_.end()) return;
  if (it->second.ip != 0) {
    uint32_t rel = it->second.ip - kPodNet;
    used_[rel >> block_bits_][rel & ((uint32_t{1} << block_bits_) - 1)] = false;
  }
  if (it->second.running) pods_running_--;
  pod_state_.erase(it);
}

Status Simulator::Sync(const std::string& key) {
  controller::ObjectPtr pod = pods_->Get(key);
  size_t node = 0;
  const rapidjson::Value* spec = pod ? am::FindMember(*pod, "spec") : nullptr;
  if (pod == nullptr || spec == nullptr || !IsMine(std::string(am::GetStringOr(*spec, "nodeName")), &node)) {
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseLocked(key);
    return Status::Ok();
  }
  std::string ns(controller::MetaString(*pod, "namespace"));
  std::string name(controller::MetaString(*pod, "name"));
  std::string uid(controller::MetaString(*pod, "uid"));
  std::string path = "/api/v1/namespaces/" + ns + "/pods/" + name;
  const rapidjson::Value* meta = am::FindMember(*pod, "metadata");

  if (meta != nullptr && am::FindMember(*meta, "deletionTimestamp") != nullptr) {
    // Nothing to stop: the pod object goes at once (the uid guards a pod recreated meanwhile).
    std::string body = R"({"apiVersion":"v1","kind":"DeleteOptions","gracePeriodSeconds":0,"preconditions":{"uid":)" +
                       Q(uid) + "}}";
    auto r = client_->Do("DELETE", path + "?gracePeriodSeconds=0", body);
    Status s = r.ok() ? client::ToStatus(*r) : r.status();
    // 404: gone already; 409: the uid differs (another pod of that name: its own events follow).
    if (!s.ok() && !s.IsNotFound() && !s.IsConflict()) {
      delete_failures_++;
      return s;
    }
    pods_deleted_++;
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseLocked(key);
    return Status::Ok();
  }

  // Terminal pods stay as they are (their status came from a previous owner of the node).
  const rapidjson::Value* status = am::FindMember(*pod, "status");
  std::string phase = status ? std::string(am::GetStringOr(*status, "phase")) : "";
  uint32_t ip = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pod_state_.find(key);
    if (it != pod_state_.end() && it->second.uid != uid) {
      ReleaseLocked(key);  // a new pod under an old name
      it = pod_state_.end();
    }
    if (it == pod_state_.end()) it = pod_state_.emplace(key, PodState{.uid = uid}).first;
    if (it->second.started) return Status::Ok();
    if (phase == "Succeeded" || phase == "Failed") {
      it->second.started = true;
      return Status::Ok();
    }
    if (it->second.ip == 0) it->second.ip = AllocateIpLocked(node);
    ip = it->second.ip;
  }
  if (ip == 0) return Status::ResourceExhausted("node " + names_[node] + " has no free pod IP");

  std::string now = NowRfc3339();
  std::string host_ip = Ip(kNodeNet + static_cast<uint32_t>(node) + 1);
  std::string pod_ip = Ip(ip);
  std::string fields = R"({"phase":"Running","conditions":[)" + Condition("Initialized", now) + "," +
                       Condition("Ready", now) + "," + Condition("ContainersReady", now) + "," +
                       Condition("PodScheduled", now) + R"(],"hostIP":)" + Q(host_ip) + R"(,"hostIPs":[{"ip":)" +
                       Q(host_ip) + R"(}],"podIP":)" + Q(pod_ip) + R"(,"podIPs":[{"ip":)" + Q(pod_ip) +
                       R"(}],"startTime":)" + Q(now) + R"(,"containerStatuses":)" +
                       ContainerStatuses(am::FindMember(*spec, "containers"), uid, false, now);
  if (const rapidjson::Value* init = am::FindMember(*spec, "initContainers"); init && init->IsArray() && !init->Empty()) {
    fields += R"(,"initContainerStatuses":)" + ContainerStatuses(init, uid, true, now);
  }
  fields += "}";
  auto parsed = am::ParseJson(fields);
  if (!parsed.ok()) return Status::Internal("simulator: bad status JSON: " + parsed.status().message());
  std::string new_status = MergedStatus(status, *parsed);
  // One write, guarded by the uid (a pod recreated under the same name is not touched).
  std::string patch = R"([{"op":"test","path":"/metadata/uid","value":)" + Q(uid) +
                      R"(},{"op":"add","path":"/status","value":)" + new_status + "}]";
  auto r = client_->Do("PATCH", path + "/status", patch, "application/json-patch+json");
  Status s = r.ok() ? client::ToStatus(*r) : r.status();
  if (s.IsNotFound() || (r.ok() && (r->status == 409 || r->status == 422))) {
    // Deleted meanwhile, or another pod under this name now: its own events bring it here.
    std::lock_guard<std::mutex> lock(mu_);
    ReleaseLocked(key);
    return Status::Ok();
  }
  if (!s.ok()) {
    status_failures_++;
    return s;
  }
  pods_started_++;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pod_state_.find(key);
  if (it != pod_state_.end() && it->second.uid == uid && !it->second.started) {
    it->second.started = true;
    it->second.running = true;
    pods_running_++;
  }
  return Status::Ok();
}

SimulatorStats Simulator::stats() const {
  std::lock_guard<std::mutex> lock(start_mu_);
  SimulatorStats st;
  st.nodes = nodes_registered_.load();
  st.pods_running = pods_running_.load();
  st.pods_started = pods_started_.load();
  st.pods_deleted = pods_deleted_.load();
  st.status_failures = status_failures_.load();
  st.delete_failures = delete_failures_.load();
  for (const auto& hb : heartbeats_) {
    st.lease_renewals += hb->lease_renewals();
    st.heartbeat_failures += hb->failures();
  }
  return st;
}

std::string Simulator::StatsLine() const {
  SimulatorStats s = stats();
  return "nodes=" + std::to_string(s.nodes) + " running=" + std::to_string(s.pods_running) +
         " started=" + std::to_string(s.pods_started) + " deleted=" + std::to_string(s.pods_deleted) +
         " status_failures=" + std::to_string(s.status_failures) + " delete_failures=" + std::to_string(s.delete_failures) +
         " lease_renewals=" + std::to_string(s.lease_renewals) + " heartbeat_failures=" + std::to_string(s.heartbeat_failures);
}

}  // namespace rc::nodeagent
