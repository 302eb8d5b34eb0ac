// `rcc test`: runs reconcilers against the fake cluster, with a simulated controller manager
// (work queue, enqueue rules, retries, resync) and the perturbations.
#include "rc/compiler/rcctest/runner.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "rc/compiler/codegen.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/program.h"
#include "rc/compiler/resource_loader.h"
#include "rc/dsl/source.h"
#include "rc/stdlib/runtime.h"

namespace rc::rcctest {

namespace {

using V = rapidjson::Value;
namespace fs = std::filesystem;

const V* Member(const V* v, const char* name) {
  if (!v || !v->IsObject()) return nullptr;
  auto it = v->FindMember(name);
  return it == v->MemberEnd() ? nullptr : &it->value;
}
std::string Str(const V* v) { return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : ""; }
std::string Meta(const V& obj, const char* field) { return Str(Member(Member(&obj, "metadata"), field)); }
std::string KeyOf(const V& obj) {
  std::string ns = Meta(obj, "namespace");
  return ns.empty() ? Meta(obj, "name") : ns + "/" + Meta(obj, "name");
}
std::string At(const std::string& file, const Pos& p) { return file + ":" + std::to_string(p.line); }
std::string Truncate(std::string s, size_t n = 400) {
  if (s.size() > n) s = s.substr(0, n) + "...";
  return s;
}

struct WatchFn {
  std::string type;
  void* fn = nullptr;
};

struct Controller {
  std::string name;
  std::string primary_kind;
  std::string primary_api_version;
  std::set<std::string> owns;
  std::vector<WatchFn> watches;
  std::set<std::string> watch_own;  // `watches T` without a mapping: T's own key
  void* reconcile = nullptr;
};

struct ReconcileCall {
  void* fn;
  rc_ctx* ctx;
  const rc_value* obj;
};
void CallReconcile(void* d) {
  auto* c = static_cast<ReconcileCall*>(d);
  reinterpret_cast<void (*)(rc_ctx*, const rc_value*)>(c->fn)(c->ctx, c->obj);
}
struct MapperCall {
  void* fn;
  rc_ctx* ctx;
  const rc_value* obj;
  rc_value* result;
};
void CallMapper(void* d) {
  auto* c = static_cast<MapperCall*>(d);
  c->result = reinterpret_cast<rc_value* (*)(rc_ctx*, const rc_value*)>(c->fn)(c->ctx, c->obj);
}

// One run of a test (baseline or one perturbation).
struct Scenario {
  Perturbation perturbation;
  std::unique_ptr<FakeCluster> cluster;
  std::set<std::string> started;  // controllers whose informers have listed once
  std::map<std::pair<std::string, std::string>, int64_t> timed;  // (controller, key) -> due (unix seconds)
  std::vector<std::string> errors;       // reconcile failures (not crashes)
  bool stale_next = false;
  State stale_snapshot;
  int events_seen = 0;
  bool missed_fired = false;
  bool crash_fired = false;
  int max_writes = 0;  // the most state-changing writes one reconcile made
  int reconciles = 0;  // reconciles run (of existing primaries)
  int failures = 0;    // of which failed (not counting crashes)
  size_t actions_mark = 0;  // actions before this index were checked by an expect step
  std::string missed_detail;
};

}  // namespace

std::string Perturbation::Name() const {
  switch (kind) {
    case Kind::kNone: return "";
    case Kind::kStaleCache: return "stale-cache";
    case Kind::kMissedEvent: return n == 1 ? "missed-event" : "missed-event: " + std::to_string(n);
    case Kind::kCrashAfter: return n == 0 ? "crash-after: each" : "crash-after: " + std::to_string(n);
  }
  return "";
}

bool SubsetMatch(const V& want, const V* have, const std::string& path, std::string* why) {
  auto fail = [&](const std::string& m) {
    if (why) *why = (path.empty() ? "the object" : path) + ": " + m;
    return false;
  };
  if (want.IsNull()) {
    // omitempty: to Kubernetes clients an empty list or map is the same as none.
    if (!have || have->IsNull()) return true;
    if ((have->IsArray() && have->Empty()) || (have->IsObject() && have->MemberCount() == 0)) return true;
    return fail("expected absent, found " + Truncate(Canonical(*have), 120));
  }
  if (!have) return fail("missing (expected " + Truncate(Canonical(want), 120) + ")");
  if (want.IsObject()) {
    if (!have->IsObject()) return fail("expected a mapping, found " + Truncate(Canonical(*have), 120));
    for (auto& m : want.GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      const V* sub = Member(have, key.c_str());
      if (!SubsetMatch(m.value, sub, path.empty() ? key : path + "." + key, why)) return false;
    }
    return true;
  }
  if (want.IsArray()) {
    if (!have->IsArray()) return fail("expected a list, found " + Truncate(Canonical(*have), 120));
    if (want.Size() != have->Size()) {
      return fail("expected " + std::to_string(want.Size()) + " items, found " + std::to_string(have->Size()) + ": " +
                  Truncate(Canonical(*have), 200));
    }
    for (rapidjson::SizeType i = 0; i < want.Size(); ++i) {
      if (!SubsetMatch(want[i], &(*have)[i], path + "[" + std::to_string(i) + "]", why)) return false;
    }
    return true;
  }
  if (want.IsNumber() && have->IsNumber()) {
    if (want.GetDouble() == have->GetDouble()) return true;
    return fail("expected " + Canonical(want) + ", found " + Canonical(*have));
  }
  if (want == *have) return true;
  // A number written as a string in one place and as a number in the other ("1" vs 1) still
  // differs: JSON types matter to clients.
  return fail("expected " + Canonical(want) + ", found " + Truncate(Canonical(*have), 120));
}

std::vector<std::string> NormalizedState(const FakeCluster& cluster) {
  std::map<std::string, std::string> by_uid;
  for (auto& [key, obj] : cluster.state()) {
    by_uid[Meta(*obj, "uid")] = std::get<0>(key) + "/" + std::get<1>(key) + "/" + std::get<2>(key);
  }
  std::vector<std::string> out;
  for (auto& [key, obj] : cluster.state()) {
    Doc d;
    DeepCopy(*obj, d, d.GetAllocator());
    auto& a = d.GetAllocator();
    if (d.HasMember("metadata") && d["metadata"].IsObject()) {
      V& meta = d["metadata"];
      for (const char* f : {"uid", "resourceVersion", "creationTimestamp", "managedFields"}) meta.RemoveMember(f);
      std::string gen = Str(Member(&meta, "generateName"));
      std::string name = Str(Member(&meta, "name"));
      if (!gen.empty() && name.rfind(gen, 0) == 0) meta["name"].SetString((gen + "*").c_str(), a);
      if (meta.HasMember("ownerReferences") && meta["ownerReferences"].IsArray()) {
        for (auto& r : meta["ownerReferences"].GetArray()) {
          if (!r.IsObject() || !r.HasMember("uid")) continue;
          auto it = by_uid.find(Str(&r["uid"]));
          r["uid"].SetString(it == by_uid.end() ? "<gone>" : it->second.c_str(), a);
        }
      }
    }
    out.push_back(Canonical(d));
  }
  std::sort(out.begin(), out.end());
  return out;
}

class Suite::Impl {
 public:
  std::unique_ptr<compiler::JitHost> jit;
  std::unique_ptr<compiler::Program> program;
  std::vector<schema::ResourceSchema> schemas;
  std::vector<ResourceType> types;
  std::map<std::string, Controller> controllers;
  std::vector<compiler::FunctionHandle> keep;  // code stays loaded

