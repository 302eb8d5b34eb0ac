#include "rc/etcdserver/etcd_server.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_callback.h>

#include <atomic>
#include <climits>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "convert.h"
#include "etcdserverpb/rpc.grpc.pb.h"
#include "worker_pool.h"

namespace rc::etcdserver {
namespace {

constexpr int64_t kInvalidWatchId = -1;  // clientv3.InvalidWatchID
constexpr uint64_t kRaftTerm = 2;        // a single member that won its first election
constexpr size_t kMaxEventsPerResponse = 1000;
constexpr size_t kMaxBytesPerResponse = 1 << 20;
constexpr int kGrpcOverheadBytes = 512 * 1024;  // etcd's grpcOverheadBytes

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

size_t EventBytes(const store::Event& e) {
  size_t n = e.kv.key.size() + e.kv.value.size() + 64;
  if (e.prev_kv) n += e.prev_kv->key.size() + e.prev_kv->value.size() + 48;
  return n;
}

// ---------------------------------------------------------------------------------------------
// Shared state of the services.

class StreamBase;

struct Core {
  store::Store* store = nullptr;
  EtcdServerOptions options;
  Identity id;
  std::string client_url;
  std::unique_ptr<WorkerPool> pool;     // blocking store calls
  std::unique_ptr<WorkerPool> io_pool;  // serializing and writing stream responses
  std::atomic<bool> stopping{false};

  std::mutex streams_mu;
  std::set<std::shared_ptr<StreamBase>> streams;

  void Header(int64_t revision, pb::ResponseHeader* h) const { FillHeader(id, revision, h); }
  void CurrentHeader(pb::ResponseHeader* h) const { Header(store->CurrentRevision(), h); }

  // The current revision, returned once every event up to it has reached the watch sinks (so a
  // progress notification never overtakes an event). The stores publish a revision and
  // dispatch its events under the lock that registering a watch takes, so registering (and
  // dropping) a watch is a barrier.
  int64_t DispatchedRevision() {
    int64_t rev = store->CurrentRevision();
    auto barrier = store->Watch(std::string("\xff\xffrc-etcd-progress-barrier"), "", 0, &null_sink);
    return rev;
  }

  struct NullSink : store::WatchSink {
    void OnEvents(std::span<const store::Event>) override {}
  } null_sink;
};

// Runs `fn` (returning grpc::Status) on the worker pool and finishes the unary call with it.
template <class Fn>
grpc::ServerUnaryReactor* RunUnary(Core* core, grpc::CallbackServerContext* ctx, Fn fn) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  if (core->stopping.load()) {
    reactor->Finish(errors::Stopped());
    return reactor;
  }
  core->pool->Post([reactor, ctx, fn = std::move(fn)]() mutable {
    if (ctx->IsCancelled()) {
      reactor->Finish(grpc::Status::CANCELLED);
      return;
    }
    grpc::Status status;
    try {
      status = fn();
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, std::string("etcdserver: ") + e.what());
    }
    reactor->Finish(status);
  });
  return reactor;
}

// ---------------------------------------------------------------------------------------------
// Bidirectional streams.
//
// Locking: mu_ guards the state; op_mu_ (recursive) serializes the initiation of gRPC operations
// (StartRead/StartWrite/Finish), which are never started while holding mu_ (a reaction may run
// inline). This guarantees no operation is started after Finish. The reactor is kept alive by
// shared_ptrs (self_ until OnDone, the registry, queued tasks).

class StreamBase : public std::enable_shared_from_this<StreamBase> {
 public:
  virtual ~StreamBase() = default;
  // Ends the stream with `status`; drain: deliver queued responses first.
  virtual void RequestFinish(grpc::Status status, bool drain) = 0;
  virtual void ProgressTick() {}
};

template <class Req, class Resp, class Item>
class BidiStream : public grpc::ServerBidiReactor<Req, Resp>, public StreamBase {
 public:
  explicit BidiStream(Core* core) : core_(core) {}

  // Called by the method handler right after construction (before the reactor is returned).
  void Begin(std::shared_ptr<StreamBase> self) {
    self_ = std::move(self);
    if (core_->stopping.load()) {
      RequestFinish(errors::Stopped(), false);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(core_->streams_mu);
      core_->streams.insert(self_);
    }
    Read();
  }

