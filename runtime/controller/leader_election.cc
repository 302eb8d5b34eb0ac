#include "rc/controller/leader_election.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "rc/apimachinery/json.h"
#include "rc/base/time.h"

namespace rc::controller {

namespace am = rc::apimachinery;

std::string NowMicroTime() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  time_t secs = static_cast<time_t>(us / 1000000);
  tm t{};
  gmtime_r(&secs, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", t.tm_year + 1900, t.tm_mon + 1, t.tm_mday,
           t.tm_hour, t.tm_min, t.tm_sec, static_cast<long long>(us % 1000000));
  return buf;
}

std::string NowTime() { return FormatRfc3339(NowUnixSeconds()); }

LeaderElector::LeaderElector(client::RestClient* client, LeaderElectionConfig config)
    : client_(client), config_(std::move(config)) {}

LeaderElector::~LeaderElector() { Stop(); }

std::string LeaderElector::LeasePath() const {
  return "/apis/coordination.k8s.io/v1/namespaces/" + config_.lease_namespace + "/leases/" + config_.lease_name;
}

void LeaderElector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaderElector::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (leading_) {
    SetLeading(false);
    if (!config_.release_on_stop) return;
    if (Status s = Release(); !s.ok()) spdlog::warn("leader election: releasing the lease: {}", s.ToString());
  }
}

void LeaderElector::SetLeading(bool leading) {
  if (leading_.exchange(leading) == leading) return;
  if (leading) {
    spdlog::info("leader election: {} acquired lease {}/{}", config_.identity, config_.lease_namespace, config_.lease_name);
    if (config_.on_started_leading) config_.on_started_leading();
  } else {
    spdlog::warn("leader election: {} lost lease {}/{}", config_.identity, config_.lease_namespace, config_.lease_name);
    if (config_.on_stopped_leading) config_.on_stopped_leading();
  }
}

namespace {

std::string LeaseJson(const std::string& ns, const std::string& name, const std::string& rv, const std::string& holder,
                      int duration_s, const std::string& acquire, const std::string& renew, int64_t transitions) {
  rapidjson::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("apiVersion", "coordination.k8s.io/v1", a);
  d.AddMember("kind", "Lease", a);
  rapidjson::Value meta(rapidjson::kObjectType);
  meta.AddMember("name", am::JsonString(name, a), a);
  meta.AddMember("namespace", am::JsonString(ns, a), a);
  if (!rv.empty()) meta.AddMember("resourceVersion", am::JsonString(rv, a), a);
  d.AddMember("metadata", meta, a);
  rapidjson::Value spec(rapidjson::kObjectType);
  spec.AddMember("holderIdentity", am::JsonString(holder, a), a);
  spec.AddMember("leaseDurationSeconds", duration_s, a);
  if (!acquire.empty()) spec.AddMember("acquireTime", am::JsonString(acquire, a), a);
  if (!renew.empty()) spec.AddMember("renewTime", am::JsonString(renew, a), a);
  spec.AddMember("leaseTransitions", transitions, a);
  d.AddMember("spec", spec, a);
  return am::ToJson(d);
}

}  // namespace

