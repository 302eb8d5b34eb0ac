// PodManager against a real API server on RocksDB, with the FakePodRuntime standing in for runc:
// the sync loop's decisions (status, restart policy, back-off, deletion, adoption).
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <thread>

#include "rc/apimachinery/json.h"
#include "rc/apiserver/api_server.h"
#include "rc/client/rest_client.h"
#include "rc/client/rest_mapper.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"
#include "rc/controller/event_recorder.h"
#include "rc/nodeagent/fake_pod_runtime.h"
#include "rc/nodeagent/pod_manager.h"
#include "rc/nodeagent/static_pods.h"
#include "rc/store/store.h"
#include "testing/builtin_api.h"

namespace rc::nodeagent {
namespace {

using rc::testing::BuiltinSchemas;
using rc::testing::WaitFor;

using namespace std::chrono_literals;

class PodManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rc-agent-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    auto store = store::OpenRocksStore({.path = (dir_ / "store").string(), .sync = false});
    ASSERT_TRUE(store.ok());
    store_ = std::move(*store);
    auto server = apiserver::ApiServer::Start(store_.get(), apiserver::RegistryFromSchemas(BuiltinSchemas(), "builtin"),
                                              apiserver::ApiServerOptions{.port = 0});
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    auto client = client::RestClient::Create("http://127.0.0.1:" + std::to_string(server_->port()));
    ASSERT_TRUE(client.ok());
    client_ = std::move(client.value());
    client::RestMapper mapper(client_.get());
    auto pods = mapper.ForKind("v1", "Pod");
    ASSERT_TRUE(pods.ok());
    pods_ = *pods;
    runtime_.AddImage("busybox");
    events_ = std::make_unique<controller::EventRecorder>(client_.get(), "kubelet", "n1", 1);
  }
  void TearDown() override {
    manager_.reset();
    events_.reset();
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartManager(int adopt_attempts = 5) {
    PodManagerOptions o;
    o.services = services_;
    o.adopt_attempts = adopt_attempts;
    o.adopt_retry = 50ms;
    o.node_name = "n1";
    o.host_ip = "192.0.2.1";
    o.log_dir = (dir_ / "pods").string();
    o.resync = 100ms;
    o.initial_backoff_seconds = 1;
    o.max_backoff_seconds = 2;
    manager_ = std::make_unique<PodManager>(client_.get(), pods_, &runtime_, events_.get(), o);
    start_status_ = manager_->Start();
    if (expect_start_ok_) ASSERT_TRUE(start_status_.ok()) << start_status_.ToString();
  }
  void StopManager() {
    manager_->Stop();
    manager_.reset();
  }
  Status start_status_;
  bool expect_start_ok_ = true;
  std::function<std::vector<controller::ObjectPtr>(const std::string&)> services_;
  void CreatePod(const std::string& name, const std::string& restart_policy = "Always", int grace = 1) {
    std::string body = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
                       R"("},"spec":{"nodeName":"n1","restartPolicy":")" + restart_policy +
                       R"(","terminationGracePeriodSeconds":)" + std::to_string(grace) + R"(,"containers":[{"name":"c","image":"busybox","imagePullPolicy":"IfNotPresent","command":["sleep","1000"]}]}})";
    auto r = client_->Do("POST", "/api/v1/namespaces/default/pods", body);
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  }
  rapidjson::Document Pod(const std::string& name) {
    rapidjson::Document d;
    auto r = client_->Do("GET", "/api/v1/namespaces/default/pods/" + name);
    if (r.ok() && r->status == 200) d.Parse(r->body.c_str());
    return d;
  }
  std::string Field(const std::string& name, const std::vector<std::string>& path) {
    rapidjson::Document d = Pod(name);
    const rapidjson::Value* v = &d;
    for (const auto& p : path) {
      if (v->IsObject()) {
        v = apimachinery::FindMember(*v, p);
      } else if (v->IsArray() && !p.empty() && isdigit(p[0]) && std::stoul(p) < v->Size()) {
        v = &(*v)[static_cast<rapidjson::SizeType>(std::stoul(p))];
      } else {
        v = nullptr;
      }
      if (!v) return "";
    }
    if (v->IsString()) return v->GetString();
    return apimachinery::ToJson(*v);
  }
  std::string ContainerId() {
    auto all = runtime_.ListContainers();
    for (const auto& c : *all) {
      if (c.status.kind == ContainerStatusKind::kRunning) return c.id;
    }
    return "";
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<client::RestClient> client_;
  client::ResourceInfo pods_;
  FakePodRuntime runtime_;
  std::unique_ptr<controller::EventRecorder> events_;
  std::unique_ptr<PodManager> manager_;
};

