// RocksDB-store specific tests: persistence across reopen, group commit, crash recovery, and a
// randomized differential test against the in-memory store.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "rc/store/rocks_store.h"
#include "rc/store/store.h"
#include "store_test_util.h"

extern char** environ;

namespace rc::store::testing {
namespace {

using ::testing::ElementsAre;

std::string All() { return std::string(1, '\0'); }

std::unique_ptr<Store> MustOpen(const std::string& path, bool sync = true) {
  RocksStoreOptions o;
  o.path = path;
  o.sync = sync;
  auto s = OpenRocksStore(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

std::string Dump(const KeyValue& kv) {
  std::ostringstream os;
  os << "{" << kv.key << "=" << kv.value << " c" << kv.create_revision << " m" << kv.mod_revision
     << " v" << kv.version << " l" << kv.lease << "}";
  return os.str();
}
std::string Dump(const std::optional<KeyValue>& kv) { return kv ? Dump(*kv) : "none"; }
std::string Dump(const RangeResult& r) {
  std::ostringstream os;
  os << "rev" << r.revision << " count" << r.count << " more" << r.more << " [";
  for (const auto& kv : r.kvs) os << Dump(kv);
  return os.str() + "]";
}
std::string Dump(const Event& e) {
  return std::string(e.type == Event::Type::kPut ? "PUT" : "DEL") + Dump(e.kv) + " prev " +
         Dump(e.prev_kv);
}
std::string Dump(const TxnResult& t) {
  std::ostringstream os;
  os << "succeeded" << t.succeeded << " rev" << t.revision;
  for (const auto& r : t.responses) {
    os << " (";
    switch (r.type) {
      case RequestOp::Type::kRange: os << "range " << Dump(r.range); break;
      case RequestOp::Type::kPut: os << "put " << r.put.revision << " " << Dump(r.put.prev_kv); break;
      case RequestOp::Type::kDeleteRange:
        os << "del " << r.del.revision << " " << r.del.deleted;
        for (const auto& kv : r.del.prev_kvs) os << Dump(kv);
        break;
    }
    os << ")";
  }
  return os.str();
}
template <typename T>
std::string DumpResult(const Result<T>& r) {
  if (!r.ok()) return "error " + std::string(StatusCodeName(r.status().code()));
  return Dump(*r);
}
std::string DumpResult(const Result<PutResult>& r) {
  if (!r.ok()) return "error " + std::string(StatusCodeName(r.status().code()));
  return "put " + std::to_string(r->revision) + " " + Dump(r->prev_kv);
}
std::string DumpResult(const Result<DeleteResult>& r) {
  if (!r.ok()) return "error " + std::string(StatusCodeName(r.status().code()));
  std::string s = "del " + std::to_string(r->revision) + " " + std::to_string(r->deleted);
  for (const auto& kv : r->prev_kvs) s += Dump(kv);
  return s;
}

TEST(RocksStoreTest, ReopenKeepsEverything) {
  TempDir dir;
  const std::string path = dir.path() + "/db";
  int64_t lease_id = 0, rev_b1 = 0, compact = 0, final_rev = 0;
  {
    auto s = MustOpen(path);
    ASSERT_NE(s, nullptr);
    ASSERT_OK(s->Put("a", "1"));                                   // 2
    ASSERT_OK_AND_ASSIGN(auto b1, s->Put("b", "1"));               // 3
    rev_b1 = b1.revision;
    ASSERT_OK(s->Put("a", "2"));                                   // 4
    ASSERT_OK(s->Put("c", "gone"));                                // 5
    ASSERT_OK(s->DeleteRange("c", ""));                            // 6
    ASSERT_OK_AND_ASSIGN(auto lease, s->LeaseGrant(0, 300));
    lease_id = lease.id;
    ASSERT_OK(s->Put("l/1", "leased", lease_id));                  // 7
    ASSERT_OK(s->Put("l/2", "leased", lease_id));                  // 8
    ASSERT_OK(s->Compact(4));
    compact = 4;
    ASSERT_OK(s->Put("b", "2"));                                   // 9
    TxnRequest t;
    t.success = {RequestOp::Put("a", "3"), RequestOp::Put("d", "x")};
    ASSERT_OK(s->Txn(t));                                          // 10
    final_rev = s->CurrentRevision();
    ASSERT_EQ(final_rev, 10);
  }
  auto s = MustOpen(path);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->CurrentRevision(), final_rev);
  EXPECT_EQ(s->CompactRevision(), compact);
  EXPECT_EQ(s->GetStatus().key_count, 5);  // a b d l/1 l/2
  ASSERT_OK_AND_ASSIGN(auto r, s->Range("", {.range_end = All()}));
  EXPECT_EQ(r.revision, final_rev);
  ASSERT_EQ(r.kvs.size(), 5u);
  EXPECT_EQ(Dump(r.kvs[0]), "{a=3 c2 m10 v3 l0}");
  EXPECT_EQ(Dump(r.kvs[1]), "{b=2 c3 m9 v2 l0}");
  EXPECT_EQ(Dump(r.kvs[2]), "{d=x c10 m10 v1 l0}");
  EXPECT_EQ(r.kvs[3].lease, lease_id);
  // History above the compaction revision is still there.
  ASSERT_OK_AND_ASSIGN(r, s->Range("", {.range_end = All(), .revision = 5}));
  ASSERT_EQ(r.kvs.size(), 3u);
  EXPECT_EQ(Dump(r.kvs[0]), "{a=2 c2 m4 v2 l0}");
  EXPECT_EQ(r.kvs[1].mod_revision, rev_b1);
  EXPECT_EQ(r.kvs[2].value, "gone");
  ASSERT_OK_AND_ASSIGN(r, s->Range("b", {.revision = compact}));
  EXPECT_EQ(r.kvs[0].value, "1");
  EXPECT_CODE(s->Range("a", {.revision = compact - 1}), StatusCode::kCompacted);
  EXPECT_CODE(s->Compact(compact), StatusCode::kCompacted);
  // Watch replay from the log after reopen, with prev_kv.
  CollectingSink sink;
  ASSERT_OK_AND_ASSIGN(auto h, s->Watch("", All(), compact + 1, &sink));
  auto ev = sink.events();
  ASSERT_EQ(ev.size(), 7u);  // 5 6 7 8 9 10 10
  EXPECT_EQ(ev[1].type, Event::Type::kDelete);
  EXPECT_EQ(Dump(ev[1].prev_kv), "{c=gone c5 m5 v1 l0}");
  EXPECT_EQ(Dump(ev[4].prev_kv), "{b=1 c3 m3 v1 l0}");
  EXPECT_EQ(Dump(ev[5].prev_kv), "{a=2 c2 m4 v2 l0}");
  EXPECT_CODE(s->Watch("", All(), compact, &sink), StatusCode::kCompacted);
  // Leases survive with their keys.
  EXPECT_THAT(s->Leases(), ElementsAre(lease_id));
  ASSERT_OK_AND_ASSIGN(auto ttl, s->LeaseTimeToLive(lease_id, true));
  EXPECT_EQ(ttl.granted_ttl, 300);
  EXPECT_THAT(ttl.keys, ElementsAre("l/1", "l/2"));
  ASSERT_OK(s->LeaseRevoke(lease_id));
  EXPECT_EQ(s->CurrentRevision(), final_rev + 1);
  ASSERT_OK_AND_ASSIGN(r, s->Range("l/", {.range_end = PrefixEnd("l/")}));
  EXPECT_EQ(r.count, 0);
  ASSERT_OK_AND_ASSIGN(auto p, s->Put("e", "1"));
  EXPECT_EQ(p.revision, final_rev + 2);
  s.reset();
  // Revocation is persistent too.
  s = MustOpen(path);
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->Leases().empty());
  EXPECT_EQ(s->CurrentRevision(), final_rev + 2);
}

TEST(RocksStoreTest, ReopenAfterCompactingTrailingDeletes) {
  TempDir dir;
  const std::string path = dir.path() + "/db";
  {
    auto s = MustOpen(path);
    ASSERT_OK(s->Put("a", "1"));
    ASSERT_OK(s->Put("b", "1"));
    ASSERT_OK(s->DeleteRange("", All()));  // 4: the latest revision is all tombstones
    ASSERT_OK(s->Compact(4));
  }
  auto s = MustOpen(path);
  EXPECT_EQ(s->CurrentRevision(), 4);
  EXPECT_EQ(s->CompactRevision(), 4);
  EXPECT_EQ(s->GetStatus().key_count, 0);
  ASSERT_OK_AND_ASSIGN(auto p, s->Put("a", "2"));
  EXPECT_EQ(p.revision, 5);
}

TEST(RocksStoreTest, ConcurrentWritersShareFsyncs) {
  TempDir dir;
  auto s = MustOpen(dir.path() + "/db");
  ASSERT_NE(s, nullptr);
  constexpr int kThreads = 64;
  constexpr int kWrites = 50;
  ASSERT_OK_AND_ASSIGN(auto before, GetRocksStoreStats(*s));
  std::vector<std::vector<int64_t>> revs(kThreads);
  std::atomic<int> errors{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        auto r = s->Put("k/" + std::to_string(t) + "/" + std::to_string(i), std::string(64, 'x'));
        if (!r.ok()) {
          ++errors;
          continue;
        }
        revs[t].push_back(r->revision);
      }
    });
  }
  for (auto& th : threads) th.join();
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(errors.load(), 0);
  ASSERT_OK_AND_ASSIGN(auto after, GetRocksStoreStats(*s));
  const int64_t writes = kThreads * kWrites;
  int64_t syncs = after.wal_syncs - before.wal_syncs;
  int64_t batches = after.write_batches - before.write_batches;
  std::cout << writes << " writes, " << batches << " batches, " << syncs << " WAL syncs, "
            << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms\n";
  EXPECT_GT(syncs, 0);
  EXPECT_LT(syncs, writes / 4);
  EXPECT_LT(batches, writes / 4);
  EXPECT_EQ(after.write_requests - before.write_requests, writes);
  // Every write got its own revision, and together they are exactly 2..writes+1.
  std::vector<int64_t> all;
  for (auto& v : revs) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(writes));
  for (size_t i = 0; i < all.size(); ++i) ASSERT_EQ(all[i], int64_t(i) + 2);
  // Each thread saw its own writes in increasing revision order.
  for (auto& v : revs) EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  EXPECT_EQ(s->GetStatus().key_count, writes);
}

