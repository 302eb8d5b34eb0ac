// The Store contract cases (see store_contract.h). Every case starts from a fresh store; cases
// use revisions relative to the store's revision at the start where that is not the point.
#include <algorithm>
#include <atomic>
#include <set>
#include <thread>

#include <gmock/gmock.h>

#include "store_contract.h"
#include "store_test_util.h"

namespace rc::store::testing {
namespace {

using ::testing::ElementsAre;

std::string All() { return std::string(1, '\0'); }

std::vector<std::string> Keys(const RangeResult& r) {
  std::vector<std::string> keys;
  for (const auto& kv : r.kvs) keys.push_back(kv.key);
  return keys;
}

Compare Cmp(std::string key, Compare::Target target, Compare::Result result, int64_t number) {
  Compare c;
  c.key = std::move(key);
  c.target = target;
  c.result = result;
  c.number = number;
  return c;
}

Compare CmpValue(std::string key, Compare::Result result, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Compare::Target::kValue;
  c.result = result;
  c.value = std::move(value);
  return c;
}

// ----- revisions and per-key metadata -----

TEST_P(StoreContractTest, EmptyStoreStartsAtRevisionOne) {
  if (!GetParam().fresh_store_starts_at_revision_1) GTEST_SKIP();
  EXPECT_EQ(store().CurrentRevision(), 1);
  EXPECT_EQ(store().CompactRevision(), 0);
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("", {.range_end = All()}));
  EXPECT_EQ(r.revision, 1);
  EXPECT_EQ(r.count, 0);
  ASSERT_OK_AND_ASSIGN(auto p, store().Put("a", "1"));
  EXPECT_EQ(p.revision, 2);
}

TEST_P(StoreContractTest, PutAssignsRevisionsAndVersions) {
  int64_t r0 = store().CurrentRevision();
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("a", "1"));
  EXPECT_EQ(p1.revision, r0 + 1);
  EXPECT_FALSE(p1.prev_kv.has_value());
  ASSERT_OK_AND_ASSIGN(auto p2, store().Put("a", "2", 0, /*prev_kv=*/true));
  EXPECT_EQ(p2.revision, r0 + 2);
  ASSERT_TRUE(p2.prev_kv.has_value());
  EXPECT_EQ(p2.prev_kv->value, "1");
  EXPECT_EQ(p2.prev_kv->mod_revision, r0 + 1);
  ASSERT_OK_AND_ASSIGN(auto p3, store().Put("b", "x"));
  EXPECT_EQ(p3.revision, r0 + 3);
  EXPECT_EQ(store().CurrentRevision(), r0 + 3);

  ASSERT_OK_AND_ASSIGN(auto a, store().Range("a", {}));
  ASSERT_EQ(a.kvs.size(), 1u);
  EXPECT_EQ(a.revision, r0 + 3);
  EXPECT_EQ(a.kvs[0].key, "a");
  EXPECT_EQ(a.kvs[0].value, "2");
  EXPECT_EQ(a.kvs[0].create_revision, r0 + 1);
  EXPECT_EQ(a.kvs[0].mod_revision, r0 + 2);
  EXPECT_EQ(a.kvs[0].version, 2);
  EXPECT_EQ(a.kvs[0].lease, 0);

  // A delete resets the key: the next put starts a new generation.
  ASSERT_OK_AND_ASSIGN(auto d, store().DeleteRange("a", ""));
  EXPECT_EQ(d.deleted, 1);
  EXPECT_EQ(d.revision, r0 + 4);
  ASSERT_OK_AND_ASSIGN(auto p5, store().Put("a", "3", 0, true));
  EXPECT_FALSE(p5.prev_kv.has_value());
  ASSERT_OK_AND_ASSIGN(a, store().Range("a", {}));
  ASSERT_EQ(a.kvs.size(), 1u);
  EXPECT_EQ(a.kvs[0].create_revision, r0 + 5);
  EXPECT_EQ(a.kvs[0].mod_revision, r0 + 5);
  EXPECT_EQ(a.kvs[0].version, 1);
}

TEST_P(StoreContractTest, EmptyKeyIsRejected) {
  EXPECT_CODE(store().Put("", "v"), StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, ReadsDoNotBumpRevision) {
  ASSERT_OK(store().Put("a", "1"));
  int64_t r = store().CurrentRevision();
  ASSERT_OK(store().Range("a", {}));
  ASSERT_OK(store().Range("", {.range_end = All()}));
  EXPECT_EQ(store().CurrentRevision(), r);
}

// ----- ranges -----

class RangeFixture {
 public:
  static void Fill(Store& s) {
    for (const char* k : {"a", "b", "c", "d/1", "d/2", "d/3", "e"}) ASSERT_OK(s.Put(k, std::string("v-") + k));
  }
};

TEST_P(StoreContractTest, RangeSingleKey) {
  RangeFixture::Fill(store());
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("b", {}));
  EXPECT_THAT(Keys(r), ElementsAre("b"));
  EXPECT_EQ(r.kvs[0].value, "v-b");
  EXPECT_EQ(r.count, 1);
  EXPECT_FALSE(r.more);
  ASSERT_OK_AND_ASSIGN(r, store().Range("zzz", {}));
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 0);
  ASSERT_OK_AND_ASSIGN(r, store().Range("d", {}));  // not a prefix match
  EXPECT_EQ(r.count, 0);
}

