// An etcd v3-compatible gRPC endpoint on any rc::store::Store.
//
// Serves etcd's KV, Watch, Lease, Maintenance and Cluster services (package etcdserverpb, the
// same method paths and wire format as etcd 3.4), so that the real `etcdctl` (ETCDCTL_API=3),
// clientv3 and benchmark tools work against an rc store. Single member: there is no raft, the
// store is the source of truth; ResponseHeader.raft_term is a constant and the "raft index" is
// the store revision. Auth, membership changes, defragment, snapshot, hash and move-leader
// answer UNIMPLEMENTED. See runtime/etcdserver/README.md.
//
// Threading: gRPC's callback API; blocking store calls run on a private worker pool, so a
// Watch or LeaseKeepAlive stream never pins a thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "rc/base/status.h"
#include "rc/store/store.h"

namespace rc::etcdserver {

// The etcd version reported by Maintenance.Status (etcdctl and clientv3 only look at major/minor).
inline constexpr const char* kEtcdCompatVersion = "3.4.23";

struct EtcdServerOptions {
  std::string listen_address = "127.0.0.1:2379";  // host:port; port 0 picks a free port
  std::string name = "rc";                         // member name (MemberList)
  uint64_t cluster_id = 0;                         // 0: derived from name
  uint64_t member_id = 0;                          // 0: derived from name
  int worker_threads = 0;                          // blocking store calls; 0: 64
  int64_t max_request_bytes = 1536 * 1024;         // like etcd --max-request-bytes
  int max_txn_ops = 128;                           // like etcd --max-txn-ops
  // A watch stream whose undelivered responses exceed this is closed with UNAVAILABLE (clientv3
  // then reconnects and resumes from the last revision it saw).
  size_t max_watch_queue_bytes = 64u << 20;
  // Period of progress notifications for watches created with progress_notify (etcd: 10 min).
  std::chrono::milliseconds progress_notify_interval = std::chrono::minutes(10);
  // How long Shutdown waits for in-flight unary calls before cancelling them.
  std::chrono::milliseconds shutdown_grace = std::chrono::seconds(2);
};

class EtcdServer {
 public:
  // Starts serving `store` (not owned; must outlive the server) on options.listen_address.
  static Result<std::unique_ptr<EtcdServer>> Start(rc::store::Store* store,
                                                   const EtcdServerOptions& options);
  static Result<std::unique_ptr<EtcdServer>> Start(rc::store::Store* store,
                                                   const std::string& listen_address);

  virtual ~EtcdServer() = default;

  // The bound port (the chosen one if the listen address had port 0).
  virtual int port() const = 0;
  // Closes every stream, stops accepting, waits for in-flight calls (up to shutdown_grace, then
  // cancels them) and stops the workers. Idempotent; also done by the destructor.
  virtual void Shutdown() = 0;
};

}  // namespace rc::etcdserver
