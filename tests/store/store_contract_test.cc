// Runs the Store contract suite against the in-memory store and the RocksDB store.
#include "store_contract.h"
#include "store_test_util.h"

namespace rc::store::testing {
namespace {

class MemoryInstance : public StoreInstance {
 public:
  MemoryInstance() : store_(NewMemoryStore()) {}
  Store& store() override { return *store_; }

 private:
  std::unique_ptr<Store> store_;
};

class RocksInstance : public StoreInstance {
 public:
  RocksInstance() {
    RocksStoreOptions o;
    o.path = dir_.path() + "/db";
    auto s = OpenRocksStore(o);
    if (!s.ok()) throw std::runtime_error(s.status().ToString());
    store_ = std::move(s).value();
  }
  ~RocksInstance() override { store_.reset(); }  // close before the directory goes
  Store& store() override { return *store_; }

 private:
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

INSTANTIATE_TEST_SUITE_P(
    Backends, StoreContractTest,
    ::testing::Values(
        StoreBackend{"Memory", [] { return std::unique_ptr<StoreInstance>(new MemoryInstance); }},
        StoreBackend{"Rocks", [] { return std::unique_ptr<StoreInstance>(new RocksInstance); }}),
    BackendName);

}  // namespace
}  // namespace rc::store::testing
