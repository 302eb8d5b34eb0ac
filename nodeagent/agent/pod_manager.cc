#include "rc/nodeagent/pod_manager.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <future>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/quantity.h"
#include "rc/nodeagent/image_store.h"
#include "rc/nodeagent/node_status.h"

namespace rc::nodeagent {

namespace am = rc::apimachinery;
using controller::ObjectPtr;
using Clock = std::chrono::steady_clock;
using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

namespace {

const rapidjson::Value* At(const rapidjson::Value& v, std::string_view dotted) {
  const rapidjson::Value* cur = &v;
  while (cur) {
    size_t dot = dotted.find('.');
    cur = cur->IsObject() ? am::FindMember(*cur, dotted.substr(0, dot)) : nullptr;
    if (dot == std::string_view::npos) break;
    dotted = dotted.substr(dot + 1);
  }
  return cur;
}

std::string StrAt(const rapidjson::Value& v, std::string_view dotted, std::string fallback = "") {
  const rapidjson::Value* p = At(v, dotted);
  return p && p->IsString() ? std::string(p->GetString(), p->GetStringLength()) : fallback;
}

int64_t IntAt(const rapidjson::Value& v, std::string_view dotted, int64_t fallback) {
  const rapidjson::Value* p = At(v, dotted);
  if (p && p->IsInt64()) return p->GetInt64();
  if (p && p->IsDouble()) return static_cast<int64_t>(p->GetDouble());
  return fallback;
}

std::string Rfc3339(int64_t unix) {
  if (unix <= 0) return "";
  time_t t = static_cast<time_t>(unix);
  tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::vector<std::string> Strings(const rapidjson::Value* arr) {
  std::vector<std::string> out;
  if (arr && arr->IsArray()) {
    for (const auto& v : arr->GetArray()) {
      if (v.IsString()) out.emplace_back(v.GetString(), v.GetStringLength());
    }
  }
  return out;
}

// imagePullPolicy as Kubernetes defaults it: Always for :latest or no tag, else IfNotPresent.
std::string PullPolicy(const rapidjson::Value& c) {
  std::string p = StrAt(c, "imagePullPolicy");
  if (!p.empty()) return p;
  std::string image = StrAt(c, "image");
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  return !tagged || image.substr(colon + 1) == "latest" ? "Always" : "IfNotPresent";
}

bool IsMirror(const rapidjson::Value& pod) {
  const rapidjson::Value* ann = At(pod, "metadata.annotations");
  return ann && ann->IsObject() && am::FindMember(*ann, "kubernetes.io/config.mirror");
}

void Key(Writer& w, const char* k) { w.Key(k); }
void KV(Writer& w, const char* k, const std::string& v) {
  w.Key(k);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

}  // namespace

PodManager::PodManager(client::RestClient* client, client::ResourceInfo pods, PodRuntime* runtime,
                       controller::EventRecorder* events, PodManagerOptions options)
    : client_(client), pods_resource_(std::move(pods)), runtime_(runtime), events_(events), options_(std::move(options)),
      queue_(controller::WorkQueue::Options{std::chrono::milliseconds(200), std::chrono::milliseconds(10000)}) {}

PodManager::~PodManager() { Stop(); }

Status PodManager::Start() {
  Status adopted = Adopt();
  for (int attempt = 1; !adopted.ok() && attempt < std::max(1, options_.adopt_attempts); ++attempt) {
    std::this_thread::sleep_for(options_.adopt_retry);
    adopted = Adopt();
  }
  if (!adopted.ok()) {
    return Status::Unavailable("cannot list the pods the container runtime already runs (" + adopted.message() +
                               "); not starting any, as that could run them twice");
  }
  informer_ = std::make_unique<controller::Informer>(client_, pods_resource_);
  informer_->SetSelectors("spec.nodeName=" + options_.node_name);
  informer_->AddHandler(controller::EventHandler{
      [this](const ObjectPtr& o) { queue_.Add(controller::KeyOf(*o)); },
      [this](const ObjectPtr&, const ObjectPtr& n) { queue_.Add(controller::KeyOf(*n)); },
      [this](const ObjectPtr& o) { queue_.Add(controller::KeyOf(*o)); }});
  informer_->Start();
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Worker(); });
  // Sandboxes of pods that no longer exist (deleted while the agent was down) are removed once
  // the cache is known complete.
  workers_.emplace_back([this] {
    while (!stop_ && !informer_->WaitForSync(200)) {
    }
    if (stop_) return;
    std::vector<std::pair<std::string, SandboxInfo>> orphans;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::set<std::string> live;
      for (const auto& o : informer_->List("")) live.insert(std::string(controller::MetaString(*o, "uid")));
      for (const auto& [k, s] : static_pods_) live.insert(std::string(controller::MetaString(*s, "uid")));
      for (auto it = adopted_.begin(); it != adopted_.end();) {
        if (!live.count(it->first)) {
          orphans.emplace_back(it->first, it->second.first);
          it = adopted_.erase(it);
        } else {
          ++it;
        }
      }
    }
    for (auto& [uid, sandbox] : orphans) {
      spdlog::info("pod {}/{} ({}) no longer exists: removing its sandbox", sandbox.pod_namespace, sandbox.pod_name, uid);
      if (Status s = runtime_->StopSandbox(sandbox.id); !s.ok()) spdlog::warn("removing sandbox {}: {}", sandbox.id, s.ToString());
    }
  });
  return Status::Ok();
}

void PodManager::Stop() {
  if (stop_.exchange(true)) return;
  if (informer_) informer_->Stop();
  queue_.ShutDown();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
  workers_.clear();
}

Status PodManager::Adopt() {
  auto sandboxes = runtime_->ListSandboxes();
  auto containers = runtime_->ListContainers();
  if (!sandboxes.ok() || !containers.ok()) {
    Status failed = !sandboxes.ok() ? sandboxes.status() : containers.status();
    spdlog::warn("recovering from the runtime: {}", failed.ToString());
    return failed;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& s : *sandboxes) {
    auto& entry = adopted_[s.pod_uid];
    entry.first = s;
    for (const auto& c : *containers) {
      if (c.sandbox_id == s.id) entry.second.push_back(c);
    }
    spdlog::info("found sandbox {} of pod {}/{} with {} container(s)", s.id, s.pod_namespace, s.pod_name, entry.second.size());
  }
  return Status::Ok();
}

void PodManager::UpsertStaticPod(const std::string& key, std::shared_ptr<const rapidjson::Document> pod) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    static_pods_[key] = std::move(pod);
  }
  queue_.Add(key);
}

void PodManager::RemoveStaticPod(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    static_pods_.erase(key);
  }
  queue_.Add(key);
}

