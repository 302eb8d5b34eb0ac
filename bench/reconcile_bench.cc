// reconcile_bench: the cost of one ReplicaSet reconcile over an informer-sized cache, the DSL
// controller against the same logic written by hand in C++ (issue 4's goal: DSL within 1.5x).
//
//   reconcile_bench [--source stdlib/controllers/replicaset.rc] [--rounds 5] [--min-round-ms 300]
//                   [--case NAME] [--only dsl|cpp --seconds S]   (the last two: a loop for perf)
//                   [--compile-rounds N]  (first: N recompiles of the file, check vs codegen + JIT)
//
// - DSL: ReplicaSetController compiled from --source by rc::compiler::ControllerLoader (the
//   built-in resource types visible, JIT at O2, as rcd does), its reconcile entry called through
//   rc::rt::InvokeFn with a fresh rc_ctx per reconcile, as ControllerManager does.
// - C++: ReconcileCpp below, what replicaset.rc does written by hand over the same rapidjson
//   values: list the namespace's pods, keep the active ones that match the selector and are
//   controlled by the ReplicaSet (adopt / release by patch), create or delete the difference
//   (deletion rank), count ready / available / fully-labeled, update the status when it changed.
// - Both call the same in-memory rc::rt::EffectHost (FakeHost): List returns the namespace's pods
//   (pointers into parsed documents, sorted by name like the informer); writes and events are
//   counted and dropped. Before timing, both run a set of scenarios (scale up/down, adoption,
//   release, stale status, deletion, minReadySeconds) on a recording host and must issue the same
//   writes, events and requeue: the baseline is checked to be the same logic.
// Prints a Markdown table (ns/reconcile, median of --rounds interleaved rounds) and one
// "RESULT {json}" line per case.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "rc/apimachinery/selector.h"
#include "rc/compiler/controller_loader.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/program.h"
#include "rc/compiler/resource_loader.h"
#include "rc/stdlib/runtime.h"

#ifndef RC_SOURCE_DIR
#define RC_SOURCE_DIR "."
#endif

namespace {

using Clock = std::chrono::steady_clock;
using Value = rapidjson::Value;
using Alloc = rapidjson::MemoryPoolAllocator<>;
using Write = rc::rt::EffectHost::Write;
namespace am = rc::apimachinery;

constexpr int64_t kNow = 1796000000;  // 2026-11-30T...Z: the clock both variants see

std::string Rfc3339(int64_t secs) {
  time_t t = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

bool ParseRfc3339(std::string_view s, int64_t* out) {
  if (s.size() < 20) return false;
  struct tm tm {};
  std::string z(s);
  if (!strptime(z.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return false;
  *out = static_cast<int64_t>(timegm(&tm));
  return true;
}

// ---- the cache --------------------------------------------------------------------------------

struct PodSpec {
  std::string ns, name, owner_uid, owner_name;  // owner_uid "": no ownerReference
  std::string labels_json;                      // {"app":"x",...}
  bool owner_is_controller = true;
  bool ready = true;
  std::string phase = "Running";
  std::string node = "node-1";
  int64_t created = kNow - 3600;
  int64_t ready_since = kNow - 3000;
  bool deleting = false;
};

struct RsSpec {
  std::string ns, name, uid, app, hash;
  int64_t replicas = 10;
  int64_t min_ready = 0;
  int64_t generation = 1;
  // Status as last written: {-1} = no status at all.
  int64_t st_replicas = 10, st_ready = 10, st_available = 10, st_labeled = 10, st_generation = 1;
  bool has_status = true;
  bool deleting = false;
};

std::string Labels(const std::string& app, const std::string& hash) {
  return R"({"app":")" + app + R"(","pod-template-hash":")" + hash + R"("})";
}

// A pod as the API server stores it after defaulting (the shape kubectl shows for a Running pod).
std::string PodJson(const PodSpec& p, int64_t rv) {
  std::string owner;
  if (!p.owner_uid.empty()) {
    owner = R"(,"ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":")" + p.owner_name +
            R"(","uid":")" + p.owner_uid + R"(")" + (p.owner_is_controller ? R"(,"controller":true,"blockOwnerDeletion":true)" : "") +
            "}]";
  }
  std::string since = Rfc3339(p.ready_since);
  std::string cond = [&](const char* type, bool ok) {
    return std::string(R"({"type":")") + type + R"(","status":")" + (ok ? "True" : "False") +
           R"(","lastProbeTime":null,"lastTransitionTime":")" + since + R"("})";
  }("Initialized", true);
  std::string conditions = "[" + cond;
  conditions += R"(,{"type":"Ready","status":")" + std::string(p.ready ? "True" : "False") +
                R"(","lastProbeTime":null,"lastTransitionTime":")" + since + R"("})";
  conditions += R"(,{"type":"ContainersReady","status":")" + std::string(p.ready ? "True" : "False") +
                R"(","lastProbeTime":null,"lastTransitionTime":")" + since + R"("})";
  conditions += R"(,{"type":"PodScheduled","status":"True","lastProbeTime":null,"lastTransitionTime":")" + since + R"("}])";
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + p.name + R"(","generateName":")" + p.owner_name +
         R"(-","namespace":")" + p.ns + R"(","uid":"pod-)" + p.name + R"(","resourceVersion":")" + std::to_string(rv) +
         R"(","creationTimestamp":")" + Rfc3339(p.created) + "\"" +
         (p.deleting ? R"(,"deletionTimestamp":")" + Rfc3339(kNow - 5) + R"(","deletionGracePeriodSeconds":30)" : "") +
         R"(,"labels":)" + p.labels_json + owner +
         R"(},"spec":{"containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"],"resources":{},)"
         R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],)"
         R"("restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",)"
         R"("serviceAccountName":"default","nodeName":")" + p.node +
         R"(","securityContext":{},"schedulerName":"default-scheduler","enableServiceLinks":true,"priority":0,)"
         R"("tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}]},)"
         R"("status":{"phase":")" + p.phase + R"(","conditions":)" + conditions +
         R"(,"hostIP":"10.0.0.1","podIP":"10.244.0.7","podIPs":[{"ip":"10.244.0.7"}],"startTime":")" + since +
         R"(","containerStatuses":[{"name":"main","state":{"running":{"startedAt":")" + since +
         R"("}},"lastState":{},"ready":)" + (p.ready ? "true" : "false") +
         R"(,"restartCount":0,"image":"busybox:1.36","imageID":"docker.io/library/busybox@sha256:0123456789abcdef",)"
         R"("containerID":"containerd://0123456789abcdef","started":true}],"qosClass":"BestEffort"}})";
}

