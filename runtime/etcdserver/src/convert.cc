#include "convert.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

namespace rc::etcdserver {

void FillHeader(const Identity& id, int64_t revision, pb::ResponseHeader* header) {
  header->set_cluster_id(id.cluster_id);
  header->set_member_id(id.member_id);
  header->set_revision(revision);
  header->set_raft_term(id.raft_term);
}

void ToProto(const store::KeyValue& kv, bool keys_only, mvccpb::KeyValue* out) {
  out->set_key(kv.key);
  out->set_create_revision(kv.create_revision);
  out->set_mod_revision(kv.mod_revision);
  out->set_version(kv.version);
  if (!keys_only) out->set_value(kv.value);
  out->set_lease(kv.lease);
}

void ToProto(const store::Event& event, bool prev_kv, mvccpb::Event* out) {
  out->set_type(event.type == store::Event::Type::kPut ? mvccpb::Event::PUT
                                                       : mvccpb::Event::DELETE);
  ToProto(event.kv, /*keys_only=*/false, out->mutable_kv());
  if (prev_kv && event.prev_kv.has_value()) {
    ToProto(*event.prev_kv, /*keys_only=*/false, out->mutable_prev_kv());
  }
}

namespace errors {
grpc::Status EmptyKey() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key is not provided"};
}
grpc::Status KeyNotFound() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: key not found"};
}
grpc::Status ValueProvided() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: value is provided"};
}
grpc::Status LeaseProvided() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: lease is provided"};
}
grpc::Status TooManyOps() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: too many operations in txn request"};
}
grpc::Status DuplicateKey() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: duplicate key given in txn request"};
}
grpc::Status Compacted() {
  return {grpc::StatusCode::OUT_OF_RANGE,
          "etcdserver: mvcc: required revision has been compacted"};
}
grpc::Status FutureRev() {
  return {grpc::StatusCode::OUT_OF_RANGE,
          "etcdserver: mvcc: required revision is a future revision"};
}
grpc::Status LeaseNotFound() {
  return {grpc::StatusCode::NOT_FOUND, "etcdserver: requested lease not found"};
}
grpc::Status LeaseExist() {
  return {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: lease already exists"};
}
grpc::Status LeaseTTLTooLarge() {
  return {grpc::StatusCode::OUT_OF_RANGE, "etcdserver: too large lease TTL"};
}
grpc::Status RequestTooLarge() {
  return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: request is too large"};
}
grpc::Status Stopped() {
  return {grpc::StatusCode::UNAVAILABLE, "etcdserver: server stopped"};
}
grpc::Status Unimplemented(const std::string& what) {
  return {grpc::StatusCode::UNIMPLEMENTED, "etcdserver: " + what + " is not implemented by rc"};
}
}  // namespace errors

grpc::Status ToGrpc(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk:
      return grpc::Status::OK;
    case StatusCode::kCompacted:
      return errors::Compacted();
    case StatusCode::kFutureRevision:
      return errors::FutureRev();
    case StatusCode::kNotFound:
      // The only not-found a store reports on the etcd API surface is an unknown lease
      // (Put/Txn with a lease, LeaseRevoke, LeaseKeepAlive).
      return errors::LeaseNotFound();
    case StatusCode::kAlreadyExists:
      return errors::LeaseExist();
    case StatusCode::kInvalidArgument:
      return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: " + status.message()};
    case StatusCode::kResourceExhausted:
      if (status.message().find("too large") != std::string::npos) {
        return errors::RequestTooLarge();
      }
      return {grpc::StatusCode::RESOURCE_EXHAUSTED, "etcdserver: " + status.message()};
    case StatusCode::kConflict:
      return {grpc::StatusCode::FAILED_PRECONDITION, "etcdserver: " + status.message()};
    case StatusCode::kUnavailable:
      return {grpc::StatusCode::UNAVAILABLE, "etcdserver: " + status.message()};
    case StatusCode::kCorruption:
      return {grpc::StatusCode::DATA_LOSS, "etcdserver: corrupt cluster: " + status.message()};
    case StatusCode::kIOError:
    case StatusCode::kInternal:
      break;
  }
  return {grpc::StatusCode::INTERNAL, "etcdserver: " + status.ToString()};
}

