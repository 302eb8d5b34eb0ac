#include "rc/controller/controller_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <set>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/selector.h"
#include "rc/stdlib/runtime.h"

namespace rc::controller {

namespace am = rc::apimachinery;

namespace {

std::string GroupOf(const std::string& api_version) {
  size_t slash = api_version.find('/');
  return slash == std::string::npos ? "" : api_version.substr(0, slash);
}

// The controller ownerReference of `obj` whose kind is `kind` (in `group`), or null.
const rapidjson::Value* ControllerRef(const rapidjson::Value& obj, const std::string& kind, const std::string& group) {
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  const rapidjson::Value* refs = meta ? am::FindMember(*meta, "ownerReferences") : nullptr;
  if (!refs || !refs->IsArray()) return nullptr;
  for (auto& r : refs->GetArray()) {
    if (!r.IsObject()) continue;
    const rapidjson::Value* c = am::FindMember(r, "controller");
    if (!c || !c->IsBool() || !c->GetBool()) continue;
    if (am::GetStringOr(r, "kind") != kind) continue;
    if (GroupOf(std::string(am::GetStringOr(r, "apiVersion"))) != group) continue;
    return &r;
  }
  return nullptr;
}

bool HasControllerRefTo(const rapidjson::Value& obj, std::string_view uid) {
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  const rapidjson::Value* refs = meta ? am::FindMember(*meta, "ownerReferences") : nullptr;
  if (!refs || !refs->IsArray()) return false;
  for (auto& r : refs->GetArray()) {
    if (!r.IsObject() || am::GetStringOr(r, "uid") != uid) continue;
    const rapidjson::Value* c = am::FindMember(r, "controller");
    if (c && c->IsBool() && c->GetBool()) return true;
  }
  return false;
}

bool LabelsContain(const rapidjson::Value& obj, const rapidjson::Value& wanted) {
  if (!wanted.IsObject()) return true;
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  const rapidjson::Value* labels = meta ? am::FindMember(*meta, "labels") : nullptr;
  for (auto& m : wanted.GetObject()) {
    if (!labels || !labels->IsObject()) return false;
    const rapidjson::Value* v = am::FindMember(*labels, am::JsonStringView(m.name));
    if (!v || !v->IsString() || !m.value.IsString() || am::JsonStringView(*v) != am::JsonStringView(m.value)) return false;
  }
  return true;
}

const rapidjson::Value* LabelsOf(const rapidjson::Value& obj) {
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  return meta ? am::FindMember(*meta, "labels") : nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// One running controller: its queue, workers and current code version.

class Controller {
 public:
  Controller(ControllerManager* manager, std::shared_ptr<const CompiledController> code)
      : manager_(manager), code_(std::move(code)) {}
  ~Controller() { Stop(); }

  Status Start();
  void Stop();
  void Replace(std::shared_ptr<const CompiledController> code);
  void Retire() {
    retired_ = true;
    Stop();
  }
  void EnqueueAll();
  void LeadershipChanged(bool leading) {
    {
      std::lock_guard<std::mutex> lock(lead_mu_);
      leading_ = leading;
    }
    lead_cv_.notify_all();
    if (leading) EnqueueAll();
  }
  void MaybeResync(std::chrono::steady_clock::time_point now);
  void CheckStuck(std::chrono::steady_clock::time_point now);
  ControllerInfo Info() const;
  std::shared_ptr<const CompiledController> Current() const {
    std::lock_guard<std::mutex> lock(code_mu_);
    return code_;
  }
  ControllerManager* manager() const { return manager_; }
  void CountWrite() { writes_++; }

 private:
  Status Watch(const TypeRef& type, EventHandler handler);
  void Work();
  void ReconcileKey(const std::string& key);
  void EnqueueOwner(const ObjectPtr& obj);
  void EnqueueMapped(size_t watch_index, const std::string& kind, const ObjectPtr& obj);

  ControllerManager* manager_;
  mutable std::mutex code_mu_;
  std::shared_ptr<const CompiledController> code_;
  int64_t version_ = 1;
  WorkQueue queue_;
  std::vector<std::thread> workers_;
  std::set<std::string> watched_;  // "role|apiVersion/kind" handlers registered
  Informer* primary_ = nullptr;
  std::atomic<bool> retired_{false};
  std::atomic<bool> stopping_{false};
  std::mutex lead_mu_;
  std::condition_variable lead_cv_;
  bool leading_ = false;
  std::chrono::steady_clock::time_point next_resync_ = std::chrono::steady_clock::now();
  std::atomic<int64_t> reconciles_{0}, failures_{0}, writes_{0}, reconcile_ns_{0};
  struct InFlight {
    std::string key;
    ObjectPtr object;
    std::chrono::steady_clock::time_point started;
    bool reported = false;
  };
  mutable std::mutex inflight_mu_;
  std::map<std::thread::id, InFlight> inflight_;
  mutable std::mutex error_mu_;
  std::string last_error_;
};

// Effects of one reconcile call: reads from the informer caches, writes through the API server.
class ClusterEffectHost : public rt::EffectHost {
 public:
  ClusterEffectHost(Controller* controller, const CompiledController* code) : c_(controller), code_(code) {}

  const rc_value* Get(const std::string& api_version, const std::string& kind, const std::string& name,
                      const std::string& ns) override {
    try {
      Informer* inf = InformerFor(api_version, kind);
      if (!inf) return nullptr;
      std::string key = inf->resource().namespaced && !ns.empty() ? ns + "/" + name : name;
      ObjectPtr obj = inf->Get(key);
      if (!obj) return nullptr;
      pinned_.push_back(obj);
      return obj.get();
    } catch (const std::exception& e) {
      spdlog::error("{}: get {} {}: {}", code_->name, kind, name, e.what());
      return nullptr;
    }
  }

  std::vector<const rc_value*> List(const std::string& api_version, const std::string& kind, const std::string& ns,
                                    const rc_value* selector, const rc_value* labels, const rc_value* owner) override {
    std::vector<const rc_value*> out;
    try {
      Informer* inf = InformerFor(api_version, kind);
      if (!inf) return out;
      std::optional<am::LabelSelector> sel;
      if (selector && !selector->IsNull()) {
        auto parsed = am::LabelSelectorFromJson(*selector);
        if (!parsed.ok()) return out;  // an invalid selector selects nothing
        sel = std::move(*parsed);
      }
      std::string owner_uid = owner ? std::string(MetaString(*owner, "uid")) : "";
      std::vector<ObjectPtr> candidates;
      if (owner) {
        if (owner_uid.empty()) return out;
        candidates = inf->ByOwner(owner_uid);
      } else {
        candidates = inf->List(inf->resource().namespaced ? ns : "");
      }
      for (auto& obj : candidates) {
        if (!ns.empty() && inf->resource().namespaced && MetaString(*obj, "namespace") != ns) continue;
        if (owner && !HasControllerRefTo(*obj, owner_uid)) continue;
        if (sel && !sel->Matches(LabelsOf(*obj))) continue;
        if (labels && !LabelsContain(*obj, *labels)) continue;
        out.push_back(obj.get());
        pinned_.push_back(obj);
      }
    } catch (const std::exception& e) {
      spdlog::error("{}: list {}: {}", code_->name, kind, e.what());
      out.clear();
    }
    return out;
  }

  Status Apply(Write op, const rc_value& object, const rc_value* patch) override {
    try {
      return DoApply(op, object, patch);
    } catch (const std::exception& e) {
      return Status::Internal(e.what());
    }
  }

  void Emit(const rc_value& object, const std::string& type, const std::string& reason,
            const std::string& message) override {
    try {
      c_->manager()->events(code_->name).Record(object, type, reason, message);
    } catch (const std::exception& e) {
      spdlog::error("{}: event: {}", code_->name, e.what());
    }
  }

  const rc_value* Written() override { return written_; }
  int creates() const { return creates_; }

 private:
  Informer* InformerFor(const std::string& api_version, const std::string& kind) {
    auto inf = c_->manager()->informers().For(api_version, kind);
    if (!inf.ok()) {
      spdlog::warn("{}: {}", code_->name, inf.status().message());
      return nullptr;
    }
    if (!(*inf)->WaitForSync(10000)) {
      spdlog::warn("{}: the {} cache did not sync in 10 s", code_->name, kind);
      return nullptr;
    }
    return *inf;
  }

  Status DoApply(Write op, const rc_value& object, const rc_value* patch) {
    static const char* kVerb[] = {"", "create", "update", "update status of", "delete", "patch"};
    std::string api_version(am::GetStringOr(object, "apiVersion"));
    std::string kind(am::GetStringOr(object, "kind"));
    std::string ns(MetaString(object, "namespace"));
    std::string name(MetaString(object, "name"));
    std::string what = std::string(kVerb[static_cast<int>(op)]) + " " + kind + " " + (ns.empty() ? "" : ns + "/") +
                       (name.empty() ? std::string(MetaString(object, "generateName")) + "*" : name);
    if (api_version.empty() || kind.empty()) return Status::InvalidArgument(what + ": the object has no apiVersion/kind");
    auto info = c_->manager()->mapper().ForKind(api_version, kind);
    if (!info.ok()) return Status::InvalidArgument(what + ": " + info.status().message());
    if (info->namespaced && ns.empty()) return Status::InvalidArgument(what + ": metadata.namespace is not set");
    if (op != Write::kCreate && name.empty()) return Status::InvalidArgument(what + ": metadata.name is not set");
    auto* client = c_->manager()->client();
    Result<client::HttpReply> reply = Status::Internal("unreachable");
    switch (op) {
      case Write::kCreate:
        ++creates_;
        reply = client->Do("POST", info->CollectionPath(ns), am::ToJson(object));
        break;
      case Write::kUpdate:
        reply = client->Do("PUT", info->ObjectPath(ns, name), am::ToJson(object));
        break;
      case Write::kUpdateStatus:
        reply = client->Do("PUT", info->ObjectPath(ns, name, info->HasSubresource("status") ? "status" : ""), am::ToJson(object));
        break;
      case Write::kPatch:
        reply = client->Do("PATCH", info->ObjectPath(ns, name), patch ? am::ToJson(*patch) : "{}",
                           "application/merge-patch+json");
        break;
      case Write::kDelete: {
        std::string uid(MetaString(object, "uid"));
        std::string body = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"Background\"";
        if (!uid.empty()) body += ",\"preconditions\":{\"uid\":\"" + uid + "\"}";
        body += "}";
        reply = client->Do("DELETE", info->ObjectPath(ns, name), body);
        break;
      }
    }
    if (!reply.ok()) return Status::Unavailable(what + ": " + reply.status().message());
    Status st = client::ToStatus(*reply);
    if (op == Write::kDelete && st.IsNotFound()) return Status::Ok();  // already gone
    if (!st.ok()) return Status(st.code(), what + ": " + st.message());
    c_->CountWrite();
    // Read-your-writes: feed the reply into the cache; it is also what the write returns to rc code.
    written_ = nullptr;
    auto inf = c_->manager()->informers().For(*info);
    if (inf.ok()) {
      auto parsed = std::make_shared<rapidjson::Document>();
      rapidjson::Document& doc = *parsed;
      if (!doc.Parse(reply->body.data(), reply->body.size()).HasParseError() && doc.IsObject() &&
          am::GetStringOr(doc, "kind") == kind) {
        if (op != Write::kDelete) {
          pinned_.push_back(ObjectPtr(parsed, parsed.get()));
          written_ = parsed.get();
        }
        bool still_there = op != Write::kDelete || (MetaString(doc, "deletionTimestamp").size() > 0);
        if (still_there) {
          (*inf)->Observe(doc);
        } else {
          (*inf)->ObserveDeleted(KeyOf(doc), ResourceVersionOf(doc));
        }
      } else if (op == Write::kDelete) {
        (*inf)->ObserveDeleted(KeyOf(object), ResourceVersionOf(object));
      }
    }
    return Status::Ok();
  }

  Controller* c_;
  const CompiledController* code_;
  std::vector<ObjectPtr> pinned_;  // cache objects handed to compiled code stay alive for the call
  const rc_value* written_ = nullptr;  // the last write's reply
  int creates_ = 0;
};

Status Controller::Watch(const TypeRef& type, EventHandler handler) {
  std::string id = type.api_version + "/" + type.kind;
  auto inf = manager_->informers().For(type.api_version, type.kind);
  if (!inf.ok()) return inf.status();
  (*inf)->AddHandler(std::move(handler));
  return Status::Ok();
}

Status Controller::Start() {
  auto code = Current();
  auto inf = manager_->informers().For(code->primary.api_version, code->primary.kind);
  if (!inf.ok()) return Status(inf.status().code(), code->name + ": primary type: " + inf.status().message());
  primary_ = *inf;
  // Handlers look at the current code at event time, so a replacement that changes owns/watches
  // only needs handlers for types not seen before (see Replace).
  std::string pid = "primary|" + code->primary.api_version + "/" + code->primary.kind;
  watched_.insert(pid);
  RC_RETURN_IF_ERROR(Watch(code->primary, EventHandler{
      [this](const ObjectPtr& o) { if (!retired_) queue_.Add(KeyOf(*o)); },
      [this](const ObjectPtr&, const ObjectPtr& n) { if (!retired_) queue_.Add(KeyOf(*n)); },
      [this](const ObjectPtr& o) { if (!retired_) queue_.Add(KeyOf(*o)); }}));
  Replace(code);  // registers owns/watches handlers
  int workers = std::clamp(code->workers, 1, 64);
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Work(); });
  return Status::Ok();
}

void Controller::Replace(std::shared_ptr<const CompiledController> code) {
  bool first = false;
  {
    std::lock_guard<std::mutex> lock(code_mu_);
    first = code_ == code;
    if (!first) {
      code_ = code;
      ++version_;
    }
  }
  for (auto& t : code->owns) {
    std::string id = "owns|" + t.api_version + "/" + t.kind;
    if (!watched_.insert(id).second) continue;
    std::string kind = t.kind;
    Status s = Watch(t, EventHandler{
        [this](const ObjectPtr& o) { EnqueueOwner(o); },
        [this](const ObjectPtr& old_obj, const ObjectPtr& n) { EnqueueOwner(old_obj); EnqueueOwner(n); },
        [this](const ObjectPtr& o) { EnqueueOwner(o); }});
    if (!s.ok()) spdlog::error("{}: owns {}: {}", code->name, t.kind, s.message());
  }
  for (size_t i = 0; i < code->watches.size(); ++i) {
    auto& w = code->watches[i];
    std::string id = "watch" + std::to_string(i) + "|" + w.type.api_version + "/" + w.type.kind;
    if (!watched_.insert(id).second) continue;
    std::string kind = w.type.kind;
    Status s = Watch(w.type, EventHandler{
        [this, i, kind](const ObjectPtr& o) { EnqueueMapped(i, kind, o); },
        [this, i, kind](const ObjectPtr& old_obj, const ObjectPtr& n) { EnqueueMapped(i, kind, old_obj); EnqueueMapped(i, kind, n); },
        [this, i, kind](const ObjectPtr& o) { EnqueueMapped(i, kind, o); }});
    if (!s.ok()) spdlog::error("{}: watches {}: {}", code->name, w.type.kind, s.message());
  }
  if (!first) EnqueueAll();
}

void Controller::EnqueueOwner(const ObjectPtr& obj) {
  if (retired_ || !obj) return;
  auto code = Current();
  if (code->owns.empty()) return;
  const rapidjson::Value* ref = ControllerRef(*obj, code->primary.kind, GroupOf(code->primary.api_version));
  if (!ref) return;
  std::string ns(MetaString(*obj, "namespace"));
  std::string name(am::GetStringOr(*ref, "name"));
  bool namespaced = primary_ ? primary_->resource().namespaced : true;
  queue_.Add(namespaced && !ns.empty() ? ns + "/" + name : name);
}

void Controller::EnqueueMapped(size_t watch_index, const std::string& kind, const ObjectPtr& obj) {
  if (retired_ || !obj) return;
  auto code = Current();
  if (watch_index >= code->watches.size() || code->watches[watch_index].type.kind != kind) return;
  auto mapper = code->watches[watch_index].mapper;
  if (!mapper) {
    queue_.Add(KeyOf(*obj));
    return;
  }
  ClusterEffectHost host(this, code.get());
  rc_ctx ctx;
  ctx.host = &host;
  const rapidjson::Value* arg = obj.get();
  rapidjson::Value* result = nullptr;
  auto call = [&] { result = mapper(&ctx, arg); };
  Status st = rt::InvokeFn(&ctx, call);
  if (!st.ok()) {
    spdlog::warn("{}: watch mapping of {} {}: {}", code->name, kind, KeyOf(*obj), st.message());
    return;
  }
  if (result && result->IsArray()) {
    for (auto& k : result->GetArray()) {
      if (k.IsString() && k.GetStringLength() > 0) queue_.Add(std::string(k.GetString(), k.GetStringLength()));
    }
  }
}

void Controller::EnqueueAll() {
  if (!primary_ || retired_) return;
  for (auto& k : primary_->Keys()) queue_.Add(k);
}

void Controller::MaybeResync(std::chrono::steady_clock::time_point now) {
  if (now < next_resync_) return;
  auto code = Current();
  int64_t ns = code->resync_ns > 0 ? code->resync_ns : manager_->options_.default_resync_ns;
  next_resync_ = now + std::chrono::nanoseconds(ns);
  if (manager_->IsLeader()) EnqueueAll();
}

void Controller::Stop() {
  {
    std::lock_guard<std::mutex> lock(lead_mu_);  // no lost wake-up for a worker about to wait
    if (stopping_.exchange(true)) return;
  }
  queue_.ShutDown();
  lead_cv_.notify_all();
  for (auto& t : workers_) {
    if (t.joinable()) t.join();
  }
}

void Controller::Work() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(lead_mu_);
      lead_cv_.wait(lock, [this] { return (leading_ && manager_->IsLeader()) || stopping_.load(); });
      if (stopping_) return;
    }
    auto key = queue_.Get();
    if (!key) return;
    // Leadership may have gone while this worker waited for a key: hand it back untouched.
    if (!manager_->IsLeader()) {
      queue_.Done(*key);
      queue_.Add(*key);
      continue;
    }
    ReconcileKey(*key);
    queue_.Done(*key);
  }
}