  // ---------- running ----------
  std::string Fail(const Expectation& e, const std::string& file, const std::string& m) {
    return At(file, e.pos) + ": " + m;
  }

  const Controller* Resolve(const TestCase& t, const std::string& step_controller, std::string* error) {
    std::string name = step_controller.empty() ? t.controller : step_controller;
    if (name.empty()) {
      if (controllers.size() == 1) return &controllers.begin()->second;
      *error = controllers.empty() ? "the .rc files declare no controller"
                                   : "the .rc files declare several controllers; say which with controller:";
      return nullptr;
    }
    auto it = controllers.find(name);
    if (it == controllers.end()) {
      std::vector<std::string> names;
      for (auto& [n, c] : controllers) names.push_back(n);
      std::string hint = dsl::ClosestMatch(name, names);
      *error = "no controller named '" + name + "'" + (hint.empty() ? "" : "; did you mean '" + hint + "'?");
      return nullptr;
    }
    return &it->second;
  }

  struct ReconcileResult {
    bool ran = false;
    bool ok = true;
    bool crashed = false;
    std::string error;
    int64_t requeue_ns = -1;
    int64_t changes = 0;
  };

  ReconcileResult Reconcile(Scenario& sc, const Controller& c, const std::string& key) {
    ReconcileResult r;
    FakeCluster& cluster = *sc.cluster;
    if (sc.perturbation.kind == Perturbation::Kind::kStaleCache && sc.stale_next) {
      cluster.SetView(sc.stale_snapshot);
    }
    std::string ns, name = key;
    if (auto slash = key.find('/'); slash != std::string::npos) {
      ns = key.substr(0, slash);
      name = key.substr(slash + 1);
    }
    const rc_value* obj = cluster.Get(c.primary_api_version, c.primary_kind, name, ns);
    if (!obj) {
      cluster.ClearView();
      cluster.ReleasePins();
      return r;
    }
    r.ran = true;
    ++sc.reconciles;
    int64_t before = cluster.changes();
    int writes = 0;
    bool crash = sc.perturbation.kind == Perturbation::Kind::kCrashAfter && !sc.crash_fired;
    int crash_at = sc.perturbation.n;
    cluster.after_write = [&]() -> Status {
      ++writes;
      if (crash && writes == crash_at) {
        sc.crash_fired = true;
        r.crashed = true;
        return Status::Unavailable("rcc test: the controller crashed after write " + std::to_string(writes) +
                                   " (crash-after perturbation)");
      }
      return Status::Ok();
    };
    rc_ctx ctx;
    ctx.host = &cluster;
    ctx.now_seconds = cluster.now();
    ReconcileCall call{c.reconcile, &ctx, obj};
    Status st = rt::Invoke(&ctx, CallReconcile, &call);
    cluster.after_write = nullptr;
    if (!st.ok() && !r.crashed) {
      r.ok = false;
      r.error = st.message();
      ++sc.failures;
    }
    if (st.ok()) r.requeue_ns = ctx.requeue_after_ns;
    cluster.ClearView();
    cluster.ReleasePins();
    r.changes = cluster.changes() - before;
    sc.max_writes = std::max(sc.max_writes, writes);
    sc.stale_next = r.changes > 0;
    if (sc.stale_next) sc.stale_snapshot = cluster.before_last_write();
    return r;
  }

