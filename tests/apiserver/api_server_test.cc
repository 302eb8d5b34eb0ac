// The API server over real HTTP on a fresh store per test.
#include "rc/apiserver/api_server.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include <thread>

#include "http_client.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"

namespace rc::apiserver {
namespace {

using rc::testing::HttpCall;
using rc::testing::HttpReply;
using rc::testing::RawStream;

rapidjson::Document Parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  return d;
}

std::string Ptr(const rapidjson::Document& d, const char* pointer) {
  const rapidjson::Value* v = rapidjson::Pointer(pointer).Get(d);
  if (!v) return "<missing>";
  if (v->IsString()) return v->GetString();
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  if (v->IsBool()) return v->GetBool() ? "true" : "false";
  return "<other>";
}

const char* kPod = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1","labels":{"app":"web","tier":"front"}},
  "spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}})";

const char* kDeployment = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web"},
  "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
  "template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[
    {"name":"web","image":"nginx:1.25","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
    {"name":"side","image":"busybox"}]}}}})";

// The built-in types compiled from resources/*.rc once per process (as rcd does at start).
const std::vector<schema::ResourceSchema>& BuiltinSchemas() {
  static rc::compiler::JitHost* jit = [] {
    auto host = rc::compiler::JitHost::Create();
    if (!host.ok()) std::abort();
    return host->release();
  }();
  static const std::vector<schema::ResourceSchema> schemas = [] {
    auto loaded = rc::compiler::LoadBuiltinSchemas(jit);
    if (!loaded.ok()) {
      fprintf(stderr, "%s\n", loaded.status().message().c_str());
      std::abort();
    }
    return std::move(*loaded);
  }();
  return schemas;
}

class ApiServerTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(ApiServerOptions{}); }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  void StartServer(ApiServerOptions options) {
    if (server_) server_->Shutdown();
    server_.reset();
    options.port = 0;
    options.bookmark_interval_seconds = 1;
    if (!store_) store_ = store::NewMemoryStore();
    auto s = ApiServer::Start(store_.get(), RegistryFromSchemas(BuiltinSchemas(), "builtin"), options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
    port_ = server_->port();
  }

  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "",
                 std::map<std::string, std::string> headers = {}) {
    return HttpCall(port_, method, target, body, headers);
  }

  std::unique_ptr<store::Store> store_;
  std::unique_ptr<ApiServer> server_;
  uint16_t port_ = 0;
};

TEST_F(ApiServerTest, HealthAndVersion) {
  EXPECT_EQ(Call("GET", "/healthz").body, "ok");
  EXPECT_EQ(Call("GET", "/livez").status, 200);
  EXPECT_EQ(Call("GET", "/readyz").body, "ok");
  auto v = Parse(Call("GET", "/version").body);
  EXPECT_EQ(Ptr(v, "/major"), "1");
}

TEST_F(ApiServerTest, Discovery) {
  auto api = Parse(Call("GET", "/api").body);
  EXPECT_EQ(Ptr(api, "/versions/0"), "v1");
  std::string groups = Call("GET", "/apis").body;
  for (const char* g : {"\"apps\"", "\"batch\"", "\"coordination.k8s.io\""}) {
    EXPECT_NE(groups.find(g), std::string::npos) << g;
  }
  std::string core = Call("GET", "/api/v1").body;
  for (const char* r : {"\"pods\"", "\"pods/status\"", "\"services\"", "\"endpoints\"", "\"nodes\"",
                        "\"events\"", "\"configmaps\"", "\"secrets\"", "\"persistentvolumes\"",
                        "\"persistentvolumeclaims\"", "\"componentstatuses\"", "\"namespaces\""}) {
    EXPECT_NE(core.find(r), std::string::npos) << r;
  }
  std::string apps = Call("GET", "/apis/apps/v1").body;
  EXPECT_NE(apps.find("\"deployments/scale\""), std::string::npos);
  EXPECT_NE(apps.find("\"statefulsets\""), std::string::npos);
  EXPECT_EQ(Call("GET", "/apis/nope/v1").status, 404);
  EXPECT_EQ(Call("GET", "/api/v1/nothings").status, 404);
}

