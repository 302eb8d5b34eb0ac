// OpenRocksStore(): the embedded MVCC store on RocksDB. See runtime/store/README.md for the
// on-disk format and the concurrency design; the short version:
//
// - RocksDB (default column family) holds the revision log: 16-byte big-endian (main, sub)
//   revision -> record {flags, key, create, version, lease, value}. The "meta" column family
//   holds the compaction revision, the leases and a format marker.
// - In memory, `index_` maps each key to its history of revisions (like etcd's treeIndex); it
//   is rebuilt on open by scanning the log. Values are read from RocksDB by revision.
// - Writes go through a group-commit queue. The writer at the front of the queue is the leader:
//   it evaluates every queued request in order against the published state plus the effects of
//   the earlier requests of the batch (an overlay), writes one WriteBatch (synced), publishes
//   the new state to the index, wakes the writers and dispatches the events to the watchers.
//   Readers only see published (hence synced) revisions and never wait for an fsync.
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/statistics.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common.h"
#include "rc/store/rocks_store.h"
#include "rc/store/store.h"

namespace rc::store {
namespace {

using internal::KeyRange;

// ---------------------------------------------------------------------------------------------
// Encoding

constexpr size_t kLogKeySize = 16;
constexpr char kMetaCompactKey[] = "compact_rev";
constexpr char kMetaFormatKey[] = "format";
constexpr char kFormatVersion[] = "1";
constexpr char kMetaLeasePrefix = 'L';
constexpr char kMetaColumnFamily[] = "meta";
constexpr size_t kMaxBatch = 4096;
constexpr size_t kReplayChunk = 1024;
constexpr uint64_t kFlagTombstone = 1;

inline void EncodeBE64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
}

inline uint64_t DecodeBE64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

struct LogKey {
  char buf[kLogKeySize];
  LogKey(int64_t main, int64_t sub) {
    EncodeBE64(buf, static_cast<uint64_t>(main));
    EncodeBE64(buf + 8, static_cast<uint64_t>(sub));
  }
  rocksdb::Slice slice() const { return {buf, kLogKeySize}; }
};

inline void PutVarint(std::string* dst, uint64_t v) {
  while (v >= 0x80) {
    dst->push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  dst->push_back(static_cast<char>(v));
}

inline bool GetVarint(std::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && !in->empty(); shift += 7) {
    uint64_t byte = static_cast<unsigned char>(in->front());
    in->remove_prefix(1);
    result |= (byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

// Record: varint flags | varint key length | key | varint create | varint version |
//         varint lease | value (the rest). mod_revision is the log key's main revision.
void EncodeRecord(std::string* dst, std::string_view key, std::string_view value, int64_t create,
                  int64_t version, int64_t lease, bool tomb) {
  dst->reserve(dst->size() + key.size() + value.size() + 32);
  PutVarint(dst, tomb ? kFlagTombstone : 0);
  PutVarint(dst, key.size());
  dst->append(key);
  PutVarint(dst, static_cast<uint64_t>(create));
  PutVarint(dst, static_cast<uint64_t>(version));
  PutVarint(dst, static_cast<uint64_t>(lease));
  dst->append(value);
}

struct Record {
  std::string_view key;
  std::string_view value;
  int64_t create = 0;
  int64_t version = 0;
  int64_t lease = 0;
  bool tomb = false;
};

bool DecodeRecord(std::string_view in, Record* r) {
  uint64_t flags, klen, create, version, lease;
  if (!GetVarint(&in, &flags) || !GetVarint(&in, &klen) || klen > in.size()) return false;
  r->key = in.substr(0, klen);
  in.remove_prefix(klen);
  if (!GetVarint(&in, &create) || !GetVarint(&in, &version) || !GetVarint(&in, &lease))
    return false;
  r->create = static_cast<int64_t>(create);
  r->version = static_cast<int64_t>(version);
  r->lease = static_cast<int64_t>(lease);
  r->tomb = flags & kFlagTombstone;
  r->value = in;
  return true;
}

std::string LeaseMetaKey(int64_t id) {
  std::string k(9, '\0');
  k[0] = kMetaLeasePrefix;
  EncodeBE64(k.data() + 1, static_cast<uint64_t>(id));
  return k;
}

Status FromRocks(const rocksdb::Status& s) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(s.ToString());
  if (s.IsCorruption()) return Status::Corruption(s.ToString());
  if (s.IsInvalidArgument()) return Status::InvalidArgument(s.ToString());
  return Status::IOError(s.ToString());
}

Status CompactedError(int64_t compact) {
  return Status::Compacted("required revision has been compacted (compact revision " +
                           std::to_string(compact) + ")");
}

// ---------------------------------------------------------------------------------------------
// In-memory index

struct Entry {
  int64_t main = 0;
  int64_t create = 0;
  int64_t version = 0;
  int64_t lease = 0;
  uint32_t sub = 0;
  bool tomb = false;
};
using History = std::vector<Entry>;  // sorted by (main, sub); never empty inside the index
using Index = std::map<std::string, History, std::less<>>;

// The latest entry with main <= at, or nullptr.
const Entry* EntryAt(const History& h, int64_t at) {
  if (h.back().main <= at) return &h.back();
  auto it = std::upper_bound(h.begin(), h.end(), at,
                             [](int64_t a, const Entry& e) { return a < e.main; });
  if (it == h.begin()) return nullptr;
  return &*std::prev(it);
}

// The state of one key as the group-commit leader sees it.
struct KeyState {
  bool exists = false;
  bool pending = false;  // written earlier in this batch: the value is `value`, not in RocksDB
  uint32_t sub = 0;
  int64_t create = 0;
  int64_t mod = 0;
  int64_t version = 0;
  int64_t lease = 0;
  std::string_view value;  // pending only; points into a request of the batch

  static KeyState Of(const Entry& e) {
    KeyState s;
    s.exists = !e.tomb;
    s.sub = e.sub;
    s.create = e.create;
    s.mod = e.main;
    s.version = e.version;
    s.lease = e.lease;
    return s;
  }
};

// One change (one log record) made by a batch.
struct Change {
  std::string_view key;    // stable: points into a request or an index node
  std::string_view value;  // puts only; points into a request
  int64_t main = 0;
  uint32_t sub = 0;
  int64_t create = 0;
  int64_t version = 0;
  int64_t lease = 0;
  bool tomb = false;
  KeyState prev;
};

struct Writer {
  enum class Kind { kPut, kDelete, kTxn, kCompact, kLeaseGrant, kLeaseRevoke, kLeaseExpire };
  explicit Writer(Kind k) : kind(k) {}
  const Kind kind;
  // Inputs (owned by the caller, alive until done).
  const std::string* key = nullptr;
  const std::string* value = nullptr;
  const std::string* range_end = nullptr;
  int64_t lease = 0;
  bool prev_kv = false;
  const TxnRequest* txn = nullptr;
  int64_t arg = 0;  // compaction revision / lease id
  int64_t ttl = 0;
  // Outputs.
  Status status;
  PutResult put;
  DeleteResult del;
  TxnResult txn_result;
  LeaseInfo lease_info;
  // Wake-up state, guarded by `mu` (a per-writer mutex, so that completing a batch does not
  // make every follower contend on the queue mutex).
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;    // result is ready
  bool leader = false;  // became the front of the queue: lead the next batch
};

struct LeaseState {
  int64_t ttl = 0;
  int64_t expiry_ns = 0;
  std::set<std::string, std::less<>> keys;
};

// Evaluation state of one batch.
struct BatchCtx {
  int64_t next_rev = 0;  // revision the next writing request gets
  std::map<std::string_view, KeyState, std::less<>> overlay;
  std::vector<Change> changes;
  struct LeaseDelta {
    bool exists = false;
    int64_t ttl = 0;
  };
  std::map<int64_t, LeaseDelta> leases;
  rocksdb::WriteBatch wb;
  std::string scratch;
  rocksdb::Status io_error;
  int64_t writes = 0;
};

// ---------------------------------------------------------------------------------------------

class RocksStore final : public Store {
 public:
  explicit RocksStore(const RocksStoreOptions& options)
      : options_(options), hub_(std::make_shared<internal::WatchHub>()) {
    wopts_.sync = options.sync;
  }

  ~RocksStore() override {
    if (expirer_.joinable()) {
      {
        std::lock_guard<std::mutex> l(lease_mu_);
        stop_ = true;
      }
      expiry_cv_.notify_all();
      expirer_.join();
    }
    if (db_) {
      if (!options_.sync) (void)db_->SyncWAL();
      for (auto* h : handles_) (void)db_->DestroyColumnFamilyHandle(h);
      handles_.clear();
      (void)db_->Close();
      db_.reset();
    }
  }

  Status Init();

  Result<RangeResult> Range(const std::string& key, const RangeOptions& options) override;
  Result<PutResult> Put(const std::string& key, const std::string& value, int64_t lease,
                        bool prev_kv) override;
  Result<DeleteResult> DeleteRange(const std::string& key, const std::string& range_end,
                                   bool prev_kv) override;
  Result<TxnResult> Txn(const TxnRequest& request) override;
  Status Compact(int64_t revision) override;
  Result<std::unique_ptr<WatchHandle>> Watch(const std::string& key, const std::string& range_end,
                                             int64_t start_revision, WatchSink* sink) override;
  Result<LeaseInfo> LeaseGrant(int64_t id, int64_t ttl) override;
  Status LeaseRevoke(int64_t id) override;
  Result<int64_t> LeaseKeepAlive(int64_t id) override;
  Result<LeaseInfo> LeaseTimeToLive(int64_t id, bool with_keys) override;
  std::vector<int64_t> Leases() override;
  int64_t CurrentRevision() override { return current_.load(std::memory_order_acquire); }
  int64_t CompactRevision() override { return compact_.load(std::memory_order_acquire); }
  StoreStatus GetStatus() override;

  RocksStoreStats Stats() const {
    RocksStoreStats s;
    s.wal_syncs = static_cast<int64_t>(stats_->getTickerCount(rocksdb::WAL_FILE_SYNCED));
    s.write_batches = batches_.load();
    s.write_requests = write_requests_.load();
    return s;
  }

 private:
  // --- read path ---
  Status RangeAt(std::string_view key, std::string_view range_end, int64_t at, int64_t limit,
                 bool keys_only, bool count_only, RangeResult* out);
  Status FillValues(std::vector<KeyValue>& kvs, const std::vector<LogKey>& lks);
  rocksdb::Status ReadValue(int64_t main, uint32_t sub, const rocksdb::Snapshot* snap,
                            std::string* out);
  Status Replay(const internal::Watcher& w, int64_t from, int64_t to,
                const rocksdb::Snapshot* snap);

  // --- write path (group commit) ---
  void Submit(Writer* w);
  void RunBatch(const std::vector<Writer*>& batch);
  void RunCompaction(Writer* w);
  void HandOff(const std::vector<Writer*>& batch);
  void WakeFollowers(const std::vector<Writer*>& batch);
  void Evaluate(BatchCtx& ctx, Writer* w);
  void EvalTxn(BatchCtx& ctx, Writer* w);
  void EvalLeaseRevoke(BatchCtx& ctx, Writer* w);
  KeyState Lookup(BatchCtx& ctx, std::string_view key);
  std::vector<std::pair<std::string_view, KeyState>> Collect(BatchCtx& ctx, const KeyRange& r);
  std::string LoadValue(BatchCtx& ctx, const KeyState& st);
  KeyValue MakeKv(BatchCtx& ctx, std::string_view key, const KeyState& st, bool with_value);
  bool EvalCompare(BatchCtx& ctx, const Compare& c);
  void DoPut(BatchCtx& ctx, std::string_view key, std::string_view value, int64_t lease,
             std::optional<KeyValue>* prev_out, int64_t rev, uint32_t& sub);
  void DoDelete(BatchCtx& ctx, const KeyRange& range, bool want_prev, DeleteResult* out,
                int64_t rev, uint32_t& sub);
  void AddChange(BatchCtx& ctx, const Change& c);
  bool LeaseKnown(BatchCtx& ctx, int64_t id, bool require_alive);
  void Publish(BatchCtx& ctx);
  std::vector<Event> BuildEvents(BatchCtx& ctx);

  void ExpireLoop();

  const RocksStoreOptions options_;
  rocksdb::WriteOptions wopts_;
  std::shared_ptr<rocksdb::Statistics> stats_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* log_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;

  // Index: written only by the group-commit leader (under the exclusive lock), read by readers
  // under the shared lock and by the leader without it.
  internal::RwLock index_mu_;
  Index index_;
  std::atomic<int64_t> current_{1};
  std::atomic<int64_t> compact_{0};
  std::atomic<int64_t> key_count_{0};

  // Group commit queue.
  std::mutex queue_mu_;
  std::deque<Writer*> queue_;
  Status broken_;  // leader-only: set when a write failed; the store then refuses writes

  // Watches. Lock order: hub_->mu -> compact_mu_ -> index_mu_; lease_mu_ is a leaf.
  std::shared_ptr<internal::WatchHub> hub_;
  std::mutex compact_mu_;  // held while a compaction's deletes are written

  // Leases.
  std::mutex lease_mu_;
  std::unordered_map<int64_t, LeaseState> leases_;
  std::condition_variable expiry_cv_;
  bool stop_ = false;
  std::thread expirer_;

  std::atomic<int64_t> batches_{0};
  std::atomic<int64_t> write_requests_{0};
};

// ---------------------------------------------------------------------------------------------
// Open / recovery

Status RocksStore::Init() {
  if (options_.path.empty()) return Status::InvalidArgument("store path is empty");
  std::error_code ec;
  std::filesystem::create_directories(options_.path, ec);
  if (ec) return Status::IOError("create " + options_.path + ": " + ec.message());

  stats_ = rocksdb::CreateDBStatistics();
  stats_->set_stats_level(rocksdb::kExceptHistogramOrTimers);

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.statistics = stats_;
  dbo.max_background_jobs = 2;
  dbo.bytes_per_sync = 1 << 20;
  dbo.max_total_wal_size = 512 << 20;
  dbo.keep_log_file_num = 4;
  dbo.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  dbo.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;

  auto cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.block_size = 16 << 10;
  table.format_version = 5;
  // Log keys are big-endian revisions read by exact key of a known-present record, so bloom
  // filters would never reject anything: none.

  rocksdb::ColumnFamilyOptions log_opts;
  log_opts.write_buffer_size = 64 << 20;
  log_opts.max_write_buffer_number = 4;
  log_opts.min_write_buffer_number_to_merge = 1;
  log_opts.target_file_size_base = 64 << 20;
  log_opts.max_bytes_for_level_base = 256 << 20;
  log_opts.level_compaction_dynamic_level_bytes = true;
  log_opts.compression = rocksdb::kLZ4Compression;
  log_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  rocksdb::ColumnFamilyOptions meta_opts;
  meta_opts.write_buffer_size = 4 << 20;
  meta_opts.compression = rocksdb::kLZ4Compression;
  meta_opts.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs = {
      {rocksdb::kDefaultColumnFamilyName, log_opts},
      {kMetaColumnFamily, meta_opts},
  };
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(dbo, options_.path, cfs, &handles_, &raw);
  if (!s.ok()) return FromRocks(s);
  db_.reset(raw);
  log_cf_ = handles_[0];
  meta_cf_ = handles_[1];

  // Meta: format marker, compaction revision, leases.
  std::string v;
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaFormatKey, &v);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    s = db_->Put(wo, meta_cf_, kMetaFormatKey, kFormatVersion);
    if (!s.ok()) return FromRocks(s);
  } else if (!s.ok()) {
    return FromRocks(s);
  } else if (v != kFormatVersion) {
    return Status::Corruption("unsupported store format " + v);
  }
  s = db_->Get(rocksdb::ReadOptions(), meta_cf_, kMetaCompactKey, &v);
  if (s.ok()) {
    if (v.size() != 8) return Status::Corruption("bad compaction revision");
    compact_.store(static_cast<int64_t>(DecodeBE64(v.data())));
  } else if (!s.IsNotFound()) {
    return FromRocks(s);
  }
  int64_t now = internal::SteadyNowNs();
  {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
    std::string prefix(1, kMetaLeasePrefix);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (it->key().size() != 9) return Status::Corruption("bad lease key");
      int64_t id = static_cast<int64_t>(DecodeBE64(it->key().data() + 1));
      std::string_view in(it->value().data(), it->value().size());
      uint64_t ttl;
      if (!GetVarint(&in, &ttl)) return Status::Corruption("bad lease record");
      // Like etcd after a leader change: a recovered lease gets its full TTL again.
      LeaseState& ls = leases_[id];
      ls.ttl = static_cast<int64_t>(ttl);
      ls.expiry_ns = now + ls.ttl * 1'000'000'000;
    }
    if (!it->status().ok()) return FromRocks(it->status());
  }

