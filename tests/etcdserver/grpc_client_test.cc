// Talks to EtcdServer with the generated C++ gRPC stubs: the Watch stream (several watches on
// one stream, cancel, compaction, filters, progress, prev_kv), KV/Txn details and leases.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "etcdserverpb/rpc.grpc.pb.h"
#include "test_util.h"

namespace rc::testing {
namespace {

namespace pb = ::etcdserverpb;
using namespace std::chrono_literals;

// A Watch stream with a reader thread, so responses can be awaited with a timeout.
class WatchClient {
 public:
  explicit WatchClient(pb::Watch::Stub* stub) {
    stream_ = stub->Watch(&ctx_);
    reader_ = std::thread([this] {
      pb::WatchResponse r;
      while (stream_->Read(&r)) {
        std::lock_guard<std::mutex> lock(mu_);
        queue_.push_back(r);
        cv_.notify_all();
      }
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
      cv_.notify_all();
    });
  }
  ~WatchClient() {
    ctx_.TryCancel();
    reader_.join();
    stream_->Finish();
  }

  bool Send(const pb::WatchRequest& req) { return stream_->Write(req); }

  int64_t Create(const std::string& key, const std::string& range_end, int64_t start = 0,
                 bool prev_kv = false, int64_t watch_id = 0,
                 std::vector<pb::WatchCreateRequest::FilterType> filters = {}) {
    pb::WatchRequest req;
    auto* c = req.mutable_create_request();
    c->set_key(key);
    c->set_range_end(range_end);
    c->set_start_revision(start);
    c->set_prev_kv(prev_kv);
    c->set_watch_id(watch_id);
    for (auto f : filters) c->add_filters(f);
    EXPECT_TRUE(Send(req));
    // Events of other watches may come first; keep them for Next().
    std::vector<pb::WatchResponse> others;
    std::optional<pb::WatchResponse> r;
    while ((r = Next()) && !r->created()) others.push_back(std::move(*r));
    {
      std::lock_guard<std::mutex> lock(mu_);
      stash_.insert(stash_.end(), others.begin(), others.end());
    }
    EXPECT_TRUE(r.has_value());
    if (!r) return -2;
    return r->watch_id();
  }

  std::optional<pb::WatchResponse> Next(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stash_.empty()) {
      auto r = std::move(stash_.front());
      stash_.pop_front();
      return r;
    }
    cv_.wait_for(lock, timeout, [this] { return !queue_.empty() || closed_; });
    if (queue_.empty()) return std::nullopt;
    auto r = std::move(queue_.front());
    queue_.pop_front();
    return r;
  }

  // Collects event responses until `n` events arrived (or the timeout).
  std::vector<pb::WatchResponse> NextEvents(size_t n, std::chrono::milliseconds timeout = 10s) {
    std::vector<pb::WatchResponse> out;
    size_t got = 0;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got < n) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      auto r = Next(left);
      if (!r) break;
      got += r->events_size();
      out.push_back(std::move(*r));
    }
    return out;
  }

 private:
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::WatchResponse> queue_;
  std::deque<pb::WatchResponse> stash_;  // read by Create() ahead of its created response
  bool closed_ = false;
};

class GrpcClientTest : public ::testing::TestWithParam<StoreKind>, public ServerFixture {
 protected:
  void SetUp() override {
    SetUpServer(GetParam());
    channel_ = grpc::CreateChannel(endpoint(), grpc::InsecureChannelCredentials());
    kv_ = pb::KV::NewStub(channel_);
    watch_ = pb::Watch::NewStub(channel_);
    lease_ = pb::Lease::NewStub(channel_);
    maintenance_ = pb::Maintenance::NewStub(channel_);
  }
  void TearDown() override { TearDownServer(); }