  // The first request's status wins; a later one may still cut a drain short.
  void RequestFinish(grpc::Status status, bool drain) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!finish_requested_) {
        finish_requested_ = true;
        finish_status_ = std::move(status);
      }
      if (!drain) {
        queue_.clear();
        queue_bytes_.clear();
        queued_bytes_ = 0;
      }
    }
    Kick();  // always: a Kick that saw a write in flight relies on this one (or OnWriteDone)
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
    }
    if (!ok) {
      RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed"), false);
    } else {
      Kick();
    }
  }

  void OnCancel() override { RequestFinish(grpc::Status::CANCELLED, false); }

  void OnDone() override {
    std::shared_ptr<StreamBase> self = std::move(self_);
    {
      std::lock_guard<std::mutex> lock(core_->streams_mu);
      core_->streams.erase(self);
    }
    // Teardown may block on the store (watch cancellation); never do it on a gRPC thread.
    core_->pool->Post([self]() { static_cast<BidiStream*>(self.get())->Teardown(); });
  }

 protected:
  // Converts a queued item into the message to write.
  virtual void Render(Item item, Resp* out) = 0;
  virtual void Teardown() {}

  // Queues an item (caller holds mu_). Returns false if the stream is finishing.
  bool EnqueueLocked(Item item, size_t bytes) {
    if (finish_requested_) return false;
    queue_.push_back(std::move(item));
    queue_bytes_.push_back(bytes);
    queued_bytes_ += bytes;
    return true;
  }

  // Starts the next write, or Finish when requested and nothing more is to be written.
  void Kick() {
    std::lock_guard<std::recursive_mutex> op(op_mu_);
    std::optional<Item> item;
    bool finish = false;
    grpc::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      kick_scheduled_ = false;
      if (finished_ || writing_) return;
      if (!queue_.empty()) {
        item.emplace(std::move(queue_.front()));
        queue_.pop_front();
        queued_bytes_ -= queue_bytes_.front();
        queue_bytes_.pop_front();
        writing_ = true;
      } else if (finish_requested_) {
        finished_ = true;
        finish = true;
        status = finish_status_;
      } else {
        return;
      }
    }
    if (item) {
      write_buf_.Clear();
      Render(std::move(*item), &write_buf_);
      this->StartWrite(&write_buf_);
    } else if (finish) {
      this->Finish(status);
    }
  }

  // Schedules Kick() on the I/O pool (used from the store's commit path).
  void ScheduleKickLocked() {
    if (kick_scheduled_ || writing_ || finished_) return;
    kick_scheduled_ = true;
    auto self = shared_from_this();
    core_->io_pool->Post([self] { static_cast<BidiStream*>(self.get())->Kick(); });
  }

  // Starts reading the next request into req_.
  void Read() {
    std::lock_guard<std::recursive_mutex> op(op_mu_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_ || finish_requested_) return;
    }
    this->StartRead(&req_);
  }

  Core* core_;
  std::shared_ptr<StreamBase> self_;
  Req req_;

  std::mutex mu_;
  std::deque<Item> queue_;
  std::deque<size_t> queue_bytes_;
  size_t queued_bytes_ = 0;
  bool writing_ = false;
  bool kick_scheduled_ = false;
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;

 private:
  std::recursive_mutex op_mu_;
  Resp write_buf_;
};

// ---- Watch ----

struct WatchItem {
  pb::WatchResponse control;         // used if !is_events
  bool is_events = false;
  int64_t watch_id = 0;
  bool prev_kv = false;
  int64_t revision = 0;              // header revision for events
  std::vector<store::Event> events;
};

class WatchStream;

class WatchSinkImpl : public store::WatchSink {
 public:
  WatchSinkImpl(WatchStream* stream, int64_t id) : stream_(stream), id_(id) {}
  void OnEvents(std::span<const store::Event> events) override;

 private:
  WatchStream* stream_;
  int64_t id_;
};

struct WatchState {
  int64_t id = 0;
  bool prev_kv = false;
  bool no_put = false;
  bool no_delete = false;
  bool progress_notify = false;
  int64_t min_revision = 0;  // drop events below (a watch from a future revision)
  bool created_sent = false;
  std::vector<store::Event> pending;  // events that arrived before the created response
  size_t pending_bytes = 0;
  bool events_since_tick = false;
  std::unique_ptr<WatchSinkImpl> sink;
  std::unique_ptr<store::WatchHandle> handle;
};