TEST_F(ApiServerTest, OpenApiV3) {
  auto index = Parse(Call("GET", "/openapi/v3").body);
  std::string url = Ptr(index, "/paths/apis~1apps~1v1/serverRelativeURL");
  ASSERT_EQ(url.rfind("/openapi/v3/apis/apps/v1?hash=", 0), 0u) << url;
  auto doc = Call("GET", url);
  ASSERT_EQ(doc.status, 200);
  EXPECT_NE(doc.body.find("fieldValidation"), std::string::npos);
  EXPECT_NE(doc.body.find("\"x-kubernetes-group-version-kind\":{\"group\":\"apps\",\"version\":\"v1\",\"kind\":\"Deployment\"}"),
            std::string::npos);
}

TEST_F(ApiServerTest, SystemNamespacesExist) {
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    auto r = Call("GET", std::string("/api/v1/namespaces/") + ns);
    EXPECT_EQ(r.status, 200) << ns;
    EXPECT_EQ(Ptr(Parse(r.body), "/status/phase"), "Active");
  }
}

TEST_F(ApiServerTest, CreateGetAndMetadata) {
  auto r = Call("POST", "/api/v1/namespaces/default/pods", kPod);
  ASSERT_EQ(r.status, 201) << r.body;
  auto pod = Parse(r.body);
  EXPECT_EQ(Ptr(pod, "/metadata/namespace"), "default");
  EXPECT_EQ(Ptr(pod, "/metadata/uid").size(), 36u);
  EXPECT_NE(Ptr(pod, "/metadata/creationTimestamp"), "<missing>");
  EXPECT_EQ(Ptr(pod, "/metadata/generation"), "1");
  EXPECT_EQ(Ptr(pod, "/spec/restartPolicy"), "Always");
  EXPECT_EQ(Ptr(pod, "/spec/dnsPolicy"), "ClusterFirst");
  EXPECT_EQ(Ptr(pod, "/spec/containers/0/imagePullPolicy"), "IfNotPresent");
  EXPECT_EQ(Ptr(pod, "/status/phase"), "Pending");
  std::string rv = Ptr(pod, "/metadata/resourceVersion");
  EXPECT_EQ(rv, std::to_string(store_->CurrentRevision()));

  auto got = Call("GET", "/api/v1/namespaces/default/pods/p1");
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(Ptr(Parse(got.body), "/metadata/resourceVersion"), rv);
  EXPECT_EQ(Ptr(Parse(got.body), "/metadata/uid"), Ptr(pod, "/metadata/uid"));

  auto again = Call("POST", "/api/v1/namespaces/default/pods", kPod);
  EXPECT_EQ(again.status, 409);
  EXPECT_EQ(Ptr(Parse(again.body), "/reason"), "AlreadyExists");

  auto missing = Call("GET", "/api/v1/namespaces/default/pods/nope");
  EXPECT_EQ(missing.status, 404);
  auto status = Parse(missing.body);
  EXPECT_EQ(Ptr(status, "/kind"), "Status");
  EXPECT_EQ(Ptr(status, "/message"), "pods \"nope\" not found");

  // Stored under /registry/{resource}/{namespace}/{name}.
  auto kv = store_->Range("/registry/pods/default/p1", {});
  ASSERT_TRUE(kv.ok());
  EXPECT_EQ(kv->kvs.size(), 1u);
}

TEST_F(ApiServerTest, GenerateName) {
  auto r = Call("POST", "/api/v1/namespaces/default/configmaps",
                R"({"metadata":{"generateName":"cfg-"},"data":{"a":"b"}})");
  ASSERT_EQ(r.status, 201) << r.body;
  std::string name = Ptr(Parse(r.body), "/metadata/name");
  EXPECT_EQ(name.size(), 9u);
  EXPECT_EQ(name.rfind("cfg-", 0), 0u);
}