  int64_t Put(const std::string& k, const std::string& v, int64_t lease = 0) {
    grpc::ClientContext ctx;
    pb::PutRequest req;
    req.set_key(k);
    req.set_value(v);
    req.set_lease(lease);
    pb::PutResponse resp;
    grpc::Status s = kv_->Put(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.header().revision();
  }

  int64_t Delete(const std::string& k) {
    grpc::ClientContext ctx;
    pb::DeleteRangeRequest req;
    req.set_key(k);
    pb::DeleteRangeResponse resp;
    EXPECT_TRUE(kv_->DeleteRange(&ctx, req, &resp).ok());
    return resp.header().revision();
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::KV::Stub> kv_;
  std::unique_ptr<pb::Watch::Stub> watch_;
  std::unique_ptr<pb::Lease::Stub> lease_;
  std::unique_ptr<pb::Maintenance::Stub> maintenance_;
};

TEST_P(GrpcClientTest, MultipleWatchesOnOneStreamAndCancel) {
  WatchClient w(watch_.get());
  int64_t a = w.Create("/a/", store::PrefixEnd("/a/"));
  int64_t b = w.Create("/b/", store::PrefixEnd("/b/"), 0, /*prev_kv=*/true);
  int64_t c = w.Create("/a/x", "");  // single key, overlaps a
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);

  int64_t r1 = Put("/a/x", "1");
  int64_t r2 = Put("/b/y", "2");
  int64_t r3 = Put("/b/y", "3");
  Put("/c/z", "ignored");

  // 4 events in total: a gets /a/x, c gets /a/x, b gets two.
  auto resps = w.NextEvents(4);
  std::map<int64_t, std::vector<mvccpb::Event>> by_watch;
  for (const auto& r : resps) {
    EXPECT_EQ(r.header().member_id(), resps[0].header().member_id());
    EXPECT_GE(r.header().revision(), r.events(r.events_size() - 1).kv().mod_revision());
    for (const auto& e : r.events()) by_watch[r.watch_id()].push_back(e);
  }
  ASSERT_EQ(by_watch[a].size(), 1u);
  EXPECT_EQ(by_watch[a][0].kv().key(), "/a/x");
  EXPECT_EQ(by_watch[a][0].kv().mod_revision(), r1);
  EXPECT_FALSE(by_watch[a][0].has_prev_kv());
  ASSERT_EQ(by_watch[c].size(), 1u);
  ASSERT_EQ(by_watch[b].size(), 2u);
  EXPECT_EQ(by_watch[b][0].kv().mod_revision(), r2);
  EXPECT_EQ(by_watch[b][1].kv().mod_revision(), r3);
  EXPECT_EQ(by_watch[b][1].kv().value(), "3");
  EXPECT_EQ(by_watch[b][1].prev_kv().value(), "2");  // requested prev_kv
  EXPECT_EQ(by_watch[b][1].kv().version(), 2);

  // Cancel a: a canceled response, and no more events for it.
  pb::WatchRequest cancel;
  cancel.mutable_cancel_request()->set_watch_id(a);
  ASSERT_TRUE(w.Send(cancel));
  auto r = w.Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->canceled());
  EXPECT_EQ(r->watch_id(), a);
  int64_t r5 = Put("/a/x", "after-cancel");
  resps = w.NextEvents(1);
  ASSERT_EQ(resps.size(), 1u);
  EXPECT_EQ(resps[0].watch_id(), c);
  ASSERT_GT(resps[0].events_size(), 0);
  EXPECT_EQ(resps[0].events(0).kv().mod_revision(), r5);
  EXPECT_FALSE(w.Next(300ms).has_value());

  // Delete events carry the delete revision.
  int64_t r6 = Delete("/b/y");
  resps = w.NextEvents(1);
  ASSERT_EQ(resps.size(), 1u);
  EXPECT_EQ(resps[0].watch_id(), b);
  ASSERT_GT(resps[0].events_size(), 0);
  EXPECT_EQ(resps[0].events(0).type(), mvccpb::Event::DELETE);
  EXPECT_EQ(resps[0].events(0).kv().mod_revision(), r6);
  EXPECT_EQ(resps[0].events(0).prev_kv().value(), "3");
}

