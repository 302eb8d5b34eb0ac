#include "rc/scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <shared_mutex>

#include "rc/apimachinery/json.h"

namespace rc::scheduler {

namespace am = rc::apimachinery;
using controller::ObjectPtr;
using Clock = std::chrono::steady_clock;

namespace {

std::string JsonQuote(std::string_view s) {
  rapidjson::Value v(rapidjson::StringRef(s.data(), static_cast<rapidjson::SizeType>(s.size())));
  return am::ToJson(v);
}

std::string NowRfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const rapidjson::Value* Member(const rapidjson::Value* v, std::string_view name) {
  if (!v || !v->IsObject()) return nullptr;
  return am::FindMember(*v, name);
}

// True when the parts of a pending pod a decision reads (spec, labels) differ.
bool SchedulingInputsChanged(const rapidjson::Value& a, const rapidjson::Value& b) {
  const rapidjson::Value* sa = Member(&a, "spec");
  const rapidjson::Value* sb = Member(&b, "spec");
  if ((sa == nullptr) != (sb == nullptr) || (sa && !am::JsonEqual(*sa, *sb))) return true;
  const rapidjson::Value* la = Member(Member(&a, "metadata"), "labels");
  const rapidjson::Value* lb = Member(Member(&b, "metadata"), "labels");
  if ((la == nullptr) != (lb == nullptr)) return true;
  return la && !am::JsonEqual(*la, *lb);
}

// The pod's PodScheduled condition already says `message` (no status write needed).
bool HasUnschedulableCondition(const rapidjson::Value& pod, const std::string& message) {
  const rapidjson::Value* conds = Member(Member(&pod, "status"), "conditions");
  if (!conds || !conds->IsArray()) return false;
  for (auto& c : conds->GetArray()) {
    if (am::GetStringOr(c, "type") != "PodScheduled") continue;
    return am::GetStringOr(c, "status") == "False" && am::GetStringOr(c, "reason") == "Unschedulable" &&
           am::GetStringOr(c, "message") == message;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Binders

Status RestBinder::Bind(const PodInfo& pod, const std::string& node) {
  std::string body = R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":)" + JsonQuote(pod.name) +
                     R"(,"namespace":)" + JsonQuote(pod.ns);
  if (!pod.uid.empty()) body += R"(,"uid":)" + JsonQuote(pod.uid);
  body += R"(},"target":{"apiVersion":"v1","kind":"Node","name":)" + JsonQuote(node) + "}}";
  auto r = client_->Do("POST", "/api/v1/namespaces/" + pod.ns + "/pods/" + pod.name + "/binding", body);
  if (!r.ok()) return r.status();
  return client::ToStatus(*r);
}

Status FakeBinder::Bind(const PodInfo& pod, const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_.push_back({pod.key, node});
  return result_;
}

std::vector<FakeBinder::Call> FakeBinder::calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_;
}

void FakeBinder::set_result(Status s) {
  std::lock_guard<std::mutex> lock(mu_);
  result_ = std::move(s);
}

// ---------------------------------------------------------------------------------------------
// Cluster view over the informers (claims, volumes, namespaces), parsed on demand: only pods
// with claims or namespaceSelector terms ask.

class Scheduler::ClusterView : public ClusterLister {
 public:
  explicit ClusterView(Scheduler* s) : s_(s) {}
  std::optional<ClaimInfo> Claim(const std::string& ns, const std::string& name) const override {
    ObjectPtr o = s_->claims_->Get(ns + "/" + name);
    if (!o) return std::nullopt;
    auto c = ParseClaim(*o);
    if (!c.ok()) return std::nullopt;
    return std::move(*c);
  }
  std::optional<VolumeInfo> Volume(const std::string& name) const override {
    ObjectPtr o = s_->volumes_->Get(name);
    if (!o) return std::nullopt;
    auto v = ParseVolume(*o);
    if (!v.ok()) return std::nullopt;
    return std::move(*v);
  }
  std::optional<Labels> NamespaceLabels(const std::string& ns) const override {
    if (!s_->namespaces_) return std::nullopt;
    ObjectPtr o = s_->namespaces_->Get(ns);
    if (!o) return std::nullopt;
    Labels out;
    if (const rapidjson::Value* l = Member(Member(o.get(), "metadata"), "labels"); l && l->IsObject()) {
      for (auto& m : l->GetObject()) {
        if (m.value.IsString()) out.emplace(am::JsonStringView(m.name), am::JsonStringView(m.value));
      }
    }
    return out;
  }

 private:
  Scheduler* s_;
};

// Informer handlers outlive the scheduler (informers cannot drop handlers): they go through a
// guard that the destructor closes.
struct HandlerGuard {
  std::shared_mutex mu;
  Scheduler* target = nullptr;
};

// ---------------------------------------------------------------------------------------------

Scheduler::Scheduler(controller::InformerFactory* informers, client::RestClient* client,
                     controller::ControllerManager* manager, SchedulerOptions options)
    : informers_(informers),
      client_(client),
      manager_(manager),
      options_(std::move(options)),
      binder_(std::move(options_.binder)),
      events_(manager->events(options_.scheduler_name)),
      view_(std::make_unique<ClusterView>(this)),
      algorithm_(options_.algorithm) {
  if (!binder_) binder_ = std::make_unique<RestBinder>(client_);
}

Result<std::unique_ptr<Scheduler>> Scheduler::Start(controller::InformerFactory* informers, client::RestClient* client,
                                                    controller::ControllerManager* manager, SchedulerOptions options) {
  if (!informers || !client || !manager) return Status::InvalidArgument("scheduler: informers, client and manager are required");
  std::unique_ptr<Scheduler> s(new Scheduler(informers, client, manager, std::move(options)));
  RC_RETURN_IF_ERROR(s->Init());
  return s;
}

Status Scheduler::Init() {
  auto get = [&](const char* kind, controller::Informer** out) -> Status {
    auto inf = informers_->For("v1", kind);
    if (!inf.ok()) return Status(inf.status().code(), std::string("scheduler: ") + kind + " informer: " + inf.status().message());
    *out = *inf;
    return Status::Ok();
  };
  RC_RETURN_IF_ERROR(get("Pod", &pods_));
  RC_RETURN_IF_ERROR(get("Node", &nodes_));
  RC_RETURN_IF_ERROR(get("PersistentVolumeClaim", &claims_));
  RC_RETURN_IF_ERROR(get("PersistentVolume", &volumes_));
  if (!get("Namespace", &namespaces_).ok()) namespaces_ = nullptr;

  auto guard = std::make_shared<HandlerGuard>();
  guard->target = this;
  guard_ = guard;
  auto with = [guard](auto&& fn) {
    std::shared_lock<std::shared_mutex> lock(guard->mu);
    if (guard->target) fn(guard->target);
  };
  nodes_->AddHandler(controller::EventHandler{
      [with](const ObjectPtr& o) { with([&](Scheduler* s) { s->OnNode(nullptr, o, false); }); },
      [with](const ObjectPtr& a, const ObjectPtr& b) { with([&](Scheduler* s) { s->OnNode(a, b, false); }); },
      [with](const ObjectPtr& o) { with([&](Scheduler* s) { s->OnNode(nullptr, o, true); }); }});
  pods_->AddHandler(controller::EventHandler{
      [with](const ObjectPtr& o) { with([&](Scheduler* s) { s->OnPod(nullptr, o, false); }); },
      [with](const ObjectPtr& a, const ObjectPtr& b) { with([&](Scheduler* s) { s->OnPod(a, b, false); }); },
      [with](const ObjectPtr& o) { with([&](Scheduler* s) { s->OnPod(nullptr, o, true); }); }});
  auto volume_handler = controller::EventHandler{
      [with](const ObjectPtr&) { with([](Scheduler* s) { s->OnVolumeChange(); }); },
      [with](const ObjectPtr&, const ObjectPtr&) { with([](Scheduler* s) { s->OnVolumeChange(); }); },
      [](const ObjectPtr&) {}};
  claims_->AddHandler(volume_handler);
  volumes_->AddHandler(volume_handler);

  loop_ = std::thread([this] { Loop(); });
  flush_ = std::thread([this] { FlushLoop(); });
  for (int i = 0; i < std::max(1, options_.bind_workers); ++i) binders_.emplace_back([this] { BindLoop(); });
  return Status::Ok();
}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Stop() {
  if (auto g = std::static_pointer_cast<HandlerGuard>(guard_)) {
    std::unique_lock<std::shared_mutex> lock(g->mu);
    g->target = nullptr;
  }
  if (stop_.exchange(true)) return;
  queue_.ShutDown();
  bind_cv_.notify_all();
  flush_cv_.notify_all();
  if (loop_.joinable()) loop_.join();
  if (flush_.joinable()) flush_.join();
  for (auto& t : binders_) {
    if (t.joinable()) t.join();
  }
}

bool Scheduler::Ours(const PodInfo& pod) const {
  const std::string& name = pod.scheduler_name.empty() ? std::string("default-scheduler") : pod.scheduler_name;
  return name == options_.scheduler_name;
}

// ---------------------------------------------------------------------------------------------
// Events from the informers

void Scheduler::OnNode(const ObjectPtr& /*old_obj*/, const ObjectPtr& obj, bool deleted) {
  if (deleted) {
    std::string name(controller::MetaString(*obj, "name"));
    std::lock_guard<std::mutex> lock(cache_.mutex());
    cache_.RemoveNode(name);
    return;
  }
  auto parsed = ParseNode(*obj);
  if (!parsed.ok()) return;
  auto node = std::make_shared<const NodeSpec>(std::move(*parsed));
  bool changed;
  {
    std::lock_guard<std::mutex> lock(cache_.mutex());
    const NodeInfo* prev = cache_.Node(node->name);
    changed = !prev || !prev->node || !prev->node->SchedulingEquals(*node);
    if (changed) cache_.AddNode(node);
  }
  if (changed) MoveUnschedulable();
}

void Scheduler::OnVolumeChange() {
  MoveUnschedulable([](const Pending& p) { return !p.pod->pvc_names.empty(); });
}

void Scheduler::OnPod(const ObjectPtr& old_obj, const ObjectPtr& obj, bool deleted) {
  std::string key = controller::KeyOf(*obj);
  if (deleted) {
    bool was_assigned;
    {
      std::lock_guard<std::mutex> lock(cache_.mutex());
      const rapidjson::Value* spec = Member(obj.get(), "spec");
      was_assigned = (spec && !am::GetStringOr(*spec, "nodeName").empty()) || cache_.IsAssumed(key);
      cache_.RemovePod(key);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ErasePendingLocked(key);
    }
    if (was_assigned) MoveUnschedulable();
    return;
  }
  auto parsed = ParsePod(*obj);
  if (!parsed.ok()) return;
  auto pod = std::make_shared<const PodInfo>(std::move(*parsed));
  key = pod->key;

  if (!pod->node_name.empty()) {
    {
      std::lock_guard<std::mutex> lock(cache_.mutex());
      cache_.AddPod(pod);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ErasePendingLocked(key);
    }
    if (pod->terminal) {
      MoveUnschedulable();  // its resources are free again
    } else if (!old_obj) {
      // A new pod may satisfy someone's required affinity.
      MoveUnschedulable([](const Pending& p) { return !p.pod->required_affinity.empty(); });
    }
    return;
  }

  if (!Ours(*pod) || pod->deleting || pod->terminal) {
    std::lock_guard<std::mutex> lock(mu_);
    ErasePendingLocked(key);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, inserted] = pending_.try_emplace(key);
  Pending& p = it->second;
  bool relevant = inserted || !old_obj || SchedulingInputsChanged(*old_obj, *obj);
  p.pod = pod;
  p.object = obj;
  if (inserted) {
    queue_.Add(key);
  } else if (relevant && p.unschedulable) {
    UnparkLocked(key, p);
  }
}

std::chrono::nanoseconds Scheduler::BackoffLocked(const Pending& p) const {
  if (p.attempts <= 0) return std::chrono::nanoseconds::zero();
  auto backoff = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.initial_backoff);
  auto max = std::chrono::duration_cast<std::chrono::nanoseconds>(options_.max_backoff);
  for (int i = 1; i < p.attempts && backoff < max; ++i) backoff *= 2;
  backoff = std::min(backoff, max);
  auto remaining = p.last_attempt + backoff - Clock::now();
  return std::max(std::chrono::nanoseconds::zero(), std::chrono::duration_cast<std::chrono::nanoseconds>(remaining));
}

void Scheduler::UnparkLocked(const std::string& key, Pending& p) {
  p.unschedulable = false;
  parked_.erase(key);
  queue_.AddAfter(key, BackoffLocked(p));
}

void Scheduler::ErasePendingLocked(const std::string& key) {
  pending_.erase(key);
  parked_.erase(key);
}

void Scheduler::MoveUnschedulable(const std::function<bool(const Pending&)>& pred) {
  std::lock_guard<std::mutex> lock(mu_);
  ++move_epoch_;
  for (auto it = parked_.begin(); it != parked_.end();) {
    const std::string key = *it++;
    auto p = pending_.find(key);
    if (p == pending_.end()) {
      parked_.erase(key);
      continue;
    }
    if (pred && !pred(p->second)) continue;
    UnparkLocked(key, p->second);
  }
}

void Scheduler::FlushLoop() {
  while (!stop_) {
    {
      std::unique_lock<std::mutex> lock(flush_mu_);
      auto period = std::min<std::chrono::milliseconds>(options_.unschedulable_flush, std::chrono::milliseconds(1000));
      flush_cv_.wait_for(lock, period, [this] { return stop_.load(); });
    }
    if (stop_) return;
    auto now = Clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = parked_.begin(); it != parked_.end();) {
      const std::string key = *it++;
      auto p = pending_.find(key);
      if (p != pending_.end() && now - p->second.parked_at >= options_.unschedulable_flush) UnparkLocked(key, p->second);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Scheduling

void Scheduler::Loop() {
  while (!stop_) {
    if (!manager_->IsLeader() || !pods_->synced() || !nodes_->synced() || !claims_->synced() || !volumes_->synced()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    auto key = queue_.Get();
    if (!key) return;
    if (!manager_->IsLeader()) {  // leadership went while waiting: hand the key back
      queue_.Done(*key);
      queue_.Add(*key);
      continue;
    }
    try {
      ScheduleOne(*key);
    } catch (const std::exception& e) {
      spdlog::error("scheduler: {}: {}", *key, e.what());
    }
    queue_.Done(*key);
  }
}

void Scheduler::ScheduleOne(const std::string& key) {
  PodInfoPtr pod;
  ObjectPtr object;
  int64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(key);
    if (it == pending_.end() || it->second.unschedulable) return;
    pod = it->second.pod;
    object = it->second.object;
    ++it->second.attempts;
    it->second.last_attempt = Clock::now();
    epoch = move_epoch_;
  }
  ScheduleResult result;
  {
    std::lock_guard<std::mutex> lock(cache_.mutex());
    if (cache_.IsAssumed(key)) return;
    auto t0 = Clock::now();
    result = algorithm_.Schedule(*pod, cache_.Nodes(), *view_);
    if (result.ok()) cache_.AssumePod(pod, result.node);
    decision_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count();
  }
  ++attempts_;
  if (result.ok()) {
    {
      std::lock_guard<std::mutex> lock(bind_mu_);
      bind_tasks_.push_back(BindTask{pod, object, result.node});
    }
    bind_cv_.notify_one();
    return;
  }
  ++unschedulable_;
  std::string message = result.Message();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = pending_.find(key);
    if (it != pending_.end()) {
      if (move_epoch_ != epoch) {
        // Something changed during the attempt: retry after the back-off instead of parking.
        queue_.AddAfter(key, BackoffLocked(it->second));
      } else {
        it->second.unschedulable = true;
        it->second.parked_at = Clock::now();
        parked_.insert(key);
      }
    }
  }
  spdlog::debug("scheduler: {}: {}", key, message);
  ReportUnschedulable(*pod, object, message);
}

void Scheduler::ReportUnschedulable(const PodInfo& pod, const ObjectPtr& object, const std::string& message) {
  events_.Record(*object, "Warning", "FailedScheduling", message);
  if (!options_.update_pod_condition || HasUnschedulableCondition(*object, message)) return;
  std::string patch = R"({"status":{"conditions":[{"type":"PodScheduled","status":"False","reason":"Unschedulable","message":)" +
                      JsonQuote(message) + R"(,"lastProbeTime":null,"lastTransitionTime":")" + NowRfc3339() + R"("}]}})";
  std::string path = "/api/v1/namespaces/" + pod.ns + "/pods/" + pod.name + "/status";
  {
    std::lock_guard<std::mutex> lock(bind_mu_);
    bind_tasks_.push_back(BindTask{nullptr, nullptr, "", [this, path, patch] {
                                     auto r = client_->Do("PATCH", path, patch, "application/strategic-merge-patch+json");
                                     if (!r.ok() || r->status >= 300) {
                                       spdlog::debug("scheduler: condition update {}: {}", path,
                                                     r.ok() ? std::to_string(r->status) : r.status().ToString());
                                     }
                                   }});
  }
  bind_cv_.notify_one();
}

void Scheduler::BindLoop() {
  while (true) {
    BindTask task;
    {
      std::unique_lock<std::mutex> lock(bind_mu_);
      bind_cv_.wait(lock, [this] { return stop_.load() || !bind_tasks_.empty(); });
      if (stop_ || bind_tasks_.empty()) return;  // pending writes are dropped on Stop
      task = std::move(bind_tasks_.front());
      bind_tasks_.pop_front();
    }
    if (task.fn) {
      task.fn();
      continue;
    }
    Bind(std::move(task.pod), std::move(task.object), std::move(task.node));
  }
}

void Scheduler::Bind(PodInfoPtr pod, ObjectPtr object, std::string node) {
  Status s = binder_->Bind(*pod, node);
  if (s.ok()) {
    ++scheduled_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ErasePendingLocked(pod->key);
    }
    events_.Record(*object, "Normal", "Scheduled", "Successfully assigned " + pod->key + " to " + node);
    return;
  }
  ++bind_errors_;
  spdlog::info("scheduler: binding {} to {}: {}", pod->key, node, s.ToString());
  {
    std::lock_guard<std::mutex> lock(cache_.mutex());
    cache_.ForgetPod(pod->key);
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find(pod->key);
  if (it == pending_.end()) return;
  if (s.IsNotFound()) {
    ErasePendingLocked(pod->key);
    return;
  }
  queue_.AddAfter(pod->key, BackoffLocked(it->second));
}

// ---------------------------------------------------------------------------------------------

SchedulerStats Scheduler::Stats() const {
  SchedulerStats st;
  st.scheduled = scheduled_;
  st.unschedulable = unschedulable_;
  st.bind_errors = bind_errors_;
  st.attempts = attempts_;
  st.decision_ns_total = decision_ns_;
  {
    std::lock_guard<std::mutex> lock(mu_);
    st.pending = pending_.size();
    st.unschedulable_now = parked_.size();
  }
  std::lock_guard<std::mutex> lock(cache_.mutex());
  st.nodes = cache_.node_count();
  return st;
}

std::string Scheduler::MetricsText() const {
  SchedulerStats st = Stats();
  std::string out;
  out += "# HELP rc_scheduler_schedule_attempts_total Scheduling attempts by result.\n";
  out += "# TYPE rc_scheduler_schedule_attempts_total counter\n";
  out += "rc_scheduler_schedule_attempts_total{result=\"scheduled\"} " + std::to_string(st.scheduled) + "\n";
  out += "rc_scheduler_schedule_attempts_total{result=\"unschedulable\"} " + std::to_string(st.unschedulable) + "\n";
  out += "rc_scheduler_schedule_attempts_total{result=\"error\"} " + std::to_string(st.bind_errors) + "\n";
  out += "# HELP rc_scheduler_pending_pods Pods waiting to be scheduled.\n";
  out += "# TYPE rc_scheduler_pending_pods gauge\n";
  out += "rc_scheduler_pending_pods{queue=\"active\"} " + std::to_string(st.pending - st.unschedulable_now) + "\n";
  out += "rc_scheduler_pending_pods{queue=\"unschedulable\"} " + std::to_string(st.unschedulable_now) + "\n";
  out += "# HELP rc_scheduler_decision_seconds_total Time spent filtering and scoring.\n";
  out += "# TYPE rc_scheduler_decision_seconds_total counter\n";
  out += "rc_scheduler_decision_seconds_total " + std::to_string(static_cast<double>(st.decision_ns_total) / 1e9) + "\n";
  return out;
}

}  // namespace rc::scheduler