void Controller::ReconcileKey(const std::string& key) {
  auto code = Current();
  if (!primary_->WaitForSync(30000)) {
    queue_.AddRateLimited(key);
    return;
  }
  ObjectPtr obj = primary_->Get(key);
  if (!obj) {
    queue_.Forget(key);
    return;
  }
  ClusterEffectHost host(this, code.get());
  rc_ctx ctx;
  ctx.host = &host;
  auto fn = code->reconcile;
  const rapidjson::Value* arg = obj.get();
  auto call = [&] { fn(&ctx, arg); };
  reconciles_++;
  auto started = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    inflight_[std::this_thread::get_id()] = InFlight{key, obj, started};
  }
  Status st = rt::InvokeFn(&ctx, call);
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    inflight_.erase(std::this_thread::get_id());
  }
  reconcile_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count();
  if (!st.ok()) {
    failures_++;
    int n = queue_.Failures(key);
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      last_error_ = key + ": " + st.message();
    }
    // Conflicts are the normal price of optimistic concurrency: retry quietly.
    bool conflict = st.message().find("has been modified") != std::string::npos ||
                    st.message().find("Conflict") != std::string::npos;
    if (conflict) {
      spdlog::debug("{} {}: {}", code->name, key, st.message());
    } else {
      spdlog::warn("{} {}: reconcile failed (attempt {}): {}", code->name, key, n + 1, st.message());
      // One Warning Event per distinct failure streak step (1st, 2nd, 4th, 8th, ...).
      if ((n & (n + 1)) == 0) manager_->events(code->name).Record(*obj, "Warning", "ReconcileError", st.message());
    }
    queue_.AddRateLimited(key);
    return;
  }
  queue_.Forget(key);
  if (ctx.requeue_after_ns >= 0) queue_.AddAfter(key, std::chrono::nanoseconds(ctx.requeue_after_ns));
}

