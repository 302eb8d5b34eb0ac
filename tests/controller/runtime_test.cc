// The controller runtime against a real API server on a real RocksDB store, over loopback HTTP:
// informers, leader election, the controller manager running a DSL controller compiled by the
// loader (traps, hot replacement, events), the garbage collector and the namespace controller.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <rapidjson/document.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "rc/apimachinery/json.h"
#include "rc/apiserver/api_server.h"
#include "rc/client/rest_client.h"
#include "rc/compiler/controller_loader.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"
#include "rc/controller/builtin_controllers.h"
#include "rc/controller/controller_manager.h"
#include "rc/base/time.h"
#include "rc/controller/informer.h"
#include "rc/controller/leader_election.h"
#include "rc/store/store.h"
#include "testing/builtin_api.h"

namespace rc::controller {
namespace {

using rc::testing::BuiltinSchemas;
using rc::testing::WaitFor;
using rc::testing::Jit;

using namespace std::chrono_literals;
namespace am = rc::apimachinery;

class ControllerRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rc-controller-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    auto store = store::OpenRocksStore({.path = dir_.string(), .sync = false});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto server = apiserver::ApiServer::Start(store_.get(), apiserver::RegistryFromSchemas(BuiltinSchemas(), "builtin"),
                                              apiserver::ApiServerOptions{.port = 0});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    auto client = client::RestClient::Create("http://127.0.0.1:" + std::to_string(server_->port()));
    ASSERT_TRUE(client.ok());
    client_ = std::move(*client);
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  int Do(const std::string& method, const std::string& path, const std::string& body = "",
         const std::string& type = "application/json") {
    auto r = client_->Do(method, path, body, type);
    return r.ok() ? r->status : -1;
  }
  rapidjson::Document Get(const std::string& path) {
    rapidjson::Document d;
    auto r = client_->Do("GET", path);
    if (r.ok() && r->status == 200) d.Parse(r->body.c_str());
    return d;
  }
  bool Exists(const std::string& path) { return Do("GET", path) == 200; }
  std::string CreateConfigMap(const std::string& ns, const std::string& name, const std::string& extra_meta = "",
                              const std::string& data = "{}") {
    std::string body = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name + "\"" + extra_meta +
                       R"(},"data":)" + data + "}";
    auto r = client_->Do("POST", "/api/v1/namespaces/" + ns + "/configmaps", body);
    EXPECT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
    rapidjson::Document d;
    d.Parse(r->body.c_str());
    return std::string(MetaString(d, "uid"));
  }

  std::unique_ptr<ControllerManager> Manager(bool leader_elect = false) {
    ControllerManagerOptions o;
    o.identity = "test";
    o.leader_elect = leader_elect;
    return std::make_unique<ControllerManager>(client_.get(), o);
  }