void PodManager::ResendStatus(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = states_.find(key); it != states_.end()) it->second->resend = true;
  }
  queue_.Add(key);
}

ObjectPtr PodManager::Lookup(const std::string& key) const {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = static_pods_.find(key); it != static_pods_.end()) return it->second;
  }
  ObjectPtr pod = informer_ ? informer_->Get(key) : nullptr;
  if (pod && IsMirror(*pod)) return nullptr;  // the static pod manager owns mirrors
  return pod;
}

std::vector<ObjectPtr> PodManager::Pods() const {
  std::vector<ObjectPtr> out;
  if (informer_) {
    for (auto& p : informer_->List("")) {
      if (!IsMirror(*p)) out.push_back(p);
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [k, p] : static_pods_) out.push_back(p);
  return out;
}

PodCounters PodManager::counters() const {
  std::lock_guard<std::mutex> lock(mu_);
  return counters_;
}

bool PodManager::synced() const { return informer_ && informer_->synced(); }

Result<PodManager::LogLocation> PodManager::LogFor(const std::string& ns, const std::string& pod,
                                                   const std::string& container, bool previous) {
  std::string path, id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!states_.count(ns + "/" + pod)) return Status::NotFound("pod \"" + pod + "\" is not running on this node");
    auto it = logs_.find(ns + "/" + pod + "/" + container);
    if (previous) {
      if (it == logs_.end() || it->second.previous.empty()) {
        return Status::InvalidArgument("previous terminated container \"" + container + "\" in pod \"" + pod + "\" not found");
      }
      return LogLocation{it->second.previous, false};
    }
    if (it == logs_.end() || it->second.current.empty()) {
      return Status::InvalidArgument("container \"" + container + "\" in pod \"" + pod + "\" is waiting to start: ContainerCreating");
    }
    path = it->second.current;
    id = it->second.container_id;
  }
  auto st = runtime_->InspectContainer(id);
  return LogLocation{path, st.ok() && st->kind == ContainerStatusKind::kRunning};
}

bool PodManager::AttemptRunning(const std::string& log_path) {
  std::string id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [k, e] : logs_) {
      if (e.current == log_path) id = e.container_id;
    }
  }
  if (id.empty()) return false;
  auto st = runtime_->InspectContainer(id);
  return st.ok() && st->kind == ContainerStatusKind::kRunning;
}

void PodManager::IndexLog(const PodState& st, const ContainerState& cs) {
  std::lock_guard<std::mutex> lock(mu_);
  LogEntry& e = logs_[st.ns + "/" + st.name + "/" + cs.name];
  e.current = cs.log_path;
  e.previous = cs.last_log_path;
  e.container_id = cs.id;
}

void PodManager::ForgetLogs(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = logs_.lower_bound(key + "/"); it != logs_.end() && it->first.rfind(key + "/", 0) == 0;) it = logs_.erase(it);
}

void PodManager::Event(const rapidjson::Value& pod, const std::string& type, const std::string& reason,
                       const std::string& message) {
  if (events_) events_->Record(pod, type, reason, message);
}

void PodManager::Worker() {
  while (true) {
    auto key = queue_.Get();
    if (!key) return;
    std::chrono::milliseconds requeue = options_.resync;
    Status s;
    try {
      s = Sync(*key, &requeue);
    } catch (const std::exception& e) {
      s = Status::Internal(e.what());
    }
    if (s.ok()) {
      queue_.Forget(*key);
      if (requeue.count() > 0) queue_.AddAfter(*key, requeue);
    } else {
      spdlog::warn("pod {}: {}", *key, s.ToString());
      queue_.AddRateLimited(*key);
    }
    queue_.Done(*key);
    std::lock_guard<std::mutex> lock(mu_);
    counters_.syncs++;
  }
}

void PodManager::StartStop(PodState& st, const std::string& container_id, int grace_seconds) {
  PodRuntime* runtime = runtime_;
  st.stops.push_back(std::async(std::launch::async, [runtime, container_id, grace_seconds] {
    return runtime->StopContainer(container_id, grace_seconds);
  }));
}

void PodManager::WaitStops(PodState& st) {
  for (auto& f : st.stops) f.wait();
}

bool PodManager::StopsDone(PodState& st, Status* error) {
  for (auto& f : st.stops) {
    if (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready) return false;
  }
  for (auto& f : st.stops) {
    Status s = f.get();
    if (!s.ok() && error && error->ok()) *error = s;
  }
  st.stops.clear();
  return true;
}

Status PodManager::Teardown(PodState& st, int grace_seconds, const rapidjson::Value* pod) {
  std::vector<std::future<Status>> stops;
  for (auto& [name, cs] : st.containers) {
    if (cs.id.empty()) continue;
    auto status = runtime_->InspectContainer(cs.id);
    if (!status.ok() || status->kind != ContainerStatusKind::kRunning) continue;
    if (pod) Event(*pod, "Normal", "Killing", "Stopping container " + name);
    std::string id = cs.id;
    stops.push_back(std::async(std::launch::async, [this, id, grace_seconds] { return runtime_->StopContainer(id, grace_seconds); }));
  }
  Status first;
  for (auto& f : stops) {
    Status s = f.get();
    if (!s.ok() && first.ok()) first = s;
  }
  if (st.sandbox) {
    Status s = runtime_->StopSandbox(st.sandbox->id);
    if (!s.ok()) return s;  // retried: the IP must be released
    st.sandbox.reset();
  }
  return first;
}

// kubelet's ContainerStatusUnknown: an attempt whose end nobody saw (its sandbox went with it).
static ContainerStatus StatusUnknownExit() {
  ContainerStatus unknown;
  unknown.kind = ContainerStatusKind::kExited;
  unknown.exit_code = 137;
  unknown.reason = "ContainerStatusUnknown";
  unknown.message = "The container could not be located when the pod was terminated";
  return unknown;
}

// containers[].ports[] with a hostPort, as CNI portMappings (protocol lower-case).
static std::vector<PortMapping> HostPorts(const rapidjson::Value& spec) {
  std::vector<PortMapping> out;
  const rapidjson::Value* containers = am::FindMember(spec, "containers");
  if (!containers || !containers->IsArray()) return out;
  for (const auto& c : containers->GetArray()) {
    const rapidjson::Value* ports = am::FindMember(c, "ports");
    if (!ports || !ports->IsArray()) continue;
    for (const auto& p : ports->GetArray()) {
      const rapidjson::Value* host_port = am::FindMember(p, "hostPort");
      const rapidjson::Value* container_port = am::FindMember(p, "containerPort");
      if (!host_port || !host_port->IsInt() || host_port->GetInt() <= 0 || !container_port || !container_port->IsInt()) {
        continue;
      }
      PortMapping m;
      m.host_port = host_port->GetInt();
      m.container_port = container_port->GetInt();
      m.protocol = StrAt(p, "protocol", "TCP");
      std::transform(m.protocol.begin(), m.protocol.end(), m.protocol.begin(), ::tolower);
      m.host_ip = StrAt(p, "hostIP");
      out.push_back(m);
    }
  }
  return out;
}