TEST_F(ApiServerTest, ValidationErrors) {
  auto r = Call("POST", "/api/v1/namespaces/default/pods",
                R"({"metadata":{"name":"Bad_Name"},"spec":{"containers":[]}})");
  ASSERT_EQ(r.status, 422) << r.body;
  auto st = Parse(r.body);
  EXPECT_EQ(Ptr(st, "/reason"), "Invalid");
  EXPECT_NE(r.body.find("metadata.name"), std::string::npos);
  EXPECT_NE(r.body.find("spec.containers"), std::string::npos);

  auto d = Call("POST", "/apis/apps/v1/namespaces/default/deployments",
                R"({"metadata":{"name":"d"},"spec":{"selector":{"matchLabels":{"app":"x"}},
                    "template":{"metadata":{"labels":{"app":"y"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}})");
  EXPECT_EQ(d.status, 422);
  EXPECT_NE(d.body.find("`selector` does not match template `labels`"), std::string::npos) << d.body;

  auto kind = Call("POST", "/api/v1/namespaces/default/pods", R"({"kind":"Service","metadata":{"name":"x"}})");
  EXPECT_EQ(kind.status, 400);
}

TEST_F(ApiServerTest, NamespaceLifecycle) {
  auto r = Call("POST", "/api/v1/namespaces/nope/pods", kPod);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("namespaces \\\"nope\\\" not found"), std::string::npos) << r.body;

  ASSERT_EQ(Call("POST", "/api/v1/namespaces", R"({"metadata":{"name":"team"}})").status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/team/pods", kPod).status, 201);
  auto del = Call("DELETE", "/api/v1/namespaces/team");
  ASSERT_EQ(del.status, 200) << del.body;
  auto ns = Parse(Call("GET", "/api/v1/namespaces/team").body);
  EXPECT_EQ(Ptr(ns, "/status/phase"), "Terminating");
  EXPECT_NE(Ptr(ns, "/metadata/deletionTimestamp"), "<missing>");
  auto refused = Call("POST", "/api/v1/namespaces/team/configmaps", R"({"metadata":{"name":"c"}})");
  EXPECT_EQ(refused.status, 403) << refused.body;
  EXPECT_NE(refused.body.find("being terminated"), std::string::npos);

  EXPECT_EQ(Call("DELETE", "/api/v1/namespaces/default").status, 403);
}

TEST_F(ApiServerTest, OptimisticConcurrencyAndGeneration) {
  auto created = Parse(Call("POST", "/apis/apps/v1/namespaces/default/deployments", kDeployment).body);
  std::string rv1 = Ptr(created, "/metadata/resourceVersion");
  ASSERT_NE(rv1, "<missing>");

  // A label change keeps the generation.
  std::string body = R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","resourceVersion":")" + rv1 +
                     R"(","labels":{"x":"y"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"nginx:1.25"}]}}}})";
  auto updated = Call("PUT", "/apis/apps/v1/namespaces/default/deployments/web", body);
  ASSERT_EQ(updated.status, 200) << updated.body;
  auto u = Parse(updated.body);
  EXPECT_NE(Ptr(u, "/metadata/resourceVersion"), rv1);
  EXPECT_EQ(Ptr(u, "/metadata/generation"), "2");  // containers changed (side removed)

  // The same body again is now stale.
  auto stale = Call("PUT", "/apis/apps/v1/namespaces/default/deployments/web", body);
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(Ptr(Parse(stale.body), "/reason"), "Conflict");
  EXPECT_NE(stale.body.find("the object has been modified"), std::string::npos);

  // Metadata-only change: generation stays.
  auto patched = Call("PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
                      R"({"metadata":{"labels":{"z":"1"}}})", {{"Content-Type", "application/merge-patch+json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(Ptr(Parse(patched.body), "/metadata/generation"), "2");
}

TEST_F(ApiServerTest, StatusSubresource) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", kPod).status, 201);
  auto pod = Parse(Call("GET", "/api/v1/namespaces/default/pods/p1").body);
  // The status subresource writes status only.
  auto st = Call("PATCH", "/api/v1/namespaces/default/pods/p1/status",
                 R"({"status":{"phase":"Running","podIP":"10.0.0.5"},"metadata":{"labels":{"hack":"1"}}})",
                 {{"Content-Type", "application/merge-patch+json"}});
  ASSERT_EQ(st.status, 200) << st.body;
  auto after = Parse(st.body);
  EXPECT_EQ(Ptr(after, "/status/phase"), "Running");
  EXPECT_EQ(Ptr(after, "/metadata/labels/hack"), "<missing>");
  // The main resource ignores status.
  auto main = Call("PATCH", "/api/v1/namespaces/default/pods/p1", R"({"status":{"phase":"Failed"}})",
                   {{"Content-Type", "application/merge-patch+json"}});
  ASSERT_EQ(main.status, 200);
  EXPECT_EQ(Ptr(Parse(main.body), "/status/phase"), "Running");
}

TEST_F(ApiServerTest, PatchKinds) {
  ASSERT_EQ(Call("POST", "/apis/apps/v1/namespaces/default/deployments", kDeployment).status, 201);
  const std::string url = "/apis/apps/v1/namespaces/default/deployments/web";
  // Strategic merge: containers merge by name, env by name; $setElementOrder as kubectl sends.
  auto smp = Call("PATCH", url,
                  R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"},{"name":"side"}],
                      "containers":[{"name":"web","image":"nginx:1.26"}]}}}})",
                  {{"Content-Type", "application/strategic-merge-patch+json"}});
  ASSERT_EQ(smp.status, 200) << smp.body;
  auto d = Parse(smp.body);
  EXPECT_EQ(Ptr(d, "/spec/template/spec/containers/0/image"), "nginx:1.26");
  EXPECT_EQ(Ptr(d, "/spec/template/spec/containers/0/env/1/name"), "B");
  EXPECT_EQ(Ptr(d, "/spec/template/spec/containers/1/name"), "side");
  EXPECT_EQ(smp.body.find("$setElementOrder"), std::string::npos);

  auto jp = Call("PATCH", url, R"([{"op":"replace","path":"/spec/replicas","value":7},{"op":"add","path":"/metadata/labels","value":{"k":"v"}}])",
                 {{"Content-Type", "application/json-patch+json"}});
  ASSERT_EQ(jp.status, 200) << jp.body;
  EXPECT_EQ(Ptr(Parse(jp.body), "/spec/replicas"), "7");

  auto bad = Call("PATCH", url, R"([{"op":"test","path":"/spec/replicas","value":1}])",
                  {{"Content-Type", "application/json-patch+json"}});
  EXPECT_EQ(bad.status, 422) << bad.body;

  auto unsupported = Call("PATCH", url, "{}", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(unsupported.status, 415);
}

