// Helpers shared by the store implementations (not part of the public interface).
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "rc/store/store.h"

namespace rc::store::internal {

// A key range in the store's convention: `end` empty = the single key `begin`; end == "\0" =
// every key >= begin; otherwise [begin, end). Views; the owner keeps the strings alive.
struct KeyRange {
  std::string_view begin;
  std::string_view end;
  bool single = false;
  bool to_end = false;

  static KeyRange Make(std::string_view key, std::string_view range_end) {
    KeyRange r;
    r.begin = key;
    r.end = range_end;
    r.single = range_end.empty();
    r.to_end = range_end.size() == 1 && range_end[0] == '\0';
    return r;
  }
  bool Contains(std::string_view k) const {
    if (single) return k == begin;
    if (k < begin) return false;
    return to_end || k < end;
  }
  // True iff `k` is past the end of the range (for ordered iteration starting at begin).
  bool Past(std::string_view k) const {
    if (single) return k != begin;
    return !to_end && k >= end;
  }
};

// Evaluates one compare against one key state (exists=false: the key is missing).
bool CompareHolds(const Compare& c, bool exists, int64_t create, int64_t mod, int64_t version,
                  int64_t lease, std::string_view value);

// Structural validation of a txn op (both branches are checked before evaluation).
Status ValidateOp(const RequestOp& op);
bool HasWrites(const std::vector<RequestOp>& ops);

// A reader-writer lock that prefers writers (glibc's std::shared_mutex prefers readers, which
// can starve the commit path under a heavy read load).
class RwLock {
 public:
  RwLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~RwLock() { pthread_rwlock_destroy(&lock_); }
  RwLock(const RwLock&) = delete;
  RwLock& operator=(const RwLock&) = delete;
  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

// One registered watch.
struct Watcher {
  Watcher(std::string k, std::string e, WatchSink* s)
      : key(std::move(k)), end(std::move(e)), range(KeyRange::Make(key, end)), sink(s) {}
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  const std::string key;
  const std::string end;
  const KeyRange range;  // views into key/end
  WatchSink* const sink;
  int64_t min_rev = 0;   // live events below this revision were already replayed
};

// The registry of watches. Shared between a store and its handles so that a handle may outlive
// the store. `mu` is held while dispatching, registering and cancelling.
struct WatchHub {
  std::mutex mu;
  std::map<uint64_t, std::shared_ptr<Watcher>> watchers;  // guarded by mu
  uint64_t next_id = 1;                                   // guarded by mu
  std::atomic<int64_t> last_dispatched{0};  // written under mu; every event <= it was dispatched
  std::atomic<size_t> count{0};             // watchers.size(), readable without mu

  uint64_t AddLocked(std::shared_ptr<Watcher> w) {
    uint64_t id = next_id++;
    watchers.emplace(id, std::move(w));
    count.store(watchers.size(), std::memory_order_relaxed);
    return id;
  }
};

class HubWatchHandle final : public WatchHandle {
 public:
  HubWatchHandle(std::shared_ptr<WatchHub> hub, uint64_t id) : hub_(std::move(hub)), id_(id) {}
  ~HubWatchHandle() override {
    std::lock_guard<std::mutex> l(hub_->mu);
    hub_->watchers.erase(id_);
    hub_->count.store(hub_->watchers.size(), std::memory_order_relaxed);
  }

 private:
  std::shared_ptr<WatchHub> hub_;
  uint64_t id_;
};

// Delivers `events` (one or more whole revisions, in order) to every matching watcher.
// Caller holds hub.mu.
void DispatchLocked(WatchHub& hub, std::span<const Event> events);

// Lease TTL limits (etcd: MaxLeaseTTL = 9,000,000,000 s).
inline constexpr int64_t kMaxLeaseTtl = 9'000'000'000LL;
// Picks a lease id for LeaseGrant(0, ...): positive, pseudo-random.
int64_t NewLeaseId();
// Remaining seconds (rounded up) until `expiry_ns` (steady clock), -1 if expired.
int64_t RemainingTtl(int64_t expiry_ns, int64_t now_ns);
int64_t SteadyNowNs();

}  // namespace rc::store::internal
