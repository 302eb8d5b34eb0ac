#include "rc/compiler/rcctest/fake_cluster.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "rc/apimachinery/patch.h"
#include "rc/apimachinery/selector.h"
#include "rc/apimachinery/validation.h"
#include "rc/schema/algorithms.h"

namespace rc::rcctest {

namespace {

using V = rapidjson::Value;

const V* Member(const V* v, const char* name) {
  if (!v || !v->IsObject()) return nullptr;
  auto it = v->FindMember(name);
  return it == v->MemberEnd() ? nullptr : &it->value;
}
V* MutableMember(V& v, const char* name) {
  if (!v.IsObject()) return nullptr;
  auto it = v.FindMember(name);
  return it == v.MemberEnd() ? nullptr : &it->value;
}
std::string Str(const V* v) { return v && v->IsString() ? std::string(v->GetString(), v->GetStringLength()) : ""; }
std::string Meta(const V& obj, const char* field) { return Str(Member(Member(&obj, "metadata"), field)); }

void Set(V& obj, const char* name, V value, Doc::AllocatorType& a) {
  if (!obj.IsObject()) obj.SetObject();
  if (V* m = MutableMember(obj, name)) {
    *m = std::move(value);
  } else {
    obj.AddMember(V(name, a), std::move(value), a);
  }
}
void Erase(V& obj, const char* name) {
  if (obj.IsObject()) obj.RemoveMember(name);
}
V& ObjectAt(V& obj, const char* name, Doc::AllocatorType& a) {
  V* m = MutableMember(obj, name);
  if (!m || !m->IsObject()) {
    Set(obj, name, V(rapidjson::kObjectType), a);
    m = MutableMember(obj, name);
  }
  return *m;
}
V S(const std::string& s, Doc::AllocatorType& a) { return V(s.c_str(), static_cast<rapidjson::SizeType>(s.size()), a); }

bool HasFinalizers(const V& obj) {
  const V* f = Member(Member(&obj, "metadata"), "finalizers");
  return f && f->IsArray() && !f->Empty();
}

// Everything but metadata and status: a change there bumps metadata.generation.
bool SpecChanged(const V& a, const V& b) {
  auto collect = [](const V& o) {
    std::map<std::string, std::string> m;
    if (!o.IsObject()) return m;
    for (auto& it : o.GetObject()) {
      std::string n(it.name.GetString(), it.name.GetStringLength());
      if (n == "metadata" || n == "status") continue;
      m[n] = Canonical(it.value);
    }
    return m;
  };
  return collect(a) != collect(b);
}

std::shared_ptr<Doc> CopyDoc(const V& v) {
  auto d = std::make_shared<Doc>();
  DeepCopy(v, *d, d->GetAllocator());
  return d;
}

void WriteCanonical(const V& v, rapidjson::Writer<rapidjson::StringBuffer>& w) {
  if (v.IsObject()) {
    std::vector<const V::Member*> members;
    for (auto& m : v.GetObject()) members.push_back(&m);
    std::sort(members.begin(), members.end(), [](const V::Member* a, const V::Member* b) {
      return std::string_view(a->name.GetString(), a->name.GetStringLength()) <
             std::string_view(b->name.GetString(), b->name.GetStringLength());
    });
    w.StartObject();
    for (auto* m : members) {
      w.Key(m->name.GetString(), m->name.GetStringLength());
      WriteCanonical(m->value, w);
    }
    w.EndObject();
  } else if (v.IsArray()) {
    w.StartArray();
    for (auto& e : v.GetArray()) WriteCanonical(e, w);
    w.EndArray();
  } else if (v.IsDouble() && v.GetDouble() == static_cast<double>(static_cast<int64_t>(v.GetDouble()))) {
    w.Int64(static_cast<int64_t>(v.GetDouble()));
  } else {
    v.Accept(w);
  }
}

}  // namespace

void DeepCopy(const rapidjson::Value& from, rapidjson::Value& to, rapidjson::Document::AllocatorType& a) {
  if (from.IsObject()) {
    to.SetObject();
    for (auto& m : from.GetObject()) {
      V key(m.name.GetString(), m.name.GetStringLength(), a);
      V value;
      DeepCopy(m.value, value, a);
      to.AddMember(std::move(key), std::move(value), a);
    }
  } else if (from.IsArray()) {
    to.SetArray();
    to.Reserve(from.Size(), a);
    for (auto& e : from.GetArray()) {
      V value;
      DeepCopy(e, value, a);
      to.PushBack(std::move(value), a);
    }
  } else if (from.IsString()) {
    to.SetString(from.GetString(), from.GetStringLength(), a);
  } else {
    to.CopyFrom(from, a);
  }
}

rapidjson::Value Copied(const rapidjson::Value& from, rapidjson::Document::AllocatorType& a) {
  V out;
  DeepCopy(from, out, a);
  return out;
}

std::string Canonical(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  WriteCanonical(v, w);
  return std::string(buf.GetString(), buf.GetSize());
}

std::string FormatTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<int64_t> ParseTime(const std::string& text) {
  std::tm tm{};
  int y, mo, d, h, mi, s;
  char z = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &s, &z) != 7 || z != 'Z') {
    return std::nullopt;
  }
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(timegm(&tm));
}

