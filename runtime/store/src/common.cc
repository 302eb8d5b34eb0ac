#include "common.h"

#include <chrono>
#include <random>
#include <vector>

namespace rc::store {

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    unsigned char c = static_cast<unsigned char>(end.back());
    if (c < 0xff) {
      end.back() = static_cast<char>(c + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // no upper bound: every key >= prefix
}

RequestOp RequestOp::Get(std::string key, RangeOptions options) {
  RequestOp op;
  op.type = Type::kRange;
  op.key = std::move(key);
  op.range = std::move(options);
  return op;
}

RequestOp RequestOp::Put(std::string key, std::string value, int64_t lease) {
  RequestOp op;
  op.type = Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

RequestOp RequestOp::Delete(std::string key, std::string range_end) {
  RequestOp op;
  op.type = Type::kDeleteRange;
  op.key = std::move(key);
  op.range.range_end = std::move(range_end);
  return op;
}

namespace internal {

namespace {
template <typename T>
bool CompareResult(Compare::Result r, const T& a, const T& b) {
  switch (r) {
    case Compare::Result::kEqual: return a == b;
    case Compare::Result::kGreater: return a > b;
    case Compare::Result::kLess: return a < b;
    case Compare::Result::kNotEqual: return a != b;
  }
  return false;
}
}  // namespace

bool CompareHolds(const Compare& c, bool exists, int64_t create, int64_t mod, int64_t version,
                  int64_t lease, std::string_view value) {
  if (!exists) {
    if (c.target == Compare::Target::kValue) return false;
    create = mod = version = lease = 0;
  }
  switch (c.target) {
    case Compare::Target::kVersion: return CompareResult(c.result, version, c.number);
    case Compare::Target::kCreate: return CompareResult(c.result, create, c.number);
    case Compare::Target::kMod: return CompareResult(c.result, mod, c.number);
    case Compare::Target::kLease: return CompareResult(c.result, lease, c.number);
    case Compare::Target::kValue:
      return CompareResult(c.result, value, std::string_view(c.value));
  }
  return false;
}

Status ValidateOp(const RequestOp& op) {
  switch (op.type) {
    case RequestOp::Type::kRange:
      if (op.range.revision != 0)
        return Status::InvalidArgument("range revision must be 0 inside a txn");
      if (op.range.limit < 0) return Status::InvalidArgument("negative limit");
      return Status::Ok();
    case RequestOp::Type::kPut:
      if (op.key.empty()) return Status::InvalidArgument("key is not provided");
      return Status::Ok();
    case RequestOp::Type::kDeleteRange:
      if (op.key.empty() && op.range.range_end.empty())
        return Status::InvalidArgument("key is not provided");
      return Status::Ok();
  }
  return Status::InvalidArgument("unknown op type");
}

bool HasWrites(const std::vector<RequestOp>& ops) {
  for (const auto& op : ops)
    if (op.type != RequestOp::Type::kRange) return true;
  return false;
}

void DispatchLocked(WatchHub& hub, std::span<const Event> events) {
  if (events.empty() || hub.watchers.empty()) return;
  std::vector<Event> filtered;
  for (auto& [id, w] : hub.watchers) {
    // Fast path: every event matches -> hand over the whole span without copying.
    bool all = true;
    for (const Event& e : events) {
      if (e.kv.mod_revision < w->min_rev || !w->range.Contains(e.kv.key)) {
        all = false;
        break;
      }
    }
    if (all) {
      w->sink->OnEvents(events);
      continue;
    }
    filtered.clear();
    for (const Event& e : events)
      if (e.kv.mod_revision >= w->min_rev && w->range.Contains(e.kv.key)) filtered.push_back(e);
    if (!filtered.empty()) w->sink->OnEvents(filtered);
  }
}

int64_t NewLeaseId() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   static_cast<uint64_t>(SteadyNowNs()));
  uint64_t v = rng() ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL);
  int64_t id = static_cast<int64_t>(v & 0x7fffffffffffffffULL);
  return id == 0 ? 1 : id;
}

int64_t SteadyNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int64_t RemainingTtl(int64_t expiry_ns, int64_t now_ns) {
  if (expiry_ns <= now_ns) return -1;
  int64_t left = expiry_ns - now_ns;
  return (left + 999'999'999) / 1'000'000'000;
}

}  // namespace internal
}  // namespace rc::store