bool PodManager::ReplaceDeadSandbox(const rapidjson::Value& pod, PodState& st, const std::string& restart_policy) {
  // Under Never the pod ends with its sandbox, unless no container has run yet (as the kubelet).
  bool any_ran = false;
  for (const auto& [name, cs] : st.containers) any_ran |= !cs.id.empty() || cs.detached_exit || cs.restart_count > 0;
  const bool never = restart_policy == "Never" && any_ran;
  if (st.sandbox_changed_for != st.sandbox->id) {
    Event(pod, "Normal", "SandboxChanged",
          never ? "Pod sandbox changed, it will be killed" : "Pod sandbox changed, it will be killed and re-created.");
    st.sandbox_changed_for = st.sandbox->id;
  }
  // The kernel killed the containers with their PID namespace's init; wait for that, keep how
  // each ended (the runtime's record goes with the sandbox).
  for (auto& [name, cs] : st.containers) {
    if (cs.id.empty()) continue;
    (void)runtime_->StopContainer(cs.id, 0);
    ContainerStatus ended = StatusUnknownExit();
    if (auto r = runtime_->InspectContainer(cs.id); r.ok() && r->kind == ContainerStatusKind::kExited) ended = *r;
    ended.id = cs.id;
    cs.last_log_path = cs.log_path;  // kubectl logs --previous: the attempt that just died
    cs.id.clear();
    cs.ready = false;
    cs.started = false;
    cs.stopping = false;
    if (cs.init && !never) {
      // Init containers run again in the new sandbox (a new attempt).
      cs.last_termination = ended;
      cs.last_container_id = ended.id;
      cs.restart_count++;
      cs.detached_exit.reset();
    } else {
      cs.detached_exit = ended;
    }
  }
  Status stopped = runtime_->StopSandbox(st.sandbox->id);
  if (!stopped.ok()) {
    spdlog::warn("pod {}/{}: removing its dead sandbox: {}", st.ns, st.name, stopped.message());
    return false;
  }
  st.sandbox.reset();
  st.sandbox_lost = never;
  return true;
}

