// Simulated nodes against a real API server on RocksDB: registration (Ready, Lease), pods bound
// through pods/binding going Running with distinct IPs, graceful deletion finished by the
// simulator, pods of other nodes left alone, option checks.
#include "rc/nodeagent/simulator.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "rc/apimachinery/json.h"
#include "rc/apiserver/api_server.h"
#include "rc/client/rest_client.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"
#include "rc/store/store.h"
#include "testing/builtin_api.h"

namespace rc::nodeagent {
namespace {

using rc::testing::BuiltinSchemas;
using rc::testing::WaitFor;

using namespace std::chrono_literals;
namespace am = rc::apimachinery;

// The value at a path of member names and array indexes: strings as is, anything else as JSON;
// "" when absent.
std::string At(const rapidjson::Value& root, const std::vector<std::string>& path) {
  const rapidjson::Value* v = &root;
  for (const auto& p : path) {
    if (v->IsObject()) {
      v = am::FindMember(*v, p);
    } else if (v->IsArray() && !p.empty() && isdigit(static_cast<unsigned char>(p[0])) && std::stoul(p) < v->Size()) {
      v = &(*v)[static_cast<rapidjson::SizeType>(std::stoul(p))];
    } else {
      v = nullptr;
    }
    if (v == nullptr) return "";
  }
  return v->IsString() ? std::string(v->GetString()) : am::ToJson(*v);
}

std::string ConditionStatus(const rapidjson::Value& obj, const std::string& type) {
  const rapidjson::Value* status = am::FindMember(obj, "status");
  const rapidjson::Value* conds = status ? am::FindMember(*status, "conditions") : nullptr;
  if (conds == nullptr || !conds->IsArray()) return "";
  for (const auto& c : conds->GetArray()) {
    if (am::GetStringOr(c, "type") == type) return std::string(am::GetStringOr(c, "status"));
  }
  return "";
}

class SimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("rc-sim-test-" + std::to_string(getpid()) + "-" + std::to_string(counter_++));
    std::filesystem::remove_all(dir_);
    auto store = store::OpenRocksStore({.path = (dir_ / "store").string(), .sync = false});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    store_ = std::move(*store);
    auto server = apiserver::ApiServer::Start(store_.get(), apiserver::RegistryFromSchemas(BuiltinSchemas(), "builtin"),
                                              apiserver::ApiServerOptions{.port = 0});
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(*server);
    auto client = client::RestClient::Create("http://127.0.0.1:" + std::to_string(server_->port()));
    ASSERT_TRUE(client.ok());
    client_ = std::move(client.value());
  }
  void TearDown() override {
    sim_.reset();
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void StartSimulator(int nodes) {
    SimulatorOptions o;
    o.nodes = nodes;
    o.name_prefix = "sim-";
    o.heartbeat_shards = 2;
    o.lease_renew_ms = 1000;
    sim_ = std::make_unique<Simulator>(client_.get(), o);
    Status s = sim_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  rapidjson::Document Get(const std::string& path) {
    rapidjson::Document d;
    auto r = client_->Do("GET", path);
    if (r.ok() && r->status == 200) {
      d.Parse(r->body.c_str());
    } else {
      d.SetNull();
    }
    return d;
  }
  rapidjson::Document Pod(const std::string& name) { return Get("/api/v1/namespaces/default/pods/" + name); }
  void CreatePod(const std::string& name, const std::string& node_name = "") {
    std::string spec = R"({"containers":[{"name":"app","image":"busybox"},{"name":"side","image":"busybox"}]})";
    if (!node_name.empty()) spec.insert(1, R"("nodeName":")" + node_name + "\",");
    auto r = client_->Do("POST", "/api/v1/namespaces/default/pods",
                         R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name + R"("},"spec":)" + spec + "}");
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  }
  void Bind(const std::string& pod, const std::string& node) {
    auto r = client_->Do("POST", "/api/v1/namespaces/default/pods/" + pod + "/binding",
                         R"({"apiVersion":"v1","kind":"Binding","metadata":{"name":")" + pod +
                             R"("},"target":{"apiVersion":"v1","kind":"Node","name":")" + node + R"("}})");
    ASSERT_TRUE(r.ok() && r->status == 201) << (r.ok() ? r->body : r.status().ToString());
  }
  bool Running(const std::string& name) {
    rapidjson::Document d = Pod(name);
    return d.IsObject() && At(d, {"status", "phase"}) == "Running" && !At(d, {"status", "podIP"}).empty();
  }

  static inline int counter_ = 0;
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::unique_ptr<client::RestClient> client_;
  std::unique_ptr<Simulator> sim_;
};

