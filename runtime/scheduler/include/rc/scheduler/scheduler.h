// The pod scheduler component (kube-scheduler's role, inside rcd, leader-elected with the
// controller manager):
//  - watches pods (shared informer); pending pods (no spec.nodeName) whose spec.schedulerName is
//    options.scheduler_name (absent = "default-scheduler") and that are not being deleted or
//    finished are queued; pods naming another scheduler are left alone;
//  - schedules one pod at a time while the manager leads: Algorithm over the Cache (bound pods
//    from the informer plus pods it assumed), binds through a Binder (pods/binding) on a small
//    pool of threads, so the next decision does not wait for the API server;
//  - Events on the pod: Normal "Scheduled" ("Successfully assigned ns/pod to node") after the
//    bind, Warning "FailedScheduling" with kube-scheduler's message, plus the PodScheduled=False
//    condition (reason Unschedulable) in the pod's status;
//  - unschedulable pods wait in a set until a node is added or changes in a way that matters, an
//    assigned pod is deleted, a claim/volume changes, the pod itself changes, or the periodic
//    flush; then they are retried after their back-off (initial..max, doubling per attempt);
//  - a bind failure (409: already bound or being deleted; anything else) drops the assumption and
//    re-queues the pod with back-off.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"
#include "rc/controller/controller_manager.h"
#include "rc/controller/informer.h"
#include "rc/controller/work_queue.h"
#include "rc/scheduler/algorithm.h"
#include "rc/scheduler/cache.h"

namespace rc::scheduler {

// Writes a scheduling decision. Thread-safe.
class Binder {
 public:
  virtual ~Binder() = default;
  // Assigns the pod to the node. kConflict when it is already bound (or being deleted),
  // kNotFound when it is gone; other errors are retried.
  virtual Status Bind(const PodInfo& pod, const std::string& node) = 0;
};

// POST /api/v1/namespaces/{ns}/pods/{name}/binding (a v1 Binding with the pod's uid).
class RestBinder : public Binder {
 public:
  explicit RestBinder(client::RestClient* client) : client_(client) {}
  Status Bind(const PodInfo& pod, const std::string& node) override;

 private:
  client::RestClient* client_;
};

// Records every call; answers with `result` (tests).
class FakeBinder : public Binder {
 public:
  struct Call {
    std::string pod_key, node;
  };
  Status Bind(const PodInfo& pod, const std::string& node) override;
  std::vector<Call> calls() const;
  // The answer for the next calls (default ok).
  void set_result(Status s);

 private:
  mutable std::mutex mu_;
  std::vector<Call> calls_;
  Status result_;
};

struct SchedulerOptions {
  std::string scheduler_name = "default-scheduler";
  AlgorithmOptions algorithm;
  int bind_workers = 8;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
  // Unschedulable pods are retried at least this often even if nothing changed.
  std::chrono::milliseconds unschedulable_flush{30000};
  // Write the PodScheduled=False condition on unschedulable pods (as kube-scheduler).
  bool update_pod_condition = true;
  // null: RestBinder over the client.
  std::unique_ptr<Binder> binder;
};

struct SchedulerStats {
  int64_t scheduled = 0;       // successful binds
  int64_t unschedulable = 0;   // attempts that found no node
  int64_t bind_errors = 0;     // failed binds (conflicts included)
  int64_t attempts = 0;
  int64_t decision_ns_total = 0;  // time spent deciding (filter + score), all attempts
  size_t pending = 0;             // pods waiting (queued, backing off or unschedulable)
  size_t unschedulable_now = 0;
  size_t nodes = 0;
};

class Scheduler {
 public:
  // Registers handlers on the pod, node, PVC and PV informers of `informers` (started if new);
  // events and leadership come from `manager`. Scheduling starts once the caches synced and
  // `manager` leads; Stop() (or the destructor) ends it.
  static Result<std::unique_ptr<Scheduler>> Start(controller::InformerFactory* informers, client::RestClient* client,
                                                  controller::ControllerManager* manager, SchedulerOptions options = {});
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Stop();
  SchedulerStats Stats() const;
  // Prometheus text: rc_scheduler_schedule_attempts_total{result=...}, rc_scheduler_pending_pods,
  // rc_scheduler_decision_seconds_total.
  std::string MetricsText() const;

 private:
  class ClusterView;
  struct Pending {
    PodInfoPtr pod;
    controller::ObjectPtr object;
    int attempts = 0;
    std::chrono::steady_clock::time_point last_attempt{};
    bool unschedulable = false;  // parked until something changes
    std::chrono::steady_clock::time_point parked_at{};
  };

  Scheduler(controller::InformerFactory* informers, client::RestClient* client, controller::ControllerManager* manager,
            SchedulerOptions options);
  Status Init();
  void OnPod(const controller::ObjectPtr& old_obj, const controller::ObjectPtr& obj, bool deleted);
  void OnNode(const controller::ObjectPtr& old_obj, const controller::ObjectPtr& obj, bool deleted);
  void OnVolumeChange();
  // Moves every parked pod (or those `pred` selects) back to the queue after its back-off.
  void MoveUnschedulable(const std::function<bool(const Pending&)>& pred = nullptr);
  void UnparkLocked(const std::string& key, Pending& p);  // back to the queue after its back-off
  void ErasePendingLocked(const std::string& key);
  std::chrono::nanoseconds BackoffLocked(const Pending& p) const;
  bool Ours(const PodInfo& pod) const;
  void Loop();
  void FlushLoop();
  void ScheduleOne(const std::string& key);
  void Bind(PodInfoPtr pod, controller::ObjectPtr object, std::string node);
  void BindLoop();
  void ReportUnschedulable(const PodInfo& pod, const controller::ObjectPtr& object, const std::string& message);

  controller::InformerFactory* informers_;
  client::RestClient* client_;
  controller::ControllerManager* manager_;
  SchedulerOptions options_;
  std::unique_ptr<Binder> binder_;
  controller::EventSink events_;
  controller::Informer* pods_ = nullptr;
  controller::Informer* nodes_ = nullptr;
  controller::Informer* claims_ = nullptr;
  controller::Informer* volumes_ = nullptr;
  controller::Informer* namespaces_ = nullptr;
  std::unique_ptr<ClusterView> view_;
  std::shared_ptr<void> guard_;  // closes the informer handlers on Stop

  Cache cache_;
  Algorithm algorithm_;  // used by the scheduling thread only

  mutable std::mutex mu_;  // guards pending_
  std::unordered_map<std::string, Pending> pending_;
  std::unordered_set<std::string> parked_;  // keys of pending_ entries with unschedulable set
  int64_t move_epoch_ = 0;  // bumped by MoveUnschedulable (an attempt that saw a bump is not parked)
  controller::WorkQueue queue_;

  struct BindTask {
    PodInfoPtr pod;
    controller::ObjectPtr object;
    std::string node;
    std::function<void()> fn;  // other API writes (pod conditions) share the pool
  };
  std::mutex bind_mu_;
  std::condition_variable bind_cv_;
  std::deque<BindTask> bind_tasks_;

  std::atomic<bool> stop_{false};
  std::atomic<int64_t> scheduled_{0}, unschedulable_{0}, bind_errors_{0}, attempts_{0}, decision_ns_{0};
  std::thread loop_, flush_;
  std::vector<std::thread> binders_;
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
};

}  // namespace rc::scheduler