std::string RsJson(const RsSpec& r, int64_t rv) {
  std::string labels = Labels(r.app, r.hash);
  std::string status = r.has_status ? R"(,"status":{"replicas":)" + std::to_string(r.st_replicas) +
                                          R"(,"fullyLabeledReplicas":)" + std::to_string(r.st_labeled) +
                                          R"(,"readyReplicas":)" + std::to_string(r.st_ready) +
                                          R"(,"availableReplicas":)" + std::to_string(r.st_available) +
                                          R"(,"observedGeneration":)" + std::to_string(r.st_generation) + "}"
                                    : "";
  return R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":")" + r.name + R"(","namespace":")" + r.ns +
         R"(","uid":")" + r.uid + R"(","resourceVersion":")" + std::to_string(rv) + R"(","generation":)" +
         std::to_string(r.generation) + R"(,"creationTimestamp":")" + Rfc3339(kNow - 4000) + "\"" +
         (r.deleting ? R"(,"deletionTimestamp":")" + Rfc3339(kNow - 5) + R"(","finalizers":["foregroundDeletion"])" : "") +
         R"(,"labels":)" + labels +
         R"(,"annotations":{"deployment.kubernetes.io/desired-replicas":")" + std::to_string(r.replicas) +
         R"(","deployment.kubernetes.io/max-replicas":")" + std::to_string(r.replicas + 1) +
         R"(","deployment.kubernetes.io/revision":"1"},"ownerReferences":[{"apiVersion":"apps/v1","kind":"Deployment","name":")" +
         r.app + R"(","uid":"dep-)" + r.app + R"(","controller":true,"blockOwnerDeletion":true}]},"spec":{"replicas":)" +
         std::to_string(r.replicas) + R"(,"minReadySeconds":)" + std::to_string(r.min_ready) + R"(,"selector":{"matchLabels":)" +
         labels + R"(},"template":{"metadata":{"labels":)" + labels +
         R"(},"spec":{"containers":[{"name":"main","image":"busybox:1.36","command":["sleep","3600"],"resources":{},)"
         R"("terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],)"
         R"("restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},)"
         R"("schedulerName":"default-scheduler"}}})" + status + "}";
}

struct Cluster {
  std::deque<rapidjson::Document> docs;
  std::map<std::string, std::map<std::string, const Value*>> pods;  // ns -> name -> pod
  std::map<std::string, std::vector<const Value*>> pod_lists;       // ns -> pods sorted by name
  std::vector<const Value*> replicasets;
  int64_t rv = 100;

  const Value* Parse(const std::string& json) {
    docs.emplace_back();
    docs.back().Parse(json.c_str(), json.size());
    if (docs.back().HasParseError()) {
      std::cerr << "reconcile_bench: bad JSON built: " << json << "\n";
      std::exit(2);
    }
    return &docs.back();
  }
  void AddPod(const PodSpec& p) { pods[p.ns][p.name] = Parse(PodJson(p, ++rv)); }
  void AddRs(const RsSpec& r) { replicasets.push_back(Parse(RsJson(r, ++rv))); }
  void Seal() {
    pod_lists.clear();
    for (auto& [ns, by_name] : pods) {
      auto& v = pod_lists[ns];
      for (auto& [name, p] : by_name) v.push_back(p);
    }
  }
  size_t PodCount() const {
    size_t n = 0;
    for (auto& [ns, v] : pod_lists) n += v.size();
    return n;
  }
};

// RS `i` with `k` pods, all Running and Ready, status up to date.
RsSpec SteadyRs(const std::string& ns, int i, int k) {
  RsSpec r;
  r.ns = ns;
  r.app = "web-" + std::to_string(i);
  r.hash = "5d8f7c9b" + std::to_string(i % 10);
  r.name = r.app + "-" + r.hash;
  r.uid = "rs-uid-" + ns + "-" + std::to_string(i);
  r.replicas = r.st_replicas = r.st_ready = r.st_available = r.st_labeled = k;
  return r;
}

