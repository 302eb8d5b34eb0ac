// NewMemoryStore(): the in-memory reference implementation. One mutex guards everything; the
// revision log is a std::map from (main, sub) revision to record, plus a per-key list of
// revisions. Simple rather than fast: it is the fake for unit tests and the oracle the RocksDB
// store is checked against.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"
#include "rc/store/store.h"

namespace rc::store {
namespace {

using internal::KeyRange;
constexpr int64_t kLatest = std::numeric_limits<int64_t>::max();

class MemoryStore final : public Store {
 public:
  MemoryStore() : hub_(std::make_shared<internal::WatchHub>()) {
    hub_->last_dispatched.store(rev_);
    expirer_ = std::thread([this] { ExpireLoop(); });
  }

  ~MemoryStore() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    expirer_.join();
  }

  Result<RangeResult> Range(const std::string& key, const RangeOptions& options) override {
    std::lock_guard<std::mutex> l(mu_);
    if (options.limit < 0) return Status::InvalidArgument("negative limit");
    int64_t at = options.revision == 0 ? rev_ : options.revision;
    if (at > rev_)
      return Status::FutureRevision("required revision is a future revision");
    if (at < compact_)
      return Status::Compacted("required revision " + std::to_string(at) +
                               " has been compacted (compact revision " +
                               std::to_string(compact_) + ")");
    RangeResult r = RangeLocked(key, options, at);
    r.revision = rev_;
    return r;
  }

  Result<PutResult> Put(const std::string& key, const std::string& value, int64_t lease,
                        bool prev_kv) override {
    if (key.empty()) return Status::InvalidArgument("key is not provided");
    std::lock_guard<std::mutex> l(mu_);
    if (lease != 0 && !LeaseAliveLocked(lease)) return Status::NotFound("lease not found");
    WriteCtx ctx{rev_ + 1};
    PutResult r;
    DoPut(ctx, key, value, lease, prev_kv ? &r.prev_kv : nullptr);
    Finish(ctx);
    r.revision = rev_;
    return r;
  }

  Result<DeleteResult> DeleteRange(const std::string& key, const std::string& range_end,
                                   bool prev_kv) override {
    if (key.empty() && range_end.empty()) return Status::InvalidArgument("key is not provided");
    std::lock_guard<std::mutex> l(mu_);
    WriteCtx ctx{rev_ + 1};
    DeleteResult r;
    DoDelete(ctx, key, range_end, prev_kv, &r);
    Finish(ctx);
    r.revision = rev_;
    return r;
  }

  Result<TxnResult> Txn(const TxnRequest& request) override {
    for (const auto& op : request.success) RC_RETURN_IF_ERROR(internal::ValidateOp(op));
    for (const auto& op : request.failure) RC_RETURN_IF_ERROR(internal::ValidateOp(op));
    std::lock_guard<std::mutex> l(mu_);
    TxnResult result;
    result.succeeded = true;
    for (const Compare& c : request.compare) {
      if (!CompareLocked(c)) {
        result.succeeded = false;
        break;
      }
    }
    const auto& ops = result.succeeded ? request.success : request.failure;
    for (const auto& op : ops) {
      if (op.type == RequestOp::Type::kPut && op.lease != 0 && !LeaseAliveLocked(op.lease))
        return Status::NotFound("lease not found");
    }
    WriteCtx ctx{rev_ + 1};
    for (const auto& op : ops) {
      ResponseOp resp;
      resp.type = op.type;
      switch (op.type) {
        case RequestOp::Type::kRange:
          resp.range = RangeLocked(op.key, op.range, kLatest);
          break;
        case RequestOp::Type::kPut:
          DoPut(ctx, op.key, op.value, op.lease, op.prev_kv ? &resp.put.prev_kv : nullptr);
          break;
        case RequestOp::Type::kDeleteRange:
          DoDelete(ctx, op.key, op.range.range_end, op.prev_kv, &resp.del);
          break;
      }
      result.responses.push_back(std::move(resp));
    }
    Finish(ctx);
    result.revision = rev_;
    for (auto& resp : result.responses) {
      resp.range.revision = rev_;
      resp.put.revision = rev_;
      resp.del.revision = rev_;
    }
    return result;
  }