TEST_F(PodManagerTest, BoundPodRunsAndReportsItsStatus) {
  StartManager();
  CreatePod("p");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Running"; }));
  EXPECT_EQ(Field("p", {"status", "podIP"}).rfind("10.88.", 0), 0u);
  EXPECT_EQ(Field("p", {"status", "hostIP"}), "192.0.2.1");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "ready"}) == "true"; }));
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "0");
  EXPECT_NE(Field("p", {"status", "containerStatuses", "0", "state", "running", "startedAt"}), "");
  EXPECT_EQ(Field("p", {"status", "qosClass"}), "BestEffort");
  auto cfg = runtime_.ConfigOf(ContainerId());
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->command, (std::vector<std::string>{"sleep", "1000"}));
  EXPECT_EQ(cfg->attempt, 0);
}

TEST_F(PodManagerTest, AlwaysRestartsAtOnceThenBacksOff) {
  StartManager();
  CreatePod("p");
  ASSERT_TRUE(WaitFor([&] { return !ContainerId().empty(); }));
  runtime_.Exit(ContainerId(), 1, "Error");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "restartCount"}) == "1"; }, 3s));
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "lastState", "terminated", "exitCode"}), "1");
  // The second crash waits out the back-off (1 s here) in CrashLoopBackOff.
  ASSERT_TRUE(WaitFor([&] { return !ContainerId().empty(); }));
  runtime_.Exit(ContainerId(), 2, "Error");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "state", "waiting", "reason"}) == "CrashLoopBackOff"; }, 3s));
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "restartCount"}) == "2"; }, 5s));
}

TEST_F(PodManagerTest, NeverDoesNotRestartAndFails) {
  StartManager();
  CreatePod("p", "Never");
  ASSERT_TRUE(WaitFor([&] { return !ContainerId().empty(); }));
  runtime_.Exit(ContainerId(), 3, "Error");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Failed"; }));
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "state", "terminated", "exitCode"}), "3");
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "0");
}

TEST_F(PodManagerTest, OnFailureSucceedsOnZero) {
  StartManager();
  CreatePod("p", "OnFailure");
  ASSERT_TRUE(WaitFor([&] { return !ContainerId().empty(); }));
  runtime_.Exit(ContainerId(), 0, "Completed");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Succeeded"; }));
}

TEST_F(PodManagerTest, GracefulDeletionStopsThenRemovesThePod) {
  StartManager();
  CreatePod("p");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Running"; }));
  auto r = client_->Do("DELETE", "/api/v1/namespaces/default/pods/p");
  ASSERT_TRUE(r.ok() && r->status == 200);
  ASSERT_TRUE(WaitFor([&] { return client_->Do("GET", "/api/v1/namespaces/default/pods/p")->status == 404; }));
  EXPECT_GE(runtime_.stop_calls(), 1);
  EXPECT_TRUE(runtime_.ListSandboxes()->empty());
}

TEST_F(PodManagerTest, ARestartedManagerAdoptsRunningContainers) {
  StartManager();
  CreatePod("p");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "ready"}) == "true"; }));
  std::string id = ContainerId();
  StopManager();
  StartManager();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(ContainerId(), id);
  EXPECT_EQ(manager_->counters().containers_started, 0);
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "0");
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "ready"}), "true");
}

TEST_F(PodManagerTest, MissingImageIsErrImagePull) {
  StartManager();
  std::string body = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"noimg"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"nope:1"}]}})";
  ASSERT_EQ(client_->Do("POST", "/api/v1/namespaces/default/pods", body)->status, 201);
  ASSERT_TRUE(WaitFor([&] {
    std::string r = Field("noimg", {"status", "containerStatuses", "0", "state", "waiting", "reason"});
    return r == "ErrImagePull" || r == "ImagePullBackOff";
  }));
  EXPECT_EQ(Field("noimg", {"status", "phase"}), "Pending");
}

// A container the runtime cannot start (runc: executable not found) is kubelet's StartError:
// terminated with exit code 128, which restartPolicy Never turns into a Failed pod.
TEST_F(PodManagerTest, StartErrorFailsANeverPod) {
  runtime_.FailNextCreate(Status::Internal("exec: \"nosuchcmd\": executable file not found in $PATH"));
  StartManager();
  CreatePod("p", "Never");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Failed"; }));
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "state", "terminated", "exitCode"}), "128");
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "state", "terminated", "reason"}), "StartError");
  EXPECT_NE(Field("p", {"status", "containerStatuses", "0", "state", "terminated", "message"}).find("nosuchcmd"),
            std::string::npos);
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "0");
  EXPECT_TRUE(WaitFor([&] { return runtime_.ListSandboxes()->empty(); }));  // finished: the sandbox is released
}

