#include "rc/controller/informer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>

#include "rc/apimachinery/json.h"

namespace rc::controller {

namespace am = rc::apimachinery;

std::string_view MetaString(const rapidjson::Value& object, std::string_view field) {
  const rapidjson::Value* meta = object.IsObject() ? am::FindMember(object, "metadata") : nullptr;
  if (!meta || !meta->IsObject()) return {};
  return am::GetStringOr(*meta, field);
}

std::string KeyOf(const rapidjson::Value& object) {
  std::string_view ns = MetaString(object, "namespace");
  std::string_view name = MetaString(object, "name");
  return ns.empty() ? std::string(name) : std::string(ns) + "/" + std::string(name);
}

int64_t ResourceVersionOf(const rapidjson::Value& object) {
  std::string_view rv = MetaString(object, "resourceVersion");
  int64_t v = 0;
  for (char c : rv) {
    if (c < '0' || c > '9') return 0;
    v = v * 10 + (c - '0');
  }
  return v;
}

namespace {

// A pointer to `value` that keeps the whole parsed document alive.
ObjectPtr Alias(const std::shared_ptr<rapidjson::Document>& doc, const rapidjson::Value& value) {
  return ObjectPtr(doc, &value);
}

std::vector<std::string> OwnerUids(const rapidjson::Value& obj) {
  std::vector<std::string> out;
  const rapidjson::Value* meta = am::FindMember(obj, "metadata");
  const rapidjson::Value* refs = meta ? am::FindMember(*meta, "ownerReferences") : nullptr;
  if (!refs || !refs->IsArray()) return out;
  for (auto& r : refs->GetArray()) {
    if (r.IsObject()) {
      if (auto uid = am::GetStringOr(r, "uid"); !uid.empty()) out.emplace_back(uid);
    }
  }
  return out;
}

}  // namespace

IndexFunc IndexByLabel(std::string key) {
  return [key = std::move(key)](const rapidjson::Value& obj) -> std::vector<std::string> {
    const rapidjson::Value* meta = am::FindMember(obj, "metadata");
    const rapidjson::Value* labels = meta ? am::FindMember(*meta, "labels") : nullptr;
    const rapidjson::Value* v = labels && labels->IsObject() ? am::FindMember(*labels, key) : nullptr;
    if (!v || !v->IsString()) return {};
    return {std::string(am::JsonStringView(*v))};
  };
}

IndexFunc IndexByField(std::string path) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string::npos; start = dot + 1) parts.push_back(path.substr(start, dot - start));
  parts.push_back(path.substr(start));
  return [parts = std::move(parts)](const rapidjson::Value& obj) -> std::vector<std::string> {
    const rapidjson::Value* v = &obj;
    for (auto& p : parts) {
      v = v->IsObject() ? am::FindMember(*v, p) : nullptr;
      if (!v) return {};
    }
    if (!v->IsString() || v->GetStringLength() == 0) return {};
    return {std::string(am::JsonStringView(*v))};
  };
}

Informer::Informer(client::RestClient* client, client::ResourceInfo resource)
    : client_(client), resource_(std::move(resource)) {}

Informer::~Informer() { Stop(); }

void Informer::SetSelectors(const std::string& field_selector, const std::string& label_selector) {
  selector_query_.clear();
  if (!field_selector.empty()) selector_query_ += "&fieldSelector=" + client::UrlEncode(field_selector);
  if (!label_selector.empty()) selector_query_ += "&labelSelector=" + client::UrlEncode(label_selector);
}

void Informer::AddHandler(EventHandler handler) {
  auto h = std::make_shared<const EventHandler>(std::move(handler));
  // Publish first, then replay what is cached: an object that changes in between reaches the
  // handler twice at worst (handlers are level-triggered), never not at all.
  {
    std::lock_guard<std::mutex> hl(handlers_mu_);
    auto next = std::make_shared<std::vector<std::shared_ptr<const EventHandler>>>(*handlers_);
    next->push_back(h);
    handlers_ = std::move(next);
  }
  if (h->on_add) {
    std::vector<ObjectPtr> existing;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [k, e] : items_) existing.push_back(e.object);
    }
    for (auto& o : existing) h->on_add(o);
  }
}

void Informer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    if (watch_) watch_->Cancel();
  }
  synced_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Informer::WaitForSync(int timeout_ms) const {
  std::unique_lock<std::mutex> lock(mu_);
  return synced_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return synced_.load() || stop_.load(); }) &&
         synced_.load();
}

