// An rc::store::Store backed by an etcd v3 cluster (or anything speaking its gRPC API, e.g.
// rc-etcd), so several rcd processes can share one replicated store. Target rc_store_etcd
// (rc::store_etcd); rc_store itself does not depend on gRPC.
//
// Mapping (details in runtime/store/README.md, "The etcd store"):
// - Range/Put/DeleteRange/Txn/Compact are the KV RPCs; revisions are etcd's revisions.
// - Watch is one etcd watch stream per Store watch, created with prev_kv. History in
//   [start, current] has reached the sink when Watch returns. If the stream breaks (endpoint
//   down, failover), the watch is re-created on the next endpoint from the revision after the
//   last delivered one, so delivery stays gap-free and duplicate-free; if that revision was
//   compacted meanwhile, the sink gets OnClosed(kCompacted) and no more events.
// - Leases are etcd leases; LeaseKeepAlive is one keep-alive round trip.
// - Errors: etcd's "compacted" / "future revision" -> kCompacted / kFutureRevision, lease not
//   found -> kNotFound, lease exists -> kAlreadyExists, invalid requests -> kInvalidArgument,
//   transport failures and timeouts -> kUnavailable.
// Differences from the in-process stores: etcd rejects a txn whose writes overlap (a put inside
//   a deleted range, two puts of one key) with kInvalidArgument; CurrentRevision(),
//   CompactRevision() and Leases() cannot fail and return the last known value / an empty list
//   when no endpoint answers.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "rc/base/status.h"
#include "rc/store/store.h"

namespace rc::store {

struct EtcdStoreOptions {
  // host:port of each etcd member (client URLs without scheme), e.g. {"10.0.0.1:2379", ...}.
  // Requests go to one endpoint; on a transport failure the next one is tried.
  std::vector<std::string> endpoints;
  // How long to wait for a connection to an endpoint before trying the next one; Open fails
  // with kUnavailable if no endpoint answers within it.
  std::chrono::milliseconds dial_timeout = std::chrono::seconds(5);
  // Deadline of each unary request (also bounds the whole retry loop of a read).
  std::chrono::milliseconds request_timeout = std::chrono::seconds(10);
  // Upper bound of the pause between reconnect attempts of a broken watch stream.
  std::chrono::milliseconds max_reconnect_backoff = std::chrono::seconds(1);
};

// Parses "etcd://host:port[,host:port...]" (the scheme is optional) into endpoints.
Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view spec);

// Connects to the cluster (one Status round trip within dial_timeout) and returns the store.
// Fails with kInvalidArgument without endpoints, kUnavailable if none answers.
Result<std::unique_ptr<Store>> OpenEtcdStore(const EtcdStoreOptions& options);

}  // namespace rc::store