Status PodManager::Sync(const std::string& key, std::chrono::milliseconds* requeue) {
  ObjectPtr pod = Lookup(key);
  std::shared_ptr<PodState> st;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = states_.find(key); it != states_.end()) st = it->second;
  }
  if (!pod) {
    *requeue = std::chrono::milliseconds(0);
    if (!st) return Status::Ok();
    if (Status s = Teardown(*st, 2, nullptr); !s.ok()) return s;
    WaitStops(*st);  // never in a PodState's destructor under mu_
    ForgetLogs(key);
    std::lock_guard<std::mutex> lock(mu_);
    states_.erase(key);
    return Status::Ok();
  }
  std::string uid(controller::MetaString(*pod, "uid"));
  if (st && st->uid != uid) {  // same name, new pod: the old one goes first
    if (Status s = Teardown(*st, 2, nullptr); !s.ok()) return s;
    WaitStops(*st);
    st.reset();
  }
  bool is_static;
  {
    std::lock_guard<std::mutex> lock(mu_);
    is_static = static_pods_.count(key) > 0;
  }
  if (!st) {
    st = std::make_shared<PodState>();
    st->uid = uid;
    st->ns = std::string(controller::MetaString(*pod, "namespace"));
    st->name = std::string(controller::MetaString(*pod, "name"));
    st->is_static = is_static;
    std::lock_guard<std::mutex> lock(mu_);
    if (auto a = adopted_.find(uid); a != adopted_.end()) {
      st->sandbox = a->second.first;
      st->start_time = StrAt(*pod, "status.startTime", Rfc3339(a->second.first.created_at_unix));
      // The latest attempt of each container is the current one; the one before is lastState.
      std::map<std::string, std::vector<const ContainerRecord*>> by_name;
      for (const auto& r : a->second.second) by_name[r.name].push_back(&r);
      for (auto& [name, recs] : by_name) {
        std::sort(recs.begin(), recs.end(), [](auto* x, auto* y) { return x->attempt < y->attempt; });
        ContainerState& cs = st->containers[name];
        cs.name = name;
        if (const rapidjson::Value* inits = At(*pod, "spec.initContainers"); inits && inits->IsArray()) {
          for (const auto& ic : inits->GetArray()) cs.init |= StrAt(ic, "name") == name;
        }
        cs.id = recs.back()->id;
        cs.restart_count = recs.back()->attempt;
        cs.log_path = recs.back()->log_path;
        cs.image = recs.back()->image;
        cs.started = true;
        cs.probes_for = "";  // probes re-armed, results seeded from the API below
        if (recs.size() > 1) {
          cs.last_termination = recs[recs.size() - 2]->status;
          cs.last_container_id = recs[recs.size() - 2]->id;
          cs.last_log_path = recs[recs.size() - 2]->log_path;
        } else if (cs.restart_count > 0) {  // the previous attempt was removed; its log stays
          cs.last_log_path = options_.log_dir + "/" + uid + "/" + name + "/" + std::to_string(cs.restart_count - 1) + ".log";
        }
        if (const rapidjson::Value* statuses = At(*pod, "status.containerStatuses"); statuses && statuses->IsArray()) {
          for (const auto& s : statuses->GetArray()) {
            if (StrAt(s, "name") == name) {
              const rapidjson::Value* r = am::FindMember(s, "ready");
              cs.ready = r && r->IsBool() && r->GetBool();
              const rapidjson::Value* started = am::FindMember(s, "started");
              cs.started = !started || !started->IsBool() || started->GetBool();
            }
          }
        }
      }
      adopted_.erase(a);
    }
    states_[key] = st;
    for (const auto& [n, cs] : st->containers) {
      LogEntry& e = logs_[key + "/" + n];
      e.current = cs.log_path;
      e.previous = cs.last_log_path;
      e.container_id = cs.id;
    }
  }

  if (At(*pod, "metadata.deletionTimestamp")) {
    int grace = static_cast<int>(IntAt(*pod, "metadata.deletionGracePeriodSeconds", 30));
    // SIGTERM now (or again with a shorter grace period, as a second delete may ask), then
    // wait for the stops without holding this worker.
    if (st->stopping_grace < 0 || grace < st->stopping_grace) {
      for (auto& [name, cs] : st->containers) {
        if (cs.id.empty()) continue;
        auto status = runtime_->InspectContainer(cs.id);
        if (!status.ok() || status->kind != ContainerStatusKind::kRunning) continue;
        if (st->stopping_grace < 0) Event(*pod, "Normal", "Killing", "Stopping container " + name);
        StartStop(*st, cs.id, grace);
      }
      st->stopping_grace = grace;
    }
    Status stop_error;
    if (!StopsDone(*st, &stop_error)) {
      *requeue = std::chrono::milliseconds(100);
      return Status::Ok();
    }
    if (!stop_error.ok()) {
      st->stopping_grace = -1;  // tried again
      return stop_error;
    }
    if (Status s = Teardown(*st, 0, nullptr); !s.ok()) return s;
    if (!is_static) {
      std::string body = R"({"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0,"preconditions":{"uid":")" + uid + R"("}})";
      auto r = client_->Do("DELETE", pods_resource_.ObjectPath(st->ns, st->name), body);
      if (!r.ok()) return r.status();
      Status ds = client::ToStatus(*r);
      if (!ds.ok() && !ds.IsNotFound() && !ds.IsConflict()) return ds;
    }
    ForgetLogs(key);
    std::lock_guard<std::mutex> lock(mu_);
    states_.erase(key);
    counters_.deletions++;
    *requeue = std::chrono::milliseconds(0);
    return Status::Ok();
  }

  std::string api_phase = StrAt(*pod, "status.phase");
  if (st->finished || ((api_phase == "Succeeded" || api_phase == "Failed") && !st->sandbox && st->containers.empty())) {
    *requeue = std::chrono::milliseconds(0);  // finished before this agent started
    return Status::Ok();
  }
  const rapidjson::Value* spec = am::FindMember(*pod, "spec");
  if (!spec) return Status::InvalidArgument("pod without spec");
  std::string restart_policy = StrAt(*spec, "restartPolicy", "Always");

  if (Status stop_error; StopsDone(*st, &stop_error) && !stop_error.ok()) {
    spdlog::warn("pod {}/{}: stopping a container: {}", st->ns, st->name, stop_error.ToString());
    for (auto& [name, cs] : st->containers) cs.stopping = false;  // probes (and the kill) go on
  }
  if (st->sandbox) {
    auto sandbox = runtime_->InspectSandbox(st->sandbox->id);
    if (sandbox.ok() && !sandbox->ready) {
      // Looked at twice: one failed read of the pause process's /proc entry is not a death.
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      sandbox = runtime_->InspectSandbox(st->sandbox->id);
    }
    if (sandbox.ok() && !sandbox->ready && !ReplaceDeadSandbox(*pod, *st, restart_policy)) {
      *requeue = std::chrono::milliseconds(2000);  // its IP must be released first
      return Status::Ok();
    }
  }
  if (!st->sandbox && !st->sandbox_lost) {
    SandboxConfig sc;
    sc.pod_uid = uid;
    sc.pod_namespace = st->ns;
    sc.pod_name = st->name;
    sc.hostname = StrAt(*spec, "hostname", st->name);
    sc.port_mappings = HostPorts(*spec);
    // The bridge plugin races with itself while creating the node's bridge, so sandboxes are
    // created one at a time until the first one succeeded.
    std::unique_lock<std::mutex> first(first_sandbox_mu_, std::defer_lock);
    if (!first_sandbox_done_) first.lock();
    auto sb = runtime_->RunSandbox(sc);
    if (sb.ok()) first_sandbox_done_ = true;
    if (first.owns_lock()) first.unlock();
    if (!sb.ok()) {
      if (st->sandbox_error != sb.status().message()) {
        Event(*pod, "Warning", "FailedCreatePodSandBox", "Failed to create pod sandbox: " + sb.status().message());
        st->sandbox_error = sb.status().message();
      }
      (void)WriteStatus(*pod, *st, "Pending", "", "");
      *requeue = std::chrono::milliseconds(2000);
      return Status::Ok();
    }
    st->sandbox_error.clear();
    st->sandbox = *sb;
    if (st->start_time.empty()) st->start_time = NowRfc3339();  // the pod's, kept across sandboxes
  }

  auto now = Clock::now();
  std::chrono::milliseconds next = options_.resync;
  // Looks at one container: starts, restarts (policy + back-off) or probes it. Returns its
  // current runtime status (nullopt: not running yet).
  auto drive = [&](const rapidjson::Value& cspec, bool init) -> std::optional<ContainerStatus> {
    std::string name = StrAt(cspec, "name");
    ContainerState& cs = st->containers[name];
    cs.name = name;
    cs.init = init;
    if (cs.id.empty() && !cs.detached_exit && !st->sandbox) {
      // The sandbox is gone for good before this container ran (kubelet's ContainerStatusUnknown).
      cs.detached_exit = StatusUnknownExit();
    }
    if (cs.id.empty() && !cs.detached_exit) {
      if (now < cs.restart_not_before) return std::nullopt;
      (void)StartContainer(*pod, cspec, *st, cs, false);
      if (cs.id.empty() && !cs.detached_exit) return std::nullopt;
    }
    std::optional<ContainerStatus> status = cs.detached_exit;
    if (!cs.id.empty()) {
      auto inspected = runtime_->InspectContainer(cs.id);
      if (!inspected.ok()) return std::nullopt;
      status = *inspected;
    }
    if (status->kind == ContainerStatusKind::kRunning) {
      if (!init) ProbeContainer(*pod, cspec, *st, cs, &next);
      return *status;
    }
    if (status->kind != ContainerStatusKind::kExited) return *status;
    cs.ready = false;
    bool restart = restart_policy == "Always" || (restart_policy == "OnFailure" && status->exit_code != 0);
    if (init && status->exit_code == 0) restart = false;
    if (!restart || !st->sandbox) return *status;
    // Crash back-off: the first restart is immediate, then 10 s, 20 s, ... up to 5 min; a
    // container that ran 10 minutes starts over.
    if (cs.restart_not_before <= Clock::time_point{} || cs.waiting_reason != "CrashLoopBackOff") {
      bool long_run = status->finished_at_unix - status->started_at_unix >= 600;
      if (long_run) cs.backoff_seconds = 0;
      if (cs.backoff_seconds == 0) {
        cs.restart_not_before = now;
        cs.backoff_seconds = options_.initial_backoff_seconds;
      } else {
        cs.restart_not_before = now + std::chrono::seconds(cs.backoff_seconds);
        cs.backoff_seconds = std::min(cs.backoff_seconds * 2, options_.max_backoff_seconds);
      }
    }
    if (now >= cs.restart_not_before) {
      cs.last_termination = *status;
      cs.last_container_id = cs.id.empty() ? status->id : cs.id;
      bool started = StartContainer(*pod, cspec, *st, cs, true).ok();
      if (started) cs.restart_not_before = Clock::time_point{};
      if (cs.id.empty()) return cs.detached_exit;
      auto fresh = runtime_->InspectContainer(cs.id);
      return fresh.ok() ? std::optional<ContainerStatus>(*fresh) : std::nullopt;
    }
    if (cs.waiting_reason != "CrashLoopBackOff") {
      Event(*pod, "Warning", "BackOff", "Back-off restarting failed container " + name + " in pod " + st->name + "_" + st->ns + "(" + uid + ")");
    }
    cs.waiting_reason = "CrashLoopBackOff";
    auto left = std::chrono::duration_cast<std::chrono::seconds>(cs.restart_not_before - now).count();
    cs.waiting_message = "back-off " + std::to_string(cs.backoff_seconds / 2 > 0 ? cs.backoff_seconds / 2 : cs.backoff_seconds) +
                         "s restarting failed container=" + name + " pod=" + st->name + "_" + st->ns + "(" + uid + ")";
    next = std::min(next, std::chrono::milliseconds(std::max<int64_t>(100, left * 1000)));
    return *status;
  };

  bool initialized = true, init_failed = false;
  if (const rapidjson::Value* inits = am::FindMember(*spec, "initContainers"); inits && inits->IsArray()) {
    for (const auto& ic : inits->GetArray()) {
      auto s = drive(ic, true);
      if (!s || s->kind != ContainerStatusKind::kExited) {
        initialized = false;
        break;
      }
      if (s->exit_code != 0) {
        initialized = false;
        if (restart_policy == "Never") init_failed = true;
        break;
      }
    }
  }
  int running = 0, total = 0, succeeded = 0, failed = 0, restarting = 0;
  if (initialized) {
    if (const rapidjson::Value* cs = am::FindMember(*spec, "containers"); cs && cs->IsArray()) {
      for (const auto& c : cs->GetArray()) {
        ++total;
        auto s = drive(c, false);
        if (!s) continue;
        if (s->kind == ContainerStatusKind::kRunning) {
          ++running;
        } else if (s->kind == ContainerStatusKind::kExited) {
          // An exit the restart policy restarts is not an end (it may have exited again already).
          bool will_restart = restart_policy == "Always" || (restart_policy == "OnFailure" && s->exit_code != 0);
          if (will_restart) {
            ++restarting;
          } else if (s->exit_code == 0) {
            ++succeeded;
          } else {
            ++failed;
          }
        }
      }
    }
  }
  // kubelet's getPhase: Running once every container has started (running, restarting or
  // exited); Pending while one has never run.
  std::string phase = "Pending";
  if (init_failed) {
    phase = "Failed";
  } else if (initialized && total > 0) {
    if (running + restarting > 0 && running + restarting + succeeded + failed == total) {
      phase = "Running";
    } else if (succeeded + failed == total) {
      phase = failed > 0 ? "Failed" : "Succeeded";
    }
  }
  if (Status s = WriteStatus(*pod, *st, phase, "", ""); !s.ok()) return s;
  if (phase == "Succeeded" || phase == "Failed") {
    // Finished for good: the sandbox and its IP go now (logs stay for kubectl logs).
    if (Status s = Teardown(*st, 0, nullptr); !s.ok()) return s;
    st->finished = true;
    *requeue = std::chrono::milliseconds(0);
    return Status::Ok();
  }
  *requeue = next;
  return Status::Ok();
}