TEST_P(StoreContractTest, RangePrefixIntervalAndAll) {
  RangeFixture::Fill(store());
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("d/", {.range_end = PrefixEnd("d/")}));
  EXPECT_THAT(Keys(r), ElementsAre("d/1", "d/2", "d/3"));
  EXPECT_EQ(r.count, 3);
  ASSERT_OK_AND_ASSIGN(r, store().Range("b", {.range_end = "d/2"}));
  EXPECT_THAT(Keys(r), ElementsAre("b", "c", "d/1"));
  ASSERT_OK_AND_ASSIGN(r, store().Range("c", {.range_end = All()}));
  EXPECT_THAT(Keys(r), ElementsAre("c", "d/1", "d/2", "d/3", "e"));
  ASSERT_OK_AND_ASSIGN(r, store().Range(All(), {.range_end = All()}));
  EXPECT_EQ(r.count, 7);
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All()}));
  EXPECT_EQ(r.count, 7);
  EXPECT_EQ(r.kvs.front().key, "a");
  EXPECT_EQ(r.kvs.back().key, "e");
  ASSERT_OK_AND_ASSIGN(r, store().Range("x", {.range_end = PrefixEnd("x")}));
  EXPECT_EQ(r.count, 0);
}

TEST_P(StoreContractTest, PrefixEnd) {
  EXPECT_EQ(PrefixEnd("abc"), "abd");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("\xff\xff"), All());
  EXPECT_EQ(PrefixEnd(""), All());
}

TEST_P(StoreContractTest, RangeLimitCountOnlyKeysOnly) {
  RangeFixture::Fill(store());
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("", {.range_end = All(), .limit = 2}));
  EXPECT_THAT(Keys(r), ElementsAre("a", "b"));
  EXPECT_EQ(r.count, 7);
  EXPECT_TRUE(r.more);
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All(), .limit = 7}));
  EXPECT_EQ(r.kvs.size(), 7u);
  EXPECT_FALSE(r.more);
  ASSERT_OK_AND_ASSIGN(r, store().Range("d/", {.range_end = PrefixEnd("d/"), .count_only = true}));
  EXPECT_TRUE(r.kvs.empty());
  EXPECT_EQ(r.count, 3);
  ASSERT_OK_AND_ASSIGN(r, store().Range("d/", {.range_end = PrefixEnd("d/"), .keys_only = true}));
  EXPECT_THAT(Keys(r), ElementsAre("d/1", "d/2", "d/3"));
  for (const auto& kv : r.kvs) {
    EXPECT_TRUE(kv.value.empty());
    EXPECT_GT(kv.mod_revision, 0);
    EXPECT_EQ(kv.version, 1);
  }
}

TEST_P(StoreContractTest, RangeAtOldRevision) {
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("k", "1"));
  ASSERT_OK_AND_ASSIGN(auto p2, store().Put("k", "2"));
  ASSERT_OK_AND_ASSIGN(auto p3, store().Put("other", "x"));
  ASSERT_OK_AND_ASSIGN(auto d, store().DeleteRange("k", ""));
  ASSERT_OK(store().Put("k", "3"));
  int64_t cur = store().CurrentRevision();

  ASSERT_OK_AND_ASSIGN(auto r, store().Range("k", {.revision = p1.revision}));
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "1");
  EXPECT_EQ(r.kvs[0].version, 1);
  EXPECT_EQ(r.revision, cur);  // the header carries the current revision
  ASSERT_OK_AND_ASSIGN(r, store().Range("k", {.revision = p3.revision}));
  ASSERT_EQ(r.kvs.size(), 1u);
  EXPECT_EQ(r.kvs[0].value, "2");
  EXPECT_EQ(r.kvs[0].mod_revision, p2.revision);
  ASSERT_OK_AND_ASSIGN(r, store().Range("k", {.revision = d.revision}));
  EXPECT_EQ(r.count, 0);
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All(), .revision = p2.revision}));
  EXPECT_THAT(Keys(r), ElementsAre("k"));
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All(), .revision = p1.revision - 1}));
  auto keys_before = Keys(r);
  EXPECT_FALSE(std::count(keys_before.begin(), keys_before.end(), "k"));
  EXPECT_CODE(store().Range("k", {.revision = cur + 1}), StatusCode::kFutureRevision);
}

// ----- delete -----