void Controller::CheckStuck(std::chrono::steady_clock::time_point now) {
  auto limit = std::chrono::nanoseconds(manager_->options_.stuck_after_ns);
  std::vector<InFlight> report;
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    for (auto& [tid, f] : inflight_) {
      if (!f.reported && now - f.started > limit) {
        f.reported = true;
        report.push_back(f);
      }
    }
  }
  auto code = Current();
  for (auto& f : report) {
    double secs = std::chrono::duration<double>(now - f.started).count();
    std::string msg = "reconcile of " + f.key + " has been running for " + std::to_string(static_cast<int>(secs)) +
                      " s; its worker is blocked, the other keys continue";
    spdlog::warn("{}: {}", code->name, msg);
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      last_error_ = f.key + ": stuck (" + std::to_string(static_cast<int>(secs)) + " s)";
    }
    if (f.object) manager_->events(code->name).Record(*f.object, "Warning", "ReconcileStuck", msg);
  }
}

ControllerInfo Controller::Info() const {
  auto code = Current();
  ControllerInfo i;
  i.name = code->name;
  i.origin = code->origin;
  i.source_hash = code->source_hash;
  i.primary = code->primary.api_version + "/" + code->primary.kind;
  for (auto& o : code->owns) i.owns.push_back(o.api_version + "/" + o.kind);
  for (auto& w : code->watches) i.watches.push_back(w.type.api_version + "/" + w.type.kind);
  i.loaded_at_unix = code->loaded_at_unix;
  {
    std::lock_guard<std::mutex> lock(code_mu_);
    i.version = version_;
  }
  i.reconciles = reconciles_;
  i.failures = failures_;
  i.writes = writes_;
  i.reconcile_ns_total = reconcile_ns_;
  {
    std::lock_guard<std::mutex> lock(inflight_mu_);
    auto now = std::chrono::steady_clock::now();
    for (auto& [tid, f] : inflight_) {
      if (now - f.started > std::chrono::nanoseconds(manager_->options_.stuck_after_ns)) i.stuck++;
    }
  }
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    i.last_error = last_error_;
  }
  i.queue_length = queue_.Len();
  return i;
}

