#include "rc/proxy/service_proxy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>

namespace rc::proxy {

using Clock = std::chrono::steady_clock;

Result<std::unique_ptr<ServiceProxy>> ServiceProxy::Create(controller::InformerFactory* informers,
                                                           ServiceProxyOptions options) {
  RenderOptions render;
  render.masquerade_all = options.masquerade_all;
  if (!options.cluster_cidr.empty()) {
    auto cidr = ParseCidr(options.cluster_cidr);
    if (!cidr.ok()) return cidr.status();
    render.cluster_cidr = *cidr;
  }
  std::vector<uint32_t> node_ips;
  for (const auto& ip : options.node_ips) {
    auto parsed = ParseIPv4(ip);
    if (!parsed.ok()) return parsed.status();
    node_ips.push_back(*parsed);
  }
  std::sort(node_ips.begin(), node_ips.end());
  node_ips.erase(std::unique(node_ips.begin(), node_ips.end()), node_ips.end());
  if (options.table.empty()) return Status::InvalidArgument("empty table name");
  auto programmer = NftProgrammer::Open({options.table, options.netns});
  if (!programmer.ok()) return programmer.status();
  return std::unique_ptr<ServiceProxy>(
      new ServiceProxy(informers, std::move(options), render, std::move(node_ips), std::move(*programmer)));
}

ServiceProxy::ServiceProxy(controller::InformerFactory* informers, ServiceProxyOptions options, RenderOptions render,
                           std::vector<uint32_t> node_ips, std::unique_ptr<NftProgrammer> programmer)
    : informers_(informers),
      options_(std::move(options)),
      render_options_(render),
      programmer_(std::move(programmer)) {
  desired_.node_ips = std::move(node_ips);
  DesiredState shared;
  shared.node_ips = desired_.node_ips;
  rendered_ = Render(shared, render_options_);
}

ServiceProxy::~ServiceProxy() { Stop(); }

Status ServiceProxy::Start() {
  {
    std::lock_guard lock(mu_);
    if (started_) return Status::Ok();
    started_ = true;
  }
  auto services = informers_->For("v1", "Service");
  if (!services.ok()) return services.status();
  auto endpoints = informers_->For("v1", "Endpoints");
  if (!endpoints.ok()) return endpoints.status();
  services_ = *services;
  endpoints_ = *endpoints;
  controller::EventHandler h;
  h.on_add = [this](const controller::ObjectPtr& o) { MarkDirty(controller::KeyOf(*o)); };
  h.on_update = [this](const controller::ObjectPtr&, const controller::ObjectPtr& o) {
    MarkDirty(controller::KeyOf(*o));
  };
  h.on_delete = [this](const controller::ObjectPtr& o) { MarkDirty(controller::KeyOf(*o)); };
  services_->AddHandler(h);
  endpoints_->AddHandler(h);
  thread_ = std::thread([this] { Run(); });
  return Status::Ok();
}

void ServiceProxy::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  programmed_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Status ServiceProxy::Cleanup() { return programmer_->DeleteTable(); }

Status ServiceProxy::CleanupTable(const std::string& table, const std::string& netns) {
  auto programmer = NftProgrammer::Open({table, netns});
  if (!programmer.ok()) return programmer.status();
  return (*programmer)->DeleteTable();
}

void ServiceProxy::MarkDirty(const std::string& key) {
  {
    std::lock_guard lock(mu_);
    dirty_.insert(key);
    ++generation_;
  }
  cv_.notify_all();
}

void ServiceProxy::TriggerResync() {
  {
    std::lock_guard lock(mu_);
    resync_now_ = true;
  }
  cv_.notify_all();
}

bool ServiceProxy::WaitForProgrammed(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  int64_t want = generation_;
  return programmed_cv_.wait_for(lock, timeout, [&] {
    return stop_ || (stats_.programmed && programmed_generation_ >= want && dirty_.empty());
  }) && !stop_;
}

ServiceProxyStats ServiceProxy::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void ServiceProxy::Recompute(const std::set<std::string>& keys, bool all) {
  std::set<std::string> todo = keys;
  if (all) {
    for (const auto& k : services_->Keys()) todo.insert(k);
    for (const auto& [k, ids] : port_ids_by_service_) todo.insert(k);
  }
  for (const auto& key : todo) {
    auto& ids = port_ids_by_service_[key];
    std::set<std::string> old_ids(ids.begin(), ids.end());
    ids.clear();
    std::vector<ServicePort> ports;
    if (auto svc = services_->Get(key)) {
      auto ep = endpoints_->Get(key);
      ports = PortsOf(*svc, ep ? ep.get() : nullptr);
    }
    std::set<std::string> new_ids;
    for (auto& p : ports) {
      std::string id = p.Id();
      if (!new_ids.insert(id).second) continue;  // duplicate port in the spec: first wins
      ids.push_back(id);
      auto it = desired_.ports.find(id);
      if (it != desired_.ports.end() && it->second == p) continue;
      PortRendering r = RenderPort(p, render_options_);
      auto rit = rendered_.ports.find(id);
      if (!pending_old_.count(id)) {
        pending_old_[id] = rit == rendered_.ports.end() ? std::nullopt : std::optional<PortRendering>(rit->second);
      }
      rendered_.ports[id] = std::move(r);
      desired_.ports[id] = std::move(p);
    }
    for (const auto& id : old_ids) {
      if (new_ids.count(id)) continue;
      auto rit = rendered_.ports.find(id);
      if (rit == rendered_.ports.end()) continue;
      if (!pending_old_.count(id)) pending_old_[id] = rit->second;
      rendered_.ports.erase(rit);
      desired_.ports.erase(id);
    }
    if (ids.empty()) port_ids_by_service_.erase(key);
  }
}

bool ServiceProxy::Program(bool full) {
  auto start = Clock::now();
  Status s;
  if (full || !programmed_valid_) {
    s = programmer_->ApplyFull(rendered_);
    full = true;
  } else if (!pending_old_.empty()) {
    Rendered from, to;
    for (const auto& [id, old] : pending_old_) {
      if (old) from.ports.emplace(id, *old);
      auto it = rendered_.ports.find(id);
      if (it != rendered_.ports.end()) to.ports.emplace(id, it->second);
    }
    s = programmer_->ApplyDelta(from, to);
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  std::lock_guard lock(mu_);
  if (!s.ok()) {
    ++stats_.failed_transactions;
    stats_.programmed = false;
    programmed_valid_ = false;
    spdlog::warn("service proxy: transaction failed (the previous ruleset stays): {}", s.ToString());
    return false;
  }
  pending_old_.clear();
  programmed_valid_ = true;
  stats_.programmed = true;
  stats_.last_sync_ms = ms;
  ++(full ? stats_.full_syncs : stats_.incremental_syncs);
  return true;
}

void ServiceProxy::Run() {
  // Nothing is written before both caches hold a complete list.
  while (!services_->WaitForSync(100) || !endpoints_->WaitForSync(100)) {
    std::lock_guard lock(mu_);
    if (stop_) return;
  }
  std::chrono::milliseconds backoff = options_.min_retry;
  auto next_resync = Clock::now() + options_.resync_period;
  std::optional<Clock::time_point> retry_at;
  bool first = true;
  for (;;) {
    std::set<std::string> keys;
    int64_t gen = 0;
    bool resync = false;
    {
      std::unique_lock lock(mu_);
      if (!first) {
        auto deadline = retry_at ? std::min(*retry_at, next_resync) : next_resync;
        cv_.wait_until(lock, deadline, [&] { return stop_ || !dirty_.empty() || resync_now_; });
        if (stop_) return;
        if (!dirty_.empty()) {
          // Coalesce: changes arriving within the window go into the same transaction.
          lock.unlock();
          std::this_thread::sleep_for(options_.sync_window);
          lock.lock();
          if (stop_) return;
        }
      }
      keys.swap(dirty_);
      gen = generation_;
      resync = resync_now_ || Clock::now() >= next_resync;
      resync_now_ = false;
    }
    bool due_retry = retry_at && Clock::now() >= *retry_at;
    if (first || !keys.empty()) Recompute(keys, first);
    bool ok = true;
    bool attempted = false;
    if (first || !keys.empty() || due_retry || !programmed_valid_) {
      if (first || !keys.empty() || due_retry || !retry_at) {
        ok = Program(first || !programmed_valid_);
        attempted = true;
      }
    }
    first = false;
    if (attempted) {
      if (ok) {
        retry_at.reset();
        backoff = options_.min_retry;
      } else {
        retry_at = Clock::now() + backoff;
        backoff = std::min(backoff * 2, options_.max_retry);
      }
    }
    if (resync) {
      next_resync = Clock::now() + options_.resync_period;
      if (programmed_valid_ && pending_old_.empty()) {
        auto got = programmer_->ReadFingerprint();
        {
          std::lock_guard lock(mu_);
          ++stats_.resync_checks;
        }
        if (!got.ok() || !(*got == ExpectedFingerprint(rendered_))) {
          spdlog::warn("service proxy: table {} differs from the last write ({}), rewriting it", options_.table,
                       got.ok() ? got->Summary() : got.status().ToString());
          {
            std::lock_guard lock(mu_);
            ++stats_.heals;
          }
          if (!Program(true)) {
            retry_at = Clock::now() + backoff;
            ok = false;
          }
        }
      }
    }
    std::lock_guard lock(mu_);
    if (programmed_valid_ && pending_old_.empty()) {
      programmed_generation_ = std::max(programmed_generation_, gen);
      programmed_cv_.notify_all();
    }
  }
}

}  // namespace rc::proxy