TEST_P(GrpcClientTest, HistoryFiltersClientIdsAndProgress) {
  int64_t r1 = Put("/h/1", "a");
  Put("/h/2", "b");
  Delete("/h/1");
  WatchClient w(watch_.get());
  // Replay from r1: all three events, before any live one.
  int64_t all = w.Create("/h/", store::PrefixEnd("/h/"), r1);
  auto resps = w.NextEvents(3);
  int n = 0;
  for (const auto& r : resps) {
    EXPECT_EQ(r.watch_id(), all);
    n += r.events_size();
  }
  EXPECT_EQ(n, 3);
  // NODELETE filter and a client-chosen id; a duplicate id is refused.
  int64_t puts_only = w.Create("/h/", store::PrefixEnd("/h/"), r1, false, 42,
                               {pb::WatchCreateRequest::NODELETE});
  EXPECT_EQ(puts_only, 42);
  resps = w.NextEvents(2);
  n = 0;
  for (const auto& r : resps) {
    EXPECT_EQ(r.watch_id(), 42);
    for (const auto& e : r.events()) {
      EXPECT_EQ(e.type(), mvccpb::Event::PUT);
      ++n;
    }
  }
  EXPECT_EQ(n, 2);
  pb::WatchRequest dup;
  dup.mutable_create_request()->set_key("/x");
  dup.mutable_create_request()->set_watch_id(42);
  ASSERT_TRUE(w.Send(dup));
  auto r = w.Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(r->created());
  EXPECT_TRUE(r->canceled());
  EXPECT_EQ(r->watch_id(), -1);
  // Progress request: header at the current revision, watch id -1.
  int64_t cur = Put("/unwatched", "x");
  pb::WatchRequest progress;
  progress.mutable_progress_request();
  ASSERT_TRUE(w.Send(progress));
  r = w.Next();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->watch_id(), -1);
  EXPECT_EQ(r->events_size(), 0);
  EXPECT_EQ(r->header().revision(), cur);
  // A watch from a future revision only sees events from there on.
  int64_t future = w.Create("/f", "", cur + 3);
  Put("/f", "1");  // cur+1: skipped
  Put("/f", "2");  // cur+2: skipped
  Put("/f", "3");  // cur+3: delivered
  resps = w.NextEvents(1);
  ASSERT_EQ(resps.size(), 1u);
  EXPECT_EQ(resps[0].watch_id(), future);
  ASSERT_EQ(resps[0].events_size(), 1);
  ASSERT_GT(resps[0].events_size(), 0);
  EXPECT_EQ(resps[0].events(0).kv().value(), "3");
  EXPECT_EQ(resps[0].events(0).kv().mod_revision(), cur + 3);
}

TEST_P(GrpcClientTest, WatchFromCompactedRevision) {
  int64_t r1 = Put("/k", "1");
  Put("/k", "2");
  int64_t r3 = Put("/k", "3");
  {
    grpc::ClientContext ctx;
    pb::CompactionRequest req;
    req.set_revision(r3);
    pb::CompactionResponse resp;
    ASSERT_TRUE(kv_->Compact(&ctx, req, &resp).ok());
  }
  WatchClient w(watch_.get());
  pb::WatchRequest req;
  req.mutable_create_request()->set_key("/k");
  req.mutable_create_request()->set_start_revision(r1);
  ASSERT_TRUE(w.Send(req));
  auto created = w.Next();
  ASSERT_TRUE(created.has_value());
  EXPECT_TRUE(created->created());
  auto compacted = w.Next();
  ASSERT_TRUE(compacted.has_value());
  EXPECT_TRUE(compacted->canceled());
  EXPECT_EQ(compacted->watch_id(), created->watch_id());
  EXPECT_NE(compacted->cancel_reason().find("required revision has been compacted"),
            std::string::npos);
  // compact_revision is the oldest revision one can watch from (etcd: "the minimum index").
  EXPECT_GE(compacted->compact_revision(), r3);
  EXPECT_LE(compacted->compact_revision(), r3 + 1);
  int64_t r4 = Put("/k", "4");
  // The stream stays usable, and watching from compact_revision works.
  int64_t ok_id = w.Create("/k", "", compacted->compact_revision());
  auto resps = w.NextEvents(r4 - compacted->compact_revision() + 1);
  ASSERT_FALSE(resps.empty());
  EXPECT_EQ(resps.back().watch_id(), ok_id);
  ASSERT_GT(resps.back().events_size(), 0);
  EXPECT_EQ(resps.back().events(resps.back().events_size() - 1).kv().value(), "4");
  ASSERT_GT(resps.front().events_size(), 0);
  EXPECT_EQ(resps.front().events(0).kv().mod_revision(), compacted->compact_revision());
}