TEST(RocksStoreTest, UnsyncedModeKeepsDataAcrossCleanClose) {
  TempDir dir;
  const std::string path = dir.path() + "/db";
  {
    auto s = MustOpen(path, /*sync=*/false);
    for (int i = 0; i < 100; ++i) ASSERT_OK(s->Put("k" + std::to_string(i), "v"));
    ASSERT_OK_AND_ASSIGN(auto st, GetRocksStoreStats(*s));
    EXPECT_EQ(st.write_requests, 100);
  }
  auto s = MustOpen(path);
  EXPECT_EQ(s->CurrentRevision(), 101);
  EXPECT_EQ(s->GetStatus().key_count, 100);
}

TEST(RocksStoreTest, StatsRequireRocksStore) {
  auto m = NewMemoryStore();
  EXPECT_CODE(GetRocksStoreStats(*m), StatusCode::kInvalidArgument);
}

TEST(RocksStoreTest, OpenFailsOnBadPath) {
  TempDir dir;
  std::string file = dir.path() + "/file";
  FILE* f = fopen(file.c_str(), "w");
  ASSERT_NE(f, nullptr);
  fclose(f);
  RocksStoreOptions o;
  o.path = file + "/db";
  EXPECT_FALSE(OpenRocksStore(o).ok());
  o.path = "";
  EXPECT_CODE(OpenRocksStore(o), StatusCode::kInvalidArgument);
}