  Result<compiler::LoadedControllers> Compile(const std::string& name, const std::string& source) {
    dsl::Diagnostics diags;
    compiler::ControllerLoader loader(Jit());
    return loader.Load({{name, source}}, compiler::BuiltinResourceSources(), "test:" + name, name, diags);
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<client::RestClient> client_;
};

TEST_F(ControllerRuntimeTest, RestMapperFindsBuiltinKinds) {
  client::RestMapper mapper(client_.get());
  auto pods = mapper.ForKind("v1", "Pod");
  ASSERT_TRUE(pods.ok()) << pods.status().ToString();
  EXPECT_EQ(pods->plural, "pods");
  EXPECT_TRUE(pods->namespaced);
  EXPECT_TRUE(pods->HasSubresource("status"));
  EXPECT_EQ(pods->ObjectPath("default", "p", "status"), "/api/v1/namespaces/default/pods/p/status");
  auto deploy = mapper.ForKind("apps/v1", "Deployment");
  ASSERT_TRUE(deploy.ok());
  EXPECT_EQ(deploy->CollectionPath("a"), "/apis/apps/v1/namespaces/a/deployments");
  auto ns = mapper.ForKind("v1", "Namespace");
  ASSERT_TRUE(ns.ok());
  EXPECT_FALSE(ns->namespaced);
  EXPECT_TRUE(mapper.ForKind("v1", "Nope").status().IsNotFound());
}

TEST_F(ControllerRuntimeTest, ErrorsMapToStatusCodes) {
  auto r = client_->Do("GET", "/api/v1/namespaces/default/configmaps/missing");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(client::ToStatus(*r).IsNotFound());
  CreateConfigMap("default", "dup");
  r = client_->Do("POST", "/api/v1/namespaces/default/configmaps",
                  R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"}})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(client::ToStatus(*r).code(), StatusCode::kAlreadyExists);
  auto bad = client::RestClient::Create("http://127.0.0.1:1");
  ASSERT_TRUE(bad.ok());
  EXPECT_EQ((*bad)->Do("GET", "/api").status().code(), StatusCode::kUnavailable);
}

// A server that accepts connections (kernel backlog) and never answers.
struct SilentServer {
  int fd = -1;
  uint16_t port = 0;
  SilentServer() {
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(fd, 16);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~SilentServer() { close(fd); }
};

TEST_F(ControllerRuntimeTest, RequestsAndWatchesGiveUpOnASilentServer) {
  SilentServer silent;
  client::RestClient::Options o;
  o.watch_header_timeout_ms = 300;
  auto c = client::RestClient::Create("http://127.0.0.1:" + std::to_string(silent.port), o);
  ASSERT_TRUE(c.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto r = (*c)->Do("GET", "/api", "", "application/json", 300);
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("no reply within 300 ms"), std::string::npos) << r.status().message();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  client::WatchHandle handle;
  t0 = std::chrono::steady_clock::now();
  Status st = (*c)->Stream("/api/v1/pods?watch=true", [](std::string_view) { return true; }, &handle);
  EXPECT_EQ(st.code(), StatusCode::kUnavailable) << st.ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
}

TEST_F(ControllerRuntimeTest, InformerListsWatchesAndIndexes) {
  CreateConfigMap("default", "before");
  client::RestMapper mapper(client_.get());
  InformerFactory factory(client_.get(), &mapper);
  auto inf = factory.For("v1", "ConfigMap");
  ASSERT_TRUE(inf.ok());
  std::atomic<int> adds{0}, updates{0}, deletes{0};
  (*inf)->AddHandler({[&](const ObjectPtr&) { adds++; }, [&](const ObjectPtr&, const ObjectPtr&) { updates++; },
                      [&](const ObjectPtr&) { deletes++; }});
  ASSERT_TRUE((*inf)->WaitForSync(5000));
  EXPECT_TRUE((*inf)->Get("default/before"));
  std::string owner_uid = CreateConfigMap("default", "owner");
  CreateConfigMap("kube-system", "child",
                  R"(,"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":")" + owner_uid + R"("}])");
  ASSERT_TRUE(WaitFor([&] { return (*inf)->Get("kube-system/child") != nullptr; }));
  EXPECT_EQ((*inf)->ByOwner(owner_uid).size(), 1u);
  EXPECT_EQ((*inf)->List("kube-system").size(), 1u);
  EXPECT_EQ((*inf)->List("").size(), 3u);
  EXPECT_EQ(Do("PATCH", "/api/v1/namespaces/default/configmaps/before", R"({"data":{"x":"1"}})",
               "application/merge-patch+json"), 200);
  EXPECT_EQ(Do("DELETE", "/api/v1/namespaces/kube-system/configmaps/child"), 200);
  ASSERT_TRUE(WaitFor([&] { return deletes.load() == 1 && updates.load() >= 1; }));
  EXPECT_EQ(adds.load(), 3);
  EXPECT_TRUE((*inf)->ByOwner(owner_uid).empty());
  EXPECT_EQ(am::GetStringOr(*am::FindMember(*(*inf)->Get("default/before"), "data"), "x"), "1");
}

TEST_F(ControllerRuntimeTest, InformerRelistsAfter410AndReportsTheDifference) {
  CreateConfigMap("default", "a");
  CreateConfigMap("default", "kept");
  // Short watch deadlines: a watch connection the stopping server leaves half-open is given up
  // after 2 s of silence instead of the default 150 s.
  client::RestClient::Options fast;
  fast.watch_header_timeout_ms = 2000;
  fast.watch_idle_timeout_ms = 2000;
  auto informer_client = client::RestClient::Create("http://127.0.0.1:" + std::to_string(server_->port()), fast);
  ASSERT_TRUE(informer_client.ok());
  client::RestMapper mapper(informer_client->get());
  InformerFactory factory(informer_client->get(), &mapper);
  auto inf = factory.For("v1", "ConfigMap");
  ASSERT_TRUE(inf.ok() && (*inf)->WaitForSync(5000));
  // Handlers are level-triggered: one registered while the first list is being dispatched may
  // see an add twice, so the test counts distinct keys.
  std::mutex seen_mu;
  std::set<std::string> added, deleted;
  (*inf)->AddHandler({[&](const ObjectPtr& o) { std::lock_guard<std::mutex> l(seen_mu); added.insert(KeyOf(*o)); }, nullptr,
                      [&](const ObjectPtr& o) { std::lock_guard<std::mutex> l(seen_mu); deleted.insert(KeyOf(*o)); }});
  auto count = [&](std::set<std::string>& s) { std::lock_guard<std::mutex> l(seen_mu); return s.size(); };
  ASSERT_TRUE(WaitFor([&] { return count(added) == 2; })) << count(added);
  ASSERT_TRUE(WaitFor([&] { return (*inf)->relists() >= 1; }));
  const int64_t relists_before = (*inf)->relists();
  // The API server goes away; meanwhile the data changes and history is compacted, so the
  // informer's resourceVersion is gone when it comes back.
  uint16_t port = server_->port();
  server_->Shutdown();
  server_.reset();
  {
    auto other = apiserver::ApiServer::Start(store_.get(), apiserver::RegistryFromSchemas(BuiltinSchemas(), "builtin"),
                                             apiserver::ApiServerOptions{.port = 0});
    ASSERT_TRUE(other.ok());
    auto c = client::RestClient::Create("http://127.0.0.1:" + std::to_string((*other)->port()));
    ASSERT_TRUE(c.ok());
    auto r = (*c)->Do("POST", "/api/v1/namespaces/default/configmaps",
                      R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b"}})");
    ASSERT_TRUE(r.ok() && r->status == 201);
    r = (*c)->Do("DELETE", "/api/v1/namespaces/default/configmaps/a");
    ASSERT_TRUE(r.ok() && r->status == 200);
    ASSERT_TRUE(store_->Compact(store_->CurrentRevision()).ok());
    (*other)->Shutdown();
  }
  auto back = apiserver::ApiServer::Start(store_.get(), apiserver::RegistryFromSchemas(BuiltinSchemas(), "builtin"),
                                          apiserver::ApiServerOptions{.port = port});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  server_ = std::move(*back);
  ASSERT_TRUE(WaitFor([&] { return (*inf)->relists() > relists_before && (*inf)->Get("default/b") != nullptr; }, 20s))
      << "relists " << (*inf)->relists();
  EXPECT_FALSE((*inf)->Get("default/a"));
  EXPECT_TRUE((*inf)->Get("default/kept"));
  EXPECT_EQ(count(added), 3u);    // b, from the re-list
  EXPECT_EQ(count(deleted), 1u);  // a, inferred from the re-list
  // And it watches again.
  CreateConfigMap("default", "c");
  EXPECT_TRUE(WaitFor([&] { return (*inf)->Get("default/c") != nullptr; }));
}

TEST_F(ControllerRuntimeTest, InformerCustomIndexesFollowChanges) {
  client::RestMapper mapper(client_.get());
  InformerFactory factory(client_.get(), &mapper);
  auto inf = factory.For("v1", "Pod");
  ASSERT_TRUE(inf.ok() && (*inf)->WaitForSync(5000));
  auto pod = [](const std::string& name, const std::string& node, const std::string& app) {
    return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name + R"(","labels":{"app":")" + app +
           R"("}},"spec":{"nodeName":")" + node + R"(","containers":[{"name":"c","image":"busybox"}]}})";
  };
  ASSERT_EQ(Do("POST", "/api/v1/namespaces/default/pods", pod("p1", "n1", "web")), 201);
  ASSERT_TRUE(WaitFor([&] { return (*inf)->Get("default/p1") != nullptr; }));
  (*inf)->AddIndexer("node", IndexByField("spec.nodeName"));  // indexes what is cached already
  (*inf)->AddIndexer("app", IndexByLabel("app"));
  ASSERT_EQ(Do("POST", "/api/v1/namespaces/default/pods", pod("p2", "n1", "db")), 201);
  ASSERT_EQ(Do("POST", "/api/v1/namespaces/default/pods", pod("p3", "", "web")), 201);
  ASSERT_TRUE(WaitFor([&] { return (*inf)->size() == 3; }));
  EXPECT_EQ((*inf)->ByIndex("node", "n1").size(), 2u);
  EXPECT_EQ((*inf)->ByIndex("app", "web").size(), 2u);
  EXPECT_TRUE((*inf)->ByIndex("node", "").empty());  // empty values are not indexed
  EXPECT_TRUE((*inf)->ByIndex("nope", "x").empty());
  EXPECT_EQ(Do("PATCH", "/api/v1/namespaces/default/pods/p2", R"({"metadata":{"labels":{"app":"web"}}})",
               "application/merge-patch+json"), 200);
  ASSERT_TRUE(WaitFor([&] { return (*inf)->ByIndex("app", "web").size() == 3; }));
  EXPECT_TRUE((*inf)->ByIndex("app", "db").empty());
  // A pod on a node is deleted gracefully (its agent would finish); grace 0 removes it at once.
  EXPECT_EQ(Do("DELETE", "/api/v1/namespaces/default/pods/p1?gracePeriodSeconds=0"), 200);
  ASSERT_TRUE(WaitFor([&] { return (*inf)->ByIndex("node", "n1").size() == 1; }));
}

TEST_F(ControllerRuntimeTest, InformerReadYourWritesIgnoresOlderEvents) {
  client::RestMapper mapper(client_.get());
  InformerFactory factory(client_.get(), &mapper);
  auto inf = factory.For("v1", "ConfigMap");
  ASSERT_TRUE(inf.ok() && (*inf)->WaitForSync(5000));
  auto r = client_->Do("POST", "/api/v1/namespaces/default/configmaps",
                       R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"mine"},"data":{"v":"1"}})");
  ASSERT_TRUE(r.ok());
  rapidjson::Document created;
  created.Parse(r->body.c_str());
  (*inf)->Observe(created);  // visible at once, before the watch event
  EXPECT_TRUE((*inf)->Get("default/mine"));
  // Our own delete: a late event for the object does not resurrect it.
  (*inf)->ObserveDeleted("default/mine", ResourceVersionOf(created));
  std::this_thread::sleep_for(300ms);  // the ADDED event (same resourceVersion) arrives meanwhile
  EXPECT_FALSE((*inf)->Get("default/mine"));
}

