// Service ClusterIP and NodePort allocation (internal to the API server), Kubernetes' service
// registry semantics: a Service of type ClusterIP/NodePort/LoadBalancer gets spec.clusterIP (and
// spec.clusterIPs mirroring it) from --service-cluster-ip-range unless it asks for one ("None" =
// headless, nothing allocated); NodePort/LoadBalancer ports get spec.ports[i].nodePort from
// --service-node-port-range; ExternalName gets neither. Requested values are honoured if free.
//
// Design: the allocation state lives in the store, next to the Services, as one small
// reservation key per allocated value:
//   /registry/ranges/serviceips/<ip>          value "<namespace>/<name>" of the owner
//   /registry/ranges/servicenodeports/<port>  likewise
// A Service write claims its new values in the SAME store Txn as the Service itself, each with a
// "must not exist" compare (create_revision == 0), and deletes the keys of the values it gives up
// (delete, type change) in that Txn too. Uniqueness therefore holds across threads, across rcd
// restarts and across several rcd sharing one etcd (`--store etcd://`): two writers claiming one
// value cannot both commit, and a Service and its reservations never disagree (no window in
// which an allocation is leaked or a released value is still in use). Kubernetes keeps a bitmap
// in one key (/registry/ranges/serviceips) updated before the Service write and repaired by a
// loop; the per-value keys avoid that second write and its repair window.
//
// The in-memory bitmaps here are only a hint to pick candidates quickly: loaded from the
// reservation keys at start (Repair), updated by this process' own commits, marked while a write
// is in flight (so concurrent creates in one process pick distinct values). A hint that is stale
// because another rcd allocated meanwhile makes the Txn's compare fail: the view is reloaded from
// the reservation keys and another value picked (a taken requested value is a 422). A hint stale because another rcd released a value is corrected by a reload
// from the store before the allocator reports "range is full".
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api_error.h"
#include "json_util.h"
#include "rc/apiserver/registry.h"
#include "rc/base/status.h"
#include "rc/store/store.h"

namespace rc::apiserver {

// An IPv4 service range. Usable addresses exclude the network and broadcast addresses; the first
// usable one (.1 of 10.96.0.0/12) is kept for the `kubernetes` Service: it is never picked
// dynamically but may be requested.
struct ServiceIpRange {
  uint32_t network = 0;  // host byte order
  int prefix = 0;
  std::string text;      // "10.96.0.0/12"
  uint32_t Size() const { return prefix == 0 ? 0 : (1u << (32 - prefix)); }
  bool Contains(uint32_t ip) const;
};

// Parses "a.b.c.d/n" (IPv4, 12 <= n <= 30, host bits zero). kInvalidArgument otherwise.
Result<ServiceIpRange> ParseServiceIpRange(std::string_view cidr);
std::optional<uint32_t> ParseIPv4(std::string_view text);
std::string FormatIPv4(uint32_t ip);

struct PortRange {
  int base = 0;
  int size = 0;
  std::string text;  // "30000-32767"
  bool Contains(int port) const { return port >= base && port < base + size; }
};

// Parses "30000-32767" or "30000+2767" (Kubernetes' two spellings). kInvalidArgument otherwise.
Result<PortRange> ParsePortRange(std::string_view text);

class ServiceAllocator;

// What one Service write claims and gives up, to be added to that write's store Txn. Move-only.
// Destroying a plan that was not Committed() returns its in-flight marks to the pool.
class AllocationPlan {
 public:
  AllocationPlan() = default;
  AllocationPlan(AllocationPlan&& other) noexcept { *this = std::move(other); }
  AllocationPlan& operator=(AllocationPlan&& other) noexcept;
  AllocationPlan(const AllocationPlan&) = delete;
  AllocationPlan& operator=(const AllocationPlan&) = delete;
  ~AllocationPlan();

  // Adds the "must not exist" compares and puts of the claims, the deletes of the releases, and
  // reads of the claimed keys to the failure branch (ClaimLost reads them).
  void AddTo(store::TxnRequest& txn);
  // After a Txn that did not succeed: a 422 if a value the client asked for is taken, true if a
  // value this plan picked is taken (pick again), false if every claim was free (the object's
  // own compare failed).
  ApiResult<bool> ClaimLost(const store::TxnResult& result);
  // After a Txn that succeeded: released values return to the pool.
  void Committed();

