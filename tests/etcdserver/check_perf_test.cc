// `etcdctl check perf --load=s` against EtcdServer over a RocksDB store (fsync on): 60 s of
// 150 puts/s from 50 clients; passes if throughput, slowest request (<500 ms) and stddev
// (<100 ms) are within etcd's limits. Slow by design (~65 s): its own ctest entry, label "slow".
#include <gtest/gtest.h>

#include <iostream>

#include "test_util.h"

namespace rc::testing {
namespace {

using namespace std::chrono_literals;

class CheckPerfTest : public ::testing::Test, public ServerFixture {
 protected:
  void SetUp() override {
    if (FindEtcdctl().empty()) GTEST_SKIP() << "etcdctl not installed";
    SetUpServer(StoreKind::kRocks);
  }
  void TearDown() override { TearDownServer(); }
};

TEST_F(CheckPerfTest, SmallLoadPasses) {
  RunResult r = Etcdctl({"check", "perf", "--load=s"}, "", 120s);
  // Print the verdict lines (stdout also carries a progress bar).
  for (const auto& line : Lines(r.out)) {
    if (line.rfind("PASS", 0) == 0 || line.rfind("FAIL", 0) == 0 || line.find("took") != std::string::npos ||
        line.find("Stddev") != std::string::npos) {
      std::cout << "etcdctl check perf: " << line << std::endl;
    }
  }
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("PASS: Throughput"), std::string::npos);
  EXPECT_NE(r.out.find("PASS: Slowest request"), std::string::npos);
  EXPECT_NE(r.out.find("PASS: Stddev"), std::string::npos);
  // It deletes its keys afterwards.
  RunResult left = Etcdctl({"get", "--prefix", "/etcdctl-check-perf/", "--keys-only"});
  EXPECT_EQ(left.exit_code, 0) << left.err;
  EXPECT_EQ(left.out, "");
}

}  // namespace
}  // namespace rc::testing