// ---- Range ----

RangePlan PlanRange(const pb::RangeRequest& r) {
  RangePlan plan;
  plan.options.range_end = r.range_end();
  plan.options.revision = r.revision() > 0 ? r.revision() : 0;  // etcd: <= 0 is "current"
  plan.options.keys_only = r.keys_only();
  plan.options.count_only = r.count_only();
  plan.options.limit = r.limit() > 0 ? r.limit() : 0;
  bool filters = r.min_mod_revision() != 0 || r.max_mod_revision() != 0 ||
                 r.min_create_revision() != 0 || r.max_create_revision() != 0;
  bool key_ascend = r.sort_target() == pb::RangeRequest::KEY &&
                    r.sort_order() != pb::RangeRequest::DESCEND;
  // Like etcd: an explicit sort order or a revision filter fetches everything. (Ascending by key
  // is the store's natural order, so that needs no post-processing.)
  if (filters || (r.sort_order() != pb::RangeRequest::NONE && !key_ascend)) {
    plan.post_process = true;
    plan.options.limit = 0;
    if (r.sort_target() == pb::RangeRequest::VALUE) plan.options.keys_only = false;
  } else if (r.sort_target() != pb::RangeRequest::KEY) {
    // etcd sorts ascending by the target when only a target is given; on the limited fetch.
    plan.post_process = true;
  }
  return plan;
}

namespace {

int64_t SortField(const store::KeyValue& kv, pb::RangeRequest::SortTarget target) {
  switch (target) {
    case pb::RangeRequest::VERSION:
      return kv.version;
    case pb::RangeRequest::CREATE:
      return kv.create_revision;
    case pb::RangeRequest::MOD:
      return kv.mod_revision;
    default:
      return 0;
  }
}

}  // namespace

void FinishRange(const pb::RangeRequest& r, const RangePlan& plan, store::RangeResult result,
                 pb::RangeResponse* response) {
  std::vector<store::KeyValue>& kvs = result.kvs;
  bool more = result.more;
  if (plan.post_process) {
    auto prune = [&kvs](auto pred) { std::erase_if(kvs, pred); };
    if (r.max_mod_revision() != 0) {
      prune([&](const store::KeyValue& kv) { return kv.mod_revision > r.max_mod_revision(); });
    }
    if (r.min_mod_revision() != 0) {
      prune([&](const store::KeyValue& kv) { return kv.mod_revision < r.min_mod_revision(); });
    }
    if (r.max_create_revision() != 0) {
      prune([&](const store::KeyValue& kv) {
        return kv.create_revision > r.max_create_revision();
      });
    }
    if (r.min_create_revision() != 0) {
      prune([&](const store::KeyValue& kv) {
        return kv.create_revision < r.min_create_revision();
      });
    }
    auto order = r.sort_order();
    auto target = r.sort_target();
    if (target != pb::RangeRequest::KEY && order == pb::RangeRequest::NONE) {
      order = pb::RangeRequest::ASCEND;
    }
    if (order != pb::RangeRequest::NONE) {
      auto less = [target](const store::KeyValue& a, const store::KeyValue& b) {
        if (target == pb::RangeRequest::KEY) return a.key < b.key;
        if (target == pb::RangeRequest::VALUE) return a.value < b.value;
        return SortField(a, target) < SortField(b, target);
      };
      if (order == pb::RangeRequest::ASCEND) {
        std::stable_sort(kvs.begin(), kvs.end(), less);
      } else {
        std::stable_sort(kvs.begin(), kvs.end(),
                         [&less](const store::KeyValue& a, const store::KeyValue& b) {
                           return less(b, a);
                         });
      }
    }
    if (r.limit() > 0 && static_cast<int64_t>(kvs.size()) > r.limit()) {
      kvs.resize(r.limit());
      more = true;
    } else if (plan.options.limit == 0) {
      more = false;
    }
  }
  response->set_count(result.count);
  response->set_more(more);
  if (!r.count_only()) {
    auto* out = response->mutable_kvs();
    out->Reserve(static_cast<int>(kvs.size()));
    for (const auto& kv : kvs) ToProto(kv, r.keys_only(), out->Add());
  }
}