  // Rebuild the index from the log.
  int64_t last_main = 0;
  {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;
    ro.readahead_size = 2 << 20;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().size() != kLogKeySize) return Status::Corruption("bad log key");
      Entry e;
      e.main = static_cast<int64_t>(DecodeBE64(it->key().data()));
      e.sub = static_cast<uint32_t>(DecodeBE64(it->key().data() + 8));
      Record rec;
      if (!DecodeRecord({it->value().data(), it->value().size()}, &rec))
        return Status::Corruption("bad log record at revision " + std::to_string(e.main));
      e.create = rec.create;
      e.version = rec.version;
      e.lease = rec.lease;
      e.tomb = rec.tomb;
      auto pos = index_.lower_bound(rec.key);
      if (pos == index_.end() || pos->first != rec.key)
        pos = index_.emplace_hint(pos, std::string(rec.key), History{});
      pos->second.push_back(e);
      last_main = e.main;
    }
    if (!it->status().ok()) return FromRocks(it->status());
  }
  current_.store(std::max<int64_t>({1, last_main, compact_.load()}));
  hub_->last_dispatched.store(current_.load());
  int64_t live = 0;
  for (const auto& [key, h] : index_) {
    const Entry& e = h.back();
    if (e.tomb) continue;
    ++live;
    if (e.lease != 0) {
      auto it = leases_.find(e.lease);
      if (it != leases_.end()) it->second.keys.insert(key);
    }
  }
  key_count_.store(live);

  expirer_ = std::thread([this] { ExpireLoop(); });
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Read path

