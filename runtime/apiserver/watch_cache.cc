#include "watch_cache.h"

#include <spdlog/spdlog.h>

#include <chrono>

namespace rc::apiserver {

namespace {

using Clock = std::chrono::steady_clock;

std::string NamespaceFromKey(const std::string& key, const ResourceInfo& r) {
  if (!r.namespaced) return "";
  std::string prefix = "/registry/" + r.plural + "/";
  if (key.compare(0, prefix.size(), prefix) != 0) return "";
  size_t slash = key.find('/', prefix.size());
  return slash == std::string::npos ? "" : key.substr(prefix.size(), slash - prefix.size());
}

std::string ErrorFrame(const ApiError& e) {
  return R"({"type":"ERROR","object":)" + e.ToJson() + "}\n";
}

// What a watch gets when the store watch feeding it ended: 410 Expired, so the client re-lists
// (Kubernetes' reflector does on Expired and Gone).
ApiError WatchEndedError(int64_t last_revision, const Status& reason) {
  return ApiError::Gone("too old resource version: " + std::to_string(last_revision) + " (" +
                        (reason.IsCompacted() ? reason.message() : reason.ToString()) + ")");
}

}  // namespace

// One change of one object, decoded once and encoded lazily per wire variant.
class WatchEventData {
 public:
  enum class Type { kAdded, kModified, kDeleted };

  static std::shared_ptr<WatchEventData> FromStore(const ResourceInfo& r, const store::Event& e) {
    auto d = std::make_shared<WatchEventData>();
    d->revision = e.kv.mod_revision;
    d->ns = NamespaceFromKey(e.kv.key, r);
    if (e.type == store::Event::Type::kPut) {
      d->type = e.kv.create_revision == e.kv.mod_revision ? Type::kAdded : Type::kModified;
      d->object_json = ObjectStorage::WithResourceVersion(e.kv.value, d->revision);
      if (e.prev_kv) {
        d->prev_json = ObjectStorage::WithResourceVersion(e.prev_kv->value, d->revision);
      }
    } else {
      d->type = Type::kDeleted;
      if (e.prev_kv) {
        d->object_json = ObjectStorage::WithResourceVersion(e.prev_kv->value, d->revision);
      } else {
        std::string name = e.kv.key.substr(e.kv.key.rfind('/') + 1);
        d->object_json = R"({"apiVersion":)" + Quote(r.GroupVersion()) + R"(,"kind":)" + Quote(r.kind) +
                         R"(,"metadata":{"name":)" + Quote(name) +
                         (d->ns.empty() ? "" : R"(,"namespace":)" + Quote(d->ns)) +
                         R"(,"resourceVersion":")" + std::to_string(d->revision) + "\"}}";
      }
    }
    return d;
  }

  // The decoded objects, for selector matching. Not kept: a parsed rapidjson document costs
  // far more memory than its text, and events stay in the window.
  struct Parsed {
    JsonDoc object;
    JsonDoc prev;
    bool has_prev = false;
  };
  std::unique_ptr<Parsed> Parse() const {
    auto p = std::make_unique<Parsed>();
    p->object.Parse(object_json.data(), object_json.size());
    if (!prev_json.empty()) {
      p->prev.Parse(prev_json.data(), prev_json.size());
      p->has_prev = !p->prev.HasParseError();
    }
    return p;
  }