TEST_P(StoreContractTest, DeleteRange) {
  RangeFixture::Fill(store());
  int64_t r0 = store().CurrentRevision();
  ASSERT_OK_AND_ASSIGN(auto d, store().DeleteRange("d/", PrefixEnd("d/"), /*prev_kv=*/true));
  EXPECT_EQ(d.deleted, 3);
  EXPECT_EQ(d.revision, r0 + 1);
  ASSERT_EQ(d.prev_kvs.size(), 3u);
  EXPECT_EQ(d.prev_kvs[0].key, "d/1");
  EXPECT_EQ(d.prev_kvs[0].value, "v-d/1");
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);  // one revision for the whole range
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("", {.range_end = All()}));
  EXPECT_THAT(Keys(r), ElementsAre("a", "b", "c", "e"));

  // Deleting nothing does not bump the revision.
  ASSERT_OK_AND_ASSIGN(d, store().DeleteRange("d/", PrefixEnd("d/")));
  EXPECT_EQ(d.deleted, 0);
  EXPECT_EQ(d.revision, r0 + 1);
  ASSERT_OK_AND_ASSIGN(d, store().DeleteRange("nope", ""));
  EXPECT_EQ(d.deleted, 0);
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);

  // Without prev_kv no prev_kvs are returned.
  ASSERT_OK_AND_ASSIGN(d, store().DeleteRange("a", ""));
  EXPECT_EQ(d.deleted, 1);
  EXPECT_TRUE(d.prev_kvs.empty());
  ASSERT_OK_AND_ASSIGN(d, store().DeleteRange("", All()));
  EXPECT_EQ(d.deleted, 3);
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All()}));
  EXPECT_EQ(r.count, 0);
}

// ----- txn -----

TEST_P(StoreContractTest, TxnComparesOnModVersionCreate) {
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("k", "1"));
  ASSERT_OK_AND_ASSIGN(auto p2, store().Put("k", "2"));
  struct Case {
    Compare c;
    bool want;
  };
  using T = Compare::Target;
  using R = Compare::Result;
  std::vector<Case> cases = {
      {Cmp("k", T::kMod, R::kEqual, p2.revision), true},
      {Cmp("k", T::kMod, R::kEqual, p1.revision), false},
      {Cmp("k", T::kMod, R::kGreater, p1.revision), true},
      {Cmp("k", T::kMod, R::kLess, p2.revision), false},
      {Cmp("k", T::kMod, R::kNotEqual, p1.revision), true},
      {Cmp("k", T::kVersion, R::kEqual, 2), true},
      {Cmp("k", T::kVersion, R::kLess, 2), false},
      {Cmp("k", T::kVersion, R::kGreater, 1), true},
      {Cmp("k", T::kCreate, R::kEqual, p1.revision), true},
      {Cmp("k", T::kCreate, R::kNotEqual, p1.revision), false},
      {Cmp("k", T::kLease, R::kEqual, 0), true},
      {Cmp("k", T::kLease, R::kGreater, 0), false},
      // A missing key has 0 for every number.
      {Cmp("missing", T::kVersion, R::kEqual, 0), true},
      {Cmp("missing", T::kCreate, R::kEqual, 0), true},
      {Cmp("missing", T::kMod, R::kGreater, 0), false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    TxnRequest t;
    t.compare = {cases[i].c};
    ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
    EXPECT_EQ(r.succeeded, cases[i].want) << "case " << i;
  }
  EXPECT_EQ(store().CurrentRevision(), p2.revision);  // compares alone write nothing
}

TEST_P(StoreContractTest, TxnComparesOnValueAndLease) {
  ASSERT_OK_AND_ASSIGN(auto lease, store().LeaseGrant(0, 60));
  ASSERT_OK(store().Put("k", "b"));
  ASSERT_OK(store().Put("l", "x", lease.id));
  using R = Compare::Result;
  struct Case {
    Compare c;
    bool want;
  };
  std::vector<Case> cases = {
      {CmpValue("k", R::kEqual, "b"), true},
      {CmpValue("k", R::kEqual, "c"), false},
      {CmpValue("k", R::kGreater, "a"), true},
      {CmpValue("k", R::kLess, "a"), false},
      {CmpValue("k", R::kNotEqual, "a"), true},
      // A missing key never satisfies a value compare.
      {CmpValue("missing", R::kEqual, ""), false},
      {CmpValue("missing", R::kNotEqual, "x"), false},
      {Cmp("l", Compare::Target::kLease, R::kEqual, lease.id), true},
      {Cmp("k", Compare::Target::kLease, R::kEqual, lease.id), false},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    TxnRequest t;
    t.compare = {cases[i].c};
    ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
    EXPECT_EQ(r.succeeded, cases[i].want) << "case " << i;
  }
}

TEST_P(StoreContractTest, TxnRangeCompareAppliesToEveryKey) {
  ASSERT_OK(store().Put("p/a", "1"));
  ASSERT_OK(store().Put("p/b", "1"));
  Compare c = CmpValue("p/", Compare::Result::kEqual, "1");
  c.range_end = PrefixEnd("p/");
  TxnRequest t;
  t.compare = {c};
  ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
  EXPECT_TRUE(r.succeeded);
  ASSERT_OK(store().Put("p/c", "2"));
  ASSERT_OK_AND_ASSIGN(r, store().Txn(t));
  EXPECT_FALSE(r.succeeded);
  Compare v = Cmp("p/", Compare::Target::kVersion, Compare::Result::kEqual, 1);
  v.range_end = PrefixEnd("p/");
  t.compare = {v};
  ASSERT_OK_AND_ASSIGN(r, store().Txn(t));
  EXPECT_TRUE(r.succeeded);
  // An empty range compares against the zero key.
  Compare e = Cmp("q/", Compare::Target::kVersion, Compare::Result::kEqual, 0);
  e.range_end = PrefixEnd("q/");
  t.compare = {e};
  ASSERT_OK_AND_ASSIGN(r, store().Txn(t));
  EXPECT_TRUE(r.succeeded);
}