rocksdb::Status RocksStore::ReadValue(int64_t main, uint32_t sub, const rocksdb::Snapshot* snap,
                                      std::string* out) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  rocksdb::PinnableSlice ps;
  LogKey lk(main, sub);
  auto s = db_->Get(ro, log_cf_, lk.slice(), &ps);
  if (!s.ok()) return s;
  Record rec;
  if (!DecodeRecord({ps.data(), ps.size()}, &rec)) return rocksdb::Status::Corruption("record");
  out->assign(rec.value);
  return s;
}

Status RocksStore::FillValues(std::vector<KeyValue>& kvs, const std::vector<LogKey>& lks) {
  const size_t n = lks.size();
  if (n == 0) return Status::Ok();
  if (n == 1) {
    rocksdb::PinnableSlice ps;
    auto s = db_->Get(rocksdb::ReadOptions(), log_cf_, lks[0].slice(), &ps);
    if (s.IsNotFound()) return CompactedError(compact_.load());
    if (!s.ok()) return FromRocks(s);
    Record rec;
    if (!DecodeRecord({ps.data(), ps.size()}, &rec)) return Status::Corruption("bad log record");
    kvs[0].value.assign(rec.value);
    return Status::Ok();
  }
  std::vector<rocksdb::Slice> keys;
  keys.reserve(n);
  for (const auto& lk : lks) keys.push_back(lk.slice());
  std::vector<rocksdb::PinnableSlice> values(n);
  std::vector<rocksdb::Status> statuses(n);
  db_->MultiGet(rocksdb::ReadOptions(), log_cf_, n, keys.data(), values.data(), statuses.data(),
                /*sorted_input=*/false);
  for (size_t i = 0; i < n; ++i) {
    // A record visible at the read revision disappears only if a compaction past that revision
    // ran concurrently.
    if (statuses[i].IsNotFound()) return CompactedError(compact_.load());
    if (!statuses[i].ok()) return FromRocks(statuses[i]);
    Record rec;
    if (!DecodeRecord({values[i].data(), values[i].size()}, &rec))
      return Status::Corruption("bad log record");
    kvs[i].value.assign(rec.value);
  }
  return Status::Ok();
}