PodSpec PodOf(const RsSpec& r, int j) {
  PodSpec p;
  p.ns = r.ns;
  p.owner_name = r.name;
  p.owner_uid = r.uid;
  char suffix[8];
  snprintf(suffix, sizeof suffix, "%05d", j);
  p.name = r.name + "-" + suffix;
  p.labels_json = Labels(r.app, r.hash);
  p.created = kNow - 3600 - j;
  return p;
}

// ---- the effect host --------------------------------------------------------------------------

std::string Canonical(const Value* v) { return rc::rt::CanonicalJson(v); }

class FakeHost : public rc::rt::EffectHost {
 public:
  FakeHost(const Cluster* cluster, bool record) : cluster_(cluster), record_(record) {}

  const rc_value* Get(const std::string& api_version, const std::string& kind, const std::string& name,
                      const std::string& ns) override {
    if (kind != "Pod") return nullptr;
    auto it = cluster_->pods.find(ns);
    if (it == cluster_->pods.end()) return nullptr;
    auto p = it->second.find(name);
    return p == it->second.end() ? nullptr : p->second;
  }

  std::vector<const rc_value*> List(const std::string& api_version, const std::string& kind, const std::string& ns,
                                    const rc_value* selector, const rc_value* labels, const rc_value* owner) override {
    ++lists;
    if (kind != "Pod") return {};
    auto it = cluster_->pod_lists.find(ns);
    if (it == cluster_->pod_lists.end()) return {};
    if (!selector && !labels && !owner) return it->second;
    // Not used by replicaset.rc; here for completeness (the informer host's semantics).
    std::vector<const rc_value*> out;
    auto sel = selector ? am::LabelSelectorFromJson(selector) : am::LabelSelector();
    for (const Value* p : it->second) {
      const Value* meta = &(*p)["metadata"];
      auto l = meta->FindMember("labels");
      const Value* pl = l == meta->MemberEnd() ? nullptr : &l->value;
      if (selector && (!sel.ok() || !sel->Matches(pl))) continue;
      if (labels && labels->IsObject()) {
        bool all = true;
        for (auto& m : labels->GetObject()) {
          auto f = pl ? pl->FindMember(m.name) : Value::ConstMemberIterator();
          if (!pl || f == pl->MemberEnd() || f->value != m.value) all = false;
        }
        if (!all) continue;
      }
      out.push_back(p);
    }
    return out;
  }

  rc::Status Apply(Write op, const rc_value& object, const rc_value* patch) override {
    ++writes;
    if (record_) {
      static const char* kOp[] = {"", "create", "update", "updateStatus", "delete", "patch"};
      std::string line = std::string(kOp[static_cast<int>(op)]) + " ";
      if (op == Write::kCreate) line += Canonical(&object);
      else if (op == Write::kUpdateStatus) line += std::string(object["metadata"]["name"].GetString()) + " " + Canonical(&object["status"]);
      else if (op == Write::kPatch) line += std::string(object["metadata"]["name"].GetString()) + " " + Canonical(patch);
      else line += object["metadata"]["name"].GetString();
      log.push_back(line);
    }
    return rc::Status::Ok();
  }

  void Emit(const rc_value& object, const std::string& type, const std::string& reason,
            const std::string& message) override {
    ++events;
    if (record_) log.push_back("event " + type + " " + reason + " " + message);
  }

  int64_t lists = 0, writes = 0, events = 0;
  std::vector<std::string> log;

 private:
  const Cluster* cluster_;
  bool record_;
};

// ---- the hand-written C++ ReplicaSet reconcile --------------------------------------------------

const Value* Field(const Value* v, const char* key) {
  if (!v || !v->IsObject()) return nullptr;
  auto it = v->FindMember(key);
  return it == v->MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}
std::string_view Str(const Value* v) {
  return v && v->IsString() ? std::string_view(v->GetString(), v->GetStringLength()) : std::string_view();
}
int64_t Int(const Value* v) { return v && v->IsNumber() ? v->GetInt64() : 0; }
Value S(std::string_view s, Alloc& a) { return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), a); }