class WatchStream final
    : public BidiStream<pb::WatchRequest, pb::WatchResponse, WatchItem> {
 public:
  using BidiStream::BidiStream;

  void OnReadDone(bool ok) override {
    // A client that half-closes keeps receiving events (like etcd) until it cancels.
    if (!ok) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_ = true;
    }
    auto self = shared_from_this();
    core_->pool->Post([self, this] {
      Handle(req_);
      bool teardown;
      {
        std::lock_guard<std::mutex> lock(mu_);
        busy_ = false;
        teardown = teardown_pending_;
      }
      if (teardown) {
        Teardown();
      } else {
        Read();
      }
    });
  }

  void ProgressTick() override {
    auto self = shared_from_this();
    core_->pool->Post([self, this] {
      int64_t rev = core_->DispatchedRevision();
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, w] : watches_) {
        if (!w->progress_notify || !w->created_sent) continue;
        if (!w->events_since_tick) EnqueueControlLocked(id, rev, [](pb::WatchResponse*) {});
        w->events_since_tick = false;
      }
      ScheduleKickLocked();
    });
  }

  // From the store's commit path: filter, buffer, schedule the write.
  void OnStoreEvents(int64_t id, std::span<const store::Event> events) {
    bool overflow = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finish_requested_) return;
      auto it = watches_.find(id);
      if (it == watches_.end()) return;
      WatchState& w = *it->second;
      std::vector<store::Event> selected;
      selected.reserve(events.size());
      for (const auto& e : events) {
        if (e.kv.mod_revision < w.min_revision) continue;
        if (w.no_put && e.type == store::Event::Type::kPut) continue;
        if (w.no_delete && e.type == store::Event::Type::kDelete) continue;
        selected.push_back(e);
        if (!w.prev_kv) selected.back().prev_kv.reset();
      }
      if (selected.empty()) return;
      if (!w.created_sent) {
        for (auto& e : selected) {
          w.pending_bytes += EventBytes(e);
          w.pending.push_back(std::move(e));
        }
        overflow = queued_bytes_ + w.pending_bytes > core_->options.max_watch_queue_bytes;
      } else {
        EnqueueEventsLocked(w, std::move(selected));
        overflow = queued_bytes_ > core_->options.max_watch_queue_bytes;
        if (!overflow) ScheduleKickLocked();
      }
    }
    if (overflow) {
      // Like a lost connection: clientv3 reconnects and resumes after the last event it got.
      auto self = shared_from_this();
      core_->io_pool->Post([self] {
        self->RequestFinish(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                         "etcdserver: watch stream too slow, closing it"),
                            false);
      });
    }
  }

 protected:
  void Render(WatchItem item, pb::WatchResponse* out) override {
    if (!item.is_events) {
      *out = std::move(item.control);
      return;
    }
    core_->Header(item.revision, out->mutable_header());
    out->set_watch_id(item.watch_id);
    auto* evs = out->mutable_events();
    evs->Reserve(static_cast<int>(item.events.size()));
    for (const auto& e : item.events) ToProto(e, item.prev_kv, evs->Add());
  }

  // Cancels every store watch. Runs after OnDone; if a request is being handled right then
  // (it may be registering a watch), that handler runs it when done.
  void Teardown() override {
    std::map<int64_t, std::unique_ptr<WatchState>> watches;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (busy_) {
        teardown_pending_ = true;
        return;
      }
      watches.swap(watches_);
    }
    for (auto& [id, w] : watches) {
      w->handle.reset();  // after this the sink is never called again
      w->sink.reset();
    }
  }

 private:
  template <class Fill>
  void EnqueueControlLocked(int64_t watch_id, int64_t revision, Fill fill) {
    WatchItem item;
    core_->Header(revision, item.control.mutable_header());
    item.control.set_watch_id(watch_id);
    fill(&item.control);
    EnqueueLocked(std::move(item), 128);
  }

  // Splits into responses of bounded size, never splitting one revision.
  void EnqueueEventsLocked(WatchState& w, std::vector<store::Event> events) {
    w.events_since_tick = true;
    size_t i = 0;
    while (i < events.size()) {
      WatchItem item;
      item.is_events = true;
      item.watch_id = w.id;
      item.prev_kv = w.prev_kv;
      size_t bytes = 0;
      size_t j = i;
      while (j < events.size()) {
        if (j > i && (item.events.size() >= kMaxEventsPerResponse || bytes >= kMaxBytesPerResponse) &&
            events[j].kv.mod_revision != events[j - 1].kv.mod_revision) {
          break;
        }
        bytes += EventBytes(events[j]);
        item.events.push_back(std::move(events[j]));
        ++j;
      }
      item.revision = item.events.back().kv.mod_revision;
      EnqueueLocked(std::move(item), bytes);
      i = j;
    }
  }

  void Handle(const pb::WatchRequest& req) {
    switch (req.request_union_case()) {
      case pb::WatchRequest::kCreateRequest:
        Create(req.create_request());
        break;
      case pb::WatchRequest::kCancelRequest:
        Cancel(req.cancel_request().watch_id());
        break;
      case pb::WatchRequest::kProgressRequest: {
        int64_t rev = core_->DispatchedRevision();
        std::lock_guard<std::mutex> lock(mu_);
        EnqueueControlLocked(kInvalidWatchId, rev, [](pb::WatchResponse*) {});
        ScheduleKickLocked();
        break;
      }
      default:
        break;  // like etcd: ignore unknown requests
    }
  }

  void Create(const pb::WatchCreateRequest& creq) {
    std::string key = creq.key().empty() ? std::string(1, '\0') : creq.key();
    const std::string& range_end = creq.range_end();

    auto state = std::make_unique<WatchState>();
    WatchState* w = state.get();
    w->prev_kv = creq.prev_kv();
    w->progress_notify = creq.progress_notify();
    for (int f : creq.filters()) {
      if (f == pb::WatchCreateRequest::NOPUT) w->no_put = true;
      if (f == pb::WatchCreateRequest::NODELETE) w->no_delete = true;
    }
    // Never call the store while holding mu_: its commit path takes mu_ (in the sink).
    int64_t header_rev = core_->store->CurrentRevision();
    {
      std::lock_guard<std::mutex> lock(mu_);
      int64_t id = creq.watch_id();
      if (id != 0) {
        if (id < 0 || watches_.count(id)) {
          EnqueueControlLocked(kInvalidWatchId, header_rev,
                               [](pb::WatchResponse* r) {
                                 r->set_created(true);
                                 r->set_canceled(true);
                                 r->set_cancel_reason(
                                     "mvcc: duplicate watch ID provided on the WatchStream");
                               });
          ScheduleKickLocked();
          return;
        }
      } else {
        while (watches_.count(next_id_)) ++next_id_;
        id = next_id_++;
      }
      w->id = id;
      w->sink = std::make_unique<WatchSinkImpl>(this, id);
      watches_[id] = std::move(state);
    }

    // etcd: start_revision 0 means "after the current revision".
    int64_t start = creq.start_revision() > 0 ? creq.start_revision() : header_rev + 1;
    Status error = StartStoreWatch(w, key, range_end, start);
    // etcd's compact_revision is "the minimum index" one can watch from. A Store watch fails
    // for start <= compaction revision (etcd: start < compaction revision), so that is one more.
    int64_t compact_rev = error.IsCompacted() ? core_->store->CompactRevision() + 1 : 0;

    std::unique_ptr<WatchState> dropped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (error.ok()) {
        EnqueueControlLocked(w->id, header_rev, [](pb::WatchResponse* r) { r->set_created(true); });
        w->created_sent = true;
        if (!w->pending.empty()) {
          std::vector<store::Event> pending = std::move(w->pending);
          w->pending.clear();
          w->pending_bytes = 0;
          EnqueueEventsLocked(*w, std::move(pending));
        }
      } else if (error.IsCompacted()) {
        // Like etcd: the watch is created, then canceled with the compaction revision.
        EnqueueControlLocked(w->id, header_rev, [](pb::WatchResponse* r) { r->set_created(true); });
        EnqueueControlLocked(w->id, header_rev, [compact_rev](pb::WatchResponse* r) {
          r->set_canceled(true);
          r->set_compact_revision(compact_rev);
          r->set_cancel_reason("etcdserver: mvcc: required revision has been compacted");
        });
      } else {
        std::string reason = ToGrpc(error).error_message();
        EnqueueControlLocked(kInvalidWatchId, header_rev, [&reason](pb::WatchResponse* r) {
          r->set_created(true);
          r->set_canceled(true);
          r->set_cancel_reason(reason);
        });
      }
      if (!error.ok()) {
        auto it = watches_.find(w->id);
        if (it != watches_.end()) {
          dropped = std::move(it->second);
          watches_.erase(it);
        }
      }
      ScheduleKickLocked();
    }
    if (dropped) {
      dropped->handle.reset();
      dropped->sink.reset();
    }
  }

  // Registers the store watch from `start`, which may be in the future (etcd allows that).
  Status StartStoreWatch(WatchState* w, const std::string& key, const std::string& range_end,
                         int64_t start) {
    for (int attempt = 0; attempt < 100; ++attempt) {
      int64_t current = core_->store->CurrentRevision();
      if (start <= current) {
        auto r = core_->store->Watch(key, range_end, start, w->sink.get());
        if (!r.ok()) {
          if (r.status().code() == StatusCode::kFutureRevision) continue;
          return r.status();
        }
        std::lock_guard<std::mutex> lock(mu_);
        w->handle = std::move(r.value());
        return Status::Ok();
      }
      // Future start: watch new changes, drop those below `start`. Valid only if no revision
      // >= start was committed before the watch was registered.
      {
        std::lock_guard<std::mutex> lock(mu_);
        w->min_revision = start;
      }
      auto r = core_->store->Watch(key, range_end, 0, w->sink.get());
      if (!r.ok()) return r.status();
      if (core_->store->CurrentRevision() < start) {
        std::lock_guard<std::mutex> lock(mu_);
        w->handle = std::move(r.value());
        return Status::Ok();
      }
      r.value().reset();  // raced with writes reaching `start`: replay from history instead
      std::lock_guard<std::mutex> lock(mu_);
      w->min_revision = 0;
      w->pending.clear();
      w->pending_bytes = 0;
    }
    return Status::Unavailable("could not register the watch");
  }

  void Cancel(int64_t id) {
    std::unique_ptr<WatchState> w;
    int64_t rev = core_->store->CurrentRevision();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = watches_.find(id);
      if (it == watches_.end()) return;  // like etcd: nothing to answer
      w = std::move(it->second);
      watches_.erase(it);
      EnqueueControlLocked(id, rev,
                           [](pb::WatchResponse* r) { r->set_canceled(true); });
      ScheduleKickLocked();
    }
    w->handle.reset();
    w->sink.reset();
  }

  std::map<int64_t, std::unique_ptr<WatchState>> watches_;  // guarded by mu_
  int64_t next_id_ = 0;
  bool busy_ = false;              // a request is being handled (on the worker pool)
  bool teardown_pending_ = false;  // Teardown was deferred until it is done
};