Status RocksStore::RangeAt(std::string_view key, std::string_view range_end, int64_t at,
                           int64_t limit, bool keys_only, bool count_only, RangeResult* out) {
  KeyRange range = KeyRange::Make(key, range_end);
  std::vector<LogKey> lks;
  {
    std::shared_lock<internal::RwLock> l(index_mu_);
    auto visit = [&](const std::string& k, const History& h) {
      const Entry* e = EntryAt(h, at);
      if (!e || e->tomb) return;
      ++out->count;
      if (count_only) return;
      if (limit > 0 && static_cast<int64_t>(out->kvs.size()) >= limit) {
        out->more = true;
        return;
      }
      KeyValue& kv = out->kvs.emplace_back();
      kv.key = k;
      kv.create_revision = e->create;
      kv.mod_revision = e->main;
      kv.version = e->version;
      kv.lease = e->lease;
      if (!keys_only) lks.emplace_back(e->main, e->sub);
    };
    if (range.single) {
      auto it = index_.find(key);
      if (it != index_.end()) visit(it->first, it->second);
    } else {
      for (auto it = index_.lower_bound(key); it != index_.end() && !range.Past(it->first); ++it)
        visit(it->first, it->second);
    }
  }
  if (keys_only) return Status::Ok();
  return FillValues(out->kvs, lks);
}

Result<RangeResult> RocksStore::Range(const std::string& key, const RangeOptions& o) {
  if (o.limit < 0) return Status::InvalidArgument("negative limit");
  int64_t cur = current_.load(std::memory_order_acquire);
  int64_t at = o.revision == 0 ? cur : o.revision;
  if (at > cur) return Status::FutureRevision("required revision is a future revision");
  if (at < compact_.load(std::memory_order_acquire)) return CompactedError(compact_.load());
  RangeResult r;
  r.revision = cur;
  RC_RETURN_IF_ERROR(RangeAt(key, o.range_end, at, o.limit, o.keys_only, o.count_only, &r));
  return r;
}

// ---------------------------------------------------------------------------------------------
// Write path

Result<PutResult> RocksStore::Put(const std::string& key, const std::string& value, int64_t lease,
                                  bool prev_kv) {
  if (key.empty()) return Status::InvalidArgument("key is not provided");
  Writer w(Writer::Kind::kPut);
  w.key = &key;
  w.value = &value;
  w.lease = lease;
  w.prev_kv = prev_kv;
  Submit(&w);
  if (!w.status.ok()) return w.status;
  return std::move(w.put);
}

Result<DeleteResult> RocksStore::DeleteRange(const std::string& key, const std::string& range_end,
                                             bool prev_kv) {
  if (key.empty() && range_end.empty()) return Status::InvalidArgument("key is not provided");
  Writer w(Writer::Kind::kDelete);
  w.key = &key;
  w.range_end = &range_end;
  w.prev_kv = prev_kv;
  Submit(&w);
  if (!w.status.ok()) return w.status;
  return std::move(w.del);
}

Result<TxnResult> RocksStore::Txn(const TxnRequest& request) {
  for (const auto& op : request.success) RC_RETURN_IF_ERROR(internal::ValidateOp(op));
  for (const auto& op : request.failure) RC_RETURN_IF_ERROR(internal::ValidateOp(op));
  if (!internal::HasWrites(request.success) && !internal::HasWrites(request.failure)) {
    // Read-only: served from a snapshot at the current revision, no queue, no fsync wait.
    int64_t cur = current_.load(std::memory_order_acquire);
    TxnResult result;
    result.revision = cur;
    result.succeeded = true;
    for (const Compare& c : request.compare) {
      RangeResult rr;
      RC_RETURN_IF_ERROR(RangeAt(c.key, c.range_end, cur, 0,
                                 c.target != Compare::Target::kValue, false, &rr));
      bool holds = true;
      if (rr.kvs.empty()) {
        holds = internal::CompareHolds(c, false, 0, 0, 0, 0, {});
      } else {
        for (const KeyValue& kv : rr.kvs) {
          if (!internal::CompareHolds(c, true, kv.create_revision, kv.mod_revision, kv.version,
                                      kv.lease, kv.value)) {
            holds = false;
            break;
          }
        }
      }
      if (!holds) {
        result.succeeded = false;
        break;
      }
    }
    for (const RequestOp& op : result.succeeded ? request.success : request.failure) {
      ResponseOp& resp = result.responses.emplace_back();
      resp.type = op.type;
      resp.range.revision = cur;
      RC_RETURN_IF_ERROR(RangeAt(op.key, op.range.range_end, cur, op.range.limit,
                                 op.range.keys_only, op.range.count_only, &resp.range));
    }
    return result;
  }
  Writer w(Writer::Kind::kTxn);
  w.txn = &request;
  Submit(&w);
  if (!w.status.ok()) return w.status;
  return std::move(w.txn_result);
}

Status RocksStore::Compact(int64_t revision) {
  Writer w(Writer::Kind::kCompact);
  w.arg = revision;
  Submit(&w);
  return w.status;
}

void RocksStore::Submit(Writer* w) {
  bool lead;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    queue_.push_back(w);
    lead = queue_.size() == 1;
  }
  if (!lead) {
    std::unique_lock<std::mutex> wl(w->mu);
    w->cv.wait(wl, [w] { return w->done || w->leader; });
    if (w->done) return;
  }
  // Leader: take every queued request (a compaction runs alone).
  std::vector<Writer*> batch;
  if (w->kind == Writer::Kind::kCompact) {
    batch.push_back(w);
  } else {
    std::lock_guard<std::mutex> l(queue_mu_);
    for (Writer* x : queue_) {
      if (x->kind == Writer::Kind::kCompact || batch.size() >= kMaxBatch) break;
      batch.push_back(x);
    }
  }
  if (w->kind == Writer::Kind::kCompact) {
    RunCompaction(w);
  } else {
    RunBatch(batch);
  }
}

// Pops the leader's batch off the queue and hands leadership to the next queued writer.
// `batch[0]` is the calling leader.
void RocksStore::HandOff(const std::vector<Writer*>& batch) {
  Writer* next = nullptr;
  {
    std::lock_guard<std::mutex> l(queue_mu_);
    for (size_t i = 0; i < batch.size(); ++i) queue_.pop_front();
    if (!queue_.empty()) next = queue_.front();
  }
  // `next` cannot go away before it is told to lead.
  if (next) {
    std::lock_guard<std::mutex> wl(next->mu);
    next->leader = true;
    next->cv.notify_one();
  }
}

// Wakes the batch's other writers; their results are complete.
void RocksStore::WakeFollowers(const std::vector<Writer*>& batch) {
  for (size_t i = 1; i < batch.size(); ++i) {
    // Notify under the writer's mutex: once it sees `done` it may return and destroy itself.
    std::lock_guard<std::mutex> wl(batch[i]->mu);
    batch[i]->done = true;
    batch[i]->cv.notify_one();
  }
}