TEST_F(ControllerRuntimeTest, LeaderElectionHasOneLeaderAndHandsOverAfterACrash) {
  auto config = [](const std::string& id) {
    LeaderElectionConfig c;
    c.identity = id;
    c.lease_duration = 1000ms;
    c.renew_deadline = 800ms;
    c.retry_period = 100ms;
    c.release_on_stop = false;  // Stop = crash
    return c;
  };
  LeaderElector a(client_.get(), config("a")), b(client_.get(), config("b"));
  a.Start();
  ASSERT_TRUE(WaitFor([&] { return a.IsLeader(); }, 5s));
  b.Start();
  std::this_thread::sleep_for(1500ms);  // longer than the lease: a keeps renewing
  EXPECT_TRUE(a.IsLeader());
  EXPECT_FALSE(b.IsLeader());
  auto lease = Get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/rc-controller-manager");
  EXPECT_EQ(am::GetStringOr(*am::FindMember(lease, "spec"), "holderIdentity"), "a");
  auto t0 = std::chrono::steady_clock::now();
  a.Stop();
  ASSERT_TRUE(WaitFor([&] { return b.IsLeader(); }, 5s));
  auto failover = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(failover, 2500ms);
  lease = Get("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/rc-controller-manager");
  EXPECT_EQ(am::GetStringOr(*am::FindMember(lease, "spec"), "holderIdentity"), "b");
  EXPECT_EQ(am::FindMember(*am::FindMember(lease, "spec"), "leaseTransitions")->GetInt64(), 1);
  b.Stop();
}

