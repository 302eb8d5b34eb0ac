#include "rc/controller/builtin_controllers.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

#include "rc/apimachinery/json.h"
#include "rc/base/time.h"

namespace rc::controller {

namespace am = rc::apimachinery;

namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  std::istringstream in(s);
  while (std::getline(in, cur, sep)) out.push_back(cur);
  return out;
}

bool HasFinalizer(const rapidjson::Value& obj, std::string_view f) {
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  const rapidjson::Value* list = meta ? am::FindMember(*meta, "finalizers") : nullptr;
  if (!list || !list->IsArray()) return false;
  for (auto& v : list->GetArray()) if (v.IsString() && am::JsonStringView(v) == f) return true;
  return false;
}

const rapidjson::Value* OwnerRefs(const rapidjson::Value& obj) {
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  const rapidjson::Value* refs = meta ? am::FindMember(*meta, "ownerReferences") : nullptr;
  return refs && refs->IsArray() && !refs->Empty() ? refs : nullptr;
}

bool Deleting(const rapidjson::Value& obj) { return !MetaString(obj, "deletionTimestamp").empty(); }

std::string DeleteBody(const std::string& policy, std::string_view uid) {
  std::string b = "{\"kind\":\"DeleteOptions\",\"apiVersion\":\"v1\",\"propagationPolicy\":\"" + policy + "\"";
  if (!uid.empty()) b += ",\"preconditions\":{\"uid\":\"" + std::string(uid) + "\"}";
  return b + "}";
}