TEST_F(PodManagerTest, StartErrorIsRestartedUnderAlways) {
  runtime_.FailNextCreate(Status::Internal("exec: \"nosuchcmd\": executable file not found in $PATH"));
  StartManager();
  CreatePod("p", "Always");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "state", "running", "startedAt"}) != ""; }, 5s));
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "1");
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "lastState", "terminated", "reason"}), "StartError");
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "lastState", "terminated", "exitCode"}), "128");
  EXPECT_EQ(Field("p", {"status", "phase"}), "Running");
}

// The pause process dies: like the kubelet, the agent kills the containers, releases the old
// sandbox and makes a new one (new IP) where the containers run again as restarts.
TEST_F(PodManagerTest, DeadSandboxIsReplacedAndContainersRestarted) {
  StartManager();
  CreatePod("p");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "ready"}) == "true"; }));
  std::string old_ip = Field("p", {"status", "podIP"});
  auto sandboxes = runtime_.ListSandboxes();
  ASSERT_EQ(sandboxes->size(), 1u);
  std::string old_sandbox = (*sandboxes)[0].id;
  runtime_.KillSandbox(old_sandbox);
  ASSERT_TRUE(WaitFor([&] {
    return Field("p", {"status", "containerStatuses", "0", "restartCount"}) == "1" &&
           Field("p", {"status", "containerStatuses", "0", "state", "running", "startedAt"}) != "";
  }, 5s));
  EXPECT_NE(Field("p", {"status", "podIP"}), old_ip);
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "lastState", "terminated", "exitCode"}), "137");
  sandboxes = runtime_.ListSandboxes();
  ASSERT_EQ(sandboxes->size(), 1u);
  EXPECT_NE((*sandboxes)[0].id, old_sandbox);
  EXPECT_TRUE((*sandboxes)[0].ready);
  auto events = client_->Do("GET", "/api/v1/namespaces/default/events");
  ASSERT_TRUE(events.ok());
  EXPECT_NE(events->body.find("SandboxChanged"), std::string::npos);
}

// Under restartPolicy Never no new sandbox is made: the pod ends Failed with the kill's exit.
TEST_F(PodManagerTest, DeadSandboxFailsANeverPod) {
  StartManager();
  CreatePod("p", "Never");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Running"; }));
  runtime_.KillSandbox((*runtime_.ListSandboxes())[0].id);
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Failed"; }, 5s));
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "state", "terminated", "exitCode"}), "137");
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "0");
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(runtime_.ListSandboxes()->empty());
}

// A runtime that cannot be listed at start must not make the agent start pods blind: it would
// run a second copy of each container that already runs.
TEST_F(PodManagerTest, AListingFailureAtStartIsRetriedNeverStartsBlind) {
  StartManager();
  CreatePod("p");
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "containerStatuses", "0", "ready"}) == "true"; }));
  std::string id = ContainerId();
  StopManager();
  runtime_.FailLists(Status::IOError("state dir unreadable"), 2);  // transient: retried
  StartManager();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(ContainerId(), id);
  EXPECT_EQ(manager_->counters().containers_started, 0);
  StopManager();
  runtime_.FailLists(Status::IOError("state dir unreadable"), 100);  // lasting: Start fails
  expect_start_ok_ = false;
  StartManager(/*adopt_attempts=*/3);
  EXPECT_FALSE(start_status_.ok());
  EXPECT_NE(start_status_.message().find("state dir unreadable"), std::string::npos) << start_status_.ToString();
}

// Pods in their grace period do not hold the workers: with every worker's worth of pods
// terminating slowly (their processes ignore SIGTERM), a new pod still starts at once.
TEST_F(PodManagerTest, GracefulTerminationDoesNotBlockOtherPods) {
  runtime_.IgnoreSigterm(true);
  StartManager();  // 4 workers
  for (int i = 0; i < 6; ++i) CreatePod("slow" + std::to_string(i), "Always", 8);
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(WaitFor([&] { return Field("slow" + std::to_string(i), {"status", "phase"}) == "Running"; }));
  }
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(client_->Do("DELETE", "/api/v1/namespaces/default/pods/slow" + std::to_string(i))->status, 200);
  }
  std::this_thread::sleep_for(300ms);
  auto t0 = std::chrono::steady_clock::now();
  CreatePod("fresh");
  ASSERT_TRUE(WaitFor([&] { return Field("fresh", {"status", "phase"}) == "Running"; }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);  // blocked workers would take >= 8 s
  EXPECT_EQ(client_->Do("GET", "/api/v1/namespaces/default/pods/slow0")->status, 200);  // still in its grace period
  // They go when their grace period ends.
  ASSERT_TRUE(WaitFor([&] { return client_->Do("GET", "/api/v1/namespaces/default/pods/slow5")->status == 404; }, 20s));
}