TEST_P(StoreContractTest, TxnBranchesAndOneRevision) {
  ASSERT_OK_AND_ASSIGN(auto p, store().Put("k", "1"));
  TxnRequest t;
  t.compare = {Cmp("k", Compare::Target::kMod, Compare::Result::kEqual, p.revision)};
  t.success = {RequestOp::Put("k", "2"), RequestOp::Put("k2", "x"), RequestOp::Get("k")};
  t.failure = {RequestOp::Get("k")};
  ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
  EXPECT_TRUE(r.succeeded);
  EXPECT_EQ(r.revision, p.revision + 1);
  EXPECT_EQ(store().CurrentRevision(), p.revision + 1);
  ASSERT_EQ(r.responses.size(), 3u);
  EXPECT_EQ(r.responses[0].type, RequestOp::Type::kPut);
  EXPECT_EQ(r.responses[0].put.revision, p.revision + 1);
  EXPECT_EQ(r.responses[2].type, RequestOp::Type::kRange);
  ASSERT_EQ(r.responses[2].range.kvs.size(), 1u);
  // Ops see the effects of earlier ops of the same branch.
  EXPECT_EQ(r.responses[2].range.kvs[0].value, "2");
  EXPECT_EQ(r.responses[2].range.kvs[0].mod_revision, p.revision + 1);
  EXPECT_EQ(r.responses[2].range.kvs[0].version, 2);
  ASSERT_OK_AND_ASSIGN(auto k2, store().Range("k2", {}));
  ASSERT_EQ(k2.kvs.size(), 1u);
  EXPECT_EQ(k2.kvs[0].mod_revision, p.revision + 1);
  EXPECT_EQ(k2.kvs[0].create_revision, p.revision + 1);

  // Same txn again: the compare fails now; the failure branch only reads -> no new revision.
  ASSERT_OK_AND_ASSIGN(r, store().Txn(t));
  EXPECT_FALSE(r.succeeded);
  EXPECT_EQ(r.revision, p.revision + 1);
  ASSERT_EQ(r.responses.size(), 1u);
  ASSERT_EQ(r.responses[0].range.kvs.size(), 1u);
  EXPECT_EQ(r.responses[0].range.kvs[0].value, "2");
  EXPECT_EQ(store().CurrentRevision(), p.revision + 1);
}

TEST_P(StoreContractTest, TxnDeleteAndPutInOneRevision) {
  ASSERT_OK(store().Put("a/1", "1"));
  ASSERT_OK(store().Put("a/2", "2"));
  int64_t r0 = store().CurrentRevision();
  TxnRequest t;
  RequestOp del = RequestOp::Delete("a/", PrefixEnd("a/"));
  del.prev_kv = true;
  RequestOp put = RequestOp::Put("a/1", "new");
  put.prev_kv = true;
  t.success = {del, put, RequestOp::Get("a/", {.range_end = PrefixEnd("a/")})};
  if (!GetParam().txn_writes_may_overlap) {
    EXPECT_CODE(store().Txn(t), StatusCode::kInvalidArgument);
    EXPECT_EQ(store().CurrentRevision(), r0);
    // The same effect in etcd's rules: delete, then put in a second txn.
    TxnRequest first;
    first.success = {del};
    ASSERT_OK(store().Txn(first));
    TxnRequest second;
    second.success = {put, RequestOp::Get("a/", {.range_end = PrefixEnd("a/")})};
    ASSERT_OK_AND_ASSIGN(auto r2, store().Txn(second));
    EXPECT_FALSE(r2.responses[0].put.prev_kv.has_value());
    ASSERT_EQ(r2.responses[1].range.kvs.size(), 1u);
    EXPECT_EQ(r2.responses[1].range.kvs[0].create_revision, r0 + 2);
    EXPECT_EQ(r2.responses[1].range.kvs[0].version, 1);
    return;
  }
  ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
  EXPECT_TRUE(r.succeeded);
  EXPECT_EQ(r.revision, r0 + 1);
  EXPECT_EQ(r.responses[0].del.deleted, 2);
  EXPECT_EQ(r.responses[0].del.prev_kvs.size(), 2u);
  EXPECT_FALSE(r.responses[1].put.prev_kv.has_value());  // deleted earlier in the txn
  ASSERT_EQ(r.responses[2].range.kvs.size(), 1u);
  EXPECT_EQ(r.responses[2].range.kvs[0].key, "a/1");
  EXPECT_EQ(r.responses[2].range.kvs[0].create_revision, r0 + 1);
  EXPECT_EQ(r.responses[2].range.kvs[0].version, 1);
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);

  // A txn whose only write deletes nothing does not bump the revision.
  TxnRequest noop;
  noop.success = {RequestOp::Delete("nothing")};
  ASSERT_OK_AND_ASSIGN(r, store().Txn(noop));
  EXPECT_TRUE(r.succeeded);
  EXPECT_EQ(r.revision, r0 + 1);
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);
}