TEST_F(ControllerRuntimeTest, GracefulStopReleasesTheLease) {
  LeaderElectionConfig c;
  c.identity = "x";
  c.lease_duration = 10000ms;
  c.retry_period = 100ms;
  LeaderElector x(client_.get(), c);
  x.Start();
  ASSERT_TRUE(WaitFor([&] { return x.IsLeader(); }, 5s));
  x.Stop();
  c.identity = "y";
  LeaderElector y(client_.get(), c);
  y.Start();
  // The lease is 10 s long, but released: y takes it at once.
  EXPECT_TRUE(WaitFor([&] { return y.IsLeader(); }, 2s));
}

const char* kMirror = R"(
controller MirrorController {
  primary ConfigMap;
  owns Secret;
  workers = 2;
  reconcile(cm: ConfigMap) {
    if cm.metadata.labels["mirror"] == null { return; }
    let divisor = int(cm.data["divisor"] ?? "1");
    if 10 / divisor > 100 { return; }
    let existing = get(Secret, cm.metadata.name, namespace: cm.metadata.namespace);
    if existing == null {
      create(new Secret {
        metadata: {
          name: cm.metadata.name, namespace: cm.metadata.namespace, labels: {version: "VERSION"},
          ownerReferences: [{apiVersion: "v1", kind: "ConfigMap", name: cm.metadata.name, uid: cm.metadata.uid ?? "",
                             controller: true, blockOwnerDeletion: true}],
        },
      });
      emit(cm, "Normal", "Mirrored", "created secret ${cm.metadata.name}");
    }
  }
}
)";

