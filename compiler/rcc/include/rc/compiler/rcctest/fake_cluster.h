// An in-memory cluster behind rc::rt::EffectHost, for `rcc test`: what a controller's effects
// reach in rcd (informer cache + API server), with the same semantics, plus the hooks the
// perturbations (stale cache, crash after a write) need.
//
// Semantics (kept equal to runtime/apiserver's ObjectStorage and the controller runtime):
//  - get/list read the cache, which is the stored state (read-your-writes) unless a stale view
//    is installed. list: namespace "" = all; selector = metav1.LabelSelector (absent: no
//    filtering); labels = exact subset match; owner = an ownerReferences entry with the owner's
//    uid and controller == true. Ordered by the informers' cache key "namespace/name" (a string).
//  - create: generateName gets a 5-character suffix (deterministic here: a counter in Kubernetes'
//    alphabet); uid, creationTimestamp (= now), generation 1 and a resourceVersion are assigned;
//    status is reset when the type has a status subresource (Node and Service keep theirs);
//    defaults applied and the object validated (422 on violations); 409 when the name exists.
//  - update: 404 when absent; a non-empty metadata.resourceVersion that is not the stored one is
//    a 409 Conflict; uid/creationTimestamp/deletionTimestamp/generation kept; status kept when
//    the type has a status subresource; generation + 1 when anything outside metadata/status
//    changed; an update that changes nothing writes nothing (no new resourceVersion, no event);
//    an object with deletionTimestamp and no finalizers left is removed.
//  - updateStatus: only status comes from the object (a plain update for types without the
//    subresource, as the runtime's host PUTs to the object then).
//  - Before any write, as the runtime's host: apiVersion and kind must name a served type, a
//    namespaced object needs metadata.namespace, writes other than create need metadata.name;
//    errors read "<verb> <Kind> <ns>/<name>: <API error>" like the host's.
//  - patch: RFC 7386 merge patch on the stored object, then as update (a patch without
//    resourceVersion never conflicts).
//  - delete: precondition uid; 404 ignored; with finalizers (or a pod bound to a node: graceful
//    deletion) deletionTimestamp is set; otherwise removed, then the garbage collector removes
//    dependents whose owners are all gone (Background propagation).
//  - emit: recorded as an action (not stored as an Event object).
#pragma once

#include <rapidjson/document.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "rc/base/status.h"
#include "rc/schema/schema.h"
#include "rc/stdlib/runtime.h"

namespace rc::rcctest {

using Doc = rapidjson::Document;
using DocPtr = std::shared_ptr<const Doc>;

// A resource type the cluster serves.
struct ResourceType {
  std::string api_version;  // "apps/v1"
  std::string kind;         // "ReplicaSet"
  std::string plural;       // "replicasets"
  std::string group;
  bool namespaced = true;
  bool has_status = false;
  const schema::ResourceSchema* schema = nullptr;  // defaults and validation (may be null)
};

// One effect call, in order.
struct Action {
  std::string verb;  // create, update, status, patch, delete, emit
  std::string kind, ns, name;
  std::string event_type, reason, message;  // emit
  bool ok = true;
  bool changed = false;  // the write changed the stored state
  std::string error;     // when !ok
};

// A change to the stored state (what informers would deliver).
struct WatchEvent {
  enum class Type { kAdded, kModified, kDeleted } type;
  DocPtr object;  // the new object; for kDeleted the last stored one
};

using ObjectKey = std::tuple<std::string, std::string, std::string>;  // kind, namespace, name
using State = std::map<ObjectKey, DocPtr>;

class FakeCluster : public rt::EffectHost {
 public:
  explicit FakeCluster(std::vector<ResourceType> types);

  // The clock: creationTimestamp / deletionTimestamp and what reconciles see as now().
  void set_now(int64_t unix_seconds) { now_ = unix_seconds; }
  int64_t now() const { return now_; }

  const ResourceType* TypeOfKind(const std::string& kind) const;

  // Stores `obj` as another actor would (a user, the kubelet): create when absent, otherwise
  // replace (keeping uid, creationTimestamp and — when `obj` has none and the type has the
  // subresource — the status; generation + 1 when the spec changed, unless given). Missing uid,
  // resourceVersion and creationTimestamp are assigned; defaults applied. Produces a watch event.
  Status Put(const rapidjson::Value& obj);
  // Deletes as a user would (Background propagation, GC). NotFound when absent.
  Status DeleteObject(const std::string& kind, const std::string& ns, const std::string& name);