TEST_P(GrpcClientTest, KVErrorsAndTxn) {
  grpc::ClientContext c1;
  pb::RangeRequest rr;
  pb::RangeResponse rresp;
  grpc::Status s = kv_->Range(&c1, rr, &rresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: key is not provided");

  int64_t rev = Put("t/a", "1");
  Put("t/b", "2");
  pb::TxnRequest txn;
  auto* cmp = txn.add_compare();
  cmp->set_key("t/");
  cmp->set_range_end(store::PrefixEnd("t/"));
  cmp->set_target(pb::Compare::CREATE);
  cmp->set_result(pb::Compare::GREATER);
  cmp->set_create_revision(rev - 1);
  auto* get = txn.add_success()->mutable_request_range();
  get->set_key("t/");
  get->set_range_end(store::PrefixEnd("t/"));
  get->set_sort_order(pb::RangeRequest::DESCEND);
  get->set_limit(1);
  auto* put = txn.add_success()->mutable_request_put();
  put->set_key("t/c");
  put->set_value("3");
  put->set_prev_kv(true);
  pb::TxnResponse tresp;
  grpc::ClientContext c2;
  ASSERT_TRUE(kv_->Txn(&c2, txn, &tresp).ok());
  EXPECT_TRUE(tresp.succeeded());
  ASSERT_EQ(tresp.responses_size(), 2);
  const auto& range = tresp.responses(0).response_range();
  ASSERT_EQ(range.kvs_size(), 1);
  EXPECT_EQ(range.kvs(0).key(), "t/b");
  EXPECT_TRUE(range.more());
  EXPECT_EQ(range.count(), 2);
  EXPECT_FALSE(tresp.responses(1).response_put().has_prev_kv());
  EXPECT_EQ(tresp.header().revision(), rev + 2);

  // Too many ops.
  pb::TxnRequest big;
  for (int i = 0; i < 129; ++i) big.add_success()->mutable_request_put()->set_key("k" + std::to_string(i));
  grpc::ClientContext c3;
  s = kv_->Txn(&c3, big, &tresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "etcdserver: too many operations in txn request");
}

TEST_P(GrpcClientTest, LeaseKeepAliveStream) {
  pb::LeaseGrantRequest greq;
  greq.set_ttl(30);
  pb::LeaseGrantResponse gresp;
  grpc::ClientContext c1;
  ASSERT_TRUE(lease_->LeaseGrant(&c1, greq, &gresp).ok());
  ASSERT_NE(gresp.id(), 0);
  EXPECT_EQ(gresp.ttl(), 30);

  grpc::ClientContext c2;
  auto stream = lease_->LeaseKeepAlive(&c2);
  for (int i = 0; i < 3; ++i) {
    pb::LeaseKeepAliveRequest req;
    req.set_id(gresp.id());
    ASSERT_TRUE(stream->Write(req));
    pb::LeaseKeepAliveResponse resp;
    ASSERT_TRUE(stream->Read(&resp));
    EXPECT_EQ(resp.id(), gresp.id());
    EXPECT_EQ(resp.ttl(), 30);
  }
  pb::LeaseKeepAliveRequest unknown;
  unknown.set_id(12345);
  ASSERT_TRUE(stream->Write(unknown));
  pb::LeaseKeepAliveResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  EXPECT_EQ(resp.ttl(), 0);  // etcd: TTL 0 for an unknown lease
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&resp));
  EXPECT_TRUE(stream->Finish().ok());

  pb::LeaseGrantRequest too_big;
  too_big.set_ttl(9000000001);
  grpc::ClientContext c3;
  grpc::Status s = lease_->LeaseGrant(&c3, too_big, &gresp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
}

TEST_P(GrpcClientTest, ShutdownEndsOpenStreams) {
  WatchClient w(watch_.get());
  w.Create("/s", "");
  grpc::ClientContext c;
  auto ka = lease_->LeaseKeepAlive(&c);
  auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_FALSE(w.Next(5s).has_value());  // stream closed
  pb::LeaseKeepAliveResponse resp;
  EXPECT_FALSE(ka->Read(&resp));
  EXPECT_FALSE(ka->Finish().ok());
}

