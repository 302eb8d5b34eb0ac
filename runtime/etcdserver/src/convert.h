// Conversions between etcd's protobuf messages and rc::store types, request validation and
// etcd's gRPC error values. Pure functions (no I/O), shared by the services.
#pragma once

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>

#include "etcdserverpb/rpc.pb.h"
#include "mvccpb/kv.pb.h"
#include "rc/base/status.h"
#include "rc/store/store.h"

namespace rc::etcdserver {

namespace pb = ::etcdserverpb;

// What goes into every ResponseHeader besides the revision.
struct Identity {
  uint64_t cluster_id = 0;
  uint64_t member_id = 0;
  uint64_t raft_term = 0;
};

void FillHeader(const Identity& id, int64_t revision, pb::ResponseHeader* header);

void ToProto(const store::KeyValue& kv, bool keys_only, mvccpb::KeyValue* out);
// prev_kv: include the event's previous value (if the store supplied one).
void ToProto(const store::Event& event, bool prev_kv, mvccpb::Event* out);

// etcd's server-side gRPC errors (etcdserver/api/v3rpc/rpctypes/error.go), same codes and texts.
namespace errors {
grpc::Status EmptyKey();
grpc::Status KeyNotFound();
grpc::Status ValueProvided();
grpc::Status LeaseProvided();
grpc::Status TooManyOps();
grpc::Status DuplicateKey();
grpc::Status Compacted();
grpc::Status FutureRev();
grpc::Status LeaseNotFound();
grpc::Status LeaseExist();
grpc::Status LeaseTTLTooLarge();
grpc::Status RequestTooLarge();
grpc::Status Stopped();
grpc::Status Unimplemented(const std::string& what);
}  // namespace errors

// Maps a store error to the gRPC error etcd would return for it.
grpc::Status ToGrpc(const Status& status);

// etcd's limit on lease TTLs (lease.MaxLeaseTTL).
inline constexpr int64_t kMaxLeaseTTL = 9000000000;

// ---- Range ----

// How to run a RangeRequest on the store: etcd fetches everything when it has to sort or filter
// and truncates afterwards.
struct RangePlan {
  store::RangeOptions options;
  bool post_process = false;  // sort / filter / truncate in FinishRange
};
RangePlan PlanRange(const pb::RangeRequest& request);
// Fills `response` (kvs, count, more; not the header) from the store's result.
void FinishRange(const pb::RangeRequest& request, const RangePlan& plan, store::RangeResult result,
                 pb::RangeResponse* response);

grpc::Status CheckRange(const pb::RangeRequest& request);
grpc::Status CheckPut(const pb::PutRequest& request);
grpc::Status CheckDelete(const pb::DeleteRangeRequest& request);

// ---- Txn ----

// Validates (like etcd's checkTxnRequest, incl. duplicate-key detection) and translates to a
// store transaction. Nested txns, ignore_value/ignore_lease and ranges at a revision inside a
// txn are UNIMPLEMENTED.
grpc::Status TranslateTxn(const pb::TxnRequest& request, int max_txn_ops, store::TxnRequest* out);
// Fills `response` (succeeded, responses with their headers; not the top-level header).
void FinishTxn(const pb::TxnRequest& request, const Identity& id, store::TxnResult result,
               pb::TxnResponse* response);

}  // namespace rc::etcdserver