// ---------------------------------------------------------------------------------------------

ControllerManager::ControllerManager(client::RestClient* client, ControllerManagerOptions options)
    : client_(client),
      options_(std::move(options)),
      mapper_(client),
      informers_(client, &mapper_),
      recorder_(std::make_unique<EventRecorder>(client, "rc-controller-manager", options_.identity)) {}

ControllerManager::~ControllerManager() { Stop(); }

EventSink ControllerManager::events(const std::string& component) { return EventSink{recorder_.get(), component}; }

Status ControllerManager::Install(CompiledController controller) {
  if (!controller.reconcile) return Status::InvalidArgument(controller.name + ": no reconcile function");
  auto code = std::make_shared<const CompiledController>(std::move(controller));
  std::unique_lock<std::mutex> lock(mu_);
  auto it = controllers_.find(code->name);
  if (it != controllers_.end()) {
    Controller* c = it->second.get();
    auto old = c->Current();
    bool same_shape = old->primary.api_version == code->primary.api_version && old->primary.kind == code->primary.kind &&
                      old->workers == code->workers;
    if (same_shape) {
      lock.unlock();
      c->Replace(code);
      spdlog::info("controller {} replaced (hash {}, from {})", code->name, code->source_hash, code->origin);
      return Status::Ok();
    }
    // Another primary type (or worker count): a new controller replaces the old one.
    lock.unlock();
    (void)Remove(code->name);
    lock.lock();
  }
  auto c = std::make_unique<Controller>(this, code);
  Controller* raw = c.get();
  controllers_[code->name] = std::move(c);
  lock.unlock();
  Status s = raw->Start();
  if (!s.ok()) {
    lock.lock();
    if (auto again = controllers_.find(code->name); again != controllers_.end() && again->second.get() == raw) {
      retired_.push_back(std::move(again->second));
      controllers_.erase(again);
    }
    lock.unlock();
    raw->Retire();
    return s;
  }
  // Whatever the leadership is now (it may have changed during Start).
  raw->LeadershipChanged(IsLeader());
  spdlog::info("controller {} started (primary {} {}, hash {}, from {})", code->name, code->primary.api_version,
               code->primary.kind, code->source_hash, code->origin);
  return Status::Ok();
}