// Random operations against the memory store (the oracle) and the RocksDB store; every result,
// every watch event and the final state must match exactly.
TEST(RocksStoreTest, DifferentialAgainstMemoryStore) {
  TempDir dir;
  auto rocks = MustOpen(dir.path() + "/db", /*sync=*/false);
  auto mem = NewMemoryStore();
  ASSERT_NE(rocks, nullptr);
  CollectingSink rocks_sink, mem_sink;
  ASSERT_OK_AND_ASSIGN(auto rh, rocks->Watch("", All(), 0, &rocks_sink));
  ASSERT_OK_AND_ASSIGN(auto mh, mem->Watch("", All(), 0, &mem_sink));
  std::mt19937 rng(12345);
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const std::vector<std::string> keys = {"a", "a/1", "a/2", "b", "b/1", "c", "d", "e/x", "e/y"};
  auto key = [&] { return keys[pick(keys.size())]; };
  auto range_end = [&]() -> std::string {
    switch (pick(4)) {
      case 0: return "";
      case 1: return All();
      case 2: return key();
      default: return PrefixEnd(key());
    }
  };
  std::vector<int64_t> leases = {0, 0, 0, 1001, 1002};
  for (Store* s : {rocks.get(), mem.get()}) {
    ASSERT_OK(s->LeaseGrant(1001, 600));
    ASSERT_OK(s->LeaseGrant(1002, 600));
  }
  auto random_op = [&]() {
    RequestOp op;
    switch (pick(3)) {
      case 0:
        op = RequestOp::Get(key(), {.range_end = range_end(), .limit = pick(3),
                                    .keys_only = pick(4) == 0, .count_only = pick(6) == 0});
        break;
      case 1:
        op = RequestOp::Put(key(), "v" + std::to_string(pick(5)), leases[pick(leases.size())]);
        op.prev_kv = pick(2);
        break;
      default:
        op = RequestOp::Delete(key(), pick(2) ? "" : range_end());
        op.prev_kv = pick(2);
        break;
    }
    return op;
  };
  for (int step = 0; step < 1500; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    int what = pick(100);
    if (what < 30) {
      std::string k = key();
      std::string v = "v" + std::to_string(pick(5));
      int64_t lease = leases[pick(leases.size())];
      bool prev = pick(2);
      ASSERT_EQ(DumpResult(rocks->Put(k, v, lease, prev)), DumpResult(mem->Put(k, v, lease, prev)));
    } else if (what < 40) {
      std::string k = key(), e = range_end();
      bool prev = pick(2);
      ASSERT_EQ(DumpResult(rocks->DeleteRange(k, e, prev)),
                DumpResult(mem->DeleteRange(k, e, prev)));
    } else if (what < 70) {
      TxnRequest t;
      for (int i = pick(3); i > 0; --i) {
        Compare c;
        c.key = key();
        if (pick(4) == 0) c.range_end = range_end();
        c.target = static_cast<Compare::Target>(pick(5));
        c.result = static_cast<Compare::Result>(pick(4));
        c.number = pick(2) ? rocks->CurrentRevision() - pick(5) : pick(3);
        c.value = "v" + std::to_string(pick(5));
        t.compare.push_back(c);
      }
      for (int i = pick(4); i > 0; --i) t.success.push_back(random_op());
      for (int i = pick(3); i > 0; --i) t.failure.push_back(random_op());
      ASSERT_EQ(DumpResult(rocks->Txn(t)), DumpResult(mem->Txn(t)));
    } else if (what < 90) {
      RangeOptions o{.range_end = range_end(), .limit = pick(3)};
      int64_t cur = mem->CurrentRevision();
      if (pick(2)) o.revision = std::max<int64_t>(1, cur - pick(40));
      std::string k = key();
      ASSERT_EQ(DumpResult(rocks->Range(k, o)), DumpResult(mem->Range(k, o)));
    } else if (what < 93) {
      int64_t cur = mem->CurrentRevision();
      int64_t rev = std::max<int64_t>(1, cur - pick(30));
      Status a = rocks->Compact(rev), b = mem->Compact(rev);
      ASSERT_EQ(a.code(), b.code()) << a.ToString() << " vs " << b.ToString();
    } else if (what < 96) {
      int64_t id = 1001 + pick(2);
      Status a = rocks->LeaseRevoke(id), b = mem->LeaseRevoke(id);
      ASSERT_EQ(a.code(), b.code());
      auto ga = rocks->LeaseGrant(id, 600);
      auto gb = mem->LeaseGrant(id, 600);
      ASSERT_EQ(ga.ok(), gb.ok());
    } else {
      // A watch from an old revision replays the same history in both stores.
      int64_t start = std::max<int64_t>(1, mem->CurrentRevision() - pick(20));
      CollectingSink a, b;
      std::string k = pick(2) ? "" : key();
      std::string e = pick(2) ? All() : range_end();
      auto wa = rocks->Watch(k, e, start, &a);
      auto wb = mem->Watch(k, e, start, &b);
      ASSERT_EQ(wa.ok(), wb.ok());
      if (wa.ok()) {
        auto ea = a.events(), eb = b.events();
        ASSERT_EQ(ea.size(), eb.size());
        for (size_t i = 0; i < ea.size(); ++i) ASSERT_EQ(Dump(ea[i]), Dump(eb[i]));
      }
    }
    ASSERT_EQ(rocks->CurrentRevision(), mem->CurrentRevision());
    ASSERT_EQ(rocks->CompactRevision(), mem->CompactRevision());
  }
  ASSERT_EQ(DumpResult(rocks->Range("", {.range_end = All()})),
            DumpResult(mem->Range("", {.range_end = All()})));
  EXPECT_EQ(rocks->GetStatus().key_count, mem->GetStatus().key_count);
  auto ea = rocks_sink.events(), eb = mem_sink.events();
  ASSERT_EQ(ea.size(), eb.size());
  for (size_t i = 0; i < ea.size(); ++i) ASSERT_EQ(Dump(ea[i]), Dump(eb[i])) << "event " << i;
  for (int64_t id : {1001, 1002}) {
    auto ta = rocks->LeaseTimeToLive(id, true), tb = mem->LeaseTimeToLive(id, true);
    ASSERT_TRUE(ta.ok() && tb.ok());
    std::sort(ta->keys.begin(), ta->keys.end());
    std::sort(tb->keys.begin(), tb->keys.end());
    EXPECT_EQ(ta->keys, tb->keys);
  }
}