bool Active(const Value& p) {
  const Value* meta = Field(&p, "metadata");
  if (Field(meta, "deletionTimestamp")) return false;
  std::string_view phase = Str(Field(Field(&p, "status"), "phase"));
  return phase != "Succeeded" && phase != "Failed";
}
bool IsController(const Value& ref) {
  const Value* c = Field(&ref, "controller");
  return c && c->IsBool() && c->GetBool();
}
bool HasController(const Value* refs) {
  if (!refs || !refs->IsArray()) return false;
  for (auto& r : refs->GetArray()) {
    if (IsController(r)) return true;
  }
  return false;
}
bool ControlledBy(const Value* refs, std::string_view uid) {
  if (!refs || !refs->IsArray()) return false;
  for (auto& r : refs->GetArray()) {
    if (IsController(r) && Str(Field(&r, "uid")) == uid) return true;
  }
  return false;
}
const Value* ReadyCondition(const Value& p) {
  const Value* conds = Field(Field(&p, "status"), "conditions");
  if (!conds || !conds->IsArray()) return nullptr;
  for (auto& c : conds->GetArray()) {
    if (Str(Field(&c, "type")) == "Ready" && Str(Field(&c, "status")) == "True") return &c;
  }
  return nullptr;
}
bool Available(const Value& p, int64_t min_ready, int64_t now) {
  const Value* c = ReadyCondition(p);
  if (!c) return false;
  if (min_ready == 0) return true;
  int64_t since = now;
  if (const Value* t = Field(c, "lastTransitionTime"); t && !ParseRfc3339(Str(t), &since)) since = now;
  return since + min_ready <= now;
}
bool TemplateLabeled(const Value& p, const Value* tmpl_labels) {
  if (!tmpl_labels || !tmpl_labels->IsObject()) return true;
  const Value* labels = Field(Field(&p, "metadata"), "labels");
  for (auto& m : tmpl_labels->GetObject()) {
    const Value* v = labels ? Field(labels, m.name.GetString()) : nullptr;
    if (Str(v) != Str(&m.value)) return false;
  }
  return true;
}
Value OwnerRef(const Value& rs, Alloc& a) {
  const Value* meta = Field(&rs, "metadata");
  Value ref(rapidjson::kObjectType);
  ref.AddMember("apiVersion", "apps/v1", a);
  ref.AddMember("kind", "ReplicaSet", a);
  ref.AddMember("name", S(Str(Field(meta, "name")), a), a);
  ref.AddMember("uid", S(Str(Field(meta, "uid")), a), a);
  ref.AddMember("controller", true, a);
  ref.AddMember("blockOwnerDeletion", true, a);
  return ref;
}
int64_t Since(const Value* ts, int64_t now) {
  int64_t t = now;
  if (ts) ParseRfc3339(Str(ts), &t);
  return now - t;
}

// Returns the requeue delay in ns (-1: none), like ctx->requeue_after_ns.
int64_t ReconcileCpp(rc::rt::EffectHost* host, const Value& rs, int64_t now, int max_creates = 500) {
  Alloc a;
  const Value* meta = Field(&rs, "metadata");
  const Value* spec = Field(&rs, "spec");
  const bool deleting = Field(meta, "deletionTimestamp") != nullptr;
  std::string_view uid = Str(Field(meta, "uid"));
  const std::string ns(Str(Field(meta, "namespace")));
  auto selector = am::LabelSelectorFromJson(Field(spec, "selector"));
  const am::LabelSelector sel = selector.ok() ? std::move(*selector) : am::LabelSelector::Nothing();

  std::vector<const Value*> pods;
  for (const Value* p : host->List("v1", "Pod", ns, nullptr, nullptr, nullptr)) {
    if (!Active(*p)) continue;
    const Value* pmeta = Field(p, "metadata");
    const Value* refs = Field(pmeta, "ownerReferences");
    bool matches = sel.Matches(Field(pmeta, "labels"));
    if (ControlledBy(refs, uid)) {
      if (matches || deleting) {
        pods.push_back(p);
      } else {
        Value kept(rapidjson::kArrayType);
        for (auto& r : refs->GetArray()) {
          if (Str(Field(&r, "uid")) != uid) kept.PushBack(Value(r, a), a);
        }
        Value m(rapidjson::kObjectType), patch(rapidjson::kObjectType);
        m.AddMember("ownerReferences", kept, a);
        patch.AddMember("metadata", m, a);
        if (!host->Apply(Write::kPatch, *p, &patch).ok()) return -2;
      }
    } else if (!HasController(refs) && matches && !deleting) {
      Value all(rapidjson::kArrayType);
      if (refs && refs->IsArray()) {
        for (auto& r : refs->GetArray()) all.PushBack(Value(r, a), a);
      }
      all.PushBack(OwnerRef(rs, a), a);
      Value m(rapidjson::kObjectType), patch(rapidjson::kObjectType);
      m.AddMember("ownerReferences", all, a);
      patch.AddMember("metadata", m, a);
      if (!host->Apply(Write::kPatch, *p, &patch).ok()) return -2;
      pods.push_back(p);
    }
  }

  const int64_t replicas = Int(Field(spec, "replicas"));
  const std::string name(Str(Field(meta, "name")));
  if (!deleting) {
    int64_t diff = static_cast<int64_t>(pods.size()) - replicas;
    if (diff < 0) {
      const Value* tmpl = Field(spec, "template");
      const Value* tmeta = Field(tmpl, "metadata");
      for (int64_t i = 0; i < std::min<int64_t>(-diff, max_creates); ++i) {
        Value pod(rapidjson::kObjectType), pm(rapidjson::kObjectType), refs(rapidjson::kArrayType);
        pod.AddMember("apiVersion", "v1", a);
        pod.AddMember("kind", "Pod", a);
        pm.AddMember("generateName", S(name + "-", a), a);
        pm.AddMember("namespace", S(ns, a), a);
        if (const Value* l = Field(tmeta, "labels")) pm.AddMember("labels", Value(*l, a), a);
        if (const Value* an = Field(tmeta, "annotations")) pm.AddMember("annotations", Value(*an, a), a);
        refs.PushBack(OwnerRef(rs, a), a);
        pm.AddMember("ownerReferences", refs, a);
        pod.AddMember("metadata", pm, a);
        if (const Value* ts = Field(tmpl, "spec")) pod.AddMember("spec", Value(*ts, a), a);
        if (!host->Apply(Write::kCreate, pod, nullptr).ok()) return -2;
        // The generated name when the host reports what it stored, else the prefix.
        std::string_view created = Str(Field(Field(host->Written(), "metadata"), "name"));
        host->Emit(rs, "Normal", "SuccessfulCreate", "Created pod: " + (created.empty() ? name + "-" : std::string(created)));
      }
    } else if (diff > 0) {
      // controller.ActivePods' ranking: unscheduled, then Pending < Unknown < Running, not ready,
      // then newer first.
      struct Ranked {
        int scheduled, phase, ready;
        int64_t age;
        const Value* pod;
      };
      std::vector<Ranked> ranked;
      ranked.reserve(pods.size());
      for (const Value* p : pods) {
        std::string_view phase = Str(Field(Field(p, "status"), "phase"));
        ranked.push_back({Str(Field(Field(p, "spec"), "nodeName")).empty() ? 0 : 1,
                          phase == "Pending" ? 0 : phase == "Unknown" ? 1 : 2, ReadyCondition(*p) ? 1 : 0,
                          std::max<int64_t>(0, Since(Field(Field(p, "metadata"), "creationTimestamp"), now)), p});
      }
      std::stable_sort(ranked.begin(), ranked.end(), [](const Ranked& x, const Ranked& y) {
        if (x.scheduled != y.scheduled) return x.scheduled < y.scheduled;
        if (x.phase != y.phase) return x.phase < y.phase;
        if (x.ready != y.ready) return x.ready < y.ready;
        return x.age < y.age;
      });
      for (int64_t i = 0; i < diff && i < static_cast<int64_t>(ranked.size()); ++i) {
        if (!host->Apply(Write::kDelete, *ranked[i].pod, nullptr).ok()) return -2;
        host->Emit(rs, "Normal", "SuccessfulDelete",
                   "Deleted pod: " + std::string(Str(Field(Field(ranked[i].pod, "metadata"), "name"))));
      }
    }
  }

  const int64_t min_ready = Int(Field(spec, "minReadySeconds"));
  const Value* tmpl_labels = Field(Field(Field(spec, "template"), "metadata"), "labels");
  int64_t ready = 0, available = 0, labeled = 0;
  for (const Value* p : pods) {
    ready += ReadyCondition(*p) != nullptr;
    available += Available(*p, min_ready, now);
    labeled += TemplateLabeled(*p, tmpl_labels);
  }
  const Value* st = Field(&rs, "status");
  const int64_t n = static_cast<int64_t>(pods.size());
  const int64_t generation = Int(Field(meta, "generation"));
  if (Int(Field(st, "replicas")) != n || Int(Field(st, "readyReplicas")) != ready ||
      Int(Field(st, "availableReplicas")) != available || Int(Field(st, "fullyLabeledReplicas")) != labeled ||
      Int(Field(st, "observedGeneration")) != generation) {
    Value updated(rs, a);
    auto it = updated.FindMember("status");
    if (it == updated.MemberEnd() || !it->value.IsObject()) {
      if (it != updated.MemberEnd()) updated.RemoveMember(it);
      updated.AddMember("status", Value(rapidjson::kObjectType), a);
      it = updated.FindMember("status");
    }
    auto set = [&](const char* key, int64_t v) {
      auto f = it->value.FindMember(key);
      if (f != it->value.MemberEnd()) f->value.SetInt64(v);
      else it->value.AddMember(rapidjson::StringRef(key), Value(v), a);
    };
    set("replicas", n);
    set("fullyLabeledReplicas", labeled);
    set("readyReplicas", ready);
    set("availableReplicas", available);
    set("observedGeneration", generation);
    if (!host->Apply(Write::kUpdateStatus, updated, nullptr).ok()) return -2;
  }
  if (min_ready > 0 && ready > available) return min_ready * 1000000000;
  return -1;
}

