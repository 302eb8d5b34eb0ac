// The scheduler component against a real API server on a real RocksDB store, over loopback HTTP:
// binding through pods/binding with Scheduled Events, FailedScheduling Events with the reasons
// and the PodScheduled condition, retry when a node appears, bind conflicts, leadership and
// pods naming another scheduler.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "rc/apimachinery/json.h"
#include "rc/apiserver/api_server.h"
#include "rc/client/rest_client.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"
#include "rc/controller/controller_manager.h"
#include "rc/scheduler/scheduler.h"
#include "rc/store/store.h"
#include "testing/builtin_api.h"

namespace rc::scheduler {
namespace {

using rc::testing::BuiltinSchemas;
using rc::testing::WaitFor;

using namespace std::chrono_literals;
namespace am = rc::apimachinery;

std::string NodeBody(const std::string& name, const std::string& cpu, const std::string& labels = "",
                     const std::string& spec = "{}") {
  return R"({"apiVersion":"v1","kind":"Node","metadata":{"name":")" + name + R"(","labels":{"kubernetes.io/hostname":")" +
         name + "\"" + labels + R"(}},"spec":)" + spec + R"(,"status":{"allocatable":{"cpu":")" + cpu +
         R"(","memory":"8Gi","pods":"110"},"capacity":{"cpu":")" + cpu +
         R"(","memory":"8Gi","pods":"110"},"conditions":[{"type":"Ready","status":"True"}]}})";
}