void RocksStore::RunBatch(const std::vector<Writer*>& batch) {
  BatchCtx ctx;
  ctx.next_rev = current_.load(std::memory_order_relaxed) + 1;
  Status failure = broken_;
  if (failure.ok()) {
    for (Writer* w : batch) {
      Evaluate(ctx, w);
      if (!ctx.io_error.ok()) {
        failure = Status::IOError("store read failed: " + ctx.io_error.ToString());
        break;
      }
    }
  }
  if (failure.ok() && ctx.wb.Count() > 0) {
    auto s = db_->Write(wopts_, &ctx.wb);
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (!s.ok()) failure = Status::IOError("store write failed: " + s.ToString());
  }
  if (!failure.ok()) {
    // Nothing was published. A failed WAL write leaves the log in an unknown state (the
    // revisions may or may not be there after a restart), so refuse further writes.
    broken_ = failure;
    for (Writer* w : batch) w->status = failure;
    HandOff(batch);
    WakeFollowers(batch);
    return;
  }
  write_requests_.fetch_add(ctx.writes, std::memory_order_relaxed);

  std::unique_lock<std::mutex> hl(hub_->mu);
  Publish(ctx);
  std::vector<Event> events = BuildEvents(ctx);
  hub_->last_dispatched.store(current_.load(std::memory_order_relaxed));
  // Let the next leader start (and fsync) while the watchers are served: it cannot publish
  // before we release hub_->mu, so dispatch stays in revision order.
  HandOff(batch);
  internal::DispatchLocked(*hub_, events);
  hl.unlock();
  // Acknowledge. The state is published, so each writer reads its own write.
  WakeFollowers(batch);
}

void RocksStore::Publish(BatchCtx& ctx) {
  if (!ctx.changes.empty()) {
    std::unique_lock<internal::RwLock> il(index_mu_);
    int64_t delta = 0;
    for (const Change& c : ctx.changes) {
      auto pos = index_.lower_bound(c.key);
      if (pos == index_.end() || pos->first != c.key)
        pos = index_.emplace_hint(pos, std::string(c.key), History{});
      Entry e;
      e.main = c.main;
      e.sub = c.sub;
      e.create = c.create;
      e.version = c.version;
      e.lease = c.lease;
      e.tomb = c.tomb;
      pos->second.push_back(e);
      if (!c.tomb && !c.prev.exists) ++delta;
      if (c.tomb && c.prev.exists) --delta;
    }
    key_count_.fetch_add(delta, std::memory_order_relaxed);
    current_.store(ctx.next_rev - 1, std::memory_order_release);
  }
  bool any_lease = !ctx.leases.empty();
  for (const Change& c : ctx.changes) any_lease = any_lease || c.lease != 0 || c.prev.lease != 0;
  if (!any_lease) return;
  bool granted = false;
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    int64_t now = internal::SteadyNowNs();
    for (const auto& [id, d] : ctx.leases) {
      if (!d.exists) continue;
      LeaseState& ls = leases_[id];
      ls.ttl = d.ttl;
      ls.expiry_ns = now + d.ttl * 1'000'000'000;
      ls.keys.clear();
      granted = true;
    }
    for (const Change& c : ctx.changes) {
      if (c.prev.exists && c.prev.lease != 0) {
        auto it = leases_.find(c.prev.lease);
        if (it != leases_.end()) {
          auto k = it->second.keys.find(c.key);
          if (k != it->second.keys.end()) it->second.keys.erase(k);
        }
      }
      if (!c.tomb && c.lease != 0) {
        auto it = leases_.find(c.lease);
        if (it != leases_.end()) it->second.keys.emplace(c.key);
      }
    }
    for (const auto& [id, d] : ctx.leases)
      if (!d.exists) leases_.erase(id);
  }
  if (granted) expiry_cv_.notify_all();
}

std::vector<Event> RocksStore::BuildEvents(BatchCtx& ctx) {
  std::vector<Event> events;
  if (ctx.changes.empty() || hub_->watchers.empty()) return events;
  for (const Change& c : ctx.changes) {
    bool wanted = false;
    for (const auto& [id, w] : hub_->watchers) {
      if (c.main >= w->min_rev && w->range.Contains(c.key)) {
        wanted = true;
        break;
      }
    }
    if (!wanted) continue;
    Event& e = events.emplace_back();
    e.kv.key = c.key;
    e.kv.mod_revision = c.main;
    if (c.tomb) {
      e.type = Event::Type::kDelete;
    } else {
      e.type = Event::Type::kPut;
      e.kv.value = c.value;
      e.kv.create_revision = c.create;
      e.kv.version = c.version;
      e.kv.lease = c.lease;
    }
    if (c.prev.exists) e.prev_kv = MakeKv(ctx, c.key, c.prev, true);
  }
  return events;
}

// --- evaluation (leader only) ---

KeyState RocksStore::Lookup(BatchCtx& ctx, std::string_view key) {
  if (auto it = ctx.overlay.find(key); it != ctx.overlay.end()) return it->second;
  auto it = index_.find(key);
  if (it == index_.end()) return {};
  return KeyState::Of(it->second.back());
}

std::vector<std::pair<std::string_view, KeyState>> RocksStore::Collect(BatchCtx& ctx,
                                                                       const KeyRange& r) {
  std::vector<std::pair<std::string_view, KeyState>> out;
  if (r.single) {
    KeyState st = Lookup(ctx, r.begin);
    if (st.exists) out.emplace_back(r.begin, st);
    return out;
  }
  auto it = index_.lower_bound(r.begin);
  auto ot = ctx.overlay.lower_bound(r.begin);
  while (true) {
    bool iv = it != index_.end() && !r.Past(it->first);
    bool ov = ot != ctx.overlay.end() && !r.Past(ot->first);
    if (!iv && !ov) break;
    if (ov && (!iv || ot->first <= std::string_view(it->first))) {
      if (iv && ot->first == std::string_view(it->first)) ++it;
      if (ot->second.exists) out.emplace_back(ot->first, ot->second);
      ++ot;
    } else {
      const Entry& e = it->second.back();
      if (!e.tomb) out.emplace_back(it->first, KeyState::Of(e));
      ++it;
    }
  }
  return out;
}

std::string RocksStore::LoadValue(BatchCtx& ctx, const KeyState& st) {
  if (!st.exists) return {};
  if (st.pending) return std::string(st.value);
  std::string v;
  auto s = ReadValue(st.mod, st.sub, nullptr, &v);
  if (!s.ok() && ctx.io_error.ok()) ctx.io_error = s;
  return v;
}

KeyValue RocksStore::MakeKv(BatchCtx& ctx, std::string_view key, const KeyState& st,
                            bool with_value) {
  KeyValue kv;
  kv.key = key;
  kv.create_revision = st.create;
  kv.mod_revision = st.mod;
  kv.version = st.version;
  kv.lease = st.lease;
  if (with_value) kv.value = LoadValue(ctx, st);
  return kv;
}

