// The etcd-backed Store (rc_store_etcd): the Store contract suite against a real etcd and
// against our rc-etcd endpoint through the same client (which cross-checks both servers), plus
// failure tests: member restarts mid-watch, compaction while a watch is disconnected, failover
// across the endpoint list, a three-member cluster losing the member a watch is on.
#include <gmock/gmock.h>

#include <atomic>
#include <set>

#include "etcd_fixture.h"
#include "store_contract.h"

namespace rc::store::testing {
namespace {

class EtcdInstance : public StoreInstance {
 public:
  EtcdInstance() {
    cluster_.WaitReady();
    auto s = OpenStoreWithRetry(cluster_.endpoints());
    if (!s.ok()) throw std::runtime_error(s.status().ToString() + "\n" + cluster_.Logs());
    store_ = std::move(s).value();
  }
  ~EtcdInstance() override { store_.reset(); }
  Store& store() override { return *store_; }

 private:
  EtcdCluster cluster_{1};
  std::unique_ptr<Store> store_;
};

class RcEtcdInstance : public StoreInstance {
 public:
  RcEtcdInstance() {
    auto s = OpenStoreWithRetry({server_.endpoint()});
    if (!s.ok()) throw std::runtime_error(s.status().ToString());
    store_ = std::move(s).value();
  }
  ~RcEtcdInstance() override { store_.reset(); }
  Store& store() override { return *store_; }

 private:
  RcEtcdServer server_;
  std::unique_ptr<Store> store_;
};

std::vector<StoreBackend> Backends() {
  std::vector<StoreBackend> out;
  StoreBackend rc{"RcEtcd", [] { return std::unique_ptr<StoreInstance>(new RcEtcdInstance); }};
  rc.txn_writes_may_overlap = false;  // rc-etcd validates txns like etcd
  if (HaveEtcd()) {
    StoreBackend etcd{"Etcd", [] { return std::unique_ptr<StoreInstance>(new EtcdInstance); }};
    etcd.txn_writes_may_overlap = false;
    out.push_back(etcd);
  }
  out.push_back(rc);
  return out;
}

INSTANTIATE_TEST_SUITE_P(EtcdClient, StoreContractTest, ::testing::ValuesIn(Backends()),
                         BackendName);

// ----- failure tests (real etcd) -----

class ClosingSink : public CollectingSink {
 public:
  void OnClosed(const Status& reason) override {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = reason;
    closed_count_++;
  }
  std::optional<Status> closed() {
    std::lock_guard<std::mutex> l(mu_);
    return closed_;
  }
  int closed_count() {
    std::lock_guard<std::mutex> l(mu_);
    return closed_count_;
  }

 private:
  std::mutex mu_;
  std::optional<Status> closed_;
  int closed_count_ = 0;
};

// Events must be consecutive revisions from `first` (one put per revision), no gaps, no
// duplicates.
void ExpectConsecutive(const std::vector<Event>& events, int64_t first) {
  for (size_t i = 0; i < events.size(); ++i) {
    ASSERT_EQ(events[i].kv.mod_revision, first + static_cast<int64_t>(i)) << "event " << i;
  }
}

// A put retried while the store answers kUnavailable (a put sent on a connection that just
// broke has an open outcome and may have been applied: callers of the store decide; here a
// repeated put of the same key and value is harmless). Returns the revision of the last try.
Result<int64_t> PutRetrying(Store& store, const std::string& key, const std::string& value) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (true) {
    auto p = store.Put(key, value);
    if (p.ok()) return p->revision;
    if (p.status().code() != StatusCode::kUnavailable ||
        std::chrono::steady_clock::now() > deadline) {
      return p.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

class EtcdFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HaveEtcd()) GTEST_SKIP() << EtcdBinary() << " not installed (scripts/install-deps.sh)";
  }
};

TEST_F(EtcdFailureTest, WatchResumesAfterRestartWithoutGaps) {
  EtcdCluster cluster(1);
  cluster.WaitReady();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreWithRetry(cluster.endpoints()));
  int64_t r0 = store->CurrentRevision();
  ClosingSink sink;
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch("w/", PrefixEnd("w/"), 0, &sink));
  for (int i = 0; i < 10; ++i) ASSERT_OK(store->Put("w/" + std::to_string(i), "before"));
  ASSERT_TRUE(sink.WaitFor(10));

  // Kill -9 and restart on the same ports and data: the watch's stream breaks.
  cluster.KillMember(0);
  cluster.StartMember(0);
  // Writes right after the restart usually land before the watch reconnects (it then replays
  // them as history); the later ones arrive live.
  int64_t last = 0;
  for (int i = 10; i < 30; ++i) {
    ASSERT_OK_AND_ASSIGN(last, PutRetrying(*store, "w/" + std::to_string(i), "after"));
    if (i == 20) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  const size_t want = static_cast<size_t>(last - r0);  // >= 30: a retried put may count twice
  ASSERT_GE(want, 30u);
  ASSERT_TRUE(sink.WaitFor(want)) << sink.size() << "\n" << cluster.Logs();
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), want);
  ExpectConsecutive(ev, r0 + 1);
  EXPECT_EQ(ev[9].kv.value, "before");
  EXPECT_EQ(ev[10].kv.value, "after");
  std::set<std::string> keys;
  for (const auto& e : ev) keys.insert(e.kv.key);
  EXPECT_EQ(keys.size(), 30u);
  EXPECT_FALSE(sink.closed().has_value());
  // The store works normally afterwards and the revisions survived the restart.
  ASSERT_OK_AND_ASSIGN(auto r, store->Range("w/", {.range_end = PrefixEnd("w/"), .count_only = true}));
  EXPECT_EQ(r.count, 30);
  EXPECT_EQ(r.revision, last);
}