  // Keys `c` enqueues for a watch event (the runtime's enqueue rules).
  std::vector<std::string> KeysFor(Scenario& sc, const Controller& c, const WatchEvent& ev) {
    std::vector<std::string> keys;
    const V& obj = *ev.object;
    std::string kind = Str(Member(&obj, "kind"));
    if (kind == c.primary_kind) keys.push_back(KeyOf(obj));
    if (c.owns.count(kind)) {
      const V* refs = Member(Member(&obj, "metadata"), "ownerReferences");
      if (refs && refs->IsArray()) {
        for (auto& ref : refs->GetArray()) {
          const V* ctl = Member(&ref, "controller");
          if (!ctl || !ctl->IsBool() || !ctl->GetBool() || Str(Member(&ref, "kind")) != c.primary_kind) continue;
          const ResourceType* pt = sc.cluster->TypeOfKind(c.primary_kind);
          std::string ns = Meta(obj, "namespace");
          std::string name = Str(Member(&ref, "name"));
          keys.push_back(pt && pt->namespaced && !ns.empty() ? ns + "/" + name : name);
        }
      }
    }
    if (c.watch_own.count(kind)) keys.push_back(KeyOf(obj));
    for (auto& w : c.watches) {
      if (w.type != kind) continue;
      rc_ctx ctx;
      ctx.host = sc.cluster.get();
      ctx.now_seconds = sc.cluster->now();
      MapperCall call{w.fn, &ctx, &obj, nullptr};
      Status st = rt::Invoke(&ctx, CallMapper, &call);
      if (!st.ok()) {
        sc.errors.push_back("watch mapping for " + kind + " " + KeyOf(obj) + ": " + st.message());
      } else if (call.result && call.result->IsArray()) {
        for (auto& k : call.result->GetArray()) if (k.IsString()) keys.push_back(k.GetString());
      }
      sc.cluster->ReleasePins();
    }
    return keys;
  }

  using Item = std::pair<const Controller*, std::string>;  // a controller's queued key

  template <typename Push>
  void Dispatch(Scenario& sc, const std::vector<const Controller*>& cs, Push push) {
    for (const WatchEvent& ev : sc.cluster->TakeEvents()) {
      ++sc.events_seen;
      if (sc.perturbation.kind == Perturbation::Kind::kMissedEvent && !sc.missed_fired && sc.events_seen == sc.perturbation.n) {
        sc.missed_fired = true;
        continue;  // the informers never deliver this one
      }
      for (const Controller* c : cs) {
        for (auto& k : KeysFor(sc, *c, ev)) push(Item{c, k});
      }
    }
  }