void WatchSinkImpl::OnEvents(std::span<const store::Event> events) {
  stream_->OnStoreEvents(id_, events);
}

// ---- LeaseKeepAlive ----

class KeepAliveStream final
    : public BidiStream<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse,
                        pb::LeaseKeepAliveResponse> {
 public:
  using BidiStream::BidiStream;

  void OnReadDone(bool ok) override {
    if (!ok) {
      RequestFinish(grpc::Status::OK, /*drain=*/true);
      return;
    }
    auto self = shared_from_this();
    core_->pool->Post([self, this] {
      pb::LeaseKeepAliveResponse resp;
      resp.set_id(req_.id());
      // Header before the renewal, like etcd.
      core_->CurrentHeader(resp.mutable_header());
      auto ttl = core_->store->LeaseKeepAlive(req_.id());
      if (ttl.ok()) {
        resp.set_ttl(*ttl);
      } else if (ttl.status().IsNotFound()) {
        resp.set_ttl(0);
      } else {
        RequestFinish(ToGrpc(ttl.status()), false);
        return;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        EnqueueLocked(std::move(resp), 64);
      }
      Kick();
      Read();
    });
  }

 protected:
  void Render(pb::LeaseKeepAliveResponse item, pb::LeaseKeepAliveResponse* out) override {
    *out = std::move(item);
  }
};