Status ControllerManager::Remove(const std::string& name) {
  Controller* c = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = controllers_.find(name);
    if (it == controllers_.end()) return Status::NotFound("no controller " + name);
    c = it->second.get();
    // The object stays (informer handlers refer to it) but does nothing any more.
    retired_.push_back(std::move(it->second));
    controllers_.erase(it);
  }
  c->Retire();  // joins its workers: outside mu_ (a worker may be in a long reconcile)
  return Status::Ok();
}

void ControllerManager::Start() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (started_) return;
    started_ = true;
  }
  if (!options_.leader_elect) {
    LeadershipChanged(true);
  } else {
    LeaderElectionConfig cfg = options_.leader_election;
    if (cfg.identity.empty()) cfg.identity = options_.identity;
    cfg.on_started_leading = [this] { LeadershipChanged(true); };
    cfg.on_stopped_leading = [this] { LeadershipChanged(false); };
    elector_ = std::make_unique<LeaderElector>(client_, cfg);
    elector_->Start();
  }
  // Resync ticker.
  resync_thread_ = std::thread([this] {
    while (true) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      std::vector<Controller*> cs;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (!started_) return;
        for (auto& [n, c] : controllers_) cs.push_back(c.get());
      }
      // Outside mu_: both may record Events (events() takes its own lock). Controllers are never
      // destroyed before the manager (removed ones move to retired_).
      auto now = std::chrono::steady_clock::now();
      for (auto* c : cs) {
        c->MaybeResync(now);
        c->CheckStuck(now);
      }
    }
  });
}

