#include "object_storage.h"

#include <algorithm>

#include "admission.h"
#include "service_allocator.h"

namespace rc::apiserver {

namespace am = rc::apimachinery;

namespace {

constexpr int kMaxUpdateRetries = 32;

std::string MetaString(const JsonValue& obj, const char* field) {
  const JsonValue* meta = Member(obj, "metadata");
  return meta ? StrAt(*meta, field) : std::string();
}

bool ParseStored(const std::string& bytes, int64_t revision, JsonDoc& doc) {
  doc.Parse(bytes.data(), bytes.size());
  if (doc.HasParseError() || !doc.IsObject()) return false;
  JsonValue& meta = ObjectMember(doc, "metadata", doc.GetAllocator());
  Set(meta, "resourceVersion", Str(std::to_string(revision), doc.GetAllocator()), doc.GetAllocator());
  return true;
}

// Everything but metadata and status: a change here bumps metadata.generation.
bool SpecChanged(const JsonValue& a, const JsonValue& b) {
  if (!a.IsObject() || !b.IsObject()) return true;
  auto count = [](const JsonValue& v) {
    int n = 0;
    for (auto& m : v.GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (name != "metadata" && name != "status") ++n;
    }
    return n;
  };
  if (count(a) != count(b)) return true;
  for (auto& m : a.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (name == "metadata" || name == "status") continue;
    const JsonValue* other = Member(b, name);
    if (!other || *other != m.value) return true;
  }
  return false;
}

// metadata.finalizers, and for namespaces also spec.finalizers (the namespace controller's).
bool HasFinalizers(const JsonValue& obj) {
  for (const char* path : {"metadata.finalizers", "spec.finalizers"}) {
    if (path[0] == 's' && StrAt(obj, "kind") != "Namespace") continue;
    const JsonValue* f = Path(obj, path);
    if (f && f->IsArray() && !f->Empty()) return true;
  }
  return false;
}

std::string ContinueToken(int64_t revision, const std::string& start_key_suffix) {
  std::string json = R"({"v":"meta.k8s.io/v1","rv":)" + std::to_string(revision) +
                     R"(,"start":)" + Quote(start_key_suffix) + "}";
  return Base64Encode(json);
}

}  // namespace

std::string Base64Encode(std::string_view in) {
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kChars[(n >> 18) & 63];
    out += kChars[(n >> 12) & 63];
    out += kChars[(n >> 6) & 63];
    out += kChars[n & 63];
  }
  if (i < in.size()) {
    uint32_t n = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) n |= uint8_t(in[i + 1]) << 8;
    out += kChars[(n >> 18) & 63];
    out += kChars[(n >> 12) & 63];
    out += i + 1 < in.size() ? kChars[(n >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> Base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
  };
  std::string out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = value(c);
    if (v < 0) return std::nullopt;
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  return out;
}

std::string FieldValue(const JsonValue& obj, std::string_view field) {
  const JsonValue* v = Path(obj, field);
  if (!v) return "";
  if (v->IsString()) return std::string(v->GetString(), v->GetStringLength());
  if (v->IsBool()) return v->GetBool() ? "true" : "false";
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  return "";
}

bool ListFilter::Matches(const JsonValue& obj) const {
  if (labels && !labels->Matches(Path(obj, "metadata.labels"))) return false;
  if (fields) {
    std::string value;  // outlives each lookup's use by Matches
    return fields->Matches([&](std::string_view field) -> std::optional<std::string_view> {
      value = FieldValue(obj, field);
      return std::string_view(value);
    });
  }
  return true;
}

ApiResult<ListFilter> ParseListFilter(const ResourceInfo& r, const std::string& label_selector,
                                      const std::string& field_selector) {
  ListFilter filter;
  if (!label_selector.empty()) {
    auto parsed = am::ParseLabelSelector(label_selector);
    if (!parsed.ok()) {
      return ApiError::BadRequest("unable to parse requirement: " + parsed.status().message());
    }
    if (!parsed->Empty()) filter.labels = std::move(parsed.value());
  }
  if (!field_selector.empty()) {
    auto parsed = am::ParseFieldSelector(field_selector);
    if (!parsed.ok()) return ApiError::BadRequest(parsed.status().message());
    for (const auto& req : parsed->requirements()) {
      const std::string& f = req.field;
      bool supported = f == "metadata.name" || f == "metadata.namespace" ||
                       std::find(r.field_selectors.begin(), r.field_selectors.end(), f) != r.field_selectors.end();
      if (!supported) {
        return ApiError::BadRequest("field label not supported: " + f);
      }
    }
    if (!parsed->requirements().empty()) filter.fields = std::move(parsed.value());
  }
  return filter;
}

std::string ObjectStorage::Key(const ResourceInfo& r, const std::string& ns, const std::string& name) {
  if (!r.namespaced) return "/registry/" + r.plural + "/" + name;
  return "/registry/" + r.plural + "/" + ns + "/" + name;
}

std::string ObjectStorage::Prefix(const ResourceInfo& r, const std::string& ns) {
  if (!r.namespaced || ns.empty()) return "/registry/" + r.plural + "/";
  return "/registry/" + r.plural + "/" + ns + "/";
}

std::string ObjectStorage::Encode(const JsonValue& obj) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  auto write_member = [&](const char* name) {
    if (const JsonValue* v = Member(obj, name)) {
      w.Key(name);
      v->Accept(w);
    }
  };
  write_member("apiVersion");
  write_member("kind");
  w.Key("metadata");
  w.StartObject();
  if (const JsonValue* meta = Member(obj, "metadata"); meta && meta->IsObject()) {
    for (auto& m : meta->GetObject()) {
      std::string_view name(m.name.GetString(), m.name.GetStringLength());
      if (name == "resourceVersion" || name == "selfLink") continue;
      w.Key(m.name.GetString(), m.name.GetStringLength());
      m.value.Accept(w);
    }
  }
  w.EndObject();
  for (auto& m : obj.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    if (name == "apiVersion" || name == "kind" || name == "metadata") continue;
    w.Key(m.name.GetString(), m.name.GetStringLength());
    m.value.Accept(w);
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

std::string ObjectStorage::WithResourceVersion(const std::string& stored, int64_t revision) {
  // Encode() writes apiVersion and kind (strings) before metadata, and a quote inside a JSON
  // string is always escaped, so the first `"metadata":{` is the top-level one.
  static const std::string kMeta = "\"metadata\":{";
  size_t pos = stored.find(kMeta);
  if (pos == std::string::npos) return stored;
  pos += kMeta.size();
  std::string rv = "\"resourceVersion\":\"" + std::to_string(revision) + "\"";
  std::string out;
  out.reserve(stored.size() + rv.size() + 1);
  out.append(stored, 0, pos);
  out += rv;
  if (stored[pos] != '}') out += ',';
  out.append(stored, pos, std::string::npos);
  return out;
}

ApiResult<std::string> ObjectStorage::Get(const ResourceInfo& r, const std::string& ns,
                                          const std::string& name) {
  auto res = store_->Range(Key(r, ns, name), {});
  if (!res.ok()) return ApiError::FromStatus(res.status());
  if (res->kvs.empty()) return ApiError::NotFound(r, name);
  const auto& kv = res->kvs[0];
  return WithResourceVersion(kv.value, kv.mod_revision);
}

ApiResult<std::string> ObjectStorage::Create(const ResourceInfo& r, const std::string& ns,
                                             JsonDoc& obj, bool dry_run) {
  auto& a = obj.GetAllocator();
  if (!obj.IsObject()) return ApiError::BadRequest("the body of the request must be a JSON object");
  Set(obj, "apiVersion", Str(r.GroupVersion(), a), a);
  Set(obj, "kind", Str(r.kind, a), a);
  JsonValue& meta = ObjectMember(obj, "metadata", a);
  std::string name = StrAt(meta, "name");
  std::string generate_name = StrAt(meta, "generateName");
  if (name.empty() && !generate_name.empty()) {
    name = generate_name + RandomNameSuffix();
    Set(meta, "name", Str(name, a), a);
  }
  if (r.namespaced) {
    std::string body_ns = StrAt(meta, "namespace");
    if (!body_ns.empty() && body_ns != ns) {
      return ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    Set(meta, "namespace", Str(ns, a), a);
  } else {
    Remove(meta, "namespace");
  }
  Set(meta, "uid", Str(NewUid(), a), a);
  Set(meta, "creationTimestamp", Str(FormatTimestamp(NowSeconds()), a), a);
  Set(meta, "generation", JsonValue(1), a);
  for (const char* f : {"resourceVersion", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds"}) {
    Remove(meta, f);
  }
  ResetStatusOnCreate(r, obj, a);
  ApplyDefaults(r, obj, a);
  auto causes = Validate(r, obj, nullptr);
  if (!causes.empty()) return ApiError::Invalid(r, name, std::move(causes));

  std::string key = Key(r, ns, name);
  const bool allocates = services_ && ServiceAllocator::Handles(r);
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    // A Service's addresses are picked per attempt on a copy: a picked value another rcd took
    // meanwhile makes the Txn fail, and the next attempt picks again.
    JsonDoc candidate;
    std::optional<AllocationPlan> plan;
    if (allocates) {
      candidate.CopyFrom(obj, candidate.GetAllocator());
      auto prepared = services_->PrepareCreate(r, candidate, candidate.GetAllocator());
      if (!prepared.ok()) return prepared.error();
      plan.emplace(std::move(prepared.value()));
    }
    std::string bytes = Encode(allocates ? candidate : obj);
    if (dry_run) {
      auto existing = store_->Range(key, {.count_only = true});
      if (existing.ok() && existing->count > 0) return ApiError::AlreadyExists(r, name);
      return bytes;
    }
    store::TxnRequest txn;
    txn.compare.push_back({.key = key, .target = store::Compare::Target::kCreate,
                           .result = store::Compare::Result::kEqual, .number = 0});
    txn.success.push_back(store::RequestOp::Put(key, bytes));
    txn.failure.push_back(store::RequestOp::Get(key, {.keys_only = true}));
    if (plan) plan->AddTo(txn);
    auto res = store_->Txn(txn);
    if (!res.ok()) return ApiError::FromStatus(res.status());
    if (res->succeeded) {
      if (plan) plan->Committed();
      return WithResourceVersion(bytes, res->revision);
    }
    if (!plan || (!res->responses.empty() && !res->responses[0].range.kvs.empty())) {
      return ApiError::AlreadyExists(r, name);
    }
    auto lost = plan->ClaimLost(*res);
    if (!lost.ok()) return lost.error();
    if (!*lost) return ApiError::AlreadyExists(r, name);  // created and deleted meanwhile
  }
  return ApiError::Conflict(r, name, "too many concurrent allocations; please try again");
}

std::optional<ApiResult<std::string>> ObjectStorage::Commit(const ResourceInfo& r,
                                                            const std::string& key,
                                                            int64_t mod_revision,
                                                            const std::string& current_bytes,
                                                            JsonDoc& next, bool dry_run,
                                                            AllocationPlan* plan) {
  store::TxnRequest txn;
  txn.compare.push_back({.key = key, .target = store::Compare::Target::kMod,
                         .result = store::Compare::Result::kEqual, .number = mod_revision});
  // Gone once deleted with no finalizers left and no grace period running (a pod on a node stays
  // until its agent, having stopped it, deletes it with gracePeriodSeconds=0).
  bool remove = Path(next, "metadata.deletionTimestamp") && !HasFinalizers(next) &&
                IntAt(next, "metadata.deletionGracePeriodSeconds").value_or(0) == 0;
  std::optional<AllocationPlan> release;
  if (remove && services_ && ServiceAllocator::Handles(r)) {
    release.emplace(services_->PrepareRelease(r, next));  // gone: everything it held goes back
    plan = &*release;
  }
  std::string bytes = Encode(next);
  if (!remove && bytes == current_bytes) {
    return ApiResult<std::string>(WithResourceVersion(current_bytes, mod_revision));  // no-op update
  }
  if (dry_run) return ApiResult<std::string>(WithResourceVersion(bytes, mod_revision));
  if (remove) {
    txn.success.push_back(store::RequestOp::Delete(key));
  } else {
    txn.success.push_back(store::RequestOp::Put(key, bytes));
  }
  if (plan) plan->AddTo(txn);
  auto res = store_->Txn(txn);
  if (!res.ok()) return ApiResult<std::string>(ApiError::FromStatus(res.status()));
  if (!res->succeeded) {
    if (plan) {
      auto lost = plan->ClaimLost(*res);
      if (!lost.ok()) return ApiResult<std::string>(lost.error());
    }
    return std::nullopt;  // retried: the object changed or a picked value was taken
  }
  if (plan) plan->Committed();
  return ApiResult<std::string>(WithResourceVersion(bytes, res->revision));
}

ApiResult<std::string> ObjectStorage::Update(const ResourceInfo& r, const std::string& ns,
                                             const std::string& name, Subresource sub,
                                             const Mutator& mutate, bool dry_run) {
  std::string key = Key(r, ns, name);
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    auto res = store_->Range(key, {});
    if (!res.ok()) return ApiError::FromStatus(res.status());
    if (res->kvs.empty()) return ApiError::NotFound(r, name);
    const store::KeyValue& kv = res->kvs[0];
    JsonDoc current;
    if (!ParseStored(kv.value, kv.mod_revision, current)) {
      return ApiError::Internal("stored object " + key + " is not valid JSON");
    }
    JsonDoc next;
    next.CopyFrom(current, next.GetAllocator());
    std::optional<AllocationPlan> plan;  // a Service's allocations and releases
    if (auto err = mutate(next)) return *err;
    if (!next.IsObject()) return ApiError::BadRequest("the body of the request must be a JSON object");
    auto& a = next.GetAllocator();
    std::string current_rv = std::to_string(kv.mod_revision);
    std::string wanted_rv = MetaString(next, "resourceVersion");
    if (!wanted_rv.empty() && wanted_rv != current_rv) {
      return ApiError::Conflict(r, name, "the object has been modified; please apply your changes to the latest version and try again");
    }
    std::string body_name = MetaString(next, "name");
    if (!body_name.empty() && body_name != name) {
      return ApiError::BadRequest("the name of the object (" + body_name +
                                  ") does not match the name on the URL (" + name + ")");
    }
    std::string body_ns = MetaString(next, "namespace");
    if (r.namespaced && !body_ns.empty() && body_ns != ns) {
      return ApiError::BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }

    if (sub == Subresource::kStatus || sub == Subresource::kFinalize) {
      // Only status (or spec.finalizers) comes from the request; everything else stays.
      JsonDoc merged;
      merged.CopyFrom(current, merged.GetAllocator());
      auto& ma = merged.GetAllocator();
      if (sub == Subresource::kStatus) {
        JsonValue status(rapidjson::kObjectType);
        if (const JsonValue* s = Member(next, "status")) status.CopyFrom(*s, ma);
        Set(merged, "status", std::move(status), ma);
      } else {
        JsonValue finalizers(rapidjson::kArrayType);
        if (const JsonValue* f = Path(next, "spec.finalizers")) finalizers.CopyFrom(*f, ma);
        Set(ObjectMember(merged, "spec", ma), "finalizers", std::move(finalizers), ma);
      }
      next.Swap(merged);
    } else {
      Set(next, "apiVersion", Str(r.GroupVersion(), a), a);
      Set(next, "kind", Str(r.kind, a), a);
      JsonValue& meta = ObjectMember(next, "metadata", a);
      const JsonValue& cur_meta = *Member(current, "metadata");
      Set(meta, "name", Str(name, a), a);
      if (r.namespaced) Set(meta, "namespace", Str(ns, a), a);
      for (const char* f : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
        if (const JsonValue* v = Member(cur_meta, f)) {
          Set(meta, f, JsonValue(*v, a), a);
        } else {
          Remove(meta, f);
        }
      }
      if (r.has_status && sub != Subresource::kBinding) {
        if (const JsonValue* s = Member(current, "status")) {
          Set(next, "status", JsonValue(*s, a), a);
        } else {
          Remove(next, "status");
        }
      }
      ApplyDefaults(r, next, a);
      if (SpecChanged(current, next)) {
        int64_t generation = IntAt(current, "metadata.generation").value_or(1);
        Set(ObjectMember(next, "metadata", a), "generation", JsonValue(generation + 1), a);
      }
      auto causes = Validate(r, next, &current);
      if (!causes.empty()) return ApiError::Invalid(r, name, std::move(causes));
      // A finalizer may not be added to an object that is being deleted... but removing is fine.
      if (services_ && ServiceAllocator::Handles(r)) {
        auto prepared = services_->PrepareUpdate(r, current, next, a);
        if (!prepared.ok()) return prepared.error();
        plan.emplace(std::move(prepared.value()));
      }
    }
    auto committed = Commit(r, key, kv.mod_revision, kv.value, next, dry_run, plan ? &*plan : nullptr);
    if (committed) return std::move(*committed);
  }
  return ApiError::Conflict(r, name, "too many concurrent updates; please try again");
}

ApiResult<std::string> ObjectStorage::Delete(const ResourceInfo& r, const std::string& ns,
                                             const std::string& name, const DeleteOptions& options) {
  std::string key = Key(r, ns, name);
  for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
    auto res = store_->Range(key, {});
    if (!res.ok()) return ApiError::FromStatus(res.status());
    if (res->kvs.empty()) return ApiError::NotFound(r, name);
    const store::KeyValue& kv = res->kvs[0];
    JsonDoc obj;
    if (!ParseStored(kv.value, kv.mod_revision, obj)) {
      return ApiError::Internal("stored object " + key + " is not valid JSON");
    }
    auto& a = obj.GetAllocator();
    if (!options.precondition_uid.empty() && options.precondition_uid != MetaString(obj, "uid")) {
      return ApiError::Conflict(r, name, "Precondition failed: UID in precondition: " +
                                             options.precondition_uid + ", UID in object meta: " +
                                             MetaString(obj, "uid"));
    }
    if (!options.precondition_resource_version.empty() &&
        options.precondition_resource_version != std::to_string(kv.mod_revision)) {
      return ApiError::Conflict(r, name, "Precondition failed: ResourceVersion in precondition: " +
                                             options.precondition_resource_version +
                                             ", ResourceVersion in object meta: " +
                                             std::to_string(kv.mod_revision));
    }
    JsonValue& meta = ObjectMember(obj, "metadata", a);
    bool already_deleting = Member(meta, "deletionTimestamp") != nullptr;

    // Propagation policies that keep the owner until its dependents are handled.
    auto add_finalizer = [&](const char* f) {
      JsonValue* list = Member(meta, "finalizers");
      if (!list || !list->IsArray()) {
        Set(meta, "finalizers", JsonValue(rapidjson::kArrayType), a);
        list = Member(meta, "finalizers");
      }
      for (auto& v : list->GetArray()) {
        if (v.IsString() && std::string_view(v.GetString()) == f) return;
      }
      list->PushBack(Str(f, a), a);
    };
    if (!already_deleting) {
      if (options.propagation_policy == "Foreground") add_finalizer("foregroundDeletion");
      if (options.propagation_policy == "Orphan") add_finalizer("orphan");
    }
    if (JsonValue* list = Member(meta, "finalizers"); list && list->IsArray() && list->Empty()) {
      Remove(meta, "finalizers");
    }

    // Pods' graceful deletion (Kubernetes' pod strategy): only a pod on a node that has not
    // finished waits for its agent; a negative grace period means 1 s.
    int64_t grace = 0;
    std::string phase = StrAt(obj, "status.phase");
    if (r.kind == "Pod" && !StrAt(obj, "spec.nodeName").empty() && phase != "Succeeded" && phase != "Failed") {
      grace = options.grace_period_seconds.value_or(
          IntAt(obj, "spec.terminationGracePeriodSeconds").value_or(30));
      if (grace < 0) grace = 1;
    }
    bool lowered = false;
    if (already_deleting && grace == 0 && IntAt(meta, "deletionGracePeriodSeconds").value_or(0) > 0) {
      // A force delete of a terminating pod: record it, so the object goes as soon as no
      // finalizer holds it.
      Set(meta, "deletionGracePeriodSeconds", JsonValue(int64_t{0}), a);
      lowered = true;
    }
    bool graceful = HasFinalizers(obj) || grace > 0;
    if (graceful) {
      if (!lowered && already_deleting && grace >= IntAt(meta, "deletionGracePeriodSeconds").value_or(0)) {
        return WithResourceVersion(kv.value, kv.mod_revision);  // nothing new to record
      }
      if (!already_deleting || grace > 0) {
        Set(meta, "deletionTimestamp", Str(FormatTimestamp(NowSeconds() + grace), a), a);
        Set(meta, "deletionGracePeriodSeconds", JsonValue(grace), a);
        int64_t generation = IntAt(meta, "generation").value_or(1);
        if (!already_deleting) Set(meta, "generation", JsonValue(generation + 1), a);
      }
      if (r.kind == "Namespace") {
        Set(ObjectMember(obj, "status", a), "phase", Str("Terminating", a), a);
      }
      auto committed = Commit(r, key, kv.mod_revision, kv.value, obj, options.dry_run, nullptr);
      if (committed) return std::move(*committed);
      continue;
    }
    if (options.dry_run) return WithResourceVersion(kv.value, kv.mod_revision);
    store::TxnRequest txn;
    txn.compare.push_back({.key = key, .target = store::Compare::Target::kMod,
                           .result = store::Compare::Result::kEqual, .number = kv.mod_revision});
    txn.success.push_back(store::RequestOp::Delete(key));
    std::optional<AllocationPlan> release;
    if (services_ && ServiceAllocator::Handles(r)) {
      release.emplace(services_->PrepareRelease(r, obj));
      release->AddTo(txn);
    }
    auto deleted = store_->Txn(txn);
    if (!deleted.ok()) return ApiError::FromStatus(deleted.status());
    if (deleted->succeeded) {
      if (release) release->Committed();
      return WithResourceVersion(kv.value, kv.mod_revision);
    }
  }
  return ApiError::Conflict(r, name, "too many concurrent updates; please try again");
}

ApiResult<ListResult> ObjectStorage::List(const ResourceInfo& r, const std::string& ns,
                                          const ListOptions& options) {
  std::string prefix = Prefix(r, ns);
  std::string start = prefix;
  int64_t revision = 0;
  if (!options.continue_token.empty()) {
    auto decoded = Base64Decode(options.continue_token);
    JsonDoc token;
    if (decoded) token.Parse(decoded->c_str());
    if (!decoded || token.HasParseError() || !token.IsObject() || !IntAt(token, "rv")) {
      return ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    }
    revision = *IntAt(token, "rv");
    start = prefix + StrAt(token, "start");
  } else if (!options.resource_version.empty() && options.resource_version != "0") {
    char* end = nullptr;
    long long rv = strtoll(options.resource_version.c_str(), &end, 10);
    if (!end || *end != '\0' || rv < 0) {
      return ApiError::BadRequest("invalid resource version: " + options.resource_version);
    }
    if (options.resource_version_match == "Exact") revision = rv;
  }
  std::string end_key = store::PrefixEnd(prefix);
  ListResult out;
  const int64_t limit = options.limit > 0 ? options.limit : 0;
  const int64_t page = limit > 0 ? std::max<int64_t>(limit + 1, 64) : 0;
  JsonDoc doc;
  while (true) {
    store::RangeOptions ro;
    ro.range_end = end_key;
    ro.revision = revision;
    ro.limit = page;
    auto res = store_->Range(start, ro);
    if (!res.ok()) {
      if (res.status().IsCompacted() && !options.continue_token.empty()) {
        return ApiError::Gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
      }
      return ApiError::FromStatus(res.status());
    }
    if (revision == 0) revision = res->revision;
    for (const auto& kv : res->kvs) {
      if (limit > 0 && static_cast<int64_t>(out.items.size()) == limit) {
        // One more match exists past the limit: hand out a continue token.
        out.continue_token = ContinueToken(revision, kv.key.substr(prefix.size()));
        break;
      }
      if (!options.filter.Empty()) {
        doc.Parse(kv.value.data(), kv.value.size());
        if (doc.HasParseError() || !options.filter.Matches(doc)) continue;
      }
      out.items.push_back(WithResourceVersion(kv.value, kv.mod_revision));
    }
    if (!out.continue_token.empty() || !res->more || res->kvs.empty()) break;
    start = res->kvs.back().key + std::string(1, '\0');
  }
  out.revision = revision;
  return out;
}

}  // namespace rc::apiserver