template <class Stream>
Stream* NewStream(Core* core) {
  auto stream = std::make_shared<Stream>(core);
  Stream* raw = stream.get();
  raw->Begin(std::move(stream));
  return raw;
}

// ---------------------------------------------------------------------------------------------
// Services.

class KVService final : public pb::KV::CallbackService {
 public:
  explicit KVService(Core* core) : core_(core) {}

  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx, const pb::RangeRequest* req,
                                  pb::RangeResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      if (auto s = CheckRange(*req); !s.ok()) return s;
      RangePlan plan = PlanRange(*req);
      auto r = core_->store->Range(req->key(), plan.options);
      if (!r.ok()) return ToGrpc(r.status());
      core_->Header(r->revision, resp->mutable_header());
      FinishRange(*req, plan, std::move(r.value()), resp);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const pb::PutRequest* req,
                                pb::PutResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      if (auto s = CheckPut(*req); !s.ok()) return s;
      if (req->ignore_value() || req->ignore_lease()) return PutIgnoring(*req, resp);
      auto r = core_->store->Put(req->key(), req->value(), req->lease(), req->prev_kv());
      if (!r.ok()) return ToGrpc(r.status());
      core_->Header(r->revision, resp->mutable_header());
      if (req->prev_kv() && r->prev_kv) ToProto(*r->prev_kv, false, resp->mutable_prev_kv());
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* DeleteRange(grpc::CallbackServerContext* ctx,
                                        const pb::DeleteRangeRequest* req,
                                        pb::DeleteRangeResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      if (auto s = CheckDelete(*req); !s.ok()) return s;
      auto r = core_->store->DeleteRange(req->key(), req->range_end(), req->prev_kv());
      if (!r.ok()) return ToGrpc(r.status());
      core_->Header(r->revision, resp->mutable_header());
      resp->set_deleted(r->deleted);
      if (req->prev_kv()) {
        for (const auto& kv : r->prev_kvs) ToProto(kv, false, resp->add_prev_kvs());
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx, const pb::TxnRequest* req,
                                pb::TxnResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      store::TxnRequest txn;
      if (auto s = TranslateTxn(*req, core_->options.max_txn_ops, &txn); !s.ok()) return s;
      auto r = core_->store->Txn(txn);
      if (!r.ok()) return ToGrpc(r.status());
      core_->Header(r->revision, resp->mutable_header());
      FinishTxn(*req, core_->id, std::move(r.value()), resp);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Compact(grpc::CallbackServerContext* ctx,
                                    const pb::CompactionRequest* req,
                                    pb::CompactionResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      Status s = core_->store->Compact(req->revision());
      if (!s.ok()) return ToGrpc(s);
      core_->CurrentHeader(resp->mutable_header());
      return grpc::Status::OK;
    });
  }