 private:
  friend class ServiceAllocator;
  struct Value {
    bool ip = false;  // else a node port
    uint32_t value = 0;
  };
  struct Claim {
    Value v;
    bool requested = false;  // asked for by the client (else picked here)
    std::string field;       // spec.clusterIP, spec.ports[0].nodePort
  };

  ServiceAllocator* allocator_ = nullptr;
  const ResourceInfo* resource_ = nullptr;
  std::string name_;
  std::string owner_;  // "<namespace>/<name>", the value of the reservation keys
  std::vector<Claim> claims_;
  std::vector<Value> releases_;
  std::vector<Value> marked_;  // bits this plan set in the in-memory view
  size_t failure_offset_ = 0;
  bool done_ = false;
};

struct ServiceAllocatorOptions {
  std::string cluster_ip_range = "10.96.0.0/12";
  std::string node_port_range = "30000-32767";
};

class ServiceAllocator {
 public:
  static constexpr std::string_view kIpKeyPrefix = "/registry/ranges/serviceips/";
  static constexpr std::string_view kPortKeyPrefix = "/registry/ranges/servicenodeports/";

  // kInvalidArgument for a bad range.
  static Result<std::unique_ptr<ServiceAllocator>> Create(store::Store* store,
                                                          const ServiceAllocatorOptions& options);

  // True for core/v1 services.
  static bool Handles(const ResourceInfo& r) { return r.group.empty() && r.plural == "services"; }

  // Reconciles the reservation keys with the stored Services (Kubernetes' repair loop, run once
  // at start): a Service holding a value without its key gets it (Services stored before
  // allocation existed), a key whose owner no longer holds the value is deleted; each fix is a
  // Txn conditional on the Service being unchanged, so several rcd may repair at once. Then
  // loads the in-memory view.
  Status Repair();

  // Fills and checks the allocated fields of a Service about to be created (`svc`, defaulted
  // and validated); 422 with field paths for invalid requests, 500 "range is full".
  ApiResult<AllocationPlan> PrepareCreate(const ResourceInfo& r, JsonValue& svc, JsonAlloc& a);
  // The same for an update of `old` into `svc`: clusterIP is immutable (an omitted one keeps the
  // old value, as do omitted nodePorts of unchanged ports); a type change allocates or releases.
  ApiResult<AllocationPlan> PrepareUpdate(const ResourceInfo& r, const JsonValue& old, JsonValue& svc,
                                          JsonAlloc& a);
  // Releases everything `svc` holds (its deletion).
  AllocationPlan PrepareRelease(const ResourceInfo& r, const JsonValue& svc);

  const ServiceIpRange& ip_range() const { return ip_range_; }
  const PortRange& port_range() const { return port_range_; }
  // Values currently marked in the in-memory view (tests).
  size_t MarkedIps();
  size_t MarkedPorts();

 private:
  friend class AllocationPlan;
  ServiceAllocator(store::Store* store, ServiceIpRange ips, PortRange ports);

  ApiResult<AllocationPlan> Prepare(const ResourceInfo& r, const JsonValue* old, JsonValue& svc, JsonAlloc& a);
  static std::string KeyOf(const AllocationPlan::Value& v);
  // Index of `v` in its bitmap, or nullopt if outside the range.
  std::optional<size_t> IndexOf(const AllocationPlan::Value& v) const;
  // Picks a free value and marks it; false if the range is full (after a reload).
  bool PickLocked(bool ip, AllocationPlan& plan, uint32_t& out);
  bool ScanLocked(bool ip, uint32_t& out);
  // Marks `v` unless already marked; remembers it in plan.marked_ if it did.
  void MarkLocked(const AllocationPlan::Value& v, AllocationPlan& plan);
  void UnmarkLocked(const AllocationPlan::Value& v);
  // Rebuilds the bitmaps from the reservation keys plus the marks of writes in flight.
  Status ReloadLocked();

  void Reload();
  void Abort(AllocationPlan& plan);
  void Commit(AllocationPlan& plan);
  void KeepTaken(const AllocationPlan::Value& v, AllocationPlan& plan);

  store::Store* store_;
  ServiceIpRange ip_range_;
  PortRange port_range_;
  std::mutex mu_;
  std::vector<bool> ips_;    // by offset from the network address
  std::vector<bool> ports_;  // by offset from the range base
  std::multiset<std::pair<bool, uint32_t>> in_flight_;  // marks of uncommitted plans
  std::mt19937_64 rng_;
};

}  // namespace rc::apiserver