Result<bool> LeaderElector::TryAcquireOrRenew() {
  int duration_s = std::max<int>(1, static_cast<int>((config_.lease_duration.count() + 999) / 1000));
  // Each request is bounded so that a whole attempt ends well within the renew deadline: a
  // leader whose API server stalls steps down in time instead of blocking in a read.
  int timeout_ms = std::max<int>(100, static_cast<int>(config_.renew_deadline.count() / 3));
  auto got = client_->Do("GET", LeasePath(), "", "application/json", timeout_ms);
  if (!got.ok()) return got.status();
  auto now = std::chrono::steady_clock::now();  // when we saw the record (client-go: after the GET)
  if (got->status == 404) {
    std::string t = NowMicroTime();
    auto created = client_->Do("POST", "/apis/coordination.k8s.io/v1/namespaces/" + config_.lease_namespace + "/leases",
                               LeaseJson(config_.lease_namespace, config_.lease_name, "", config_.identity, duration_s, t, t, 0),
                               "application/json", timeout_ms);
    if (!created.ok()) return created.status();
    if (created->status == 409) return false;  // someone else created it first
    if (Status s = client::ToStatus(*created); !s.ok()) return s;
    observed_at_ = now;
    return true;
  }
  if (Status s = client::ToStatus(*got); !s.ok()) return s;
  auto doc = am::ParseJson(got->body);
  if (!doc.ok()) return doc.status();
  const rapidjson::Value* spec = am::FindMember(*doc, "spec");
  const rapidjson::Value* meta = am::FindMember(*doc, "metadata");
  std::string holder = spec ? std::string(am::GetStringOr(*spec, "holderIdentity")) : "";
  std::string renew = spec ? std::string(am::GetStringOr(*spec, "renewTime")) : "";
  std::string acquire = spec ? std::string(am::GetStringOr(*spec, "acquireTime")) : "";
  std::string rv = meta ? std::string(am::GetStringOr(*meta, "resourceVersion")) : "";
  int64_t transitions = 0;
  int64_t their_duration_s = duration_s;
  if (spec) {
    if (auto* t = am::FindMember(*spec, "leaseTransitions"); t && t->IsInt64()) transitions = t->GetInt64();
    if (auto* d = am::FindMember(*spec, "leaseDurationSeconds"); d && d->IsInt64()) their_duration_s = d->GetInt64();
  }
  if (holder != observed_holder_ || renew != observed_renew_ || observed_at_ == std::chrono::steady_clock::time_point{}) {
    observed_holder_ = holder;
    observed_renew_ = renew;
    observed_at_ = now;
  }
  observed_rv_ = rv;
  bool mine = holder == config_.identity;
  if (!mine && !holder.empty() && now < observed_at_ + std::chrono::seconds(their_duration_s)) {
    return false;  // held by someone else, not expired on our clock
  }
  std::string t = NowMicroTime();
  if (!mine) {
    acquire = t;
    if (!holder.empty() || transitions > 0) ++transitions;
  }
  auto put = client_->Do("PUT", LeasePath(),
                         LeaseJson(config_.lease_namespace, config_.lease_name, rv, config_.identity, duration_s, acquire, t, transitions),
                         "application/json", timeout_ms);
  if (!put.ok()) return put.status();
  if (put->status == 409) return false;  // lost the race
  if (Status s = client::ToStatus(*put); !s.ok()) return s;
  observed_holder_ = config_.identity;
  observed_renew_ = t;
  observed_at_ = now;
  return true;
}

Status LeaderElector::Release() {
  auto got = client_->Do("GET", LeasePath());
  if (!got.ok()) return got.status();
  if (Status s = client::ToStatus(*got); !s.ok()) return s;
  auto doc = am::ParseJson(got->body);
  if (!doc.ok()) return doc.status();
  const rapidjson::Value* spec = am::FindMember(*doc, "spec");
  if (!spec || am::GetStringOr(*spec, "holderIdentity") != config_.identity) return Status::Ok();
  int64_t transitions = 0;
  if (auto* t = am::FindMember(*spec, "leaseTransitions"); t && t->IsInt64()) transitions = t->GetInt64();
  std::string t = NowMicroTime();
  auto put = client_->Do("PUT", LeasePath(),
                         LeaseJson(config_.lease_namespace, config_.lease_name, std::string(am::GetStringOr(*am::FindMember(*doc, "metadata"), "resourceVersion")), "", 1, t, t, transitions));
  if (!put.ok()) return put.status();
  return client::ToStatus(*put);
}

void LeaderElector::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    lock.unlock();
    // A renewal counts from when it was sent: the lease it wrote expires for others a lease
    // duration after they see it, which is no earlier than that.
    auto attempt_start = std::chrono::steady_clock::now();
    auto r = TryAcquireOrRenew();
    auto now = std::chrono::steady_clock::now();
    if (r.ok() && *r) {
      last_renew_ = attempt_start;
      SetLeading(true);
    } else {
      if (!r.ok()) spdlog::debug("leader election: {}", r.status().ToString());
      // A leader keeps leading through transient errors until the renew deadline passes.
      if (leading_ && (r.ok() || now - last_renew_ > config_.renew_deadline)) SetLeading(false);
    }
    lock.lock();
    cv_.wait_for(lock, config_.retry_period, [this] { return stop_; });
  }
}

}  // namespace rc::controller
