#include "service_allocator.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <map>
#include <set>

namespace rc::apiserver {

namespace {

bool ParseInt(std::string_view s, int64_t& out) {
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

std::string TypeOf(const JsonValue& svc) { return StrAt(svc, "spec.type", "ClusterIP"); }
bool NeedsClusterIP(const std::string& type) { return type != "ExternalName"; }
bool NeedsNodePorts(const std::string& type) { return type == "NodePort" || type == "LoadBalancer"; }

// spec.clusterIP, else spec.clusterIPs[0].
std::string ClusterIPOf(const JsonValue& svc) {
  std::string ip = StrAt(svc, "spec.clusterIP");
  if (!ip.empty()) return ip;
  const JsonValue* ips = Path(svc, "spec.clusterIPs");
  if (ips && ips->IsArray() && !ips->Empty() && (*ips)[0].IsString()) return (*ips)[0].GetString();
  return "";
}

int NodePortOf(const JsonValue& port) { return static_cast<int>(IntAt(port, "nodePort").value_or(0)); }
std::string ProtocolOf(const JsonValue& port) { return StrAt(port, "protocol", "TCP"); }
int PortOf(const JsonValue& port) { return static_cast<int>(IntAt(port, "port").value_or(0)); }

std::string Owner(const JsonValue& svc) {
  return StrAt(svc, "metadata.namespace") + "/" + StrAt(svc, "metadata.name");
}

void SetClusterIP(JsonValue& spec, const std::string& ip, JsonAlloc& a) {
  Set(spec, "clusterIP", Str(ip, a), a);
  JsonValue ips(rapidjson::kArrayType);
  ips.PushBack(Str(ip, a), a);
  Set(spec, "clusterIPs", std::move(ips), a);
}

StatusCause InvalidCause(const std::string& field, const std::string& value_json, const std::string& why) {
  return {"FieldValueInvalid", "Invalid value: " + value_json + ": " + why, field};
}

std::string PortField(size_t i) { return "spec.ports[" + std::to_string(i) + "].nodePort"; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Ranges

bool ServiceIpRange::Contains(uint32_t ip) const {
  if (prefix == 0) return false;
  uint32_t mask = ~(Size() - 1);
  if ((ip & mask) != network) return false;
  uint32_t offset = ip - network;
  return offset != 0 && offset != Size() - 1;
}

std::optional<uint32_t> ParseIPv4(std::string_view text) {
  uint32_t out = 0;
  for (int part_index = 0; part_index < 4; ++part_index) {
    size_t dot = text.find('.');
    if ((dot == std::string_view::npos) != (part_index == 3)) return std::nullopt;  // exactly 4 parts
    std::string_view part = text.substr(0, dot);
    int64_t v = 0;
    if (part.empty() || part.size() > 3 || !ParseInt(part, v) || v > 255) return std::nullopt;
    if (part.size() > 1 && part[0] == '0') return std::nullopt;  // no leading zeros (Go's net.ParseIP)
    out = (out << 8) | static_cast<uint32_t>(v);
    if (dot != std::string_view::npos) text = text.substr(dot + 1);
  }
  return out;
}

std::string FormatIPv4(uint32_t ip) {
  return std::to_string(ip >> 24) + "." + std::to_string((ip >> 16) & 255) + "." +
         std::to_string((ip >> 8) & 255) + "." + std::to_string(ip & 255);
}

Result<ServiceIpRange> ParseServiceIpRange(std::string_view cidr) {
  size_t slash = cidr.find('/');
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("service IP range \"" + std::string(cidr) + "\": " + why);
  };
  if (slash == std::string_view::npos) return bad("not a CIDR (want a.b.c.d/n)");
  auto ip = ParseIPv4(cidr.substr(0, slash));
  if (!ip) return bad("not an IPv4 address (only IPv4 service ranges are supported)");
  int64_t prefix = 0;
  if (!ParseInt(cidr.substr(slash + 1), prefix) || prefix < 0 || prefix > 32) return bad("bad prefix length");
  if (prefix < 12) return bad("too large; the prefix length must be at least 12 (as in Kubernetes)");
  if (prefix > 30) return bad("too small; the prefix length must be at most 30");
  ServiceIpRange r;
  r.prefix = static_cast<int>(prefix);
  uint32_t mask = ~(r.Size() - 1);
  if ((*ip & mask) != *ip) return bad("host bits set (did you mean " + FormatIPv4(*ip & mask) + "/" + std::to_string(prefix) + "?)");
  r.network = *ip;
  r.text = std::string(cidr);
  return r;
}

Result<PortRange> ParsePortRange(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("node port range \"" + std::string(text) +
                                   "\": want BASE-MAX or BASE+SIZE within 1-65535");
  };
  size_t sep = text.find_first_of("-+");
  int64_t base = 0, second = 0;
  if (sep == std::string_view::npos) {
    if (!ParseInt(text, base)) return bad();
    second = base;
  } else if (!ParseInt(text.substr(0, sep), base) || !ParseInt(text.substr(sep + 1), second)) {
    return bad();
  }
  int64_t size = sep != std::string_view::npos && text[sep] == '+' ? second + 1 : second - base + 1;
  if (base < 1 || size < 1 || base + size - 1 > 65535) return bad();
  PortRange r;
  r.base = static_cast<int>(base);
  r.size = static_cast<int>(size);
  r.text = std::to_string(base) + "-" + std::to_string(base + size - 1);
  return r;
}

// ---------------------------------------------------------------------------------------------
// AllocationPlan

AllocationPlan& AllocationPlan::operator=(AllocationPlan&& other) noexcept {
  if (this == &other) return *this;
  if (allocator_ && !done_) allocator_->Abort(*this);
  allocator_ = other.allocator_;
  resource_ = other.resource_;
  name_ = std::move(other.name_);
  owner_ = std::move(other.owner_);
  claims_ = std::move(other.claims_);
  releases_ = std::move(other.releases_);
  marked_ = std::move(other.marked_);
  failure_offset_ = other.failure_offset_;
  done_ = other.done_;
  other.allocator_ = nullptr;
  other.done_ = true;
  return *this;
}

AllocationPlan::~AllocationPlan() {
  if (allocator_ && !done_) allocator_->Abort(*this);
}

void AllocationPlan::AddTo(store::TxnRequest& txn) {
  for (const Claim& c : claims_) {
    std::string key = ServiceAllocator::KeyOf(c.v);
    txn.compare.push_back({.key = key, .target = store::Compare::Target::kCreate,
                           .result = store::Compare::Result::kEqual, .number = 0});
    txn.success.push_back(store::RequestOp::Put(key, owner_));
  }
  for (const Value& v : releases_) txn.success.push_back(store::RequestOp::Delete(ServiceAllocator::KeyOf(v)));
  failure_offset_ = txn.failure.size();
  for (const Claim& c : claims_) {
    txn.failure.push_back(store::RequestOp::Get(ServiceAllocator::KeyOf(c.v), {.keys_only = true}));
  }
}

ApiResult<bool> AllocationPlan::ClaimLost(const store::TxnResult& result) {
  std::vector<StatusCause> causes;
  bool picked_lost = false;
  for (size_t i = 0; i < claims_.size(); ++i) {
    size_t at = failure_offset_ + i;
    if (at >= result.responses.size() || result.responses[at].range.kvs.empty()) continue;
    const Claim& c = claims_[i];
    if (allocator_) allocator_->KeepTaken(c.v, *this);
    if (!c.requested) {
      picked_lost = true;
    } else if (c.v.ip) {
      causes.push_back(InvalidCause(c.field, Quote(FormatIPv4(c.v.value)), "provided IP is already allocated"));
    } else {
      causes.push_back(InvalidCause(c.field, std::to_string(c.v.value), "provided port is already allocated"));
    }
  }
  // A picked value was taken by another API server: its view is stale, so reload it before
  // picking again (bounds the retries by the number of concurrent writers, not of allocations).
  if (picked_lost && allocator_) allocator_->Reload();
  if (!causes.empty()) return ApiError::Invalid(*resource_, name_, std::move(causes));
  return picked_lost;
}

void AllocationPlan::Committed() {
  if (allocator_ && !done_) allocator_->Commit(*this);
  done_ = true;
}

// ---------------------------------------------------------------------------------------------
// ServiceAllocator

ServiceAllocator::ServiceAllocator(store::Store* store, ServiceIpRange ips, PortRange ports)
    : store_(store), ip_range_(std::move(ips)), port_range_(std::move(ports)),
      ips_(ip_range_.Size(), false), ports_(port_range_.size, false), rng_(std::random_device{}()) {}

Result<std::unique_ptr<ServiceAllocator>> ServiceAllocator::Create(store::Store* store,
                                                                   const ServiceAllocatorOptions& options) {
  auto ips = ParseServiceIpRange(options.cluster_ip_range);
  if (!ips.ok()) return ips.status();
  auto ports = ParsePortRange(options.node_port_range);
  if (!ports.ok()) return ports.status();
  return std::unique_ptr<ServiceAllocator>(new ServiceAllocator(store, *ips, *ports));
}

std::string ServiceAllocator::KeyOf(const AllocationPlan::Value& v) {
  if (v.ip) return std::string(kIpKeyPrefix) + FormatIPv4(v.value);
  return std::string(kPortKeyPrefix) + std::to_string(v.value);
}

std::optional<size_t> ServiceAllocator::IndexOf(const AllocationPlan::Value& v) const {
  if (v.ip) {
    if (!ip_range_.Contains(v.value)) return std::nullopt;
    return v.value - ip_range_.network;
  }
  if (!port_range_.Contains(static_cast<int>(v.value))) return std::nullopt;
  return v.value - static_cast<uint32_t>(port_range_.base);
}

void ServiceAllocator::MarkLocked(const AllocationPlan::Value& v, AllocationPlan& plan) {
  auto index = IndexOf(v);
  if (!index) return;
  std::vector<bool>& bits = v.ip ? ips_ : ports_;
  if (bits[*index]) return;
  bits[*index] = true;
  plan.marked_.push_back(v);
  in_flight_.insert({v.ip, v.value});
}

void ServiceAllocator::UnmarkLocked(const AllocationPlan::Value& v) {
  if (auto index = IndexOf(v)) (v.ip ? ips_ : ports_)[*index] = false;
}

bool ServiceAllocator::ScanLocked(bool ip, uint32_t& out) {
  const std::vector<bool>& bits = ip ? ips_ : ports_;
  // IPs: offsets 2 .. size-2 (not the network address, the `kubernetes` Service's .1 or the
  // broadcast address); ports: the whole range. Start at a random offset, like Kubernetes, so
  // several rcd rarely race for the same value.
  size_t first = ip ? 2 : 0;
  size_t last = ip ? bits.size() - 2 : bits.size() - 1;
  if (last < first) return false;
  size_t count = last - first + 1;
  size_t start = std::uniform_int_distribution<size_t>(0, count - 1)(rng_);
  for (size_t i = 0; i < count; ++i) {
    size_t index = first + (start + i) % count;
    if (!bits[index]) {
      out = ip ? ip_range_.network + static_cast<uint32_t>(index)
               : static_cast<uint32_t>(port_range_.base) + static_cast<uint32_t>(index);
      return true;
    }
  }
  return false;
}

bool ServiceAllocator::PickLocked(bool ip, AllocationPlan& plan, uint32_t& out) {
  if (!ScanLocked(ip, out)) {
    // Another rcd may have released values since the view was loaded.
    Status s = ReloadLocked();
    if (!s.ok()) spdlog::warn("service allocator: reloading reservations: {}", s.ToString());
    if (!ScanLocked(ip, out)) return false;
  }
  MarkLocked({ip, out}, plan);
  return true;
}

Status ServiceAllocator::ReloadLocked() {
  std::vector<bool> ips(ip_range_.Size(), false), ports(port_range_.size, false);
  for (bool ip : {true, false}) {
    std::string prefix(ip ? kIpKeyPrefix : kPortKeyPrefix);
    auto res = store_->Range(prefix, {.range_end = store::PrefixEnd(prefix), .keys_only = true});
    if (!res.ok()) return res.status();
    for (const auto& kv : res->kvs) {
      std::string_view suffix = std::string_view(kv.key).substr(prefix.size());
      AllocationPlan::Value v{ip, 0};
      if (ip) {
        auto parsed = ParseIPv4(suffix);
        if (!parsed) continue;
        v.value = *parsed;
      } else {
        int64_t port = 0;
        if (!ParseInt(suffix, port)) continue;
        v.value = static_cast<uint32_t>(port);
      }
      if (auto index = IndexOf(v)) (ip ? ips : ports)[*index] = true;
    }
  }
  for (const auto& [ip, value] : in_flight_) {
    if (auto index = IndexOf({ip, value})) (ip ? ips : ports)[*index] = true;
  }
  ips_.swap(ips);
  ports_.swap(ports);
  return Status::Ok();
}

void ServiceAllocator::Abort(AllocationPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& v : plan.marked_) {
    UnmarkLocked(v);
    if (auto it = in_flight_.find({v.ip, v.value}); it != in_flight_.end()) in_flight_.erase(it);
  }
  plan.marked_.clear();
  plan.done_ = true;
}

void ServiceAllocator::Commit(AllocationPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& v : plan.marked_) {
    if (auto it = in_flight_.find({v.ip, v.value}); it != in_flight_.end()) in_flight_.erase(it);
  }
  for (const auto& c : plan.claims_) {
    if (auto index = IndexOf(c.v)) (c.v.ip ? ips_ : ports_)[*index] = true;
  }
  for (const auto& v : plan.releases_) UnmarkLocked(v);
  plan.marked_.clear();
  plan.done_ = true;
}