ObjectPtr Informer::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = items_.find(key);
  return it == items_.end() ? nullptr : it->second.object;
}

std::vector<ObjectPtr> Informer::List(const std::string& ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  if (ns.empty()) {
    out.reserve(items_.size());
    for (auto& [k, e] : items_) out.push_back(e.object);
    return out;
  }
  auto it = by_namespace_.find(ns);
  if (it == by_namespace_.end()) return out;
  out.reserve(it->second.size());
  for (auto& k : it->second) {
    if (auto e = items_.find(k); e != items_.end()) out.push_back(e->second.object);
  }
  return out;
}

std::vector<ObjectPtr> Informer::ByOwner(const std::string& uid) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  auto it = by_owner_.find(uid);
  if (it == by_owner_.end()) return out;
  for (auto& k : it->second) {
    if (auto e = items_.find(k); e != items_.end()) out.push_back(e->second.object);
  }
  return out;
}

std::vector<std::string> Informer::Keys() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (auto& [k, e] : items_) out.push_back(k);
  return out;
}

size_t Informer::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return items_.size();
}

void Informer::AddIndexer(const std::string& name, IndexFunc fn) {
  std::lock_guard<std::mutex> lock(mu_);
  CustomIndex& index = indexes_[name];
  index.fn = std::move(fn);
  index.values.clear();
  for (auto& [k, e] : items_) {
    for (auto& v : index.fn(*e.object)) index.values[v].insert(k);
  }
}

std::vector<ObjectPtr> Informer::ByIndex(const std::string& name, const std::string& value) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  auto idx = indexes_.find(name);
  if (idx == indexes_.end()) return out;
  auto it = idx->second.values.find(value);
  if (it == idx->second.values.end()) return out;
  for (auto& k : it->second) {
    if (auto e = items_.find(k); e != items_.end()) out.push_back(e->second.object);
  }
  return out;
}

void Informer::IndexLocked(const std::string& key, const Object* obj, bool add) {
  if (!obj) return;
  for (auto& [name, index] : indexes_) {
    for (auto& v : index.fn(*obj)) {
      if (add) {
        index.values[v].insert(key);
      } else if (auto it = index.values.find(v); it != index.values.end()) {
        it->second.erase(key);
        if (it->second.empty()) index.values.erase(it);
      }
    }
  }
  std::string ns(MetaString(*obj, "namespace"));
  if (!ns.empty()) {
    if (add) {
      by_namespace_[ns].insert(key);
    } else if (auto it = by_namespace_.find(ns); it != by_namespace_.end()) {
      it->second.erase(key);
      if (it->second.empty()) by_namespace_.erase(it);
    }
  }
  for (auto& uid : OwnerUids(*obj)) {
    if (add) {
      by_owner_[uid].insert(key);
    } else if (auto it = by_owner_.find(uid); it != by_owner_.end()) {
      it->second.erase(key);
      if (it->second.empty()) by_owner_.erase(it);
    }
  }
}

void Informer::UpsertLocked(ObjectPtr obj, int64_t rv, std::vector<Notification>& out) {
  std::string key = KeyOf(*obj);
  if (auto t = tombstones_.find(key); t != tombstones_.end()) {
    if (rv <= t->second) return;  // an event from before our own delete
    tombstones_.erase(t);
  }
  auto it = items_.find(key);
  if (it != items_.end()) {
    if (rv <= it->second.rv) return;  // already have this or a newer state
    ObjectPtr old = it->second.object;
    IndexLocked(key, old.get(), false);
    it->second = Entry{obj, rv};
    IndexLocked(key, obj.get(), true);
    out.push_back({Kind::kUpdate, std::move(old), std::move(obj)});
    return;
  }
  items_.emplace(key, Entry{obj, rv});
  IndexLocked(key, obj.get(), true);
  out.push_back({Kind::kAdd, nullptr, std::move(obj)});
}

void Informer::DeleteLocked(const std::string& key, int64_t rv, std::vector<Notification>& out) {
  auto it = items_.find(key);
  if (it != items_.end() && it->second.rv > rv && rv > 0) return;  // recreated since
  auto& tomb = tombstones_[key];
  tomb = std::max(tomb, rv);
  if (it == items_.end()) return;
  ObjectPtr old = it->second.object;
  IndexLocked(key, old.get(), false);
  items_.erase(it);
  out.push_back({Kind::kDelete, std::move(old), nullptr});
}