std::string MirrorSource(const std::string& version) {
  std::string s = kMirror;
  s.replace(s.find("VERSION"), 7, version);
  return s;
}

TEST_F(ControllerRuntimeTest, ManagerRunsADslControllerIsolatesTrapsAndHotReplaces) {
  auto m = Manager();
  auto v1 = Compile("mirror.rc", MirrorSource("v1"));
  ASSERT_TRUE(v1.ok()) << v1.status().message();
  ASSERT_EQ(v1->controllers.size(), 1u);
  EXPECT_EQ(v1->controllers[0].primary.kind, "ConfigMap");
  ASSERT_TRUE(m->Install(std::move(v1->controllers[0])).ok());
  m->Start();
  CreateConfigMap("default", "a", R"(,"labels":{"mirror":"yes"})");
  CreateConfigMap("default", "boom", R"(,"labels":{"mirror":"yes"})", R"({"divisor":"0"})");
  CreateConfigMap("default", "b", R"(,"labels":{"mirror":"yes"})");
  ASSERT_TRUE(WaitFor([&] { return Exists("/api/v1/namespaces/default/secrets/a") && Exists("/api/v1/namespaces/default/secrets/b"); }));
  EXPECT_FALSE(Exists("/api/v1/namespaces/default/secrets/boom"));
  auto a = Get("/api/v1/namespaces/default/secrets/a");
  EXPECT_EQ(am::GetStringOr(*am::FindMember(*am::FindMember(a, "metadata"), "labels"), "version"), "v1");
  // The trapping key is retried with back-off and reported; the others were not affected.
  ASSERT_TRUE(WaitFor([&] {
    auto infos = m->Controllers();
    return !infos.empty() && infos[0].failures >= 2;
  }));
  EXPECT_NE(m->Controllers()[0].last_error.find("division by zero"), std::string::npos);
  ASSERT_TRUE(WaitFor([&] {
    auto events = Get("/api/v1/namespaces/default/events?fieldSelector=reason%3DReconcileError");
    auto* items = am::FindMember(events, "items");
    return items && items->IsArray() && items->Size() >= 1;
  }));
  auto mirrored = Get("/api/v1/namespaces/default/events?fieldSelector=reason%3DMirrored");
  EXPECT_EQ(am::FindMember(mirrored, "items")->Size(), 2u);

  // Hot replacement: later objects get the new behaviour; nothing is created twice.
  auto v2 = Compile("mirror.rc", MirrorSource("v2"));
  ASSERT_TRUE(v2.ok()) << v2.status().message();
  ASSERT_TRUE(m->Install(std::move(v2->controllers[0])).ok());
  EXPECT_EQ(m->Controllers()[0].version, 2);
  CreateConfigMap("default", "c", R"(,"labels":{"mirror":"yes"})");
  ASSERT_TRUE(WaitFor([&] { return Exists("/api/v1/namespaces/default/secrets/c"); }));
  auto c = Get("/api/v1/namespaces/default/secrets/c");
  EXPECT_EQ(am::GetStringOr(*am::FindMember(*am::FindMember(c, "metadata"), "labels"), "version"), "v2");
  a = Get("/api/v1/namespaces/default/secrets/a");
  EXPECT_EQ(am::GetStringOr(*am::FindMember(*am::FindMember(a, "metadata"), "labels"), "version"), "v1");
  // Fixing the data lets the failing key converge.
  EXPECT_EQ(Do("PATCH", "/api/v1/namespaces/default/configmaps/boom", R"({"data":{"divisor":"2"}})",
               "application/merge-patch+json"), 200);
  EXPECT_TRUE(WaitFor([&] { return Exists("/api/v1/namespaces/default/secrets/boom"); }));
  m->Stop();
}