bool RocksStore::EvalCompare(BatchCtx& ctx, const Compare& c) {
  auto items = Collect(ctx, KeyRange::Make(c.key, c.range_end));
  if (items.empty()) return internal::CompareHolds(c, false, 0, 0, 0, 0, {});
  for (const auto& [key, st] : items) {
    std::string value;
    if (c.target == Compare::Target::kValue) value = LoadValue(ctx, st);
    if (!internal::CompareHolds(c, true, st.create, st.mod, st.version, st.lease, value))
      return false;
  }
  return true;
}

void RocksStore::AddChange(BatchCtx& ctx, const Change& c) {
  ctx.scratch.clear();
  EncodeRecord(&ctx.scratch, c.key, c.value, c.create, c.version, c.lease, c.tomb);
  LogKey lk(c.main, c.sub);
  ctx.wb.Put(log_cf_, lk.slice(), ctx.scratch);
  KeyState ns;
  ns.exists = !c.tomb;
  ns.pending = true;
  ns.sub = c.sub;
  ns.create = c.tomb ? 0 : c.create;
  ns.mod = c.main;
  ns.version = c.tomb ? 0 : c.version;
  ns.lease = c.tomb ? 0 : c.lease;
  ns.value = c.value;
  ctx.overlay.insert_or_assign(c.key, ns);
  ctx.changes.push_back(c);
}

void RocksStore::DoPut(BatchCtx& ctx, std::string_view key, std::string_view value, int64_t lease,
                       std::optional<KeyValue>* prev_out, int64_t rev, uint32_t& sub) {
  Change c;
  c.prev = Lookup(ctx, key);
  if (prev_out && c.prev.exists) *prev_out = MakeKv(ctx, key, c.prev, true);
  c.key = key;
  c.value = value;
  c.main = rev;
  c.sub = sub++;
  c.create = c.prev.exists ? c.prev.create : rev;
  c.version = c.prev.exists ? c.prev.version + 1 : 1;
  c.lease = lease;
  AddChange(ctx, c);
}

void RocksStore::DoDelete(BatchCtx& ctx, const KeyRange& range, bool want_prev, DeleteResult* out,
                          int64_t rev, uint32_t& sub) {
  for (const auto& [key, st] : Collect(ctx, range)) {
    if (want_prev) out->prev_kvs.push_back(MakeKv(ctx, key, st, true));
    Change c;
    c.prev = st;
    c.key = key;
    c.main = rev;
    c.sub = sub++;
    c.tomb = true;
    AddChange(ctx, c);
    ++out->deleted;
  }
}

