// Events as Kubernetes records them (core/v1 Event): reason, message, type, involvedObject, source
// component; a repeat of the same (object, type, reason, message, component) within the cache
// window increments `count` and `lastTimestamp` on the existing Event instead of creating one.
// Writes happen on a background thread; Record never blocks on the API server.
#pragma once

#include <rapidjson/document.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "rc/client/rest_client.h"

namespace rc::controller {

class EventRecorder {
 public:
  EventRecorder(client::RestClient* client, std::string component, std::string host = "");
  ~EventRecorder();
  // involved: the object the event is about (apiVersion, kind, metadata).
  void Record(const rapidjson::Value& involved, const std::string& type, const std::string& reason,
              const std::string& message);
  // Waits until every recorded event has been written (tests, shutdown).
  void Flush();
  int64_t written() const;

 private:
  struct Pending {
    std::string api_version, kind, name, ns, uid, rv;
    std::string type, reason, message, component;
  };
  struct Seen {
    std::string event_name, event_ns;
    int64_t count = 0;
    std::string first_timestamp;
  };
  void Run();
  void Write(const Pending& p);

  client::RestClient* client_;
  std::string component_, host_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<Pending> queue_;
  bool busy_ = false;
  bool stop_ = false;
  int64_t written_ = 0;
  std::map<std::string, Seen> seen_;  // aggregation key -> the Event written
  std::thread thread_;
};

}  // namespace rc::controller