std::string PodBody(const std::string& name, const std::string& cpu, const std::string& spec_extra = "") {
  return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
         R"("},"spec":{"containers":[{"name":"c","image":"busybox","resources":{"requests":{"cpu":")" + cpu + R"("}}}])" +
         spec_extra + "}}";
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rc-scheduler-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
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
    if (scheduler_) scheduler_->Stop();
    scheduler_.reset();
    if (manager_) manager_->Stop();
    manager_.reset();
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A manager (leading at once unless `start` is false) and a scheduler on it.
  void StartScheduler(std::unique_ptr<Binder> binder = nullptr, bool start = true) {
    controller::ControllerManagerOptions o;
    o.identity = "test";
    o.leader_elect = false;
    manager_ = std::make_unique<controller::ControllerManager>(client_.get(), o);
    if (start) manager_->Start();
    SchedulerOptions so;
    so.binder = std::move(binder);
    so.initial_backoff = 50ms;
    so.max_backoff = 200ms;
    so.unschedulable_flush = 5000ms;
    auto s = Scheduler::Start(&manager_->informers(), client_.get(), manager_.get(), std::move(so));
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    scheduler_ = std::move(*s);
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
  void CreateNode(const std::string& body) {
    ASSERT_EQ(Do("POST", "/api/v1/nodes", body), 201);
    rapidjson::Document d;
    d.Parse(body.c_str());
    std::string name(am::GetStringOr(*am::FindMember(d, "metadata"), "name"));
    // Status as a node agent would write it (create may reset status).
    std::string status = am::ToJson(*am::FindMember(d, "status"));
    ASSERT_EQ(Do("PATCH", "/api/v1/nodes/" + name + "/status", R"({"status":)" + status + "}",
                 "application/merge-patch+json"),
              200);
  }
  void CreatePod(const std::string& body) { ASSERT_EQ(Do("POST", "/api/v1/namespaces/default/pods", body), 201); }
  std::string NodeOf(const std::string& pod) {
    auto d = Get("/api/v1/namespaces/default/pods/" + pod);
    if (!d.IsObject()) return "";
    const rapidjson::Value* spec = am::FindMember(d, "spec");
    return spec ? std::string(am::GetStringOr(*spec, "nodeName")) : "";
  }
  // Messages of the pod's Events with `reason`.
  std::vector<std::string> EventMessages(const std::string& pod, const std::string& reason, std::string* type = nullptr) {
    std::vector<std::string> out;
    auto d = Get("/api/v1/namespaces/default/events");
    const rapidjson::Value* items = d.IsObject() ? am::FindMember(d, "items") : nullptr;
    if (!items || !items->IsArray()) return out;
    for (auto& e : items->GetArray()) {
      const rapidjson::Value* io = am::FindMember(e, "involvedObject");
      if (!io || am::GetStringOr(*io, "name") != pod || am::GetStringOr(e, "reason") != reason) continue;
      out.emplace_back(am::GetStringOr(e, "message"));
      if (type) *type = std::string(am::GetStringOr(e, "type"));
    }
    return out;
  }
  bool BindingServed() {
    auto r = client_->Do("POST", "/api/v1/namespaces/default/pods/probe-missing/binding",
                         R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":"probe-missing"},"target":{"kind":"Node","name":"x"}})");
    if (!r.ok()) return false;
    // 404 for a missing pod comes as a Status naming the pod; an unknown route does not.
    return !(r->status == 404 || r->status == 405) || r->body.find("probe-missing") != std::string::npos;
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<client::RestClient> client_;
  std::unique_ptr<controller::ControllerManager> manager_;
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, BindsPodsThroughTheBindingSubresource) {
  if (!BindingServed()) GTEST_SKIP() << "pods/binding is not served by this API server yet";
  CreateNode(NodeBody("n1", "2"));
  CreateNode(NodeBody("n2", "2"));
  StartScheduler();
  for (int i = 0; i < 4; ++i) CreatePod(PodBody("p" + std::to_string(i), "900m"));
  CreatePod(PodBody("mine-not", "100m", R"(,"schedulerName":"other-scheduler")"));
  std::map<std::string, int> per_node;
  ASSERT_TRUE(WaitFor([&] {
    for (int i = 0; i < 4; ++i) {
      if (NodeOf("p" + std::to_string(i)).empty()) return false;
    }
    return true;
  })) << scheduler_->MetricsText();
  for (int i = 0; i < 4; ++i) ++per_node[NodeOf("p" + std::to_string(i))];
  EXPECT_EQ(per_node["n1"], 2);  // 2 cpu each: two pods of 900m per node
  EXPECT_EQ(per_node["n2"], 2);
  ASSERT_TRUE(WaitFor([&] { return !EventMessages("p0", "Scheduled").empty(); }));
  std::string type;
  auto msgs = EventMessages("p0", "Scheduled", &type);
  EXPECT_EQ(type, "Normal");
  EXPECT_EQ(msgs[0], "Successfully assigned default/p0 to " + NodeOf("p0"));
  // The next pod does not fit anywhere: both nodes are full (assumed pods counted).
  CreatePod(PodBody("p-extra", "900m"));
  ASSERT_TRUE(WaitFor([&] { return !EventMessages("p-extra", "FailedScheduling").empty(); }));
  EXPECT_EQ(EventMessages("p-extra", "FailedScheduling")[0], "0/2 nodes are available: 2 Insufficient cpu.");
  // A pod naming another scheduler is left alone.
  EXPECT_EQ(NodeOf("mine-not"), "");
  EXPECT_TRUE(EventMessages("mine-not", "FailedScheduling").empty());
  // Deleting a bound pod frees room: the waiting pod is retried and bound.
  std::string freed = NodeOf("p0");
  ASSERT_EQ(Do("DELETE", "/api/v1/namespaces/default/pods/p0", R"({"gracePeriodSeconds":0})"), 200);
  ASSERT_TRUE(WaitFor([&] { return !NodeOf("p-extra").empty(); })) << scheduler_->MetricsText();
  EXPECT_EQ(NodeOf("p-extra"), freed);
  EXPECT_EQ(scheduler_->Stats().bind_errors, 0);
}

TEST_F(SchedulerTest, FailedSchedulingShowsTheReasonsAndRetriesWhenANodeAppears) {
  auto binder = std::make_unique<FakeBinder>();
  FakeBinder* fake = binder.get();
  CreateNode(NodeBody("small", "1", R"(,"disk":"ssd")"));
  CreateNode(NodeBody("hdd", "8", R"(,"disk":"hdd")"));
  CreateNode(NodeBody("cordoned", "8", R"(,"disk":"ssd")", R"({"unschedulable":true})"));
  StartScheduler(std::move(binder));
  CreatePod(PodBody("picky", "2", R"(,"nodeSelector":{"disk":"ssd"})"));
  const std::string want =
      "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match Pod's node affinity/selector, "
      "1 node(s) were unschedulable.";
  ASSERT_TRUE(WaitFor([&] { return !EventMessages("picky", "FailedScheduling").empty(); })) << scheduler_->MetricsText();
  std::string type;
  EXPECT_EQ(EventMessages("picky", "FailedScheduling", &type)[0], want);
  EXPECT_EQ(type, "Warning");
  // The pod's PodScheduled condition says why (kubectl describe shows it).
  ASSERT_TRUE(WaitFor([&] {
    auto pod = Get("/api/v1/namespaces/default/pods/picky");
    const rapidjson::Value* st = pod.IsObject() ? am::FindMember(pod, "status") : nullptr;
    const rapidjson::Value* conds = st ? am::FindMember(*st, "conditions") : nullptr;
    if (!conds || !conds->IsArray()) return false;
    for (auto& c : conds->GetArray()) {
      if (am::GetStringOr(c, "type") == "PodScheduled") {
        return am::GetStringOr(c, "status") == "False" && am::GetStringOr(c, "reason") == "Unschedulable" &&
               am::GetStringOr(c, "message") == want;
      }
    }
    return false;
  }));
  EXPECT_TRUE(fake->calls().empty());
  EXPECT_GE(scheduler_->Stats().unschedulable, 1);
  // A node that fits appears: the parked pod is retried and bound there.
  CreateNode(NodeBody("big", "4", R"(,"disk":"ssd")"));
  ASSERT_TRUE(WaitFor([&] { return !fake->calls().empty(); })) << scheduler_->MetricsText();
  EXPECT_EQ(fake->calls()[0].pod_key, "default/picky");
  EXPECT_EQ(fake->calls()[0].node, "big");
  ASSERT_TRUE(WaitFor([&] { return !EventMessages("picky", "Scheduled").empty(); }));
  EXPECT_EQ(EventMessages("picky", "Scheduled")[0], "Successfully assigned default/picky to big");
}

TEST_F(SchedulerTest, BindConflictDropsTheAssumptionAndRetries) {
  auto binder = std::make_unique<FakeBinder>();
  FakeBinder* fake = binder.get();
  fake->set_result(Status::Conflict("pod p is already assigned"));
  CreateNode(NodeBody("n1", "1"));
  StartScheduler(std::move(binder));
  CreatePod(PodBody("p", "800m"));
  ASSERT_TRUE(WaitFor([&] { return fake->calls().size() >= 2; })) << scheduler_->MetricsText();
  // Each retry found the node free again: the failed assumption was dropped.
  for (auto& c : fake->calls()) EXPECT_EQ(c.node, "n1");
  EXPECT_GE(scheduler_->Stats().bind_errors, 2);
  fake->set_result(Status::Ok());
  ASSERT_TRUE(WaitFor([&] { return scheduler_->Stats().scheduled == 1; })) << scheduler_->MetricsText();
  // Assumed on n1 now: a second pod that needs the room does not fit.
  CreatePod(PodBody("q", "800m"));
  ASSERT_TRUE(WaitFor([&] { return !EventMessages("q", "FailedScheduling").empty(); }));
  EXPECT_EQ(EventMessages("q", "FailedScheduling")[0], "0/1 nodes are available: 1 Insufficient cpu.");
}

TEST_F(SchedulerTest, SchedulesOnlyWhileLeading) {
  auto binder = std::make_unique<FakeBinder>();
  FakeBinder* fake = binder.get();
  CreateNode(NodeBody("n1", "4"));
  StartScheduler(std::move(binder), /*start=*/false);
  CreatePod(PodBody("p", "100m"));
  std::this_thread::sleep_for(600ms);
  EXPECT_TRUE(fake->calls().empty());
  manager_->Start();
  ASSERT_TRUE(WaitFor([&] { return fake->calls().size() == 1; })) << scheduler_->MetricsText();
  EXPECT_NE(scheduler_->MetricsText().find("rc_scheduler_schedule_attempts_total{result=\"scheduled\"} 1"), std::string::npos);
}

}  // namespace
}  // namespace rc::scheduler