std::vector<std::pair<std::string, std::string>> ServiceEnvironment(
    const std::vector<controller::ObjectPtr>& services) {
  std::vector<const rapidjson::Value*> sorted;
  for (const auto& svc : services) {
    std::string ip = StrAt(*svc, "spec.clusterIP");
    if (!ip.empty() && ip != "None") sorted.push_back(svc.get());
  }
  std::sort(sorted.begin(), sorted.end(), [](const rapidjson::Value* a, const rapidjson::Value* b) {
    return StrAt(*a, "metadata.name") < StrAt(*b, "metadata.name");
  });
  auto var = [](std::string s) {
    for (char& c : s) c = c == '-' ? '_' : static_cast<char>(::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  std::vector<std::pair<std::string, std::string>> env;
  for (const rapidjson::Value* svc : sorted) {
    std::string prefix = var(StrAt(*svc, "metadata.name")), ip = StrAt(*svc, "spec.clusterIP");
    const rapidjson::Value* ports = At(*svc, "spec.ports");
    if (!ports || !ports->IsArray() || ports->Empty()) continue;
    env.emplace_back(prefix + "_SERVICE_HOST", ip);
    bool first = true;
    for (const auto& p : ports->GetArray()) {
      std::string port = std::to_string(IntAt(p, "port", 0));
      if (first) env.emplace_back(prefix + "_SERVICE_PORT", port);
      if (std::string name = StrAt(p, "name"); !name.empty()) env.emplace_back(prefix + "_SERVICE_PORT_" + var(name), port);
      first = false;
    }
    first = true;
    for (const auto& p : ports->GetArray()) {
      std::string port = std::to_string(IntAt(p, "port", 0));
      std::string proto = StrAt(p, "protocol", "TCP");
      std::string lower = proto;
      std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
      std::string url = lower + "://" + ip + ":" + port;
      if (first) env.emplace_back(prefix + "_PORT", url);
      first = false;
      std::string pp = prefix + "_PORT_" + port + "_" + var(proto);
      env.emplace_back(pp, url);
      env.emplace_back(pp + "_PROTO", lower);
      env.emplace_back(pp + "_PORT", port);
      env.emplace_back(pp + "_ADDR", ip);
    }
  }
  return env;
}

Status PodManager::StartContainer(const rapidjson::Value& pod, const rapidjson::Value& cspec, PodState& st,
                                  ContainerState& cs, bool restart) {
  std::string image = StrAt(cspec, "image");
  std::string policy = PullPolicy(cspec);
  cs.image = NormalizeImageRef(image);
  if (options_.images) {
    if (!options_.images->Has(image)) {
      std::string message;
      if (policy == "Never") {
        cs.waiting_reason = "ErrImageNeverPull";
        message = "Container image \"" + image + "\" is not present with pull policy of Never";
        Event(pod, "Warning", "ErrImageNeverPull", message);
      } else {
        bool again = cs.waiting_reason == "ErrImagePull" || cs.waiting_reason == "ImagePullBackOff";
        message = "image \"" + image + "\" is not in this node's image store (there is no registry to pull from: import it with `rc-agent images import FILE`)";
        Event(pod, "Normal", "Pulling", "Pulling image \"" + image + "\"");
        Event(pod, "Warning", "Failed", "Failed to pull image \"" + image + "\": " + message);
        Event(pod, "Warning", "Failed", "Error: ErrImagePull");
        if (again) Event(pod, "Normal", "BackOff", "Back-off pulling image \"" + image + "\"");
        cs.waiting_reason = again ? "ImagePullBackOff" : "ErrImagePull";
        cs.restart_not_before = Clock::now() + std::chrono::seconds(again ? 10 : 1);
      }
      cs.waiting_message = message;
      return Status::NotFound(message);
    }
    if (auto img = options_.images->Get(image); img.ok()) cs.image_id = cs.image.substr(0, cs.image.rfind(':')) + "@sha256:" + img->id;
    if (policy == "Always") {
      Event(pod, "Normal", "Pulling", "Pulling image \"" + image + "\"");
      Event(pod, "Normal", "Pulled", "Successfully pulled image \"" + image + "\" in 0s (0s including waiting). Image size: 0 bytes.");
    } else {
      Event(pod, "Normal", "Pulled", "Container image \"" + image + "\" already present on machine");
    }
  }
  ContainerConfig cfg;
  cfg.sandbox_id = st.sandbox->id;
  cfg.name = cs.name;
  cfg.image = image;
  cfg.command = Strings(am::FindMember(cspec, "command"));
  cfg.args = Strings(am::FindMember(cspec, "args"));
  cfg.working_dir = StrAt(cspec, "workingDir");
  const rapidjson::Value* links = At(pod, "spec.enableServiceLinks");
  if (options_.services && !(links && links->IsBool() && !links->GetBool())) {
    for (auto& kv : ServiceEnvironment(options_.services(st.ns))) cfg.env.push_back(std::move(kv));
  }
  if (const rapidjson::Value* env = am::FindMember(cspec, "env"); env && env->IsArray()) {
    for (const auto& e : env->GetArray()) {
      std::string name = StrAt(e, "name");
      if (name.empty()) continue;
      if (const rapidjson::Value* v = am::FindMember(e, "value"); v && v->IsString()) {
        cfg.env.emplace_back(name, v->GetString());
        continue;
      }
      std::string field = StrAt(e, "valueFrom.fieldRef.fieldPath");
      std::string value;
      if (field == "metadata.name") value = st.name;
      else if (field == "metadata.namespace") value = st.ns;
      else if (field == "metadata.uid") value = st.uid;
      else if (field == "spec.nodeName") value = options_.node_name;
      else if (field == "spec.serviceAccountName") value = StrAt(pod, "spec.serviceAccountName", "default");
      else if (field == "status.podIP") value = st.sandbox->ip;
      else if (field == "status.hostIP") value = options_.host_ip;
      else if (field.rfind("metadata.labels['", 0) == 0 && field.size() > 19) {
        std::string label = field.substr(17, field.size() - 19);
        if (const rapidjson::Value* labels = At(pod, "metadata.labels")) value = StrAt(*labels, label);
      }
      cfg.env.emplace_back(name, value);
    }
  }
  if (const rapidjson::Value* limits = At(cspec, "resources.limits"); limits && limits->IsObject()) {
    if (const rapidjson::Value* m = am::FindMember(*limits, "memory")) {
      if (auto q = am::ParseQuantityJson(*m); q.ok()) cfg.memory_limit_bytes = q->Value();
    }
    if (const rapidjson::Value* c = am::FindMember(*limits, "cpu")) {
      if (auto q = am::ParseQuantityJson(*c); q.ok()) cfg.cpu_limit_millis = q->MilliValue();
    }
  }
  int attempt = restart ? cs.restart_count + 1 : cs.restart_count;
  cfg.attempt = attempt;
  cfg.log_path = options_.log_dir + "/" + st.uid + "/" + cs.name + "/" + std::to_string(attempt) + ".log";
  // The previous attempt goes (its log stays for --previous).
  if (restart && !cs.id.empty()) {
    (void)runtime_->RemoveContainer(cs.id);
    cs.last_log_path = cs.log_path;
    cs.id.clear();
  }
  cs.detached_exit.reset();
  auto id = runtime_->CreateAndStartContainer(cfg);
  if (!id.ok()) {
    Event(pod, "Warning", "Failed", "Error: " + id.status().message());
    if (restart) cs.restart_count = attempt;  // the attempt was made
    if (id.status().code() != StatusCode::kInternal) {
      // Not the process's fault (the image vanished, the node's files, a silent shim): the
      // kubelet's CreateContainerError, waiting and retried whatever the restart policy.
      cs.waiting_reason = id.status().code() == StatusCode::kNotFound ? "ErrImagePull" : "CreateContainerError";
      cs.waiting_message = id.status().message();
      cs.restart_not_before = Clock::now() + std::chrono::seconds(2);
      return id.status();
    }
    // The attempt ran and failed to start: terminated with StartError, exit code 128.
    ContainerStatus failure;
    failure.kind = ContainerStatusKind::kExited;
    failure.exit_code = 128;
    failure.reason = "StartError";
    failure.message = id.status().message();
    failure.started_at_unix = failure.finished_at_unix = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::now().time_since_epoch()).count();
    cs.detached_exit = failure;
    cs.waiting_reason.clear();
    cs.waiting_message.clear();
    return id.status();
  }
  cs.id = *id;
  cs.log_path = cfg.log_path;
  cs.restart_count = attempt;
  IndexLog(st, cs);
  {
    std::lock_guard<std::mutex> lock(mu_);
    counters_.containers_started++;
    if (restart) counters_.restarts++;
  }
  cs.waiting_reason.clear();
  cs.waiting_message.clear();
  cs.ready = false;
  cs.started = false;
  cs.stopping = false;
  cs.probes_for.clear();
  Event(pod, "Normal", "Created", "Created container " + cs.name);
  Event(pod, "Normal", "Started", "Started container " + cs.name);
  return Status::Ok();
}

void PodManager::ProbeContainer(const rapidjson::Value& pod, const rapidjson::Value& cspec, PodState& st,
                                ContainerState& cs, std::chrono::milliseconds* requeue) {
  if (cs.stopping) return;  // killed for a failed probe; the restart re-arms the probes
  auto now = Clock::now();
  if (cs.probes_for != cs.id) {
    bool adopted = cs.probes_for.empty() && cs.started;  // recovered after an agent restart
    auto arm = [&](ProbeState& p, const char* field) {
      auto parsed = ParseProbe(am::FindMember(cspec, field), cspec);
      p = ProbeState{};
      if (!parsed.ok()) {
        Event(pod, "Warning", "Unhealthy", std::string(field) + " is invalid: " + parsed.status().message());
        return;
      }
      p.spec = *parsed;
      p.next = now + std::chrono::seconds(adopted ? 0 : p.spec.initial_delay_seconds);
    };
    arm(cs.liveness, "livenessProbe");
    arm(cs.readiness, "readinessProbe");
    arm(cs.startup, "startupProbe");
    if (adopted) {
      cs.startup.result = true;
      if (cs.ready) cs.readiness.result = true;  // keep Ready across the agent's restart
    } else {
      cs.started = cs.startup.spec.kind == ProbeSpec::Kind::kNone;
    }
    cs.probes_for = cs.id;
  }
  std::string ip = st.sandbox ? st.sandbox->ip : "";
  auto due = [&](ProbeState& p) { return p.spec.kind != ProbeSpec::Kind::kNone && now >= p.next; };
  auto schedule = [&](ProbeState& p) {
    p.next = now + std::chrono::seconds(p.spec.period_seconds);
  };
  auto kill = [&](const std::string& which) {
    Event(pod, "Normal", "Killing", "Container " + cs.name + " failed " + which + " probe, will be restarted");
    int grace = static_cast<int>(IntAt(pod, "spec.terminationGracePeriodSeconds", 30));
    StartStop(st, cs.id, grace);
    cs.stopping = true;
    cs.ready = false;
    *requeue = std::chrono::milliseconds(50);
  };
  if (!cs.started) {
    if (due(cs.startup)) {
      auto out = RunProbe(cs.startup.spec, runtime_, cs.id, ip, options_.pod_netns_path);
      schedule(cs.startup);
      if (out.success) {
        cs.started = true;
        cs.liveness.next = now + std::chrono::seconds(cs.liveness.spec.initial_delay_seconds);
        cs.readiness.next = now + std::chrono::seconds(cs.readiness.spec.initial_delay_seconds);
      } else {
        Event(pod, "Warning", "Unhealthy", "Startup probe failed: " + out.message);
        if (++cs.startup.failures >= cs.startup.spec.failure_threshold) return kill("startup");
      }
    }
    if (!cs.started) {
      *requeue = std::min(*requeue, std::chrono::duration_cast<std::chrono::milliseconds>(cs.startup.next - now));
      return;
    }
  }
  if (due(cs.liveness)) {
    auto out = RunProbe(cs.liveness.spec, runtime_, cs.id, ip, options_.pod_netns_path);
    schedule(cs.liveness);
    if (out.success) {
      cs.liveness.failures = 0;
    } else {
      Event(pod, "Warning", "Unhealthy", "Liveness probe failed: " + out.message);
      if (++cs.liveness.failures >= cs.liveness.spec.failure_threshold) return kill("liveness");
    }
  }
  if (due(cs.readiness)) {
    auto out = RunProbe(cs.readiness.spec, runtime_, cs.id, ip, options_.pod_netns_path);
    schedule(cs.readiness);
    if (out.success) {
      cs.readiness.failures = 0;
      if (++cs.readiness.successes >= cs.readiness.spec.success_threshold) cs.readiness.result = true;
    } else {
      cs.readiness.successes = 0;
      Event(pod, "Warning", "Unhealthy", "Readiness probe failed: " + out.message);
      if (++cs.readiness.failures >= cs.readiness.spec.failure_threshold) cs.readiness.result = false;
    }
  }
  cs.ready = cs.readiness.spec.kind == ProbeSpec::Kind::kNone ? cs.started : cs.readiness.result.value_or(false);
  for (ProbeState* p : {&cs.liveness, &cs.readiness}) {
    if (p->spec.kind == ProbeSpec::Kind::kNone) continue;
    *requeue = std::min(*requeue, std::max(std::chrono::milliseconds(10),
                                           std::chrono::duration_cast<std::chrono::milliseconds>(p->next - now)));
  }
}

Status PodManager::WriteStatus(const rapidjson::Value& pod, PodState& st, const std::string& phase,
                               const std::string& reason, const std::string& message) {
  const rapidjson::Value* spec = am::FindMember(pod, "spec");
  bool initialized = true, all_ready = true;
  int count = 0;
  auto write_statuses = [&](Writer& w, const char* list, bool init) {
    const rapidjson::Value* cs = spec ? am::FindMember(*spec, list) : nullptr;
    if (!cs || !cs->IsArray()) return;
    w.Key(init ? "initContainerStatuses" : "containerStatuses");
    w.StartArray();
    for (const auto& c : cs->GetArray()) {
      std::string name = StrAt(c, "name");
      auto it = st.containers.find(name);
      ContainerState* state = it == st.containers.end() ? nullptr : &it->second;
      std::optional<ContainerStatus> rs;
      if (state && !state->id.empty()) {
        if (auto r = runtime_->InspectContainer(state->id); r.ok()) rs = *r;
      } else if (state && state->detached_exit) {
        rs = state->detached_exit;
      }
      bool running = rs && rs->kind == ContainerStatusKind::kRunning;
      bool ready = state && running && state->ready;
      if (init) {
        if (!(rs && rs->kind == ContainerStatusKind::kExited && rs->exit_code == 0)) initialized = false;
      } else {
        ++count;
        if (!ready) all_ready = false;
      }
      w.StartObject();
      KV(w, "name", name);
      KV(w, "image", state && !state->image.empty() ? state->image : StrAt(c, "image"));
      KV(w, "imageID", state ? state->image_id : "");
      if (state && !state->id.empty()) KV(w, "containerID", "runc://" + state->id);
      w.Key("ready");
      w.Bool(init ? (rs && rs->kind == ContainerStatusKind::kExited && rs->exit_code == 0) : ready);
      w.Key("started");
      w.Bool(running && state && state->started);
      w.Key("restartCount");
      w.Int(state ? state->restart_count : 0);
      w.Key("state");
      w.StartObject();
      if (state && !state->waiting_reason.empty()) {
        w.Key("waiting");
        w.StartObject();
        KV(w, "reason", state->waiting_reason);
        if (!state->waiting_message.empty()) KV(w, "message", state->waiting_message);
        w.EndObject();
      } else if (running) {
        w.Key("running");
        w.StartObject();
        KV(w, "startedAt", Rfc3339(rs->started_at_unix));
        w.EndObject();
      } else if (rs && rs->kind == ContainerStatusKind::kExited) {
        w.Key("terminated");
        w.StartObject();
        w.Key("exitCode");
        w.Int(rs->exit_code);
        KV(w, "reason", rs->reason.empty() ? (rs->exit_code == 0 ? "Completed" : "Error") : rs->reason);
        KV(w, "startedAt", Rfc3339(rs->started_at_unix));
        KV(w, "finishedAt", Rfc3339(rs->finished_at_unix));
        if (!rs->message.empty() && state->id.empty()) KV(w, "message", rs->message);
        if (!rs->id.empty()) KV(w, "containerID", "runc://" + rs->id);
        w.EndObject();
      } else {
        w.Key("waiting");
        w.StartObject();
        KV(w, "reason", init || initialized ? "ContainerCreating" : "PodInitializing");
        w.EndObject();
      }
      w.EndObject();
      w.Key("lastState");
      w.StartObject();
      if (state && state->last_termination) {
        const ContainerStatus& t = *state->last_termination;
        w.Key("terminated");
        w.StartObject();
        w.Key("exitCode");
        w.Int(t.exit_code);
        KV(w, "reason", t.reason.empty() ? (t.exit_code == 0 ? "Completed" : "Error") : t.reason);
        KV(w, "startedAt", Rfc3339(t.started_at_unix));
        KV(w, "finishedAt", Rfc3339(t.finished_at_unix));
        if (!t.message.empty() && (t.reason == "StartError" || t.reason == "ContainerStatusUnknown")) {
          KV(w, "message", t.message);
        }
        if (!state->last_container_id.empty()) KV(w, "containerID", "runc://" + state->last_container_id);
        w.EndObject();
      }
      w.EndObject();
      w.EndObject();
    }
    w.EndArray();
  };
  rapidjson::StringBuffer body;
  Writer w(body);
  w.StartObject();
  KV(w, "phase", phase);
  std::string ip = st.sandbox ? st.sandbox->ip : "";
  // Statuses first (they decide the conditions), then conditions.
  rapidjson::StringBuffer statuses_buf;
  {
    Writer sw(statuses_buf);
    sw.StartObject();
    write_statuses(sw, "initContainers", true);
    write_statuses(sw, "containers", false);
    sw.EndObject();
  }
  bool containers_ready = all_ready && count > 0 && initialized && phase == "Running";
  std::string conds_key;
  auto cond = [&](const char* type, bool value) {
    std::string k = std::string(type) + (value ? "1" : "0");
    conds_key += k;
    return std::make_pair(std::string(type), value);
  };
  std::vector<std::pair<std::string, bool>> conditions = {
      cond("PodReadyToStartContainers", st.sandbox.has_value()), cond("Initialized", initialized),
      cond("Ready", containers_ready), cond("ContainersReady", containers_ready), cond("PodScheduled", true)};
  // The state without timestamps: skip the write when nothing changed.
  std::string fingerprint = phase + "|" + ip + "|" + conds_key + "|" + statuses_buf.GetString() + reason + message;
  if (st.resend.exchange(false)) st.last_status.clear();
  // Someone else changed our Ready condition (the node lifecycle controller marks the pods of
  // an unreachable node not ready): write ours again once we are back.
  if (!st.last_status.empty()) {
    if (const rapidjson::Value* api_conditions = At(pod, "status.conditions"); api_conditions && api_conditions->IsArray()) {
      for (const auto& c : api_conditions->GetArray()) {
        if (StrAt(c, "type") == "Ready" && (StrAt(c, "status") == "True") != containers_ready) st.last_status.clear();
      }
    }
  }
  if (fingerprint == st.last_status) return Status::Ok();
  std::string now = NowRfc3339();
  w.Key("conditions");
  w.StartArray();
  for (const auto& [type, value] : conditions) {
    w.StartObject();
    KV(w, "type", type);
    KV(w, "status", value ? "True" : "False");
    w.Key("lastProbeTime");
    w.Null();
    // Keep the transition time of an unchanged condition.
    std::string previous_time, previous_status;
    if (const rapidjson::Value* pc = At(pod, "status.conditions"); pc && pc->IsArray()) {
      for (const auto& c : pc->GetArray()) {
        if (StrAt(c, "type") == type) {
          previous_status = StrAt(c, "status");
          previous_time = StrAt(c, "lastTransitionTime");
        }
      }
    }
    KV(w, "lastTransitionTime", previous_status == (value ? "True" : "False") && !previous_time.empty() ? previous_time : now);
    if ((type == "Ready" || type == "ContainersReady") && !value && phase == "Running") {
      KV(w, "reason", "ContainersNotReady");
    }
    w.EndObject();
  }
  w.EndArray();
  KV(w, "hostIP", options_.host_ip);
  w.Key("hostIPs");
  w.StartArray();
  w.StartObject();
  KV(w, "ip", options_.host_ip);
  w.EndObject();
  w.EndArray();
  if (!ip.empty()) {
    KV(w, "podIP", ip);
    w.Key("podIPs");
    w.StartArray();
    w.StartObject();
    KV(w, "ip", ip);
    w.EndObject();
    w.EndArray();
  }
  if (!st.start_time.empty()) KV(w, "startTime", st.start_time);
  // Splice the container statuses in.
  rapidjson::Document sd;
  sd.Parse(statuses_buf.GetString());
  for (auto& m : sd.GetObject()) {
    w.Key(m.name.GetString());
    m.value.Accept(w);
  }
  std::string qos = "BestEffort";
  if (spec) {
    if (const rapidjson::Value* cs = am::FindMember(*spec, "containers"); cs && cs->IsArray()) {
      bool any = false, guaranteed = true;
      for (const auto& c : cs->GetArray()) {
        const rapidjson::Value* req = At(c, "resources.requests");
        const rapidjson::Value* lim = At(c, "resources.limits");
        if ((req && req->IsObject() && req->MemberCount()) || (lim && lim->IsObject() && lim->MemberCount())) any = true;
        if (!lim || !lim->IsObject() || !am::FindMember(*lim, "cpu") || !am::FindMember(*lim, "memory")) guaranteed = false;
      }
      qos = !any ? "BestEffort" : guaranteed ? "Guaranteed" : "Burstable";
    }
  }
  KV(w, "qosClass", qos);
  w.Key("reason");
  if (reason.empty()) w.Null(); else w.String(reason.c_str());
  w.Key("message");
  if (message.empty()) w.Null(); else w.String(message.c_str());
  w.EndObject();
  std::string patch = std::string(R"({"status":)") + body.GetString() + "}";
  auto r = client_->Do("PATCH", pods_resource_.ObjectPath(st.ns, st.name, "status"), patch, "application/merge-patch+json");
  if (!r.ok()) return r.status();
  Status s = client::ToStatus(*r);
  if (s.IsNotFound()) return Status::Ok();  // deleted meanwhile (or a static pod without a mirror yet)
  if (!s.ok()) return s;
  st.last_status = fingerprint;
  std::lock_guard<std::mutex> lock(mu_);
  counters_.status_updates++;
  return Status::Ok();
}

}  // namespace rc::nodeagent
