// The etcd-backed Store: every operation is an etcd v3 gRPC call (see etcd_store.h and the
// README's "The etcd store").
#include "rc/store/etcd_store.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "mvccpb/kv.pb.h"

namespace rc::store {
namespace {

namespace pb = ::etcdserverpb;
// gRPC deadlines are system_clock time points.
using Clock = std::chrono::system_clock;

// The whole key space in etcd's convention (etcd refuses an empty key).
const std::string kNul(1, '\0');

// etcd refuses an empty key; with a range end, "" and "\0" select the same keys.
std::string EtcdKey(const std::string& key, const std::string& range_end) {
  if (key.empty() && !range_end.empty()) return kNul;
  return key;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// Maps etcd's gRPC errors (rpctypes) to the Store's status codes.
Status FromGrpc(const grpc::Status& s) {
  const std::string& m = s.error_message();
  switch (s.error_code()) {
    case grpc::StatusCode::OK:
      return Status::Ok();
    case grpc::StatusCode::OUT_OF_RANGE:
      if (Contains(m, "compacted")) return Status::Compacted(m);
      if (Contains(m, "future revision")) return Status::FutureRevision(m);
      return Status::InvalidArgument(m);  // e.g. "too large lease TTL"
    case grpc::StatusCode::NOT_FOUND:
      return Status::NotFound(m);
    case grpc::StatusCode::ALREADY_EXISTS:
      return Status::AlreadyExists(m);
    case grpc::StatusCode::FAILED_PRECONDITION:
      if (Contains(m, "already exists")) return Status::AlreadyExists(m);
      return Status::InvalidArgument(m);
    case grpc::StatusCode::INVALID_ARGUMENT:
      if (Contains(m, "too large")) return Status::ResourceExhausted(m);
      return Status::InvalidArgument(m);
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Status::ResourceExhausted(m);
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      return Status::Unavailable("etcd: " + m);
    default:
      return Status::Internal("etcd: " + m + " (gRPC code " +
                              std::to_string(static_cast<int>(s.error_code())) + ")");
  }
}

// A failure that says nothing reached the server's state machine, or that the transport is
// gone: worth trying the next endpoint (for requests that may be repeated).
bool IsTransportFailure(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED;
}

KeyValue FromProto(const mvccpb::KeyValue& kv) {
  KeyValue out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

Event FromProto(const mvccpb::Event& ev) {
  Event out;
  out.type = ev.type() == mvccpb::Event::DELETE ? Event::Type::kDelete : Event::Type::kPut;
  out.kv = FromProto(ev.kv());
  if (out.type == Event::Type::kDelete) {
    out.kv = KeyValue{.key = ev.kv().key(), .mod_revision = ev.kv().mod_revision()};
  }
  if (ev.has_prev_kv()) out.prev_kv = FromProto(ev.prev_kv());
  return out;
}

void ToProto(const std::string& key, const RangeOptions& o, pb::RangeRequest* r) {
  r->set_key(EtcdKey(key, o.range_end));
  r->set_range_end(o.range_end);
  r->set_revision(o.revision);
  r->set_limit(o.limit);
  r->set_keys_only(o.keys_only);
  r->set_count_only(o.count_only);
}

RangeResult FromProto(const pb::RangeResponse& r) {
  RangeResult out;
  out.kvs.reserve(r.kvs_size());
  for (const auto& kv : r.kvs()) out.kvs.push_back(FromProto(kv));
  out.count = r.count();
  out.more = r.more();
  out.revision = r.header().revision();
  return out;
}

pb::Compare ToProto(const Compare& c) {
  pb::Compare out;
  out.set_key(EtcdKey(c.key, c.range_end));
  out.set_range_end(c.range_end);
  switch (c.result) {
    case Compare::Result::kEqual: out.set_result(pb::Compare::EQUAL); break;
    case Compare::Result::kGreater: out.set_result(pb::Compare::GREATER); break;
    case Compare::Result::kLess: out.set_result(pb::Compare::LESS); break;
    case Compare::Result::kNotEqual: out.set_result(pb::Compare::NOT_EQUAL); break;
  }
  switch (c.target) {
    case Compare::Target::kVersion:
      out.set_target(pb::Compare::VERSION);
      out.set_version(c.number);
      break;
    case Compare::Target::kCreate:
      out.set_target(pb::Compare::CREATE);
      out.set_create_revision(c.number);
      break;
    case Compare::Target::kMod:
      out.set_target(pb::Compare::MOD);
      out.set_mod_revision(c.number);
      break;
    case Compare::Target::kValue:
      out.set_target(pb::Compare::VALUE);
      out.set_value(c.value);
      break;
    case Compare::Target::kLease:
      out.set_target(pb::Compare::LEASE);
      out.set_lease(c.number);
      break;
  }
  return out;
}

Status ToProto(const RequestOp& op, pb::RequestOp* out) {
  switch (op.type) {
    case RequestOp::Type::kRange:
      if (op.range.revision != 0) {
        return Status::InvalidArgument("a range inside a txn must not name a revision");
      }
      ToProto(op.key, op.range, out->mutable_request_range());
      return Status::Ok();
    case RequestOp::Type::kPut: {
      auto* p = out->mutable_request_put();
      p->set_key(op.key);
      p->set_value(op.value);
      p->set_lease(op.lease);
      p->set_prev_kv(op.prev_kv);
      return Status::Ok();
    }
    case RequestOp::Type::kDeleteRange: {
      auto* d = out->mutable_request_delete_range();
      d->set_key(EtcdKey(op.key, op.range.range_end));
      d->set_range_end(op.range.range_end);
      d->set_prev_kv(op.prev_kv);
      return Status::Ok();
    }
  }
  return Status::InvalidArgument("unknown op type");
}

DeleteResult FromProto(const pb::DeleteRangeResponse& r, int64_t revision) {
  DeleteResult out;
  out.revision = revision;
  out.deleted = r.deleted();
  for (const auto& kv : r.prev_kvs()) out.prev_kvs.push_back(FromProto(kv));
  return out;
}

// One member: its channel and stubs.
struct Endpoint {
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Lease::Stub> lease;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
};

// The connections and the retry policy, shared by the store and its watches (a watch handle
// may outlive the store).
class Client {
 public:
  explicit Client(EtcdStoreOptions options) : options_(std::move(options)) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(-1);
    args.SetMaxSendMessageSize(-1);
    // Reconnect quickly after a member restarts (gRPC's default starts at 1 s, grows to 120 s).
    int max_backoff = static_cast<int>(std::max<int64_t>(100, options_.max_reconnect_backoff.count()));
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, std::min(100, max_backoff));
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, std::min(100, max_backoff));
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, max_backoff);
    // Detect a dead peer on idle watch streams (etcd accepts pings every >= 5 s with calls).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
    for (const auto& address : options_.endpoints) {
      auto e = std::make_unique<Endpoint>();
      e->address = address;
      e->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      e->kv = pb::KV::NewStub(e->channel);
      e->watch = pb::Watch::NewStub(e->channel);
      e->lease = pb::Lease::NewStub(e->channel);
      e->maintenance = pb::Maintenance::NewStub(e->channel);
      endpoints_.push_back(std::move(e));
    }
  }

