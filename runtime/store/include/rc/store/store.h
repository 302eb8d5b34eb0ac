// The Store interface: a key-value store with etcd v3 semantics.
//
// Contract (shared by every implementation and checked by tests/store/store_contract_test.cc):
// - One cluster-wide revision, starting at 1 for an empty store (like etcd). Every write
//   (Put, a DeleteRange that deletes something, a Txn with at least one write, a lease
//   revoke/expiry that deletes keys) increments it by exactly one. Reads never do.
// - Each key carries create_revision (revision of the put that created its current
//   generation), mod_revision (revision of its last put) and version (puts since creation,
//   1 after creation; a delete resets the key).
// - Ranges: `range_end` empty = the single key `key`; range_end == "\0" (one NUL byte) = every
//   key >= key; otherwise the half-open interval [key, range_end). Use PrefixEnd(prefix) for a
//   prefix. Reads at an older revision see the store as it was then; a revision older than the
//   compaction revision fails with kCompacted, one newer than the current with kFutureRevision.
// - Watch delivers every change in [start_revision, ...) for the range, in revision order,
//   without gaps or duplicates, with the previous value when it still exists.
// - Durability (the RocksDB store): a write returns only after it is synced to the WAL.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "rc/base/status.h"

namespace rc::store {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;  // 0 = no lease
};

// Returns the smallest key greater than every key with `prefix` ("\0" if none exists).
std::string PrefixEnd(std::string_view prefix);

struct RangeOptions {
  std::string range_end;  // see the range convention above
  int64_t revision = 0;   // 0 = current revision
  int64_t limit = 0;      // 0 = unlimited
  bool keys_only = false; // kvs without values
  bool count_only = false;// no kvs, only count
};

struct RangeResult {
  std::vector<KeyValue> kvs;  // sorted by key
  int64_t count = 0;          // number of keys in range (ignores limit)
  bool more = false;          // true iff limit cut the result short
  int64_t revision = 0;       // store revision the read was served at (the header revision)
};

struct PutResult {
  int64_t revision = 0;
  std::optional<KeyValue> prev_kv;  // set iff the key existed (and prev_kv was requested)
};

struct DeleteResult {
  int64_t revision = 0;  // store revision after the delete
  int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs;  // filled iff prev_kv was requested
};

struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  std::string range_end;  // empty: only `key`; else every key in the range must satisfy it
  Target target = Target::kMod;
  Result result = Result::kEqual;
  int64_t number = 0;     // for kVersion, kCreate, kMod, kLease; a missing key has 0 for all
  std::string value;      // for kValue; a missing key never satisfies a value compare
};

struct RequestOp {
  enum class Type { kRange, kPut, kDeleteRange };
  Type type = Type::kRange;
  std::string key;
  std::string value;     // kPut
  int64_t lease = 0;     // kPut
  bool prev_kv = false;  // kPut, kDeleteRange
  RangeOptions range;    // kRange (revision must be 0 inside a Txn); range_end for kDeleteRange

  static RequestOp Get(std::string key, RangeOptions options = {});
  static RequestOp Put(std::string key, std::string value, int64_t lease = 0);
  static RequestOp Delete(std::string key, std::string range_end = {});
};

struct ResponseOp {
  RequestOp::Type type = RequestOp::Type::kRange;
  RangeResult range;    // kRange
  PutResult put;        // kPut
  DeleteResult del;     // kDeleteRange
};

// If every compare holds, runs `success`, else `failure`; atomically, as one revision.
// Ops in one branch see the effects of earlier ops of the same branch.
struct TxnRequest {
  std::vector<Compare> compare;
  std::vector<RequestOp> success;
  std::vector<RequestOp> failure;
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;  // store revision after the txn
  std::vector<ResponseOp> responses;
};

struct Event {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // For kDelete: key and mod_revision (= the delete's revision) only.
  KeyValue kv;
  std::optional<KeyValue> prev_kv;  // the key's value before this event, if it existed
};

// Receives the events of one watch. Calls for one watch are never concurrent and arrive in
// revision order. Implementations must return quickly and must not call back into the Store
// (queue the work instead): they run on the store's commit path.
class WatchSink {
 public:
  virtual ~WatchSink() = default;
  // All events of one or more consecutive revisions, in order.
  virtual void OnEvents(std::span<const Event> events) = 0;
  // The store ended the watch; no call follows. Only remote stores do this (the etcd store:
  // kCompacted when a broken stream had to resume from a revision compacted meanwhile; the
  // consumer re-reads and watches again). The in-process stores never call it.
  virtual void OnClosed(const Status& reason) {}
};

// Live while held; destroying it cancels the watch. After the destructor returns, the sink is
// never called again.
class WatchHandle {
 public:
  virtual ~WatchHandle() = default;
};

struct LeaseInfo {
  int64_t id = 0;
  int64_t granted_ttl = 0;    // seconds
  int64_t remaining_ttl = 0;  // seconds, -1 if expired
  std::vector<std::string> keys;
};

struct StoreStatus {
  int64_t revision = 0;
  int64_t compact_revision = 0;
  int64_t db_size_bytes = 0;
  int64_t key_count = 0;
};

class Store {
 public:
  virtual ~Store() = default;

  virtual Result<RangeResult> Range(const std::string& key, const RangeOptions& options) = 0;
  // Fails with kNotFound if `lease` is non-zero and not granted.
  virtual Result<PutResult> Put(const std::string& key, const std::string& value, int64_t lease = 0,
                                bool prev_kv = false) = 0;
  virtual Result<DeleteResult> DeleteRange(const std::string& key, const std::string& range_end,
                                           bool prev_kv = false) = 0;
  virtual Result<TxnResult> Txn(const TxnRequest& request) = 0;

  // Discards history before `revision`; reads and watches at an older revision then fail with
  // kCompacted. Fails with kCompacted if already compacted at or past it, kFutureRevision if
  // revision > current.
  virtual Status Compact(int64_t revision) = 0;

  // Starts a watch on [key, range_end) (range convention above) from start_revision (0 = only
  // future changes). Events in [start_revision, current] are delivered before this returns, then
  // live ones. Fails with kCompacted if start_revision <= compaction revision (the message names
  // the compaction revision; CompactRevision() gives it).
  virtual Result<std::unique_ptr<WatchHandle>> Watch(const std::string& key,
                                                     const std::string& range_end,
                                                     int64_t start_revision, WatchSink* sink) = 0;

  // Leases: keys put with a lease are deleted (as one revision) when it is revoked or expires.
  // id 0 = choose one. ttl in seconds.
  virtual Result<LeaseInfo> LeaseGrant(int64_t id, int64_t ttl) = 0;
  virtual Status LeaseRevoke(int64_t id) = 0;
  // Renews the lease; returns its TTL. kNotFound if unknown or expired.
  virtual Result<int64_t> LeaseKeepAlive(int64_t id) = 0;
  virtual Result<LeaseInfo> LeaseTimeToLive(int64_t id, bool with_keys) = 0;
  virtual std::vector<int64_t> Leases() = 0;

  virtual int64_t CurrentRevision() = 0;
  virtual int64_t CompactRevision() = 0;
  virtual StoreStatus GetStatus() = 0;
};

struct RocksStoreOptions {
  std::string path;              // directory; created if missing
  bool sync = true;              // fsync the WAL before acknowledging a write
  size_t block_cache_bytes = 64 << 20;
};

// The embedded MVCC store on RocksDB (the default backend).
Result<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options);

// An in-memory store with the same semantics, for unit tests of code that uses a Store.
std::unique_ptr<Store> NewMemoryStore();

}  // namespace rc::store