  // The controller manager until converged: one work queue per controller, fed by the enqueue
  // rules (every event reaches every controller); failed keys are retried; then resync rounds
  // (every primary of every controller) until one changes nothing.
  std::string Converge(Scenario& sc, const std::vector<const Controller*>& cs, int max, bool kubelet) {
    FakeCluster& cluster = *sc.cluster;
    if (max <= 0) max = 500;
    std::deque<Item> queue;
    std::set<Item> queued;
    auto push = [&](const Item& item) {
      if (queued.insert(item).second) queue.push_back(item);
    };
    auto enqueue_all = [&](const Controller* c) {
      for (auto& obj : cluster.OfKind(c->primary_kind)) push(Item{c, KeyOf(*obj)});
    };
    auto describe = [&](const Item& item) { return cs.size() > 1 ? item.first->name + " " + item.second : item.second; };
    std::vector<const Controller*> starting;
    for (const Controller* c : cs) if (sc.started.insert(c->name).second) starting.push_back(c);
    if (!starting.empty()) {
      // Informers start: the initial list covers what happened before.
      if (sc.started.size() == starting.size()) cluster.TakeEvents();
      for (const Controller* c : starting) enqueue_all(c);
    }
    Dispatch(sc, cs, push);
    for (auto it = sc.timed.begin(); it != sc.timed.end();) {
      const Controller* owner = nullptr;
      for (const Controller* c : cs) if (c->name == it->first.first) owner = c;
      if (owner && it->second <= cluster.now()) {
        push(Item{owner, it->first.second});
        it = sc.timed.erase(it);
      } else {
        ++it;
      }
    }
    int reconciles = 0;
    std::map<Item, int> failures;
    auto drain = [&]() -> std::string {
      while (!queue.empty()) {
        if (++reconciles > max) {
          std::string pending;
          for (size_t i = 0; i < queue.size() && i < 5; ++i) pending += (i ? ", " : "") + describe(queue[i]);
          return "did not converge within " + std::to_string(max) + " reconciles (still queued: " + pending + ")";
        }
        Item item = queue.front();
        queue.pop_front();
        queued.erase(item);
        ReconcileResult r = Reconcile(sc, *item.first, item.second);
        if (kubelet) cluster.Kubelet();
        Dispatch(sc, cs, push);
        if (r.crashed) {
          // A fresh process: lists every primary again; nothing is remembered.
          sc.timed.clear();
          for (const Controller* c : cs) enqueue_all(c);
          continue;
        }
        if (!r.ran) continue;
        if (!r.ok) {
          sc.errors.push_back(describe(item) + ": " + r.error);
          if (++failures[item] > 10) return "reconcile of " + describe(item) + " keeps failing: " + r.error;
          push(item);  // back-off elapses in no time here
          continue;
        }
        failures.erase(item);
        if (r.requeue_ns >= 0) {
          sc.timed[{item.first->name, item.second}] = cluster.now() + (r.requeue_ns + 999999999) / 1000000000;
        }
      }
      return "";
    };
    for (int round = 0;; ++round) {
      if (kubelet && cluster.Kubelet()) Dispatch(sc, cs, push);
      if (std::string e = drain(); !e.empty()) return e;
      int64_t before = cluster.changes();
      for (const Controller* c : cs) enqueue_all(c);  // periodic resync
      if (std::string e = drain(); !e.empty()) return e;
      if (cluster.changes() == before) return "";
      if (round > 50) return "did not converge: every resync round still changes the cluster";
    }
  }

  std::string DescribeObjects(const std::vector<DocPtr>& objs) {
    std::string out;
    for (size_t i = 0; i < objs.size() && i < 6; ++i) out += (i ? ", " : "") + KeyOf(*objs[i]);
    if (objs.size() > 6) out += ", ...";
    return "[" + out + "]";
  }

  std::string CheckObjects(const Expectation& e, const std::string& file, FakeCluster& cluster) {
    for (const ObjectExpectation& x : e.objects) {
      if (!cluster.TypeOfKind(x.kind)) {
        std::vector<std::string> kinds;
        for (auto& t : types) kinds.push_back(t.kind);
        std::string hint = dsl::ClosestMatch(x.kind, kinds);
        return At(file, x.pos) + ": no resource type with kind '" + x.kind + "' is loaded" +
               (hint.empty() ? "" : "; did you mean '" + hint + "'?");
      }
      std::vector<DocPtr> selected;
      for (auto& obj : cluster.OfKind(x.kind)) {
        if (!x.ns.empty() && Meta(*obj, "namespace") != x.ns) continue;
        if (!x.name.empty() && Meta(*obj, "name") != x.name) continue;
        if (x.labels) {
          const V* labels = Member(Member(obj.get(), "metadata"), "labels");
          if (!SubsetMatch(*x.labels, labels, "", nullptr)) continue;
        }
        if (!x.owner.empty()) {
          std::string okind = x.owner.substr(0, x.owner.find('/'));
          std::string oname = x.owner.substr(x.owner.find('/') + 1);
          bool owned = false;
          const V* refs = Member(Member(obj.get(), "metadata"), "ownerReferences");
          if (refs && refs->IsArray()) {
            for (auto& r : refs->GetArray()) {
              const V* ctl = Member(&r, "controller");
              if (ctl && ctl->IsBool() && ctl->GetBool() && Str(Member(&r, "kind")) == okind && Str(Member(&r, "name")) == oname) owned = true;
            }
          }
          if (!owned) continue;
        }
        if (x.deleting) {
          bool deleting = Member(Member(obj.get(), "metadata"), "deletionTimestamp") != nullptr;
          if (deleting != *x.deleting) continue;
        }
        if (x.where && !SubsetMatch(*x.where, obj.get(), "", nullptr)) continue;
        selected.push_back(obj);
      }
      std::string what = x.kind;
      if (!x.ns.empty() && !x.name.empty()) what += " " + x.ns + "/" + x.name;
      else if (!x.name.empty()) what += " " + x.name;
      else if (!x.ns.empty()) what += " objects in " + x.ns;
      else what += " objects";
      if (x.labels) what += " with labels " + Canonical(*x.labels);
      if (!x.owner.empty()) what += " owned by " + x.owner;
      if (x.deleting) what += *x.deleting ? " being deleted" : " not being deleted";
      if (x.where) what += " where " + Truncate(Canonical(*x.where), 120);
      if (x.count && static_cast<int64_t>(selected.size()) != *x.count) {
        if (*x.count == 0) return At(file, x.pos) + ": expected no " + what + ", found " + DescribeObjects(selected);
        return At(file, x.pos) + ": expected " + std::to_string(*x.count) + " " + what + ", found " +
               std::to_string(selected.size()) + " " + DescribeObjects(selected);
      }
      if (!x.count && selected.empty()) return At(file, x.pos) + ": expected " + what + ", found none";
      if (x.match) {
        for (auto& obj : selected) {
          std::string why;
          if (!SubsetMatch(*x.match, obj.get(), "", &why)) return At(file, x.pos) + ": " + x.kind + " " + KeyOf(*obj) + ": " + why;
        }
      }
    }
    return "";
  }