TEST_F(EtcdFailureTest, WatchReportsCompactionAfterReconnect) {
  EtcdCluster cluster(1);
  cluster.WaitReady();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreWithRetry(cluster.endpoints()));
  ClosingSink sink;
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch("c/", PrefixEnd("c/"), 0, &sink));
  for (int i = 0; i < 5; ++i) ASSERT_OK(store->Put("c/" + std::to_string(i), "v"));
  ASSERT_TRUE(sink.WaitFor(5));

  // While the watch cannot reach the member (it listens on another client port for a while),
  // other writers change the watched range and compact history past it.
  EtcdMember& m = cluster.member(0);
  const int original_port = m.client_port;
  cluster.KillMember(0);
  m.client_port = FreePort();
  cluster.StartMember(0);
  {
    ASSERT_OK_AND_ASSIGN(auto other, OpenStoreWithRetry({m.endpoint()}));
    for (int i = 0; i < 5; ++i) ASSERT_OK(other->Put("c/" + std::to_string(i), "missed"));
    ASSERT_OK(other->Compact(other->CurrentRevision()));
  }
  cluster.KillMember(0);
  m.client_port = original_port;
  cluster.StartMember(0);

  ASSERT_TRUE(WaitUntil([&] { return sink.closed().has_value(); }, std::chrono::seconds(10)))
      << cluster.Logs();
  EXPECT_EQ(sink.closed()->code(), StatusCode::kCompacted) << sink.closed()->ToString();
  EXPECT_EQ(sink.closed_count(), 1);
  EXPECT_EQ(sink.size(), 5u);  // nothing from the compacted gap
  // A new watch from the compacted revision fails; one from after it works.
  ClosingSink again;
  EXPECT_CODE(store->Watch("c/", PrefixEnd("c/"), 2, &again), StatusCode::kCompacted);
  ASSERT_OK_AND_ASSIGN(auto w2, store->Watch("c/", PrefixEnd("c/"), store->CompactRevision() + 1,
                                             &again));
  ASSERT_OK(store->Put("c/0", "new"));
  ASSERT_TRUE(again.WaitFor(1));
}

TEST_F(EtcdFailureTest, WatchHandleGoesPromptlyWhileDisconnected) {
  EtcdCluster cluster(1);
  cluster.WaitReady();
  EtcdStoreOptions o;
  o.endpoints = cluster.endpoints();
  o.dial_timeout = std::chrono::seconds(5);  // longer than the destructor may take
  ASSERT_OK_AND_ASSIGN(auto store, OpenEtcdStore(o));
  ClosingSink sink;
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch("k", "", 0, &sink));
  cluster.KillMember(0);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the watch is reconnecting
  auto begun = std::chrono::steady_clock::now();
  watch.reset();
  EXPECT_LT(std::chrono::steady_clock::now() - begun, std::chrono::milliseconds(500));
  EXPECT_FALSE(sink.closed().has_value());
}

