// Drives the real etcdctl (ETCDCTL_API=3) against EtcdServer over the memory and RocksDB stores.
#include <gtest/gtest.h>

#include <regex>
#include <thread>

#include "test_util.h"

namespace rc::testing {
namespace {

using namespace std::chrono_literals;

class EtcdctlTest : public ::testing::TestWithParam<StoreKind>, public ServerFixture {
 protected:
  void SetUp() override {
    if (FindEtcdctl().empty()) GTEST_SKIP() << "etcdctl not installed";
    SetUpServer(GetParam());
  }
  void TearDown() override { TearDownServer(); }

  // Runs etcdctl and expects success; returns stdout.
  std::string Ok(const std::vector<std::string>& args, const std::string& input = "") {
    RunResult r = Etcdctl(args, input);
    EXPECT_EQ(r.exit_code, 0) << "etcdctl " << ::testing::PrintToString(args) << "\nstdout: "
                              << r.out << "\nstderr: " << r.err;
    return r.out;
  }
};

TEST_P(EtcdctlTest, PutGetDelete) {
  EXPECT_EQ(Ok({"put", "foo", "bar"}), "OK\n");
  EXPECT_EQ(Ok({"get", "foo"}), "foo\nbar\n");
  EXPECT_EQ(Ok({"get", "foo", "--print-value-only"}), "bar\n");
  EXPECT_EQ(Ok({"get", "missing"}), "");
  EXPECT_EQ(Ok({"put", "foo", "baz", "--prev-kv"}), "OK\nfoo\nbar\n");
  EXPECT_EQ(Ok({"del", "foo"}), "1\n");
  EXPECT_EQ(Ok({"del", "foo"}), "0\n");
  EXPECT_EQ(Ok({"get", "foo"}), "");
}

TEST_P(EtcdctlTest, PrefixKeysOnlyLimitSortCount) {
  Ok({"put", "/registry/pods/a", "1"});
  Ok({"put", "/registry/pods/b", "2"});
  Ok({"put", "/registry/pods/c", "3"});
  Ok({"put", "/registry/svc/x", "4"});
  Ok({"put", "/other", "5"});
  EXPECT_EQ(Lines(Ok({"get", "--prefix", "/registry/", "--keys-only"})),
            (std::vector<std::string>{"/registry/pods/a", "/registry/pods/b", "/registry/pods/c",
                                      "/registry/svc/x"}));
  EXPECT_EQ(Lines(Ok({"get", "--prefix", "/registry/pods/", "--limit=2"})),
            (std::vector<std::string>{"/registry/pods/a", "1", "/registry/pods/b", "2"}));
  EXPECT_EQ(Lines(Ok({"get", "--prefix", "/registry/pods/", "--sort-by=KEY", "--order=DESCEND",
                      "--limit=1"})),
            (std::vector<std::string>{"/registry/pods/c", "3"}));
  Ok({"put", "/registry/pods/a", "1b"});  // now the most recently modified
  EXPECT_EQ(Lines(Ok({"get", "--prefix", "/registry/pods/", "--sort-by=MODIFY",
                      "--order=DESCEND", "--keys-only", "--limit=1"})),
            (std::vector<std::string>{"/registry/pods/a"}));
  std::string json = Ok({"get", "--prefix", "/registry/", "--keys-only", "--limit=1", "-w", "json"});
  EXPECT_NE(json.find("\"count\":4"), std::string::npos) << json;
  EXPECT_NE(json.find("\"more\":true"), std::string::npos) << json;
  EXPECT_EQ(Lines(Ok({"get", "/registry/pods/b", "--from-key", "--keys-only"})),
            (std::vector<std::string>{"/registry/pods/b", "/registry/pods/c", "/registry/svc/x"}));
  EXPECT_EQ(Ok({"del", "--prefix", "/registry/pods/"}), "3\n");
  EXPECT_EQ(Lines(Ok({"get", "--prefix", "/", "--keys-only"})),
            (std::vector<std::string>{"/other", "/registry/svc/x"}));
}

TEST_P(EtcdctlTest, Txn) {
  Ok({"put", "k1", "v1"});
  // Compare holds: success branch, with a nested range op.
  std::string out = Ok({"txn"},
                       "value(\"k1\") = \"v1\"\n\n"
                       "put k2 created\nget k1\n\n"
                       "put k2 failed\n\n");
  EXPECT_EQ(Lines(out), (std::vector<std::string>{"SUCCESS", "OK", "k1", "v1"}));
  EXPECT_EQ(Ok({"get", "k2", "--print-value-only"}), "created\n");
  // Compare fails: failure branch.
  out = Ok({"txn"},
           "mod(\"k1\") > \"1000\"\nversion(\"k2\") = \"1\"\n\n"
           "put k2 wrong\n\n"
           "put k2 second\ndel k1\n\n");
  EXPECT_EQ(Lines(out), (std::vector<std::string>{"FAILURE", "OK", "1"}));
  EXPECT_EQ(Ok({"get", "k2", "--print-value-only"}), "second\n");
  EXPECT_EQ(Ok({"get", "k1"}), "");
  // A missing key has mod revision 0 (create-if-absent idiom).
  out = Ok({"txn"}, "mod(\"k3\") = \"0\"\n\nput k3 new\n\n\n");
  EXPECT_EQ(Lines(out), (std::vector<std::string>{"SUCCESS", "OK"}));
  out = Ok({"txn"}, "mod(\"k3\") = \"0\"\n\nput k3 again\n\n\n");
  EXPECT_EQ(Lines(out), (std::vector<std::string>{"FAILURE"}));
  // The same key put twice in one branch is rejected like etcd does.
  RunResult r = Etcdctl({"txn"}, "\nput k4 a\nput k4 b\n\n\n");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("duplicate key given in txn request"), std::string::npos) << r.err;
}

TEST_P(EtcdctlTest, Watch) {
  Ok({"put", "/registry/a", "before"});  // revision 2
  Ok({"put", "/unrelated", "x"});        // revision 3
  Subprocess watch;
  ASSERT_TRUE(watch.Start(EtcdctlArgv({"watch", "--prefix", "/registry/", "--rev", "2"}),
                          {{"ETCDCTL_API", "3"}}));
  // History from revision 2 arrives first.
  ASSERT_TRUE(watch.ReadUntil([](const std::string& s) { return s.find("before") != std::string::npos; }, 10s))
      << watch.out() << watch.err();
  Ok({"put", "/registry/b", "live1"});
  Ok({"put", "/outside", "y"});
  Ok({"del", "/registry/a"});
  Ok({"put", "/registry/b", "live2"});
  ASSERT_TRUE(watch.ReadUntil([](const std::string& s) { return s.find("live2") != std::string::npos; }, 10s))
      << watch.out() << watch.err();
  watch.Kill();
  EXPECT_EQ(Lines(watch.out()),
            (std::vector<std::string>{"PUT", "/registry/a", "before", "PUT", "/registry/b", "live1",
                                      "DELETE", "/registry/a", "PUT", "/registry/b", "live2"}));

  // --prev-kv and a single-key watch from "now".
  Subprocess watch2;
  ASSERT_TRUE(watch2.Start(EtcdctlArgv({"watch", "/registry/b", "--prev-kv"}),
                           {{"ETCDCTL_API", "3"}}));
  // The watch is registered asynchronously: keep writing until an event shows up.
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    Ok({"put", "/registry/b", "v" + std::to_string(i)});
    seen = watch2.ReadUntil([](const std::string& s) { return s.find("PUT") != std::string::npos; }, 200ms);
  }
  ASSERT_TRUE(seen) << watch2.err();
  watch2.ReadUntil([](const std::string& s) { return Lines(s).size() >= 5; }, 5s);
  watch2.Kill();
  auto lines = Lines(watch2.out());
  ASSERT_GE(lines.size(), 5u) << watch2.out();
  EXPECT_EQ(lines[0], "PUT");
  EXPECT_EQ(lines[1], "/registry/b");  // previous kv
  EXPECT_EQ(lines[3], "/registry/b");  // current kv
}

