#include "discovery.h"

#include "rc/schema/algorithms.h"

#include <cstdio>
#include <functional>

#include "json_util.h"

namespace rc::apiserver {

namespace {

std::string StringArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += Quote(items[i]);
  }
  return out + "]";
}

// Empty when the group is not served (anymore: the registry can change between two calls).
std::string GroupJson(const ResourceRegistry& reg, const std::string& group) {
  auto versions = reg.Versions(group);
  if (versions.empty()) return "";
  std::string out = R"({"name":)" + Quote(group) + R"(,"versions":[)";
  for (size_t i = 0; i < versions.size(); ++i) {
    if (i) out += ",";
    out += R"({"groupVersion":)" + Quote(group + "/" + versions[i]) + R"(,"version":)" + Quote(versions[i]) + "}";
  }
  out += R"(],"preferredVersion":{"groupVersion":)" + Quote(group + "/" + versions[0]) +
         R"(,"version":)" + Quote(versions[0]) + "}}";
  return out;
}

std::string Hex(size_t h) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%016zX", h);
  return buf;
}

std::string GvPath(const std::string& group, const std::string& version) {
  return group.empty() ? "api/" + version : "apis/" + group + "/" + version;
}

std::string SchemaName(const ResourceInfo& r) {
  std::string g = r.group.empty() ? "core" : r.group;
  return "io.rc.api." + g + "." + r.version + "." + r.kind;
}

std::string Gvk(const ResourceInfo& r) {
  return R"({"group":)" + Quote(r.group) + R"(,"version":)" + Quote(r.version) + R"(,"kind":)" + Quote(r.kind) + "}";
}

std::string Param(const char* name, const char* in, bool required = false) {
  return R"({"name":")" + std::string(name) + R"(","in":")" + in + R"(")" +
         (required ? R"(,"required":true)" : "") + R"(,"schema":{"type":"string","uniqueItems":true}})";
}