  // The encoded event "{"type":..,"object":..}\n"; `use_prev` sends the previous object.
  std::shared_ptr<const std::string> Frame(const char* type, bool use_prev, WireFormat format,
                                           const ResourceInfo& r, const TableRenderer& table) {
    int slot = (type[0] == 'A' ? 0 : type[0] == 'M' ? 1 : 2) * 4 + (use_prev ? 2 : 0) +
               (format == WireFormat::kTable ? 1 : 0);
    std::lock_guard<std::mutex> lock(mu_);
    if (!frames_[slot]) {
      const std::string& json = use_prev ? prev_json : object_json;
      std::string body;
      if (format == WireFormat::kTable) {
        JsonDoc doc;
        doc.Parse(json.data(), json.size());
        body = table(r, doc, revision);
      } else {
        body = json;
      }
      auto frame = std::make_shared<std::string>();
      frame->reserve(body.size() + 32);
      *frame += R"({"type":")";
      *frame += type;
      *frame += R"(","object":)";
      *frame += body;
      *frame += "}\n";
      frames_[slot] = std::move(frame);
    }
    return frames_[slot];
  }

  int64_t revision = 0;
  Type type = Type::kAdded;
  std::string ns;
  std::string object_json;
  std::string prev_json;

 private:
  std::mutex mu_;
  std::shared_ptr<const std::string> frames_[12];
};

class Watcher {
 public:
  Watcher(const ResourceInfo* r, WatchRequest request, std::shared_ptr<HttpStream> stream,
          int64_t min_revision, const TableRenderer* table, int timeout_seconds)
      : r_(r), request_(std::move(request)), stream_(std::move(stream)), min_revision_(min_revision),
        last_revision_(min_revision), table_(table),
        deadline_(Clock::now() + std::chrono::seconds(timeout_seconds)),
        last_bookmark_(Clock::now()) {}

  bool needs_parsed() const { return !request_.filter.Empty(); }

  // Sends `e` if it concerns this watcher; `parsed` is e's decoded form, required when
  // needs_parsed(). Thread-safe.
  void Deliver(WatchEventData& e, const WatchEventData::Parsed* parsed) {
    std::lock_guard<std::mutex> lock(send_mu_);
    if (dead_ || e.revision <= min_revision_) return;
    if (!request_.ns.empty() && e.ns != request_.ns) return;
    const char* type = e.type == WatchEventData::Type::kAdded      ? "ADDED"
                       : e.type == WatchEventData::Type::kModified ? "MODIFIED"
                                                                   : "DELETED";
    bool use_prev = false;
    if (!request_.filter.Empty()) {
      std::unique_ptr<WatchEventData::Parsed> own;
      if (!parsed) {
        own = e.Parse();
        parsed = own.get();
      }
      bool now = !parsed->object.HasParseError() && request_.filter.Matches(parsed->object);
      bool before = e.type == WatchEventData::Type::kModified && parsed->has_prev &&
                    request_.filter.Matches(parsed->prev);
      if (e.type == WatchEventData::Type::kModified) {
        if (now && !before) {
          type = "ADDED";
        } else if (!now && before) {
          type = "DELETED";
          use_prev = true;
        } else if (!now) {
          return;
        }
      } else if (!now) {
        return;
      }
    }
    last_revision_ = e.revision;
    if (!stream_->Send(e.Frame(type, use_prev, request_.format, *r_, *table_))) dead_ = true;
  }

  void SendRaw(std::string frame) {
    std::lock_guard<std::mutex> lock(send_mu_);
    if (!stream_->Send(std::make_shared<const std::string>(std::move(frame)))) dead_ = true;
  }

  // The store watch feeding this watcher ended with `reason`: sends the 410 ERROR event and
  // finishes the stream; nothing is delivered after it. Thread-safe.
  void EndExpired(const Status& reason) {
    std::lock_guard<std::mutex> lock(send_mu_);
    if (dead_) return;
    dead_ = true;
    stream_->Send(std::make_shared<const std::string>(ErrorFrame(WatchEndedError(last_revision_, reason))));
    stream_->Close();
  }