// ---- the DSL reconcile ------------------------------------------------------------------------

using ReconcileFn = rc::controller::CompiledController::ReconcileFn;

// One reconcile as ControllerManager runs it: a fresh context, the call through InvokeFn.
int64_t ReconcileDsl(ReconcileFn fn, rc::rt::EffectHost* host, const Value& rs, int64_t now, std::string* error) {
  rc_ctx ctx;
  ctx.host = host;
  ctx.now_seconds = now;
  const Value* arg = &rs;
  auto call = [&] { fn(&ctx, arg); };
  rc::Status st = rc::rt::InvokeFn(&ctx, call);
  if (!st.ok()) {
    if (error) *error = st.message();
    return -2;
  }
  return ctx.requeue_after_ns;
}

// ---- equivalence scenarios ----------------------------------------------------------------------

struct Scenario {
  std::string name;
  Cluster cluster;
};

std::vector<std::unique_ptr<Scenario>> Scenarios() {
  std::vector<std::unique_ptr<Scenario>> out;
  auto add = [&](const std::string& name, const std::function<void(Cluster&)>& build) {
    auto s = std::make_unique<Scenario>();
    s->name = name;
    build(s->cluster);
    s->cluster.Seal();
    out.push_back(std::move(s));
  };
  add("steady", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 3);
    c.AddRs(r);
    for (int j = 0; j < 3; ++j) c.AddPod(PodOf(r, j));
    RsSpec other = SteadyRs("default", 2, 2);
    for (int j = 0; j < 2; ++j) c.AddPod(PodOf(other, j));
  });
  add("scale up by 2", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 3);
    r.replicas = 5;
    c.AddRs(r);
    for (int j = 0; j < 3; ++j) c.AddPod(PodOf(r, j));
  });
  add("scale down by 3 (deletion rank)", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 6);
    r.replicas = 3;
    c.AddRs(r);
    for (int j = 0; j < 6; ++j) {
      PodSpec p = PodOf(r, j);
      if (j == 1) p.node = "";
      if (j == 2) p.phase = "Pending", p.ready = false;
      if (j == 3) p.ready = false;
      if (j == 4) p.created = kNow - 100;  // the newest
      c.AddPod(p);
    }
  });
  add("stale status", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 3);
    r.has_status = false;
    r.generation = 4;
    c.AddRs(r);
    for (int j = 0; j < 3; ++j) {
      PodSpec p = PodOf(r, j);
      if (j == 0) p.ready = false;
      if (j == 1) p.labels_json = R"({"app":"web-1","pod-template-hash":"5d8f7c9b1","extra":"x"})";
      c.AddPod(p);
    }
  });
  add("adopt orphans, release non-matching, skip inactive and foreign", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 4);
    c.AddRs(r);
    c.AddPod(PodOf(r, 0));
    PodSpec orphan = PodOf(r, 1);
    orphan.owner_uid = "";
    c.AddPod(orphan);
    PodSpec weak = PodOf(r, 2);  // a non-controller reference only: adopted too
    weak.owner_uid = "someone-else";
    weak.owner_is_controller = false;
    c.AddPod(weak);
    PodSpec released = PodOf(r, 3);
    released.labels_json = R"({"app":"other"})";
    c.AddPod(released);
    PodSpec foreign = PodOf(r, 4);
    foreign.owner_uid = "another-rs";
    c.AddPod(foreign);
    PodSpec done = PodOf(r, 5);
    done.phase = "Succeeded";
    c.AddPod(done);
    PodSpec going = PodOf(r, 6);
    going.deleting = true;
    c.AddPod(going);
  });
  add("deleting ReplicaSet", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 3);
    r.deleting = true;
    r.replicas = 5;
    c.AddRs(r);
    for (int j = 0; j < 3; ++j) {
      PodSpec p = PodOf(r, j);
      if (j == 0) p.labels_json = R"({"app":"moved"})";
      c.AddPod(p);
    }
    PodSpec orphan = PodOf(r, 9);
    orphan.owner_uid = "";
    c.AddPod(orphan);
  });
  add("minReadySeconds 60 (requeue)", [](Cluster& c) {
    RsSpec r = SteadyRs("default", 1, 3);
    r.min_ready = 60;
    c.AddRs(r);
    for (int j = 0; j < 3; ++j) {
      PodSpec p = PodOf(r, j);
      if (j == 0) p.ready_since = kNow - 10;
      c.AddPod(p);
    }
  });
  return out;
}