std::string Operation(const ResourceInfo& r, const std::string& action, const std::string& verb,
                      bool with_body, bool patch, bool name_and_ns, bool ns_only) {
  std::string op = R"({"operationId":)" + Quote(verb + r.kind) + R"(,"x-kubernetes-action":)" + Quote(action) +
                   R"(,"x-kubernetes-group-version-kind":)" + Gvk(r) + R"(,"parameters":[)";
  std::vector<std::string> params;
  if (name_and_ns) params.push_back(Param("name", "path", true));
  if ((name_and_ns || ns_only) && r.namespaced) params.push_back(Param("namespace", "path", true));
  if (with_body) {
    params.push_back(Param("dryRun", "query"));
    params.push_back(Param("fieldManager", "query"));
    params.push_back(Param("fieldValidation", "query"));
  }
  if (patch) params.push_back(Param("force", "query"));
  if (action == "list" || action == "watch") {
    for (const char* p : {"labelSelector", "fieldSelector", "limit", "continue", "resourceVersion",
                          "resourceVersionMatch", "timeoutSeconds", "watch", "allowWatchBookmarks"}) {
      params.push_back(Param(p, "query"));
    }
  }
  for (size_t i = 0; i < params.size(); ++i) op += (i ? "," : "") + params[i];
  op += "]";
  std::string ref = R"({"$ref":"#/components/schemas/)" + SchemaName(r) + R"("})";
  if (with_body) {
    op += R"(,"requestBody":{"content":{)";
    if (patch) {
      // No strategic-merge-patch+json here: kubectl then computes apply patches from its
      // built-in type metadata, which our server merges by the same keys.
      op += R"("application/json-patch+json":{"schema":{"type":"object"}},"application/merge-patch+json":{"schema":{"type":"object"}})";
    } else {
      op += R"("*/*":{"schema":)" + ref + "}";
    }
    op += R"(},"required":true})";
  }
  op += R"(,"responses":{"200":{"description":"OK","content":{"application/json":{"schema":)" + ref + "}}}}}";
  return op;
}

}  // namespace

std::string VersionJson(const VersionInfo& v) {
  return R"({"major":)" + Quote(v.major) + R"(,"minor":)" + Quote(v.minor) + R"(,"gitVersion":)" +
         Quote(v.git_version) +
         R"(,"gitCommit":"rc","gitTreeState":"clean","buildDate":"2026-11-22T00:00:00Z","goVersion":"go1.22.0","compiler":"gc","platform":"linux/amd64"})";
}

std::string CoreApiVersionsJson(const std::string& server_address) {
  return R"({"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":)" +
         Quote(server_address) + "}]}";
}

std::string ApiGroupListJson(const ResourceRegistry& reg) {
  std::string out = R"({"kind":"APIGroupList","apiVersion":"v1","groups":[)";
  bool first = true;
  for (const auto& g : reg.Groups()) {
    if (g.empty()) continue;
    std::string json = GroupJson(reg, g);
    if (json.empty()) continue;
    if (!first) out += ",";
    first = false;
    out += json;
  }
  return out + "]}";
}

std::optional<std::string> ApiGroupJson(const ResourceRegistry& reg, const std::string& group) {
  if (group.empty()) return std::nullopt;
  std::string g = GroupJson(reg, group);
  if (g.empty()) return std::nullopt;
  return R"({"kind":"APIGroup","apiVersion":"v1",)" + g.substr(1);
}

std::optional<std::string> ApiResourceListJson(const ResourceRegistry& reg, const std::string& group,
                                               const std::string& version) {
  auto resources = reg.InGroupVersion(group, version);
  if (resources.empty()) return std::nullopt;
  std::string gv = group.empty() ? version : group + "/" + version;
  std::string out = R"({"kind":"APIResourceList","apiVersion":"v1","groupVersion":)" + Quote(gv) + R"(,"resources":[)";
  bool first = true;
  auto add = [&](const std::string& json) {
    if (!first) out += ",";
    first = false;
    out += json;
  };
  for (const ResourceInfo* r : resources) {
    std::string ns = r->namespaced ? "true" : "false";
    std::string main = R"({"name":)" + Quote(r->plural) + R"(,"singularName":)" + Quote(r->singular) +
                       R"(,"namespaced":)" + ns + R"(,"kind":)" + Quote(r->kind) +
                       R"(,"verbs":["create","delete","deletecollection","get","list","patch","update","watch"])";
    if (!r->short_names.empty()) main += R"(,"shortNames":)" + StringArray(r->short_names);
    if (!r->categories.empty()) main += R"(,"categories":)" + StringArray(r->categories);
    main += R"(,"storageVersionHash":)" + Quote(Hex(std::hash<std::string>{}(r->GroupVersion() + r->kind)).substr(0, 11)) + "}";
    add(main);
    if (r->has_status) {
      add(R"({"name":)" + Quote(r->plural + "/status") + R"(,"singularName":"","namespaced":)" + ns +
          R"(,"kind":)" + Quote(r->kind) + R"(,"verbs":["get","patch","update"]})");
    }
    if (r->has_scale) {
      add(R"({"name":)" + Quote(r->plural + "/scale") +
          R"(,"singularName":"","namespaced":)" + ns +
          R"(,"group":"autoscaling","version":"v1","kind":"Scale","verbs":["get","patch","update"]})");
    }
    if (r->kind == "Pod" && r->group.empty()) {
      add(R"({"name":"pods/binding","singularName":"","namespaced":true,"kind":"Binding","verbs":["create"]})");
      add(R"({"name":"pods/eviction","singularName":"","namespaced":true,"group":"policy","version":"v1","kind":"Eviction","verbs":["create"]})");
      add(R"({"name":"pods/log","singularName":"","namespaced":true,"kind":"Pod","verbs":["get"]})");
    }
    if (r->kind == "Namespace") {
      add(R"({"name":"namespaces/finalize","singularName":"","namespaced":false,"kind":"Namespace","verbs":["update"]})");
    }
  }
  return out + "]}";
}

std::string OpenApiV3IndexJson(const ResourceRegistry& reg) {
  VersionInfo v;
  std::string out = R"({"paths":{)";
  bool first = true;
  auto add = [&](const std::string& path) {
    auto doc = OpenApiV3DocumentJson(reg, path, v);
    std::string hash = Hex(std::hash<std::string>{}(doc.value_or(path))) + Hex(doc ? doc->size() : 0);
    if (!first) out += ",";
    first = false;
    out += Quote(path) + R"(:{"serverRelativeURL":)" + Quote("/openapi/v3/" + path + "?hash=" + hash) + "}";
  };
  for (const auto& g : reg.Groups()) {
    for (const auto& ver : reg.Versions(g)) add(GvPath(g, ver));
  }
  return out + "}}";
}

std::optional<std::string> OpenApiV3DocumentJson(const ResourceRegistry& reg, const std::string& gv_path,
                                                 const VersionInfo& v) {
  std::string group, version;
  if (gv_path.rfind("api/", 0) == 0) {
    version = gv_path.substr(4);
  } else if (gv_path.rfind("apis/", 0) == 0) {
    std::string rest = gv_path.substr(5);
    size_t slash = rest.find('/');
    if (slash == std::string::npos) return std::nullopt;
    group = rest.substr(0, slash);
    version = rest.substr(slash + 1);
  } else {
    return std::nullopt;
  }
  auto resources = reg.InGroupVersion(group, version);
  if (resources.empty()) return std::nullopt;
  std::string base = "/" + gv_path + "/";
  std::string out = R"({"openapi":"3.0.0","info":{"title":"Kubernetes","version":)" + Quote(v.git_version) +
                    R"(},"paths":{)";
  bool first = true;
  auto path = [&](const std::string& p, const std::string& ops) {
    if (!first) out += ",";
    first = false;
    out += Quote(p) + ":{" + ops + "}";
  };
  for (const ResourceInfo* r : resources) {
    std::string collection = base + (r->namespaced ? "namespaces/{namespace}/" : "") + r->plural;
    std::string item = collection + "/{name}";
    path(collection, R"("get":)" + Operation(*r, "list", "list", false, false, false, true) +
                         R"(,"post":)" + Operation(*r, "post", "create", true, false, false, true) +
                         R"(,"delete":)" + Operation(*r, "deletecollection", "deleteCollection", false, false, false, true));
    path(item, R"("get":)" + Operation(*r, "get", "read", false, false, true, false) +
                   R"(,"put":)" + Operation(*r, "put", "replace", true, false, true, false) +
                   R"(,"patch":)" + Operation(*r, "patch", "patch", true, true, true, false) +
                   R"(,"delete":)" + Operation(*r, "delete", "delete", false, false, true, false));
    if (r->has_status) {
      path(item + "/status", R"("get":)" + Operation(*r, "get", "readStatus", false, false, true, false) +
                                 R"(,"put":)" + Operation(*r, "put", "replaceStatus", true, false, true, false));
    }
  }
  out += R"(},"components":{"schemas":{)";
  for (size_t i = 0; i < resources.size(); ++i) {
    const ResourceInfo* r = resources[i];
    if (i) out += ",";
    if (r->schema && r->schema->root) {
      out += Quote(SchemaName(*r)) + ":" + schema::OpenApiV3Resource(*r->schema);
      continue;
    }
    out += Quote(SchemaName(*r)) + R"(:{"type":"object","description":)" +
           Quote(r->kind + " (" + r->GroupVersion() + ")") +
           R"(,"properties":{"apiVersion":{"type":"string"},"kind":{"type":"string"},"metadata":{"allOf":[{"$ref":"#/components/schemas/)" +
           std::string(schema::kObjectMetaSchemaName) + R"("}],"default":{}},"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true},"status":{"type":"object","x-kubernetes-preserve-unknown-fields":true}},"x-kubernetes-preserve-unknown-fields":true,"x-kubernetes-group-version-kind":[)" +
           Gvk(*r) + "]}";
  }
  // The resources' metadata refers to metav1.ObjectMeta (kubectl explain follows the $ref).
  out += "," + Quote(schema::kObjectMetaSchemaName) + ":" + schema::ObjectMetaOpenApiV3();
  out += "}}}";
  return out;
}

}  // namespace rc::apiserver