  // Periodic work: timeout and bookmarks. Returns false once the watcher is finished.
  bool Tick(Clock::time_point now, int bookmark_interval_seconds, int64_t cache_revision) {
    if (dead_ || stream_->closed()) return false;
    if (now >= deadline_) {
      stream_->Close();
      dead_ = true;
      return false;
    }
    if (request_.bookmarks && now - last_bookmark_ >= std::chrono::seconds(bookmark_interval_seconds)) {
      last_bookmark_ = now;
      std::lock_guard<std::mutex> lock(send_mu_);
      int64_t rv = std::max(last_revision_, cache_revision);
      if (rv > last_revision_) last_revision_ = rv;
      min_revision_ = std::max(min_revision_, rv);
      std::string frame = R"({"type":"BOOKMARK","object":{"kind":)" + Quote(r_->kind) +
                          R"(,"apiVersion":)" + Quote(r_->GroupVersion()) +
                          R"(,"metadata":{"resourceVersion":")" + std::to_string(rv) + "\"}}}\n";
      if (!stream_->Send(std::make_shared<const std::string>(std::move(frame)))) dead_ = true;
    }
    return !dead_;
  }

  void MarkDead() { dead_ = true; }
  bool dead() const { return dead_ || stream_->closed(); }
  void Close() {
    dead_ = true;
    stream_->Close();
  }
  const ResourceInfo* resource() const { return r_; }
  std::unique_ptr<store::WatchHandle> private_watch;  // when served straight from the store

 private:
  const ResourceInfo* r_;
  WatchRequest request_;
  std::shared_ptr<HttpStream> stream_;
  int64_t min_revision_;
  int64_t last_revision_;
  const TableRenderer* table_;
  Clock::time_point deadline_;
  Clock::time_point last_bookmark_;
  std::mutex send_mu_;
  std::atomic<bool> dead_{false};
};

// Serves one watcher straight from a store watch (resume from before the cache window).
class PrivateSink : public store::WatchSink {
 public:
  PrivateSink(const ResourceInfo* r, Watcher* watcher) : r_(r), watcher_(watcher) {}
  void OnEvents(std::span<const store::Event> events) override {
    for (const auto& e : events) {
      auto data = WatchEventData::FromStore(*r_, e);
      watcher_->Deliver(*data, nullptr);
    }
  }
  // Ends the one HTTP watch (on the store's thread, like OnEvents; the ticker then releases the
  // store watch).
  void OnClosed(const Status& reason) override { watcher_->EndExpired(reason); }

 private:
  const ResourceInfo* r_;
  Watcher* watcher_;
};

class ResourceWatchCache : public store::WatchSink {
 public:
  ResourceWatchCache(WatchHub* hub, const ResourceInfo* r) : hub_(hub), r_(r) {}