TEST_P(EtcdctlTest, CompactionMakesOldRevisionsUnreadable) {
  Ok({"put", "key", "v1"});  // rev 2
  Ok({"put", "key", "v2"});  // rev 3
  Ok({"put", "key", "v3"});  // rev 4
  EXPECT_EQ(Ok({"get", "key", "--rev=2", "--print-value-only"}), "v1\n");
  EXPECT_EQ(Ok({"compaction", "3"}), "compacted revision 3\n");
  RunResult r = Etcdctl({"get", "key", "--rev=2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: mvcc: required revision has been compacted"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(Ok({"get", "key", "--rev=3", "--print-value-only"}), "v2\n");
  r = Etcdctl({"get", "key", "--rev=100"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: mvcc: required revision is a future revision"),
            std::string::npos)
      << r.err;
  r = Etcdctl({"compaction", "2"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("required revision has been compacted"), std::string::npos) << r.err;
  // A watch from a compacted revision is canceled with the compaction error.
  r = Etcdctl({"watch", "key", "--rev=2"}, "", 10s);
  EXPECT_NE((r.out + r.err).find("required revision has been compacted"), std::string::npos)
      << r.out << r.err;
}

TEST_P(EtcdctlTest, Leases) {
  std::string out = Ok({"lease", "grant", "60"});
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("lease ([0-9a-f]+) granted with TTL\\(60s\\)")))
      << out;
  std::string id = m[1];
  Ok({"put", "leased", "v", "--lease=" + id});
  Ok({"put", "leased2", "v", "--lease=" + id});
  EXPECT_EQ(Ok({"get", "leased", "--print-value-only"}), "v\n");
  out = Ok({"lease", "keep-alive", "--once", id});
  EXPECT_NE(out.find("lease " + id + " keepalived with TTL(60)"), std::string::npos) << out;
  out = Ok({"lease", "timetolive", id, "--keys"});
  EXPECT_NE(out.find("granted with TTL(60s)"), std::string::npos) << out;
  EXPECT_NE(out.find("leased"), std::string::npos) << out;
  out = Ok({"lease", "list"});
  EXPECT_NE(out.find(id), std::string::npos) << out;
  EXPECT_EQ(Ok({"lease", "revoke", id}), "lease " + id + " revoked\n");
  EXPECT_EQ(Ok({"get", "--prefix", "leased"}), "");
  out = Ok({"lease", "timetolive", id});
  EXPECT_NE(out.find("already expired"), std::string::npos) << out;
  RunResult r = Etcdctl({"lease", "revoke", id});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: requested lease not found"), std::string::npos) << r.err;
  r = Etcdctl({"put", "k", "v", "--lease=1234abcd"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: requested lease not found"), std::string::npos) << r.err;
}

TEST_P(EtcdctlTest, PutIgnoreValueAndLease) {
  std::string out = Ok({"lease", "grant", "100"});
  std::string id = out.substr(6, out.find(' ', 6) - 6);
  Ok({"put", "k", "v1", "--lease=" + id});
  Ok({"put", "k", "--ignore-value", "--ignore-lease"});
  EXPECT_EQ(Ok({"get", "k", "--print-value-only"}), "v1\n");
  Ok({"put", "k", "v2", "--ignore-lease"});
  EXPECT_EQ(Ok({"get", "k", "--print-value-only"}), "v2\n");
  Ok({"lease", "revoke", id});  // the lease was kept: the key goes with it
  EXPECT_EQ(Ok({"get", "k"}), "");
  RunResult r = Etcdctl({"put", "absent", "--ignore-value"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("etcdserver: key not found"), std::string::npos) << r.err;
}

TEST_P(EtcdctlTest, EndpointStatusHealthMembers) {
  Ok({"put", "a", "1"});
  std::string out = Ok({"endpoint", "status", "-w", "json"});
  EXPECT_NE(out.find("\"version\":\"3.4.23\""), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("\"member_id\":([0-9]+)"))) << out;
  EXPECT_NE(out.find("\"leader\":" + m[1].str()), std::string::npos) << out;
  EXPECT_NE(out.find("\"revision\":2"), std::string::npos) << out;
  out = Ok({"endpoint", "status", "-w", "table"});
  EXPECT_NE(out.find(endpoint()), std::string::npos) << out;
  RunResult health = Etcdctl({"endpoint", "health"});
  EXPECT_EQ(health.exit_code, 0) << health.out << health.err;
  EXPECT_NE((health.out + health.err).find(endpoint() + " is healthy"), std::string::npos)
      << health.out << health.err;
  out = Ok({"member", "list"});
  EXPECT_NE(out.find("started, rc, , http://" + endpoint()), std::string::npos) << out;
  out = Ok({"endpoint", "status", "--cluster", "-w", "json"});  // via MemberList
  EXPECT_NE(out.find("3.4.23"), std::string::npos) << out;
  out = Ok({"alarm", "list"});
  EXPECT_EQ(out, "");
  RunResult r = Etcdctl({"defrag"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("not implemented"), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(Stores, EtcdctlTest,
                         ::testing::Values(StoreKind::kMemory, StoreKind::kRocks), StoreKindName);

}  // namespace
}  // namespace rc::testing