// A queue with workers that run only while the manager leads.
class LeaderQueue {
 public:
  LeaderQueue(ControllerManager* m, int workers, std::function<Status(const std::string&)> fn) : m_(m), fn_(std::move(fn)) {
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { Loop(); });
  }
  ~LeaderQueue() { Stop(); }
  void Stop() {
    stop_ = true;
    queue_.ShutDown();
    for (auto& t : threads_) if (t.joinable()) t.join();
  }
  WorkQueue& queue() { return queue_; }

 private:
  void Loop() {
    while (!stop_) {
      if (!m_->IsLeader()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      auto item = queue_.Get();
      if (!item) return;
      if (!m_->IsLeader()) {  // leadership went while waiting: hand the item back untouched
        queue_.Done(*item);
        queue_.Add(*item);
        continue;
      }
      Status s;
      try {
        s = fn_(*item);
      } catch (const std::exception& e) {
        s = Status::Internal(e.what());
      }
      if (s.ok()) {
        queue_.Forget(*item);
      } else {
        if (!s.IsConflict()) spdlog::debug("{}: {}", *item, s.ToString());
        queue_.AddRateLimited(*item);
      }
      queue_.Done(*item);
    }
  }
  ControllerManager* m_;
  std::function<Status(const std::string&)> fn_;
  WorkQueue queue_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

// ------------------------------------------------------------------------------------------
class GarbageCollector : public BuiltinController {
 public:
  explicit GarbageCollector(ControllerManager* m)
      : m_(m), work_(m, 2, [this](const std::string& item) { return Process(item); }) {
    discover_ = std::thread([this] { DiscoverLoop(); });
    // Cheap on the elector's thread: the discovery thread does the walk.
    m_->OnLeading([this] { resync_requested_ = true; });
  }
  ~GarbageCollector() override { Stop(); }
  void Stop() override {
    stop_ = true;
    if (discover_.joinable()) discover_.join();
    work_.Stop();
  }

 private:
  // Item: "D|apiVersion|kind|key" (check a dependent) or "O|apiVersion|kind|key" (an owner being
  // deleted with a propagation finalizer).
  static std::string Item(char role, const Informer* inf, const std::string& key) {
    return std::string(1, role) + "|" + inf->resource().api_version() + "|" + inf->resource().kind + "|" + key;
  }

  void Watch(Informer* inf) {
    inf->AddHandler(EventHandler{
        [this, inf](const ObjectPtr& o) { Observe(inf, o); },
        [this, inf](const ObjectPtr&, const ObjectPtr& n) { Observe(inf, n); },
        [this, inf](const ObjectPtr& o) { Deleted(o); }});
  }

  void Observe(Informer* inf, const ObjectPtr& o) {
    if (stop_) return;
    std::string key = KeyOf(*o);
    if (OwnerRefs(*o)) work_.queue().Add(Item('D', inf, key));
    if (Deleting(*o) && (HasFinalizer(*o, "orphan") || HasFinalizer(*o, "foregroundDeletion"))) {
      work_.queue().Add(Item('O', inf, key));
    }
    if (Deleting(*o) || !OwnerRefs(*o)) return;
    // A dependent changing while its owner waits for it (foreground): re-check the owner.
    EnqueueOwnersOf(*o);
  }

  void Deleted(const ObjectPtr& o) {
    if (stop_) return;
    std::string uid(MetaString(*o, "uid"));
    for (Informer* inf : Watched()) {
      for (auto& d : inf->ByOwner(uid)) work_.queue().Add(Item('D', inf, KeyOf(*d)));
    }
    EnqueueOwnersOf(*o);
  }

  void EnqueueOwnersOf(const rapidjson::Value& o) {
    const rapidjson::Value* refs = OwnerRefs(o);
    if (!refs) return;
    for (auto& r : refs->GetArray()) {
      auto inf = m_->informers().For(std::string(am::GetStringOr(r, "apiVersion")), std::string(am::GetStringOr(r, "kind")));
      if (!inf.ok()) continue;
      std::string ns(MetaString(o, "namespace"));
      std::string name(am::GetStringOr(r, "name"));
      std::string key = (*inf)->resource().namespaced && !ns.empty() ? ns + "/" + name : name;
      if (auto owner = (*inf)->Get(key); owner && Deleting(*owner)) work_.queue().Add(Item('O', *inf, key));
    }
  }

  std::vector<Informer*> Watched() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::vector<Informer*>(watched_.begin(), watched_.end());
  }

  void ResyncAll() {
    for (Informer* inf : Watched()) {
      for (auto& o : inf->List("")) Observe(inf, o);
    }
  }

  // Starts an informer for every listable, deletable type (new operator types too).
  void DiscoverLoop() {
    while (!stop_) {
      auto all = m_->mapper().All();
      if (all.ok()) {
        for (auto& r : *all) {
          if (r.kind == "Event" || !r.HasVerb("list") || !r.HasVerb("watch") || !r.HasVerb("delete")) continue;
          auto inf = m_->informers().For(r);
          if (!inf.ok()) continue;
          bool added;
          {
            std::lock_guard<std::mutex> lock(mu_);
            added = watched_.insert(*inf).second;
          }
          if (added) Watch(*inf);
        }
        discovered_ = true;
      }
      if (resync_requested_.exchange(false)) ResyncAll();
      for (int i = 0; i < 50 && !stop_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  Result<Informer*> InformerOf(const std::string& api_version, const std::string& kind) {
    auto inf = m_->informers().For(api_version, kind);
    if (!inf.ok()) return inf.status();
    if (!(*inf)->WaitForSync(10000)) return Status::Unavailable(kind + " cache not synced");
    return *inf;
  }

  // True once every type found by discovery has a synced cache: only then can "no dependents
  // left" be believed (Kubernetes' GC waits for all its monitors the same way).
  bool AllSynced() {
    if (!discovered_) return false;
    for (Informer* inf : Watched()) {
      if (!inf->synced()) return false;
    }
    return true;
  }

  // Owner state: 0 absent, 1 present, 2 present and being deleted in the foreground.
  Result<int> OwnerState(const rapidjson::Value& dependent, const rapidjson::Value& ref) {
    std::string api_version(am::GetStringOr(ref, "apiVersion"));
    std::string kind(am::GetStringOr(ref, "kind"));
    std::string name(am::GetStringOr(ref, "name"));
    std::string uid(am::GetStringOr(ref, "uid"));
    auto info = m_->mapper().ForKind(api_version, kind);
    if (!info.ok()) {
      // An owner kind we cannot resolve (discovery failed, a type not served yet or any more)
      // proves nothing about the owner: retry later, as Kubernetes' GC does.
      return Status::Unavailable("cannot resolve owner kind " + kind + " in " + api_version + ": " + info.status().message());
    }
    std::string ns = info->namespaced ? std::string(MetaString(dependent, "namespace")) : "";
    auto inf = InformerOf(api_version, kind);
    if (!inf.ok()) return inf.status();
    ObjectPtr owner = (*inf)->Get(ns.empty() ? name : ns + "/" + name);
    if (owner && MetaString(*owner, "uid") == uid) {
      return Deleting(*owner) && HasFinalizer(*owner, "foregroundDeletion") ? 2 : 1;
    }
    // The cache may lag: confirm with the API server before acting on an absence.
    auto live = m_->client()->Do("GET", info->ObjectPath(ns, name));
    if (!live.ok()) return live.status();
    if (live->status == 404) return 0;
    if (Status s = client::ToStatus(*live); !s.ok()) return s;
    rapidjson::Document doc;
    doc.Parse(live->body.data(), live->body.size());
    if (doc.HasParseError() || !doc.IsObject()) return Status::Internal("owner GET: not JSON");
    if (MetaString(doc, "uid") != uid) return 0;
    return Deleting(doc) && HasFinalizer(doc, "foregroundDeletion") ? 2 : 1;
  }

  Status Process(const std::string& item) {
    auto parts = Split(item, '|');
    if (parts.size() != 4) return Status::Ok();
    auto inf = InformerOf(parts[1], parts[2]);
    if (!inf.ok()) return inf.status();
    ObjectPtr obj = (*inf)->Get(parts[3]);
    if (!obj) return Status::Ok();
    return parts[0] == "D" ? CheckDependent(*inf, *obj) : ProcessOwner(*inf, *obj);
  }

  Status CheckDependent(Informer* inf, const rapidjson::Value& obj) {
    const rapidjson::Value* refs = OwnerRefs(obj);
    if (!refs || Deleting(obj)) return Status::Ok();
    int absent = 0, foreground = 0, total = 0;
    rapidjson::Document keep(rapidjson::kArrayType);
    for (auto& r : refs->GetArray()) {
      ++total;
      auto state = OwnerState(obj, r);
      if (!state.ok()) return state.status();
      if (*state == 0) {
        ++absent;
      } else {
        if (*state == 2) ++foreground;
        rapidjson::Value copy;
        copy.CopyFrom(r, keep.GetAllocator());
        keep.PushBack(copy, keep.GetAllocator());
      }
    }
    const auto& res = inf->resource();
    std::string ns(MetaString(obj, "namespace"));
    std::string name(MetaString(obj, "name"));
    std::string uid(MetaString(obj, "uid"));
    if (absent == total || (foreground > 0 && absent + foreground == total)) {
      std::string policy = foreground > 0 ? "Foreground" : "Background";
      spdlog::info("garbage collector: deleting {} {} ({} propagation): its owners are {}", res.kind, KeyOf(obj), policy,
                   foreground > 0 ? "being deleted" : "gone");
      auto r = m_->client()->Do("DELETE", res.ObjectPath(ns, name), DeleteBody(policy, uid));
      if (!r.ok()) return r.status();
      Status s = client::ToStatus(*r);
      return s.IsNotFound() ? Status::Ok() : s;
    }
    if (absent > 0) {
      // With the resourceVersion read: a reference added meanwhile makes this a 409 and a retry.
      std::string patch = "{\"metadata\":{\"ownerReferences\":" + am::ToJson(keep) + ",\"resourceVersion\":\"" +
                          std::string(MetaString(obj, "resourceVersion")) + "\"}}";
      auto r = m_->client()->Do("PATCH", res.ObjectPath(ns, name), patch, "application/merge-patch+json");
      if (!r.ok()) return r.status();
      Status s = client::ToStatus(*r);
      return s.IsNotFound() ? Status::Ok() : s;
    }
    return Status::Ok();
  }

  std::vector<std::pair<Informer*, ObjectPtr>> DependentsOf(const std::string& uid) {
    std::vector<std::pair<Informer*, ObjectPtr>> out;
    for (Informer* inf : Watched()) {
      for (auto& d : inf->ByOwner(uid)) out.push_back({inf, d});
    }
    return out;
  }

  Status RemoveFinalizer(Informer* inf, const rapidjson::Value& obj, std::string_view finalizer) {
    rapidjson::Document doc;
    doc.CopyFrom(obj, doc.GetAllocator());
    rapidjson::Value* meta = am::FindMember(doc, "metadata");
    rapidjson::Value* list = meta ? am::FindMember(*meta, "finalizers") : nullptr;
    if (!list || !list->IsArray()) return Status::Ok();
    rapidjson::Value kept(rapidjson::kArrayType);
    for (auto& v : list->GetArray()) {
      if (!(v.IsString() && am::JsonStringView(v) == finalizer)) kept.PushBack(rapidjson::Value(v, doc.GetAllocator()), doc.GetAllocator());
    }
    *list = kept;
    const auto& res = inf->resource();
    auto r = m_->client()->Do("PUT", res.ObjectPath(std::string(MetaString(obj, "namespace")), std::string(MetaString(obj, "name"))),
                              am::ToJson(doc));
    if (!r.ok()) return r.status();
    Status s = client::ToStatus(*r);
    if (s.IsNotFound()) return Status::Ok();
    if (s.ok()) spdlog::info("garbage collector: removed finalizer {} from {} {}", finalizer, res.kind, KeyOf(obj));
    return s;
  }

  Status ProcessOwner(Informer* inf, const rapidjson::Value& obj) {
    if (!Deleting(obj)) return Status::Ok();
    if (!AllSynced()) return Status::Unavailable("garbage collector caches not synced yet");
    std::string uid(MetaString(obj, "uid"));
    auto dependents = DependentsOf(uid);
    if (HasFinalizer(obj, "orphan")) {
      for (auto& [dinf, d] : dependents) {
        const rapidjson::Value* refs = OwnerRefs(*d);
        if (!refs) continue;
        rapidjson::Document keep(rapidjson::kArrayType);
        for (auto& r : refs->GetArray()) {
          if (am::GetStringOr(r, "uid") == uid) continue;
          keep.PushBack(rapidjson::Value(r, keep.GetAllocator()), keep.GetAllocator());
        }
        std::string patch = "{\"metadata\":{\"ownerReferences\":" + (keep.Empty() ? std::string("null") : am::ToJson(keep)) +
                            ",\"resourceVersion\":\"" + std::string(MetaString(*d, "resourceVersion")) + "\"}}";
        const auto& res = dinf->resource();
        auto r = m_->client()->Do("PATCH", res.ObjectPath(std::string(MetaString(*d, "namespace")), std::string(MetaString(*d, "name"))),
                                  patch, "application/merge-patch+json");
        if (!r.ok()) return r.status();
        if (Status s = client::ToStatus(*r); !s.ok() && !s.IsNotFound()) return s;
        if (r->status < 300) {
          rapidjson::Document reply;
          reply.Parse(r->body.data(), r->body.size());
          if (!reply.HasParseError() && reply.IsObject() && !MetaString(reply, "name").empty()) dinf->Observe(reply);
        }
      }
      return RemoveFinalizer(inf, obj, "orphan");
    }
    if (HasFinalizer(obj, "foregroundDeletion")) {
      int blocking = 0;
      for (auto& [dinf, d] : dependents) {
        bool blocks = false;
        if (const rapidjson::Value* refs = OwnerRefs(*d)) {
          for (auto& r : refs->GetArray()) {
            const rapidjson::Value* b = am::FindMember(r, "blockOwnerDeletion");
            if (am::GetStringOr(r, "uid") == uid && b && b->IsBool() && b->GetBool()) blocks = true;
          }
        }
        if (blocks) ++blocking;
        if (Deleting(*d)) continue;
        const auto& res = dinf->resource();
        auto r = m_->client()->Do("DELETE", res.ObjectPath(std::string(MetaString(*d, "namespace")), std::string(MetaString(*d, "name"))),
                                  DeleteBody("Foreground", MetaString(*d, "uid")));
        if (!r.ok()) return r.status();
        if (Status s = client::ToStatus(*r); !s.ok() && !s.IsNotFound()) return s;
      }
      if (blocking > 0) {
        work_.queue().AddAfter(Item('O', inf, KeyOf(obj)), std::chrono::milliseconds(500));
        return Status::Ok();
      }
      return RemoveFinalizer(inf, obj, "foregroundDeletion");
    }
    return Status::Ok();
  }

  ControllerManager* m_;
  LeaderQueue work_;
  std::mutex mu_;
  std::set<Informer*> watched_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> discovered_{false};
  std::atomic<bool> resync_requested_{false};
  std::thread discover_;
};

// ------------------------------------------------------------------------------------------
class NamespaceController : public BuiltinController {
 public:
  explicit NamespaceController(ControllerManager* m)
      : m_(m), work_(m, 1, [this](const std::string& ns) { return Process(ns); }) {
    auto inf = m_->informers().For("v1", "Namespace");
    if (inf.ok()) {
      namespaces_ = *inf;
      namespaces_->AddHandler(EventHandler{
          [this](const ObjectPtr& o) { if (Deleting(*o)) work_.queue().Add(KeyOf(*o)); },
          [this](const ObjectPtr&, const ObjectPtr& n) { if (Deleting(*n)) work_.queue().Add(KeyOf(*n)); },
          nullptr});
    }
    m_->OnLeading([this] {
      if (!namespaces_) return;
      for (auto& o : namespaces_->List("")) if (Deleting(*o)) work_.queue().Add(KeyOf(*o));
    });
  }
  ~NamespaceController() override { Stop(); }
  void Stop() override { work_.Stop(); }

 private:
  Status Process(const std::string& name) {
    ObjectPtr ns = namespaces_ ? namespaces_->Get(name) : nullptr;
    if (!ns || !Deleting(*ns)) return Status::Ok();
    auto all = m_->mapper().All();
    if (!all.ok()) return all.status();
    size_t remaining = 0;
    for (auto& r : *all) {
      if (!r.namespaced || !r.HasVerb("list") || !r.HasVerb("delete")) continue;
      auto list = m_->client()->Do("GET", r.CollectionPath(name));
      if (!list.ok()) return list.status();
      if (list->status == 404 || list->status == 405) continue;  // the type went away / cannot list
      // Any other failure (429, 5xx): not known to be empty, so try again later.
      if (Status st = client::ToStatus(*list); !st.ok()) return st;
      rapidjson::Document doc;
      doc.Parse(list->body.data(), list->body.size());
      const rapidjson::Value* items = doc.IsObject() ? am::FindMember(doc, "items") : nullptr;
      if (!items || !items->IsArray()) continue;
      for (auto& item : items->GetArray()) {
        ++remaining;
        if (Deleting(item)) continue;
        auto del = m_->client()->Do("DELETE", r.ObjectPath(name, std::string(MetaString(item, "name"))),
                                    DeleteBody("Background", MetaString(item, "uid")));
        if (!del.ok()) return del.status();
      }
    }
    if (remaining > 0) {
      work_.queue().AddAfter(name, std::chrono::milliseconds(250));
      return Status::Ok();
    }
    // Everything is gone: drop the `kubernetes` finalizer.
    rapidjson::Document doc;
    doc.CopyFrom(*ns, doc.GetAllocator());
    if (rapidjson::Value* spec = am::FindMember(doc, "spec")) {
      if (rapidjson::Value* f = am::FindMember(*spec, "finalizers"); f && f->IsArray()) {
        rapidjson::Value kept(rapidjson::kArrayType);
        for (auto& v : f->GetArray()) {
          if (!(v.IsString() && am::JsonStringView(v) == "kubernetes")) kept.PushBack(rapidjson::Value(v, doc.GetAllocator()), doc.GetAllocator());
        }
        *f = kept;
      }
    }
    auto r = m_->client()->Do("PUT", "/api/v1/namespaces/" + name + "/finalize", am::ToJson(doc));
    if (!r.ok()) return r.status();
    Status s = client::ToStatus(*r);
    if (s.ok()) spdlog::info("namespace controller: {} is empty; finalized", name);
    return s.IsNotFound() ? Status::Ok() : s;
  }

  ControllerManager* m_;
  LeaderQueue work_;
  Informer* namespaces_ = nullptr;
};

}  // namespace

std::unique_ptr<BuiltinController> StartGarbageCollector(ControllerManager* manager) {
  return std::make_unique<GarbageCollector>(manager);
}

std::unique_ptr<BuiltinController> StartNamespaceController(ControllerManager* manager) {
  return std::make_unique<NamespaceController>(manager);
}

}  // namespace rc::controller

namespace rc::controller {

std::string ControllerObjectName(const std::string& controller_name) {
  std::string n = controller_name;
  const std::string suffix = "Controller";
  if (n.size() > suffix.size() && n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0) n.resize(n.size() - suffix.size());
  std::string out;
  for (char c : n) out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : (c == '_' || c == '.') ? '-' : c;
  return out;
}

namespace {

class ControllerStatusReporter : public BuiltinController {
 public:
  ControllerStatusReporter(ControllerManager* m, int period_ms) : m_(m), period_ms_(period_ms) {
    thread_ = std::thread([this] { Run(); });
  }
  ~ControllerStatusReporter() override { Stop(); }
  void Stop() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static std::string Time(int64_t unix) { return FormatRfc3339(unix); }

  void Publish(const ControllerInfo& c) {
    const std::string base = "/apis/rc.dev/v1/controllers";
    std::string name = ControllerObjectName(c.name);
    rapidjson::Document d(rapidjson::kObjectType);
    auto& a = d.GetAllocator();
    auto str = [&](const std::string& s) { return am::JsonString(s, a); };
    d.AddMember("apiVersion", "rc.dev/v1", a);
    d.AddMember("kind", "Controller", a);
    rapidjson::Value meta(rapidjson::kObjectType);
    meta.AddMember("name", str(name), a);
    rapidjson::Value labels(rapidjson::kObjectType);
    labels.AddMember("rc.dev/controller", str(c.name.size() <= 63 ? c.name : c.name.substr(0, 63)), a);
    meta.AddMember("labels", labels, a);
    d.AddMember("metadata", meta, a);
    rapidjson::Value spec(rapidjson::kObjectType);
    spec.AddMember("primary", str(c.primary), a);
    rapidjson::Value owns(rapidjson::kArrayType), watches(rapidjson::kArrayType);
    for (auto& o : c.owns) owns.PushBack(str(o), a);
    for (auto& w : c.watches) watches.PushBack(str(w), a);
    spec.AddMember("owns", owns, a);
    spec.AddMember("watches", watches, a);
    spec.AddMember("origin", str(c.origin), a);
    d.AddMember("spec", spec, a);
    rapidjson::Value status(rapidjson::kObjectType);
    status.AddMember("sourceHash", str(c.source_hash), a);
    status.AddMember("loadedAt", str(Time(c.loaded_at_unix)), a);
    status.AddMember("version", c.version, a);
    status.AddMember("leader", str(m_->identity()), a);
    status.AddMember("reconciles", c.reconciles, a);
    status.AddMember("failures", c.failures, a);
    status.AddMember("writes", c.writes, a);
    status.AddMember("lastError", str(c.last_error.size() > 1000 ? c.last_error.substr(0, 1000) : c.last_error), a);
    status.AddMember("queueLength", static_cast<int64_t>(c.queue_length), a);
    d.AddMember("status", status, a);
    std::string fingerprint = am::ToJson(d);
    if (published_[name] == fingerprint) return;
    auto got = m_->client()->Do("GET", base + "/" + name);
    if (!got.ok()) return;
    if (got->status == 404) {
      auto r = m_->client()->Do("POST", base, fingerprint);
      if (!r.ok() || r->status != 201) return;
      got = m_->client()->Do("GET", base + "/" + name);
      if (!got.ok() || got->status != 200) return;
    }
    rapidjson::Document current;
    current.Parse(got->body.data(), got->body.size());
    if (current.HasParseError() || !current.IsObject()) return;
    // spec (origin/owns may change on reload) and status, each at the current resourceVersion.
    std::string rv(MetaString(current, "resourceVersion"));
    rapidjson::Value* m = am::FindMember(d, "metadata");
    m->AddMember("resourceVersion", str(rv), a);
    auto put = m_->client()->Do("PUT", base + "/" + name, am::ToJson(d));
    if (!put.ok() || put->status != 200) return;
    rapidjson::Document after;
    after.Parse(put->body.data(), put->body.size());
    if (!after.HasParseError() && after.IsObject()) {
      am::FindMember(d, "metadata")->FindMember("resourceVersion")->value = am::JsonString(MetaString(after, "resourceVersion"), a);
    }
    auto st = m_->client()->Do("PUT", base + "/" + name + "/status", am::ToJson(d));
    if (st.ok() && st->status == 200) published_[name] = fingerprint;
  }

  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      if (m_->IsLeader()) {
        std::set<std::string> live;
        for (auto& c : m_->Controllers()) {
          live.insert(ControllerObjectName(c.name));
          Publish(c);
        }
        // Objects of controllers that are no longer loaded.
        auto list = m_->client()->Do("GET", "/apis/rc.dev/v1/controllers");
        if (list.ok() && list->status == 200) {
          rapidjson::Document doc;
          doc.Parse(list->body.data(), list->body.size());
          const rapidjson::Value* items = doc.IsObject() ? am::FindMember(doc, "items") : nullptr;
          if (items && items->IsArray()) {
            for (auto& item : items->GetArray()) {
              std::string name(MetaString(item, "name"));
              if (live.count(name)) continue;
              (void)m_->client()->Do("DELETE", "/apis/rc.dev/v1/controllers/" + name);
              published_.erase(name);
            }
          }
        }
      } else {
        published_.clear();  // another leader may have written since
      }
      lock.lock();
      cv_.wait_for(lock, std::chrono::milliseconds(period_ms_), [this] { return stop_; });
    }
  }

  ControllerManager* m_;
  int period_ms_;
  std::map<std::string, std::string> published_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<BuiltinController> StartControllerStatusReporter(ControllerManager* manager, int period_ms) {
  return std::make_unique<ControllerStatusReporter>(manager, period_ms);
}

}  // namespace rc::controller

// ------------------------------------------------------------------------------------------
namespace rc::controller {
namespace {

class NodeIpamController : public BuiltinController {
 public:
  NodeIpamController(ControllerManager* m, uint32_t base, int prefix, int mask)
      : m_(m), base_(base), prefix_(prefix), mask_(mask),
        work_(m, 1, [this](const std::string& n) { return Process(n); }) {
    auto inf = m_->informers().For("v1", "Node");
    if (!inf.ok()) {
      spdlog::warn("node ipam: {}", inf.status().ToString());
      return;
    }
    nodes_ = *inf;
    nodes_->AddHandler(EventHandler{
        [this](const ObjectPtr& o) { Track(*o); },
        [this](const ObjectPtr&, const ObjectPtr& n) { Track(*n); },
        [this](const ObjectPtr& o) { Forget(std::string(MetaString(*o, "name"))); }});
    m_->OnLeading([this] {
      if (!nodes_) return;
      for (auto& o : nodes_->List("")) Track(*o);
    });
  }
  ~NodeIpamController() override { Stop(); }
  void Stop() override { work_.Stop(); }

 private:
  static std::string PodCidrOf(const rapidjson::Value& node) {
    const rapidjson::Value* spec = am::FindMember(node, "spec");
    return spec ? std::string(am::GetStringOr(*spec, "podCIDR")) : std::string();
  }
  // The block index of "a.b.c.d/mask" inside the cluster range, or -1.
  int64_t BlockOf(const std::string& cidr) const {
    unsigned a, b, c, d, len;
    if (sscanf(cidr.c_str(), "%u.%u.%u.%u/%u", &a, &b, &c, &d, &len) != 5 || static_cast<int>(len) != mask_) return -1;
    uint32_t ip = (a << 24) | (b << 16) | (c << 8) | d;
    uint32_t range_mask = prefix_ == 0 ? 0 : ~uint32_t{0} << (32 - prefix_);
    if ((ip & range_mask) != base_) return -1;
    return (ip - base_) >> (32 - mask_);
  }
  std::string CidrOf(int64_t block) const {
    uint32_t ip = base_ + (static_cast<uint32_t>(block) << (32 - mask_));
    return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
           std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255) + "/" + std::to_string(mask_);
  }
  void Track(const rapidjson::Value& node) {
    std::string name(MetaString(node, "name"));
    std::string cidr = PodCidrOf(node);
    std::lock_guard<std::mutex> lock(mu_);
    if (cidr.empty()) {
      if (!by_node_.count(name)) work_.queue().Add(name);
      return;
    }
    int64_t block = BlockOf(cidr);
    auto it = by_node_.find(name);
    if (it != by_node_.end() && it->second != block) used_.erase(it->second);
    if (block >= 0) {
      by_node_[name] = block;
      used_.insert(block);
    }
  }
  void Forget(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    waiting_.erase(name);
    auto it = by_node_.find(name);
    if (it == by_node_.end()) return;
    used_.erase(it->second);
    by_node_.erase(it);
    // A block came free: nodes that found the range full try again.
    for (const auto& w : waiting_) work_.queue().Add(w);
  }
  Status Process(const std::string& name) {
    if (!nodes_ || !nodes_->synced()) return Status::Unavailable("node cache not synced yet");
    ObjectPtr node = nodes_->Get(name);
    if (!node || !PodCidrOf(*node).empty()) return Status::Ok();
    int64_t block = -1;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!rebuilt_) {
        // Every assigned block is known before the first choice (the handlers may still be
        // replaying the initial list).
        for (const auto& n : nodes_->List("")) {
          int64_t b = BlockOf(PodCidrOf(*n));
          if (b >= 0) {
            by_node_[std::string(MetaString(*n, "name"))] = b;
            used_.insert(b);
          }
        }
        rebuilt_ = true;
      }
      if (auto it = by_node_.find(name); it != by_node_.end()) {
        block = it->second;  // chosen before; the write may not have been seen yet
      } else {
        int64_t blocks = int64_t{1} << (mask_ - prefix_);
        for (int64_t i = 0; i < blocks; ++i) {
          int64_t candidate = (next_ + i) % blocks;
          if (!used_.count(candidate)) {
            block = candidate;
            break;
          }
        }
        if (block >= 0) {
          next_ = block + 1;
          used_.insert(block);
          by_node_[name] = block;
          waiting_.erase(name);
        }
      }
    }
    if (block < 0) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        waiting_.insert(name);
      }
      m_->events("node-ipam-controller").Record(*node, "Warning", "CIDRNotAvailable",
                                                "Node " + name + " status is now: CIDRNotAvailable");
      return Status::Ok();
    }
    std::string cidr = CidrOf(block);
    std::string patch = R"({"spec":{"podCIDR":")" + cidr + R"(","podCIDRs":[")" + cidr + R"("]}})";
    auto r = m_->client()->Do("PATCH", "/api/v1/nodes/" + name, patch, "application/merge-patch+json");
    if (!r.ok()) return r.status();
    Status s = client::ToStatus(*r);
    if (s.IsNotFound()) {
      Forget(name);
      return Status::Ok();
    }
    if (!s.ok()) return s;
    if (auto doc = am::ParseJson(r->body); doc.ok()) nodes_->Observe(*doc);
    spdlog::info("node ipam: {} gets podCIDR {}", name, cidr);
    m_->events("node-ipam-controller").Record(*node, "Normal", "CIDRAssignmentSucceeded", "Node " + name + " was assigned podCIDR " + cidr);
    return Status::Ok();
  }

  ControllerManager* m_;
  uint32_t base_;
  int prefix_, mask_;
  LeaderQueue work_;
  Informer* nodes_ = nullptr;
  std::mutex mu_;
  std::map<std::string, int64_t> by_node_;  // assigned (seen or written) blocks
  std::set<int64_t> used_;
  int64_t next_ = 0;
  bool rebuilt_ = false;
  std::set<std::string> waiting_;  // nodes the full range could not serve
};

}  // namespace

