#include "rc/scheduler/types.h"

#include <algorithm>
#include <charconv>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/quantity.h"

namespace rc::scheduler {

namespace am = rc::apimachinery;
using rapidjson::Value;

// ---------------------------------------------------------------------------------------------
// Resources

int64_t Resources::Scalar(std::string_view name) const {
  for (auto& [n, v] : scalar) {
    if (n == name) return v;
  }
  return 0;
}

namespace {

void MergeScalar(std::vector<std::pair<std::string, int64_t>>& into,
                 const std::vector<std::pair<std::string, int64_t>>& from, int op) {
  for (auto& [name, v] : from) {
    auto it = std::lower_bound(into.begin(), into.end(), name,
                               [](const auto& p, const std::string& n) { return p.first < n; });
    if (it == into.end() || it->first != name) it = into.insert(it, {name, 0});
    if (op > 0) {
      it->second += v;
    } else if (op < 0) {
      it->second -= v;
    } else {
      it->second = std::max(it->second, v);
    }
  }
}

}  // namespace

void Resources::Add(const Resources& o) {
  milli_cpu += o.milli_cpu;
  memory += o.memory;
  ephemeral_storage += o.ephemeral_storage;
  if (!o.scalar.empty()) MergeScalar(scalar, o.scalar, 1);
}

void Resources::Sub(const Resources& o) {
  milli_cpu -= o.milli_cpu;
  memory -= o.memory;
  ephemeral_storage -= o.ephemeral_storage;
  if (!o.scalar.empty()) MergeScalar(scalar, o.scalar, -1);
}

void Resources::Max(const Resources& o) {
  milli_cpu = std::max(milli_cpu, o.milli_cpu);
  memory = std::max(memory, o.memory);
  ephemeral_storage = std::max(ephemeral_storage, o.ephemeral_storage);
  if (!o.scalar.empty()) MergeScalar(scalar, o.scalar, 0);
}

// ---------------------------------------------------------------------------------------------
// Ports, taints, selectors

bool HostPort::ConflictsWith(const HostPort& o) const {
  if (port != o.port || protocol != o.protocol) return false;
  auto wildcard = [](const std::string& ip) { return ip.empty() || ip == "0.0.0.0" || ip == "::"; };
  return wildcard(ip) || wildcard(o.ip) || ip == o.ip;
}

bool Toleration::Tolerates(const Taint& taint) const {
  if (effect && *effect != taint.effect) return false;
  if (!key.empty() && key != taint.key) return false;
  if (exists) return true;
  if (key.empty()) return false;  // an empty key requires Exists
  return value == taint.value;
}

bool PodInfo::TolerationsTolerate(const Taint& taint) const {
  for (auto& t : tolerations) {
    if (t.Tolerates(taint)) return true;
  }
  return false;
}

namespace {

std::optional<int64_t> ParseInt(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

bool RequirementMatches(const NodeSelectorRequirement& r, std::optional<std::string_view> value) {
  using Op = NodeSelectorRequirement::Op;
  switch (r.op) {
    case Op::kIn:
      return value && std::find(r.values.begin(), r.values.end(), *value) != r.values.end();
    case Op::kNotIn:
      return !value || std::find(r.values.begin(), r.values.end(), *value) == r.values.end();
    case Op::kExists:
      return value.has_value();
    case Op::kDoesNotExist:
      return !value.has_value();
    case Op::kGt:
    case Op::kLt: {
      if (!value || r.values.size() != 1) return false;
      auto have = ParseInt(*value);
      auto want = ParseInt(r.values[0]);
      if (!have || !want) return false;
      return r.op == Op::kGt ? *have > *want : *have < *want;
    }
  }
  return false;
}

}  // namespace

bool NodeSelectorTerm::Matches(std::string_view node_name, const Labels& labels) const {
  if (match_expressions.empty() && match_fields.empty()) return false;
  for (auto& r : match_expressions) {
    auto it = labels.find(r.key);
    std::optional<std::string_view> v;
    if (it != labels.end()) v = it->second;
    if (!RequirementMatches(r, v)) return false;
  }
  for (auto& r : match_fields) {
    std::optional<std::string_view> v;
    if (r.key == "metadata.name") v = node_name;
    if (!RequirementMatches(r, v)) return false;
  }
  return true;
}

bool NodeSelector::Matches(std::string_view node_name, const Labels& labels) const {
  for (auto& t : terms) {
    if (t.Matches(node_name, labels)) return true;
  }
  return false;
}

bool NodeSpec::SchedulingEquals(const NodeSpec& o) const {
  return name == o.name && labels == o.labels && allocatable == o.allocatable && allowed_pods == o.allowed_pods &&
         unschedulable == o.unschedulable && ready == o.ready && taints == o.taints;
}

// ---------------------------------------------------------------------------------------------
// NodeInfo

void NodeInfo::AddPod(const PodInfoPtr& pod) {
  requested.Add(pod->requests);
  nonzero_requested.Add(pod->nonzero_requests);
  ++pod_count;
  for (auto& p : pod->host_ports) {
    auto it = std::find_if(used_ports.begin(), used_ports.end(), [&](const auto& u) { return u.first == p; });
    if (it == used_ports.end()) {
      used_ports.push_back({p, 1});
    } else {
      ++it->second;
    }
  }
  if (!pod->owner_uid.empty()) ++owner_counts[pod->owner_uid];
  for (auto& c : pod->pvc_names) ++claims[pod->ns + "/" + c];
  pods.push_back(pod);
  if (pod->HasPodAffinity()) pods_with_affinity.push_back(pod);
  if (!pod->required_anti_affinity.empty()) pods_with_required_anti_affinity.push_back(pod);
  ++generation;
}

namespace {

bool EraseByKey(std::vector<PodInfoPtr>& v, const std::string& key) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i]->key == key) {
      v[i] = std::move(v.back());
      v.pop_back();
      return true;
    }
  }
  return false;
}

