#include "rc/controller/event_recorder.h"

#include <spdlog/spdlog.h>

#include <random>

#include "rc/apimachinery/json.h"
#include "rc/controller/informer.h"
#include "rc/controller/leader_election.h"

namespace rc::controller {

namespace am = rc::apimachinery;

EventRecorder::EventRecorder(client::RestClient* client, std::string component, std::string host, int writers,
                             size_t max_backlog)
    : client_(client), component_(std::move(component)), host_(std::move(host)), max_backlog_(max_backlog) {
  shards_.resize(std::max(1, writers));
  for (size_t i = 0; i < shards_.size(); ++i) threads_.emplace_back([this, i] { Run(i); });
}

EventRecorder::~EventRecorder() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
}

std::string EventRecorder::Pending::AggregationKey() const {
  return uid + '\0' + kind + '\0' + ns + '\0' + name + '\0' + type + '\0' + reason + '\0' + message + '\0' + component;
}

void EventSink::Record(const rapidjson::Value& involved, const std::string& type, const std::string& reason,
                       const std::string& message) const {
  recorder->Record(involved, type, reason, message, component);
}

void EventRecorder::Record(const rapidjson::Value& involved, const std::string& type, const std::string& reason,
                           const std::string& message, const std::string& component) {
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
  p.component = component.empty() ? component_ : component;
  // By namespace: keeps one namespace's events in order, and equal aggregation keys (which
  // include the namespace) on one shard, whose thread alone owns their state.
  size_t shard = std::hash<std::string>{}(p.ns) % shards_.size();
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  if (queued_ >= max_backlog_) {
    if (dropped_++ % 1000 == 0) spdlog::warn("events of {}: backlog full, dropping ({} so far)", component_, dropped_);
    return;
  }
  shards_[shard].queue.push_back(std::move(p));
  ++queued_;
  cv_.notify_all();
}

void EventRecorder::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  idle_cv_.wait_for(lock, std::chrono::seconds(10), [this] {
    if (queued_ > 0) return false;
    for (auto& s : shards_) if (s.busy) return false;
    return true;
  });
}

int64_t EventRecorder::written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return written_;
}

int64_t EventRecorder::dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return dropped_;
}

void EventRecorder::Run(size_t index) {
  Shard& shard = shards_[index];
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stop_ || !shard.queue.empty(); });
    if (shard.queue.empty()) break;  // stopping with nothing left
    Pending p = std::move(shard.queue.front());
    shard.queue.pop_front();
    --queued_;
    shard.busy = true;
    lock.unlock();
    Write(shard, p);  // shard.seen is touched by this thread only
    lock.lock();
    shard.busy = false;
    ++written_;
    idle_cv_.notify_all();
  }
}

void EventRecorder::Write(Shard& shard, const Pending& p) {
  std::string event_ns = p.ns.empty() ? "default" : p.ns;
  std::string agg = p.AggregationKey();
  std::string now = NowTime();
  Seen* seen = nullptr;
  if (auto it = shard.seen.find(agg); it != shard.seen.end()) seen = &it->second;
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
  if (shard.seen.size() > 4096) shard.seen.clear();  // bounded aggregation cache, like client-go's LRU
  shard.seen[agg] = Seen{event_name, event_ns, 1};
}

}  // namespace rc::controller