void ControllerManager::LeadershipChanged(bool leading) {
  leading_ = leading;
  std::vector<Controller*> cs;
  std::vector<std::function<void()>> hooks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [n, c] : controllers_) cs.push_back(c.get());
    hooks = on_leading_;
  }
  for (auto* c : cs) c->LeadershipChanged(leading);
  if (leading) for (auto& h : hooks) h();
}

void ControllerManager::OnLeading(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  on_leading_.push_back(std::move(fn));
}

bool ControllerManager::IsLeader() const { return leading_; }

void ControllerManager::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ && controllers_.empty()) return;
    started_ = false;
  }
  if (resync_thread_.joinable()) resync_thread_.join();
  // Drain the workers before giving up the lease: a successor must not reconcile while this
  // process still writes.
  std::vector<Controller*> cs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [n, c] : controllers_) cs.push_back(c.get());
  }
  for (auto* c : cs) c->Stop();
  if (elector_) elector_->Stop();
  informers_.StopAll();
  recorder_->Flush();
}

std::string ControllerManager::MetricsText() const {
  auto infos = Controllers();
  std::string out;
  auto family = [&](const char* name, const char* type, const char* help, auto value) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
    for (auto& c : infos) out += std::string(name) + "{controller=\"" + c.name + "\"} " + value(c) + "\n";
  };
  family("rc_controller_reconciles_total", "counter", "Reconcile calls.", [](const ControllerInfo& c) { return std::to_string(c.reconciles); });
  family("rc_controller_reconcile_errors_total", "counter", "Reconcile calls that failed or trapped.",
         [](const ControllerInfo& c) { return std::to_string(c.failures); });
  family("rc_controller_writes_total", "counter", "Successful writes to the API server.",
         [](const ControllerInfo& c) { return std::to_string(c.writes); });
  family("rc_controller_reconcile_seconds_total", "counter", "Time spent in reconcile calls.", [](const ControllerInfo& c) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.6f", c.reconcile_ns_total / 1e9);
    return std::string(buf);
  });
  family("rc_controller_queue_depth", "gauge", "Keys waiting in the work queue.",
         [](const ControllerInfo& c) { return std::to_string(c.queue_length); });
  family("rc_controller_stuck_reconciles", "gauge", "Reconcile calls running longer than the stuck threshold.",
         [](const ControllerInfo& c) { return std::to_string(c.stuck); });
  family("rc_controller_code_version", "gauge", "Loaded code version (1 + hot replacements).",
         [](const ControllerInfo& c) { return std::to_string(c.version); });
  out += "# HELP rc_leader_election_master_status 1 when this process holds the controller-manager lease.\n"
         "# TYPE rc_leader_election_master_status gauge\n";
  out += "rc_leader_election_master_status{name=\"rc-controller-manager\"} " + std::string(IsLeader() ? "1" : "0") + "\n";
  return out;
}

std::vector<ControllerInfo> ControllerManager::Controllers() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ControllerInfo> out;
  for (auto& [n, c] : controllers_) out.push_back(c->Info());
  return out;
}

}  // namespace rc::controller