TEST_P(StoreContractTest, TxnRangeOptionsInsideTxn) {
  RangeFixture::Fill(store());
  TxnRequest t;
  t.success = {RequestOp::Put("d/0", "zero"),
               RequestOp::Get("d/", {.range_end = PrefixEnd("d/"), .limit = 2}),
               RequestOp::Get("d/", {.range_end = PrefixEnd("d/"), .count_only = true}),
               RequestOp::Get("d/", {.range_end = PrefixEnd("d/"), .keys_only = true})};
  ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
  ASSERT_EQ(r.responses.size(), 4u);
  EXPECT_THAT(Keys(r.responses[1].range), ElementsAre("d/0", "d/1"));
  EXPECT_EQ(r.responses[1].range.kvs[0].value, "zero");
  EXPECT_TRUE(r.responses[1].range.more);
  EXPECT_EQ(r.responses[1].range.count, 4);
  EXPECT_TRUE(r.responses[2].range.kvs.empty());
  EXPECT_EQ(r.responses[2].range.count, 4);
  EXPECT_EQ(r.responses[3].range.kvs.size(), 4u);
  EXPECT_TRUE(r.responses[3].range.kvs[0].value.empty());
}

TEST_P(StoreContractTest, TxnPutWithUnknownLeaseFailsWithoutEffect) {
  ASSERT_OK(store().Put("k", "1"));
  int64_t r0 = store().CurrentRevision();
  TxnRequest t;
  t.success = {RequestOp::Put("k", "2"), RequestOp::Put("j", "x", /*lease=*/777777)};
  EXPECT_CODE(store().Txn(t), StatusCode::kNotFound);
  EXPECT_EQ(store().CurrentRevision(), r0);
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("k", {}));
  EXPECT_EQ(r.kvs[0].value, "1");
  EXPECT_CODE(store().Put("k", "3", 777777), StatusCode::kNotFound);
  EXPECT_EQ(store().CurrentRevision(), r0);
}

TEST_P(StoreContractTest, ConcurrentCompareAndSwapIncrements) {
  ASSERT_OK(store().Put("counter", "0"));
  constexpr int kThreads = 8;
  constexpr int kAttempts = 40;
  std::atomic<int> successes{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAttempts; ++i) {
        auto cur = store().Range("counter", {});
        if (!cur.ok() || cur->kvs.size() != 1) {
          ++errors;
          continue;
        }
        int value = std::stoi(cur->kvs[0].value);
        TxnRequest txn;
        txn.compare = {Cmp("counter", Compare::Target::kMod, Compare::Result::kEqual,
                           cur->kvs[0].mod_revision)};
        txn.success = {RequestOp::Put("counter", std::to_string(value + 1))};
        auto r = store().Txn(txn);
        if (!r.ok()) {
          ++errors;
        } else if (r->succeeded) {
          ++successes;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(successes.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("counter", {}));
  EXPECT_EQ(std::stoi(r.kvs[0].value), successes.load());
  EXPECT_EQ(r.kvs[0].version, successes.load() + 1);
}

// ----- watch -----

TEST_P(StoreContractTest, WatchDeliversEventsInOrderWithPrevKv) {
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto handle, store().Watch("k", "", 0, &sink));
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("k", "1"));
  ASSERT_OK(store().Put("other", "x"));
  ASSERT_OK_AND_ASSIGN(auto p2, store().Put("k", "2"));
  ASSERT_OK_AND_ASSIGN(auto d, store().DeleteRange("k", ""));
  ASSERT_TRUE(sink.WaitFor(3));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].type, Event::Type::kPut);
  EXPECT_EQ(ev[0].kv.key, "k");
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_EQ(ev[0].kv.mod_revision, p1.revision);
  EXPECT_EQ(ev[0].kv.create_revision, p1.revision);
  EXPECT_EQ(ev[0].kv.version, 1);
  EXPECT_FALSE(ev[0].prev_kv.has_value());
  EXPECT_EQ(ev[1].kv.value, "2");
  EXPECT_EQ(ev[1].kv.mod_revision, p2.revision);
  EXPECT_EQ(ev[1].kv.version, 2);
  ASSERT_TRUE(ev[1].prev_kv.has_value());
  EXPECT_EQ(ev[1].prev_kv->value, "1");
  EXPECT_EQ(ev[1].prev_kv->mod_revision, p1.revision);
  EXPECT_EQ(ev[2].type, Event::Type::kDelete);
  EXPECT_EQ(ev[2].kv.key, "k");
  EXPECT_EQ(ev[2].kv.mod_revision, d.revision);
  ASSERT_TRUE(ev[2].prev_kv.has_value());
  EXPECT_EQ(ev[2].prev_kv->value, "2");
}

TEST_P(StoreContractTest, WatchRangeAndTxnEventsShareOneCall) {
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto handle, store().Watch("p/", PrefixEnd("p/"), 0, &sink));
  TxnRequest t;
  t.success = {RequestOp::Put("p/a", "1"), RequestOp::Put("q", "no"), RequestOp::Put("p/b", "2")};
  ASSERT_OK_AND_ASSIGN(auto r, store().Txn(t));
  ASSERT_OK(store().Put("p/c", "3"));
  ASSERT_TRUE(sink.WaitFor(3));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev[0].kv.key, "p/a");
  EXPECT_EQ(ev[1].kv.key, "p/b");
  EXPECT_EQ(ev[0].kv.mod_revision, r.revision);
  EXPECT_EQ(ev[1].kv.mod_revision, r.revision);
  EXPECT_EQ(ev[2].kv.key, "p/c");
  // A revision is never split across calls.
  auto calls = sink.calls();
  for (size_t i = 1; i < calls.size(); ++i)
    EXPECT_LT(calls[i - 1].back().kv.mod_revision, calls[i].front().kv.mod_revision);
}