void Decrement(std::unordered_map<std::string, int>& m, const std::string& k) {
  auto it = m.find(k);
  if (it != m.end() && --it->second <= 0) m.erase(it);
}

}  // namespace

bool NodeInfo::RemovePod(const PodInfo& key_of) {
  PodInfoPtr pod;
  for (auto& p : pods) {
    if (p->key == key_of.key) {
      pod = p;
      break;
    }
  }
  if (!pod) return false;
  EraseByKey(pods, pod->key);
  EraseByKey(pods_with_affinity, pod->key);
  EraseByKey(pods_with_required_anti_affinity, pod->key);
  requested.Sub(pod->requests);
  nonzero_requested.Sub(pod->nonzero_requests);
  --pod_count;
  for (auto& p : pod->host_ports) {
    auto it = std::find_if(used_ports.begin(), used_ports.end(), [&](const auto& u) { return u.first == p; });
    if (it != used_ports.end() && --it->second <= 0) used_ports.erase(it);
  }
  if (!pod->owner_uid.empty()) Decrement(owner_counts, pod->owner_uid);
  for (auto& c : pod->pvc_names) Decrement(claims, pod->ns + "/" + c);
  ++generation;
  return true;
}

bool NodeInfo::PortInUse(const HostPort& port) const {
  for (auto& [p, n] : used_ports) {
    if (p.ConflictsWith(port)) return true;
  }
  return false;
}

int NodeInfo::OwnerCount(const std::string& uid) const {
  auto it = owner_counts.find(uid);
  return it == owner_counts.end() ? 0 : it->second;
}

// ---------------------------------------------------------------------------------------------
// Parsing