TEST_F(ApiServerTest, ScaleSubresource) {
  ASSERT_EQ(Call("POST", "/apis/apps/v1/namespaces/default/deployments", kDeployment).status, 201);
  auto scale = Parse(Call("GET", "/apis/apps/v1/namespaces/default/deployments/web/scale").body);
  EXPECT_EQ(Ptr(scale, "/kind"), "Scale");
  EXPECT_EQ(Ptr(scale, "/spec/replicas"), "2");
  EXPECT_EQ(Ptr(scale, "/status/selector"), "app=web");
  auto patched = Call("PATCH", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                      R"({"spec":{"replicas":5}})", {{"Content-Type", "application/merge-patch+json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(Ptr(Parse(patched.body), "/spec/replicas"), "5");
  EXPECT_EQ(Ptr(Parse(Call("GET", "/apis/apps/v1/namespaces/default/deployments/web").body), "/spec/replicas"), "5");
  auto neg = Call("PUT", "/apis/apps/v1/namespaces/default/deployments/web/scale",
                  R"({"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},"spec":{"replicas":-1}})");
  EXPECT_EQ(neg.status, 422) << neg.body;
}

TEST_F(ApiServerTest, ListSelectorsAndPagination) {
  const char* labels[] = {R"({"app":"web","tier":"front"})", R"({"app":"web","tier":"back"})",
                          R"({"app":"db"})", R"({"app":"db","tier":"back"})", R"({})"};
  for (int i = 0; i < 5; ++i) {
    std::string body = R"({"metadata":{"name":"p)" + std::to_string(i) + R"(","labels":)" + labels[i] +
                       R"(},"spec":{"containers":[{"name":"c","image":"i"}]}})";
    ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", body).status, 201);
  }
  auto names = [&](const std::string& query) {
    auto list = Parse(Call("GET", "/api/v1/namespaces/default/pods?" + query).body);
    std::string out;
    if (!list.HasMember("items")) return std::string("<error>");
    for (auto& item : list["items"].GetArray()) out += std::string(item["metadata"]["name"].GetString()) + " ";
    return out;
  };
  EXPECT_EQ(names("labelSelector=app%3Dweb"), "p0 p1 ");
  EXPECT_EQ(names("labelSelector=app!%3Dweb"), "p2 p3 p4 ");
  EXPECT_EQ(names("labelSelector=tier+in+(back)"), "p1 p3 ");
  EXPECT_EQ(names("labelSelector=tier+notin+(back)"), "p0 p2 p4 ");
  EXPECT_EQ(names("labelSelector=tier"), "p0 p1 p3 ");
  EXPECT_EQ(names("labelSelector=!tier"), "p2 p4 ");
  EXPECT_EQ(names("labelSelector=app%3Ddb,tier"), "p3 ");
  EXPECT_EQ(names("fieldSelector=metadata.name%3Dp2"), "p2 ");
  EXPECT_EQ(names("fieldSelector=status.phase%3DPending,metadata.name!%3Dp0"), "p1 p2 p3 p4 ");
  EXPECT_EQ(names("fieldSelector=spec.nodeName%3D"), "p0 p1 p2 p3 p4 ");
  EXPECT_EQ(Call("GET", "/api/v1/pods?fieldSelector=spec.bogus%3Dx").status, 400);
  EXPECT_EQ(Call("GET", "/api/v1/pods?labelSelector=a%3D%3D%3Db").status, 400);

  // Pagination: 2 at a time, all at the revision of the first page.
  std::string seen;
  std::string cont;
  std::string first_rv;
  for (int page = 0; page < 5; ++page) {
    auto list = Parse(Call("GET", "/api/v1/namespaces/default/pods?limit=2" + (cont.empty() ? "" : "&continue=" + cont)).body);
    ASSERT_TRUE(list.HasMember("items"));
    for (auto& item : list["items"].GetArray()) seen += std::string(item["metadata"]["name"].GetString()) + " ";
    if (first_rv.empty()) {
      first_rv = list["metadata"]["resourceVersion"].GetString();
      // A write between pages does not show up in later pages.
      ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods",
                     R"({"metadata":{"name":"p9"},"spec":{"containers":[{"name":"c","image":"i"}]}})").status, 201);
    }
    EXPECT_EQ(list["metadata"]["resourceVersion"].GetString(), first_rv);
    if (!list["metadata"].HasMember("continue")) break;
    cont = list["metadata"]["continue"].GetString();
  }
  EXPECT_EQ(seen, "p0 p1 p2 p3 p4 ");
  EXPECT_EQ(names("limit=100"), "p0 p1 p2 p3 p4 p9 ");
}