 private:
  // Put with ignore_value / ignore_lease: read the key, then write it conditionally on its
  // mod_revision (retrying on a concurrent change), so it is atomic like etcd's.
  grpc::Status PutIgnoring(const pb::PutRequest& req, pb::PutResponse* resp) {
    for (int attempt = 0; attempt < 1000; ++attempt) {
      auto cur = core_->store->Range(req.key(), {});
      if (!cur.ok()) return ToGrpc(cur.status());
      if (cur->kvs.empty()) return errors::KeyNotFound();
      const store::KeyValue& kv = cur->kvs.front();
      store::TxnRequest txn;
      store::Compare cmp;
      cmp.key = req.key();
      cmp.target = store::Compare::Target::kMod;
      cmp.result = store::Compare::Result::kEqual;
      cmp.number = kv.mod_revision;
      txn.compare.push_back(cmp);
      store::RequestOp op = store::RequestOp::Put(req.key(),
                                                  req.ignore_value() ? kv.value : req.value(),
                                                  req.ignore_lease() ? kv.lease : req.lease());
      op.prev_kv = req.prev_kv();
      txn.success.push_back(std::move(op));
      auto r = core_->store->Txn(txn);
      if (!r.ok()) return ToGrpc(r.status());
      if (!r->succeeded) continue;
      core_->Header(r->revision, resp->mutable_header());
      if (req.prev_kv()) {
        const auto& put = r->responses.front().put;
        ToProto(put.prev_kv ? *put.prev_kv : kv, false, resp->mutable_prev_kv());
      }
      return grpc::Status::OK;
    }
    return {grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out"};
  }

  Core* core_;
};

class WatchService final : public pb::Watch::CallbackService {
 public:
  explicit WatchService(Core* core) : core_(core) {}
  grpc::ServerBidiReactor<pb::WatchRequest, pb::WatchResponse>* Watch(
      grpc::CallbackServerContext*) override {
    return NewStream<WatchStream>(core_);
  }

 private:
  Core* core_;
};

class LeaseService final : public pb::Lease::CallbackService {
 public:
  explicit LeaseService(Core* core) : core_(core) {}

  grpc::ServerUnaryReactor* LeaseGrant(grpc::CallbackServerContext* ctx,
                                       const pb::LeaseGrantRequest* req,
                                       pb::LeaseGrantResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      if (req->ttl() > kMaxLeaseTTL) return errors::LeaseTTLTooLarge();
      auto r = core_->store->LeaseGrant(req->id(), req->ttl());
      if (!r.ok()) return ToGrpc(r.status());
      core_->CurrentHeader(resp->mutable_header());
      resp->set_id(r->id);
      resp->set_ttl(r->granted_ttl);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* LeaseRevoke(grpc::CallbackServerContext* ctx,
                                        const pb::LeaseRevokeRequest* req,
                                        pb::LeaseRevokeResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      Status s = core_->store->LeaseRevoke(req->id());
      if (!s.ok()) return ToGrpc(s);
      core_->CurrentHeader(resp->mutable_header());
      return grpc::Status::OK;
    });
  }

  grpc::ServerBidiReactor<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>* LeaseKeepAlive(
      grpc::CallbackServerContext*) override {
    return NewStream<KeepAliveStream>(core_);
  }

  grpc::ServerUnaryReactor* LeaseTimeToLive(grpc::CallbackServerContext* ctx,
                                            const pb::LeaseTimeToLiveRequest* req,
                                            pb::LeaseTimeToLiveResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      auto r = core_->store->LeaseTimeToLive(req->id(), req->keys());
      core_->CurrentHeader(resp->mutable_header());
      resp->set_id(req->id());
      if (!r.ok()) {
        if (!r.status().IsNotFound()) return ToGrpc(r.status());
        resp->set_ttl(-1);  // like etcd
        return grpc::Status::OK;
      }
      resp->set_ttl(r->remaining_ttl);
      resp->set_grantedttl(r->granted_ttl);
      if (req->keys()) {
        for (const auto& k : r->keys) resp->add_keys(k);
      }
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* LeaseLeases(grpc::CallbackServerContext* ctx,
                                        const pb::LeaseLeasesRequest*,
                                        pb::LeaseLeasesResponse* resp) override {
    return RunUnary(core_, ctx, [this, resp]() -> grpc::Status {
      core_->CurrentHeader(resp->mutable_header());
      for (int64_t id : core_->store->Leases()) resp->add_leases()->set_id(id);
      return grpc::Status::OK;
    });
  }

 private:
  Core* core_;
};

// Answers UNIMPLEMENTED with a message (gRPC's default has none, so etcdctl would print "").
#define RC_ETCD_UNIMPLEMENTED(Method, Req, Resp, what)                                     \
  grpc::ServerUnaryReactor* Method(grpc::CallbackServerContext* ctx, const pb::Req*,       \
                                   pb::Resp*) override {                                   \
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();                             \
    reactor->Finish(errors::Unimplemented(what));                                          \
    return reactor;                                                                        \
  }

class MaintenanceService final : public pb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(Core* core) : core_(core) {}

  RC_ETCD_UNIMPLEMENTED(Defragment, DefragmentRequest, DefragmentResponse, "defragment")
  RC_ETCD_UNIMPLEMENTED(Hash, HashRequest, HashResponse, "hash")
  RC_ETCD_UNIMPLEMENTED(HashKV, HashKVRequest, HashKVResponse, "hashkv")
  RC_ETCD_UNIMPLEMENTED(MoveLeader, MoveLeaderRequest, MoveLeaderResponse, "move-leader")