FakeCluster::FakeCluster(std::vector<ResourceType> types) : types_(std::move(types)) {}

const ResourceType* FakeCluster::TypeOfKind(const std::string& kind) const {
  for (auto& t : types_) if (t.kind == kind) return &t;
  return nullptr;
}

std::string FakeCluster::NextUid() {
  char buf[64];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012lld", static_cast<long long>(++uid_counter_));
  return buf;
}
std::string FakeCluster::NextResourceVersion() { return std::to_string(++revision_); }
std::string FakeCluster::GeneratedSuffix() {
  // Kubernetes appends 5 random characters from this alphabet; a counter keeps runs repeatable.
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  int64_t n = ++name_counter_;
  std::string out(5, 'b');
  for (int i = 4; i >= 0; --i) {
    out[i] = kAlphabet[n % 27];
    n /= 27;
  }
  return out;
}

DocPtr FakeCluster::Find(const std::string& kind, const std::string& ns, const std::string& name) const {
  auto it = state_.find({kind, ns, name});
  return it == state_.end() ? nullptr : it->second;
}

std::vector<DocPtr> FakeCluster::OfKind(const std::string& kind) const {
  std::vector<DocPtr> out;
  for (auto it = state_.lower_bound({kind, "", ""}); it != state_.end() && std::get<0>(it->first) == kind; ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<WatchEvent> FakeCluster::TakeEvents() {
  std::vector<WatchEvent> out;
  out.swap(events_);
  return out;
}

void FakeCluster::Store(const ObjectKey& key, std::shared_ptr<Doc> doc, WatchEvent::Type type) {
  before_last_write_ = state_;
  state_[key] = doc;
  events_.push_back({type, doc});
  ++changes_;
}

void FakeCluster::Remove(const ObjectKey& key) {
  auto it = state_.find(key);
  if (it == state_.end()) return;
  before_last_write_ = state_;
  DocPtr old = it->second;
  state_.erase(it);
  events_.push_back({WatchEvent::Type::kDeleted, old});
  ++changes_;
}

void FakeCluster::Finish(rapidjson::Value& obj, Doc::AllocatorType& a, const ResourceType& t) {
  if (t.schema && t.schema->root) schema::ApplyDefaults(*t.schema->root, obj, a);
}

Status FakeCluster::CheckValid(const ResourceType& t, const rapidjson::Value& obj, const rapidjson::Value* old) const {
  std::vector<std::pair<std::string, std::string>> causes;  // field, message
  auto quote = [](const std::string& v) { return "\"" + v + "\""; };
  std::string name = Meta(obj, "name");
  if (name.empty()) {
    causes.push_back({"metadata.name", "name or generateName is required"});
  } else {
    bool label = t.schema && t.schema->name_format == schema::StringFormat::kDns1123Label;
    for (auto& e : label ? apimachinery::IsDNS1123Label(name) : apimachinery::IsDNS1123Subdomain(name)) {
      causes.push_back({"metadata.name", "Invalid value: " + quote(name) + ": " + e});
    }
  }
  if (const V* labels = Member(Member(&obj, "metadata"), "labels"); labels && labels->IsObject()) {
    for (auto& m : labels->GetObject()) {
      std::string key(m.name.GetString(), m.name.GetStringLength());
      for (auto& e : apimachinery::IsQualifiedName(key)) causes.push_back({"metadata.labels", "Invalid value: " + quote(key) + ": " + e});
      if (!m.value.IsString()) {
        causes.push_back({"metadata.labels." + key, "Invalid value: label values must be strings"});
        continue;
      }
      std::string value(m.value.GetString(), m.value.GetStringLength());
      for (auto& e : apimachinery::IsValidLabelValue(value)) causes.push_back({"metadata.labels", "Invalid value: " + quote(value) + ": " + e});
    }
  }
  if (t.schema && t.schema->root) {
    for (auto& v : schema::Validate(*t.schema, obj, old)) causes.push_back({v.field, v.message});
  }
  if (causes.empty()) return Status::Ok();
  std::string message = (t.group.empty() ? t.kind : t.kind + "." + t.group) + " \"" + Meta(obj, "name") + "\" is invalid: ";
  if (causes.size() == 1) {
    message += causes[0].first + ": " + causes[0].second;
  } else {
    message += "[";
    for (size_t i = 0; i < causes.size(); ++i) message += (i ? ", " : "") + causes[i].first + ": " + causes[i].second;
    message += "]";
  }
  return Status::InvalidArgument(message);
}

static std::string Qualified(const ResourceType& t) { return t.group.empty() ? t.plural : t.plural + "." + t.group; }

Status FakeCluster::Put(const rapidjson::Value& obj) {
  std::string kind = Str(Member(&obj, "kind"));
  const ResourceType* t = TypeOfKind(kind);
  if (!t) return Status::NotFound("no resource type with kind \"" + kind + "\" is declared");
  auto doc = CopyDoc(obj);
  auto& a = doc->GetAllocator();
  Set(*doc, "apiVersion", S(t->api_version, a), a);
  V& meta = ObjectAt(*doc, "metadata", a);
  std::string name = Str(Member(&meta, "name"));
  if (name.empty()) {
    std::string gen = Str(Member(&meta, "generateName"));
    if (gen.empty()) return Status::InvalidArgument(kind + ": metadata.name is required");
    name = gen + GeneratedSuffix();
    Set(meta, "name", S(name, a), a);
  }
  std::string ns = t->namespaced ? Str(Member(&meta, "namespace")) : "";
  if (t->namespaced && ns.empty()) {
    ns = "default";
    Set(meta, "namespace", S(ns, a), a);
  }
  if (!t->namespaced) Erase(meta, "namespace");
  DocPtr old = Find(kind, ns, name);
  if (!Member(&meta, "uid")) Set(meta, "uid", S(old ? Meta(*old, "uid") : NextUid(), a), a);
  if (!Member(&meta, "creationTimestamp")) {
    Set(meta, "creationTimestamp", S(old ? Meta(*old, "creationTimestamp") : FormatTime(now_), a), a);
  }
  // A replacement keeps what the server keeps: the status (when the object brings none and the
  // type has the subresource) and the generation, bumped when the spec changed.
  if (old && t->has_status && !Member(doc.get(), "status") && Member(old.get(), "status")) {
    Set(*doc, "status", Copied((*old)["status"], a), a);
  }
  Finish(*doc, a, *t);
  if (!Member(&ObjectAt(*doc, "metadata", a), "generation")) {
    const V* g = old ? Member(Member(old.get(), "metadata"), "generation") : nullptr;
    int64_t generation = g && g->IsInt64() ? g->GetInt64() : 1;
    if (old && SpecChanged(*old, *doc)) ++generation;
    Set(ObjectAt(*doc, "metadata", a), "generation", V(generation), a);
  }
  Set(ObjectAt(*doc, "metadata", a), "resourceVersion", S(NextResourceVersion(), a), a);
  Store({kind, ns, name}, doc, old ? WatchEvent::Type::kModified : WatchEvent::Type::kAdded);
  return Status::Ok();
}

bool FakeCluster::Kubelet() {
  bool changed = false;
  for (auto& pod : OfKind("Pod")) {
    const V* meta = Member(pod.get(), "metadata");
    std::string ns = Str(Member(meta, "namespace")), name = Str(Member(meta, "name"));
    if (Member(meta, "deletionTimestamp")) {
      if (!HasFinalizers(*pod)) {
        Remove({"Pod", ns, name});
        CollectGarbage();
        changed = true;
      }
      continue;
    }
    const V* status = Member(pod.get(), "status");
    bool ready = false;
    if (const V* conds = Member(status, "conditions"); conds && conds->IsArray()) {
      for (auto& c : conds->GetArray()) ready = ready || (Str(Member(&c, "type")) == "Ready" && Str(Member(&c, "status")) == "True");
    }
    bool scheduled = !Str(Member(Member(pod.get(), "spec"), "nodeName")).empty();
    if (ready && scheduled && Str(Member(status, "phase")) == "Running" && !Str(Member(status, "podIP")).empty()) continue;
    auto next = CopyDoc(*pod);
    auto& a = next->GetAllocator();
    V& spec = ObjectAt(*next, "spec", a);
    if (!scheduled) Set(spec, "nodeName", S("node-1", a), a);
    V& st = ObjectAt(*next, "status", a);
    Set(st, "phase", S("Running", a), a);
    if (Str(Member(&st, "podIP")).empty()) {
      ++ip_counter_;
      Set(st, "podIP", S("10.244." + std::to_string(ip_counter_ / 250) + "." + std::to_string(ip_counter_ % 250 + 2), a), a);
    }
    V conds(rapidjson::kArrayType);
    V c(rapidjson::kObjectType);
    c.AddMember("type", "Ready", a);
    c.AddMember("status", "True", a);
    c.AddMember("lastTransitionTime", S(FormatTime(now_), a), a);
    conds.PushBack(std::move(c), a);
    Set(st, "conditions", std::move(conds), a);
    Set(ObjectAt(*next, "metadata", a), "resourceVersion", S(NextResourceVersion(), a), a);
    Store({"Pod", ns, name}, next, WatchEvent::Type::kModified);
    changed = true;
  }
  return changed;
}

Status FakeCluster::DeleteObject(const std::string& kind, const std::string& ns, const std::string& name) {
  const ResourceType* t = TypeOfKind(kind);
  if (!t) return Status::NotFound("no resource type with kind \"" + kind + "\" is declared");
  std::string where = t->namespaced ? (ns.empty() ? "default" : ns) : "";
  if (!Find(kind, where, name)) return Status::NotFound(Qualified(*t) + " \"" + name + "\" not found");
  bool changed = false;
  return Delete(*t, where, name, "", &changed);
}

const rc_value* FakeCluster::Get(const std::string&, const std::string& kind, const std::string& name,
                                 const std::string& ns) {
  const ResourceType* t = TypeOfKind(kind);
  const State& s = Reads();
  auto it = s.find({kind, t && !t->namespaced ? "" : ns, name});
  if (it == s.end()) return nullptr;
  Pin(it->second);
  return it->second.get();
}

std::vector<const rc_value*> FakeCluster::List(const std::string&, const std::string& kind, const std::string& ns,
                                               const rc_value* selector, const rc_value* labels,
                                               const rc_value* owner) {
  std::vector<const rc_value*> out;
  std::optional<apimachinery::LabelSelector> sel;
  if (selector && !selector->IsNull()) {
    auto parsed = apimachinery::LabelSelectorFromJson(*selector);
    if (!parsed.ok()) return out;  // an invalid selector selects nothing
    sel = std::move(*parsed);
  }
  std::string owner_uid = owner ? Meta(*owner, "uid") : "";
  if (owner && owner_uid.empty()) return out;
  const ResourceType* t = TypeOfKind(kind);
  bool namespaced = !t || t->namespaced;  // a cluster-scoped type ignores the namespace
  const State& s = Reads();
  for (auto it = s.lower_bound({kind, "", ""}); it != s.end() && std::get<0>(it->first) == kind; ++it) {
    const Doc& obj = *it->second;
    if (namespaced && !ns.empty() && std::get<1>(it->first) != ns) continue;
    const V* obj_labels = Member(Member(&obj, "metadata"), "labels");
    if (sel && !sel->Matches(obj_labels)) continue;
    if (labels && labels->IsObject()) {
      bool all = true;
      for (auto& m : labels->GetObject()) {
        const V* have = Member(obj_labels, m.name.GetString());
        if (!have || !have->IsString() || !m.value.IsString() || Str(have) != Str(&m.value)) all = false;
      }
      if (!all) continue;
    }
    if (owner) {
      bool owned = false;
      const V* refs = Member(Member(&obj, "metadata"), "ownerReferences");
      if (refs && refs->IsArray()) {
        for (auto& r : refs->GetArray()) {
          const V* c = Member(&r, "controller");
          if (!owner_uid.empty() && Str(Member(&r, "uid")) == owner_uid && c && c->IsBool() && c->GetBool()) owned = true;
        }
      }
      if (!owned) continue;
    }
    Pin(it->second);
    out.push_back(it->second.get());
  }
  // The informers' order: by the cache key "namespace/name" as a string ("a-b/x" before "a/x").
  auto key = [](const rc_value* o) {
    std::string ns = Meta(*o, "namespace");
    return ns.empty() ? Meta(*o, "name") : ns + "/" + Meta(*o, "name");
  };
  std::stable_sort(out.begin(), out.end(), [&](const rc_value* a, const rc_value* b) { return key(a) < key(b); });
  return out;
}

Status FakeCluster::Create(const ResourceType& t, const rapidjson::Value& obj, DocPtr* stored) {
  auto doc = CopyDoc(obj);
  auto& a = doc->GetAllocator();
  Set(*doc, "apiVersion", S(t.api_version, a), a);
  Set(*doc, "kind", S(t.kind, a), a);
  V& meta = ObjectAt(*doc, "metadata", a);
  std::string name = Str(Member(&meta, "name"));
  std::string gen = Str(Member(&meta, "generateName"));
  if (name.empty() && !gen.empty()) {
    name = gen + GeneratedSuffix();
    Set(meta, "name", S(name, a), a);
  }
  std::string ns = Str(Member(&meta, "namespace"));
  if (t.namespaced) {
    if (ns.empty()) ns = "default";  // the client's namespace
    Set(meta, "namespace", S(ns, a), a);
  } else {
    ns.clear();
    Erase(meta, "namespace");
  }
  Set(meta, "uid", S(NextUid(), a), a);
  Set(meta, "creationTimestamp", S(FormatTime(now_), a), a);
  Set(meta, "generation", V(int64_t{1}), a);
  for (const char* f : {"resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}) Erase(meta, f);
  if (t.has_status) {
    V status(rapidjson::kObjectType);
    if (t.kind == "Node" || t.kind == "Service") {
      if (const V* s = Member(doc.get(), "status")) DeepCopy(*s, status, a);
      if (t.kind == "Service" && !Member(&status, "loadBalancer")) status.AddMember("loadBalancer", V(rapidjson::kObjectType), a);
    }
    Set(*doc, "status", std::move(status), a);
  }
  Finish(*doc, a, t);
  if (Status st = CheckValid(t, *doc, nullptr); !st.ok()) return st;
  if (Find(t.kind, ns, name)) return Status::AlreadyExists(Qualified(t) + " \"" + name + "\" already exists");
  Set(ObjectAt(*doc, "metadata", a), "resourceVersion", S(NextResourceVersion(), a), a);
  Store({t.kind, ns, name}, doc, WatchEvent::Type::kAdded);
  *stored = doc;
  return Status::Ok();
}

Status FakeCluster::Update(const ResourceType& t, const rapidjson::Value& obj, bool status_only, bool is_patch,
                           const rapidjson::Value* patch, bool* changed) {
  *changed = false;
  std::string name = Meta(obj, "name");
  std::string ns = t.namespaced ? Meta(obj, "namespace") : "";
  if (t.namespaced && ns.empty()) ns = "default";
  DocPtr current = Find(t.kind, ns, name);
  if (!current) return Status::NotFound(Qualified(t) + " \"" + name + "\" not found");
  if (status_only && !t.has_status) return Status::NotFound(Qualified(t) + " \"" + name + "\" not found");
  auto next = std::make_shared<Doc>();
  auto& a = next->GetAllocator();
  std::string current_rv = Meta(*current, "resourceVersion");
  if (is_patch) {
    DeepCopy(*current, *next, a);
    if (patch) {
      V owned;  // in next's pool: the merge may keep references to the patch's strings
      DeepCopy(*patch, owned, a);
      Status st = apimachinery::ApplyMergePatch(*next, owned, a);
      if (!st.ok()) return Status::InvalidArgument(st.message());
    }
    if (Meta(*next, "resourceVersion") == current_rv) {
      if (V* meta = MutableMember(*next, "metadata")) Erase(*meta, "resourceVersion");
    }
  } else {
    DeepCopy(obj, *next, a);
  }
  std::string wanted_rv = Meta(*next, "resourceVersion");
  if (!wanted_rv.empty() && wanted_rv != current_rv) {
    return Status::Conflict("Operation cannot be fulfilled on " + Qualified(t) + " \"" + name +
                            "\": the object has been modified; please apply your changes to the latest version and try again");
  }
  if (status_only) {
    auto merged = CopyDoc(*current);
    auto& ma = merged->GetAllocator();
    V status(rapidjson::kObjectType);
    if (const V* s = Member(next.get(), "status")) DeepCopy(*s, status, ma);
    Set(*merged, "status", std::move(status), ma);
    next = merged;
  } else {
    Set(*next, "apiVersion", S(t.api_version, a), a);
    Set(*next, "kind", S(t.kind, a), a);
    V& meta = ObjectAt(*next, "metadata", a);
    const V* cur_meta = Member(current.get(), "metadata");
    Set(meta, "name", S(name, a), a);
    if (t.namespaced) Set(meta, "namespace", S(ns, a), a);
    for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
      if (const V* v = Member(cur_meta, f)) {
        Set(meta, f, Copied(*v, a), a);
      } else {
        Erase(meta, f);
      }
    }
    if (t.has_status) {
      if (const V* s = Member(current.get(), "status")) {
        Set(*next, "status", Copied(*s, a), a);
      } else {
        Erase(*next, "status");
      }
    }
    Finish(*next, a, t);
    if (SpecChanged(*current, *next)) {
      const V* g = Member(cur_meta, "generation");
      int64_t generation = g && g->IsInt64() ? g->GetInt64() : 1;
      Set(ObjectAt(*next, "metadata", a), "generation", V(generation + 1), a);
    }
    if (Status st = CheckValid(t, *next, current.get()); !st.ok()) return st;
  }
  auto& na = next->GetAllocator();
  bool remove = Member(Member(next.get(), "metadata"), "deletionTimestamp") && !HasFinalizers(*next);
  // Equal content (resourceVersion aside) is a no-op: nothing is written, no event.
  Set(ObjectAt(*next, "metadata", na), "resourceVersion", S(current_rv, na), na);
  if (!remove && Canonical(*next) == Canonical(*current)) return Status::Ok();
  *changed = true;
  if (remove) {
    Remove({t.kind, ns, name});
    CollectGarbage();
    return Status::Ok();
  }
  Set(ObjectAt(*next, "metadata", na), "resourceVersion", S(NextResourceVersion(), na), na);
  Store({t.kind, ns, name}, next, WatchEvent::Type::kModified);
  return Status::Ok();
}

Status FakeCluster::Delete(const ResourceType& t, const std::string& ns, const std::string& name,
                           const std::string& uid, bool* changed) {
  *changed = false;
  DocPtr current = Find(t.kind, ns, name);
  if (!current) return Status::Ok();  // 404 is ignored
  if (!uid.empty() && uid != Meta(*current, "uid")) {
    return Status::Conflict("Operation cannot be fulfilled on " + Qualified(t) + " \"" + name +
                            "\": Precondition failed: UID in precondition: " + uid +
                            ", UID in object meta: " + Meta(*current, "uid"));
  }
  const V* node = Member(Member(current.get(), "spec"), "nodeName");
  int64_t grace = 0;
  if (t.kind == "Pod" && node && node->IsString() && node->GetStringLength() > 0) {
    const V* g = Member(Member(current.get(), "spec"), "terminationGracePeriodSeconds");
    grace = g && g->IsInt64() ? g->GetInt64() : 30;
  }
  bool deleting = Member(Member(current.get(), "metadata"), "deletionTimestamp") != nullptr;
  if (HasFinalizers(*current) || grace > 0) {
    if (deleting) return Status::Ok();  // nothing new to record
    auto next = CopyDoc(*current);
    auto& a = next->GetAllocator();
    V& meta = ObjectAt(*next, "metadata", a);
    Set(meta, "deletionTimestamp", S(FormatTime(now_ + grace), a), a);
    Set(meta, "deletionGracePeriodSeconds", V(grace), a);
    const V* g = Member(&meta, "generation");
    Set(meta, "generation", V((g && g->IsInt64() ? g->GetInt64() : 1) + 1), a);
    Set(meta, "resourceVersion", S(NextResourceVersion(), a), a);
    Store({t.kind, ns, name}, next, WatchEvent::Type::kModified);
    *changed = true;
    return Status::Ok();
  }
  Remove({t.kind, ns, name});
  *changed = true;
  CollectGarbage();
  return Status::Ok();
}

void FakeCluster::CollectGarbage() {
  // Background propagation: a dependent whose owners are all gone is deleted (repeatedly, so
  // chains go too). An owner is "there" when an object with its uid exists.
  for (bool again = true; again;) {
    again = false;
    std::set<std::string> uids;
    for (auto& [key, obj] : state_) uids.insert(Meta(*obj, "uid"));
    std::vector<std::pair<const ResourceType*, ObjectKey>> orphans;
    for (auto& [key, obj] : state_) {
      const V* refs = Member(Member(obj.get(), "metadata"), "ownerReferences");
      if (!refs || !refs->IsArray() || refs->Empty()) continue;
      bool any_alive = false;
      for (auto& r : refs->GetArray()) any_alive = any_alive || uids.count(Str(Member(&r, "uid")));
      if (!any_alive) orphans.push_back({TypeOfKind(std::get<0>(key)), key});
    }
    for (auto& [t, key] : orphans) {
      if (!t) continue;
      bool changed = false;
      DocPtr before = Find(std::get<0>(key), std::get<1>(key), std::get<2>(key));
      if (before && Member(Member(before.get(), "metadata"), "deletionTimestamp")) continue;
      (void)Delete(*t, std::get<1>(key), std::get<2>(key), "", &changed);
      again = again || changed;
    }
  }
}

Status FakeCluster::Apply(Write op, const rc_value& object, const rc_value* patch) {
  Action act;
  static const char* kVerbs[] = {"", "create", "update", "status", "delete", "patch"};
  static const char* kWhat[] = {"", "create", "update", "update status of", "delete", "patch"};
  act.verb = kVerbs[static_cast<int>(op)];
  act.kind = Str(Member(&object, "kind"));
  act.ns = Meta(object, "namespace");
  act.name = Meta(object, "name");
  if (act.name.empty() && op == Write::kCreate) act.name = Meta(object, "generateName");
  std::string api_version = Str(Member(&object, "apiVersion"));
  // The runtime's host checks these before it sends anything, and prefixes its errors the same way.
  std::string what = std::string(kWhat[static_cast<int>(op)]) + " " + act.kind + " " + (act.ns.empty() ? "" : act.ns + "/") +
                     (Meta(object, "name").empty() ? Meta(object, "generateName") + "*" : act.name);
  const ResourceType* t = TypeOfKind(act.kind);
  Status st;
  bool changed = false;
  if (api_version.empty() || act.kind.empty()) {
    st = Status::InvalidArgument("the object has no apiVersion/kind");
  } else if (!t || t->api_version != api_version) {
    st = Status::InvalidArgument("no resource type " + api_version + " " + act.kind + " is served");
  } else if (t->namespaced && act.ns.empty()) {
    st = Status::InvalidArgument("metadata.namespace is not set");
  } else if (op != Write::kCreate && act.name.empty()) {
    st = Status::InvalidArgument("metadata.name is not set");
  } else if (op == Write::kCreate) {
    DocPtr stored;
    st = Create(*t, object, &stored);
    if (st.ok()) {
      act.name = Meta(*stored, "name");
      act.ns = Meta(*stored, "namespace");
      changed = true;
    }
  } else if (op == Write::kUpdate || op == Write::kUpdateStatus || op == Write::kPatch) {
    // Without a status subresource updateStatus is a plain update (the host PUTs to the object).
    st = Update(*t, object, op == Write::kUpdateStatus && t->has_status, op == Write::kPatch, patch, &changed);
  } else {
    st = Delete(*t, t->namespaced ? act.ns : "", act.name, Meta(object, "uid"), &changed);
  }
  if (!st.ok()) st = Status(st.code(), what + ": " + st.message());
  written_ = nullptr;
  if (st.ok() && op != Write::kDelete) {
    written_ = Find(t->kind, t->namespaced ? act.ns : "", act.name);
    if (written_) Pin(written_);
  }
  act.ok = st.ok();
  act.changed = changed;
  if (!st.ok()) act.error = st.message();
  actions_.push_back(act);
  if (st.ok() && changed && after_write) return after_write();
  return st;
}

void FakeCluster::Emit(const rc_value& object, const std::string& type, const std::string& reason,
                       const std::string& message) {
  Action act;
  act.verb = "emit";
  act.kind = Str(Member(&object, "kind"));
  act.ns = Meta(object, "namespace");
  act.name = Meta(object, "name");
  act.event_type = type;
  act.reason = reason;
  act.message = message;
  actions_.push_back(act);
}

}  // namespace rc::rcctest