  // Watches the store from `from_revision` + 1 with an empty window; new watches are accepted
  // once the store watch exists. Before serving, then only on the dispatcher thread.
  Status Start(int64_t from_revision) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      window_.clear();
      start_revision_ = from_revision;
      last_revision_ = std::max(last_revision_, from_revision);
      evicted_up_to_ = from_revision;
    }
    auto handle = hub_->store_->Watch(ObjectStorage::Prefix(*r_, ""),
                                      store::PrefixEnd(ObjectStorage::Prefix(*r_, "")),
                                      from_revision + 1, this);
    if (!handle.ok()) return handle.status();
    std::unique_ptr<store::WatchHandle> discarded;  // Stop came first: the cache stays stopped
    {
      std::lock_guard<std::mutex> lock(handle_mu_);
      if (stopped_) {
        discarded = std::move(handle.value());
      } else {
        handle_ = std::move(handle.value());
      }
    }
    if (discarded) return Status::Ok();
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_ = true;
    }
    return Status::Ok();
  }
  // Cancels the store watch for good (idempotent, any thread; waits for a delivery in progress).
  void Stop() {
    std::unique_ptr<store::WatchHandle> handle;
    {
      std::lock_guard<std::mutex> lock(handle_mu_);
      stopped_ = true;
      handle = std::move(handle_);
    }
    handle.reset();
  }

  // The resource was replaced or removed: new watches go elsewhere (Subscribe refuses, so the
  // caller falls back to a private store watch); the store watch stops once the last watcher
  // of this cache has gone (StopIfUnused).
  void Retire() {
    std::lock_guard<std::mutex> lock(mu_);
    retired_ = true;
  }
  // Lets go of every watcher (at shutdown, while the HTTP server that owns their streams lives).
  void DropWatchers() {
    std::vector<std::shared_ptr<Watcher>> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      dropped.swap(watchers_);
    }
  }

  // Stops a retired cache without live watchers; true if it is (now) stopped.
  bool StopIfUnused() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!retired_) return false;
      for (auto& w : watchers_) {
        if (!w->dead()) return false;
      }
      watchers_.clear();
      window_.clear();
    }
    Stop();
    return true;
  }

  void OnEvents(std::span<const store::Event> events) override {
    WatchHub::QueuedWork work;
    work.cache = this;
    work.events.assign(events.begin(), events.end());
    Enqueue(std::move(work));
  }
  // The store ended the watch: queued behind its events, handled by Closed on the dispatcher.
  void OnClosed(const Status& reason) override {
    WatchHub::QueuedWork work;
    work.cache = this;
    work.closed = reason;
    Enqueue(std::move(work));
  }

  // On the dispatcher thread, after every event of the ended store watch: starts over from the
  // current revision (unless the cache is retired or the hub stops), then ends the HTTP watches
  // the old store watch fed with 410 (they cannot resume here: the window restarts empty). In
  // that order, so the clients' re-list and re-watch usually find the cache serving again.
  void Closed(const Status& reason) {
    std::vector<std::shared_ptr<Watcher>> ended;
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_ = false;  // until the new store watch exists, new watches use a private one
      ended.swap(watchers_);
      window_.clear();
    }
    spdlog::warn("watch cache of {}: the store watch ended ({}); ending {} watches with 410 and re-watching",
                 r_->plural, reason.ToString(), ended.size());
    std::unique_ptr<store::WatchHandle> old;
    {
      std::lock_guard<std::mutex> lock(handle_mu_);
      old = std::move(handle_);
    }
    old.reset();  // the store calls this sink no more; release the ended watch
    needs_restart_ = true;
    RestartIfNeeded();
    for (auto& w : ended) w->EndExpired(reason);
  }

  // On the dispatcher thread (so a closure of the new store watch is handled after this
  // returns): re-establishes a cache whose store watch ended; on failure the ticker queues
  // another attempt (RequestRestart).
  void RestartIfNeeded() {
    if (!needs_restart_ || hub_->stopping_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (retired_) {  // no new watches come here: StopIfUnused releases it
        needs_restart_ = false;
        return;
      }
    }
    {
      std::lock_guard<std::mutex> lock(handle_mu_);
      if (stopped_) {
        needs_restart_ = false;
        return;
      }
    }
    int64_t revision = hub_->store_->CurrentRevision();
    Status s = Start(revision);
    if (!s.ok()) {
      spdlog::warn("watch cache of {}: re-watching from revision {} failed (retrying): {}", r_->plural, revision,
                   s.ToString());
      return;
    }
    needs_restart_ = false;
    spdlog::info("watch cache of {}: watching again from revision {}", r_->plural, revision);
  }
  // On the ticker thread: queues a restart attempt if one is due and none is queued.
  void RequestRestart() {
    if (!needs_restart_ || restart_queued_.exchange(true)) return;
    WatchHub::QueuedWork work;
    work.cache = this;
    work.restart = true;
    Enqueue(std::move(work));
  }
  // On the dispatcher thread: the attempt RequestRestart queued.
  void QueuedRestart() {
    restart_queued_ = false;
    RestartIfNeeded();
  }

  // On the dispatcher thread.
  void Process(const std::vector<store::Event>& events) {
    std::vector<std::shared_ptr<WatchEventData>> decoded;
    decoded.reserve(events.size());
    for (const auto& e : events) decoded.push_back(WatchEventData::FromStore(*r_, e));
    std::lock_guard<std::mutex> lock(mu_);
    bool any_filtered = false;
    for (auto& w : watchers_) any_filtered = any_filtered || w->needs_parsed();
    for (auto& d : decoded) {
      window_.push_back(d);
      last_revision_ = std::max(last_revision_, d->revision);
      auto parsed = any_filtered ? d->Parse() : nullptr;  // once per event, for every watcher
      for (auto& w : watchers_) w->Deliver(*d, parsed.get());
    }
    while (window_.size() > hub_->window_events_) {
      evicted_up_to_ = window_.front()->revision;
      window_.pop_front();
    }
    std::erase_if(watchers_, [](const std::shared_ptr<Watcher>& w) { return w->dead(); });
  }

  // Replays the window after `from_revision` and subscribes; false if the window no longer
  // covers it (the caller falls back to a store watch).
  bool Subscribe(const std::shared_ptr<Watcher>& w, int64_t from_revision) {
    std::lock_guard<std::mutex> lock(mu_);
    if (retired_ || !live_) return false;
    if (from_revision < start_revision_ || from_revision < evicted_up_to_) return false;
    for (auto& d : window_) {
      if (d->revision > from_revision) w->Deliver(*d, nullptr);
    }
    watchers_.push_back(w);
    return true;
  }

  int64_t last_revision() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_revision_;
  }

 private:
  void Enqueue(WatchHub::QueuedWork work) {
    {
      std::lock_guard<std::mutex> lock(hub_->queue_mu_);
      hub_->queue_.push_back(std::move(work));
    }
    hub_->queue_cv_.notify_one();
  }

  WatchHub* hub_;
  const ResourceInfo* r_;
  // The store watch ended and no new one exists yet (written on the dispatcher only).
  std::atomic<bool> needs_restart_{false};
  std::atomic<bool> restart_queued_{false};  // a QueuedWork::restart for this cache is queued
  std::mutex handle_mu_;
  std::unique_ptr<store::WatchHandle> handle_;
  bool stopped_ = false;  // guarded by handle_mu_: Stop ran, no store watch is installed again
  std::mutex mu_;
  bool live_ = false;  // a store watch feeds the window (Subscribe accepts)
  bool retired_ = false;
  std::deque<std::shared_ptr<WatchEventData>> window_;
  std::vector<std::shared_ptr<Watcher>> watchers_;
  int64_t start_revision_ = 0;
  int64_t last_revision_ = 0;
  int64_t evicted_up_to_ = 0;
};

