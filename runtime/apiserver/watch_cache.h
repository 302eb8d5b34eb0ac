// Watch fan-out (internal to the API server). One store watch per resource type feeds a
// window of recent events; every HTTP watch of that type is served from it, and each event is
// encoded once per wire variant and shared by all watchers that receive it.
//
// A store watch can end (WatchSink::OnClosed: the etcd store when a broken stream would have to
// resume from a compacted revision). Like Kubernetes' watch cache, the HTTP watches it fed then
// end with an ERROR event carrying a 410 Expired Status (clients re-list), and the cache starts
// over: a fresh store watch from the current revision with an empty window (retried every tick
// until the store accepts it; meanwhile new watches use a private store watch).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api_error.h"
#include "json_util.h"
#include "object_storage.h"
#include "rc/apiserver/http_server.h"
#include "rc/apiserver/registry.h"
#include "rc/store/store.h"

namespace rc::apiserver {

enum class WireFormat { kObject, kTable };

// Renders one object as a watch-event payload in the Table format (the object JSON has its
// resourceVersion already).
using TableRenderer = std::function<std::string(const ResourceInfo&, const JsonValue& object,
                                                int64_t revision)>;

struct WatchRequest {
  std::string ns;  // empty = all namespaces
  ListFilter filter;
  WireFormat format = WireFormat::kObject;
  bool bookmarks = false;
  int64_t timeout_seconds = 0;  // 0 = server default
  // "" = current state as ADDED events, then changes; otherwise changes after this revision.
  std::string resource_version;
};

class WatchEventData;
class Watcher;
class ResourceWatchCache;

class WatchHub {
 public:
  WatchHub(store::Store* store, const ResourceRegistry* registry, TableRenderer table_renderer,
           size_t window_events, int bookmark_interval_seconds, int default_timeout_seconds);
  ~WatchHub();

  // Starts one store watch per resource type.
  Status Start();
  // Cancels the store watches and ends every HTTP watch (idempotent).
  void Stop();

  // Serves a watch on `stream` until the client leaves, the timeout passes or the hub stops.
  // On error (e.g. a bad resourceVersion) returns it before anything is streamed.
  std::optional<ApiError> Serve(const ResourceInfo& r, const WatchRequest& request,
                                std::shared_ptr<HttpStream> stream);

  // Starts the watch cache of a resource installed after Start (idempotent).
  Status AddResource(const ResourceInfo* r);
  // `r` was replaced or removed from the registry: its watchers keep streaming; its store watch
  // stops when the last of them has gone (new watches of `r` use a private store watch). The
  // cache object stays (in-flight requests may still hold `r`).
  void RetireResource(const ResourceInfo* r);
  // Number of live HTTP watchers (for metrics and tests).
  size_t watcher_count() const;

 private:
  friend class ResourceWatchCache;
  // Work for the dispatcher thread, in order: events of a cache's store watch, the end of that
  // watch, or another attempt to re-establish it.
  struct QueuedWork {
    ResourceWatchCache* cache = nullptr;
    std::vector<store::Event> events;
    std::optional<Status> closed;  // set: the store ended the watch with this reason
    bool restart = false;
  };
  void DispatchLoop();
  void TickLoop();
  void StopRetiredCaches();
  void RestartClosedCaches();

  store::Store* store_;
  const ResourceRegistry* registry_;
  TableRenderer table_renderer_;
  size_t window_events_;
  int bookmark_interval_seconds_;
  int default_timeout_seconds_;
  std::mutex caches_mu_;  // caches_ grows while serving (installed resources)
  std::map<const ResourceInfo*, std::unique_ptr<ResourceWatchCache>> caches_;
  std::set<ResourceWatchCache*> retired_;  // retired caches whose store watch still runs

  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::deque<QueuedWork> queue_;
  std::atomic<bool> stopping_{false};
  std::thread dispatcher_;
  std::thread ticker_;
  mutable std::mutex all_mu_;
  std::vector<std::shared_ptr<Watcher>> all_;  // every watcher, for timeouts and bookmarks
  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
};

}  // namespace rc::apiserver