namespace {

const Value* Member(const Value* v, std::string_view name) {
  if (!v || !v->IsObject()) return nullptr;
  return am::FindMember(*v, name);
}

const Value* Path(const Value& v, std::initializer_list<std::string_view> path) {
  const Value* cur = &v;
  for (auto p : path) {
    cur = Member(cur, p);
    if (!cur) return nullptr;
  }
  return cur;
}

std::string Str(const Value* v) { return v && v->IsString() ? std::string(am::JsonStringView(*v)) : std::string(); }

template <typename F>
void ForEach(const Value* v, F&& f) {
  if (!v || !v->IsArray()) return;
  for (auto& e : v->GetArray()) f(e);
}

Labels ParseStringMap(const Value* v) {
  Labels out;
  if (!v || !v->IsObject()) return out;
  for (auto& m : v->GetObject()) {
    if (m.value.IsString()) out.emplace(am::JsonStringView(m.name), am::JsonStringView(m.value));
  }
  return out;
}

// Parses a resource list ({cpu: "100m", memory: "1Gi", ...}) into Resources; `present` reports
// whether cpu / memory were given (for the non-zero defaults).
Resources ParseResourceList(const Value* v, bool* has_cpu = nullptr, bool* has_memory = nullptr) {
  Resources r;
  if (has_cpu) *has_cpu = false;
  if (has_memory) *has_memory = false;
  if (!v || !v->IsObject()) return r;
  for (auto& m : v->GetObject()) {
    auto q = am::ParseQuantityJson(m.value);
    if (!q.ok()) continue;
    std::string_view name = am::JsonStringView(m.name);
    if (name == "cpu") {
      r.milli_cpu = q->MilliValue();
      if (has_cpu) *has_cpu = true;
    } else if (name == "memory") {
      r.memory = q->Value();
      if (has_memory) *has_memory = true;
    } else if (name == "ephemeral-storage") {
      r.ephemeral_storage = q->Value();
    } else if (name == "pods" || name == "storage") {
      // not a container request
    } else {
      Resources one;
      one.scalar.push_back({std::string(name), q->Value()});
      r.Add(one);
    }
  }
  return r;
}

// A container's requests (limits stand in for absent requests, as API defaulting does) and the
// non-zero variant for scoring.
void ContainerRequests(const Value& c, Resources* req, Resources* nonzero) {
  const Value* res = Member(&c, "resources");
  bool has_cpu = false, has_mem = false;
  *req = ParseResourceList(Member(res, "requests"), &has_cpu, &has_mem);
  bool lim_cpu = false, lim_mem = false;
  Resources limits = ParseResourceList(Member(res, "limits"), &lim_cpu, &lim_mem);
  if (!has_cpu && lim_cpu) {
    req->milli_cpu = limits.milli_cpu;
    has_cpu = true;
  }
  if (!has_mem && lim_mem) {
    req->memory = limits.memory;
    has_mem = true;
  }
  for (auto& [name, v] : limits.scalar) {
    if (req->Scalar(name) == 0 && v != 0) {
      Resources one;
      one.scalar.push_back({name, v});
      req->Add(one);
    }
  }
  *nonzero = *req;
  if (!has_cpu) nonzero->milli_cpu = kDefaultMilliCpuRequest;
  if (!has_mem) nonzero->memory = kDefaultMemoryRequest;
}

std::optional<TaintEffect> ParseEffect(std::string_view e) {
  if (e.empty()) return std::nullopt;
  if (e == "NoSchedule") return TaintEffect::kNoSchedule;
  if (e == "PreferNoSchedule") return TaintEffect::kPreferNoSchedule;
  if (e == "NoExecute") return TaintEffect::kNoExecute;
  return TaintEffect::kOther;
}

std::optional<NodeSelectorRequirement> ParseNodeRequirement(const Value& v) {
  NodeSelectorRequirement r;
  r.key = Str(Member(&v, "key"));
  std::string op = Str(Member(&v, "operator"));
  using Op = NodeSelectorRequirement::Op;
  if (op == "In") {
    r.op = Op::kIn;
  } else if (op == "NotIn") {
    r.op = Op::kNotIn;
  } else if (op == "Exists") {
    r.op = Op::kExists;
  } else if (op == "DoesNotExist") {
    r.op = Op::kDoesNotExist;
  } else if (op == "Gt") {
    r.op = Op::kGt;
  } else if (op == "Lt") {
    r.op = Op::kLt;
  } else {
    return std::nullopt;
  }
  ForEach(Member(&v, "values"), [&](const Value& s) {
    if (s.IsString()) r.values.emplace_back(am::JsonStringView(s));
  });
  return r;
}

NodeSelectorTerm ParseNodeSelectorTerm(const Value& v) {
  NodeSelectorTerm t;
  bool invalid = false;
  ForEach(Member(&v, "matchExpressions"), [&](const Value& e) {
    if (auto r = ParseNodeRequirement(e)) {
      t.match_expressions.push_back(std::move(*r));
    } else {
      invalid = true;
    }
  });
  ForEach(Member(&v, "matchFields"), [&](const Value& e) {
    if (auto r = ParseNodeRequirement(e)) {
      t.match_fields.push_back(std::move(*r));
    } else {
      invalid = true;
    }
  });
  if (invalid) {  // an unknown operator matches nothing
    t.match_expressions.clear();
    t.match_fields.clear();
  }
  return t;
}

std::optional<NodeSelector> ParseNodeSelector(const Value* v) {
  if (!v || !v->IsObject()) return std::nullopt;
  NodeSelector s;
  ForEach(Member(v, "nodeSelectorTerms"), [&](const Value& t) { s.terms.push_back(ParseNodeSelectorTerm(t)); });
  return s;
}

PodAffinityTerm ParsePodAffinityTerm(const Value& v) {
  PodAffinityTerm t;
  if (const Value* sel = Member(&v, "labelSelector")) {
    auto s = am::LabelSelectorFromJson(*sel);
    if (s.ok()) t.selector = std::move(*s);
  }
  ForEach(Member(&v, "namespaces"), [&](const Value& s) {
    if (s.IsString()) t.namespaces.emplace_back(am::JsonStringView(s));
  });
  if (const Value* ns = Member(&v, "namespaceSelector"); ns && ns->IsObject()) {
    auto s = am::LabelSelectorFromJson(*ns);
    if (s.ok()) t.namespace_selector = std::move(*s);
  }
  t.topology_key = Str(Member(&v, "topologyKey"));
  return t;
}

void ParsePodAffinity(const Value* v, std::vector<PodAffinityTerm>* required,
                      std::vector<WeightedPodAffinityTerm>* preferred) {
  ForEach(Member(v, "requiredDuringSchedulingIgnoredDuringExecution"),
          [&](const Value& t) { required->push_back(ParsePodAffinityTerm(t)); });
  ForEach(Member(v, "preferredDuringSchedulingIgnoredDuringExecution"), [&](const Value& w) {
    const Value* term = Member(&w, "podAffinityTerm");
    const Value* weight = Member(&w, "weight");
    if (!term || !weight || !weight->IsInt()) return;
    preferred->push_back({weight->GetInt(), ParsePodAffinityTerm(*term)});
  });
}

std::vector<AccessMode> ParseAccessModes(const Value* v) {
  std::vector<AccessMode> out;
  ForEach(v, [&](const Value& m) {
    std::string s = Str(&m);
    if (s == "ReadWriteOnce") {
      out.push_back(AccessMode::kReadWriteOnce);
    } else if (s == "ReadOnlyMany") {
      out.push_back(AccessMode::kReadOnlyMany);
    } else if (s == "ReadWriteMany") {
      out.push_back(AccessMode::kReadWriteMany);
    } else if (s == "ReadWriteOncePod") {
      out.push_back(AccessMode::kReadWriteOncePod);
    }
  });
  return out;
}

template <typename T, typename F>
Result<T> ParseText(std::string_view json, F&& parse) {
  auto doc = am::ParseJson(json);
  if (!doc.ok()) return doc.status();
  return parse(*doc);
}

}  // namespace