WatchHub::WatchHub(store::Store* store, const ResourceRegistry* registry,
                   TableRenderer table_renderer, size_t window_events,
                   int bookmark_interval_seconds, int default_timeout_seconds)
    : store_(store), registry_(registry), table_renderer_(std::move(table_renderer)),
      window_events_(window_events), bookmark_interval_seconds_(bookmark_interval_seconds),
      default_timeout_seconds_(default_timeout_seconds) {}

WatchHub::~WatchHub() { Stop(); }

Status WatchHub::Start() {
  int64_t revision = store_->CurrentRevision();
  for (const ResourceInfo* r : registry_->All()) {
    auto cache = std::make_unique<ResourceWatchCache>(this, r);
    RC_RETURN_IF_ERROR(cache->Start(revision));
    std::lock_guard<std::mutex> lock(caches_mu_);
    caches_[r] = std::move(cache);
  }
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  ticker_ = std::thread([this] { TickLoop(); });
  return Status::Ok();
}

void WatchHub::Stop() {
  if (stopping_.exchange(true)) return;
  {
    std::lock_guard<std::mutex> lock(caches_mu_);
    for (auto& [r, cache] : caches_) cache->Stop();
  }
  queue_cv_.notify_all();
  tick_cv_.notify_all();
  if (dispatcher_.joinable()) dispatcher_.join();
  if (ticker_.joinable()) ticker_.join();
  std::vector<std::shared_ptr<Watcher>> all;
  {
    std::lock_guard<std::mutex> lock(all_mu_);
    all.swap(all_);
  }
  for (auto& w : all) {
    w->private_watch.reset();
    w->Close();
  }
  // The caches' references too: a stream released only in ~WatchHub would outlive the HTTP
  // server's io_context (ApiServerImpl destroys the server first).
  std::vector<ResourceWatchCache*> caches;
  {
    std::lock_guard<std::mutex> lock(caches_mu_);
    for (auto& [r, cache] : caches_) caches.push_back(cache.get());
  }
  for (ResourceWatchCache* c : caches) c->DropWatchers();
}