Result<std::unique_ptr<BuiltinController>> StartNodeIpamController(ControllerManager* manager,
                                                                   const std::string& cluster_cidr,
                                                                   int node_mask_size) {
  unsigned a, b, c, d, len;
  char tail = 0;
  if (sscanf(cluster_cidr.c_str(), "%u.%u.%u.%u/%u%c", &a, &b, &c, &d, &len, &tail) != 5 || a > 255 || b > 255 ||
      c > 255 || d > 255 || len > 32) {
    return Status::InvalidArgument("--cluster-cidr " + cluster_cidr + ": not an IPv4 CIDR (a.b.c.d/n)");
  }
  if (node_mask_size < static_cast<int>(len) || node_mask_size > 30 || node_mask_size - static_cast<int>(len) > 24) {
    return Status::InvalidArgument("--node-cidr-mask-size " + std::to_string(node_mask_size) + " must be between " +
                                   std::to_string(len) + " and 30 (and at most 24 bits more than the cluster CIDR)");
  }
  uint32_t ip = (a << 24) | (b << 16) | (c << 8) | d;
  uint32_t range_mask = len == 0 ? 0 : ~uint32_t{0} << (32 - len);
  if ((ip & range_mask) != ip) {
    return Status::InvalidArgument("--cluster-cidr " + cluster_cidr + ": host bits set (did you mean " +
                                   std::to_string((ip & range_mask) >> 24) + "." + std::to_string(((ip & range_mask) >> 16) & 255) + "." +
                                   std::to_string(((ip & range_mask) >> 8) & 255) + "." + std::to_string(ip & range_mask & 255) + "/" + std::to_string(len) + "?)");
  }
  return std::unique_ptr<BuiltinController>(
      std::make_unique<NodeIpamController>(manager, ip, static_cast<int>(len), node_mask_size));
}

}  // namespace rc::controller