TEST_F(ControllerRuntimeTest, StuckReconcileIsReportedAndOtherKeysProceed) {
  ControllerManagerOptions o;
  o.identity = "test";
  o.leader_elect = false;
  o.stuck_after_ns = 300 * 1000000LL;
  auto m = std::make_unique<ControllerManager>(client_.get(), o);
  // Each iteration calls into the host (list), so the loop cannot be optimised away: n = 3e6
  // iterations keep one worker busy for a few seconds.
  auto slow = Compile("slow.rc", R"(
controller SlowController {
  primary ConfigMap;
  workers = 2;
  reconcile(cm: ConfigMap) {
    var seen = 0;
    for i in range(int(cm.data["n"] ?? "0")) {
      seen = seen + list(ConfigMap, namespace: "nowhere").len() + 1;
    }
    if cm.metadata.annotations["done"] == null {
      patch(cm, { metadata: { annotations: { done: "${seen}" } } });
    }
  }
}
)");
  ASSERT_TRUE(slow.ok()) << slow.status().message();
  ASSERT_TRUE(m->Install(std::move(slow->controllers[0])).ok());
  m->Start();
  CreateConfigMap("default", "slow", "", R"({"n":"3000000"})");
  ASSERT_TRUE(WaitFor([&] { return m->Controllers()[0].stuck == 1; }, 5s));
  CreateConfigMap("default", "quick");
  EXPECT_TRUE(WaitFor([&] {
    auto d = Get("/api/v1/namespaces/default/configmaps/quick");
    return d.IsObject() && am::FindMember(*am::FindMember(d, "metadata"), "annotations") != nullptr;
  }, 5s)) << "the other worker keeps reconciling";
  EXPECT_NE(m->MetricsText().find("rc_controller_stuck_reconciles{controller=\"SlowController\"} 1"), std::string::npos);
  ASSERT_TRUE(WaitFor([&] {
    auto events = Get("/api/v1/namespaces/default/events?fieldSelector=reason%3DReconcileStuck");
    auto* items = am::FindMember(events, "items");
    return items && items->IsArray() && items->Size() == 1;
  }));
  EXPECT_TRUE(WaitFor([&] { return m->Controllers()[0].stuck == 0; }, 60s)) << "the long call ends by itself";
  EXPECT_NE(m->MetricsText().find("rc_controller_reconciles_total{controller=\"SlowController\"}"), std::string::npos);
  m->Stop();
}

TEST_F(ControllerRuntimeTest, BrokenControllerSourceIsRefusedWithPositions) {
  auto broken = Compile("broken.rc", "controller X { primary ConfigMap; reconcile(cm: ConfigMap) { let y = cm.nope; } }");
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("broken.rc:1:"), std::string::npos) << broken.status().message();
}