Result<PodInfo> ParsePod(const Value& pod) {
  PodInfo p;
  const Value* meta = Member(&pod, "metadata");
  p.name = Str(Member(meta, "name"));
  if (p.name.empty()) return Status::InvalidArgument("pod without metadata.name");
  p.ns = Str(Member(meta, "namespace"));
  if (p.ns.empty()) p.ns = "default";
  p.key = p.ns + "/" + p.name;
  p.uid = Str(Member(meta, "uid"));
  if (auto rv = ParseInt(Str(Member(meta, "resourceVersion")))) p.resource_version = *rv;
  p.labels = ParseStringMap(Member(meta, "labels"));
  p.deleting = Member(meta, "deletionTimestamp") != nullptr && !Member(meta, "deletionTimestamp")->IsNull();
  ForEach(Member(meta, "ownerReferences"), [&](const Value& r) {
    const Value* c = Member(&r, "controller");
    if (c && c->IsBool() && c->GetBool()) p.owner_uid = Str(Member(&r, "uid"));
  });
  std::string phase = Str(Path(pod, {"status", "phase"}));
  p.terminal = phase == "Succeeded" || phase == "Failed";

  const Value* spec = Member(&pod, "spec");
  p.node_name = Str(Member(spec, "nodeName"));
  p.scheduler_name = Str(Member(spec, "schedulerName"));
  p.node_selector = ParseStringMap(Member(spec, "nodeSelector"));

  ForEach(Member(spec, "containers"), [&](const Value& c) {
    Resources req, nonzero;
    ContainerRequests(c, &req, &nonzero);
    p.requests.Add(req);
    p.nonzero_requests.Add(nonzero);
    ForEach(Member(&c, "ports"), [&](const Value& port) {
      const Value* hp = Member(&port, "hostPort");
      if (!hp || !hp->IsInt() || hp->GetInt() <= 0) return;
      HostPort h;
      h.port = hp->GetInt();
      h.protocol = Str(Member(&port, "protocol"));
      if (h.protocol.empty()) h.protocol = "TCP";
      h.ip = Str(Member(&port, "hostIP"));
      if (h.ip == "0.0.0.0") h.ip.clear();
      p.host_ports.push_back(std::move(h));
    });
  });
  // Init containers run one at a time before the app containers; restartable ones (sidecars,
  // restartPolicy Always) keep running beside what starts after them.
  Resources sidecars, sidecars_nonzero, init_max, init_max_nonzero;
  ForEach(Member(spec, "initContainers"), [&](const Value& c) {
    Resources req, nonzero;
    ContainerRequests(c, &req, &nonzero);
    if (Str(Member(&c, "restartPolicy")) == "Always") {
      sidecars.Add(req);
      sidecars_nonzero.Add(nonzero);
      return;
    }
    req.Add(sidecars);
    nonzero.Add(sidecars_nonzero);
    init_max.Max(req);
    init_max_nonzero.Max(nonzero);
  });
  p.requests.Add(sidecars);
  p.nonzero_requests.Add(sidecars_nonzero);
  p.requests.Max(init_max);
  p.nonzero_requests.Max(init_max_nonzero);
  Resources overhead = ParseResourceList(Member(spec, "overhead"));
  p.requests.Add(overhead);
  p.nonzero_requests.Add(overhead);

  ForEach(Member(spec, "tolerations"), [&](const Value& t) {
    Toleration tol;
    tol.key = Str(Member(&t, "key"));
    tol.exists = Str(Member(&t, "operator")) == "Exists";
    tol.value = Str(Member(&t, "value"));
    tol.effect = ParseEffect(Str(Member(&t, "effect")));
    p.tolerations.push_back(std::move(tol));
  });
  ForEach(Member(spec, "volumes"), [&](const Value& v) {
    std::string claim = Str(Path(v, {"persistentVolumeClaim", "claimName"}));
    if (!claim.empty()) p.pvc_names.push_back(std::move(claim));
  });

  const Value* affinity = Member(spec, "affinity");
  if (const Value* na = Member(affinity, "nodeAffinity")) {
    p.required_node_affinity = ParseNodeSelector(Member(na, "requiredDuringSchedulingIgnoredDuringExecution"));
    ForEach(Member(na, "preferredDuringSchedulingIgnoredDuringExecution"), [&](const Value& w) {
      const Value* pref = Member(&w, "preference");
      const Value* weight = Member(&w, "weight");
      if (!pref || !weight || !weight->IsInt()) return;
      p.preferred_node_affinity.push_back({weight->GetInt(), ParseNodeSelectorTerm(*pref)});
    });
  }
  ParsePodAffinity(Member(affinity, "podAffinity"), &p.required_affinity, &p.preferred_affinity);
  ParsePodAffinity(Member(affinity, "podAntiAffinity"), &p.required_anti_affinity, &p.preferred_anti_affinity);
  return p;
}