TEST_P(StoreContractTest, WatchResumesFromOldRevision) {
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("k", "1"));
  ASSERT_OK(store().Put("k", "2"));
  ASSERT_OK(store().Put("j", "x"));
  ASSERT_OK(store().DeleteRange("k", ""));
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto handle, store().Watch("", All(), p1.revision, &sink));
  // History is delivered before Watch returns.
  ASSERT_EQ(sink.size(), 4u);
  ASSERT_OK_AND_ASSIGN(auto p5, store().Put("k", "3"));
  ASSERT_TRUE(sink.WaitFor(5));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 5u);
  for (size_t i = 0; i < ev.size(); ++i) EXPECT_EQ(ev[i].kv.mod_revision, p1.revision + int64_t(i));
  EXPECT_EQ(ev[0].kv.value, "1");
  EXPECT_FALSE(ev[0].prev_kv.has_value());
  ASSERT_TRUE(ev[1].prev_kv.has_value());
  EXPECT_EQ(ev[1].prev_kv->value, "1");
  EXPECT_EQ(ev[2].kv.key, "j");
  EXPECT_EQ(ev[3].type, Event::Type::kDelete);
  ASSERT_TRUE(ev[3].prev_kv.has_value());
  EXPECT_EQ(ev[3].prev_kv->value, "2");
  EXPECT_EQ(ev[4].kv.mod_revision, p5.revision);
  EXPECT_FALSE(ev[4].prev_kv.has_value());
  EXPECT_EQ(ev[4].kv.version, 1);
}

TEST_P(StoreContractTest, WatchFromFutureRevision) {
  int64_t r0 = store().CurrentRevision();
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto handle, store().Watch("k", "", r0 + 2, &sink));
  ASSERT_OK(store().Put("k", "1"));  // r0 + 1: before the start revision
  ASSERT_OK(store().Put("k", "2"));  // r0 + 2
  ASSERT_TRUE(sink.WaitFor(1));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kv.mod_revision, r0 + 2);
}

TEST_P(StoreContractTest, WatchCancel) {
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto handle, store().Watch("k", "", 0, &sink));
  ASSERT_OK(store().Put("k", "1"));
  ASSERT_TRUE(sink.WaitFor(1));
  handle.reset();
  ASSERT_OK(store().Put("k", "2"));
  CollectingSink other;  // a later watch still works and proves the put was dispatched
  ASSERT_OK_AND_ASSIGN(auto h2, store().Watch("k", "", store().CurrentRevision(), &other));
  ASSERT_TRUE(other.WaitFor(1));
  EXPECT_EQ(sink.size(), 1u);
}

TEST_P(StoreContractTest, WatchFromCompactedRevisionFails) {
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("k", "1"));
  ASSERT_OK_AND_ASSIGN(auto p2, store().Put("k", "2"));
  ASSERT_OK_AND_ASSIGN(auto p3, store().Put("k", "3"));
  ASSERT_OK(store().Compact(p2.revision));
  CollectingSink sink;
  EXPECT_CODE(store().Watch("k", "", p1.revision, &sink), StatusCode::kCompacted);
  EXPECT_CODE(store().Watch("k", "", p2.revision, &sink), StatusCode::kCompacted);
  EXPECT_EQ(sink.size(), 0u);
  ASSERT_OK_AND_ASSIGN(auto handle, store().Watch("k", "", p3.revision, &sink));
  ASSERT_TRUE(sink.WaitFor(1));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kv.value, "3");
  ASSERT_TRUE(ev[0].prev_kv.has_value());  // the value at the compaction revision survives
  EXPECT_EQ(ev[0].prev_kv->value, "2");
}

TEST_P(StoreContractTest, WatchIsGapFreeUnderConcurrentWrites) {
  int64_t r0 = store().CurrentRevision();
  CollectingSink live;
  ASSERT_OK_AND_ASSIGN(auto h1, store().Watch("w/", PrefixEnd("w/"), 0, &live));
  constexpr int kThreads = 8;
  constexpr int kPuts = 40;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  std::vector<std::unique_ptr<CollectingSink>> late_sinks;
  std::vector<std::unique_ptr<WatchHandle>> late_handles;
  std::mutex late_mu;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPuts; ++i) {
        if (!store().Put("w/" + std::to_string(t) + "/" + std::to_string(i), "v").ok()) ++errors;
      }
    });
  }
  // Watches that start from the beginning while the writers run: replay + live must join
  // without gaps or duplicates.
  for (int i = 0; i < 4; ++i) {
    auto sink = std::make_unique<CollectingSink>();
    auto h = store().Watch("w/", PrefixEnd("w/"), r0 + 1, sink.get());
    ASSERT_TRUE(h.ok());
    std::lock_guard<std::mutex> l(late_mu);
    late_handles.push_back(std::move(h).value());
    late_sinks.push_back(std::move(sink));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(errors.load(), 0);
  const size_t total = kThreads * kPuts;
  auto check = [&](CollectingSink& s) {
    ASSERT_TRUE(s.WaitFor(total));
    auto ev = s.events();
    ASSERT_EQ(ev.size(), total);
    for (size_t i = 0; i < ev.size(); ++i) ASSERT_EQ(ev[i].kv.mod_revision, r0 + 1 + int64_t(i));
  };
  check(live);
  for (auto& s : late_sinks) check(*s);
}