TEST_F(ControllerRuntimeTest, GarbageCollectorBackgroundOrphanAndForeground) {
  auto m = Manager();
  auto gc = StartGarbageCollector(m.get());
  m->Start();
  auto child_of = [](const std::string& uid, const std::string& owner) {
    return R"(,"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":")" + owner + R"(","uid":")" + uid +
           R"(","blockOwnerDeletion":true}])";
  };
  // Background: the dependent goes after its owner.
  std::string u1 = CreateConfigMap("default", "bg-owner");
  CreateConfigMap("default", "bg-child", child_of(u1, "bg-owner"));
  EXPECT_EQ(Do("DELETE", "/api/v1/namespaces/default/configmaps/bg-owner"), 200);
  EXPECT_TRUE(WaitFor([&] { return !Exists("/api/v1/namespaces/default/configmaps/bg-child"); }));
  // Orphan: the dependent stays without the reference; the owner goes.
  std::string u2 = CreateConfigMap("default", "or-owner");
  CreateConfigMap("default", "or-child", child_of(u2, "or-owner"));
  EXPECT_EQ(Do("DELETE", "/api/v1/namespaces/default/configmaps/or-owner", R"({"propagationPolicy":"Orphan"})"), 200);
  EXPECT_TRUE(WaitFor([&] { return !Exists("/api/v1/namespaces/default/configmaps/or-owner"); }));
  auto orphan = Get("/api/v1/namespaces/default/configmaps/or-child");
  ASSERT_TRUE(orphan.IsObject());
  EXPECT_EQ(am::FindMember(*am::FindMember(orphan, "metadata"), "ownerReferences"), nullptr);
  // Foreground: the owner waits (foregroundDeletion finalizer) until the dependent is gone.
  std::string u3 = CreateConfigMap("default", "fg-owner");
  CreateConfigMap("default", "fg-child", child_of(u3, "fg-owner") + R"(,"finalizers":["test/hold"])");
  EXPECT_EQ(Do("DELETE", "/api/v1/namespaces/default/configmaps/fg-owner", R"({"propagationPolicy":"Foreground"})"), 200);
  std::this_thread::sleep_for(800ms);
  EXPECT_TRUE(Exists("/api/v1/namespaces/default/configmaps/fg-owner"));  // blocked by the held child
  auto child = Get("/api/v1/namespaces/default/configmaps/fg-child");
  EXPECT_NE(MetaString(child, "deletionTimestamp"), "");
  EXPECT_EQ(Do("PATCH", "/api/v1/namespaces/default/configmaps/fg-child", R"({"metadata":{"finalizers":null}})",
               "application/merge-patch+json"), 200);
  EXPECT_TRUE(WaitFor([&] { return !Exists("/api/v1/namespaces/default/configmaps/fg-owner"); }));
  // A dangling reference among live ones is removed, the object kept.
  std::string live = CreateConfigMap("default", "live-owner");
  CreateConfigMap("default", "two-owners",
                  R"(,"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"live-owner","uid":")" + live +
                      R"("},{"apiVersion":"v1","kind":"ConfigMap","name":"ghost","uid":"00000000-dead"}])");
  EXPECT_TRUE(WaitFor([&] {
    auto d = Get("/api/v1/namespaces/default/configmaps/two-owners");
    auto* refs = d.IsObject() ? am::FindMember(*am::FindMember(d, "metadata"), "ownerReferences") : nullptr;
    return refs && refs->IsArray() && refs->Size() == 1;
  }));
  gc->Stop();
  m->Stop();
}

TEST_F(ControllerRuntimeTest, NamespaceControllerEmptiesThenFinalizes) {
  auto m = Manager();
  auto nsc = StartNamespaceController(m.get());
  m->Start();
  ASSERT_EQ(Do("POST", "/api/v1/namespaces", R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"doomed"}})"), 201);
  CreateConfigMap("doomed", "one");
  CreateConfigMap("doomed", "two");
  ASSERT_EQ(Do("POST", "/api/v1/namespaces/doomed/services",
               R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},"spec":{"ports":[{"port":80}]}})"), 201);
  ASSERT_EQ(Do("DELETE", "/api/v1/namespaces/doomed"), 200);
  auto ns = Get("/api/v1/namespaces/doomed");
  EXPECT_EQ(am::GetStringOr(*am::FindMember(ns, "status"), "phase"), "Terminating");
  EXPECT_TRUE(WaitFor([&] { return !Exists("/api/v1/namespaces/doomed"); }));
  EXPECT_FALSE(Exists("/api/v1/namespaces/doomed/configmaps/one"));
  nsc->Stop();
  m->Stop();
}

}  // namespace
}  // namespace rc::controller