  // A stand-in for the node agents: binds unscheduled pods to node-1 and makes every pod
  // Running and Ready with an IP; pods being deleted (no finalizers left) go. Returns whether
  // anything changed. Writes as another actor (watch events, no actions).
  bool Kubelet();

  const State& state() const { return state_; }
  DocPtr Find(const std::string& kind, const std::string& ns, const std::string& name) const;
  std::vector<DocPtr> OfKind(const std::string& kind) const;

  // ---- rt::EffectHost ----
  const rc_value* Get(const std::string& api_version, const std::string& kind, const std::string& name,
                      const std::string& ns) override;
  std::vector<const rc_value*> List(const std::string& api_version, const std::string& kind, const std::string& ns,
                                    const rc_value* selector, const rc_value* labels, const rc_value* owner) override;
  Status Apply(Write op, const rc_value& object, const rc_value* patch) override;
  void Emit(const rc_value& object, const std::string& type, const std::string& reason,
            const std::string& message) override;
  const rc_value* Written() override { return written_.get(); }

  // ---- what tests and perturbations use ----
  std::vector<Action>& actions() { return actions_; }
  // Watch events since the last call.
  std::vector<WatchEvent> TakeEvents();
  // Reads see `view` instead of the stored state until ClearView (stale cache).
  void SetView(State view) { view_ = std::move(view); }
  void ClearView() { view_.reset(); }
  bool has_view() const { return view_.has_value(); }
  // The stored state just before the last state-changing write.
  const State& before_last_write() const { return before_last_write_; }
  // Called after every successful state-changing controller write (counting them per call);
  // a non-OK status is returned to the controller although the write persisted (crash).
  std::function<Status()> after_write;
  // Documents returned by Get/List stay alive until ReleasePins (call after each reconcile).
  void Pin(DocPtr d) { pins_.push_back(std::move(d)); }
  void ReleasePins() { pins_.clear(); }
  int64_t changes() const { return changes_; }  // state-changing writes so far (all actors)

 private:
  const State& Reads() const { return view_ ? *view_ : state_; }
  Status Create(const ResourceType& t, const rapidjson::Value& obj, DocPtr* stored);
  Status Update(const ResourceType& t, const rapidjson::Value& obj, bool status_only, bool is_patch,
                const rapidjson::Value* patch, bool* changed);
  Status Delete(const ResourceType& t, const std::string& ns, const std::string& name, const std::string& uid,
                bool* changed);
  void Store(const ObjectKey& key, std::shared_ptr<Doc> doc, WatchEvent::Type type);
  void Remove(const ObjectKey& key);
  void CollectGarbage();
  void Finish(rapidjson::Value& obj, Doc::AllocatorType& a, const ResourceType& t);  // defaults
  Status CheckValid(const ResourceType& t, const rapidjson::Value& obj, const rapidjson::Value* old) const;
  std::string NextUid();
  std::string NextResourceVersion();
  std::string GeneratedSuffix();

  std::vector<ResourceType> types_;
  State state_;
  std::optional<State> view_;
  State before_last_write_;
  std::vector<Action> actions_;
  std::vector<WatchEvent> events_;
  std::vector<DocPtr> pins_;
  DocPtr written_;  // what the last successful write stored
  int64_t now_ = 0;
  int64_t revision_ = 100;
  int64_t uid_counter_ = 0;
  int64_t name_counter_ = 0;
  int64_t changes_ = 0;
  int64_t ip_counter_ = 0;
};

// RFC 3339 (UTC, seconds) <-> unix seconds.
std::string FormatTime(int64_t unix_seconds);
std::optional<int64_t> ParseTime(const std::string& text);

// Deep copies that own every string (rapidjson's CopyFrom keeps constant strings by reference,
// which would point into compiled code's arena or a JIT module).
void DeepCopy(const rapidjson::Value& from, rapidjson::Value& to, rapidjson::Document::AllocatorType& a);
rapidjson::Value Copied(const rapidjson::Value& from, rapidjson::Document::AllocatorType& a);

// Canonical JSON text of a value (keys sorted), for comparisons and messages.
std::string Canonical(const rapidjson::Value& v);

}  // namespace rc::rcctest