TEST_F(ApiServerTest, FinalizersDelayDeletion) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/configmaps",
                 R"({"metadata":{"name":"c","finalizers":["example.com/keep"]}})").status, 201);
  auto del = Call("DELETE", "/api/v1/namespaces/default/configmaps/c");
  ASSERT_EQ(del.status, 200) << del.body;
  auto cm = Parse(Call("GET", "/api/v1/namespaces/default/configmaps/c").body);
  EXPECT_NE(Ptr(cm, "/metadata/deletionTimestamp"), "<missing>");
  auto patched = Call("PATCH", "/api/v1/namespaces/default/configmaps/c", R"({"metadata":{"finalizers":null}})",
                      {{"Content-Type", "application/merge-patch+json"}});
  ASSERT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(Call("GET", "/api/v1/namespaces/default/configmaps/c").status, 404);

  // Foreground propagation adds its finalizer.
  ASSERT_EQ(Call("POST", "/apis/apps/v1/namespaces/default/deployments", kDeployment).status, 201);
  ASSERT_EQ(Call("DELETE", "/apis/apps/v1/namespaces/default/deployments/web", R"({"propagationPolicy":"Foreground"})").status, 200);
  auto d = Call("GET", "/apis/apps/v1/namespaces/default/deployments/web");
  EXPECT_NE(d.body.find("foregroundDeletion"), std::string::npos) << d.body;
}

TEST_F(ApiServerTest, TableOutput) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", kPod).status, 201);
  auto r = Call("GET", "/api/v1/namespaces/default/pods", "",
                {{"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"}});
  ASSERT_EQ(r.status, 200);
  auto t = Parse(r.body);
  EXPECT_EQ(Ptr(t, "/kind"), "Table");
  EXPECT_EQ(Ptr(t, "/columnDefinitions/0/name"), "Name");
  EXPECT_EQ(Ptr(t, "/columnDefinitions/1/name"), "Ready");
  EXPECT_EQ(Ptr(t, "/columnDefinitions/2/name"), "Status");
  EXPECT_EQ(Ptr(t, "/columnDefinitions/5/name"), "IP");
  EXPECT_EQ(Ptr(t, "/columnDefinitions/5/priority"), "1");
  EXPECT_EQ(Ptr(t, "/rows/0/cells/0"), "p1");
  EXPECT_EQ(Ptr(t, "/rows/0/cells/1"), "0/1");
  EXPECT_EQ(Ptr(t, "/rows/0/cells/2"), "Pending");
  EXPECT_EQ(Ptr(t, "/rows/0/object/kind"), "PartialObjectMetadata");
  EXPECT_EQ(Ptr(t, "/rows/0/object/metadata/name"), "p1");
}