namespace rc::controller {
namespace {

std::string Rfc3339Now() { return FormatRfc3339(NowUnixSeconds()); }

// "2026-12-02T06:00:00.000000Z" (a Lease's MicroTime).
std::string MicroNow() {
  std::string s = Rfc3339Now();
  return s.substr(0, s.size() - 1) + ".000000Z";
}

// A node whose heartbeats stop: Ready Unknown, unreachable taints, its pods not ready, the pod
// that does not tolerate the taint evicted after the default toleration, the one that does
// kept; heartbeats again: the taints go.
TEST_F(ControllerRuntimeTest, NodeLifecycleMarksSilentNodesAndEvicts) {
  auto m = Manager();
  NodeLifecycleOptions o;
  o.monitor_period_ms = 200;
  o.grace_period_seconds = 2;
  o.default_unreachable_toleration_seconds = 2;
  auto lifecycle = StartNodeLifecycleController(m.get(), o);
  m->Start();
  auto ready_status = [&](bool ready) {
    std::string now = Rfc3339Now();
    return R"({"status":{"conditions":[{"type":"Ready","status":")" + std::string(ready ? "True" : "False") +
           R"(","reason":"KubeletReady","lastHeartbeatTime":")" + now + R"(","lastTransitionTime":")" + now + R"("}]}})";
  };
  auto renew = [&] {
    return Do("PATCH", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
              R"({"spec":{"renewTime":")" + MicroNow() + R"("}})", "application/merge-patch+json");
  };
  ASSERT_EQ(Do("POST", "/api/v1/nodes", R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}})"), 201);
  ASSERT_EQ(Do("PATCH", "/api/v1/nodes/n1/status", ready_status(true), "application/merge-patch+json"), 200);
  ASSERT_EQ(Do("POST", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
               R"({"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"n1","namespace":"kube-node-lease"},"spec":{"holderIdentity":"n1","leaseDurationSeconds":40,"renewTime":")" +
                   MicroNow() + R"("}})"),
            201);
  for (const char* pod : {"plain", "patient"}) {
    std::string tolerations = std::string(pod) == "patient"
                                  ? R"(,"tolerations":[{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute"}])"
                                  : "";
    ASSERT_EQ(Do("POST", "/api/v1/namespaces/default/pods",
                 R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + std::string(pod) +
                     R"("},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}])" + tolerations + "}}"),
              201);
    ASSERT_EQ(Do("PATCH", std::string("/api/v1/namespaces/default/pods/") + pod + "/status",
                 R"({"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}]}})",
                 "application/merge-patch+json"),
              200);
  }
  auto node_ready = [&] {
    auto n = Get("/api/v1/nodes/n1");
    for (const auto& c : (*am::FindMember(*am::FindMember(n, "status"), "conditions")).GetArray()) {
      if (std::string(am::GetStringOr(c, "type")) == "Ready") return std::string(am::GetStringOr(c, "status"));
    }
    return std::string();
  };
  auto taints = [&] {
    auto n = Get("/api/v1/nodes/n1");
    const rapidjson::Value* spec = am::FindMember(n, "spec");
    const rapidjson::Value* t = spec ? am::FindMember(*spec, "taints") : nullptr;
    std::string out;
    if (t && t->IsArray()) {
      for (const auto& x : t->GetArray()) out += std::string(am::GetStringOr(x, "key")) + ":" + std::string(am::GetStringOr(x, "effect")) + " ";
    }
    return out;
  };
  auto pod_ready = [&](const std::string& pod) {
    auto p = Get("/api/v1/namespaces/default/pods/" + pod);
    for (const auto& c : (*am::FindMember(*am::FindMember(p, "status"), "conditions")).GetArray()) {
      if (std::string(am::GetStringOr(c, "type")) == "Ready") return std::string(am::GetStringOr(c, "status"));
    }
    return std::string();
  };
  auto terminating = [&](const std::string& pod) {
    auto p = Get("/api/v1/namespaces/default/pods/" + pod);
    return !p.IsObject() || am::FindMember(*am::FindMember(p, "metadata"), "deletionTimestamp") != nullptr;
  };
  // Heartbeating: left alone.
  for (int i = 0; i < 8; ++i) {
    ASSERT_EQ(renew(), 200);
    std::this_thread::sleep_for(400ms);
  }
  EXPECT_EQ(node_ready(), "True");
  EXPECT_EQ(taints(), "");
  // Silent: Unknown, tainted, pods not ready.
  ASSERT_TRUE(WaitFor([&] { return node_ready() == "Unknown"; }, 10s));
  ASSERT_TRUE(WaitFor([&] { return taints() == "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute "; }, 5s))
      << taints();
  EXPECT_TRUE(WaitFor([&] { return pod_ready("plain") == "False" && pod_ready("patient") == "False"; }, 5s));
  auto events = client_->Do("GET", "/api/v1/events");
  ASSERT_TRUE(events.ok());
  EXPECT_NE(events->body.find("Node n1 status is now: NodeNotReady"), std::string::npos);
  // The default toleration (2 s) runs out for the pod without one.
  ASSERT_TRUE(WaitFor([&] { return terminating("plain"); }, 10s));
  std::this_thread::sleep_for(1s);
  EXPECT_FALSE(terminating("patient"));
  // Back: the agent heartbeats and posts Ready; the taints go.
  ASSERT_EQ(renew(), 200);
  ASSERT_EQ(Do("PATCH", "/api/v1/nodes/n1/status", ready_status(true), "application/merge-patch+json"), 200);
  EXPECT_TRUE(WaitFor([&] { return taints().empty(); }, 5s)) << taints();
  lifecycle->Stop();
  m->Stop();
}

}  // namespace
}  // namespace rc::controller