  static std::string DescribeAction(const Action& a) {
    std::string s = a.verb + " " + a.kind + " " + (a.ns.empty() ? a.name : a.ns + "/" + a.name);
    if (a.verb == "emit") s += " " + a.event_type + " " + a.reason + " \"" + a.message + "\"";
    if (!a.ok) s += " (failed: " + a.error + ")";
    return s;
  }

  std::string CheckActions(const Expectation& e, const std::string& file, const std::vector<Action>& actions,
                           size_t from) {
    for (const ActionExpectation& x : e.actions) {
      int64_t n = 0;
      for (size_t i = from; i < actions.size(); ++i) {
        const Action& a = actions[i];
        if (!x.verb.empty() && a.verb != x.verb) continue;
        if (!x.kind.empty() && a.kind != x.kind) continue;
        if (!x.ns.empty() && a.ns != x.ns) continue;
        if (!x.name.empty() && a.name != x.name) continue;
        if (!x.name_prefix.empty() && a.name.rfind(x.name_prefix, 0) != 0) continue;
        if (!x.reason.empty() && a.reason != x.reason) continue;
        if (!x.event_type.empty() && a.event_type != x.event_type) continue;
        if (!x.message.empty() && a.message.find(x.message) == std::string::npos) continue;
        bool ok_wanted = x.ok.value_or(true);
        if (a.ok != ok_wanted) continue;
        ++n;
      }
      bool good = x.count ? n == *x.count : n > 0;
      if (good) continue;
      std::string what = x.verb.empty() ? "action" : x.verb;
      if (!x.kind.empty()) what += " " + x.kind;
      if (!x.name.empty()) what += " " + x.name;
      if (!x.name_prefix.empty()) what += " " + x.name_prefix + "*";
      if (!x.reason.empty()) what += " reason " + x.reason;
      if (!x.message.empty()) what += " message ~\"" + x.message + "\"";
      std::string recorded;
      size_t shown = 0;
      for (size_t i = from; i < actions.size() && shown < 12; ++i, ++shown) recorded += (shown ? "; " : "") + DescribeAction(actions[i]);
      if (actions.size() - from > 12) recorded += "; ...";
      std::string expected = x.count ? std::to_string(*x.count) : "at least one";
      return At(file, x.pos) + ": expected " + expected + " " + what + ", found " + std::to_string(n) +
             " (recorded: " + (recorded.empty() ? "none" : recorded) + ")";
    }
    return "";
  }

  std::string CheckExpect(Scenario& sc, const Expectation& e, const std::string& file, bool baseline, size_t actions_from) {
    if (std::string m = CheckObjects(e, file, *sc.cluster); !m.empty()) return m;
    if (baseline) {
      if (std::string m = CheckActions(e, file, sc.cluster->actions(), actions_from); !m.empty()) return m;
    }
    return "";
  }