TEST_F(SimulatorTest, NodesRegisterReadyWithLeases) {
  StartSimulator(3);
  EXPECT_EQ(sim_->stats().nodes, 3);
  ASSERT_EQ(sim_->node_names(), (std::vector<std::string>{"sim-0", "sim-1", "sim-2"}));
  std::set<std::string> ips;
  for (const auto& name : sim_->node_names()) {
    rapidjson::Document node = Get("/api/v1/nodes/" + name);
    ASSERT_TRUE(node.IsObject()) << name;
    EXPECT_EQ(ConditionStatus(node, "Ready"), "True") << name;
    EXPECT_EQ(At(node, {"metadata", "labels", "type"}), "kwok");
    EXPECT_EQ(At(node, {"metadata", "labels", "kubernetes.io/hostname"}), name);
    EXPECT_EQ(At(node, {"status", "allocatable", "cpu"}), "32");
    EXPECT_EQ(At(node, {"status", "allocatable", "memory"}), "268435456Ki");
    EXPECT_EQ(At(node, {"status", "allocatable", "pods"}), "110");
    ips.insert(At(node, {"status", "addresses", "0", "address"}));
    rapidjson::Document lease = Get("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/" + name);
    ASSERT_TRUE(lease.IsObject()) << name;
    EXPECT_EQ(At(lease, {"spec", "holderIdentity"}), name);
    EXPECT_FALSE(At(lease, {"spec", "renewTime"}).empty());
  }
  EXPECT_EQ(ips.size(), 3u);
  // Leases keep being renewed (every second here).
  EXPECT_TRUE(WaitFor([&] { return sim_->stats().lease_renewals >= 3; }, 5s));
}

TEST_F(SimulatorTest, BoundPodsGoRunningWithDistinctIps) {
  StartSimulator(3);
  const int kPods = 9;
  for (int i = 0; i < kPods; ++i) CreatePod("p" + std::to_string(i));
  // Unbound pods stay Pending.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(At(Pod("p0"), {"status", "phase"}), "Pending");
  for (int i = 0; i < kPods; ++i) Bind("p" + std::to_string(i), "sim-" + std::to_string(i % 3));
  std::set<std::string> ips;
  for (int i = 0; i < kPods; ++i) {
    std::string name = "p" + std::to_string(i);
    ASSERT_TRUE(WaitFor([&] { return Running(name); })) << name << ": " << am::ToJson(Pod(name));
    rapidjson::Document pod = Pod(name);
    ips.insert(At(pod, {"status", "podIP"}));
    for (const char* type : {"PodScheduled", "Initialized", "ContainersReady", "Ready"}) {
      EXPECT_EQ(ConditionStatus(pod, type), "True") << name << " " << type;
    }
    rapidjson::Document node = Get("/api/v1/nodes/sim-" + std::to_string(i % 3));
    EXPECT_EQ(At(pod, {"status", "hostIP"}), At(node, {"status", "addresses", "0", "address"}));
    EXPECT_EQ(At(pod, {"status", "podIPs", "0", "ip"}), At(pod, {"status", "podIP"}));
    EXPECT_FALSE(At(pod, {"status", "startTime"}).empty());
    for (const char* c : {"0", "1"}) {
      EXPECT_EQ(At(pod, {"status", "containerStatuses", c, "ready"}), "true");
      EXPECT_EQ(At(pod, {"status", "containerStatuses", c, "started"}), "true");
      EXPECT_FALSE(At(pod, {"status", "containerStatuses", c, "state", "running", "startedAt"}).empty());
    }
    EXPECT_EQ(At(pod, {"status", "containerStatuses", "1", "name"}), "side");
  }
  EXPECT_EQ(ips.size(), static_cast<size_t>(kPods));
  EXPECT_TRUE(WaitFor([&] { return sim_->stats().pods_started == kPods && sim_->stats().pods_running == kPods; }));
  // One write per pod: nothing is written again after the status settled.
  std::string rv = At(Pod("p0"), {"metadata", "resourceVersion"});
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(At(Pod("p0"), {"metadata", "resourceVersion"}), rv);
  EXPECT_EQ(sim_->stats().pods_started, kPods);
}