  grpc::ServerWriteReactor<pb::SnapshotResponse>* Snapshot(grpc::CallbackServerContext*,
                                                           const pb::SnapshotRequest*) override {
    class Unimplemented final : public grpc::ServerWriteReactor<pb::SnapshotResponse> {
     public:
      Unimplemented() { Finish(errors::Unimplemented("snapshot")); }
      void OnDone() override { delete this; }
    };
    return new Unimplemented();
  }

  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx, const pb::StatusRequest*,
                                   pb::StatusResponse* resp) override {
    return RunUnary(core_, ctx, [this, resp]() -> grpc::Status {
      store::StoreStatus st = core_->store->GetStatus();
      core_->Header(st.revision, resp->mutable_header());
      resp->set_version(kEtcdCompatVersion);
      resp->set_dbsize(st.db_size_bytes);
      resp->set_dbsizeinuse(st.db_size_bytes);
      resp->set_leader(core_->id.member_id);
      // No raft: the store revision stands in for the raft index.
      resp->set_raftindex(static_cast<uint64_t>(st.revision));
      resp->set_raftappliedindex(static_cast<uint64_t>(st.revision));
      resp->set_raftterm(core_->id.raft_term);
      resp->set_islearner(false);
      return grpc::Status::OK;
    });
  }

  grpc::ServerUnaryReactor* Alarm(grpc::CallbackServerContext* ctx, const pb::AlarmRequest* req,
                                  pb::AlarmResponse* resp) override {
    return RunUnary(core_, ctx, [this, req, resp]() -> grpc::Status {
      if (req->action() == pb::AlarmRequest::ACTIVATE) return errors::Unimplemented("alarm activate");
      core_->CurrentHeader(resp->mutable_header());  // no alarms are ever raised
      return grpc::Status::OK;
    });
  }

 private:
  Core* core_;
};

class ClusterService final : public pb::Cluster::CallbackService {
 public:
  explicit ClusterService(Core* core) : core_(core) {}

  RC_ETCD_UNIMPLEMENTED(MemberAdd, MemberAddRequest, MemberAddResponse, "member add")
  RC_ETCD_UNIMPLEMENTED(MemberRemove, MemberRemoveRequest, MemberRemoveResponse, "member remove")
  RC_ETCD_UNIMPLEMENTED(MemberUpdate, MemberUpdateRequest, MemberUpdateResponse, "member update")
  RC_ETCD_UNIMPLEMENTED(MemberPromote, MemberPromoteRequest, MemberPromoteResponse,
                        "member promote")

  grpc::ServerUnaryReactor* MemberList(grpc::CallbackServerContext* ctx,
                                       const pb::MemberListRequest*,
                                       pb::MemberListResponse* resp) override {
    return RunUnary(core_, ctx, [this, resp]() -> grpc::Status {
      core_->CurrentHeader(resp->mutable_header());
      auto* m = resp->add_members();
      m->set_id(core_->id.member_id);
      m->set_name(core_->options.name);
      m->add_clienturls(core_->client_url);
      m->set_islearner(false);
      return grpc::Status::OK;
    });
  }

 private:
  Core* core_;
};