void Informer::Dispatch(const std::vector<Notification>& notes) {
  if (notes.empty()) return;
  // Handlers run without any informer lock held (they may read this or other informers, or
  // write through the API server, which feeds Observe): a snapshot of the list is used.
  std::shared_ptr<const std::vector<std::shared_ptr<const EventHandler>>> handlers;
  {
    std::lock_guard<std::mutex> hl(handlers_mu_);
    handlers = handlers_;
  }
  for (auto& n : notes) {
    for (auto& hp : *handlers) {
      const EventHandler& h = *hp;
      switch (n.kind) {
        case Kind::kAdd: if (h.on_add) h.on_add(n.new_obj); break;
        case Kind::kUpdate: if (h.on_update) h.on_update(n.old_obj, n.new_obj); break;
        case Kind::kDelete: if (h.on_delete) h.on_delete(n.old_obj); break;
      }
    }
  }
}

void Informer::Observe(const rapidjson::Value& object) {
  auto doc = std::make_shared<rapidjson::Document>();
  doc->CopyFrom(object, doc->GetAllocator());
  int64_t rv = ResourceVersionOf(*doc);
  std::vector<Notification> notes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    UpsertLocked(Alias(doc, *doc), rv, notes);
  }
  Dispatch(notes);
}

void Informer::ObserveDeleted(const std::string& key, int64_t rv) {
  std::vector<Notification> notes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    DeleteLocked(key, rv, notes);
  }
  Dispatch(notes);
}

Status Informer::ListAndReplace(int64_t* rv) {
  std::vector<std::shared_ptr<rapidjson::Document>> pages;
  std::string cont;
  int64_t list_rv = 0;
  for (int restarts = 0;;) {
    std::string target = resource_.CollectionPath("") + "?limit=500" + selector_query_;
    if (!cont.empty()) target += "&continue=" + client::UrlEncode(cont);
    auto reply = client_->Do("GET", target);
    if (!reply.ok()) return reply.status();
    if (Status s = client::ToStatus(*reply); !s.ok()) {
      if (s.IsCompacted() && !cont.empty() && ++restarts < 5) {  // continue token expired: start over
        pages.clear();
        cont.clear();
        list_rv = 0;
        continue;
      }
      return s;
    }
    auto doc = std::make_shared<rapidjson::Document>();
    if (doc->Parse(reply->body.data(), reply->body.size()).HasParseError() || !doc->IsObject()) {
      return Status::Internal("list " + resource_.plural + ": response is not a JSON object");
    }
    const rapidjson::Value* meta = am::FindMember(*doc, "metadata");
    cont = meta ? std::string(am::GetStringOr(*meta, "continue")) : "";
    if (meta) {
      std::string_view v = am::GetStringOr(*meta, "resourceVersion");
      if (!v.empty() && list_rv == 0) list_rv = ResourceVersionOf(*doc);
    }
    pages.push_back(std::move(doc));
    if (cont.empty()) break;
  }

  std::vector<Notification> notes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::set<std::string> seen;
    for (auto& page : pages) {
      const rapidjson::Value* items = am::FindMember(*page, "items");
      if (!items || !items->IsArray()) continue;
      for (auto& item : items->GetArray()) {
        ObjectPtr obj = Alias(page, item);
        seen.insert(KeyOf(item));
        UpsertLocked(std::move(obj), ResourceVersionOf(item), notes);
      }
    }
    // Gone since: cached entries the snapshot does not have and that are not newer than it.
    std::vector<std::string> gone;
    for (auto& [k, e] : items_) {
      if (!seen.count(k) && e.rv <= list_rv) gone.push_back(k);
    }
    for (auto& k : gone) DeleteLocked(k, list_rv, notes);
    for (auto it = tombstones_.begin(); it != tombstones_.end();) {
      it = it->second <= list_rv ? tombstones_.erase(it) : std::next(it);
    }
  }
  *rv = list_rv;
  last_rv_ = list_rv;
  // Synced before the notifications go out: a handler reading this informer (a watch mapping
  // listing its own type) sees the cache, instead of waiting for a sync that follows it.
  if (!synced_.exchange(true)) {
    std::lock_guard<std::mutex> lock(mu_);
    synced_cv_.notify_all();
  }
  Dispatch(notes);
  return Status::Ok();
}