// A second delete with a shorter grace period cuts the wait short, as in Kubernetes.
TEST_F(PodManagerTest, AShorterGracePeriodCutsTheWaitShort) {
  runtime_.IgnoreSigterm(true);
  StartManager();
  CreatePod("p", "Always", 30);
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Running"; }));
  ASSERT_EQ(client_->Do("DELETE", "/api/v1/namespaces/default/pods/p")->status, 200);
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(client_->Do("GET", "/api/v1/namespaces/default/pods/p")->status, 200);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(client_->Do("DELETE", "/api/v1/namespaces/default/pods/p", R"({"gracePeriodSeconds":1})")->status, 200);
  ASSERT_TRUE(WaitFor([&] { return client_->Do("GET", "/api/v1/namespaces/default/pods/p")->status == 404; }, 10s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
}

// The node's trouble (not the process's) is CreateContainerError, retried whatever the restart
// policy; and a Never pod whose sandbox dies before any container ran gets a new sandbox.
TEST_F(PodManagerTest, CreateContainerErrorIsRetriedAndAnEarlySandboxDeathIsReplaced) {
  runtime_.FailNextCreate(Status::Unavailable("rc-shim gave no answer"));
  StartManager();
  CreatePod("p", "Never");
  ASSERT_TRUE(WaitFor([&] {
    return Field("p", {"status", "containerStatuses", "0", "state", "waiting", "reason"}) == "CreateContainerError";
  }));
  EXPECT_EQ(Field("p", {"status", "phase"}), "Pending");
  std::string first = (*runtime_.ListSandboxes())[0].id;
  runtime_.KillSandbox(first);
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Running"; }, 10s));
  auto sandboxes = runtime_.ListSandboxes();
  ASSERT_EQ(sandboxes->size(), 1u);
  EXPECT_NE((*sandboxes)[0].id, first);
  EXPECT_EQ(Field("p", {"status", "containerStatuses", "0", "restartCount"}), "0");
}

// Static pods: a mirror pod whose manifest went away while the agent was down is deleted at
// start (a regular pod on the node is not); two manifests naming the same pod run one pod, the
// first by file name, without flapping between them.
TEST_F(PodManagerTest, StaticPodsOrphanMirrorsAndDuplicateNames) {
  auto mirror = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"gone-n1","annotations":{"kubernetes.io/config.mirror":"abc"}},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}})";
  ASSERT_EQ(client_->Do("POST", "/api/v1/namespaces/default/pods", mirror)->status, 201);
  std::string manifests = (dir_ / "manifests").string();
  std::filesystem::create_directories(manifests);
  for (const char* file : {"a.yaml", "b.yaml"}) {
    std::ofstream(manifests + "/" + file) << "apiVersion: v1\nkind: Pod\nmetadata: {name: web}\nspec:\n  containers:\n"
                                          << "  - {name: c, image: busybox, imagePullPolicy: IfNotPresent, command: [sleep, '" << file
                                          << "']}\n";
  }
  StartManager();
  CreatePod("regular");
  StaticPods statics(client_.get(), manager_.get(), manifests, "n1", /*poll_ms=*/100);
  statics.Start();
  EXPECT_TRUE(WaitFor([&] { return client_->Do("GET", "/api/v1/namespaces/default/pods/gone-n1")->status == 404; }));
  ASSERT_TRUE(WaitFor([&] { return Field("web-n1", {"status", "phase"}) == "Running"; }));
  std::string hash = Field("web-n1", {"metadata", "annotations", "kubernetes.io/config.mirror"});
  std::this_thread::sleep_for(1s);  // ten scans
  EXPECT_EQ(Field("web-n1", {"metadata", "annotations", "kubernetes.io/config.mirror"}), hash);
  auto cfg = runtime_.ConfigOf(Field("web-n1", {"status", "containerStatuses", "0", "containerID"}).substr(7));
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->command, (std::vector<std::string>{"sleep", "a.yaml"}));  // the first file by name
  EXPECT_EQ(manager_->counters().containers_started, 2);  // regular + one static pod, nothing restarted
  EXPECT_EQ(Field("regular", {"status", "phase"}), "Running");
  statics.Stop();
}

controller::ObjectPtr Obj(const std::string& json) {
  auto d = std::make_shared<rapidjson::Document>();
  d->Parse(json.c_str());
  return controller::ObjectPtr(d, d.get());
}