grpc::Status CheckRange(const pb::RangeRequest& r) {
  if (r.key().empty()) return errors::EmptyKey();
  return grpc::Status::OK;
}

grpc::Status CheckPut(const pb::PutRequest& r) {
  if (r.key().empty()) return errors::EmptyKey();
  if (r.ignore_value() && !r.value().empty()) return errors::ValueProvided();
  if (r.ignore_lease() && r.lease() != 0) return errors::LeaseProvided();
  return grpc::Status::OK;
}

grpc::Status CheckDelete(const pb::DeleteRangeRequest& r) {
  if (r.key().empty()) return errors::EmptyKey();
  return grpc::Status::OK;
}

// ---- Txn ----

namespace {

bool InRange(const std::string& k, const std::string& key, const std::string& range_end) {
  if (range_end.empty()) return k == key;
  if (range_end == std::string(1, '\0')) return k >= key;
  return k >= key && k < range_end;
}

grpc::Status CheckOps(const google::protobuf::RepeatedPtrField<pb::RequestOp>& ops) {
  for (const auto& op : ops) {
    switch (op.request_case()) {
      case pb::RequestOp::kRequestRange:
        if (auto s = CheckRange(op.request_range()); !s.ok()) return s;
        break;
      case pb::RequestOp::kRequestPut:
        if (auto s = CheckPut(op.request_put()); !s.ok()) return s;
        break;
      case pb::RequestOp::kRequestDeleteRange:
        if (auto s = CheckDelete(op.request_delete_range()); !s.ok()) return s;
        break;
      case pb::RequestOp::kRequestTxn:
        return errors::Unimplemented("nested txn");
      default:
        return errors::KeyNotFound();  // etcd: empty op
    }
  }
  // etcd's checkIntervals (one level): a key may be put at most once and not also deleted.
  std::set<std::string> puts;
  for (const auto& op : ops) {
    if (op.request_case() != pb::RequestOp::kRequestPut) continue;
    const std::string& k = op.request_put().key();
    if (!puts.insert(k).second) return errors::DuplicateKey();
    for (const auto& d : ops) {
      if (d.request_case() != pb::RequestOp::kRequestDeleteRange) continue;
      if (InRange(k, d.request_delete_range().key(), d.request_delete_range().range_end())) {
        return errors::DuplicateKey();
      }
    }
  }
  return grpc::Status::OK;
}

grpc::Status TranslateOps(const google::protobuf::RepeatedPtrField<pb::RequestOp>& ops,
                          std::vector<store::RequestOp>* out) {
  out->reserve(ops.size());
  for (const auto& op : ops) {
    store::RequestOp sop;
    switch (op.request_case()) {
      case pb::RequestOp::kRequestRange: {
        const auto& r = op.request_range();
        if (r.revision() != 0) return errors::Unimplemented("range at a revision inside a txn");
        sop.type = store::RequestOp::Type::kRange;
        sop.key = r.key();
        sop.range = PlanRange(r).options;
        break;
      }
      case pb::RequestOp::kRequestPut: {
        const auto& p = op.request_put();
        if (p.ignore_value() || p.ignore_lease()) {
          return errors::Unimplemented("ignore_value/ignore_lease inside a txn");
        }
        sop.type = store::RequestOp::Type::kPut;
        sop.key = p.key();
        sop.value = p.value();
        sop.lease = p.lease();
        sop.prev_kv = p.prev_kv();
        break;
      }
      case pb::RequestOp::kRequestDeleteRange: {
        const auto& d = op.request_delete_range();
        sop.type = store::RequestOp::Type::kDeleteRange;
        sop.key = d.key();
        sop.range.range_end = d.range_end();
        sop.prev_kv = d.prev_kv();
        break;
      }
      default:
        return errors::KeyNotFound();
    }
    out->push_back(std::move(sop));
  }
  return grpc::Status::OK;
}

void FinishOps(const google::protobuf::RepeatedPtrField<pb::RequestOp>& ops, const Identity& id,
               std::vector<store::ResponseOp>& results, pb::TxnResponse* response) {
  auto* out = response->mutable_responses();
  for (size_t i = 0; i < results.size() && i < static_cast<size_t>(ops.size()); ++i) {
    const auto& op = ops[static_cast<int>(i)];
    auto& res = results[i];
    auto* rop = out->Add();
    switch (op.request_case()) {
      case pb::RequestOp::kRequestRange: {
        auto* rr = rop->mutable_response_range();
        RangePlan plan = PlanRange(op.request_range());
        FillHeader(id, res.range.revision, rr->mutable_header());
        FinishRange(op.request_range(), plan, std::move(res.range), rr);
        break;
      }
      case pb::RequestOp::kRequestPut: {
        auto* pr = rop->mutable_response_put();
        FillHeader(id, res.put.revision, pr->mutable_header());
        if (res.put.prev_kv.has_value()) ToProto(*res.put.prev_kv, false, pr->mutable_prev_kv());
        break;
      }
      case pb::RequestOp::kRequestDeleteRange: {
        auto* dr = rop->mutable_response_delete_range();
        FillHeader(id, res.del.revision, dr->mutable_header());
        dr->set_deleted(res.del.deleted);
        for (const auto& kv : res.del.prev_kvs) ToProto(kv, false, dr->add_prev_kvs());
        break;
      }
      default:
        break;
    }
  }
}

}  // namespace