bool CheckEquivalence(ReconcileFn fn) {
  bool ok = true;
  for (auto& s : Scenarios()) {
    for (const Value* rs : s->cluster.replicasets) {
      FakeHost dsl_host(&s->cluster, true), cpp_host(&s->cluster, true);
      std::string error;
      int64_t dsl_requeue = ReconcileDsl(fn, &dsl_host, *rs, kNow, &error);
      int64_t cpp_requeue = ReconcileCpp(&cpp_host, *rs, kNow);
      if (!error.empty()) {
        std::cerr << "reconcile_bench: scenario '" << s->name << "': the DSL reconcile failed: " << error << "\n";
        ok = false;
        continue;
      }
      if (dsl_host.log != cpp_host.log || dsl_requeue != cpp_requeue) {
        ok = false;
        std::cerr << "reconcile_bench: scenario '" << s->name << "': DSL and C++ differ\n  DSL (requeue "
                  << dsl_requeue << "):\n";
        for (auto& l : dsl_host.log) std::cerr << "    " << l << "\n";
        std::cerr << "  C++ (requeue " << cpp_requeue << "):\n";
        for (auto& l : cpp_host.log) std::cerr << "    " << l << "\n";
      } else {
        std::cerr << "  same effects: " << s->name << " (" << dsl_host.log.size() << " writes/events"
                  << (dsl_requeue >= 0 ? ", requeue " + std::to_string(dsl_requeue / 1000000000) + " s" : "") << ")\n";
      }
    }
  }
  return ok;
}

// ---- timed cases --------------------------------------------------------------------------------

struct Case {
  std::string name, description;
  Cluster cluster;
};