  const EtcdStoreOptions& options() const { return options_; }
  size_t size() const { return endpoints_.size(); }
  size_t current() const { return current_.load(std::memory_order_relaxed); }
  Endpoint& endpoint(size_t i) { return *endpoints_[i % endpoints_.size()]; }

  // Moves on from endpoint `from` (unless another thread already did).
  void Rotate(size_t from) {
    size_t expected = from;
    current_.compare_exchange_strong(expected, (from + 1) % endpoints_.size());
  }

  // Waits until the endpoint's channel is connected, at most until `deadline`.
  static bool WaitConnected(Endpoint& e, Clock::time_point deadline) {
    auto state = e.channel->GetState(/*try_to_connect=*/true);
    while (state != GRPC_CHANNEL_READY) {
      if (state == GRPC_CHANNEL_SHUTDOWN) return false;
      if (!e.channel->WaitForStateChange(state, deadline)) return false;
      state = e.channel->GetState(true);
    }
    return true;
  }

  // Runs `call(endpoint, context)` on the current endpoint. `repeatable`: the request may run
  // twice (reads, keep-alives); it is retried on the next endpoints on transport failures until
  // the request timeout. Other requests are sent once to a connected endpoint: a failure after
  // sending leaves the outcome open and is returned as kUnavailable.
  template <typename Call>
  grpc::Status Run(bool repeatable, Call&& call) {
    const auto deadline = Clock::now() + options_.request_timeout;
    grpc::Status last(grpc::StatusCode::UNAVAILABLE, "no endpoint answered");
    for (int attempt = 0;; ++attempt) {
      size_t index = current();
      Endpoint& e = endpoint(index);
      auto dial_deadline = std::min(deadline, Clock::now() + options_.dial_timeout);
      if (attempt > 0 || e.channel->GetState(false) != GRPC_CHANNEL_READY) {
        if (!WaitConnected(e, dial_deadline)) {
          last = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                              "cannot connect to etcd endpoint " + e.address);
          Rotate(index);
          if (Clock::now() >= deadline) return last;
          continue;
        }
      }
      grpc::ClientContext context;
      context.set_deadline(deadline);
      grpc::Status s = call(e, &context);
      if (s.ok() || !IsTransportFailure(s) || !repeatable) {
        if (!s.ok() && IsTransportFailure(s)) Rotate(index);
        return s;
      }
      last = s;
      Rotate(index);
      if (Clock::now() >= deadline) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(200, 10 << std::min(attempt, 4))));
    }
  }

  // Reads: retried across endpoints.
  Result<pb::RangeResponse> Range(const pb::RangeRequest& request) {
    pb::RangeResponse response;
    grpc::Status s = Run(true, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.kv->Range(c, request, &response);
    });
    if (!s.ok()) return FromGrpc(s);
    NoteRevision(response.header().revision());
    return response;
  }

  // Reads `revision` of the single key "\0": ok, kCompacted or kFutureRevision.
  Status Probe(int64_t revision) {
    pb::RangeRequest r;
    r.set_key(kNul);
    r.set_revision(revision);
    r.set_count_only(true);
    auto res = Range(r);
    return res.ok() ? Status::Ok() : res.status();
  }

  // The compaction revision. etcd does not report it, but a read at revision r fails iff
  // r < compaction revision: the smallest readable revision is it (binary search; the last
  // known value is checked first, two reads when nothing changed).
  Result<int64_t> DiscoverCompactRevision() {
    int64_t hint = compact_hint_.load();
    if (hint > 1) {
      Status at = Probe(hint);
      if (at.ok()) {
        Status before = Probe(hint - 1);
        if (before.IsCompacted()) return hint;
        if (!before.ok()) return before;
      } else if (!at.IsCompacted()) {
        return at;
      }
    }
    Status first = Probe(1);
    if (first.ok()) return hint == 1 ? 1 : 0;  // never compacted (or compacted at 1)
    if (!first.IsCompacted()) return first;
    pb::RangeRequest cur;
    cur.set_key(kNul);
    cur.set_count_only(true);
    auto r = Range(cur);
    if (!r.ok()) return r.status();
    int64_t lo = 2, hi = std::max<int64_t>(2, r->header().revision());  // smallest readable in [lo, hi]
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      Status s = Probe(mid);
      if (s.ok() || s.code() == StatusCode::kFutureRevision) {
        hi = mid;
      } else if (s.IsCompacted()) {
        lo = mid + 1;
      } else {
        return s;
      }
    }
    NoteCompacted(lo);
    return lo;
  }

  void NoteRevision(int64_t revision) {
    int64_t cur = last_revision_.load();
    while (revision > cur && !last_revision_.compare_exchange_weak(cur, revision)) {
    }
  }
  void NoteCompacted(int64_t revision) {
    int64_t cur = compact_hint_.load();
    while (revision > cur && !compact_hint_.compare_exchange_weak(cur, revision)) {
    }
  }
  int64_t last_revision() const { return last_revision_.load(); }
  int64_t compact_hint() const { return compact_hint_.load(); }

 private:
  const EtcdStoreOptions options_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::atomic<size_t> current_{0};
  std::atomic<int64_t> last_revision_{0};
  std::atomic<int64_t> compact_hint_{0};
};

