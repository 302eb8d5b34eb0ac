// RocksDB-store specific introspection (tests, benchmarks, metrics). The generic interface is
// store.h; nothing here is needed to use a Store.
#pragma once

#include <cstdint>

#include "rc/base/status.h"
#include "rc/store/store.h"

namespace rc::store {

struct RocksStoreStats {
  int64_t wal_syncs = 0;       // rocksdb WAL_FILE_SYNCED ticker
  int64_t write_batches = 0;   // rocksdb::WriteBatch commits issued by the group-commit leader
  int64_t write_requests = 0;  // write requests (Put/DeleteRange/Txn/lease ops) committed
};

// kInvalidArgument if `store` is not a store returned by OpenRocksStore.
Result<RocksStoreStats> GetRocksStoreStats(Store& store);

}  // namespace rc::store