TEST_F(ApiServerTest, BadInputNeverLosesData) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"keep"}})").status, 201);
  // Malformed JSON.
  auto bad = Call("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":)");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(Ptr(Parse(bad.body), "/kind"), "Status");
  // Deep nesting.
  std::string deep(100000, '[');
  EXPECT_EQ(Call("POST", "/api/v1/namespaces/default/configmaps", deep).status, 400);
  // Too large.
  std::string huge = R"({"metadata":{"name":"big"},"data":{"x":")" + std::string(4 << 20, 'a') + "\"}}";
  EXPECT_EQ(Call("POST", "/api/v1/namespaces/default/configmaps", huge).status, 413);
  // Malformed YAML.
  auto yaml = Call("POST", "/api/v1/namespaces/default/configmaps", "metadata: [unclosed",
                   {{"Content-Type", "application/yaml"}});
  EXPECT_EQ(yaml.status, 400);
  // Good YAML works.
  auto good = Call("POST", "/api/v1/namespaces/default/configmaps", "metadata:\n  name: fromyaml\ndata:\n  k: v\n",
                   {{"Content-Type", "application/yaml"}});
  EXPECT_EQ(good.status, 201) << good.body;
  // Everything stored is still there and the server still answers.
  EXPECT_EQ(Call("GET", "/api/v1/namespaces/default/configmaps/keep").status, 200);
  EXPECT_EQ(Call("GET", "/readyz").status, 200);
}

TEST_F(ApiServerTest, TooManyRequestsIs429) {
  ApiServerOptions options;
  options.max_requests_inflight = 0;  // every request is over the limit
  StartServer(options);
  auto r = Call("GET", "/api/v1/namespaces/default/pods");
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.headers["retry-after"], "1");
  EXPECT_EQ(Call("GET", "/healthz").status, 200);
}

// Watch over HTTP/1.1 (chunked): ordered events from a resourceVersion.
TEST_F(ApiServerTest, WatchChunkedFromResourceVersion) {
  auto created = Parse(Call("POST", "/api/v1/namespaces/default/pods", kPod).body);
  std::string rv = Ptr(created, "/metadata/resourceVersion");
  std::string request = "GET /api/v1/namespaces/default/pods?watch=true&resourceVersion=" + rv +
                        " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out = RawStream(port_, request, std::chrono::seconds(5), "\"type\":", 3, [&] {
    Call("PATCH", "/api/v1/namespaces/default/pods/p1", R"({"metadata":{"labels":{"v":"2"}}})",
         {{"Content-Type", "application/merge-patch+json"}});
    Call("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"other"}})");
    Call("POST", "/api/v1/namespaces/default/pods", R"({"metadata":{"name":"p2"},"spec":{"containers":[{"name":"c","image":"i"}]}})");
    Call("DELETE", "/api/v1/namespaces/default/pods/p2");
  });
  EXPECT_NE(out.find("Transfer-Encoding: chunked"), std::string::npos) << out;
  size_t m = out.find("\"type\":\"MODIFIED\"");
  size_t a = out.find("\"type\":\"ADDED\"");
  size_t d = out.find("\"type\":\"DELETED\"");
  ASSERT_NE(m, std::string::npos) << out;
  ASSERT_NE(a, std::string::npos) << out;
  ASSERT_NE(d, std::string::npos) << out;
  EXPECT_LT(m, a);
  EXPECT_LT(a, d);
  EXPECT_EQ(out.find("\"name\":\"other\""), std::string::npos);  // other resource types excluded
}

TEST_F(ApiServerTest, WatchHttp10IsCloseDelimited) {
  std::string request = "GET /api/v1/pods?watch=true&timeoutSeconds=2 HTTP/1.0\r\n\r\n";
  std::string out = RawStream(port_, request, std::chrono::seconds(6), "", 0, [&] {
    Call("POST", "/api/v1/namespaces/default/pods", kPod);
  });
  EXPECT_EQ(out.rfind("HTTP/1.0 200", 0), 0u) << out;
  EXPECT_EQ(out.find("chunked"), std::string::npos);
  EXPECT_NE(out.find("\"type\":\"ADDED\""), std::string::npos) << out;
}