std::vector<std::unique_ptr<Case>> Cases() {
  std::vector<std::unique_ptr<Case>> out;
  {
    auto c = std::make_unique<Case>();
    c->name = "ns10k-rs10";
    c->description = "1 namespace, 10000 pods: 1000 RS x 10 pods, steady (no writes)";
    for (int i = 0; i < 1000; ++i) {
      RsSpec r = SteadyRs("default", i, 10);
      c->cluster.AddRs(r);
      for (int j = 0; j < 10; ++j) c->cluster.AddPod(PodOf(r, j));
    }
    out.push_back(std::move(c));
  }
  {
    auto c = std::make_unique<Case>();
    c->name = "ns10k-rs100";
    c->description = "1 namespace, 10000 pods: 100 RS x 100 pods, steady (no writes)";
    for (int i = 0; i < 100; ++i) {
      RsSpec r = SteadyRs("default", i, 100);
      c->cluster.AddRs(r);
      for (int j = 0; j < 100; ++j) c->cluster.AddPod(PodOf(r, j));
    }
    out.push_back(std::move(c));
  }
  {
    auto c = std::make_unique<Case>();
    c->name = "ns100-rs100";
    c->description = "100 namespaces x 1 RS x 100 pods (10000 pods), steady: the list is the RS's namespace only";
    for (int i = 0; i < 100; ++i) {
      RsSpec r = SteadyRs("ns-" + std::to_string(i), i, 100);
      c->cluster.AddRs(r);
      for (int j = 0; j < 100; ++j) c->cluster.AddPod(PodOf(r, j));
    }
    out.push_back(std::move(c));
  }
  {
    auto c = std::make_unique<Case>();
    c->name = "ns10k-rs10-up2";
    c->description = "as ns10k-rs10, every RS 2 pods short: 2 creates + 2 events per reconcile (dropped by the host)";
    for (int i = 0; i < 1000; ++i) {
      RsSpec r = SteadyRs("default", i, 10);
      r.replicas = 12;
      c->cluster.AddRs(r);
      for (int j = 0; j < 10; ++j) c->cluster.AddPod(PodOf(r, j));
    }
    out.push_back(std::move(c));
  }
  for (auto& c : out) c->cluster.Seal();
  return out;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

// Runs `iters` reconciles round-robin over the case's ReplicaSets; returns ns per reconcile.
double TimeRun(const Case& c, bool dsl, ReconcileFn fn, int64_t iters, int64_t* writes) {
  FakeHost host(&c.cluster, false);
  const auto& rses = c.cluster.replicasets;
  auto t0 = Clock::now();
  for (int64_t i = 0; i < iters; ++i) {
    const Value& rs = *rses[static_cast<size_t>(i) % rses.size()];
    if (dsl) ReconcileDsl(fn, &host, rs, kNow, nullptr);
    else ReconcileCpp(&host, rs, kNow);
  }
  double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
  if (writes) *writes = host.writes + host.events;
  return ns / static_cast<double>(iters);
}

// What list(Pod, namespace: ns) costs the DSL before any rc code runs: the runtime's EffectList
// deep-copies every listed object into the call's arena (rc_list_push). ns per reconcile.
double TimeListCopy(const Case& c, int64_t iters) {
  FakeHost host(&c.cluster, false);
  const auto& rses = c.cluster.replicasets;
  auto t0 = Clock::now();
  for (int64_t i = 0; i < iters; ++i) {
    const Value& rs = *rses[static_cast<size_t>(i) % rses.size()];
    Alloc a;
    Value out(rapidjson::kArrayType);
    auto items = host.List("v1", "Pod", rs["metadata"]["namespace"].GetString(), nullptr, nullptr, nullptr);
    out.Reserve(static_cast<rapidjson::SizeType>(items.size()), a);
    for (const Value* p : items) {
      Value v;
      v.CopyFrom(*p, a);
      out.PushBack(v, a);
    }
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / static_cast<double>(iters);
}

}  // namespace

int main(int argc, char** argv) {
  std::string source = std::string(RC_SOURCE_DIR) + "/stdlib/controllers/replicaset.rc";
  int rounds = 5;
  double min_round_ms = 300;
  std::string only_case, only;
  double seconds = 10;
  int compile_rounds = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "reconcile_bench: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--source") source = next();
    else if (a == "--rounds") rounds = std::stoi(next());
    else if (a == "--min-round-ms") min_round_ms = std::stod(next());
    else if (a == "--case") only_case = next();
    else if (a == "--only") only = next();
    else if (a == "--seconds") seconds = std::stod(next());
    else if (a == "--compile-rounds") compile_rounds = std::stoi(next());
    else {
      std::cout << "usage: reconcile_bench [--source FILE] [--rounds N] [--min-round-ms MS] [--case NAME]\n"
                   "                       [--only dsl|cpp --seconds S] [--compile-rounds N]\n"
                   "cases: ns10k-rs10 ns10k-rs100 ns100-rs100 ns10k-rs10-up2\n";
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }

  std::ifstream in(source, std::ios::binary);
  if (!in) {
    std::cerr << "reconcile_bench: cannot read " << source << "\n";
    return 2;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto jit = rc::compiler::JitHost::Create();
  if (!jit.ok()) {
    std::cerr << "reconcile_bench: " << jit.status().ToString() << "\n";
    return 1;
  }
  rc::compiler::ControllerLoader loader(jit->get());
  rc::dsl::Diagnostics diags;
  auto t_compile = Clock::now();
  auto loaded = loader.Load({{source, text.str()}}, rc::compiler::BuiltinResourceSources(), "bench:replicaset", source, diags);
  double compile_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_compile).count();
  if (!loaded.ok()) {
    std::cerr << "reconcile_bench: " << loaded.status().message() << "\n";
    return 1;
  }
  ReconcileFn fn = nullptr;
  for (auto& c : loaded->controllers) {
    if (c.name == "ReplicaSetController") fn = c.reconcile;
  }
  if (!fn) {
    std::cerr << "reconcile_bench: " << source << " declares no ReplicaSetController\n";
    return 1;
  }
  std::cerr << "reconcile_bench: compiled " << source << " (with the built-in types) in " << compile_ms << " ms\n";

  if (compile_rounds > 0) {  // what a hot reload of this file costs, split into check and the rest
    std::vector<double> check_ms, load_ms;
    for (int i = 0; i < compile_rounds; ++i) {
      std::string edited = text.str() + "\n// edit " + std::to_string(i) + "\n";  // a new content hash: no cache hit
      rc::compiler::SourceList all = rc::compiler::BuiltinResourceSources();
      all.push_back({source, edited});
      rc::dsl::Diagnostics d1, d2;
      auto t0 = Clock::now();
      auto program = rc::compiler::CheckSources(all, d1);
      auto t1 = Clock::now();
      auto again = loader.Load({{source, edited}}, rc::compiler::BuiltinResourceSources(), "bench:replicaset", source, d2);
      auto t2 = Clock::now();
      if (!program || d1.HasErrors() || !again.ok() || !again->compiled) {
        std::cerr << "reconcile_bench: recompile " << i << " failed or was cached\n";
        return 1;
      }
      check_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      load_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    }
    double c = Median(check_ms), l = Median(load_ms);
    std::printf("Recompiling %s (median of %d): ControllerLoader::Load %.1f ms, of which parse + type-check of it and the %zu "
                "built-in resource files %.1f ms, codegen + O2 + JIT + lookup %.1f ms.\n\n",
                source.c_str(), compile_rounds, l, rc::compiler::BuiltinResourceSources().size(), c, l - c);
    std::printf("RESULT {\"tool\":\"reconcile_bench\",\"case\":\"recompile\",\"load_ms\":%.1f,\"check_ms\":%.1f}\n", l, c);
    std::fflush(stdout);
  }

  if (!CheckEquivalence(fn)) {
    std::cerr << "reconcile_bench: the hand-written baseline does not do what the DSL controller does; not timing\n";
    return 1;
  }

  auto cases = Cases();
  if (!only.empty()) {  // a long loop of one variant, for perf record / callgrind
    for (auto& c : cases) {
      if (!only_case.empty() && c->name != only_case) continue;
      double per = TimeRun(*c, only == "dsl", fn, 10, nullptr);
      int64_t iters = std::max<int64_t>(1, static_cast<int64_t>(seconds * 1e9 / per));
      double ns = TimeRun(*c, only == "dsl", fn, iters, nullptr);
      std::printf("%s %s: %.0f ns/reconcile over %lld reconciles\n", c->name.c_str(), only.c_str(), ns,
                  static_cast<long long>(iters));
      break;
    }
    return 0;
  }

  std::printf("| case | pods | RS | pods listed per reconcile | DSL ns/reconcile | C++ ns/reconcile | DSL / C++ | of the DSL: list() copy alone |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  std::vector<std::string> results;
  for (auto& c : cases) {
    if (!only_case.empty() && c->name != only_case) continue;
    // Calibrate: enough reconciles for min_round_ms of the slower variant (DSL, usually).
    double probe = std::max(TimeRun(*c, true, fn, 5, nullptr), TimeRun(*c, false, fn, 5, nullptr));
    int64_t iters = std::max<int64_t>(5, static_cast<int64_t>(min_round_ms * 1e6 / probe));
    std::vector<double> dsl_ns, cpp_ns, ratios, copy_ns;
    int64_t dsl_writes = 0, cpp_writes = 0;
    for (int r = 0; r < rounds; ++r) {
      double d = TimeRun(*c, true, fn, iters, &dsl_writes);
      double p = TimeRun(*c, false, fn, iters, &cpp_writes);
      copy_ns.push_back(TimeListCopy(*c, iters));
      dsl_ns.push_back(d);
      cpp_ns.push_back(p);
      ratios.push_back(d / p);
    }
    if (dsl_writes != cpp_writes) {
      std::cerr << "reconcile_bench: " << c->name << ": DSL wrote " << dsl_writes << ", C++ " << cpp_writes << "\n";
      return 1;
    }
    double d = Median(dsl_ns), p = Median(cpp_ns);
    const auto& first_rs = *c->cluster.replicasets.front();
    size_t listed = c->cluster.pod_lists.at(first_rs["metadata"]["namespace"].GetString()).size();
    double cp = Median(copy_ns);
    std::printf("| %s: %s | %zu | %zu | %zu | %.0f | %.0f | %.2fx | %.0f (%.0f %%) |\n", c->name.c_str(), c->description.c_str(),
                c->cluster.PodCount(), c->cluster.replicasets.size(), listed, d, p, d / p, cp, 100 * cp / d);
    std::fflush(stdout);
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "RESULT {\"tool\":\"reconcile_bench\",\"case\":\"%s\",\"pods\":%zu,\"replicasets\":%zu,\"listed\":%zu,"
                  "\"rounds\":%d,\"reconciles_per_round\":%lld,\"dsl_ns\":%.1f,\"cpp_ns\":%.1f,\"ratio\":%.3f,"
                  "\"ratio_min\":%.3f,\"ratio_max\":%.3f,\"list_copy_ns\":%.1f,\"writes_per_round\":%lld,\"compile_ms\":%.1f}",
                  c->name.c_str(), c->cluster.PodCount(), c->cluster.replicasets.size(), listed, rounds,
                  static_cast<long long>(iters), d, p, d / p, *std::min_element(ratios.begin(), ratios.end()),
                  *std::max_element(ratios.begin(), ratios.end()), cp, static_cast<long long>(dsl_writes), compile_ms);
    results.push_back(buf);
  }
  for (auto& r : results) std::printf("%s\n", r.c_str());
  return 0;
}