TEST_F(EtcdFailureTest, FailsOverToTheNextEndpoint) {
  EtcdCluster cluster(1);
  cluster.WaitReady();
  // The first endpoint refuses connections: Open, reads, writes and watches use the second.
  std::string dead = "127.0.0.1:" + std::to_string(FreePort());
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreWithRetry({dead, cluster.member(0).endpoint()}));
  ASSERT_OK_AND_ASSIGN(auto p, store->Put("k", "v"));
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch("k", "", p.revision, &sink));
  EXPECT_EQ(sink.size(), 1u);  // history before Watch returns
  ASSERT_OK_AND_ASSIGN(auto r, store->Range("k", {}));
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "v");
}

TEST_F(EtcdFailureTest, OpenFailsWhenNoEndpointAnswers) {
  EtcdStoreOptions o;
  o.endpoints = {"127.0.0.1:" + std::to_string(FreePort())};
  o.dial_timeout = std::chrono::milliseconds(200);
  auto begun = std::chrono::steady_clock::now();
  EXPECT_CODE(OpenEtcdStore(o), StatusCode::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - begun, std::chrono::seconds(3));
  EXPECT_CODE(OpenEtcdStore(EtcdStoreOptions{}), StatusCode::kInvalidArgument);
}

TEST_F(EtcdFailureTest, ClusterMemberLossKeepsWatchGapFree) {
  EtcdCluster cluster(3);
  cluster.WaitReady();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreWithRetry(cluster.endpoints()));
  int64_t r0 = store->CurrentRevision();
  ClosingSink sink;
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch("m/", PrefixEnd("m/"), 0, &sink));
  for (int i = 0; i < 10; ++i) ASSERT_OK(store->Put("m/" + std::to_string(i), "v"));
  ASSERT_TRUE(sink.WaitFor(10));
  // The store talks to the first endpoint; lose that member for good (the other two keep a
  // quorum and elect a leader if it was the leader).
  cluster.KillMember(0);
  for (int i = 10; i < 30; ++i) ASSERT_OK(PutRetrying(*store, "m/" + std::to_string(i), "v"));
  ASSERT_OK_AND_ASSIGN(auto r, store->Range("m/", {.range_end = PrefixEnd("m/"), .count_only = true}));
  ASSERT_TRUE(sink.WaitFor(static_cast<size_t>(r.revision - r0)));
  auto ev = sink.events();
  ExpectConsecutive(ev, r0 + 1);
  EXPECT_EQ(ev.back().kv.mod_revision, r.revision);
  EXPECT_FALSE(sink.closed().has_value());
}

TEST_F(EtcdFailureTest, LongHistoryArrivesBeforeWatchReturns) {
  // etcd replays more than 1000 revisions in several responses, one per 100 ms sync pass.
  EtcdCluster cluster(1);
  cluster.WaitReady();
  ASSERT_OK_AND_ASSIGN(auto store, OpenStoreWithRetry(cluster.endpoints()));
  int64_t r0 = store->CurrentRevision();
  constexpr int kThreads = 8;
  constexpr int kPuts = 300;
  std::vector<std::thread> writers;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        if (!store->Put("h/" + std::to_string(t) + "/" + std::to_string(i), "v").ok()) ++errors;
      }
    });
  }
  for (auto& w : writers) w.join();
  ASSERT_EQ(errors.load(), 0);
  ASSERT_OK(store->Put("other", "x"));  // the last revision is outside the watched range
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto watch, store->Watch("h/", PrefixEnd("h/"), r0 + 1, &sink));
  EXPECT_EQ(sink.size(), static_cast<size_t>(kThreads * kPuts));
  ExpectConsecutive(sink.events(), r0 + 1);
}

TEST(EtcdEndpointsTest, Parse) {
  ASSERT_OK_AND_ASSIGN(auto e, ParseEtcdEndpoints("etcd://10.0.0.1:2379,10.0.0.2:2379"));
  EXPECT_THAT(e, ::testing::ElementsAre("10.0.0.1:2379", "10.0.0.2:2379"));
  ASSERT_OK_AND_ASSIGN(e, ParseEtcdEndpoints("http://localhost:2379/"));
  EXPECT_THAT(e, ::testing::ElementsAre("localhost:2379"));
  EXPECT_CODE(ParseEtcdEndpoints("etcd://"), StatusCode::kInvalidArgument);
  EXPECT_CODE(ParseEtcdEndpoints("https://a:1"), StatusCode::kInvalidArgument);
  EXPECT_CODE(ParseEtcdEndpoints("nohost"), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rc::store::testing