TEST_F(SimulatorTest, PodCreatedWithNodeNameRuns) {
  StartSimulator(1);
  CreatePod("direct", "sim-0");
  EXPECT_TRUE(WaitFor([&] { return Running("direct"); }));
  EXPECT_EQ(At(Pod("direct"), {"status", "podIP"}).rfind("10.0.0.", 0), 0u);
}

TEST_F(SimulatorTest, DeletedPodDisappears) {
  StartSimulator(3);
  CreatePod("gone");
  CreatePod("stays");
  Bind("gone", "sim-1");
  Bind("stays", "sim-1");
  ASSERT_TRUE(WaitFor([&] { return Running("gone") && Running("stays"); }));
  std::string ip = At(Pod("gone"), {"status", "podIP"});
  // A graceful delete only marks the pod; the simulator finishes it.
  auto r = client_->Do("DELETE", "/api/v1/namespaces/default/pods/gone");
  ASSERT_TRUE(r.ok() && (r->status == 200 || r->status == 202)) << (r.ok() ? r->body : r.status().ToString());
  EXPECT_TRUE(WaitFor([&] { return Pod("gone").IsNull(); })) << am::ToJson(Pod("gone"));
  EXPECT_TRUE(WaitFor([&] { return sim_->stats().pods_deleted == 1 && sim_->stats().pods_running == 1; }));
  EXPECT_TRUE(Running("stays"));
  // A new pod under the same name is a new pod: it runs again (its IP may reuse the freed one).
  CreatePod("gone");
  Bind("gone", "sim-1");
  EXPECT_TRUE(WaitFor([&] { return Running("gone"); }));
  EXPECT_NE(At(Pod("gone"), {"status", "podIP"}), At(Pod("stays"), {"status", "podIP"}));
  (void)ip;
}

TEST_F(SimulatorTest, PodsOfOtherNodesAreLeftAlone) {
  StartSimulator(2);
  CreatePod("elsewhere", "real-node");
  CreatePod("mine", "sim-1");
  ASSERT_TRUE(WaitFor([&] { return Running("mine"); }));
  std::this_thread::sleep_for(200ms);
  rapidjson::Document pod = Pod("elsewhere");
  EXPECT_EQ(At(pod, {"status", "phase"}), "Pending");
  EXPECT_EQ(At(pod, {"status", "podIP"}), "");
  // Its deletion is that node's business too.
  auto r = client_->Do("DELETE", "/api/v1/namespaces/default/pods/elsewhere");
  ASSERT_TRUE(r.ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(Pod("elsewhere").IsNull());
  EXPECT_EQ(sim_->stats().pods_deleted, 0);
}

TEST_F(SimulatorTest, StopIsPromptAndIdempotent) {
  StartSimulator(2);
  auto t0 = std::chrono::steady_clock::now();
  sim_->Stop();
  sim_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 3s);
}

TEST(SimulatorOptionsTest, InvalidOptionsAreRefused) {
  SimulatorOptions o;
  o.nodes = 0;
  EXPECT_EQ(Simulator(nullptr, o).Start().code(), StatusCode::kInvalidArgument);
  o.nodes = 3;
  o.name_prefix = "Bad_";
  EXPECT_EQ(Simulator(nullptr, o).Start().code(), StatusCode::kInvalidArgument);
  o.name_prefix = "sim-";
  o.nodes = 70000;  // 70000 x /24 does not fit in 10.0.0.0/8
  EXPECT_EQ(Simulator(nullptr, o).Start().code(), StatusCode::kInvalidArgument);
}

TEST(SimulatorOptionsTest, ParsesResources) {
  auto r = ParseSimulatedResources("32", "256Gi", 110);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->cpu_millis, 32000);
  EXPECT_EQ(r->memory_bytes, int64_t{256} << 30);
  EXPECT_EQ(r->pods, 110);
  auto m = ParseSimulatedResources("500m", "1G", 10);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->cpu_millis, 500);
  EXPECT_EQ(m->memory_bytes, 1000000000);
  EXPECT_FALSE(ParseSimulatedResources("lots", "1Gi", 10).ok());
  EXPECT_FALSE(ParseSimulatedResources("1", "1Gi", 0).ok());
}

}  // namespace
}  // namespace rc::nodeagent