  // Runs the test once under `p`. Returns the failure ("" when it passed).
  std::string Execute(const TestCase& t, const Perturbation& p, Scenario& sc) {
    sc.perturbation = p;
    sc.cluster = std::make_unique<FakeCluster>(types);
    FakeCluster& cluster = *sc.cluster;
    cluster.set_now(t.now);
    for (const V* obj : t.objects) {
      if (Status st = cluster.Put(*obj); !st.ok()) return At(t.file, t.pos) + ": initial object: " + st.message();
    }
    bool baseline = p.kind == Perturbation::Kind::kNone;
    for (const Step& s : t.steps) {
      std::string err;
      switch (s.kind) {
        case Step::Kind::kConverge: {
          std::vector<const Controller*> cs;
          std::vector<std::string> names = s.controllers;
          if (names.empty() && !s.controller.empty()) names = {s.controller};
          if (names.empty()) names = t.controllers;
          if (names.empty()) names = {""};
          for (const std::string& n : names) {
            const Controller* c = Resolve(t, n, &err);
            if (!c) return At(t.file, s.pos) + ": " + err;
            cs.push_back(c);
          }
          if (std::string m = Converge(sc, cs, s.max, s.kubelet); !m.empty()) return At(t.file, s.pos) + ": " + m;
          break;
        }
        case Step::Kind::kKubelet:
          cluster.Kubelet();
          break;
        case Step::Kind::kReconcile: {
          const Controller* c = Resolve(t, s.controller, &err);
          if (!c) return At(t.file, s.pos) + ": " + err;
          int limit = s.until_converged ? (s.max > 0 ? s.max : 20) : s.times;
          bool converged = false;
          for (int i = 0; i < limit; ++i) {
            ReconcileResult r = Reconcile(sc, *c, s.key);
            if (!r.ran) {
              if (i == 0 && !r.crashed) return At(t.file, s.pos) + ": there is no " + c->primary_kind + " " + s.key + " to reconcile";
              break;
            }
            if (r.crashed) {
              ++limit;  // the fresh reconcile after the restart
              continue;
            }
            if (!r.ok) sc.errors.push_back(s.key + ": " + r.error);
            if (s.until_converged && r.ok && r.changes == 0) {
              converged = true;
              break;
            }
          }
          if (s.until_converged && !converged) {
            return At(t.file, s.pos) + ": " + s.key + " did not converge within " + std::to_string(limit) +
                   " reconciles (each one still changed the cluster)";
          }
          break;
        }
        case Step::Kind::kPut:
          for (const V* obj : s.objects) {
            if (Status st = cluster.Put(*obj); !st.ok()) return At(t.file, s.pos) + ": apply: " + st.message();
          }
          break;
        case Step::Kind::kDelete: {
          Status st = cluster.DeleteObject(s.target_kind, s.target_ns, s.target_name);
          if (!st.ok()) return At(t.file, s.pos) + ": delete: " + st.message();
          break;
        }
        case Step::Kind::kAdvance:
          cluster.set_now(cluster.now() + s.seconds);
          break;
        case Step::Kind::kExpect: {
          if (std::string m = CheckErrors(sc, s.expect, t.file, baseline); !m.empty()) return m;
          if (std::string m = CheckExpect(sc, s.expect, t.file, baseline, sc.actions_mark); !m.empty()) return m;
          sc.actions_mark = cluster.actions().size();
          sc.errors.clear();
          break;
        }
      }
    }
    if (std::string m = CheckErrors(sc, t.expect, t.file, baseline); !m.empty()) return m;
    if (std::string m = CheckExpect(sc, t.expect, t.file, baseline, 0); !m.empty()) return m;
    if (p.kind == Perturbation::Kind::kCrashAfter && !sc.crash_fired) {
      return At(t.file, t.pos) + ": crash-after: " + std::to_string(p.n) + " never fired (no reconcile made " +
             std::to_string(p.n) + " writes)";
    }
    if (p.kind == Perturbation::Kind::kMissedEvent && !sc.missed_fired) {
      return At(t.file, t.pos) + ": " + p.Name() + " never fired (only " + std::to_string(sc.events_seen) +
             " watch events reached the controller; use converge steps)";
    }
    return "";
  }