Result<NodeSpec> ParseNode(const Value& node) {
  NodeSpec n;
  const Value* meta = Member(&node, "metadata");
  n.name = Str(Member(meta, "name"));
  if (n.name.empty()) return Status::InvalidArgument("node without metadata.name");
  n.labels = ParseStringMap(Member(meta, "labels"));
  const Value* spec = Member(&node, "spec");
  const Value* unsched = Member(spec, "unschedulable");
  n.unschedulable = unsched && unsched->IsBool() && unsched->GetBool();
  ForEach(Member(spec, "taints"), [&](const Value& t) {
    Taint taint;
    taint.key = Str(Member(&t, "key"));
    taint.value = Str(Member(&t, "value"));
    taint.effect = ParseEffect(Str(Member(&t, "effect"))).value_or(TaintEffect::kOther);
    n.taints.push_back(std::move(taint));
  });
  const Value* status = Member(&node, "status");
  const Value* alloc = Member(status, "allocatable");
  if (!alloc || !alloc->IsObject() || alloc->ObjectEmpty()) alloc = Member(status, "capacity");
  n.allocatable = ParseResourceList(alloc);
  if (const Value* pods = Member(alloc, "pods")) {
    auto q = am::ParseQuantityJson(*pods);
    if (q.ok()) n.allowed_pods = q->Value();
  }
  ForEach(Member(status, "conditions"), [&](const Value& c) {
    if (Str(Member(&c, "type")) == "Ready") n.ready = Str(Member(&c, "status")) == "True";
  });
  return n;
}