Status Informer::WatchFrom(int64_t* rv) {
  client::WatchHandle handle;
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    if (stop_) return Status::Ok();
    watch_ = &handle;
  }
  std::string target = resource_.CollectionPath("") + "?watch=true&allowWatchBookmarks=true&timeoutSeconds=300" +
                       selector_query_ + "&resourceVersion=" + std::to_string(*rv);
  Status gone = Status::Ok();
  Status st = client_->Stream(target, [&](std::string_view line) {
    auto doc = std::make_shared<rapidjson::Document>();
    if (doc->Parse(line.data(), line.size()).HasParseError() || !doc->IsObject()) {
      spdlog::warn("informer {}: unparsable watch event ({} bytes)", resource_.plural, line.size());
      return true;
    }
    std::string_view type = am::GetStringOr(*doc, "type");
    const rapidjson::Value* obj = am::FindMember(*doc, "object");
    if (!obj || !obj->IsObject()) return true;
    if (type == "ERROR") {
      const rapidjson::Value* code = am::FindMember(*obj, "code");
      gone = code && code->IsInt() && code->GetInt() == 410 ? Status::Compacted(std::string(am::GetStringOr(*obj, "message")))
                                                            : Status::Unavailable(std::string(am::GetStringOr(*obj, "message")));
      return false;
    }
    int64_t event_rv = ResourceVersionOf(*obj);
    if (event_rv > *rv) *rv = event_rv;
    last_rv_ = *rv;
    if (type == "BOOKMARK") {
      // Everything up to rv has been seen: older tombstones cannot matter any more.
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = tombstones_.begin(); it != tombstones_.end();) {
        it = it->second < *rv ? tombstones_.erase(it) : std::next(it);
      }
      return true;
    }
    std::vector<Notification> notes;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (type == "DELETED") {
        DeleteLocked(KeyOf(*obj), event_rv, notes);
      } else {
        UpsertLocked(Alias(doc, *obj), event_rv, notes);
      }
      if (++events_ % 1024 == 0) {
        for (auto it = tombstones_.begin(); it != tombstones_.end();) {
          it = it->second < *rv ? tombstones_.erase(it) : std::next(it);
        }
      }
    }
    Dispatch(notes);
    return !stop_;
  }, &handle);
  {
    std::lock_guard<std::mutex> lock(watch_mu_);
    watch_ = nullptr;
  }
  if (!gone.ok()) return gone;
  return st;
}

void Informer::SleepUnlessStopped(int ms) {
  std::unique_lock<std::mutex> lock(mu_);
  synced_cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stop_.load(); });
}

void Informer::Run() {
  int64_t rv = 0;
  bool need_list = true;
  int backoff_ms = 100;
  while (!stop_) {
    if (need_list) {
      Status s = ListAndReplace(&rv);
      if (!s.ok()) {
        if (!stop_) spdlog::warn("informer {}: list failed: {}; retrying in {} ms", resource_.plural, s.ToString(), backoff_ms);
        SleepUnlessStopped(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      need_list = false;
      relists_++;
    }
    Status s = WatchFrom(&rv);
    if (stop_) break;
    if (s.IsCompacted()) {
      spdlog::info("informer {}: watch from {} expired (410 Gone); re-listing", resource_.plural, rv);
      need_list = true;
      continue;
    }
    if (!s.ok()) {
      spdlog::warn("informer {}: watch failed: {}; retrying in {} ms", resource_.plural, s.ToString(), backoff_ms);
      SleepUnlessStopped(backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, 5000);
      continue;
    }
    backoff_ms = 100;  // stream ended normally (timeout): watch again from rv
  }
}

InformerFactory::~InformerFactory() { StopAll(); }

Result<Informer*> InformerFactory::For(const std::string& api_version, const std::string& kind) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = informers_.find(api_version + "/" + kind); it != informers_.end()) return it->second.get();
  }
  auto info = mapper_->ForKind(api_version, kind);
  if (!info.ok()) return info.status();
  return For(*info);
}

Result<Informer*> InformerFactory::For(const client::ResourceInfo& resource) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string id = resource.api_version() + "/" + resource.kind;
  auto& slot = informers_[id];
  if (!slot) {
    slot = std::make_unique<Informer>(client_, resource);
    slot->Start();
  }
  return slot.get();
}

std::vector<Informer*> InformerFactory::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Informer*> out;
  for (auto& [k, i] : informers_) out.push_back(i.get());
  return out;
}

void InformerFactory::StopAll() {
  // Stopped outside mu_: an informer thread finishing a dispatch may call For() meanwhile.
  for (Informer* i : All()) i->Stop();
}

}  // namespace rc::controller
