// Events as Kubernetes records them (core/v1 Event): reason, message, type, involvedObject, source
// component; a repeat of the same (object, type, reason, message, component) within the cache
// window increments `count` and `lastTimestamp` on the existing Event instead of creating one.
// Writes happen on background threads; Record never blocks on the API server. Events of one
// namespace are written in the order they were recorded (one writer per namespace shard), so a
// chain like ScalingReplicaSet -> SuccessfulCreate keeps its order across controllers. Like client-go's
// broadcaster, events beyond a bounded backlog are dropped (and counted), never queued without
// limit.
#pragma once

#include <rapidjson/document.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "rc/client/rest_client.h"

namespace rc::controller {

class EventRecorder;

// Events recorded as one source component (a controller's name) through a shared recorder.
struct EventSink {
  EventRecorder* recorder;
  std::string component;
  void Record(const rapidjson::Value& involved, const std::string& type, const std::string& reason,
              const std::string& message) const;
};

class EventRecorder {
 public:
  EventRecorder(client::RestClient* client, std::string component, std::string host = "", int writers = 4,
                size_t max_backlog = 10000);
  ~EventRecorder();
  // involved: the object the event is about (apiVersion, kind, metadata).
  // component: the source (controller) name; empty = the recorder's own.
  void Record(const rapidjson::Value& involved, const std::string& type, const std::string& reason,
              const std::string& message, const std::string& component = "");
  // Waits until every recorded event has been written (tests, shutdown).
  void Flush();
  int64_t written() const;
  int64_t dropped() const;

 private:
  struct Pending {
    std::string api_version, kind, name, ns, uid, rv;
    std::string type, reason, message, component;
    std::string AggregationKey() const;
  };
  struct Seen {
    std::string event_name, event_ns;
    int64_t count = 0;
  };
  // Events with the same aggregation key go to the same shard, so one thread owns their state.
  struct Shard {
    std::deque<Pending> queue;
    std::map<std::string, Seen> seen;  // aggregation key -> the Event written
    bool busy = false;
  };
  void Run(size_t shard);
  void Write(Shard& shard, const Pending& p);

  client::RestClient* client_;
  std::string component_, host_;
  size_t max_backlog_;
  mutable std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::vector<Shard> shards_;
  size_t queued_ = 0;
  bool stop_ = false;
  int64_t written_ = 0;
  int64_t dropped_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace rc::controller