// Clients that vanish while events are being written to them: every stream must still end,
// or Shutdown would wait for it (a regression test for a lost Finish).
TEST_P(GrpcClientTest, ClientsCancelMidStream) {
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::string value(4096, 'v');
    for (int i = 0; !stop; ++i) Put("/mid/" + std::to_string(i % 20), value);
  });
  for (int round = 0; round < 10; ++round) {
    auto w = std::make_unique<WatchClient>(watch_.get());
    w->Create("/mid/", store::PrefixEnd("/mid/"), 1, /*prev_kv=*/true);
    w->Next(std::chrono::milliseconds(5 * round));
    w.reset();  // cancels the call
  }
  stop = true;
  writer.join();
  auto start = std::chrono::steady_clock::now();
  server_->Shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
}

// Many streams creating and canceling watches while writes go on and clients vanish: every
// watch that stays open sees its key's revisions in order without gaps.
TEST_P(GrpcClientTest, ConcurrentWatchChurn) {
  constexpr int kStreams = 6;
  constexpr int kWrites = 150;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < kWrites && !stop; ++i) Put("/churn/" + std::to_string(i % 5), std::to_string(i));
  });
  std::vector<std::thread> clients;
  std::atomic<int> failures{0};
  for (int s = 0; s < kStreams; ++s) {
    clients.emplace_back([&, s] {
      auto w = std::make_unique<WatchClient>(watch_.get());
      for (int round = 0; round < 5; ++round) {
        int64_t id = w->Create("/churn/", store::PrefixEnd("/churn/"), 0, round % 2 == 0);
        if (id < 0) ++failures;
        if (round % 2 == 1) {
          pb::WatchRequest cancel;
          cancel.mutable_cancel_request()->set_watch_id(id);
          w->Send(cancel);
        }
        // Drain what is there; check per-watch revision order.
        std::map<int64_t, int64_t> last;
        while (auto r = w->Next(20ms)) {
          for (const auto& e : r->events()) {
            if (e.kv().mod_revision() <= last[r->watch_id()]) ++failures;
            last[r->watch_id()] = e.kv().mod_revision();
          }
        }
      }
      if (s % 2 == 0) w.reset();  // half the clients go away with watches open
      else std::this_thread::sleep_for(50ms);
    });
  }
  for (auto& c : clients) c.join();
  stop = true;
  writer.join();
  EXPECT_EQ(failures.load(), 0);
  // The server is still fine.
  WatchClient w(watch_.get());
  int64_t id = w.Create("/after", "");
  Put("/after", "x");
  auto resps = w.NextEvents(1);
  ASSERT_EQ(resps.size(), 1u);
  EXPECT_EQ(resps[0].watch_id(), id);
}

INSTANTIATE_TEST_SUITE_P(Stores, GrpcClientTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kRocks), StoreKindName);

}  // namespace
}  // namespace rc::testing

namespace rc::testing {
namespace {

// A watcher that does not read is cut off (UNAVAILABLE) once its queue passes the limit, instead
// of buffering without bound.
class SlowWatcherTest : public ::testing::Test, public ServerFixture {
 protected:
  void SetUp() override {
    etcdserver::EtcdServerOptions options;
    options.max_watch_queue_bytes = 256 << 10;
    SetUpServer(StoreKind::kMemory, options);
  }
  void TearDown() override { TearDownServer(); }
};

TEST_F(SlowWatcherTest, OverflowClosesStream) {
  auto channel = grpc::CreateChannel(endpoint(), grpc::InsecureChannelCredentials());
  auto watch = pb::Watch::NewStub(channel);
  grpc::ClientContext ctx;
  auto stream = watch->Watch(&ctx);
  pb::WatchRequest req;
  req.mutable_create_request()->set_key("/big/");
  req.mutable_create_request()->set_range_end(store::PrefixEnd("/big/"));
  ASSERT_TRUE(stream->Write(req));
  pb::WatchResponse resp;
  ASSERT_TRUE(stream->Read(&resp));
  ASSERT_TRUE(resp.created());
  // ~20 MiB of events, far beyond the queue limit plus the HTTP/2 windows.
  std::string value(64 << 10, 'x');
  for (int i = 0; i < 320; ++i) {
    ASSERT_TRUE(store()->Put("/big/" + std::to_string(i % 10), value).ok());
  }
  int events = 0;
  while (stream->Read(&resp)) events += resp.events_size();
  grpc::Status s = stream->Finish();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << s.error_message();
  EXPECT_LT(events, 320);
}

}  // namespace
}  // namespace rc::testing