bool RocksStore::LeaseKnown(BatchCtx& ctx, int64_t id, bool require_alive) {
  if (auto it = ctx.leases.find(id); it != ctx.leases.end()) return it->second.exists;
  std::lock_guard<std::mutex> l(lease_mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return false;
  return !require_alive || it->second.expiry_ns > internal::SteadyNowNs();
}

void RocksStore::Evaluate(BatchCtx& ctx, Writer* w) {
  switch (w->kind) {
    case Writer::Kind::kPut: {
      if (w->lease != 0 && !LeaseKnown(ctx, w->lease, true)) {
        w->status = Status::NotFound("lease not found");
        return;
      }
      int64_t rev = ctx.next_rev++;
      uint32_t sub = 0;
      DoPut(ctx, *w->key, *w->value, w->lease, w->prev_kv ? &w->put.prev_kv : nullptr, rev, sub);
      w->put.revision = rev;
      ++ctx.writes;
      return;
    }
    case Writer::Kind::kDelete: {
      uint32_t sub = 0;
      DoDelete(ctx, KeyRange::Make(*w->key, *w->range_end), w->prev_kv, &w->del, ctx.next_rev,
               sub);
      if (sub > 0) {
        ++ctx.next_rev;
        ++ctx.writes;
      }
      w->del.revision = ctx.next_rev - 1;
      return;
    }
    case Writer::Kind::kTxn:
      EvalTxn(ctx, w);
      return;
    case Writer::Kind::kLeaseGrant: {
      int64_t id = w->arg;
      if (id == 0) {
        do id = internal::NewLeaseId();
        while (LeaseKnown(ctx, id, false));
      } else if (LeaseKnown(ctx, id, false)) {
        w->status = Status::AlreadyExists("lease already exists");
        return;
      }
      ctx.leases[id] = {true, w->ttl};
      std::string v;
      PutVarint(&v, static_cast<uint64_t>(w->ttl));
      ctx.wb.Put(meta_cf_, LeaseMetaKey(id), v);
      w->lease_info.id = id;
      w->lease_info.granted_ttl = w->ttl;
      w->lease_info.remaining_ttl = w->ttl;
      ++ctx.writes;
      return;
    }
    case Writer::Kind::kLeaseRevoke:
    case Writer::Kind::kLeaseExpire:
      EvalLeaseRevoke(ctx, w);
      return;
    case Writer::Kind::kCompact:
      w->status = Status::Internal("compaction in a batch");
      return;
  }
}

void RocksStore::EvalTxn(BatchCtx& ctx, Writer* w) {
  const TxnRequest& t = *w->txn;
  TxnResult& result = w->txn_result;
  result.succeeded = true;
  for (const Compare& c : t.compare) {
    if (!EvalCompare(ctx, c)) {
      result.succeeded = false;
      break;
    }
  }
  const auto& ops = result.succeeded ? t.success : t.failure;
  for (const RequestOp& op : ops) {
    if (op.type == RequestOp::Type::kPut && op.lease != 0 && !LeaseKnown(ctx, op.lease, true)) {
      w->status = Status::NotFound("lease not found");
      return;
    }
  }
  int64_t rev = ctx.next_rev;
  uint32_t sub = 0;
  result.responses.reserve(ops.size());
  for (const RequestOp& op : ops) {
    ResponseOp& resp = result.responses.emplace_back();
    resp.type = op.type;
    switch (op.type) {
      case RequestOp::Type::kRange: {
        auto items = Collect(ctx, KeyRange::Make(op.key, op.range.range_end));
        resp.range.count = static_cast<int64_t>(items.size());
        if (op.range.count_only) break;
        size_t n = items.size();
        if (op.range.limit > 0 && static_cast<size_t>(op.range.limit) < n) {
          n = static_cast<size_t>(op.range.limit);
          resp.range.more = true;
        }
        resp.range.kvs.reserve(n);
        for (size_t i = 0; i < n; ++i)
          resp.range.kvs.push_back(
              MakeKv(ctx, items[i].first, items[i].second, !op.range.keys_only));
        break;
      }
      case RequestOp::Type::kPut:
        DoPut(ctx, op.key, op.value, op.lease, op.prev_kv ? &resp.put.prev_kv : nullptr, rev, sub);
        break;
      case RequestOp::Type::kDeleteRange:
        DoDelete(ctx, KeyRange::Make(op.key, op.range.range_end), op.prev_kv, &resp.del, rev, sub);
        break;
    }
  }
  if (sub > 0) {
    ++ctx.next_rev;
    ++ctx.writes;
  }
  result.revision = ctx.next_rev - 1;
  for (ResponseOp& resp : result.responses) {
    resp.range.revision = result.revision;
    resp.put.revision = result.revision;
    resp.del.revision = result.revision;
  }
}

void RocksStore::EvalLeaseRevoke(BatchCtx& ctx, Writer* w) {
  int64_t id = w->arg;
  if (!LeaseKnown(ctx, id, false)) {
    if (w->kind == Writer::Kind::kLeaseRevoke) w->status = Status::NotFound("lease not found");
    return;
  }
  std::vector<std::string_view> candidates;
  {
    std::lock_guard<std::mutex> l(lease_mu_);
    auto it = leases_.find(id);
    if (w->kind == Writer::Kind::kLeaseExpire) {
      // Renewed meanwhile (or granted again in this batch): nothing to do.
      if (ctx.leases.count(id) || it == leases_.end() ||
          it->second.expiry_ns > internal::SteadyNowNs())
        return;
    }
    // The sets are modified only by Publish (this thread): the views stay valid until then.
    if (it != leases_.end())
      for (const std::string& k : it->second.keys) candidates.push_back(k);
  }
  for (const auto& [key, st] : ctx.overlay)
    if (st.exists && st.lease == id) candidates.push_back(key);
  std::sort(candidates.begin(), candidates.end());
  candidates.erase(std::unique(candidates.begin(), candidates.end()), candidates.end());
  int64_t rev = ctx.next_rev;
  uint32_t sub = 0;
  for (std::string_view candidate : candidates) {
    // Changes must reference stable storage (Publish erases the lease's key set): use the
    // overlay's key (a request's or an index node's) or the index node's key.
    std::string_view key;
    KeyState st;
    if (auto ot = ctx.overlay.find(candidate); ot != ctx.overlay.end()) {
      key = ot->first;
      st = ot->second;
    } else if (auto it = index_.find(candidate); it != index_.end()) {
      key = it->first;
      st = KeyState::Of(it->second.back());
    }
    if (!st.exists || st.lease != id) continue;
    Change c;
    c.prev = st;
    c.key = key;
    c.main = rev;
    c.sub = sub++;
    c.tomb = true;
    AddChange(ctx, c);
  }
  if (sub > 0) ++ctx.next_rev;
  ctx.leases[id] = {false, 0};
  ctx.wb.Delete(meta_cf_, LeaseMetaKey(id));
  ++ctx.writes;
}

void RocksStore::RunCompaction(Writer* w) {
  const int64_t rev = w->arg;
  if (!broken_.ok()) {
    w->status = broken_;
  } else if (rev <= compact_.load()) {
    w->status = CompactedError(compact_.load());
  } else if (rev > current_.load()) {
    w->status = Status::FutureRevision("required revision is a future revision");
  } else {
    // Keep, per key, every entry above `rev` and the latest entry at or below it unless that
    // is a tombstone. The leader is the only index writer, so it reads without the lock.
    struct Trim {
      Index::iterator it;
      size_t drop;
    };
    std::vector<Trim> trims;
    rocksdb::WriteBatch wb;
    for (auto it = index_.begin(); it != index_.end(); ++it) {
      const History& h = it->second;
      if (h.front().main > rev) continue;
      size_t n = static_cast<size_t>(
          std::upper_bound(h.begin(), h.end(), rev,
                           [](int64_t a, const Entry& e) { return a < e.main; }) -
          h.begin());
      size_t drop = n - 1 + (h[n - 1].tomb ? 1 : 0);
      if (drop == 0) continue;
      for (size_t i = 0; i < drop; ++i) wb.Delete(log_cf_, LogKey(h[i].main, h[i].sub).slice());
      trims.push_back({it, drop});
    }
    char buf[8];
    EncodeBE64(buf, static_cast<uint64_t>(rev));
    wb.Put(meta_cf_, kMetaCompactKey, rocksdb::Slice(buf, 8));
    rocksdb::Status s;
    {
      // Watch() snapshots the log under compact_mu_ after checking compact_, so it never sees
      // a log with holes below its start revision.
      std::lock_guard<std::mutex> l(compact_mu_);
      compact_.store(rev, std::memory_order_release);
      s = db_->Write(wopts_, &wb);
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    if (!s.ok()) {
      broken_ = Status::IOError("compaction write failed: " + s.ToString());
      w->status = broken_;
    } else {
      std::unique_lock<internal::RwLock> il(index_mu_);
      for (Trim& t : trims) {
        History& h = t.it->second;
        h.erase(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(t.drop));
        if (h.empty()) index_.erase(t.it);
      }
    }
  }
  HandOff({w});
}

// ---------------------------------------------------------------------------------------------
// Watch

Status RocksStore::Replay(const internal::Watcher& w, int64_t from, int64_t to,
                          const rocksdb::Snapshot* snap) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  LogKey upper(to + 1, 0);
  rocksdb::Slice ub = upper.slice();
  ro.iterate_upper_bound = &ub;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, log_cf_));
  std::vector<Event> events;
  int64_t last_main = 0;
  for (it->Seek(LogKey(from, 0).slice()); it->Valid(); it->Next()) {
    int64_t main = static_cast<int64_t>(DecodeBE64(it->key().data()));
    uint32_t sub = static_cast<uint32_t>(DecodeBE64(it->key().data() + 8));
    Record rec;
    if (!DecodeRecord({it->value().data(), it->value().size()}, &rec))
      return Status::Corruption("bad log record at revision " + std::to_string(main));
    if (!w.range.Contains(rec.key)) continue;
    if (events.size() >= kReplayChunk && main != last_main) {
      w.sink->OnEvents(events);
      events.clear();
    }
    last_main = main;
    Event& e = events.emplace_back();
    e.kv.key = rec.key;
    e.kv.mod_revision = main;
    if (rec.tomb) {
      e.type = Event::Type::kDelete;
    } else {
      e.kv.value = rec.value;
      e.kv.create_revision = rec.create;
      e.kv.version = rec.version;
      e.kv.lease = rec.lease;
    }
    std::optional<Entry> prev;
    {
      std::shared_lock<internal::RwLock> l(index_mu_);
      auto hit = index_.find(rec.key);
      if (hit != index_.end()) {
        const History& h = hit->second;
        auto pos = std::lower_bound(h.begin(), h.end(), std::pair<int64_t, uint32_t>(main, sub),
                                    [](const Entry& a, const std::pair<int64_t, uint32_t>& b) {
                                      return std::pair(a.main, a.sub) < b;
                                    });
        if (pos != h.begin() && !std::prev(pos)->tomb) prev = *std::prev(pos);
      }
    }
    if (prev) {
      KeyValue pkv;
      pkv.key = e.kv.key;
      pkv.create_revision = prev->create;
      pkv.mod_revision = prev->main;
      pkv.version = prev->version;
      pkv.lease = prev->lease;
      auto s = ReadValue(prev->main, prev->sub, snap, &pkv.value);
      if (s.ok()) {
        e.prev_kv = std::move(pkv);
      } else if (!s.IsNotFound()) {
        return FromRocks(s);
      }
    }
  }
  if (!it->status().ok()) return FromRocks(it->status());
  if (!events.empty()) w.sink->OnEvents(events);
  return Status::Ok();
}