void ServiceAllocator::KeepTaken(const AllocationPlan::Value& v, AllocationPlan& plan) {
  std::lock_guard<std::mutex> lock(mu_);
  // Someone holds it in the store: it stays marked when the plan is aborted.
  for (auto it = plan.marked_.begin(); it != plan.marked_.end(); ++it) {
    if (it->ip == v.ip && it->value == v.value) {
      plan.marked_.erase(it);
      if (auto f = in_flight_.find({v.ip, v.value}); f != in_flight_.end()) in_flight_.erase(f);
      break;
    }
  }
  if (auto index = IndexOf(v)) (v.ip ? ips_ : ports_)[*index] = true;
}

void ServiceAllocator::Reload() {
  std::lock_guard<std::mutex> lock(mu_);
  Status s = ReloadLocked();
  if (!s.ok()) spdlog::warn("service allocator: reloading reservations: {}", s.ToString());
}

size_t ServiceAllocator::MarkedIps() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (bool b : ips_) n += b;
  return n;
}

size_t ServiceAllocator::MarkedPorts() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (bool b : ports_) n += b;
  return n;
}

ApiResult<AllocationPlan> ServiceAllocator::PrepareCreate(const ResourceInfo& r, JsonValue& svc, JsonAlloc& a) {
  return Prepare(r, nullptr, svc, a);
}