// Spawns store_crash_writer, reads its acknowledged writes for a while, SIGKILLs it mid-load,
// then checks that every acknowledged write survived with its revision.
TEST(RocksStoreTest, CrashKeepsAcknowledgedWrites) {
  TempDir dir;
  const std::string path = dir.path() + "/db";
  std::map<std::string, int64_t> acked;
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    std::string prefix = "r" + std::to_string(round);
    std::vector<char*> argv = {const_cast<char*>(STORE_CRASH_WRITER),
                               const_cast<char*>(path.c_str()), prefix.data(),
                               const_cast<char*>("8"), nullptr};
    pid_t pid;
    int rc = posix_spawn(&pid, STORE_CRASH_WRITER, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    ASSERT_EQ(rc, 0) << "spawn " << STORE_CRASH_WRITER;

    std::string buf;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(600 + 200 * round);
    bool eof = false;
    auto drain = [&](int timeout_ms) {
      pollfd p{fds[0], POLLIN, 0};
      if (poll(&p, 1, timeout_ms) <= 0) return;
      char chunk[65536];
      ssize_t n = read(fds[0], chunk, sizeof(chunk));
      if (n <= 0) {
        eof = true;
      } else {
        buf.append(chunk, n);
      }
    };
    while (!eof && std::chrono::steady_clock::now() < deadline) drain(50);
    kill(pid, SIGKILL);
    while (!eof) drain(1000);  // everything printed before the kill
    close(fds[0]);
    int wstatus = 0;
    waitpid(pid, &wstatus, 0);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "writer exited early with " << wstatus;

    size_t lines = 0;
    std::istringstream in(buf);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // an incomplete last line is not an acknowledgement
      auto sp = line.find(' ');
      ASSERT_NE(sp, std::string::npos) << line;
      acked[line.substr(0, sp)] = std::stoll(line.substr(sp + 1));
      ++lines;
    }
    EXPECT_GT(lines, 10u);

    auto s = MustOpen(path);
    ASSERT_NE(s, nullptr);
    std::set<int64_t> revs;
    for (const auto& [k, rev] : acked) {
      auto r = s->Range(k, {});
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->kvs.size(), 1u) << "acknowledged key lost: " << k;
      ASSERT_EQ(r->kvs[0].mod_revision, rev) << k;
      revs.insert(rev);
    }
    EXPECT_EQ(revs.size(), acked.size());
    ASSERT_GE(s->CurrentRevision(), *revs.rbegin());
    // The recovered log is gap-free: every revision 2..current holds exactly one put.
    CollectingSink sink;
    ASSERT_OK_AND_ASSIGN(auto h, s->Watch("", All(), 2, &sink));
    auto ev = sink.events();
    ASSERT_EQ(ev.size(), static_cast<size_t>(s->CurrentRevision() - 1));
    for (size_t i = 0; i < ev.size(); ++i) ASSERT_EQ(ev[i].kv.mod_revision, int64_t(i) + 2);
    std::cout << "round " << round << ": " << lines << " acknowledged, recovered revision "
              << s->CurrentRevision() << "\n";
  }
}

}  // namespace
}  // namespace rc::store::testing