void WatchHub::DispatchLoop() {
  while (true) {
    QueuedWork item;
    {
      std::unique_lock<std::mutex> lock(queue_mu_);
      queue_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      item = std::move(queue_.front());
      queue_.pop_front();
    }
    if (item.closed) {
      item.cache->Closed(*item.closed);
    } else if (item.restart) {
      item.cache->QueuedRestart();
    } else {
      item.cache->Process(item.events);
    }
  }
}

void WatchHub::TickLoop() {
  while (!stopping_) {
    {
      std::unique_lock<std::mutex> lock(tick_mu_);
      tick_cv_.wait_for(lock, std::chrono::milliseconds(500), [this] { return stopping_.load(); });
    }
    if (stopping_) return;
    std::vector<std::shared_ptr<Watcher>> snapshot;
    {
      std::lock_guard<std::mutex> lock(all_mu_);
      snapshot = all_;
    }
    auto now = Clock::now();
    std::vector<Watcher*> finished;
    for (auto& w : snapshot) {
      int64_t cache_rev = 0;
      {
        std::lock_guard<std::mutex> lock(caches_mu_);
        auto c = caches_.find(w->resource());
        if (c != caches_.end()) cache_rev = c->second->last_revision();
      }
      if (!w->Tick(now, bookmark_interval_seconds_, cache_rev)) finished.push_back(w.get());
    }
    if (!finished.empty()) {
      std::vector<std::shared_ptr<Watcher>> removed;
      {
        std::lock_guard<std::mutex> lock(all_mu_);
        std::erase_if(all_, [&](const std::shared_ptr<Watcher>& w) {
          if (std::find(finished.begin(), finished.end(), w.get()) == finished.end()) return false;
          removed.push_back(w);
          return true;
        });
      }
      for (auto& w : removed) w->private_watch.reset();  // outside locks: may wait for the store
    }
    StopRetiredCaches();
    RestartClosedCaches();
  }
}

void WatchHub::RestartClosedCaches() {
  std::vector<ResourceWatchCache*> caches;
  {
    std::lock_guard<std::mutex> lock(caches_mu_);
    for (auto& [r, cache] : caches_) caches.push_back(cache.get());
  }
  for (ResourceWatchCache* c : caches) c->RequestRestart();
}

void WatchHub::StopRetiredCaches() {
  std::vector<ResourceWatchCache*> retired;
  {
    std::lock_guard<std::mutex> lock(caches_mu_);
    retired.assign(retired_.begin(), retired_.end());
  }
  std::vector<ResourceWatchCache*> stopped;
  for (ResourceWatchCache* c : retired) {
    if (c->StopIfUnused()) stopped.push_back(c);  // outside caches_mu_: may wait for the store
  }
  if (stopped.empty()) return;
  std::lock_guard<std::mutex> lock(caches_mu_);
  for (ResourceWatchCache* c : stopped) retired_.erase(c);
}

void WatchHub::RetireResource(const ResourceInfo* r) {
  {
    std::lock_guard<std::mutex> lock(caches_mu_);
    auto it = caches_.find(r);
    if (it == caches_.end()) return;
    it->second->Retire();
    retired_.insert(it->second.get());
  }
  StopRetiredCaches();
}

Status WatchHub::AddResource(const ResourceInfo* r) {
  std::lock_guard<std::mutex> lock(caches_mu_);
  if (caches_.count(r)) return Status::Ok();
  auto cache = std::make_unique<ResourceWatchCache>(this, r);
  RC_RETURN_IF_ERROR(cache->Start(store_->CurrentRevision()));
  caches_[r] = std::move(cache);
  return Status::Ok();
}

size_t WatchHub::watcher_count() const {
  std::lock_guard<std::mutex> lock(all_mu_);
  return all_.size();
}