TEST_F(ApiServerTest, WatchWithoutVersionStartsWithState) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", kPod).status, 201);
  std::string out = RawStream(port_, "GET /api/v1/pods?watch=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                              std::chrono::seconds(3), "\"type\":", 1);
  EXPECT_NE(out.find("\"type\":\"ADDED\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"name\":\"p1\""), std::string::npos);
}

TEST_F(ApiServerTest, WatchLabelSelectorTransitions) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", kPod).status, 201);
  std::string rv = std::to_string(store_->CurrentRevision());
  std::string request = "GET /api/v1/pods?watch=true&labelSelector=tier%3Dfront&resourceVersion=" + rv +
                        " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out = RawStream(port_, request, std::chrono::seconds(5), "\"type\":", 2, [&] {
    Call("PATCH", "/api/v1/namespaces/default/pods/p1", R"({"metadata":{"labels":{"tier":"back"}}})",
         {{"Content-Type", "application/merge-patch+json"}});
    Call("PATCH", "/api/v1/namespaces/default/pods/p1", R"({"metadata":{"labels":{"tier":"front"}}})",
         {{"Content-Type", "application/merge-patch+json"}});
  });
  size_t d = out.find("\"type\":\"DELETED\"");
  size_t a = out.find("\"type\":\"ADDED\"");
  ASSERT_NE(d, std::string::npos) << out;
  ASSERT_NE(a, std::string::npos) << out;
  EXPECT_LT(d, a);
}

TEST_F(ApiServerTest, WatchCompactedIsGone) {
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", kPod).status, 201);
  int64_t old_rv = store_->CurrentRevision();
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"c1"}})").status, 201);
  ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/configmaps", R"({"metadata":{"name":"c2"}})").status, 201);
  ASSERT_TRUE(store_->Compact(store_->CurrentRevision()).ok());
  std::string request = "GET /api/v1/pods?watch=true&resourceVersion=" + std::to_string(old_rv - 1) +
                        " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out = RawStream(port_, request, std::chrono::seconds(3), "\"type\":", 1);
  EXPECT_NE(out.find("\"type\":\"ERROR\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"code\":410"), std::string::npos) << out;
}

TEST_F(ApiServerTest, WatchBookmarks) {
  std::string rv = std::to_string(store_->CurrentRevision());
  std::string request = "GET /api/v1/pods?watch=true&allowWatchBookmarks=true&resourceVersion=" + rv +
                        " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out = RawStream(port_, request, std::chrono::seconds(4), "BOOKMARK", 1);
  EXPECT_NE(out.find("\"type\":\"BOOKMARK\""), std::string::npos) << out;
}

TEST_F(ApiServerTest, WatchTimeoutEndsStream) {
  auto start = std::chrono::steady_clock::now();
  std::string out = RawStream(port_, "GET /api/v1/pods?watch=true&timeoutSeconds=1&resourceVersion=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                              std::chrono::seconds(10));
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, std::chrono::seconds(5));
  EXPECT_NE(out.find("0\r\n\r\n"), std::string::npos);  // the terminating chunk
}

}  // namespace
}  // namespace rc::apiserver

namespace rc::apiserver {
namespace {

// A resume from before the cache window is served from a store watch, still in order.
TEST_F(ApiServerTest, WatchResumeOlderThanWindow) {
  ApiServerOptions options;
  options.watch_window_events = 2;
  StartServer(options);
  int64_t start = store_->CurrentRevision();
  for (int i = 0; i < 6; ++i) {
    std::string body = R"({"metadata":{"name":"w)" + std::to_string(i) +
                       R"("},"spec":{"containers":[{"name":"c","image":"i"}]}})";
    ASSERT_EQ(Call("POST", "/api/v1/namespaces/default/pods", body).status, 201);
  }
  std::string request = "GET /api/v1/pods?watch=true&resourceVersion=" + std::to_string(start) +
                        " HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string out = RawStream(port_, request, std::chrono::seconds(5), "\"type\":\"ADDED\"", 6);
  size_t last = 0;
  for (int i = 0; i < 6; ++i) {
    size_t pos = out.find("\"name\":\"w" + std::to_string(i) + "\"");
    ASSERT_NE(pos, std::string::npos) << i << "\n" << out;
    EXPECT_GT(pos, last);
    last = pos;
  }
}

}  // namespace
}  // namespace rc::apiserver