// ----- compaction -----

TEST_P(StoreContractTest, CompactSemantics) {
  ASSERT_OK_AND_ASSIGN(auto p1, store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(auto p2, store().Put("a", "2"));
  ASSERT_OK_AND_ASSIGN(auto p3, store().Put("b", "1"));
  ASSERT_OK_AND_ASSIGN(auto d4, store().DeleteRange("b", ""));
  ASSERT_OK_AND_ASSIGN(auto p5, store().Put("c", "1"));
  ASSERT_OK_AND_ASSIGN(auto p6, store().Put("a", "3"));
  EXPECT_CODE(store().Compact(p6.revision + 1), StatusCode::kFutureRevision);
  ASSERT_OK(store().Compact(d4.revision));
  EXPECT_EQ(store().CompactRevision(), d4.revision);
  EXPECT_CODE(store().Compact(d4.revision), StatusCode::kCompacted);
  EXPECT_CODE(store().Compact(p1.revision), StatusCode::kCompacted);

  EXPECT_CODE(store().Range("a", {.revision = p1.revision}), StatusCode::kCompacted);
  EXPECT_CODE(store().Range("a", {.revision = p3.revision}), StatusCode::kCompacted);
  // At the compaction revision the store still reads as it was.
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("", {.range_end = All(), .revision = d4.revision}));
  EXPECT_THAT(Keys(r), ElementsAre("a"));
  EXPECT_EQ(r.kvs[0].value, "2");
  EXPECT_EQ(r.kvs[0].mod_revision, p2.revision);
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All(), .revision = p5.revision}));
  EXPECT_THAT(Keys(r), ElementsAre("a", "c"));
  // Latest values remain, with their metadata.
  ASSERT_OK_AND_ASSIGN(r, store().Range("", {.range_end = All()}));
  EXPECT_THAT(Keys(r), ElementsAre("a", "c"));
  EXPECT_EQ(r.kvs[0].value, "3");
  EXPECT_EQ(r.kvs[0].create_revision, p1.revision);
  EXPECT_EQ(r.kvs[0].version, 3);
  // Writes continue after compaction; compaction again at the current revision works.
  ASSERT_OK_AND_ASSIGN(auto p7, store().Put("a", "4"));
  EXPECT_EQ(p7.revision, p6.revision + 1);
  ASSERT_OK(store().Compact(p7.revision));
  ASSERT_OK_AND_ASSIGN(r, store().Range("a", {}));
  EXPECT_EQ(r.kvs[0].value, "4");
  EXPECT_EQ(r.kvs[0].version, 4);
  ASSERT_OK_AND_ASSIGN(r, store().Range("c", {.revision = p7.revision}));
  EXPECT_EQ(r.kvs[0].value, "1");
  EXPECT_EQ(store().GetStatus().compact_revision, p7.revision);
}

TEST_P(StoreContractTest, CompactAfterDeleteKeepsRevision) {
  ASSERT_OK(store().Put("a", "1"));
  ASSERT_OK_AND_ASSIGN(auto d, store().DeleteRange("a", ""));
  ASSERT_OK(store().Compact(d.revision));
  EXPECT_EQ(store().CurrentRevision(), d.revision);
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("", {.range_end = All()}));
  EXPECT_EQ(r.count, 0);
  EXPECT_EQ(r.revision, d.revision);
  ASSERT_OK_AND_ASSIGN(auto p, store().Put("a", "2"));
  EXPECT_EQ(p.revision, d.revision + 1);
  ASSERT_OK_AND_ASSIGN(r, store().Range("a", {}));
  EXPECT_EQ(r.kvs[0].version, 1);
  EXPECT_EQ(r.kvs[0].create_revision, p.revision);
}

// ----- leases -----