  std::string CheckErrors(Scenario& sc, const Expectation& e, const std::string& file, bool baseline) {
    if (e.error) {
      for (auto& m : sc.errors) if (m.find(*e.error) != std::string::npos) return "";
      return At(file, e.pos) + ": expected a reconcile to fail with \"" + *e.error + "\", " +
             (sc.errors.empty() ? std::string("none failed") : "got: " + Truncate(sc.errors.front(), 200));
    }
    if (baseline && !sc.errors.empty()) {
      return At(file, e.pos) + ": reconcile failed: " + Truncate(sc.errors.front(), 300) +
             " (add expect.error when a failure is intended)";
    }
    return "";
  }
};

Suite::~Suite() = default;

std::vector<std::string> Suite::controller_names() const {
  std::vector<std::string> out;
  for (auto& [n, c] : impl_->controllers) out.push_back(n);
  return out;
}

Result<std::unique_ptr<Suite>> Suite::Load(const std::vector<std::string>& rc_files,
                                           const std::vector<std::string>& import_paths) {
  auto impl = std::make_unique<Impl>();
  dsl::Diagnostics diags;
  compiler::CheckOptions options;
  options.import_paths = import_paths;
  impl->program = compiler::CheckFiles(rc_files, diags, options);
  if (diags.HasErrors()) return Status::InvalidArgument(diags.FormatText());
  auto jit = compiler::JitHost::Create();
  if (!jit.ok()) return jit.status();
  impl->jit = std::move(*jit);

  // Resource types: every loaded file that declares resources (defaults and validation compiled).
  compiler::SourceList resource_sources;
  for (auto& m : impl->program->modules) {
    if (m->resources.empty() || m->file->path.rfind("<prelude>", 0) == 0) continue;
    resource_sources.push_back({m->file->path, std::string(m->file->text)});
  }
  if (!resource_sources.empty()) {
    compiler::ResourceLoader loader(impl->jit.get());
    dsl::Diagnostics rdiags;
    auto loaded = loader.Load(resource_sources, {}, "rcctest.resources", rdiags);
    if (!loaded.ok()) return Status::InvalidArgument(rdiags.FormatText());
    impl->schemas = std::move(loaded->schemas);
  }
  for (auto& s : impl->schemas) {
    ResourceType t;
    t.group = s.group;
    t.api_version = s.group.empty() ? s.version : s.group + "/" + s.version;
    t.kind = s.kind;
    t.plural = s.plural;
    t.namespaced = s.namespaced;
    t.has_status = s.has_status;
    impl->types.push_back(t);
  }
  for (size_t i = 0; i < impl->types.size(); ++i) impl->types[i].schema = &impl->schemas[i];

  // Controllers: only the files that declare them get code.
  std::set<std::string> own;
  for (auto& c : impl->program->controllers) own.insert(c.decl->range.file->path);
  compiler::GeneratedModule gen = compiler::GenerateModule(*impl->program, "rcctest.controllers", &own);
  auto mappers = gen.watch_mappers;
  auto names = gen.controllers;
  Status st = impl->jit->AddOrReplace("rcctest.controllers", impl->program->content_hash, std::move(gen));
  if (!st.ok()) return st;
  for (auto& info : impl->program->controllers) {
    if (std::find(names.begin(), names.end(), info.name) == names.end() || !info.primary) continue;
    Controller c;
    c.name = info.name;
    c.primary_kind = info.primary->name;
    for (auto& t : impl->types) if (t.kind == c.primary_kind) c.primary_api_version = t.api_version;
    for (auto* o : info.owns) c.owns.insert(o->name);
    auto h = impl->jit->Lookup("rcctest.controllers", "rc_reconcile_" + compiler::SymbolSafe(info.name));
    if (!h.ok()) return h.status();
    c.reconcile = h->address;
    impl->keep.push_back(*h);
    for (auto& w : info.decl->watches) {
      std::string type = w.type_name.substr(w.type_name.rfind('.') == std::string::npos ? 0 : w.type_name.rfind('.') + 1);
      if (!w.mapping) c.watch_own.insert(type);
    }
    for (auto& m : mappers) {
      if (m.controller != info.name) continue;
      auto mh = impl->jit->Lookup("rcctest.controllers", m.symbol);
      if (!mh.ok()) return mh.status();
      c.watches.push_back({m.type, mh->address});
      impl->keep.push_back(*mh);
    }
    impl->controllers[c.name] = std::move(c);
  }
  std::unique_ptr<Suite> suite(new Suite());
  suite->impl_ = std::move(impl);
  return suite;
}

namespace {

std::string Summary(const std::string& name, const Scenario& sc) {
  int64_t writes = 0;
  for (auto& a : sc.cluster->actions()) writes += a.verb != "emit" && a.ok;
  return name + ": " + std::to_string(sc.reconciles) + " reconciles, " + std::to_string(writes) + " writes, " +
         std::to_string(sc.failures) + " failed";
}

}  // namespace

Suite::Outcome Suite::Run(const TestCase& test) {
  Outcome out;
  Scenario base;
  std::string bm = impl_->Execute(test, Perturbation{}, base);
  if (base.cluster) out.runs.push_back(Summary("unperturbed", base));
  if (!bm.empty()) {
    out.ok = false;
    out.message = bm;
    return out;
  }
  std::vector<std::string> want = NormalizedState(*base.cluster);
  // crash-after: each = a crash after every K from 1 to the most writes a reconcile made.
  std::vector<Perturbation> runs;
  for (const Perturbation& p : test.perturbations) {
    if (p.kind == Perturbation::Kind::kCrashAfter && p.n == 0) {
      if (base.max_writes == 0) {
        out.ok = false;
        out.message = "[crash-after: each] " + At(test.file, test.pos) + ": no reconcile wrote anything";
        return out;
      }
      for (int k = 1; k <= std::min(base.max_writes, 25); ++k) runs.push_back({Perturbation::Kind::kCrashAfter, k});
    } else {
      runs.push_back(p);
    }
  }
  for (const Perturbation& p : runs) {
    Scenario sc;
    std::string m = impl_->Execute(test, p, sc);
    if (sc.cluster) out.runs.push_back(Summary(p.Name(), sc));
    if (m.empty()) {
      std::vector<std::string> got = NormalizedState(*sc.cluster);
      if (got != want) {
        std::vector<std::string> only_here, only_base;
        std::set_difference(got.begin(), got.end(), want.begin(), want.end(), std::back_inserter(only_here));
        std::set_difference(want.begin(), want.end(), got.begin(), got.end(), std::back_inserter(only_base));
        m = At(test.file, test.pos) + ": the final state differs from the unperturbed run";
        if (!only_here.empty()) m += "; only with the perturbation: " + Truncate(only_here.front(), 300);
        if (!only_base.empty()) m += "; only without: " + Truncate(only_base.front(), 300);
      }
    }
    if (!m.empty()) {
      out.ok = false;
      out.message = "[" + p.Name() + "] " + m;
      return out;
    }
  }
  return out;
}

namespace {

bool HasExt(const fs::path& p, std::initializer_list<const char*> exts) {
  for (const char* e : exts) if (p.extension() == e) return true;
  return false;
}

}  // namespace

int RunTestCommand(const std::vector<std::string>& paths, const std::vector<std::string>& import_paths,
                   std::ostream& out, std::ostream& err, const std::string& filter, bool verbose) {
  std::vector<std::string> rc_files, test_files;
  for (const std::string& p : paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto& e : fs::directory_iterator(p, ec)) {
        if (!e.is_regular_file()) continue;
        if (HasExt(e.path(), {".yaml", ".yml"})) found.push_back(e.path().string());
        else if (HasExt(e.path(), {".rc"})) rc_files.push_back(e.path().string());
      }
      std::sort(found.begin(), found.end());
      test_files.insert(test_files.end(), found.begin(), found.end());
    } else if (!fs::exists(p, ec)) {
      err << "rcc test: " << p << ": no such file or directory\n";
      return 2;
    } else if (HasExt(p, {".rc"})) {
      rc_files.push_back(p);
    } else if (HasExt(p, {".yaml", ".yml"})) {
      test_files.push_back(p);
    } else {
      err << "rcc test: " << p << ": expected .rc files, .yaml test files or directories\n";
      return 2;
    }
  }
  if (test_files.empty()) {
    err << "rcc test: no test files (.yaml) given\n";
    return 2;
  }
  int passed = 0, failed = 0;
  std::map<std::vector<std::string>, std::unique_ptr<Suite>> suites;
  std::map<std::vector<std::string>, std::string> suite_errors;
  for (const std::string& path : test_files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    if (!in) {
      err << "rcc test: cannot read " << path << "\n";
      ++failed;
      continue;
    }
    auto file = ParseTestFile(path, ss.str());
    if (!file.ok()) {
      err << file.status().message() << "\n";
      out << "FAIL " << path << ": the test file does not load (see the error above)\n";
      ++failed;
      continue;
    }
    std::vector<std::string> files = rc_files;
    files.insert(files.end(), file->rc_files.begin(), file->rc_files.end());
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    if (files.empty()) {
      err << path << ": no .rc files: pass them on the command line or list them under files:\n";
      out << "FAIL " << path << ": no controllers to test\n";
      ++failed;
      continue;
    }
    if (!suites.count(files) && !suite_errors.count(files)) {
      auto suite = Suite::Load(files, import_paths);
      if (suite.ok()) {
        suites[files] = std::move(*suite);
      } else {
        suite_errors[files] = suite.status().message();
        err << suite.status().message();
        if (!suite.status().message().empty() && suite.status().message().back() != '\n') err << "\n";
      }
    }
    for (const TestCase& t : file->tests) {
      if (!filter.empty() && t.name.find(filter) == std::string::npos) continue;
      std::string where = path + ":" + std::to_string(t.pos.line) + ": " + t.name;
      if (suite_errors.count(files)) {
        out << "FAIL " << where << ": the .rc files do not compile\n";
        ++failed;
        continue;
      }
      Suite::Outcome o = suites[files]->Run(t);
      if (o.ok) {
        out << "ok   " << where << "\n";
        ++passed;
      } else {
        out << "FAIL " << where << ": " << o.message << "\n";
        ++failed;
      }
      if (verbose) {
        for (auto& r : o.runs) out << "       " << r << "\n";
      }
    }
  }
  out << passed << " passed, " << failed << " failed\n";
  return failed == 0 ? 0 : 1;
}

}  // namespace rc::rcctest