  Status Compact(int64_t revision) override {
    std::lock_guard<std::mutex> l(mu_);
    if (revision <= compact_)
      return Status::Compacted("required revision has been compacted (compact revision " +
                               std::to_string(compact_) + ")");
    if (revision > rev_) return Status::FutureRevision("required revision is a future revision");
    for (auto it = hist_.begin(); it != hist_.end();) {
      auto& revs = it->second;
      // Index of the latest entry at or below `revision`.
      size_t n = 0;
      while (n < revs.size() && revs[n].first <= revision) ++n;
      if (n > 0) {
        size_t drop = n - 1;
        if (log_.at(revs[n - 1]).tomb) drop = n;
        for (size_t i = 0; i < drop; ++i) log_.erase(revs[i]);
        revs.erase(revs.begin(), revs.begin() + static_cast<std::ptrdiff_t>(drop));
      }
      if (revs.empty()) {
        it = hist_.erase(it);
      } else {
        ++it;
      }
    }
    compact_ = revision;
    return Status::Ok();
  }

  Result<std::unique_ptr<WatchHandle>> Watch(const std::string& key, const std::string& range_end,
                                             int64_t start_revision, WatchSink* sink) override {
    if (start_revision < 0) return Status::InvalidArgument("negative start revision");
    std::lock_guard<std::mutex> l(mu_);
    if (start_revision != 0 && start_revision <= compact_)
      return Status::Compacted("required revision has been compacted (compact revision " +
                               std::to_string(compact_) + ")");
    auto w = std::make_shared<internal::Watcher>(key, range_end, sink);
    std::lock_guard<std::mutex> hl(hub_->mu);
    if (start_revision != 0 && start_revision <= rev_) {
      std::vector<Event> events;
      for (auto it = log_.lower_bound({start_revision, 0}); it != log_.end(); ++it) {
        if (!w->range.Contains(it->second.key)) continue;
        events.push_back(EventFor(it->first, it->second));
      }
      if (!events.empty()) sink->OnEvents(events);
    }
    w->min_rev = std::max(start_revision, rev_ + 1);
    uint64_t id = hub_->AddLocked(std::move(w));
    return std::unique_ptr<WatchHandle>(new internal::HubWatchHandle(hub_, id));
  }

  Result<LeaseInfo> LeaseGrant(int64_t id, int64_t ttl) override {
    if (id < 0) return Status::InvalidArgument("negative lease id");
    if (ttl > internal::kMaxLeaseTtl) return Status::InvalidArgument("lease TTL too large");
    if (ttl <= 0) ttl = 1;
    std::lock_guard<std::mutex> l(mu_);
    if (id == 0) {
      do id = internal::NewLeaseId();
      while (leases_.count(id));
    } else if (leases_.count(id)) {
      return Status::AlreadyExists("lease already exists");
    }
    leases_[id] = LeaseRec{ttl, internal::SteadyNowNs() + ttl * 1'000'000'000};
    cv_.notify_all();
    LeaseInfo info;
    info.id = id;
    info.granted_ttl = ttl;
    info.remaining_ttl = ttl;
    return info;
  }

  Status LeaseRevoke(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!leases_.count(id)) return Status::NotFound("lease not found");
    RevokeLocked(id);
    return Status::Ok();
  }

  Result<int64_t> LeaseKeepAlive(int64_t id) override {
    std::lock_guard<std::mutex> l(mu_);
    if (!LeaseAliveLocked(id)) return Status::NotFound("lease not found");
    LeaseRec& lr = leases_[id];
    lr.expiry_ns = internal::SteadyNowNs() + lr.ttl * 1'000'000'000;
    return lr.ttl;
  }

  Result<LeaseInfo> LeaseTimeToLive(int64_t id, bool with_keys) override {
    std::lock_guard<std::mutex> l(mu_);
    auto it = leases_.find(id);
    if (it == leases_.end()) return Status::NotFound("lease not found");
    LeaseInfo info;
    info.id = id;
    info.granted_ttl = it->second.ttl;
    info.remaining_ttl = internal::RemainingTtl(it->second.expiry_ns, internal::SteadyNowNs());
    if (with_keys) info.keys = KeysOfLeaseLocked(id);
    return info;
  }

  std::vector<int64_t> Leases() override {
    std::lock_guard<std::mutex> l(mu_);
    std::vector<int64_t> ids;
    for (const auto& [id, lr] : leases_) ids.push_back(id);
    return ids;
  }