TEST(ServiceEnvironmentTest, KubeletVariableNames) {
  auto env = ServiceEnvironment(
      {Obj(R"({"metadata":{"name":"redis-primary"},"spec":{"clusterIP":"10.96.0.11","ports":[{"name":"client","port":6379},{"name":"gossip","port":16379,"protocol":"UDP"}]}})"),
       Obj(R"({"metadata":{"name":"headless"},"spec":{"clusterIP":"None","ports":[{"port":80}]}})"),
       Obj(R"({"metadata":{"name":"api"},"spec":{"clusterIP":"10.96.0.10","ports":[{"port":443}]}})")});
  std::vector<std::pair<std::string, std::string>> want = {
      {"API_SERVICE_HOST", "10.96.0.10"},
      {"API_SERVICE_PORT", "443"},
      {"API_PORT", "tcp://10.96.0.10:443"},
      {"API_PORT_443_TCP", "tcp://10.96.0.10:443"},
      {"API_PORT_443_TCP_PROTO", "tcp"},
      {"API_PORT_443_TCP_PORT", "443"},
      {"API_PORT_443_TCP_ADDR", "10.96.0.10"},
      {"REDIS_PRIMARY_SERVICE_HOST", "10.96.0.11"},
      {"REDIS_PRIMARY_SERVICE_PORT", "6379"},
      {"REDIS_PRIMARY_SERVICE_PORT_CLIENT", "6379"},
      {"REDIS_PRIMARY_SERVICE_PORT_GOSSIP", "16379"},
      {"REDIS_PRIMARY_PORT", "tcp://10.96.0.11:6379"},
      {"REDIS_PRIMARY_PORT_6379_TCP", "tcp://10.96.0.11:6379"},
      {"REDIS_PRIMARY_PORT_6379_TCP_PROTO", "tcp"},
      {"REDIS_PRIMARY_PORT_6379_TCP_PORT", "6379"},
      {"REDIS_PRIMARY_PORT_6379_TCP_ADDR", "10.96.0.11"},
      {"REDIS_PRIMARY_PORT_16379_UDP", "udp://10.96.0.11:16379"},
      {"REDIS_PRIMARY_PORT_16379_UDP_PROTO", "udp"},
      {"REDIS_PRIMARY_PORT_16379_UDP_PORT", "16379"},
      {"REDIS_PRIMARY_PORT_16379_UDP_ADDR", "10.96.0.11"},
  };
  EXPECT_EQ(env, want);
}

// Containers get their namespace's Service variables before their own env (which wins), unless
// the pod says enableServiceLinks: false.
TEST_F(PodManagerTest, ContainersGetServiceVariables) {
  services_ = [](const std::string& ns) {
    std::vector<controller::ObjectPtr> out;
    if (ns == "default") out.push_back(Obj(R"({"metadata":{"name":"web"},"spec":{"clusterIP":"10.96.0.20","ports":[{"port":80}]}})"));
    return out;
  };
  StartManager();
  std::string body = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox","imagePullPolicy":"IfNotPresent","env":[{"name":"WEB_SERVICE_PORT","value":"mine"}]}]}})";
  ASSERT_EQ(client_->Do("POST", "/api/v1/namespaces/default/pods", body)->status, 201);
  std::string nolinks = R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"q"},"spec":{"nodeName":"n1","enableServiceLinks":false,"containers":[{"name":"c","image":"busybox","imagePullPolicy":"IfNotPresent"}]}})";
  ASSERT_EQ(client_->Do("POST", "/api/v1/namespaces/default/pods", nolinks)->status, 201);
  ASSERT_TRUE(WaitFor([&] { return Field("p", {"status", "phase"}) == "Running" && Field("q", {"status", "phase"}) == "Running"; }));
  auto env_of = [&](const std::string& pod) {
    auto cfg = runtime_.ConfigOf(Field(pod, {"status", "containerStatuses", "0", "containerID"}).substr(7));
    std::map<std::string, std::string> m;
    if (cfg.ok()) {
      for (const auto& [k, v] : cfg->env) m[k] = v;  // later entries win, as in the OCI spec
    }
    return m;
  };
  auto p = env_of("p");
  EXPECT_EQ(p["WEB_SERVICE_HOST"], "10.96.0.20");
  EXPECT_EQ(p["WEB_PORT_80_TCP_ADDR"], "10.96.0.20");
  EXPECT_EQ(p["WEB_SERVICE_PORT"], "mine");
  EXPECT_EQ(env_of("q").count("WEB_SERVICE_HOST"), 0u);
}

}  // namespace
}  // namespace rc::nodeagent