// Auth is not implemented: authentication is "not enabled" (what etcd answers then), user and
// role management is UNIMPLEMENTED.
class AuthService final : public pb::Auth::CallbackService {
 public:
  grpc::ServerUnaryReactor* Authenticate(grpc::CallbackServerContext* ctx,
                                         const pb::AuthenticateRequest*,
                                         pb::AuthenticateResponse*) override {
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                 "etcdserver: authentication is not enabled"));
    return reactor;
  }
  RC_ETCD_UNIMPLEMENTED(AuthEnable, AuthEnableRequest, AuthEnableResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(AuthDisable, AuthDisableRequest, AuthDisableResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserAdd, AuthUserAddRequest, AuthUserAddResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserGet, AuthUserGetRequest, AuthUserGetResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserList, AuthUserListRequest, AuthUserListResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserDelete, AuthUserDeleteRequest, AuthUserDeleteResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserChangePassword, AuthUserChangePasswordRequest, AuthUserChangePasswordResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserGrantRole, AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(UserRevokeRole, AuthUserRevokeRoleRequest, AuthUserRevokeRoleResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(RoleAdd, AuthRoleAddRequest, AuthRoleAddResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(RoleGet, AuthRoleGetRequest, AuthRoleGetResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(RoleList, AuthRoleListRequest, AuthRoleListResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(RoleDelete, AuthRoleDeleteRequest, AuthRoleDeleteResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(RoleGrantPermission, AuthRoleGrantPermissionRequest, AuthRoleGrantPermissionResponse, "auth")
  RC_ETCD_UNIMPLEMENTED(RoleRevokePermission, AuthRoleRevokePermissionRequest, AuthRoleRevokePermissionResponse, "auth")
};

// ---------------------------------------------------------------------------------------------

class EtcdServerImpl final : public EtcdServer {
 public:
  EtcdServerImpl() = default;
  ~EtcdServerImpl() override { Shutdown(); }

  Status Init(store::Store* store, const EtcdServerOptions& options) {
    core_.store = store;
    core_.options = options;
    core_.id.cluster_id = options.cluster_id ? options.cluster_id : Fnv1a("rc-cluster/" + options.name);
    core_.id.member_id = options.member_id ? options.member_id : Fnv1a("rc-member/" + options.name);
    core_.id.raft_term = kRaftTerm;
    // Many workers: each blocks on a synced write, and the store batches all of them into one fsync.
    int workers = options.worker_threads > 0 ? options.worker_threads : 64;
    core_.pool = std::make_unique<WorkerPool>(workers, "etcd-worker");
    core_.io_pool = std::make_unique<WorkerPool>(2, "etcd-io");

    kv_ = std::make_unique<KVService>(&core_);
    watch_ = std::make_unique<WatchService>(&core_);
    lease_ = std::make_unique<LeaseService>(&core_);
    maintenance_ = std::make_unique<MaintenanceService>(&core_);
    cluster_ = std::make_unique<ClusterService>(&core_);
    auth_ = std::make_unique<AuthService>();

    grpc::ServerBuilder builder;
    int selected_port = 0;
    builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(),
                             &selected_port);
    builder.RegisterService(kv_.get());
    builder.RegisterService(watch_.get());
    builder.RegisterService(lease_.get());
    builder.RegisterService(maintenance_.get());
    builder.RegisterService(cluster_.get());
    builder.RegisterService(auth_.get());
    int64_t max_recv = options.max_request_bytes + kGrpcOverheadBytes;
    builder.SetMaxReceiveMessageSize(max_recv > INT_MAX ? INT_MAX : static_cast<int>(max_recv));
    builder.SetMaxSendMessageSize(INT_MAX);
    // A port in use must fail, not be shared.
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    // etcd clients ping every 10 s (grpc-go's floor), also without active calls; accept that
    // instead of answering with GOAWAY "too_many_pings".
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    server_ = builder.BuildAndStart();
    if (!server_ || selected_port == 0) {
      server_.reset();
      core_.pool->Stop();
      core_.io_pool->Stop();
      return Status::Unavailable("etcdserver: cannot listen on " + options.listen_address);
    }
    port_ = selected_port;
    std::string host = options.listen_address;
    if (auto pos = host.rfind(':'); pos != std::string::npos) host = host.substr(0, pos);
    if (host.empty()) host = "127.0.0.1";
    core_.client_url = "http://" + host + ":" + std::to_string(port_);

    ticker_ = std::thread([this] { Tick(); });
    return Status::Ok();
  }

  int port() const override { return port_; }

  void Shutdown() override {
    std::lock_guard<std::mutex> shutdown_lock(shutdown_mu_);
    if (!server_) return;
    core_.stopping.store(true);
    {
      std::lock_guard<std::mutex> lock(tick_mu_);
      tick_stop_ = true;
      tick_cv_.notify_all();
    }
    if (ticker_.joinable()) ticker_.join();
    // Streams never end on their own: end them, so that Shutdown does not wait for the grace.
    std::vector<std::shared_ptr<StreamBase>> streams;
    {
      std::lock_guard<std::mutex> lock(core_.streams_mu);
      streams.assign(core_.streams.begin(), core_.streams.end());
    }
    for (auto& s : streams) s->RequestFinish(errors::Stopped(), false);
    streams.clear();
    server_->Shutdown(std::chrono::system_clock::now() + core_.options.shutdown_grace);
    server_->Wait();
    core_.pool->Stop();
    core_.io_pool->Stop();
    server_.reset();
  }

 private:
  void Tick() {
    std::unique_lock<std::mutex> lock(tick_mu_);
    for (;;) {
      auto interval = core_.options.progress_notify_interval;
      if (interval < std::chrono::milliseconds(100)) interval = std::chrono::milliseconds(100);
      if (tick_cv_.wait_for(lock, interval, [this] { return tick_stop_; })) return;
      std::vector<std::shared_ptr<StreamBase>> streams;
      {
        std::lock_guard<std::mutex> slock(core_.streams_mu);
        streams.assign(core_.streams.begin(), core_.streams.end());
      }
      for (auto& s : streams) s->ProgressTick();
    }
  }

  Core core_;
  std::unique_ptr<KVService> kv_;
  std::unique_ptr<WatchService> watch_;
  std::unique_ptr<LeaseService> lease_;
  std::unique_ptr<MaintenanceService> maintenance_;
  std::unique_ptr<ClusterService> cluster_;
  std::unique_ptr<AuthService> auth_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  std::mutex shutdown_mu_;
  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool tick_stop_ = false;
  std::thread ticker_;
};

}  // namespace

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start(store::Store* store,
                                                      const EtcdServerOptions& options) {
  if (store == nullptr) return Status::InvalidArgument("etcdserver: store is null");
  auto server = std::make_unique<EtcdServerImpl>();
  RC_RETURN_IF_ERROR(server->Init(store, options));
  return std::unique_ptr<EtcdServer>(std::move(server));
}

Result<std::unique_ptr<EtcdServer>> EtcdServer::Start(store::Store* store,
                                                      const std::string& listen_address) {
  EtcdServerOptions options;
  options.listen_address = listen_address;
  return Start(store, options);
}

}  // namespace rc::etcdserver