  int64_t CurrentRevision() override {
    std::lock_guard<std::mutex> l(mu_);
    return rev_;
  }
  int64_t CompactRevision() override {
    std::lock_guard<std::mutex> l(mu_);
    return compact_;
  }
  StoreStatus GetStatus() override {
    std::lock_guard<std::mutex> l(mu_);
    StoreStatus s;
    s.revision = rev_;
    s.compact_revision = compact_;
    for (const auto& [rev, rec] : log_)
      s.db_size_bytes += static_cast<int64_t>(rec.key.size() + rec.value.size() + 40);
    for (const auto& [key, revs] : hist_)
      if (!log_.at(revs.back()).tomb) ++s.key_count;
    return s;
  }

 private:
  using Rev = std::pair<int64_t, int64_t>;  // (main, sub)
  struct Rec {
    std::string key;
    std::string value;
    int64_t create = 0;
    int64_t version = 0;
    int64_t lease = 0;
    bool tomb = false;
  };
  struct LeaseRec {
    int64_t ttl = 0;
    int64_t expiry_ns = 0;
  };
  // Changes of one write (one revision). Entries are inserted into the log as they are made, so
  // later ops of the same txn see earlier ones (reads use kLatest).
  struct WriteCtx {
    int64_t rev;
    int64_t sub = 0;
    std::vector<Event> events;
  };

  static KeyValue ToKv(const Rev& rev, const Rec& rec) {
    KeyValue kv;
    kv.key = rec.key;
    kv.value = rec.value;
    kv.create_revision = rec.create;
    kv.mod_revision = rev.first;
    kv.version = rec.version;
    kv.lease = rec.lease;
    return kv;
  }

  // The record of `key` visible at revision `at` (nullptr if absent or deleted).
  const Rec* AtLocked(std::string_view key, int64_t at, Rev* rev_out) const {
    auto it = hist_.find(key);
    if (it == hist_.end()) return nullptr;
    for (auto r = it->second.rbegin(); r != it->second.rend(); ++r) {
      if (r->first <= at) {
        const Rec& rec = log_.at(*r);
        if (rec.tomb) return nullptr;
        *rev_out = *r;
        return &rec;
      }
    }
    return nullptr;
  }

  // Calls fn(rev, rec) for every key in the range that exists at `at`, in key order.
  template <typename Fn>
  void ForEachLocked(std::string_view key, std::string_view range_end, int64_t at, Fn&& fn) const {
    KeyRange range = KeyRange::Make(key, range_end);
    for (auto it = hist_.lower_bound(key); it != hist_.end() && !range.Past(it->first); ++it) {
      Rev rev;
      const Rec* rec = AtLocked(it->first, at, &rev);
      if (rec) fn(rev, *rec);
    }
  }

  RangeResult RangeLocked(std::string_view key, const RangeOptions& o, int64_t at) const {
    RangeResult r;
    ForEachLocked(key, o.range_end, at, [&](const Rev& rev, const Rec& rec) {
      ++r.count;
      if (o.count_only) return;
      if (o.limit > 0 && static_cast<int64_t>(r.kvs.size()) >= o.limit) {
        r.more = true;
        return;
      }
      r.kvs.push_back(ToKv(rev, rec));
      if (o.keys_only) r.kvs.back().value.clear();
    });
    return r;
  }

  bool CompareLocked(const Compare& c) const {
    bool any = false, ok = true;
    ForEachLocked(c.key, c.range_end, kLatest, [&](const Rev& rev, const Rec& rec) {
      any = true;
      ok = ok && internal::CompareHolds(c, true, rec.create, rev.first, rec.version, rec.lease,
                                        rec.value);
    });
    if (!any) return internal::CompareHolds(c, false, 0, 0, 0, 0, {});
    return ok;
  }

  bool LeaseAliveLocked(int64_t id) const {
    auto it = leases_.find(id);
    return it != leases_.end() && it->second.expiry_ns > internal::SteadyNowNs();
  }

  std::vector<std::string> KeysOfLeaseLocked(int64_t id) const {
    std::vector<std::string> keys;
    ForEachLocked("", std::string(1, '\0'), kLatest, [&](const Rev&, const Rec& rec) {
      if (rec.lease == id) keys.push_back(rec.key);
    });
    return keys;
  }