TEST_P(StoreContractTest, LeaseGrantListTimeToLive) {
  ASSERT_OK_AND_ASSIGN(auto l1, store().LeaseGrant(0, 30));
  EXPECT_GT(l1.id, 0);
  EXPECT_EQ(l1.granted_ttl, 30);
  ASSERT_OK_AND_ASSIGN(auto l2, store().LeaseGrant(4242, 60));
  EXPECT_EQ(l2.id, 4242);
  EXPECT_CODE(store().LeaseGrant(4242, 60), StatusCode::kAlreadyExists);
  auto ids = store().Leases();
  EXPECT_TRUE(std::count(ids.begin(), ids.end(), l1.id));
  EXPECT_TRUE(std::count(ids.begin(), ids.end(), 4242));

  ASSERT_OK(store().Put("x", "1", 4242));
  ASSERT_OK(store().Put("y", "1", 4242));
  ASSERT_OK(store().Put("z", "1", l1.id));
  ASSERT_OK_AND_ASSIGN(auto ttl, store().LeaseTimeToLive(4242, true));
  EXPECT_EQ(ttl.granted_ttl, 60);
  EXPECT_GT(ttl.remaining_ttl, 50);
  EXPECT_LE(ttl.remaining_ttl, 60);
  std::sort(ttl.keys.begin(), ttl.keys.end());
  EXPECT_THAT(ttl.keys, ElementsAre("x", "y"));
  ASSERT_OK_AND_ASSIGN(auto x, store().Range("x", {}));
  EXPECT_EQ(x.kvs[0].lease, 4242);

  // Re-putting a key without the lease detaches it; deleting detaches too.
  ASSERT_OK(store().Put("y", "2"));
  ASSERT_OK(store().Put("z", "2", 4242));
  ASSERT_OK_AND_ASSIGN(ttl, store().LeaseTimeToLive(4242, true));
  std::sort(ttl.keys.begin(), ttl.keys.end());
  EXPECT_THAT(ttl.keys, ElementsAre("x", "z"));
  ASSERT_OK_AND_ASSIGN(auto t1, store().LeaseTimeToLive(l1.id, true));
  EXPECT_TRUE(t1.keys.empty());
  ASSERT_OK_AND_ASSIGN(auto ka, store().LeaseKeepAlive(4242));
  EXPECT_EQ(ka, 60);
  EXPECT_CODE(store().LeaseKeepAlive(99999), StatusCode::kNotFound);
  EXPECT_CODE(store().LeaseTimeToLive(99999, false), StatusCode::kNotFound);
  EXPECT_CODE(store().LeaseRevoke(99999), StatusCode::kNotFound);
}

TEST_P(StoreContractTest, LeaseRevokeDeletesKeysInOneRevision) {
  ASSERT_OK_AND_ASSIGN(auto lease, store().LeaseGrant(0, 60));
  ASSERT_OK(store().Put("l/a", "1", lease.id));
  ASSERT_OK(store().Put("l/b", "1", lease.id));
  ASSERT_OK(store().Put("l/c", "1"));
  int64_t r0 = store().CurrentRevision();
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto h, store().Watch("l/", PrefixEnd("l/"), 0, &sink));
  ASSERT_OK(store().LeaseRevoke(lease.id));
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("l/", {.range_end = PrefixEnd("l/")}));
  EXPECT_THAT(Keys(r), ElementsAre("l/c"));
  ASSERT_TRUE(sink.WaitFor(2));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 2u);
  for (const auto& e : ev) {
    EXPECT_EQ(e.type, Event::Type::kDelete);
    EXPECT_EQ(e.kv.mod_revision, r0 + 1);
    ASSERT_TRUE(e.prev_kv.has_value());
    EXPECT_EQ(e.prev_kv->lease, lease.id);
  }
  auto ids = store().Leases();
  EXPECT_FALSE(std::count(ids.begin(), ids.end(), lease.id));
  EXPECT_CODE(store().Put("l/d", "1", lease.id), StatusCode::kNotFound);
  // Revoking a lease without keys does not bump the revision.
  ASSERT_OK_AND_ASSIGN(auto empty, store().LeaseGrant(0, 60));
  ASSERT_OK(store().LeaseRevoke(empty.id));
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);
}

TEST_P(StoreContractTest, LeaseExpiryDeletesKeys) {
  ASSERT_OK_AND_ASSIGN(auto lease, store().LeaseGrant(0, 1));
  ASSERT_OK(store().Put("e/a", "1", lease.id));
  ASSERT_OK(store().Put("e/b", "1", lease.id));
  int64_t r0 = store().CurrentRevision();
  ASSERT_TRUE(WaitUntil([&] {
    auto r = store().Range("e/", {.range_end = PrefixEnd("e/"), .count_only = true});
    return r.ok() && r->count == 0;
  }, std::chrono::seconds(5)));
  EXPECT_EQ(store().CurrentRevision(), r0 + 1);
  EXPECT_CODE(store().LeaseKeepAlive(lease.id), StatusCode::kNotFound);
  ASSERT_TRUE(WaitUntil([&] {
    auto ids = store().Leases();
    return !std::count(ids.begin(), ids.end(), lease.id);
  }));
}

TEST_P(StoreContractTest, LeaseKeepAliveExtends) {
  ASSERT_OK_AND_ASSIGN(auto lease, store().LeaseGrant(0, 1));
  ASSERT_OK(store().Put("k", "1", lease.id));
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    ASSERT_OK(store().LeaseKeepAlive(lease.id));
  }
  ASSERT_OK_AND_ASSIGN(auto r, store().Range("k", {}));
  EXPECT_EQ(r.count, 1);  // 1.5 s > TTL, but kept alive
  ASSERT_OK(store().LeaseRevoke(lease.id));
}

// ----- status -----

TEST_P(StoreContractTest, GetStatus) {
  ASSERT_OK(store().Put("a", "1"));
  ASSERT_OK(store().Put("b", "1"));
  ASSERT_OK(store().Put("b", "2"));
  ASSERT_OK(store().DeleteRange("a", ""));
  StoreStatus s = store().GetStatus();
  EXPECT_EQ(s.revision, store().CurrentRevision());
  EXPECT_EQ(s.key_count, 1);
  EXPECT_GE(s.db_size_bytes, 0);
}

}  // namespace
}  // namespace rc::store::testing
