// The Store contract suite: the same cases run against every Store implementation.
//
// To run it against a new backend, link the `store_contract_cases` object library and
// instantiate the suite with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(Etcd, StoreContractTest,
//       ::testing::Values(rc::store::testing::StoreBackend{"Etcd", [] { return ...; }}),
//       rc::store::testing::BackendName);
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "rc/store/store.h"

namespace rc::store::testing {

// A store under test plus whatever keeps it alive (temp dirs, servers).
class StoreInstance {
 public:
  virtual ~StoreInstance() = default;
  virtual Store& store() = 0;
};

struct StoreBackend {
  std::string name;
  std::function<std::unique_ptr<StoreInstance>()> open;  // a fresh, empty store per test
  // Whether the store may be compacted by tests / leases may be waited for to expire.
  bool fresh_store_starts_at_revision_1 = true;
  // false: a txn whose writes overlap (a put of a key deleted earlier in the same txn) is
  // refused with kInvalidArgument, as etcd does ("duplicate key given in txn request").
  bool txn_writes_may_overlap = true;
};

inline std::string BackendName(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

class StoreContractTest : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    instance_ = GetParam().open();
    ASSERT_NE(instance_, nullptr);
  }
  void TearDown() override { instance_.reset(); }
  Store& store() { return instance_->store(); }

  std::unique_ptr<StoreInstance> instance_;
};

}  // namespace rc::store::testing
