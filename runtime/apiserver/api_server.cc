#include "rc/apiserver/api_server.h"

#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <thread>
#include <mutex>
#include <set>

#include "api_error.h"
#include "discovery.h"
#include "json_util.h"
#include "object_storage.h"
#include "service_allocator.h"
#include "rc/schema/algorithms.h"
#include "rc/apimachinery/json.h"
#include "rc/apimachinery/patch.h"
#include "rc/apimachinery/yaml.h"
#include "rc/apiserver/http_server.h"
#include "rc/client/rest_client.h"
#include "rc/kproto/kproto.h"
#include "table.h"
#include "watch_cache.h"

namespace rc::apiserver {

namespace am = rc::apimachinery;

namespace {

const char* const kSystemNamespaces[] = {"default", "kube-system", "kube-public", "kube-node-lease"};

// What a resource request addresses (Kubernetes' RequestInfo).
struct RequestTarget {
  std::string group, version;
  std::string ns;
  std::string resource;
  std::string name;
  std::string subresource;
  bool legacy_watch = false;  // /api/v1/watch/...
};

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

// Parses /api/v1/... and /apis/g/v/... beyond the group-version; false if not a resource path.
bool ParseTarget(const std::vector<std::string>& parts, RequestTarget& t) {
  size_t i;
  if (parts.size() >= 3 && parts[0] == "api") {
    t.version = parts[1];
    i = 2;
  } else if (parts.size() >= 4 && parts[0] == "apis") {
    t.group = parts[1];
    t.version = parts[2];
    i = 3;
  } else {
    return false;
  }
  std::vector<std::string> rest(parts.begin() + i, parts.end());
  if (!rest.empty() && rest[0] == "watch") {
    t.legacy_watch = true;
    rest.erase(rest.begin());
  }
  if (rest.empty()) return false;
  if (rest[0] == "namespaces") {
    if (rest.size() > 1) {
      t.ns = rest[1];
      if (rest.size() > 2 && rest[2] != "status" && rest[2] != "finalize") {
        rest.erase(rest.begin(), rest.begin() + 2);
      }
    }
  }
  t.resource = rest[0];
  if (rest.size() > 1) t.name = rest[1];
  if (rest.size() > 2) t.subresource = rest[2];
  if (rest.size() > 3) return false;
  if (t.resource == "namespaces") t.ns.clear();
  return true;
}

HttpResponse Json(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse Error(const ApiError& e) {
  HttpResponse r = Json(e.code, e.ToJson());
  if (e.retry_after_seconds > 0) r.headers.emplace_back("Retry-After", std::to_string(e.retry_after_seconds));
  return r;
}

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

bool WantsTable(const HttpRequest& req) {
  std::string accept = req.Header("accept");
  return accept.find("as=Table") != std::string::npos;
}

TableObjectMode IncludeObject(const HttpRequest& req) {
  std::string v = req.Query("includeObject", "Metadata");
  if (v == "None") return TableObjectMode::kNone;
  if (v == "Object") return TableObjectMode::kObject;
  return TableObjectMode::kMetadata;
}

bool IsDryRun(const HttpRequest& req) { return req.Query("dryRun") == "All"; }

std::string MediaType(const HttpRequest& req) {
  std::string ct = req.Header("content-type");
  size_t semi = ct.find(';');
  if (semi != std::string::npos) ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ') ct.pop_back();
  return ct;
}

// Parses the request body as JSON or YAML per Content-Type.
ApiResult<JsonDoc> ParseBody(const HttpRequest& req, int max_depth) {
  std::string media = MediaType(req);
  if (req.body.empty()) return ApiError::BadRequest("the request body is empty");
  if (media == "application/yaml" || media == "application/apply-patch+yaml") {
    auto doc = am::ParseYamlToJson(req.body, max_depth);
    if (!doc.ok()) return ApiError::BadRequest("the body of the request could not be decoded: " + doc.status().message());
    return std::move(doc.value());
  }
  if (media == "application/vnd.kubernetes.protobuf") {
    // client-go 0.32+ typed clients (kubectl 1.32+ `create ...`) send built-in kinds this way.
    auto doc = rc::kproto::DecodeToJson(req.body);
    if (!doc.ok()) {
      const std::string& m = doc.status().message();
      if (m.find("is not supported") != std::string::npos) return ApiError::UnsupportedMediaType(m);
      return ApiError::BadRequest("the body of the request could not be decoded: " + m);
    }
    return std::move(doc.value());
  }
  auto doc = am::ParseJson(req.body, max_depth);
  if (!doc.ok()) return ApiError::BadRequest("the body of the request could not be decoded: " + doc.status().message());
  return std::move(doc.value());
}

std::string ScaleJson(const ResourceInfo& r, const JsonValue& obj) {
  std::string selector;
  // The selector path holds a LabelSelector object (apps/v1: spec.selector) or, as for custom
  // resources, the selector already in string form (status.selector).
  if (const JsonValue* sel = Path(obj, r.scale_selector_path); sel && sel->IsObject()) {
    auto parsed = am::LabelSelectorFromJson(*sel);
    if (parsed.ok()) selector = parsed->ToString();
  } else if (sel && sel->IsString()) {
    selector = sel->GetString();
  }
  const JsonValue* meta = Member(obj, "metadata");
  std::string out = R"({"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":)" +
                    Quote(meta ? StrAt(*meta, "name") : "");
  if (r.namespaced) out += R"(,"namespace":)" + Quote(meta ? StrAt(*meta, "namespace") : "");
  out += R"(,"uid":)" + Quote(meta ? StrAt(*meta, "uid") : "") + R"(,"resourceVersion":)" +
         Quote(meta ? StrAt(*meta, "resourceVersion") : "") + R"(,"creationTimestamp":)" +
         Quote(meta ? StrAt(*meta, "creationTimestamp") : "") + R"(},"spec":{"replicas":)" +
         std::to_string(IntAt(obj, r.scale_spec_replicas_path).value_or(0)) + R"(},"status":{"replicas":)" +
         std::to_string(IntAt(obj, r.scale_status_replicas_path).value_or(0));
  if (!selector.empty()) out += R"(,"selector":)" + Quote(selector);
  return out + "}}";
}

void SetDotted(JsonValue& obj, std::string_view dotted, JsonValue value, JsonAlloc& a) {
  JsonValue* cur = &obj;
  while (true) {
    size_t dot = dotted.find('.');
    if (dot == std::string_view::npos) {
      Set(*cur, dotted, std::move(value), a);
      return;
    }
    cur = &ObjectMember(*cur, dotted.substr(0, dot), a);
    dotted = dotted.substr(dot + 1);
  }
}

class ApiServerImpl : public ApiServer {
 public:
  ApiServerImpl(store::Store* store, ResourceRegistry registry, const ApiServerOptions& options)
      : store_(store), registry_(std::move(registry)), options_(options), objects_(store),
        pool_(options.worker_threads),
        watch_hub_(store, &registry_,
                   [](const ResourceInfo& r, const JsonValue& obj, int64_t rv) {
                     std::vector<const JsonValue*> one{&obj};
                     return RenderTable(r, one, std::to_string(rv), "", TableObjectMode::kMetadata);
                   },
                   options.watch_window_events, options.bookmark_interval_seconds,
                   options.watch_timeout_seconds) {}

  ~ApiServerImpl() override { Shutdown(); }

  Status InstallResources(const std::vector<schema::ResourceSchema>& schemas, const std::string& origin) override {
    std::lock_guard<std::mutex> lock(install_mu_);
    std::set<std::string> keep;
    for (const auto& s : schemas) {
      // A DSL file may redefine a built-in type: that is how the built-ins move to DSL too.
      const ResourceInfo* existing = registry_.Find(s.group, s.version, s.plural);
      const ResourceInfo* r = registry_.Upsert(FromSchema(s, origin));
      RC_RETURN_IF_ERROR(watch_hub_.AddResource(r));
      if (existing) watch_hub_.RetireResource(existing);  // its watchers finish on the old version
      keep.insert(s.group + "/" + s.version + "/" + s.plural);
    }
    // Types this origin installed before but no longer declares stop being served (their stored
    // objects stay, like a deleted CRD's data in etcd until cleaned up).
    for (const ResourceInfo* r : registry_.All()) {
      if (r->origin == origin && !keep.count(r->group + "/" + r->version + "/" + r->plural)) {
        registry_.Remove(r->group, r->version, r->plural);
        watch_hub_.RetireResource(r);
      }
    }
    return Status::Ok();
  }

  Status Init() {
    if (!options_.service_cluster_ip_range.empty()) {
      auto allocator = ServiceAllocator::Create(
          store_, {.cluster_ip_range = options_.service_cluster_ip_range,
                   .node_port_range = options_.service_node_port_range});
      if (!allocator.ok()) return allocator.status();
      service_allocator_ = std::move(allocator.value());
      RC_RETURN_IF_ERROR(service_allocator_->Repair());
      objects_.SetServiceAllocator(service_allocator_.get());
    }
    RC_RETURN_IF_ERROR(EnsureSystemNamespaces());
    RC_RETURN_IF_ERROR(watch_hub_.Start());
    HttpServerOptions http;
    http.address = options_.address;
    http.port = options_.port;
    http.io_threads = options_.io_threads;
    http.max_body_bytes = options_.max_body_bytes;
    auto server = HttpServer::Start(http, [this](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
      Handle(std::move(req), std::move(ex));
    });
    if (!server.ok()) return server.status();
    http_ = std::move(server.value());
    ready_ = true;
    return Status::Ok();
  }

  uint16_t port() const override { return http_ ? http_->port() : 0; }

  void Shutdown() override {
    if (shut_down_.exchange(true)) return;
    ready_ = false;
    watch_hub_.Stop();
    StopLogStreams();
    if (http_) http_->Shutdown();
    pool_.join();
  }

 private:
  Status EnsureSystemNamespaces() {
    const ResourceInfo* ns = registry_.Find("", "v1", "namespaces");
    if (!ns) return Status::Ok();
    for (const char* name : kSystemNamespaces) {
      JsonDoc doc;
      doc.Parse(R"({"apiVersion":"v1","kind":"Namespace","metadata":{}})");
      Set(doc["metadata"], "name", Str(name, doc.GetAllocator()), doc.GetAllocator());
      auto res = objects_.Create(*ns, "", doc, false);
      if (!res.ok() && res.error().code != 409) {
        return Status::Internal("creating namespace " + std::string(name) + ": " + res.error().message);
      }
    }
    return Status::Ok();
  }

  void Handle(HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    const std::string& path = req.path;
    if (path == "/healthz" || path == "/livez" || path == "/readyz" || path.rfind("/healthz/", 0) == 0 ||
        path.rfind("/livez/", 0) == 0 || path.rfind("/readyz/", 0) == 0) {
      if (path.rfind("/readyz", 0) == 0 && !ready_) return ex->Reply(Text(503, "not ready"));
      return ex->Reply(Text(200, "ok"));
    }
    if (path == "/version" || path == "/version/") return ex->Reply(Json(200, VersionJson(version_)));
    if (path == "/api" || path == "/api/") {
      std::string host = req.Header("host");
      return ex->Reply(Json(200, CoreApiVersionsJson(host.empty() ? options_.address : host)));
    }
    if (path == "/apis" || path == "/apis/") return ex->Reply(Json(200, ApiGroupListJson(registry_)));
    if (path == "/openapi/v2" || path == "/swagger-2.0.0.pb-v1") {
      // kubectl <= 1.28 wants a protobuf (gnostic) OpenAPI v2 document before `apply`. An empty
      // document is a valid one: kubectl then validates nothing client-side and computes patches
      // from its built-in type metadata, as it does with our OpenAPI v3.
      HttpResponse r;
      r.content_type = "application/octet-stream";
      return ex->Reply(std::move(r));
    }
    if (path == "/openapi/v3" || path == "/openapi/v3/") return ex->Reply(Json(200, OpenApiV3IndexJson(registry_)));
    if (path.rfind("/openapi/v3/", 0) == 0) {
      auto doc = OpenApiV3DocumentJson(registry_, path.substr(12), version_);
      if (!doc) return ex->Reply(Error({404, "NotFound", "the server could not find the requested resource"}));
      HttpResponse r = Json(200, std::move(*doc));
      r.headers.emplace_back("Cache-Control", "public, immutable");
      return ex->Reply(std::move(r));
    }

    auto parts = Split(path);
    if (parts.size() == 2 && parts[0] == "api") {
      auto list = ApiResourceListJson(registry_, "", parts[1]);
      if (!list) return ex->Reply(NotFoundPath());
      return ex->Reply(Json(200, std::move(*list)));
    }
    if (parts.size() == 2 && parts[0] == "apis") {
      auto group = ApiGroupJson(registry_, parts[1]);
      if (!group) return ex->Reply(NotFoundPath());
      return ex->Reply(Json(200, std::move(*group)));
    }
    if (parts.size() == 3 && parts[0] == "apis") {
      auto list = ApiResourceListJson(registry_, parts[1], parts[2]);
      if (!list) return ex->Reply(NotFoundPath());
      return ex->Reply(Json(200, std::move(*list)));
    }
    RequestTarget t;
    if (!ParseTarget(parts, t)) return ex->Reply(NotFoundPath());
    const ResourceInfo* r = registry_.Find(t.group, t.version, t.resource);
    if (!r) return ex->Reply(NotFoundPath());
    if (!r->namespaced && !t.ns.empty() && t.resource != "namespaces") return ex->Reply(NotFoundPath());
    if (!t.subresource.empty()) {
      bool ok = (t.subresource == "status" && r->has_status) || (t.subresource == "scale" && r->has_scale) ||
                (t.subresource == "finalize" && r->kind == "Namespace") ||
                (IsCorePod(*r) && (t.subresource == "binding" || t.subresource == "eviction" ||
                                   t.subresource == "log"));
      if (!ok) return ex->Reply(NotFoundPath());
    }

    bool watch = t.legacy_watch || req.Query("watch") == "true" || req.Query("watch") == "1";
    if (watch && req.method == "GET") return ServeWatch(*r, t, req, ex);
    if (t.subresource == "log") return ServeLog(r, std::move(t), std::move(req), ex);

    if (inflight_.fetch_add(1) >= options_.max_requests_inflight) {
      inflight_.fetch_sub(1);
      return ex->Reply(Error(ApiError::TooManyRequests("Too many requests, please try again later.")));
    }
    // Decided before `req` moves into the closure below.
    const bool answer_inline = req.method == "GET";
    auto run = [this, r, t = std::move(t), req = std::move(req), ex]() mutable {
      HttpResponse resp;
      try {
        resp = Dispatch(*r, t, req);
      } catch (const std::exception& e) {
        resp = Error(ApiError::Internal(e.what()));
      }
      inflight_.fetch_sub(1);
      ex->Reply(std::move(resp));
    };
    if (answer_inline) {
      run();  // reads are quick: answer on the I/O thread
    } else {
      boost::asio::post(pool_, std::move(run));
    }
  }

  HttpResponse NotFoundPath() {
    return Error({404, "NotFound", "the server could not find the requested resource"});
  }

  HttpResponse Dispatch(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    const std::string& m = req.method;
    if (t.name.empty()) {
      if (m == "GET") return List(r, t, req);
      if (m == "POST") return Create(r, t, req);
      if (m == "DELETE") return DeleteCollection(r, t, req);
      return Error(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource"));
    }
    if (t.subresource == "scale") return Scale(r, t, req);
    if (t.subresource == "binding") return Bind(r, t, req);
    if (t.subresource == "eviction") return Evict(r, t, req);
    Subresource sub = t.subresource == "status"     ? Subresource::kStatus
                      : t.subresource == "finalize" ? Subresource::kFinalize
                                                    : Subresource::kNone;
    if (m == "GET") {
      auto obj = objects_.Get(r, t.ns, t.name);
      if (!obj.ok()) return Error(obj.error());
      if (WantsTable(req)) {
        JsonDoc doc;
        doc.Parse(obj->data(), obj->size());
        std::vector<const JsonValue*> one{&doc};
        return Json(200, RenderTable(r, one, StrAt(doc, "metadata.resourceVersion"), "", IncludeObject(req)));
      }
      return Json(200, std::move(*obj));
    }
    if (m == "PUT") return Update(r, t, req, sub);
    if (m == "PATCH") return Patch(r, t, req, sub);
    if (m == "DELETE" && sub == Subresource::kNone) return Delete(r, t, req);
    return Error(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource"));
  }

  // NamespaceLifecycle admission: no new objects in missing or terminating namespaces.
  std::optional<ApiError> CheckNamespace(const ResourceInfo& r, const std::string& ns, const std::string& name) {
    if (!r.namespaced) return std::nullopt;
    if (ns.empty()) return ApiError::BadRequest("the namespace of the object must be set");
    const ResourceInfo* nsr = registry_.Find("", "v1", "namespaces");
    if (!nsr) return std::nullopt;  // a server without namespaces (tests) has no lifecycle to check
    auto got = objects_.Get(*nsr, "", ns);
    if (!got.ok()) {
      if (got.error().code == 404) return ApiError::NotFound(*nsr, ns);
      return got.error();
    }
    if (got->find("\"deletionTimestamp\"") != std::string::npos) {
      JsonDoc doc;
      doc.Parse(got->data(), got->size());
      if (Path(doc, "metadata.deletionTimestamp")) {
        ApiError e = ApiError::Forbidden(r, name, "unable to create new content in namespace " + ns +
                                                      " because it is being terminated");
        e.causes.push_back({"NamespaceTerminating", "namespace " + ns + " is being terminated", "metadata.namespace"});
        return e;
      }
    }
    return std::nullopt;
  }

  std::optional<ApiError> CheckKind(const ResourceInfo& r, const JsonValue& body) {
    if (!body.IsObject()) return ApiError::BadRequest("the body of the request must be a JSON object");
    std::string kind = StrAt(body, "kind");
    std::string api_version = StrAt(body, "apiVersion");
    if (!kind.empty() && kind != r.kind) {
      return ApiError::BadRequest("the kind in the data (" + kind + ") does not match the expected kind (" + r.kind + ")");
    }
    if (!api_version.empty() && api_version != r.GroupVersion()) {
      return ApiError::BadRequest("the API version in the data (" + api_version +
                                  ") does not match the expected API version (" + r.GroupVersion() + ")");
    }
    return std::nullopt;
  }

  // Unknown fields (ones the compiled schema does not declare), by fieldValidation as in
  // Kubernetes: Strict → 400 "strict decoding error: unknown field ..."; Warn → the request goes
  // through with one `Warning: 299 - "unknown field ..."` per field (kubectl prints them).
  // Ignore or absent: nothing (Kubernetes' default is Warn, but we keep unknown fields instead of
  // pruning them, so warning about every client would be noise). Resources without a schema skip
  // it. `body` may be an object, a merge patch or a strategic merge patch (directives are skipped).
  struct FieldCheck {
    std::optional<ApiError> error;
    std::string warning_header;  // empty: no warnings
  };
  FieldCheck CheckFieldValidation(const ResourceInfo& r, const HttpRequest& req, const JsonValue& body,
                                  bool is_patch = false) {
    std::string mode = req.Query("fieldValidation");
    if (!r.schema || !r.schema->root || (mode != "Strict" && mode != "Warn")) return {};
    auto unknown = schema::UnknownFields(*r.schema, body, is_patch);
    if (unknown.empty()) return {};
    FieldCheck out;
    if (mode == "Strict") {
      std::string msg = "strict decoding error: ";
      for (size_t i = 0; i < unknown.size(); ++i) msg += (i ? ", " : "") + std::string("unknown field \"") + unknown[i] + "\"";
      out.error = ApiError::BadRequest(msg);
      return out;
    }
    for (size_t i = 0; i < unknown.size(); ++i) {
      // warn-text is a quoted-string: escape backslashes and quotes.
      std::string text = "unknown field \"" + unknown[i] + "\"", quoted;
      for (char c : text) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
      }
      out.warning_header += (i ? ", " : "") + std::string("299 - \"") + quoted + "\"";
    }
    return out;
  }

  static HttpResponse WithWarnings(HttpResponse resp, const FieldCheck& check) {
    if (!check.warning_header.empty()) resp.headers.emplace_back("Warning", check.warning_header);
    return resp;
  }

  HttpResponse Create(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    auto body = ParseBody(req, options_.max_json_depth);
    if (!body.ok()) return Error(body.error());
    if (auto e = CheckKind(r, *body)) return Error(*e);
    FieldCheck fields = CheckFieldValidation(r, req, *body);
    if (fields.error) return Error(*fields.error);
    std::string ns = t.ns;
    if (r.namespaced && ns.empty()) ns = StrAt(*body, "metadata.namespace");
    std::string name = StrAt(*body, "metadata.name");
    if (auto e = CheckNamespace(r, ns, name)) return Error(*e);
    auto created = objects_.Create(r, ns, *body, IsDryRun(req));
    if (!created.ok()) return Error(created.error());
    return WithWarnings(Json(201, std::move(*created)), fields);
  }

  HttpResponse Update(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req, Subresource sub) {
    auto body = ParseBody(req, options_.max_json_depth);
    if (!body.ok()) return Error(body.error());
    if (auto e = CheckKind(r, *body)) return Error(*e);
    FieldCheck fields = CheckFieldValidation(r, req, *body);
    if (fields.error) return Error(*fields.error);
    JsonDoc& replacement = *body;
    auto res = objects_.Update(r, t.ns, t.name, sub, [&](JsonDoc& obj) -> std::optional<ApiError> {
      obj.CopyFrom(replacement, obj.GetAllocator());
      return std::nullopt;
    }, IsDryRun(req));
    if (!res.ok()) return Error(res.error());
    return WithWarnings(Json(200, std::move(*res)), fields);
  }

  std::optional<ApiError> ApplyPatch(const HttpRequest& req, const JsonValue& patch, JsonDoc& obj,
                                     const am::PatchSchema& strategies) {
    std::string media = MediaType(req);
    Status s;
    if (media == "application/json-patch+json") {
      s = am::ApplyJsonPatch(obj, patch);
    } else if (media == "application/merge-patch+json") {
      s = am::ApplyMergePatch(obj, patch, obj.GetAllocator());
    } else if (media == "application/strategic-merge-patch+json") {
      s = am::ApplyStrategicMergePatch(obj, patch, obj.GetAllocator(), strategies);
    } else if (media == "application/apply-patch+yaml" || media == "application/apply-patch+cbor") {
      return ApiError::UnsupportedMediaType("server-side apply is not supported yet; use client-side `kubectl apply` (the default)");
    } else {
      return ApiError::UnsupportedMediaType("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json");
    }
    if (!s.ok()) {
      ApiError e = ApiError::BadRequest(s.message());
      e.code = 422;
      e.reason = "Invalid";
      return e;
    }
    return std::nullopt;
  }

  ApiResult<JsonDoc> ParsePatchBody(const HttpRequest& req) {
    if (req.body.empty()) return ApiError::BadRequest("the request body is empty");
    auto doc = am::ParseJson(req.body, options_.max_json_depth);
    if (!doc.ok()) {
      return ApiError::BadRequest("error decoding patch: " + doc.status().message());
    }
    return std::move(doc.value());
  }

  HttpResponse Patch(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req, Subresource sub) {
    auto patch = ParsePatchBody(req);
    if (!patch.ok()) return Error(patch.error());
    JsonDoc& p = *patch;
    // Merge and strategic merge patches have the object's shape: their unknown fields are the
    // ones fieldValidation is about (JSON patches are not checked).
    FieldCheck fields;
    if (MediaType(req) != "application/json-patch+json" && p.IsObject()) {
      fields = CheckFieldValidation(r, req, p, /*is_patch=*/true);
      if (fields.error) return Error(*fields.error);
    }
    auto res = objects_.Update(r, t.ns, t.name, sub, [&](JsonDoc& obj) -> std::optional<ApiError> {
      std::string current_rv = StrAt(obj, "metadata.resourceVersion");
      if (auto e = ApplyPatch(req, p, obj, r.PatchStrategies())) return e;
      // A patch that does not name a resourceVersion must not trip the precondition.
      if (StrAt(obj, "metadata.resourceVersion") == current_rv) {
        if (JsonValue* meta = Member(obj, "metadata")) Remove(*meta, "resourceVersion");
      }
      return std::nullopt;
    }, IsDryRun(req));
    if (!res.ok()) return Error(res.error());
    return WithWarnings(Json(200, std::move(*res)), fields);
  }

  HttpResponse Scale(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    if (req.method == "GET") {
      auto obj = objects_.Get(r, t.ns, t.name);
      if (!obj.ok()) return Error(obj.error());
      JsonDoc doc;
      doc.Parse(obj->data(), obj->size());
      return Json(200, ScaleJson(r, doc));
    }
    if (req.method != "PUT" && req.method != "PATCH") {
      return Error(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource"));
    }
    JsonDoc body;
    if (req.method == "PUT") {
      auto parsed = ParseBody(req, options_.max_json_depth);
      if (!parsed.ok()) return Error(parsed.error());
      body.Swap(*parsed);
    } else {
      auto parsed = ParsePatchBody(req);
      if (!parsed.ok()) return Error(parsed.error());
      body.Swap(*parsed);
    }
    auto res = objects_.Update(r, t.ns, t.name, Subresource::kNone, [&](JsonDoc& obj) -> std::optional<ApiError> {
      JsonDoc scale;
      std::string scale_json = ScaleJson(r, obj);
      scale.Parse(scale_json.data(), scale_json.size());
      if (req.method == "PUT") {
        scale.CopyFrom(body, scale.GetAllocator());
      } else if (auto e = ApplyPatch(req, body, scale, am::KubernetesPatchSchema())) {
        return e;
      }
      auto replicas = IntAt(scale, "spec.replicas");
      if (!replicas) {
        return ApiError::Invalid(r, t.name, {{"FieldValueRequired", "Required value", "spec.replicas"}});
      }
      if (*replicas < 0) {
        return ApiError::Invalid(r, t.name, {{"FieldValueInvalid", "Invalid value: " + std::to_string(*replicas) + ": must be greater than or equal to 0", "spec.replicas"}});
      }
      std::string current_rv = StrAt(obj, "metadata.resourceVersion");
      std::string wanted_rv = StrAt(scale, "metadata.resourceVersion");
      SetDotted(obj, r.scale_spec_replicas_path, JsonValue(*replicas), obj.GetAllocator());
      JsonValue& meta = ObjectMember(obj, "metadata", obj.GetAllocator());
      if (wanted_rv.empty() || wanted_rv == current_rv) {
        Remove(meta, "resourceVersion");
      } else {
        Set(meta, "resourceVersion", Str(wanted_rv, obj.GetAllocator()), obj.GetAllocator());
      }
      return std::nullopt;
    }, IsDryRun(req));
    if (!res.ok()) return Error(res.error());
    JsonDoc doc;
    doc.Parse(res->data(), res->size());
    return Json(200, ScaleJson(r, doc));
  }

  static bool IsCorePod(const ResourceInfo& r) { return r.kind == "Pod" && r.group.empty(); }

  static std::string SuccessStatus(int code) {
    return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","code":)" + std::to_string(code) + "}";
  }

  // pods/binding (POST): assigns a pending pod to a node, the scheduler's only write. Sets
  // spec.nodeName and the PodScheduled condition in one write; 409 if the pod is already bound or
  // being deleted.
  HttpResponse Bind(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    if (req.method != "POST") {
      return Error(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource"));
    }
    auto body = ParseBody(req, options_.max_json_depth);
    if (!body.ok()) return Error(body.error());
    std::string kind = StrAt(*body, "kind");
    if (!kind.empty() && kind != "Binding") {
      return Error(ApiError::BadRequest("the kind in the data (" + kind + ") does not match the expected kind (Binding)"));
    }
    std::string node = StrAt(*body, "target.name");
    if (node.empty()) return Error(ApiError::Invalid(r, t.name, {{"FieldValueRequired", "Required value", "target.name"}}));
    std::string target_kind = StrAt(*body, "target.kind");
    if (!target_kind.empty() && target_kind != "Node") {
      return Error(ApiError::Invalid(r, t.name, {{"FieldValueNotSupported", "Unsupported value: " + Quote(target_kind) + ": supported values: \"Node\"", "target.kind"}}));
    }
    std::string want_uid = StrAt(*body, "metadata.uid");
    auto res = objects_.Update(r, t.ns, t.name, Subresource::kBinding, [&](JsonDoc& obj) -> std::optional<ApiError> {
      if (!want_uid.empty() && StrAt(obj, "metadata.uid") != want_uid) {
        return ApiError::Conflict(r, t.name, "the UID in the binding (" + want_uid + ") does not match the pod's");
      }
      if (Path(obj, "metadata.deletionTimestamp")) {
        return ApiError::Conflict(r, t.name, "pod " + t.name + " is being deleted, cannot be assigned to a host");
      }
      std::string current = StrAt(obj, "spec.nodeName");
      if (!current.empty()) {
        return ApiError::Conflict(r, t.name, "pod " + t.name + " is already assigned to node " + Quote(current));
      }
      auto& a = obj.GetAllocator();
      Set(ObjectMember(obj, "spec", a), "nodeName", Str(node, a), a);
      JsonValue& status = ObjectMember(obj, "status", a);
      JsonValue* conditions = Member(status, "conditions");
      if (!conditions || !conditions->IsArray()) {
        Set(status, "conditions", JsonValue(rapidjson::kArrayType), a);
        conditions = Member(status, "conditions");
      }
      for (auto it = conditions->Begin(); it != conditions->End();) {
        if (StrAt(*it, "type") == "PodScheduled") {
          it = conditions->Erase(it);
        } else {
          ++it;
        }
      }
      JsonValue cond(rapidjson::kObjectType);
      Set(cond, "type", Str("PodScheduled", a), a);
      Set(cond, "status", Str("True", a), a);
      Set(cond, "lastProbeTime", JsonValue(), a);
      Set(cond, "lastTransitionTime", Str(FormatTimestamp(NowSeconds()), a), a);
      conditions->PushBack(std::move(cond), a);
      return std::nullopt;
    }, IsDryRun(req));
    if (!res.ok()) return Error(res.error());
    return Json(201, SuccessStatus(201));
  }

  // pods/eviction (POST, policy/v1 Eviction): a graceful delete with the eviction's
  // deleteOptions. PodDisruptionBudgets are not served yet, so no budget can refuse one.
  HttpResponse Evict(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    if (req.method != "POST") {
      return Error(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource"));
    }
    auto body = ParseBody(req, options_.max_json_depth);
    if (!body.ok()) return Error(body.error());
    std::string kind = StrAt(*body, "kind");
    if (!kind.empty() && kind != "Eviction") {
      return Error(ApiError::BadRequest("the kind in the data (" + kind + ") does not match the expected kind (Eviction)"));
    }
    std::string body_name = StrAt(*body, "metadata.name");
    if (!body_name.empty() && body_name != t.name) {
      return Error(ApiError::BadRequest("name in URL does not match name in Eviction object"));
    }
    DeleteOptions o;
    o.dry_run = IsDryRun(req);
    if (const JsonValue* d = Member(*body, "deleteOptions"); d && d->IsObject()) {
      if (auto g = IntAt(*d, "gracePeriodSeconds")) o.grace_period_seconds = *g;
      o.precondition_uid = StrAt(*d, "preconditions.uid");
      o.precondition_resource_version = StrAt(*d, "preconditions.resourceVersion");
      if (const JsonValue* dr = Member(*d, "dryRun"); dr && dr->IsArray() && !dr->Empty()) o.dry_run = true;
      o.propagation_policy = StrAt(*d, "propagationPolicy");
    }
    auto res = objects_.Delete(r, t.ns, t.name, o);
    if (!res.ok()) return Error(res.error());
    return Json(201, SuccessStatus(201));
  }

  // pods/log (GET): proxied to the node agent serving the pod (GET
  // http://<node InternalIP>:<kubeletEndpoint port>/containerLogs/<ns>/<pod>/<container>?...). With
  // follow=true the agent's chunks are relayed as they come, on a thread of their own.
  void ServeLog(const ResourceInfo* r, RequestTarget t, HttpRequest req, const std::shared_ptr<HttpExchange>& ex) {
    if (req.method != "GET") {
      return ex->Reply(Error(ApiError::MethodNotAllowed("the server does not allow this method on the requested resource")));
    }
    auto target = LogTarget(*r, t, req);
    if (!target.ok()) return ex->Reply(Error(target.error()));
    {
      std::lock_guard<std::mutex> lock(log_mu_);
      if (log_stopping_) return ex->Reply(Error(ApiError::Internal("the server is shutting down")));
      ++log_active_;
    }
    std::thread([this, target = std::move(*target), follow = req.Query("follow") == "true", ex] {
      RelayLog(target.first, target.second, follow, ex);
      std::lock_guard<std::mutex> lock(log_mu_);
      --log_active_;
      log_cv_.notify_all();
    }).detach();
  }

  // (agent base URL, agent path with query) for a pods/log request, or the error to answer.
  ApiResult<std::pair<std::string, std::string>> LogTarget(const ResourceInfo& r, const RequestTarget& t,
                                                          const HttpRequest& req) {
    auto got = objects_.Get(r, t.ns, t.name);
    if (!got.ok()) return got.error();
    JsonDoc pod;
    pod.Parse(got->data(), got->size());
    std::vector<std::string> names, all;
    for (const char* list : {"spec.containers", "spec.initContainers"}) {
      if (const JsonValue* cs = Path(pod, list); cs && cs->IsArray()) {
        for (const auto& c : cs->GetArray()) {
          all.push_back(StrAt(c, "name"));
          if (std::string_view(list) == "spec.containers") names.push_back(all.back());
        }
      }
    }
    std::string container = req.Query("container");
    if (container.empty()) {
      if (const JsonValue* ann = Path(pod, "metadata.annotations")) {
        if (const JsonValue* v = Member(*ann, "kubectl.kubernetes.io/default-container"); v && v->IsString()) {
          container = v->GetString();
        }
      }
      if (container.empty()) {
        if (names.size() != 1) {
          std::string choices;
          for (const auto& n : names) choices += (choices.empty() ? "" : " ") + n;
          return ApiError::BadRequest("a container name must be specified for pod " + t.name +
                                      ", choose one of: [" + choices + "]");
        }
        container = names[0];
      }
    }
    if (std::find(all.begin(), all.end(), container) == all.end()) {
      return ApiError::BadRequest("container " + container + " is not valid for pod " + t.name);
    }
    std::string node_name = StrAt(pod, "spec.nodeName");
    if (node_name.empty()) return ApiError::BadRequest("pod " + t.name + " does not have a host assigned");
    const ResourceInfo* nodes = registry_.Find("", "v1", "nodes");
    if (!nodes) return ApiError::Internal("nodes are not served");
    auto node_json = objects_.Get(*nodes, "", node_name);
    if (!node_json.ok()) return node_json.error();
    JsonDoc node;
    node.Parse(node_json->data(), node_json->size());
    std::string address;
    if (const JsonValue* addrs = Path(node, "status.addresses"); addrs && addrs->IsArray()) {
      for (const auto& a : addrs->GetArray()) {
        if (StrAt(a, "type") == "InternalIP") {
          address = StrAt(a, "address");
          break;
        }
      }
    }
    int64_t port = IntAt(node, "status.daemonEndpoints.kubeletEndpoint.Port").value_or(0);
    if (address.empty() || port <= 0) {
      return ApiError::BadRequest("node " + node_name + " does not report an InternalIP address and a kubelet port");
    }
    std::string path = "/containerLogs/" + t.ns + "/" + t.name + "/" + container;
    std::string query;
    for (const char* q : {"follow", "tailLines", "previous", "timestamps", "limitBytes", "sinceSeconds"}) {
      if (req.HasQuery(q)) query += std::string(query.empty() ? "?" : "&") + q + "=" + client::UrlEncode(req.Query(q));
    }
    std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
    return std::make_pair("http://" + host + ":" + std::to_string(port), path + query);
  }

  void RelayLog(const std::string& base, const std::string& path, bool follow, const std::shared_ptr<HttpExchange>& ex) {
    client::RestClient::Options o;
    o.user_agent = "rc-apiserver";
    o.connect_timeout_ms = 3000;
    o.request_timeout_ms = 30000;
    o.watch_idle_timeout_ms = 24 * 3600 * 1000;  // a quiet container is not a dead stream
    auto agent = client::RestClient::Create(base, o);
    if (!agent.ok()) return ex->Reply(Error(ApiError::Internal(agent.status().message())));
    if (!follow) {
      auto reply = (*agent)->Do("GET", path, "", "", 0);
      if (!reply.ok()) {
        return ex->Reply(Error({502, "ServiceUnavailable", "error talking to the node agent: " + reply.status().message()}));
      }
      if (reply->status / 100 != 2) return ex->Reply(Json(reply->status, reply->body));
      return ex->Reply(Text(200, std::move(reply->body)));
    }
    // Shared: the stream's close callback may run on an I/O thread after this function returned.
    auto handle = std::make_shared<client::WatchHandle>();
    {
      std::lock_guard<std::mutex> lock(log_mu_);
      if (log_stopping_) return ex->Reply(Error(ApiError::Internal("the server is shutting down")));
      log_handles_.insert(handle);
    }
    // The agent's bytes go through unchanged (blank lines, partial lines), and the reply starts
    // as soon as the agent's does, so kubectl sees a quiet container's stream open.
    std::shared_ptr<HttpStream> stream;
    Status s = (*agent)->StreamBytes(
        path,
        [&] {
          stream = ex->StartStream(200, "text/plain; charset=utf-8");
          stream->OnClose([handle] { handle->Cancel(); });
        },
        [&](std::string_view data) { return stream->Send(std::make_shared<const std::string>(data)); }, handle.get());
    {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_handles_.erase(handle);
    }
    if (stream) {
      stream->Close();
    } else if (s.IsNotFound()) {
      ex->Reply(Error({404, "NotFound", s.message()}));  // the agent's answer: no such container (yet)
    } else if (s.code() == StatusCode::kInvalidArgument) {
      ex->Reply(Error(ApiError::BadRequest(s.message())));
    } else if (!s.ok()) {
      ex->Reply(Error({502, "ServiceUnavailable", "error talking to the node agent: " + s.message()}));
    } else {
      ex->Reply(Text(200, ""));
    }
  }

  // Ends every relayed log stream and waits for their threads.
  // (A relay that is not a follow ends within its request timeout, 30 s.)
  void StopLogStreams() {
    std::unique_lock<std::mutex> lock(log_mu_);
    log_stopping_ = true;
    for (const auto& h : log_handles_) h->Cancel();
    log_cv_.wait_for(lock, std::chrono::seconds(40), [this] { return log_active_ == 0; });
  }

  ApiResult<DeleteOptions> ParseDeleteOptions(const HttpRequest& req) {
    DeleteOptions o;
    o.propagation_policy = req.Query("propagationPolicy");
    if (req.HasQuery("gracePeriodSeconds")) o.grace_period_seconds = atoll(req.Query("gracePeriodSeconds").c_str());
    o.dry_run = IsDryRun(req);
    if (req.Query("orphanDependents") == "true") o.propagation_policy = "Orphan";
    if (!req.body.empty()) {
      auto body = am::ParseJson(req.body, options_.max_json_depth);
      if (!body.ok()) return ApiError::BadRequest("error decoding DeleteOptions: " + body.status().message());
      const JsonDoc& b = *body;
      if (auto p = StrAt(b, "propagationPolicy"); !p.empty()) o.propagation_policy = p;
      if (auto g = IntAt(b, "gracePeriodSeconds")) o.grace_period_seconds = *g;
      if (const JsonValue* od = Member(b, "orphanDependents"); od && od->IsBool()) {
        if (od->GetBool()) o.propagation_policy = "Orphan";
      }
      o.precondition_uid = StrAt(b, "preconditions.uid");
      o.precondition_resource_version = StrAt(b, "preconditions.resourceVersion");
      if (const JsonValue* dr = Member(b, "dryRun"); dr && dr->IsArray() && !dr->Empty()) o.dry_run = true;
    }
    const std::string& p = o.propagation_policy;
    if (!p.empty() && p != "Background" && p != "Foreground" && p != "Orphan") {
      return ApiError::BadRequest("DeleteOptions.propagationPolicy: Unsupported value: " + Quote(p) +
                                  ": supported values: \"Foreground\", \"Background\", \"Orphan\"");
    }
    return o;
  }

  HttpResponse Delete(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    auto options = ParseDeleteOptions(req);
    if (!options.ok()) return Error(options.error());
    if (r.kind == "Namespace") {
      for (const char* n : kSystemNamespaces) {
        if (t.name == n && t.name != "kube-node-lease") {
          return Error(ApiError::Forbidden(r, t.name, "this namespace may not be deleted"));
        }
      }
    }
    auto res = objects_.Delete(r, t.ns, t.name, *options);
    if (!res.ok()) return Error(res.error());
    return Json(200, std::move(*res));
  }

  HttpResponse DeleteCollection(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    auto options = ParseDeleteOptions(req);
    if (!options.ok()) return Error(options.error());
    auto filter = ParseListFilter(r, req.Query("labelSelector"), req.Query("fieldSelector"));
    if (!filter.ok()) return Error(filter.error());
    ListOptions lo;
    lo.filter = std::move(*filter);
    auto list = objects_.List(r, t.ns, lo);
    if (!list.ok()) return Error(list.error());
    std::string items;
    for (const auto& item : list->items) {
      JsonDoc doc;
      doc.Parse(item.data(), item.size());
      auto res = objects_.Delete(r, StrAt(doc, "metadata.namespace"), StrAt(doc, "metadata.name"), *options);
      if (!res.ok() && res.error().code != 404) return Error(res.error());
      if (res.ok()) items += (items.empty() ? "" : ",") + *res;
    }
    return Json(200, R"({"kind":)" + Quote(r.ListKind()) + R"(,"apiVersion":)" + Quote(r.GroupVersion()) +
                         R"(,"metadata":{},"items":[)" + items + "]}");
  }

  HttpResponse List(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req) {
    auto filter = ParseListFilter(r, req.Query("labelSelector"), req.Query("fieldSelector"));
    if (!filter.ok()) return Error(filter.error());
    ListOptions lo;
    lo.filter = std::move(*filter);
    if (req.HasQuery("limit")) lo.limit = atoll(req.Query("limit").c_str());
    lo.continue_token = req.Query("continue");
    lo.resource_version = req.Query("resourceVersion");
    lo.resource_version_match = req.Query("resourceVersionMatch");
    auto list = objects_.List(r, t.ns, lo);
    if (!list.ok()) return Error(list.error());
    std::string rv = std::to_string(list->revision);
    if (WantsTable(req)) {
      std::vector<JsonDoc> docs(list->items.size());
      std::vector<const JsonValue*> ptrs;
      ptrs.reserve(docs.size());
      for (size_t i = 0; i < docs.size(); ++i) {
        docs[i].Parse(list->items[i].data(), list->items[i].size());
        ptrs.push_back(&docs[i]);
      }
      return Json(200, RenderTable(r, ptrs, rv, list->continue_token, IncludeObject(req)));
    }
    size_t total = 128;
    for (const auto& item : list->items) total += item.size() + 1;
    std::string out;
    out.reserve(total);
    out += R"({"kind":)" + Quote(r.ListKind()) + R"(,"apiVersion":)" + Quote(r.GroupVersion()) +
           R"(,"metadata":{"resourceVersion":)" + Quote(rv);
    if (!list->continue_token.empty()) out += R"(,"continue":)" + Quote(list->continue_token);
    out += R"(},"items":[)";
    for (size_t i = 0; i < list->items.size(); ++i) {
      if (i) out += ',';
      out += list->items[i];
    }
    out += "]}";
    return Json(200, std::move(out));
  }

  void ServeWatch(const ResourceInfo& r, const RequestTarget& t, const HttpRequest& req,
                  const std::shared_ptr<HttpExchange>& ex) {
    auto filter = ParseListFilter(r, req.Query("labelSelector"), req.Query("fieldSelector"));
    if (!filter.ok()) return ex->Reply(Error(filter.error()));
    WatchRequest w;
    w.ns = t.ns;
    w.filter = std::move(*filter);
    if (!t.name.empty()) {
      // A watch on one object: a field selector on its name.
      auto by_name = am::ParseFieldSelector("metadata.name=" + t.name);
      if (by_name.ok()) {
        if (w.filter.fields) {
          auto combined = am::ParseFieldSelector(req.Query("fieldSelector") + ",metadata.name=" + t.name);
          if (combined.ok()) w.filter.fields = std::move(combined.value());
        } else {
          w.filter.fields = std::move(by_name.value());
        }
      }
    }
    w.format = WantsTable(req) ? WireFormat::kTable : WireFormat::kObject;
    w.bookmarks = req.Query("allowWatchBookmarks") == "true";
    if (req.HasQuery("timeoutSeconds")) w.timeout_seconds = atoll(req.Query("timeoutSeconds").c_str());
    w.resource_version = req.Query("resourceVersion");
    if (!w.resource_version.empty() && w.resource_version != "0") {
      char* end = nullptr;
      strtoll(w.resource_version.c_str(), &end, 10);
      if (!end || *end) return ex->Reply(Error(ApiError::BadRequest("invalid resource version: " + w.resource_version)));
    }
    auto stream = ex->StartStream(200, "application/json");
    if (auto err = watch_hub_.Serve(r, w, stream)) {
      stream->Send(std::make_shared<const std::string>(R"({"type":"ERROR","object":)" + err->ToJson() + "}\n"));
      stream->Close();
    }
  }

  store::Store* store_;
  ResourceRegistry registry_;
  std::mutex install_mu_;
  ApiServerOptions options_;
  std::unique_ptr<ServiceAllocator> service_allocator_;  // outlives objects_' use of it
  ObjectStorage objects_;
  boost::asio::thread_pool pool_;
  WatchHub watch_hub_;
  std::unique_ptr<HttpServer> http_;
  VersionInfo version_;
  std::mutex log_mu_;  // guards log_handles_, log_active_
  std::condition_variable log_cv_;
  std::set<std::shared_ptr<client::WatchHandle>> log_handles_;
  int log_active_ = 0;
  bool log_stopping_ = false;
  std::atomic<int> inflight_{0};
  std::atomic<bool> ready_{false};
  std::atomic<bool> shut_down_{false};
};

}  // namespace

Result<std::unique_ptr<ApiServer>> ApiServer::Start(store::Store* store, ResourceRegistry registry,
                                                     const ApiServerOptions& options) {
  auto server = std::make_unique<ApiServerImpl>(store, std::move(registry), options);
  Status s = server->Init();
  if (!s.ok()) return s;
  return std::unique_ptr<ApiServer>(std::move(server));
}

}  // namespace rc::apiserver