Result<std::unique_ptr<WatchHandle>> RocksStore::Watch(const std::string& key,
                                                       const std::string& range_end,
                                                       int64_t start_revision, WatchSink* sink) {
  if (start_revision < 0) return Status::InvalidArgument("negative start revision");
  auto w = std::make_shared<internal::Watcher>(key, range_end, sink);
  auto make_handle = [&](uint64_t id) {
    return std::unique_ptr<WatchHandle>(new internal::HubWatchHandle(hub_, id));
  };
  if (start_revision == 0) {
    std::lock_guard<std::mutex> hl(hub_->mu);
    w->min_rev = hub_->last_dispatched.load() + 1;
    return make_handle(hub_->AddLocked(std::move(w)));
  }
  auto snapshot = [&](const rocksdb::Snapshot** snap) -> Status {
    std::lock_guard<std::mutex> l(compact_mu_);
    int64_t compact = compact_.load();
    if (start_revision <= compact) return CompactedError(compact);
    if (snap) *snap = db_->GetSnapshot();
    return Status::Ok();
  };
  auto replay = [&](int64_t from, int64_t to) -> Status {
    const rocksdb::Snapshot* snap = nullptr;
    RC_RETURN_IF_ERROR(snapshot(&snap));
    Status s = Replay(*w, from, to, snap);
    db_->ReleaseSnapshot(snap);
    return s;
  };
  // Phase 1, without blocking the commit path: replay the bulk of the history.
  int64_t replayed = start_revision - 1;
  int64_t upto = hub_->last_dispatched.load();
  if (start_revision <= upto) {
    RC_RETURN_IF_ERROR(replay(start_revision, upto));
    replayed = upto;
  } else {
    RC_RETURN_IF_ERROR(snapshot(nullptr));
  }
  // Phase 2, under the dispatch lock: replay what was dispatched meanwhile, then go live.
  std::lock_guard<std::mutex> hl(hub_->mu);
  int64_t last = hub_->last_dispatched.load();
  if (replayed < last) {
    RC_RETURN_IF_ERROR(replay(replayed + 1, last));
  } else {
    RC_RETURN_IF_ERROR(snapshot(nullptr));
  }
  w->min_rev = std::max(start_revision, last + 1);
  return make_handle(hub_->AddLocked(std::move(w)));
}

// ---------------------------------------------------------------------------------------------
// Leases

Result<LeaseInfo> RocksStore::LeaseGrant(int64_t id, int64_t ttl) {
  if (id < 0) return Status::InvalidArgument("negative lease id");
  if (ttl > internal::kMaxLeaseTtl) return Status::InvalidArgument("lease TTL too large");
  if (ttl <= 0) ttl = 1;
  Writer w(Writer::Kind::kLeaseGrant);
  w.arg = id;
  w.ttl = ttl;
  Submit(&w);
  if (!w.status.ok()) return w.status;
  return std::move(w.lease_info);
}

Status RocksStore::LeaseRevoke(int64_t id) {
  Writer w(Writer::Kind::kLeaseRevoke);
  w.arg = id;
  Submit(&w);
  return w.status;
}

Result<int64_t> RocksStore::LeaseKeepAlive(int64_t id) {
  std::lock_guard<std::mutex> l(lease_mu_);
  auto it = leases_.find(id);
  int64_t now = internal::SteadyNowNs();
  if (it == leases_.end() || it->second.expiry_ns <= now)
    return Status::NotFound("lease not found");
  it->second.expiry_ns = now + it->second.ttl * 1'000'000'000;
  return it->second.ttl;
}

Result<LeaseInfo> RocksStore::LeaseTimeToLive(int64_t id, bool with_keys) {
  std::lock_guard<std::mutex> l(lease_mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return Status::NotFound("lease not found");
  LeaseInfo info;
  info.id = id;
  info.granted_ttl = it->second.ttl;
  info.remaining_ttl = internal::RemainingTtl(it->second.expiry_ns, internal::SteadyNowNs());
  if (with_keys) info.keys.assign(it->second.keys.begin(), it->second.keys.end());
  return info;
}

std::vector<int64_t> RocksStore::Leases() {
  std::lock_guard<std::mutex> l(lease_mu_);
  std::vector<int64_t> ids;
  ids.reserve(leases_.size());
  for (const auto& [id, ls] : leases_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  return ids;
}

void RocksStore::ExpireLoop() {
  std::unique_lock<std::mutex> l(lease_mu_);
  while (!stop_) {
    int64_t now = internal::SteadyNowNs();
    int64_t next = now + 500'000'000;
    std::vector<int64_t> expired;
    for (const auto& [id, ls] : leases_) {
      if (ls.expiry_ns <= now) {
        expired.push_back(id);
      } else {
        next = std::min(next, ls.expiry_ns);
      }
    }
    if (!expired.empty()) {
      l.unlock();
      bool failed = false;
      for (int64_t id : expired) {
        Writer w(Writer::Kind::kLeaseExpire);
        w.arg = id;
        Submit(&w);
        failed = failed || !w.status.ok();
      }
      l.lock();
      // Re-scan at once unless revocation is failing (then back off).
      if (!failed) continue;
      next = now + 1'000'000'000;
    }
    expiry_cv_.wait_for(l, std::chrono::nanoseconds(std::max<int64_t>(next - now, 1'000'000)));
  }
}

// ---------------------------------------------------------------------------------------------

StoreStatus RocksStore::GetStatus() {
  StoreStatus st;
  st.revision = current_.load();
  st.compact_revision = compact_.load();
  st.key_count = key_count_.load();
  for (auto* cf : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(cf, rocksdb::DB::Properties::kLiveSstFilesSize, &v))
      st.db_size_bytes += static_cast<int64_t>(v);
    if (db_->GetIntProperty(cf, rocksdb::DB::Properties::kCurSizeAllMemTables, &v))
      st.db_size_bytes += static_cast<int64_t>(v);
  }
  return st;
}

}  // namespace

Result<std::unique_ptr<Store>> OpenRocksStore(const RocksStoreOptions& options) {
  auto store = std::make_unique<RocksStore>(options);
  RC_RETURN_IF_ERROR(store->Init());
  return std::unique_ptr<Store>(std::move(store));
}

Result<RocksStoreStats> GetRocksStoreStats(Store& store) {
  auto* rs = dynamic_cast<RocksStore*>(&store);
  if (!rs) return Status::InvalidArgument("not a RocksDB store");
  return rs->Stats();
}

}  // namespace rc::store
