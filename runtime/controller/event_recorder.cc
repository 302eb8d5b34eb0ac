#include "rc/controller/event_recorder.h"

#include <spdlog/spdlog.h>

#include <random>

#include "rc/apimachinery/json.h"
#include "rc/controller/informer.h"
#include "rc/controller/leader_election.h"

namespace rc::controller {

namespace am = rc::apimachinery;

EventRecorder::EventRecorder(client::RestClient* client, std::string component, std::string host)
    : client_(client), component_(std::move(component)), host_(std::move(host)) {
  thread_ = std::thread([this] { Run(); });
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void EventRecorder::Record(const rapidjson::Value& involved, const std::string& type, const std::string& reason,
                           const std::string& message) {
  if (!involved.IsObject()) return;
  Pending p;
  p.api_version = std::string(am::GetStringOr(involved, "apiVersion"));
  p.kind = std::string(am::GetStringOr(involved, "kind"));
  p.name = std::string(MetaString(involved, "name"));
  p.ns = std::string(MetaString(involved, "namespace"));
  p.uid = std::string(MetaString(involved, "uid"));
  p.rv = std::string(MetaString(involved, "resourceVersion"));
  p.type = type.empty() ? "Normal" : type;
  p.reason = reason;
  p.message = message.size() > 1024 ? message.substr(0, 1024) : message;
  p.component = component_;
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  queue_.push_back(std::move(p));
  cv_.notify_one();
}

void EventRecorder::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait_for(lock, std::chrono::seconds(10), [this] { return queue_.empty() && !busy_; });
}

int64_t EventRecorder::written() const {
  std::lock_guard<std::mutex> lock(const_cast<std::mutex&>(mu_));
  return written_;
}

void EventRecorder::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping with nothing left
    Pending p = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Write(p);
    lock.lock();
    busy_ = false;
    ++written_;
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

void EventRecorder::Write(const Pending& p) {
  std::string event_ns = p.ns.empty() ? "default" : p.ns;
  std::string agg = p.uid + '\0' + p.kind + '\0' + p.name + '\0' + p.type + '\0' + p.reason + '\0' + p.message + '\0' + p.component;
  std::string now = NowTime();
  Seen* seen = nullptr;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = seen_.find(agg); it != seen_.end()) seen = &it->second;
  }
  if (seen) {
    // A repeat: bump count and lastTimestamp on the Event we wrote.
    int64_t count = seen->count + 1;
    std::string patch = "{\"count\":" + std::to_string(count) + ",\"lastTimestamp\":\"" + now + "\"}";
    auto r = client_->Do("PATCH", "/api/v1/namespaces/" + seen->event_ns + "/events/" + seen->event_name, patch,
                         "application/merge-patch+json");
    if (r.ok() && client::ToStatus(*r).ok()) {
      seen->count = count;
      return;
    }
    // The Event is gone (deleted, expired): write a new one.
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[20];
  snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  std::string event_name = (p.name.empty() ? std::string("event") : p.name) + "." + suffix;
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  auto str = [&](const std::string& s) { return am::JsonString(s, a); };
  d.AddMember("apiVersion", "v1", a);
  d.AddMember("kind", "Event", a);
  rapidjson::Value meta(rapidjson::kObjectType);
  meta.AddMember("name", str(event_name), a);
  meta.AddMember("namespace", str(event_ns), a);
  d.AddMember("metadata", meta, a);
  rapidjson::Value inv(rapidjson::kObjectType);
  inv.AddMember("apiVersion", str(p.api_version), a);
  inv.AddMember("kind", str(p.kind), a);
  inv.AddMember("name", str(p.name), a);
  if (!p.ns.empty()) inv.AddMember("namespace", str(p.ns), a);
  if (!p.uid.empty()) inv.AddMember("uid", str(p.uid), a);
  if (!p.rv.empty()) inv.AddMember("resourceVersion", str(p.rv), a);
  d.AddMember("involvedObject", inv, a);
  d.AddMember("reason", str(p.reason), a);
  d.AddMember("message", str(p.message), a);
  rapidjson::Value source(rapidjson::kObjectType);
  source.AddMember("component", str(p.component), a);
  if (!host_.empty()) source.AddMember("host", str(host_), a);
  d.AddMember("source", source, a);
  d.AddMember("firstTimestamp", str(now), a);
  d.AddMember("lastTimestamp", str(now), a);
  d.AddMember("count", 1, a);
  d.AddMember("type", str(p.type), a);
  d.AddMember("reportingComponent", str(p.component), a);
  d.AddMember("reportingInstance", str(host_.empty() ? p.component : host_), a);
  auto r = client_->Do("POST", "/api/v1/namespaces/" + event_ns + "/events", am::ToJson(d));
  Status s = r.ok() ? client::ToStatus(*r) : r.status();
  if (!s.ok()) {
    spdlog::debug("event {} {} on {}/{}: {}", p.reason, p.type, p.kind, p.name, s.ToString());
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (seen_.size() > 4096) seen_.clear();  // bounded aggregation cache, like client-go's LRU
  seen_[agg] = Seen{event_name, event_ns, 1, now};
}

}  // namespace rc::controller