ApiResult<AllocationPlan> ServiceAllocator::PrepareUpdate(const ResourceInfo& r, const JsonValue& old,
                                                          JsonValue& svc, JsonAlloc& a) {
  return Prepare(r, &old, svc, a);
}

AllocationPlan ServiceAllocator::PrepareRelease(const ResourceInfo& r, const JsonValue& svc) {
  AllocationPlan plan;
  plan.allocator_ = this;
  plan.resource_ = &r;
  plan.name_ = StrAt(svc, "metadata.name");
  plan.owner_ = Owner(svc);
  std::string type = TypeOf(svc);
  if (NeedsClusterIP(type)) {
    if (auto ip = ParseIPv4(ClusterIPOf(svc)); ip && ip_range_.Contains(*ip)) plan.releases_.push_back({true, *ip});
  }
  if (NeedsNodePorts(type)) {
    std::set<int> seen;
    if (const JsonValue* ports = Path(svc, "spec.ports"); ports && ports->IsArray()) {
      for (const auto& p : ports->GetArray()) {
        int np = NodePortOf(p);
        if (port_range_.Contains(np) && seen.insert(np).second) plan.releases_.push_back({false, static_cast<uint32_t>(np)});
      }
    }
  }
  return plan;
}

ApiResult<AllocationPlan> ServiceAllocator::Prepare(const ResourceInfo& r, const JsonValue* old,
                                                    JsonValue& svc, JsonAlloc& a) {
  AllocationPlan plan;
  plan.allocator_ = this;
  plan.resource_ = &r;
  plan.name_ = StrAt(svc, "metadata.name");
  plan.owner_ = Owner(svc);
  std::vector<StatusCause> causes;
  JsonValue& spec = ObjectMember(svc, "spec", a);
  const std::string type = TypeOf(svc);
  const std::string old_type = old ? TypeOf(*old) : "";
  const bool old_has_ip = old && NeedsClusterIP(old_type);
  const bool old_has_ports = old && NeedsNodePorts(old_type);

  // --- spec.clusterIP / spec.clusterIPs
  const std::string old_ip = old_has_ip ? ClusterIPOf(*old) : "";
  std::string ip = StrAt(spec, "clusterIP");
  if (const JsonValue* ips = Member(spec, "clusterIPs"); ips && ips->IsArray() && !ips->Empty()) {
    std::string first = (*ips)[0].IsString() ? (*ips)[0].GetString() : "";
    if (ips->Size() > 1) {
      causes.push_back(InvalidCause("spec.clusterIPs", ToJson(*ips), "only one IP family (IPv4) is supported"));
    }
    if (ip.empty()) {
      ip = first;
    } else if (first != ip && !(old_has_ip && first == old_ip)) {  // an untouched old clusterIPs follows clusterIP
      causes.push_back(InvalidCause("spec.clusterIPs[0]", Quote(first), "must match `clusterIP` when both are set"));
    }
  }
  std::optional<AllocationPlan::Claim> ip_claim;
  bool pick_ip = false;
  if (old_has_ip && NeedsClusterIP(type) && !old_ip.empty()) {
    if (ip.empty()) ip = old_ip;  // an omitted clusterIP keeps the allocated one (Kubernetes too)
    if (ip != old_ip) causes.push_back(InvalidCause("spec.clusterIP", Quote(ip), "field is immutable"));
  }
  if (old_has_ip && !NeedsClusterIP(type) && ip == old_ip) ip.clear();  // dropped with the type change
  if (!NeedsClusterIP(type)) {
    if (!ip.empty()) {
      causes.push_back({"FieldValueForbidden", "Forbidden: may not be set for ExternalName services", "spec.clusterIP"});
    }
    Remove(spec, "clusterIP");
    Remove(spec, "clusterIPs");
  } else if (ip == "None") {
    if (type != "ClusterIP") {
      causes.push_back(InvalidCause("spec.clusterIP", Quote(ip), "may not be set to 'None' for " + type + " services"));
    }
    SetClusterIP(spec, ip, a);
  } else if (!ip.empty()) {
    auto parsed = ParseIPv4(ip);
    if (!parsed) {
      causes.push_back(InvalidCause("spec.clusterIP", Quote(ip), "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
    } else if (ip != old_ip) {
      if (!ip_range_.Contains(*parsed)) {
        causes.push_back(InvalidCause("spec.clusterIP", Quote(ip),
                                      "provided IP is not in the valid range. The range of valid IPs is " + ip_range_.text));
      } else {
        ip_claim = AllocationPlan::Claim{{true, *parsed}, true, "spec.clusterIP"};
      }
    }
    SetClusterIP(spec, ip, a);
  } else {
    pick_ip = true;
  }
  if (old_has_ip && ip != old_ip) {
    if (auto parsed = ParseIPv4(old_ip); parsed && ip_range_.Contains(*parsed)) plan.releases_.push_back({true, *parsed});
  }

  // --- spec.ports[i].nodePort
  std::map<std::pair<int, std::string>, int> old_node_port;  // (port, protocol) -> nodePort
  std::set<int> old_node_ports;
  if (old_has_ports) {
    if (const JsonValue* ports = Path(*old, "spec.ports"); ports && ports->IsArray()) {
      for (const auto& p : ports->GetArray()) {
        if (int np = NodePortOf(p); np != 0) {
          old_node_port[{PortOf(p), ProtocolOf(p)}] = np;
          old_node_ports.insert(np);
        }
      }
    }
  }
  std::vector<AllocationPlan::Claim> port_claims;
  std::vector<size_t> pick_ports;  // indexes of ports needing one
  std::set<int> kept;              // node ports this Service holds after the write
  JsonValue* ports = Member(spec, "ports");
  if (ports && !ports->IsArray()) ports = nullptr;
  if (ports) {
    auto list = ports->GetArray();
    if (!NeedsNodePorts(type)) {
      for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        JsonValue& p = list[i];
        int np = NodePortOf(p);
        if (np == 0) continue;
        auto it = old_node_port.find({PortOf(p), ProtocolOf(p)});
        if (it != old_node_port.end() && it->second == np) {
          Remove(p, "nodePort");  // dropped with the type change (Kubernetes' dropTypeDependentFields)
        } else {
          causes.push_back({"FieldValueForbidden", "Forbidden: may not be used when `type` is '" + type + "'", PortField(i)});
        }
      }
    } else {
      // An omitted nodePort of a port the old Service had keeps its value.
      for (auto& p : list) {
        if (NodePortOf(p) != 0) continue;
        auto it = old_node_port.find({PortOf(p), ProtocolOf(p)});
        if (it != old_node_port.end()) Set(p, "nodePort", JsonValue(it->second), a);
      }
      std::set<std::pair<int, std::string>> seen;
      std::set<int> claimed;
      for (rapidjson::SizeType i = 0; i < list.Size(); ++i) {
        const JsonValue& p = list[i];
        int np = NodePortOf(p);
        if (np == 0) {
          pick_ports.push_back(i);
          continue;
        }
        if (!seen.insert({np, ProtocolOf(p)}).second) {
          causes.push_back({"FieldValueDuplicate", "Duplicate value: " + std::to_string(np), PortField(i)});
          continue;
        }
        kept.insert(np);
        if (old_node_ports.count(np) || claimed.count(np)) continue;  // held already / one claim per number
        if (!port_range_.Contains(np)) {
          causes.push_back(InvalidCause(PortField(i), std::to_string(np),
                                        "provided port is not in the valid range. The range of valid ports is " + port_range_.text));
          continue;
        }
        claimed.insert(np);
        port_claims.push_back({{false, static_cast<uint32_t>(np)}, true, PortField(i)});
      }
    }
  }
  for (int np : old_node_ports) {
    if (!kept.count(np) && port_range_.Contains(np)) plan.releases_.push_back({false, static_cast<uint32_t>(np)});
  }
  if (!causes.empty()) return ApiError::Invalid(r, plan.name_, std::move(causes));

  // --- picks, under the lock: requested values are marked first so picks avoid them.
  std::lock_guard<std::mutex> lock(mu_);
  if (ip_claim) {
    MarkLocked(ip_claim->v, plan);
    plan.claims_.push_back(*ip_claim);
  }
  for (auto& c : port_claims) {
    MarkLocked(c.v, plan);
    plan.claims_.push_back(c);
  }
  if (pick_ip) {
    uint32_t value = 0;
    if (!PickLocked(true, plan, value)) {
      return ApiError::Internal("failed to allocate a serviceIP: range is full");
    }
    SetClusterIP(spec, FormatIPv4(value), a);
    plan.claims_.push_back({{true, value}, false, "spec.clusterIP"});
  }
  if (!pick_ports.empty()) {
    // Ports with one number and different protocols share a node port, as in Kubernetes.
    std::map<int, int> by_port;
    for (auto& p : ports->GetArray()) {
      if (int np = NodePortOf(p); np != 0) by_port.emplace(PortOf(p), np);
    }
    for (size_t i : pick_ports) {
      JsonValue& p = ports->GetArray()[static_cast<rapidjson::SizeType>(i)];
      auto it = by_port.find(PortOf(p));
      if (it != by_port.end()) {
        Set(p, "nodePort", JsonValue(it->second), a);
        continue;
      }
      uint32_t value = 0;
      if (!PickLocked(false, plan, value)) {
        return ApiError::Internal("failed to allocate a nodePort: range is full");
      }
      Set(p, "nodePort", JsonValue(static_cast<int>(value)), a);
      by_port.emplace(PortOf(p), static_cast<int>(value));
      plan.claims_.push_back({{false, value}, false, PortField(i)});
    }
  }
  return plan;
}

// ---------------------------------------------------------------------------------------------
// Repair

Status ServiceAllocator::Repair() {
  const std::string svc_prefix = "/registry/services/";
  auto services = store_->Range(svc_prefix, {.range_end = store::PrefixEnd(svc_prefix)});
  if (!services.ok()) return services.status();
  const int64_t revision = services->revision;
  std::map<std::string, store::KeyValue> claims;  // reservation key -> kv
  for (std::string_view prefix : {kIpKeyPrefix, kPortKeyPrefix}) {
    std::string p(prefix);
    auto res = store_->Range(p, {.range_end = store::PrefixEnd(p), .revision = revision});
    if (!res.ok()) return res.status();
    for (auto& kv : res->kvs) claims.emplace(kv.key, std::move(kv));
  }
  std::map<std::string, int64_t> service_mod;  // owner -> mod revision
  std::set<std::string> held;                  // reservation keys whose owner holds the value
  ResourceInfo services_info;
  services_info.plural = "services";
  services_info.kind = "Service";
  for (const auto& kv : services->kvs) {
    std::string owner = kv.key.substr(svc_prefix.size());
    service_mod[owner] = kv.mod_revision;
    JsonDoc doc;
    doc.Parse(kv.value.data(), kv.value.size());
    if (doc.HasParseError() || !doc.IsObject()) continue;
    AllocationPlan values = PrepareRelease(services_info, doc);  // what it holds
    values.done_ = true;
    for (const auto& v : values.releases_) {
      std::string key = KeyOf(v);
      auto it = claims.find(key);
      if (it != claims.end()) {
        if (it->second.value == owner) {
          held.insert(key);
        } else {
          spdlog::warn("service {}: {} {} is also allocated to {}; please recreate one of them", owner,
                       v.ip ? "cluster IP" : "node port", key.substr(key.rfind('/') + 1), it->second.value);
        }
        continue;
      }
      store::TxnRequest txn;
      txn.compare.push_back({.key = kv.key, .target = store::Compare::Target::kMod,
                             .result = store::Compare::Result::kEqual, .number = kv.mod_revision});
      txn.compare.push_back({.key = key, .target = store::Compare::Target::kCreate,
                             .result = store::Compare::Result::kEqual, .number = 0});
      txn.success.push_back(store::RequestOp::Put(key, owner));
      auto res = store_->Txn(txn);
      if (!res.ok()) return res.status();
      if (res->succeeded) {
        spdlog::info("service {}: recorded the allocation of {}", owner, key);
        held.insert(key);
      } else {
        spdlog::warn("service {}: could not record the allocation of {} (changed or taken meanwhile)", owner, key);
      }
    }
  }
  // Keys whose owner is gone or no longer holds the value (only possible through writes that
  // bypassed the API server): released, if neither key nor owner changed since the snapshot.
  for (const auto& [key, kv] : claims) {
    if (held.count(key)) continue;
    auto owner = service_mod.find(kv.value);
    store::TxnRequest txn;
    txn.compare.push_back({.key = key, .target = store::Compare::Target::kMod,
                           .result = store::Compare::Result::kEqual, .number = kv.mod_revision});
    txn.compare.push_back({.key = svc_prefix + kv.value, .target = store::Compare::Target::kMod,
                           .result = store::Compare::Result::kEqual,
                           .number = owner == service_mod.end() ? 0 : owner->second});
    txn.success.push_back(store::RequestOp::Delete(key));
    auto res = store_->Txn(txn);
    if (!res.ok()) return res.status();
    if (res->succeeded) spdlog::info("released {}: its owner {} does not hold it", key, kv.value);
  }
  std::lock_guard<std::mutex> lock(mu_);
  return ReloadLocked();
}

}  // namespace rc::apiserver