// How long Watch waits for the history after the watch exists (see EtcdWatch::WaitStarted).
constexpr std::chrono::milliseconds kHistorySyncGrace{3000};

std::string CompactedMessage(int64_t revision, int64_t compact_revision) {
  return "etcd: required revision " + std::to_string(revision) +
         " has been compacted (compaction revision " + std::to_string(compact_revision) + ")";
}

// One Store watch: a thread owning one etcd watch stream at a time, re-created from the
// revision after the last delivered event when it breaks.
class EtcdWatch final : public WatchHandle {
 public:
  EtcdWatch(std::shared_ptr<Client> client, std::string key, std::string range_end,
            int64_t start_revision, WatchSink* sink)
      : client_(std::move(client)),
        key_(EtcdKey(key, range_end)),
        range_end_(std::move(range_end)),
        next_revision_(start_revision),
        sink_(sink) {
    thread_ = std::thread([this] { Run(); });
  }

  ~EtcdWatch() override {
    {
      std::lock_guard<std::mutex> l(mu_);
      stop_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    cv_.notify_all();
    thread_.join();
  }

  // Waits until the watch is established (until `deadline`) and the history up to the revision
  // current at its creation reached the sink (at most `sync_grace` more: if the
  // synchronization does not finish in time, the history still arrives in order, just after
  // the return). Not ok: kCompacted, kUnavailable on timeout, or the server's refusal; the
  // watch is then dead and OnClosed is never called.
  Status WaitStarted(Clock::time_point deadline, std::chrono::milliseconds sync_grace) {
    std::unique_lock<std::mutex> l(mu_);
    if (!cv_.wait_until(l, deadline, [&] { return created_ || synced_ || closed_; })) {
      return Status::Unavailable("etcd: watch not established in time (no endpoint answered)");
    }
    cv_.wait_for(l, sync_grace, [&] { return synced_ || closed_; });
    if (closed_) return closed_status_;
    returned_ = true;
    return Status::Ok();
  }

 private:
  enum class End { kBroken, kClosed, kStopped };

  void Run() {
    int failures = 0;
    while (true) {
      size_t index = client_->current();
      auto begun = Clock::now();
      Status closed;
      End end = RunStream(client_->endpoint(index), &closed);
      if (end == End::kStopped) return;
      if (end == End::kClosed) {
        bool returned;
        {
          std::lock_guard<std::mutex> l(mu_);
          returned = returned_;
          if (!returned_) {
            closed_ = true;
            closed_status_ = closed;
          }
        }
        cv_.notify_all();
        if (returned) sink_->OnClosed(closed);
        return;
      }
      client_->Rotate(index);
      if (Clock::now() - begun > std::chrono::seconds(5)) failures = 0;  // was healthy a while
      ++failures;
      auto pause = std::min<std::chrono::milliseconds>(
          client_->options().max_reconnect_backoff,
          std::chrono::milliseconds(10 << std::min(failures, 7)));
      // The first retry on another endpoint goes at once (failover); later ones back off.
      if (failures == 1 && client_->size() > 1) pause = std::chrono::milliseconds(0);
      std::unique_lock<std::mutex> l(mu_);
      if (cv_.wait_for(l, pause, [&] { return stop_; })) return;
    }
  }

  void MarkCreated() {
    {
      std::lock_guard<std::mutex> l(mu_);
      created_ = true;
    }
    cv_.notify_all();
  }

  void MarkSynced() {
    {
      std::lock_guard<std::mutex> l(mu_);
      created_ = true;
      synced_ = true;
    }
    cv_.notify_all();
  }

  // Client::WaitConnected in slices, so that destroying the handle does not wait for it.
  bool WaitConnected(Endpoint& e, Clock::time_point deadline) {
    while (true) {
      auto slice = std::min(deadline, Clock::now() + std::chrono::milliseconds(50));
      if (Client::WaitConnected(e, slice)) return true;
      {
        std::lock_guard<std::mutex> l(mu_);
        if (stop_) return false;
      }
      if (Clock::now() >= deadline) return false;
    }
  }

  // Whether a caller still waits for the history (only the first stream synchronizes).
  bool NeedsSync() {
    std::lock_guard<std::mutex> l(mu_);
    return !synced_ && !returned_;
  }

  static bool SendCreate(grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>* stream,
                         const std::string& key, const std::string& range_end, int64_t start,
                         bool prev_kv) {
    pb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(key);
    c->set_range_end(range_end);
    c->set_start_revision(start);
    c->set_prev_kv(prev_kv);
    return stream->Write(req);
  }

  static bool SendCancel(grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>* stream,
                         int64_t id) {
    pb::WatchRequest req;
    req.mutable_cancel_request()->set_watch_id(id);
    return stream->Write(req);
  }

  // One stream: create the watch from next_revision_, synchronize with the history (first
  // stream only), deliver events until the stream ends.
  End RunStream(Endpoint& e, Status* closed) {
    grpc::ClientContext context;
    {
      std::lock_guard<std::mutex> l(mu_);
      if (stop_) return End::kStopped;
      context_ = &context;
    }
    auto end = [&](End result) {
      std::lock_guard<std::mutex> l(mu_);
      context_ = nullptr;
      return stop_ ? End::kStopped : result;
    };
    // Open the stream only on a connected channel (the loop above moves on to the next
    // endpoint otherwise); fail-fast calls on a reconnecting channel keep resetting its
    // connection attempts.
    if (!WaitConnected(e, Clock::now() + client_->options().dial_timeout)) {
      return end(End::kBroken);
    }
    context.set_wait_for_ready(false);
    // Like clientv3's WithRequireLeader: a member that loses its leader ends the stream ("no
    // leader") instead of leaving it silent, and the watch moves to another member.
    context.AddMetadata("hasleader", "true");
    auto stream = e.watch->Watch(&context);
    const int64_t from = next_revision_;
    if (!SendCreate(stream.get(), key_, range_end_, from, /*prev_kv=*/true)) {
      stream->Finish();
      return end(End::kBroken);
    }
    // History synchronization (Watch returns after it): etcd replays history asynchronously
    // (a sync pass every 100 ms over all unsynced watchers) and does not order its progress
    // responses with events in 3.4. A sentinel watch over the whole key space from revision R
    // (the current one) always gets an event; once it did, the pass that handled the sentinel
    // is over, and our watch was handled in that pass or an earlier one. Since both may share a
    // pass (in any order), a second sentinel created after the first one's answer is needed:
    // its answer comes after everything the earlier pass sent, incl. our history.
    // etcd splits a long history into responses of 1000 revisions, one per sync pass; a
    // response with that many may be followed by more, so the sentinel rounds repeat then.
    constexpr int kEtcdWatchBatchRevisions = 1000;
    const bool sync = NeedsSync() && from > 0;
    int last_batch_revisions = 0;
    int64_t watch_id = -1;
    int64_t sentinel_id = -1;
    int sentinel_round = 0;
    bool awaiting_sentinel_created = false;
    int64_t sync_revision = 0;
    pb::WatchResponse resp;
    std::vector<Event> events;
    while (stream->Read(&resp)) {
      if (watch_id < 0) {
        if (!resp.created()) continue;
        if (resp.canceled()) {
          stream->WritesDone();
          context.TryCancel();
          stream->Finish();
          if (resp.compact_revision() > 0) {
            *closed = Status::Compacted(CompactedMessage(from, resp.compact_revision()));
          } else {
            *closed = Status::InvalidArgument("etcd refused the watch: " + resp.cancel_reason());
          }
          return end(End::kClosed);
        }
        watch_id = resp.watch_id();
        sync_revision = resp.header().revision();
        client_->NoteRevision(sync_revision);
        if (next_revision_ == 0) next_revision_ = sync_revision + 1;
        if (sync && from <= sync_revision && sync_revision >= 2) {
          MarkCreated();
          sentinel_round = 1;
          awaiting_sentinel_created = true;
          if (!SendCreate(stream.get(), kNul, kNul, sync_revision, false)) break;
        } else {
          MarkSynced();
        }
        continue;
      }
      if (resp.watch_id() == watch_id && !resp.created()) {
        if (resp.compact_revision() > 0 || resp.canceled()) {
          stream->WritesDone();
          context.TryCancel();
          stream->Finish();
          if (resp.compact_revision() > 0) {
            *closed = Status::Compacted(CompactedMessage(next_revision_, resp.compact_revision()));
            return end(End::kClosed);
          }
          return end(End::kBroken);  // canceled by the server (e.g. it is stopping): resume
        }
        events.clear();
        last_batch_revisions = 0;
        int64_t previous = -1;
        for (const auto& ev : resp.events()) {
          if (ev.kv().mod_revision() != previous) ++last_batch_revisions;
          previous = ev.kv().mod_revision();
          if (ev.kv().mod_revision() < next_revision_) continue;  // already delivered
          events.push_back(FromProto(ev));
        }
        if (!events.empty()) {
          next_revision_ = events.back().kv.mod_revision + 1;
          sink_->OnEvents(events);
        }
        continue;
      }
      if (sentinel_round > 0) {
        if (awaiting_sentinel_created && resp.created()) {
          awaiting_sentinel_created = false;
          sentinel_id = resp.watch_id();
          if (!resp.canceled()) continue;
        }
        if (!awaiting_sentinel_created && resp.watch_id() == sentinel_id) {
          // The sentinel's first answer (events, or a cancel when compacted past R).
          if (!resp.canceled() && !SendCancel(stream.get(), sentinel_id)) break;
          sentinel_id = -1;
          bool more_history = next_revision_ <= sync_revision &&
                              last_batch_revisions >= kEtcdWatchBatchRevisions;
          if (sentinel_round == 1 || more_history) {
            sentinel_round = sentinel_round == 1 ? 2 : 1;
            awaiting_sentinel_created = true;
            if (!SendCreate(stream.get(), kNul, kNul, sync_revision, false)) break;
          } else {
            sentinel_round = 0;
            MarkSynced();
          }
        }
      }
      // Anything else: answers of cancelled sentinels, broadcast progress notifications.
    }
    context.TryCancel();
    stream->Finish();
    return end(End::kBroken);
  }

  std::shared_ptr<Client> client_;
  const std::string key_;
  const std::string range_end_;
  int64_t next_revision_;  // only the thread touches it (0: "from now" until created)
  WatchSink* const sink_;
  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_:
  bool stop_ = false;
  bool created_ = false;   // the watch exists on the server
  bool synced_ = false;    // its history up to the creation revision reached the sink
  bool returned_ = false;  // Watch() handed it out: an end goes to OnClosed
  bool closed_ = false;    // ended before Watch() returned, with closed_status_
  Status closed_status_;
  grpc::ClientContext* context_ = nullptr;   // guarded by mu_
  std::thread thread_;
};

class EtcdStore final : public Store {
 public:
  explicit EtcdStore(std::shared_ptr<Client> client) : client_(std::move(client)) {}