grpc::Status TranslateTxn(const pb::TxnRequest& r, int max_txn_ops, store::TxnRequest* out) {
  int opc = std::max({r.compare_size(), r.success_size(), r.failure_size()});
  if (opc > max_txn_ops) return errors::TooManyOps();
  for (const auto& c : r.compare()) {
    if (c.key().empty()) return errors::EmptyKey();
  }
  if (auto s = CheckOps(r.success()); !s.ok()) return s;
  if (auto s = CheckOps(r.failure()); !s.ok()) return s;

  out->compare.reserve(r.compare_size());
  for (const auto& c : r.compare()) {
    store::Compare sc;
    sc.key = c.key();
    sc.range_end = c.range_end();
    switch (c.result()) {
      case pb::Compare::EQUAL:
        sc.result = store::Compare::Result::kEqual;
        break;
      case pb::Compare::GREATER:
        sc.result = store::Compare::Result::kGreater;
        break;
      case pb::Compare::LESS:
        sc.result = store::Compare::Result::kLess;
        break;
      case pb::Compare::NOT_EQUAL:
        sc.result = store::Compare::Result::kNotEqual;
        break;
      default:
        return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: unknown compare result"};
    }
    // etcd reads the union member matching the target (an unset member reads as zero).
    switch (c.target()) {
      case pb::Compare::VERSION:
        sc.target = store::Compare::Target::kVersion;
        sc.number = c.version();
        break;
      case pb::Compare::CREATE:
        sc.target = store::Compare::Target::kCreate;
        sc.number = c.create_revision();
        break;
      case pb::Compare::MOD:
        sc.target = store::Compare::Target::kMod;
        sc.number = c.mod_revision();
        break;
      case pb::Compare::VALUE:
        sc.target = store::Compare::Target::kValue;
        sc.value = c.value();
        break;
      case pb::Compare::LEASE:
        sc.target = store::Compare::Target::kLease;
        sc.number = c.lease();
        break;
      default:
        return {grpc::StatusCode::INVALID_ARGUMENT, "etcdserver: unknown compare target"};
    }
    out->compare.push_back(std::move(sc));
  }
  if (auto s = TranslateOps(r.success(), &out->success); !s.ok()) return s;
  if (auto s = TranslateOps(r.failure(), &out->failure); !s.ok()) return s;
  return grpc::Status::OK;
}

void FinishTxn(const pb::TxnRequest& r, const Identity& id, store::TxnResult result,
               pb::TxnResponse* response) {
  response->set_succeeded(result.succeeded);
  FinishOps(result.succeeded ? r.success() : r.failure(), id, result.responses, response);
}

}  // namespace rc::etcdserver