namespace rc::scheduler {
namespace {

// The whole path (watch -> decision -> bind -> watch) on 100 nodes: 300 pods created from 4
// threads must all be bound; prints pods/s (the benchmark in bench/ measures at scale).
TEST_F(SchedulerTest, ThroughputSmoke) {
  if (!BindingServed()) GTEST_SKIP() << "pods/binding is not served by this API server yet";
  for (int i = 0; i < 100; ++i) CreateNode(NodeBody("node-" + std::to_string(i), "8"));
  StartScheduler();
  ASSERT_TRUE(WaitFor([&] { return scheduler_->Stats().nodes == 100; }));
  const int kPods = 300;
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> creators;
  for (int t = 0; t < 4; ++t) {
    creators.emplace_back([&, t] {
      auto c = client::RestClient::Create("http://127.0.0.1:" + std::to_string(server_->port()));
      if (!c.ok()) return;
      for (int i = t; i < kPods; i += 4) {
        auto r = (*c)->Do("POST", "/api/v1/namespaces/default/pods", PodBody("p" + std::to_string(i), "100m"));
        (void)r;
      }
    });
  }
  for (auto& t : creators) t.join();
  ASSERT_TRUE(WaitFor([&] { return scheduler_->Stats().scheduled == kPods; }, 60s)) << scheduler_->MetricsText();
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("scheduled %d pods on 100 nodes in %.2f s (%.0f pods/s, creation included)\n", kPods, s, kPods / s);
  EXPECT_EQ(scheduler_->Stats().bind_errors, 0);
}

}  // namespace
}  // namespace rc::scheduler

namespace rc::scheduler {
namespace {

TEST_F(SchedulerTest, SkipsPodsBeingDeleted) {
  auto binder = std::make_unique<FakeBinder>();
  FakeBinder* fake = binder.get();
  CreateNode(NodeBody("n1", "4"));
  StartScheduler(std::move(binder), /*start=*/false);
  CreatePod(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"going","finalizers":["test/hold"]},
                "spec":{"containers":[{"name":"c","image":"busybox"}]}})");
  ASSERT_EQ(Do("DELETE", "/api/v1/namespaces/default/pods/going"), 200);  // held by the finalizer
  CreatePod(PodBody("staying", "100m"));
  manager_->Start();
  ASSERT_TRUE(WaitFor([&] { return fake->calls().size() == 1; })) << scheduler_->MetricsText();
  std::this_thread::sleep_for(300ms);
  ASSERT_EQ(fake->calls().size(), 1u);
  EXPECT_EQ(fake->calls()[0].pod_key, "default/staying");
  EXPECT_EQ(Do("PATCH", "/api/v1/namespaces/default/pods/going", R"({"metadata":{"finalizers":null}})",
               "application/merge-patch+json"), 200);
}

}  // namespace
}  // namespace rc::scheduler