  Result<RangeResult> Range(const std::string& key, const RangeOptions& options) override {
    pb::RangeRequest req;
    ToProto(key, options, &req);
    auto r = client_->Range(req);
    if (!r.ok()) return r.status();
    return FromProto(*r);
  }

  Result<PutResult> Put(const std::string& key, const std::string& value, int64_t lease,
                        bool prev_kv) override {
    pb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    req.set_lease(lease);
    req.set_prev_kv(prev_kv);
    pb::PutResponse resp;
    grpc::Status s = client_->Run(false, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.kv->Put(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    client_->NoteRevision(resp.header().revision());
    PutResult out;
    out.revision = resp.header().revision();
    if (resp.has_prev_kv()) out.prev_kv = FromProto(resp.prev_kv());
    return out;
  }

  Result<DeleteResult> DeleteRange(const std::string& key, const std::string& range_end,
                                   bool prev_kv) override {
    pb::DeleteRangeRequest req;
    req.set_key(EtcdKey(key, range_end));
    req.set_range_end(range_end);
    req.set_prev_kv(prev_kv);
    pb::DeleteRangeResponse resp;
    grpc::Status s = client_->Run(false, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.kv->DeleteRange(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    client_->NoteRevision(resp.header().revision());
    return FromProto(resp, resp.header().revision());
  }

  Result<TxnResult> Txn(const TxnRequest& request) override {
    pb::TxnRequest req;
    for (const auto& c : request.compare) *req.add_compare() = ToProto(c);
    for (const auto& op : request.success) RC_RETURN_IF_ERROR(ToProto(op, req.add_success()));
    for (const auto& op : request.failure) RC_RETURN_IF_ERROR(ToProto(op, req.add_failure()));
    bool writes = false;
    for (const auto* ops : {&request.success, &request.failure}) {
      for (const auto& op : *ops) writes |= op.type != RequestOp::Type::kRange;
    }
    pb::TxnResponse resp;
    grpc::Status s = client_->Run(!writes, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.kv->Txn(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    const int64_t revision = resp.header().revision();
    client_->NoteRevision(revision);
    TxnResult out;
    out.succeeded = resp.succeeded();
    out.revision = revision;
    for (const auto& r : resp.responses()) {
      ResponseOp op;
      switch (r.response_case()) {
        case pb::ResponseOp::kResponseRange:
          op.type = RequestOp::Type::kRange;
          op.range = FromProto(r.response_range());
          op.range.revision = revision;
          break;
        case pb::ResponseOp::kResponsePut:
          op.type = RequestOp::Type::kPut;
          op.put.revision = revision;
          if (r.response_put().has_prev_kv()) op.put.prev_kv = FromProto(r.response_put().prev_kv());
          break;
        case pb::ResponseOp::kResponseDeleteRange:
          op.type = RequestOp::Type::kDeleteRange;
          op.del = FromProto(r.response_delete_range(), revision);
          break;
        default:
          return Status::Internal("etcd: unexpected txn response op");
      }
      out.responses.push_back(std::move(op));
    }
    return out;
  }

  Status Compact(int64_t revision) override {
    pb::CompactionRequest req;
    req.set_revision(revision);
    req.set_physical(true);  // return once the compaction is done
    pb::CompactionResponse resp;
    // Not repeated: a retry after a lost answer would report kCompacted for a success.
    grpc::Status s = client_->Run(false, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.kv->Compact(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    client_->NoteCompacted(revision);
    return Status::Ok();
  }

  Result<std::unique_ptr<WatchHandle>> Watch(const std::string& key, const std::string& range_end,
                                             int64_t start_revision, WatchSink* sink) override {
    // The Store refuses start <= compaction revision; etcd only start < compaction revision.
    // A read at start - 1 fails iff start - 1 < compaction revision.
    if (start_revision == 1) {
      auto compact = client_->DiscoverCompactRevision();
      if (!compact.ok()) return compact.status();
      if (*compact >= 1) return Status::Compacted(CompactedMessage(1, *compact));
    } else if (start_revision > 1) {
      Status s = client_->Probe(start_revision - 1);
      if (s.IsCompacted()) {
        auto compact = client_->DiscoverCompactRevision();
        return Status::Compacted(CompactedMessage(start_revision, compact.ok() ? *compact : 0));
      }
      if (!s.ok() && s.code() != StatusCode::kFutureRevision) return s;
    }
    auto watch = std::make_unique<EtcdWatch>(client_, key, range_end, start_revision, sink);
    Status started = watch->WaitStarted(Clock::now() + client_->options().request_timeout,
                                        kHistorySyncGrace);
    if (!started.ok()) {
      if (started.IsCompacted()) {
        auto compact = client_->DiscoverCompactRevision();
        if (compact.ok()) return Status::Compacted(CompactedMessage(start_revision, *compact));
      }
      return started;
    }
    return std::unique_ptr<WatchHandle>(std::move(watch));
  }

  Result<LeaseInfo> LeaseGrant(int64_t id, int64_t ttl) override {
    pb::LeaseGrantRequest req;
    req.set_id(id);
    req.set_ttl(ttl);
    pb::LeaseGrantResponse resp;
    grpc::Status s = client_->Run(false, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.lease->LeaseGrant(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    if (!resp.error().empty()) return Status::Internal("etcd: " + resp.error());
    LeaseInfo out;
    out.id = resp.id();
    out.granted_ttl = resp.ttl();
    out.remaining_ttl = resp.ttl();
    return out;
  }

  Status LeaseRevoke(int64_t id) override {
    pb::LeaseRevokeRequest req;
    req.set_id(id);
    pb::LeaseRevokeResponse resp;
    grpc::Status s = client_->Run(false, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.lease->LeaseRevoke(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    client_->NoteRevision(resp.header().revision());
    return Status::Ok();
  }

  Result<int64_t> LeaseKeepAlive(int64_t id) override {
    pb::LeaseKeepAliveResponse resp;
    grpc::Status s = client_->Run(true, [&](Endpoint& e, grpc::ClientContext* c) {
      auto stream = e.lease->LeaseKeepAlive(c);
      pb::LeaseKeepAliveRequest req;
      req.set_id(id);
      bool ok = stream->Write(req) && stream->Read(&resp);
      stream->WritesDone();
      grpc::Status finished = stream->Finish();
      if (ok) return grpc::Status::OK;
      return finished.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keep-alive stream ended")
                           : finished;
    });
    if (!s.ok()) return FromGrpc(s);
    if (resp.ttl() <= 0) return Status::NotFound("etcdserver: requested lease not found");
    return resp.ttl();
  }

  Result<LeaseInfo> LeaseTimeToLive(int64_t id, bool with_keys) override {
    pb::LeaseTimeToLiveRequest req;
    req.set_id(id);
    req.set_keys(with_keys);
    pb::LeaseTimeToLiveResponse resp;
    grpc::Status s = client_->Run(true, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.lease->LeaseTimeToLive(c, req, &resp);
    });
    if (!s.ok()) return FromGrpc(s);
    if (resp.ttl() < 0) return Status::NotFound("etcdserver: requested lease not found");
    LeaseInfo out;
    out.id = resp.id();
    out.granted_ttl = resp.grantedttl();
    out.remaining_ttl = resp.ttl();
    for (const auto& k : resp.keys()) out.keys.push_back(k);
    return out;
  }

  std::vector<int64_t> Leases() override {
    pb::LeaseLeasesRequest req;
    pb::LeaseLeasesResponse resp;
    grpc::Status s = client_->Run(true, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.lease->LeaseLeases(c, req, &resp);
    });
    std::vector<int64_t> ids;
    if (!s.ok()) return ids;
    for (const auto& l : resp.leases()) ids.push_back(l.id());
    return ids;
  }

  int64_t CurrentRevision() override {
    pb::RangeRequest req;
    req.set_key(kNul);
    req.set_count_only(true);
    auto r = client_->Range(req);
    return r.ok() ? r->header().revision() : client_->last_revision();
  }

  int64_t CompactRevision() override {
    auto r = client_->DiscoverCompactRevision();
    return r.ok() ? *r : client_->compact_hint();
  }

  StoreStatus GetStatus() override {
    StoreStatus out;
    pb::RangeRequest req;
    req.set_key(kNul);
    req.set_range_end(kNul);
    req.set_count_only(true);
    auto r = client_->Range(req);
    if (r.ok()) {
      out.revision = r->header().revision();
      out.key_count = r->count();
    } else {
      out.revision = client_->last_revision();
    }
    out.compact_revision = CompactRevision();
    pb::StatusRequest sreq;
    pb::StatusResponse sresp;
    grpc::Status s = client_->Run(true, [&](Endpoint& e, grpc::ClientContext* c) {
      return e.maintenance->Status(c, sreq, &sresp);
    });
    if (s.ok()) out.db_size_bytes = sresp.dbsize();
    return out;
  }

 private:
  std::shared_ptr<Client> client_;
};

}  // namespace

Result<std::vector<std::string>> ParseEtcdEndpoints(std::string_view spec) {
  constexpr std::string_view kScheme = "etcd://";
  if (spec.substr(0, kScheme.size()) == kScheme) spec.remove_prefix(kScheme.size());
  std::vector<std::string> out;
  while (!spec.empty()) {
    size_t comma = spec.find(',');
    std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.substr(0, 7) == "http://") item.remove_prefix(7);
    while (!item.empty() && item.back() == '/') item.remove_suffix(1);
    if (item.empty()) continue;
    if (item.find("://") != std::string_view::npos) {
      return Status::InvalidArgument("etcd endpoint " + std::string(item) +
                                     ": only plain host:port (or http://) is supported");
    }
    size_t colon = item.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
      return Status::InvalidArgument("etcd endpoint " + std::string(item) + ": want host:port");
    }
    out.emplace_back(item);
  }
  if (out.empty()) return Status::InvalidArgument("no etcd endpoints given");
  return out;
}

Result<std::unique_ptr<Store>> OpenEtcdStore(const EtcdStoreOptions& options) {
  if (options.endpoints.empty()) return Status::InvalidArgument("no etcd endpoints given");
  auto client = std::make_shared<Client>(options);
  // One round trip per endpoint until one answers.
  std::string errors;
  for (size_t i = 0; i < client->size(); ++i) {
    Endpoint& e = client->endpoint(i);
    if (!Client::WaitConnected(e, Clock::now() + options.dial_timeout)) {
      errors += (errors.empty() ? "" : "; ") + e.address + ": cannot connect";
      client->Rotate(i);
      continue;
    }
    grpc::ClientContext context;
    context.set_deadline(Clock::now() + options.dial_timeout);
    pb::StatusRequest req;
    pb::StatusResponse resp;
    grpc::Status s = e.maintenance->Status(&context, req, &resp);
    if (s.ok()) return std::unique_ptr<Store>(new EtcdStore(std::move(client)));
    errors += (errors.empty() ? "" : "; ") + e.address + ": " + s.error_message();
    client->Rotate(i);
  }
  return Status::Unavailable("no etcd endpoint answered: " + errors);
}

}  // namespace rc::store