Result<ClaimInfo> ParseClaim(const Value& claim) {
  ClaimInfo c;
  const Value* meta = Member(&claim, "metadata");
  c.name = Str(Member(meta, "name"));
  if (c.name.empty()) return Status::InvalidArgument("claim without metadata.name");
  c.ns = Str(Member(meta, "namespace"));
  c.deleting = Member(meta, "deletionTimestamp") != nullptr && !Member(meta, "deletionTimestamp")->IsNull();
  c.volume_name = Str(Path(claim, {"spec", "volumeName"}));
  c.bound = Str(Path(claim, {"status", "phase"})) == "Bound";
  c.access_modes = ParseAccessModes(Path(claim, {"status", "accessModes"}));
  if (c.access_modes.empty()) c.access_modes = ParseAccessModes(Path(claim, {"spec", "accessModes"}));
  return c;
}

Result<VolumeInfo> ParseVolume(const Value& volume) {
  VolumeInfo v;
  v.name = Str(Path(volume, {"metadata", "name"}));
  if (v.name.empty()) return Status::InvalidArgument("volume without metadata.name");
  v.access_modes = ParseAccessModes(Path(volume, {"spec", "accessModes"}));
  v.node_affinity = ParseNodeSelector(Path(volume, {"spec", "nodeAffinity", "required"}));
  return v;
}

Result<PodInfo> ParsePodJson(std::string_view json) {
  return ParseText<PodInfo>(json, [](const Value& v) { return ParsePod(v); });
}
Result<NodeSpec> ParseNodeJson(std::string_view json) {
  return ParseText<NodeSpec>(json, [](const Value& v) { return ParseNode(v); });
}
Result<ClaimInfo> ParseClaimJson(std::string_view json) {
  return ParseText<ClaimInfo>(json, [](const Value& v) { return ParseClaim(v); });
}
Result<VolumeInfo> ParseVolumeJson(std::string_view json) {
  return ParseText<VolumeInfo>(json, [](const Value& v) { return ParseVolume(v); });
}

}  // namespace rc::scheduler
