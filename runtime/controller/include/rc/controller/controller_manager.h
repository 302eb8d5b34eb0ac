// The controller manager: runs compiled (DSL) reconcilers over shared informers and rate-limited
// work queues, only while this process leads (Lease), with hot replacement of a controller's code.
//
// Contract with compiled controllers (stdlib/controllers/*.rc, rcd --controllers DIR):
//  - reconcile(ctx, obj) is called with the primary object from the cache, only while it exists.
//  - Enqueueing: primary add/update/delete and resync (every `resync`); an owned type's event
//    enqueues the key of its controller ownerReference of the primary kind; `watches T by f`
//    enqueues the keys f returns ("ns/name"); `watches T` without a mapping enqueues T's own key.
//  - Effects (ClusterEffectHost): get/list read the informer caches; writes go to the API server and
//    their replies are fed back into the caches (read-your-writes); a failed write traps the call.
//  - A failed/trapping call is retried with per-key exponential back-off and reported (log,
//    metrics, a Warning Event on the object); other keys and controllers are unaffected.
//  - Replace(): in-flight reconciles finish on the old code; queued keys keep their place; every
//    primary object is enqueued once more.
#pragma once

#include <rapidjson/document.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"
#include "rc/client/rest_mapper.h"
#include "rc/controller/event_recorder.h"
#include "rc/controller/informer.h"
#include "rc/controller/leader_election.h"
#include "rc/controller/work_queue.h"

struct rc_ctx;

namespace rc::controller {

struct TypeRef {
  std::string api_version;  // "apps/v1"
  std::string kind;         // "ReplicaSet"
};

// A compiled controller, as the loader produces it.
struct CompiledController {
  using ReconcileFn = void (*)(rc_ctx*, const rapidjson::Value*);
  using MapperFn = rapidjson::Value* (*)(rc_ctx*, const rapidjson::Value*);
  struct Watch {
    TypeRef type;
    MapperFn mapper = nullptr;  // null: enqueue the watched object's own key
  };
  std::string name;        // "ReplicaSetController"
  std::string origin;      // "stdlib" or the file it came from
  std::string source_hash;
  int64_t loaded_at_unix = 0;
  TypeRef primary;
  std::vector<TypeRef> owns;
  std::vector<Watch> watches;
  int64_t resync_ns = 0;  // 0: the manager's default
  int workers = 2;
  ReconcileFn reconcile = nullptr;
  std::shared_ptr<const void> code;  // keeps the machine code loaded while this version may run
};

struct ControllerInfo {
  std::string name, origin, source_hash, primary;
  std::vector<std::string> owns, watches;  // apiVersion/Kind
  int64_t loaded_at_unix = 0;
  int64_t version = 0;  // 1, 2, ... replacements
  int64_t reconciles = 0, failures = 0, writes = 0;
  int64_t reconcile_ns_total = 0;  // time spent in reconcile calls
  int64_t stuck = 0;               // calls running longer than stuck_after right now
  std::string last_error;
  size_t queue_length = 0;
};

struct ControllerManagerOptions {
  std::string identity;          // leader-election identity and Event source host
  bool leader_elect = true;
  LeaderElectionConfig leader_election;
  int64_t default_resync_ns = int64_t{300} * 1000000000;  // 5m
  int max_creates_per_reconcile = 0;  // 0: no limit
  // A reconcile running longer than this is reported (log, Warning Event ReconcileStuck, metric).
  // Compiled code cannot be pre-empted; the controller's other workers carry on.
  int64_t stuck_after_ns = int64_t{10} * 1000000000;
};

class Controller;

class ControllerManager {
 public:
  ControllerManager(client::RestClient* client, ControllerManagerOptions options);
  ~ControllerManager();

  // Adds a controller, or replaces the running one of the same name (hot reload).
  Status Install(CompiledController controller);
  Status Remove(const std::string& name);
  // Starts leader election (or leads at once without it).
  void Start();
  void Stop();
  bool IsLeader() const;
  std::vector<ControllerInfo> Controllers() const;
  // Prometheus text exposition of the controllers' counters (rcd serves it on /metrics).
  std::string MetricsText() const;

  InformerFactory& informers() { return informers_; }
  client::RestMapper& mapper() { return mapper_; }
  client::RestClient* client() const { return client_; }
  const std::string& identity() const { return options_.identity; }
  // Events with `component` as their source, through the manager's one recorder.
  EventSink events(const std::string& component);
  // Runs `fn` whenever leadership is gained (after controllers are told).
  void OnLeading(std::function<void()> fn);

 private:
  friend class Controller;
  void LeadershipChanged(bool leading);

  client::RestClient* client_;
  ControllerManagerOptions options_;
  client::RestMapper mapper_;
  InformerFactory informers_;
  std::unique_ptr<LeaderElector> elector_;
  std::atomic<bool> leading_{false};
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Controller>> controllers_;
  std::vector<std::unique_ptr<Controller>> retired_;  // removed; informer handlers still point here
  std::unique_ptr<EventRecorder> recorder_;
  std::vector<std::function<void()>> on_leading_;
  bool started_ = false;
  std::thread resync_thread_;
};

}  // namespace rc::controller
