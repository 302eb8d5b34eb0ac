// Shared informers: list, then watch from the list's resourceVersion, re-list on 410 Gone, with an
// in-memory cache indexed by namespace and owner uid, and event handlers. One informer per
// resource type is shared by every controller (InformerFactory).
//
// Read-your-writes: a controller that wrote an object feeds the reply to Informer::Observe, so the
// cache never shows a state older than the controller's own writes (the watch event that follows
// carries the same or a newer resourceVersion and is applied only when newer).
#pragma once

#include <rapidjson/document.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"
#include "rc/client/rest_mapper.h"

namespace rc::controller {

using Object = rapidjson::Value;  // owned by a parsed document the pointer keeps alive
using ObjectPtr = std::shared_ptr<const Object>;

// "namespace/name", or "name" for cluster-scoped objects.
std::string KeyOf(const rapidjson::Value& object);
int64_t ResourceVersionOf(const rapidjson::Value& object);
std::string_view MetaString(const rapidjson::Value& object, std::string_view field);

// Index values of an object (none: not indexed). Must be a pure function of the object.
using IndexFunc = std::function<std::vector<std::string>(const rapidjson::Value& object)>;
// metadata.labels[key] ("app" -> "web"); objects without the label are not indexed.
IndexFunc IndexByLabel(std::string key);
// A string field by dotted path ("spec.nodeName"); empty values are not indexed.
IndexFunc IndexByField(std::string path);

struct EventHandler {
  std::function<void(const ObjectPtr&)> on_add;
  std::function<void(const ObjectPtr& old_obj, const ObjectPtr& new_obj)> on_update;
  std::function<void(const ObjectPtr&)> on_delete;  // the last state seen
};

class Informer {
 public:
  Informer(client::RestClient* client, client::ResourceInfo resource);
  ~Informer();
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  const client::ResourceInfo& resource() const { return resource_; }
  // A handler added later gets an on_add for every cached object. Handlers are called without
  // informer locks held, possibly from several threads (the watch thread, writers' Observe).
  void AddHandler(EventHandler handler);
  // Restricts the cache to objects matching the selectors (list and watch both carry them), as
  // the node agent's informer of its own pods (fieldSelector=spec.nodeName=NAME). Before Start().
  void SetSelectors(const std::string& field_selector, const std::string& label_selector = "");
  void Start();
  void Stop();
  // True once the first list has been applied. Waits up to `timeout_ms`.
  bool WaitForSync(int timeout_ms) const;
  bool synced() const { return synced_.load(); }

  ObjectPtr Get(const std::string& key) const;
  // Namespace "" = all. Sorted by key.
  std::vector<ObjectPtr> List(const std::string& ns) const;
  // Objects with an ownerReference to `uid` (controller or not). Sorted by key.
  std::vector<ObjectPtr> ByOwner(const std::string& uid) const;
  std::vector<std::string> Keys() const;
  // Adds a named index (existing objects are indexed at once). The namespace and owner-uid
  // indexes are built in (List(ns), ByOwner(uid)).
  void AddIndexer(const std::string& name, IndexFunc fn);
  // Objects whose index `name` has `value`. Sorted by key; empty for an unknown index.
  std::vector<ObjectPtr> ByIndex(const std::string& name, const std::string& value) const;
  size_t size() const;

  // Read-your-writes: the object as the API server returned it after a write.
  void Observe(const rapidjson::Value& object);
  // The object with `key` was deleted by this process (reply resourceVersion `rv`).
  void ObserveDeleted(const std::string& key, int64_t rv);

  int64_t relists() const { return relists_.load(); }
  int64_t last_resource_version() const { return last_rv_.load(); }

 private:
  struct Entry {
    ObjectPtr object;
    int64_t rv = 0;
  };
  enum class Kind { kAdd, kUpdate, kDelete };
  struct Notification {
    Kind kind;
    ObjectPtr old_obj, new_obj;
  };
  void Run();
  Status ListAndReplace(int64_t* rv);
  Status WatchFrom(int64_t* rv);
  // Applies an upsert/delete under mu_, collecting notifications for the handlers.
  void UpsertLocked(ObjectPtr obj, int64_t rv, std::vector<Notification>& out);
  void DeleteLocked(const std::string& key, int64_t rv, std::vector<Notification>& out);
  void IndexLocked(const std::string& key, const Object* obj, bool add);
  void Dispatch(const std::vector<Notification>& notes);
  void SleepUnlessStopped(int ms);

  client::RestClient* client_;
  client::ResourceInfo resource_;
  mutable std::mutex mu_;
  mutable std::condition_variable synced_cv_;
  std::map<std::string, Entry> items_;
  std::map<std::string, int64_t> tombstones_;  // deleted keys and the rv at deletion
  std::unordered_map<std::string, std::set<std::string>> by_namespace_;
  std::unordered_map<std::string, std::set<std::string>> by_owner_;
  struct CustomIndex {
    IndexFunc fn;
    std::unordered_map<std::string, std::set<std::string>> values;
  };
  std::map<std::string, CustomIndex> indexes_;
  std::mutex handlers_mu_;  // guards the handlers_ pointer (copy-on-write)
  std::shared_ptr<const std::vector<std::shared_ptr<const EventHandler>>> handlers_ =
      std::make_shared<const std::vector<std::shared_ptr<const EventHandler>>>();
  int64_t events_ = 0;  // watch events applied (tombstone pruning cadence)
  std::atomic<bool> synced_{false};
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> relists_{0};
  std::atomic<int64_t> last_rv_{0};
  std::string selector_query_;  // "&fieldSelector=...&labelSelector=..." or empty
  client::WatchHandle* watch_ = nullptr;  // guarded by watch_mu_
  std::mutex watch_mu_;
  std::thread thread_;
};

// One informer per resource type, created on first use.
class InformerFactory {
 public:
  InformerFactory(client::RestClient* client, client::RestMapper* mapper) : client_(client), mapper_(mapper) {}
  ~InformerFactory();
  // The informer of (apiVersion, kind), started if new.
  Result<Informer*> For(const std::string& api_version, const std::string& kind);
  Result<Informer*> For(const client::ResourceInfo& resource);
  std::vector<Informer*> All() const;
  void StopAll();
  client::RestMapper* mapper() const { return mapper_; }
  client::RestClient* client() const { return client_; }

 private:
  client::RestClient* client_;
  client::RestMapper* mapper_;
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Informer>> informers_;  // by apiVersion/kind
};

}  // namespace rc::controller
