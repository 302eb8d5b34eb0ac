// ServiceProxy: the node's service proxy. Watches Services and Endpoints through informers and
// keeps one nftables table (ip <table>) equal to the rendering of what they say:
//  - writes nothing until both caches have synced (never a partial ruleset after a restart);
//  - the first write is a full sync (one transaction replacing the table's content); then
//    changes arriving within `sync_window` are coalesced into one incremental transaction that
//    touches only the changed service ports;
//  - a failed transaction leaves the previous ruleset in the kernel; the proxy retries (with
//    backoff) with a full sync;
//  - every `resync_period` the table is read back and compared with what was written; an
//    externally flushed or edited table is healed by a full sync;
//  - Stop() and destruction leave the rules in place (traffic keeps flowing across a restart);
//    Cleanup() deletes the table. No other table is ever touched.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rc/base/status.h"
#include "rc/controller/informer.h"
#include "rc/proxy/model.h"
#include "rc/proxy/nft_programmer.h"
#include "rc/proxy/ruleset.h"

namespace rc::proxy {

struct ServiceProxyOptions {
  std::vector<std::string> node_ips;  // IPv4 addresses NodePorts answer on
  std::string cluster_cidr;           // pod network ("10.244.0.0/16"); sources outside it are
                                      // masqueraded when they reach a ClusterIP. Empty: none.
  bool masquerade_all = false;        // masquerade every service connection (needed on a plain L2
                                      // bridge without br_netfilter, where replies would bypass
                                      // the node; see nodeagent/proxy/README.md)
  std::string table = "rc-proxy";
  std::string netns;                  // netns path to program; empty: the process's own
  std::chrono::milliseconds sync_window{50};
  std::chrono::milliseconds resync_period{30000};
  std::chrono::milliseconds min_retry{100};   // backoff after a failed transaction, doubling
  std::chrono::milliseconds max_retry{5000};
};

struct ServiceProxyStats {
  int64_t full_syncs = 0;
  int64_t incremental_syncs = 0;
  int64_t failed_transactions = 0;
  int64_t heals = 0;  // resyncs that found the table differing and rewrote it
  int64_t resync_checks = 0;
  double last_sync_ms = 0;
  bool programmed = false;  // the table holds the last computed ruleset
};

class ServiceProxy {
 public:
  // `informers` provides the v1 Service and Endpoints informers (started by Start() if new) and
  // must outlive the proxy. Fails on bad options or when the netlink socket cannot be opened.
  static Result<std::unique_ptr<ServiceProxy>> Create(controller::InformerFactory* informers,
                                                      ServiceProxyOptions options);
  ~ServiceProxy();  // Stop(); leaves the rules in place
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  // Registers the handlers and starts the sync thread. Returns at once; nothing is written before
  // both informers have synced.
  [[nodiscard]] Status Start();
  // Stops the sync thread (an in-flight transaction completes). Rules stay.
  void Stop();
  // Deletes the proxy's table (for `rc-agent --cleanup-proxy`). Call after Stop().
  [[nodiscard]] Status Cleanup();
  // The same without a proxy: delete table `table` in netns `netns` ("" = own).
  [[nodiscard]] static Status CleanupTable(const std::string& table, const std::string& netns = "");

  // Blocks until the table holds the ruleset computed from the current caches (or timeout).
  bool WaitForProgrammed(std::chrono::milliseconds timeout);
  ServiceProxyStats stats() const;
  // Failure injection for tests: the next `n` transactions are made to fail in the kernel.
  void InjectFailures(int n) { programmer_->InjectFailures(n); }
  // Forces a resync check now (as if the resync period had elapsed).
  void TriggerResync();

 private:
  ServiceProxy(controller::InformerFactory* informers, ServiceProxyOptions options, RenderOptions render,
               std::vector<uint32_t> node_ips, std::unique_ptr<NftProgrammer> programmer);
  void MarkDirty(const std::string& key);
  void Run();
  // Recomputes the ports of the dirty services into desired_; returns the rendering.
  void Recompute(const std::set<std::string>& keys, bool all);
  bool Program(bool full);

  controller::InformerFactory* informers_;
  ServiceProxyOptions options_;
  RenderOptions render_options_;
  std::unique_ptr<NftProgrammer> programmer_;
  controller::Informer* services_ = nullptr;
  controller::Informer* endpoints_ = nullptr;

  // Sync-thread state.
  DesiredState desired_;
  std::map<std::string, std::vector<std::string>> port_ids_by_service_;  // "ns/name" -> port ids
  Rendered rendered_;              // what desired_ renders to
  // The old renderings (nullopt: did not exist) of the ports changed since the last successful
  // transaction: the `from` side of the next incremental transaction.
  std::map<std::string, std::optional<PortRendering>> pending_old_;
  bool programmed_valid_ = false;  // the kernel holds rendered_ minus pending_old_'s changes

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> dirty_;  // service keys
  bool stop_ = false, started_ = false, resync_now_ = false;
  int64_t generation_ = 0;         // bumps on every change notification
  int64_t programmed_generation_ = -1;
  ServiceProxyStats stats_;
  std::condition_variable programmed_cv_;
  std::thread thread_;
};

}  // namespace rc::proxy