std::optional<ApiError> WatchHub::Serve(const ResourceInfo& r, const WatchRequest& request,
                                        std::shared_ptr<HttpStream> stream) {
  ResourceWatchCache* cache = nullptr;
  {
    std::lock_guard<std::mutex> lock(caches_mu_);
    auto it = caches_.find(&r);
    if (it == caches_.end()) return ApiError::Internal("no watch cache for " + r.plural);
    cache = it->second.get();
  }
  int timeout = request.timeout_seconds > 0 ? static_cast<int>(request.timeout_seconds)
                                            : default_timeout_seconds_;

  int64_t from = 0;
  std::vector<std::string> initial;  // current state, for watches without a resourceVersion
  if (request.resource_version.empty() || request.resource_version == "0") {
    store::RangeOptions ro;
    std::string prefix = ObjectStorage::Prefix(r, request.ns);
    ro.range_end = store::PrefixEnd(prefix);
    auto res = store_->Range(prefix, ro);
    if (!res.ok()) return ApiError::FromStatus(res.status());
    from = res->revision;
    JsonDoc doc;
    for (const auto& kv : res->kvs) {
      doc.Parse(kv.value.data(), kv.value.size());
      if (doc.HasParseError()) continue;
      if (!request.filter.Empty() && !request.filter.Matches(doc)) continue;
      std::string json = ObjectStorage::WithResourceVersion(kv.value, kv.mod_revision);
      std::string body = json;
      if (request.format == WireFormat::kTable) {
        JsonDoc with_rv;
        with_rv.Parse(json.data(), json.size());
        body = table_renderer_(r, with_rv, kv.mod_revision);
      }
      initial.push_back(R"({"type":"ADDED","object":)" + body + "}\n");
    }
  } else {
    char* end = nullptr;
    long long rv = strtoll(request.resource_version.c_str(), &end, 10);
    if (!end || *end != '\0' || rv < 0) {
      return ApiError::BadRequest("invalid resource version: " + request.resource_version);
    }
    from = rv;
  }

  auto watcher = std::make_shared<Watcher>(&r, request, stream, from, &table_renderer_, timeout);
  stream->OnClose([weak = std::weak_ptr<Watcher>(watcher)] {
    if (auto w = weak.lock()) w->MarkDead();
  });
  for (auto& frame : initial) watcher->SendRaw(std::move(frame));

  int64_t compacted = store_->CompactRevision();
  if (from > 0 && from < compacted) {
    watcher->SendRaw(ErrorFrame(ApiError::Gone("too old resource version: " + std::to_string(from) +
                                               " (" + std::to_string(compacted) + ")")));
    stream->Close();
    return std::nullopt;
  }
  {
    std::lock_guard<std::mutex> lock(all_mu_);
    all_.push_back(watcher);
  }
  if (!cache->Subscribe(watcher, from)) {
    auto sink = std::make_shared<PrivateSink>(&r, watcher.get());
    std::string prefix = ObjectStorage::Prefix(r, request.ns);
    auto handle = store_->Watch(prefix, store::PrefixEnd(prefix), from + 1, sink.get());
    if (!handle.ok()) {
      watcher->SendRaw(ErrorFrame(handle.status().IsCompacted()
                                      ? ApiError::Gone("too old resource version: " + std::to_string(from) +
                                                       " (" + std::to_string(store_->CompactRevision()) + ")")
                                      : ApiError::FromStatus(handle.status())));
      stream->Close();
      return std::nullopt;
    }
    // The sink lives as long as the handle: tie them together.
    struct Holder : store::WatchHandle {
      std::unique_ptr<store::WatchHandle> inner;
      std::shared_ptr<PrivateSink> sink;
      ~Holder() override { inner.reset(); }
    };
    auto holder = std::make_unique<Holder>();
    holder->inner = std::move(handle.value());
    holder->sink = sink;
    watcher->private_watch = std::move(holder);
  }
  return std::nullopt;
}

}  // namespace rc::apiserver