  void Append(WriteCtx& ctx, Rec rec, std::optional<KeyValue> prev) {
    Rev rev{ctx.rev, ctx.sub++};
    Event e;
    e.type = rec.tomb ? Event::Type::kDelete : Event::Type::kPut;
    if (rec.tomb) {
      e.kv.key = rec.key;
      e.kv.mod_revision = rev.first;
    } else {
      e.kv = ToKv(rev, rec);
    }
    e.prev_kv = std::move(prev);
    ctx.events.push_back(std::move(e));
    hist_[rec.key].push_back(rev);
    log_.emplace(rev, std::move(rec));
  }

  void DoPut(WriteCtx& ctx, const std::string& key, const std::string& value, int64_t lease,
             std::optional<KeyValue>* prev_out) {
    Rev prev_rev;
    const Rec* prev = AtLocked(key, kLatest, &prev_rev);
    std::optional<KeyValue> prev_kv;
    if (prev) prev_kv = ToKv(prev_rev, *prev);
    Rec rec;
    rec.key = key;
    rec.value = value;
    rec.create = prev ? prev->create : ctx.rev;
    rec.version = prev ? prev->version + 1 : 1;
    rec.lease = lease;
    if (prev_out) *prev_out = prev_kv;
    Append(ctx, std::move(rec), std::move(prev_kv));
  }

  void DoDelete(WriteCtx& ctx, const std::string& key, const std::string& range_end, bool want_prev,
                DeleteResult* out) {
    std::vector<KeyValue> victims;
    ForEachLocked(key, range_end, kLatest,
                  [&](const Rev& rev, const Rec& rec) { victims.push_back(ToKv(rev, rec)); });
    for (auto& kv : victims) {
      Rec rec;
      rec.key = kv.key;
      rec.tomb = true;
      if (want_prev) out->prev_kvs.push_back(kv);
      Append(ctx, std::move(rec), std::move(kv));
      ++out->deleted;
    }
  }

  // Commits the revision if anything changed and dispatches its events.
  void Finish(WriteCtx& ctx) {
    if (ctx.sub == 0) return;
    rev_ = ctx.rev;
    std::lock_guard<std::mutex> hl(hub_->mu);
    internal::DispatchLocked(*hub_, ctx.events);
    hub_->last_dispatched.store(rev_);
  }

  void RevokeLocked(int64_t id) {
    WriteCtx ctx{rev_ + 1};
    for (const std::string& key : KeysOfLeaseLocked(id)) {
      DeleteResult ignored;
      DoDelete(ctx, key, "", false, &ignored);
    }
    Finish(ctx);
    leases_.erase(id);
  }

  Event EventFor(const Rev& rev, const Rec& rec) const {
    Event e;
    if (rec.tomb) {
      e.type = Event::Type::kDelete;
      e.kv.key = rec.key;
      e.kv.mod_revision = rev.first;
    } else {
      e.kv = ToKv(rev, rec);
    }
    const auto& revs = hist_.at(rec.key);
    auto pos = std::lower_bound(revs.begin(), revs.end(), rev);
    if (pos != revs.begin()) {
      const Rev& p = *std::prev(pos);
      const Rec& prec = log_.at(p);
      if (!prec.tomb) e.prev_kv = ToKv(p, prec);
    }
    return e;
  }

  void ExpireLoop() {
    std::unique_lock<std::mutex> l(mu_);
    while (!stop_) {
      int64_t now = internal::SteadyNowNs();
      int64_t next = now + 100'000'000;
      std::vector<int64_t> expired;
      for (const auto& [id, lr] : leases_) {
        if (lr.expiry_ns <= now) {
          expired.push_back(id);
        } else {
          next = std::min(next, lr.expiry_ns);
        }
      }
      for (int64_t id : expired) RevokeLocked(id);
      cv_.wait_for(l, std::chrono::nanoseconds(std::max<int64_t>(next - now, 1'000'000)));
    }
  }

  std::mutex mu_;
  int64_t rev_ = 1;
  int64_t compact_ = 0;
  std::map<Rev, Rec> log_;
  std::map<std::string, std::vector<Rev>, std::less<>> hist_;
  std::map<int64_t, LeaseRec> leases_;
  std::shared_ptr<internal::WatchHub> hub_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread expirer_;
};

}  // namespace

std::unique_ptr<Store> NewMemoryStore() { return std::make_unique<MemoryStore>(); }

}  // namespace rc::store
