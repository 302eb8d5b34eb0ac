// Filters, scores, selection and the FailedScheduling message on small JSON fixtures.
#include <chrono>
#include <cstdio>
#include <set>

#include "test_util.h"

namespace rc::scheduler {
namespace {

using namespace rc::scheduler::testing;

// A cluster of nodes with pods, as the scheduler's cache holds it.
struct Cluster {
  Cache cache;
  StaticLister lister;
  void AddNode(const std::string& name, const NodeOpts& o = {}) { cache.AddNode(Node(name, o)); }
  void AddPod(const std::string& json, const std::string& node) { cache.AddPod(BoundTo(Pod(json), node)); }
  std::vector<std::string> FilterOn(const PodInfo& pod, const std::string& node) {
    CycleState st = PreFilter(pod, cache.Nodes(), lister);
    EXPECT_EQ(st.prefilter_message, "");
    return Filter(st, *cache.Node(node));
  }
  ScheduleResult Schedule(const PodInfo& pod, AlgorithmOptions o = {.percentage_of_nodes_to_score = 100}) {
    Algorithm a(o);
    return a.Schedule(pod, cache.Nodes(), lister);
  }
};

// ---------------------------------------------------------------------------------------------
// Parsing

TEST(Parse, RequestsSumContainersAndTakeTheMaxOfInitContainers) {
  auto p = Pod(PodJson("p",
                       R"([{"name":"a","resources":{"requests":{"cpu":"100m","memory":"64Mi"}}},
                           {"name":"b","resources":{"requests":{"cpu":"200m"},"limits":{"memory":"128Mi"}}}])",
                       R"("initContainers":[{"name":"i","resources":{"requests":{"cpu":"1","memory":"10Mi"}}}])"));
  EXPECT_EQ(p->requests.milli_cpu, 1000);                 // max(300m, 1)
  EXPECT_EQ(p->requests.memory, (64 + 128) * 1024 * 1024);  // a limit stands in for the absent request
  EXPECT_EQ(p->nonzero_requests.milli_cpu, 1000);
}

TEST(Parse, SidecarInitContainersAddToTheContainers) {
  auto p = Pod(PodJson("p", R"([{"name":"a","resources":{"requests":{"cpu":"100m"}}}])",
                       R"("initContainers":[{"name":"s","restartPolicy":"Always","resources":{"requests":{"cpu":"50m"}}},
                                           {"name":"i","resources":{"requests":{"cpu":"120m"}}}])"));
  EXPECT_EQ(p->requests.milli_cpu, 170);  // max(100+50, 120+50)
}

TEST(Parse, NonZeroDefaultsOnlyForScoring) {
  auto p = Pod(PodJson("p", R"([{"name":"a"},{"name":"b"}])"));
  EXPECT_EQ(p->requests.milli_cpu, 0);
  EXPECT_EQ(p->requests.memory, 0);
  EXPECT_EQ(p->nonzero_requests.milli_cpu, 2 * kDefaultMilliCpuRequest);
  EXPECT_EQ(p->nonzero_requests.memory, 2 * kDefaultMemoryRequest);
}

TEST(Parse, PortsTolerationsClaimsOwnerAndSchedulerName) {
  auto p = Pod(PodJson("p", R"([{"name":"a","ports":[{"containerPort":80,"hostPort":8080},{"containerPort":53,"hostPort":53,"protocol":"UDP","hostIP":"10.0.0.1"},{"containerPort":9}]}])",
                       R"("schedulerName":"other","tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule"}],
                          "volumes":[{"name":"v","persistentVolumeClaim":{"claimName":"data"}},{"name":"e","emptyDir":{}}])",
                       R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"rs-1","controller":true}])"));
  ASSERT_EQ(p->host_ports.size(), 2u);
  EXPECT_EQ(p->host_ports[0].port, 8080);
  EXPECT_EQ(p->host_ports[0].protocol, "TCP");
  EXPECT_EQ(p->host_ports[1].ip, "10.0.0.1");
  EXPECT_EQ(p->scheduler_name, "other");
  ASSERT_EQ(p->tolerations.size(), 1u);
  EXPECT_TRUE(p->tolerations[0].exists);
  EXPECT_EQ(p->pvc_names, std::vector<std::string>{"data"});
  EXPECT_EQ(p->owner_uid, "rs-1");
}

TEST(Parse, NodeAllocatableFallsBackToCapacityAndReadiness) {
  auto n = ParseNodeJson(R"({"metadata":{"name":"n"},"status":{"capacity":{"cpu":"2","memory":"1Gi","pods":"10","nvidia.com/gpu":"1"},
                              "conditions":[{"type":"Ready","status":"Unknown"}]}})");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->allocatable.milli_cpu, 2000);
  EXPECT_EQ(n->allocatable.memory, 1024 * 1024 * 1024);
  EXPECT_EQ(n->allocatable.Scalar("nvidia.com/gpu"), 1);
  EXPECT_EQ(n->allowed_pods, 10);
  EXPECT_FALSE(n->ready);
}

// ---------------------------------------------------------------------------------------------
// Filters, one table: the pod, the node, the pods already on it, the reasons expected.

struct FilterCase {
  std::string name;
  std::string pod;
  NodeOpts node;
  std::vector<std::string> existing;
  std::vector<std::string> reasons;
};

class FilterTable : public ::testing::TestWithParam<FilterCase> {};

TEST_P(FilterTable, Reasons) {
  const FilterCase& c = GetParam();
  Cluster cl;
  cl.AddNode("n1", c.node);
  for (size_t i = 0; i < c.existing.size(); ++i) cl.AddPod(c.existing[i], "n1");
  EXPECT_EQ(cl.FilterOn(*Pod(c.pod), "n1"), c.reasons);
}

std::string Tolerations(const std::string& list) { return R"("tolerations":)" + list; }
std::string Affinity(const std::string& node_affinity) {
  return R"("affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":)" +
         node_affinity + "}}}";
}
std::string HostPortContainer(int port, const std::string& protocol = "TCP", const std::string& ip = "") {
  return R"([{"name":"c","ports":[{"containerPort":80,"hostPort":)" + std::to_string(port) + R"(,"protocol":")" +
         protocol + "\"" + (ip.empty() ? "" : R"(,"hostIP":")" + ip + "\"") + "}]}]";
}

INSTANTIATE_TEST_SUITE_P(
    Filters, FilterTable,
    ::testing::Values(
        // NodeResourcesFit
        FilterCase{"Fits", PodJson("p", Requests("1", "1Gi")), {}, {}, {}},
        FilterCase{"InsufficientCpu", PodJson("p", Requests("3", "")), {.cpu = "4"},
                   {PodJson("e", Requests("2", ""))}, {"Insufficient cpu"}},
        FilterCase{"InsufficientMemory", PodJson("p", Requests("", "5Gi")), {.memory = "8Gi"},
                   {PodJson("e", Requests("", "4Gi"))}, {"Insufficient memory"}},
        FilterCase{"InsufficientCpuAndMemory", PodJson("p", Requests("5", "9Gi")), {}, {},
                   {"Insufficient cpu", "Insufficient memory"}},
        FilterCase{"ExactlyFull", PodJson("p", Requests("2", "")), {.cpu = "4"}, {PodJson("e", Requests("2", ""))}, {}},
        FilterCase{"TooManyPods", PodJson("p"), {.pods = "2"}, {PodJson("e1"), PodJson("e2")}, {"Too many pods"}},
        FilterCase{"ZeroRequestsIgnoreCpu", PodJson("p"), {.cpu = "0"}, {}, {}},
        FilterCase{"ExtendedResource", PodJson("p", R"([{"name":"c","resources":{"limits":{"nvidia.com/gpu":"1"}}}])"), {},
                   {}, {"Insufficient nvidia.com/gpu"}},
        // NodeName
        FilterCase{"NodeNameOther", PodJson("p", R"([{"name":"c"}])", R"("nodeName":"n2")"), {}, {},
                   {"node(s) didn't match the requested node name"}},
        FilterCase{"NodeNameSame", PodJson("p", R"([{"name":"c"}])", R"("nodeName":"n1")"), {}, {}, {}},
        // NodeSelector / required node affinity
        FilterCase{"NodeSelectorMatch", PodJson("p", R"([{"name":"c"}])", R"("nodeSelector":{"disk":"ssd"})"),
                   {.labels = R"("disk":"ssd")"}, {}, {}},
        FilterCase{"NodeSelectorMismatch", PodJson("p", R"([{"name":"c"}])", R"("nodeSelector":{"disk":"ssd"})"),
                   {.labels = R"("disk":"hdd")"}, {}, {"node(s) didn't match Pod's node affinity/selector"}},
        FilterCase{"NodeSelectorMissingLabel", PodJson("p", R"([{"name":"c"}])", R"("nodeSelector":{"disk":"ssd"})"), {}, {},
                   {"node(s) didn't match Pod's node affinity/selector"}},
        FilterCase{"AffinityIn", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}])")),
                   {.labels = R"("zone":"b")"}, {}, {}},
        FilterCase{"AffinityInMismatch", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]}])")),
                   {.labels = R"("zone":"b")"}, {}, {"node(s) didn't match Pod's node affinity/selector"}},
        FilterCase{"AffinityTermsOred", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchExpressions":[{"key":"zone","operator":"In","values":["a"]}]},{"matchExpressions":[{"key":"zone","operator":"Exists"}]}])")),
                   {.labels = R"("zone":"b")"}, {}, {}},
        FilterCase{"AffinityNotIn", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchExpressions":[{"key":"zone","operator":"NotIn","values":["b"]}]}])")),
                   {.labels = R"("zone":"b")"}, {}, {"node(s) didn't match Pod's node affinity/selector"}},
        FilterCase{"AffinityDoesNotExist", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchExpressions":[{"key":"gpu","operator":"DoesNotExist"}]}])")),
                   {}, {}, {}},
        FilterCase{"AffinityGt", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchExpressions":[{"key":"cores","operator":"Gt","values":["8"]}]}])")),
                   {.labels = R"("cores":"4")"}, {}, {"node(s) didn't match Pod's node affinity/selector"}},
        FilterCase{"AffinityMatchFieldsName", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{"matchFields":[{"key":"metadata.name","operator":"In","values":["n1"]}]}])")),
                   {}, {}, {}},
        FilterCase{"AffinityEmptyTermMatchesNothing", PodJson("p", R"([{"name":"c"}])", Affinity(R"([{}])")), {}, {},
                   {"node(s) didn't match Pod's node affinity/selector"}},
        // NodePorts
        FilterCase{"HostPortFree", PodJson("p", HostPortContainer(8080)), {}, {PodJson("e", HostPortContainer(8081))}, {}},
        FilterCase{"HostPortTaken", PodJson("p", HostPortContainer(8080)), {}, {PodJson("e", HostPortContainer(8080))},
                   {"node(s) didn't have free ports for the requested pod ports"}},
        FilterCase{"HostPortOtherProtocol", PodJson("p", HostPortContainer(53, "UDP")), {}, {PodJson("e", HostPortContainer(53))}, {}},
        FilterCase{"HostPortOtherIp", PodJson("p", HostPortContainer(80, "TCP", "10.0.0.1")), {},
                   {PodJson("e", HostPortContainer(80, "TCP", "10.0.0.2"))}, {}},
        FilterCase{"HostPortWildcardIp", PodJson("p", HostPortContainer(80, "TCP", "10.0.0.1")), {},
                   {PodJson("e", HostPortContainer(80))}, {"node(s) didn't have free ports for the requested pod ports"}},
        // TaintToleration
        FilterCase{"TaintUntolerated", PodJson("p"), {.spec = R"("taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}])"}, {},
                   {"node(s) had untolerated taint {dedicated: gpu}"}},
        FilterCase{"TaintNoExecute", PodJson("p"), {.spec = R"("taints":[{"key":"k","effect":"NoExecute"}])"}, {},
                   {"node(s) had untolerated taint {k: }"}},
        FilterCase{"TaintPreferNoScheduleIgnored", PodJson("p"), {.spec = R"("taints":[{"key":"k","effect":"PreferNoSchedule"}])"}, {}, {}},
        FilterCase{"TaintToleratedEqual", PodJson("p", R"([{"name":"c"}])", Tolerations(R"([{"key":"dedicated","operator":"Equal","value":"gpu","effect":"NoSchedule"}])")),
                   {.spec = R"("taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}])"}, {}, {}},
        FilterCase{"TaintWrongValue", PodJson("p", R"([{"name":"c"}])", Tolerations(R"([{"key":"dedicated","value":"cpu"}])")),
                   {.spec = R"("taints":[{"key":"dedicated","value":"gpu","effect":"NoSchedule"}])"}, {},
                   {"node(s) had untolerated taint {dedicated: gpu}"}},
        FilterCase{"TaintToleratedExistsAllKeys", PodJson("p", R"([{"name":"c"}])", Tolerations(R"([{"operator":"Exists"}])")),
                   {.spec = R"("taints":[{"key":"a","effect":"NoSchedule"},{"key":"b","value":"x","effect":"NoExecute"}])"}, {}, {}},
        FilterCase{"TaintWrongEffect", PodJson("p", R"([{"name":"c"}])", Tolerations(R"([{"key":"k","operator":"Exists","effect":"NoExecute"}])")),
                   {.spec = R"("taints":[{"key":"k","effect":"NoSchedule"}])"}, {}, {"node(s) had untolerated taint {k: }"}},
        // NodeUnschedulable
        FilterCase{"Unschedulable", PodJson("p"), {.spec = R"("unschedulable":true)"}, {}, {"node(s) were unschedulable"}},
        FilterCase{"UnschedulableTolerated", PodJson("p", R"([{"name":"c"}])", Tolerations(R"([{"key":"node.kubernetes.io/unschedulable","operator":"Exists","effect":"NoSchedule"}])")),
                   {.spec = R"("unschedulable":true)"}, {}, {}},
        // Not ready
        FilterCase{"NotReady", PodJson("p"), {.ready = false}, {}, {"node(s) were not ready"}},
        FilterCase{"NotReadyTolerated", PodJson("p", R"([{"name":"c"}])", Tolerations(R"([{"key":"node.kubernetes.io/not-ready","operator":"Exists"}])")),
                   {.ready = false}, {}, {}},
        // The first failing plugin decides (kube-scheduler's order).
        FilterCase{"UnschedulableBeforeResources", PodJson("p", Requests("100", "")), {.spec = R"("unschedulable":true)"}, {},
                   {"node(s) were unschedulable"}}),
    [](const ::testing::TestParamInfo<FilterCase>& info) { return info.param.name; });

// ---------------------------------------------------------------------------------------------
// Inter-pod affinity (needs topology across nodes)

std::string PodAffinity(const std::string& kind, const std::string& selector, const std::string& topology) {
  return R"("affinity":{")" + kind + R"(":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":)" +
         selector + R"(},"topologyKey":")" + topology + R"("}]}})";
}

class InterPodAffinity : public ::testing::Test {
 protected:
  void SetUp() override {
    cl.AddNode("a1", {.labels = R"("zone":"a")"});
    cl.AddNode("a2", {.labels = R"("zone":"a")"});
    cl.AddNode("b1", {.labels = R"("zone":"b")"});
    cl.AddPod(PodJson("db", R"([{"name":"c"}])", "", R"("labels":{"app":"db"})"), "a1");
  }
  Cluster cl;
};

TEST_F(InterPodAffinity, AffinityByZone) {
  auto p = Pod(PodJson("web", R"([{"name":"c"}])", PodAffinity("podAffinity", R"({"app":"db"})", "zone")));
  EXPECT_EQ(cl.FilterOn(*p, "a1"), std::vector<std::string>{});
  EXPECT_EQ(cl.FilterOn(*p, "a2"), std::vector<std::string>{});
  EXPECT_EQ(cl.FilterOn(*p, "b1"), std::vector<std::string>{kReasonPodAffinity});
}

TEST_F(InterPodAffinity, AffinityByHostname) {
  auto p = Pod(PodJson("web", R"([{"name":"c"}])", PodAffinity("podAffinity", R"({"app":"db"})", "kubernetes.io/hostname")));
  auto r = cl.Schedule(*p);
  EXPECT_EQ(r.node, "a1");
  EXPECT_EQ(r.Message(), "0/3 nodes are available: 2 node(s) didn't match pod affinity rules.");
}

TEST_F(InterPodAffinity, AffinityNodeWithoutTopologyLabelFails) {
  cl.AddNode("x");
  auto p = Pod(PodJson("web", R"([{"name":"c"}])", PodAffinity("podAffinity", R"({"app":"db"})", "zone")));
  EXPECT_EQ(cl.FilterOn(*p, "x"), std::vector<std::string>{kReasonPodAffinity});
}

TEST_F(InterPodAffinity, FirstPodOfASelfSelectingGroupGoesAnywhere) {
  auto p = Pod(PodJson("cache", R"([{"name":"c"}])", PodAffinity("podAffinity", R"({"app":"cache"})", "zone"),
                       R"("labels":{"app":"cache"})"));
  EXPECT_EQ(cl.FilterOn(*p, "b1"), std::vector<std::string>{});
  auto q = Pod(PodJson("other", R"([{"name":"c"}])", PodAffinity("podAffinity", R"({"app":"cache"})", "zone")));
  EXPECT_EQ(cl.FilterOn(*q, "b1"), std::vector<std::string>{kReasonPodAffinity});  // does not select itself
}

TEST_F(InterPodAffinity, AntiAffinityByZone) {
  auto p = Pod(PodJson("db2", R"([{"name":"c"}])", PodAffinity("podAntiAffinity", R"({"app":"db"})", "zone")));
  EXPECT_EQ(cl.FilterOn(*p, "a2"), std::vector<std::string>{kReasonPodAntiAffinity});
  EXPECT_EQ(cl.FilterOn(*p, "b1"), std::vector<std::string>{});
}

TEST_F(InterPodAffinity, ExistingPodsAntiAffinity) {
  cl.AddPod(PodJson("loner", R"([{"name":"c"}])", PodAffinity("podAntiAffinity", R"({"app":"web"})", "kubernetes.io/hostname")), "b1");
  auto p = Pod(PodJson("web", R"([{"name":"c"}])", "", R"("labels":{"app":"web"})"));
  EXPECT_EQ(cl.FilterOn(*p, "b1"), std::vector<std::string>{kReasonExistingAntiAffinity});
  EXPECT_EQ(cl.FilterOn(*p, "a1"), std::vector<std::string>{});
}

TEST_F(InterPodAffinity, OtherNamespacesDoNotMatchUnlessNamed) {
  auto p = Pod(R"({"metadata":{"name":"web","namespace":"other"},"spec":{"containers":[{"name":"c"}],)" +
               PodAffinity("podAffinity", R"({"app":"db"})", "zone") + "}}");
  EXPECT_EQ(cl.FilterOn(*p, "a1"), std::vector<std::string>{kReasonPodAffinity});
  auto q = Pod(R"({"metadata":{"name":"web","namespace":"other"},"spec":{"containers":[{"name":"c"}],
      "affinity":{"podAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchLabels":{"app":"db"}},
      "namespaces":["default"],"topologyKey":"zone"}]}}}})");
  EXPECT_EQ(cl.FilterOn(*q, "a1"), std::vector<std::string>{});
  auto all = Pod(R"({"metadata":{"name":"web","namespace":"other"},"spec":{"containers":[{"name":"c"}],
      "affinity":{"podAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":[{"labelSelector":{"matchExpressions":[{"key":"app","operator":"In","values":["db"]}]},
      "namespaceSelector":{},"topologyKey":"zone"}]}}}})");
  EXPECT_EQ(cl.FilterOn(*all, "a2"), std::vector<std::string>{});
}

// ---------------------------------------------------------------------------------------------
// Volumes

class Volumes : public ::testing::Test {
 protected:
  void SetUp() override {
    cl.AddNode("n1", {.labels = R"("zone":"a")"});
    cl.AddNode("n2", {.labels = R"("zone":"b")"});
  }
  void AddClaim(const std::string& name, const std::string& phase, const std::string& volume, const std::string& mode) {
    auto c = ParseClaimJson(R"({"metadata":{"name":")" + name + R"(","namespace":"default"},"spec":{"volumeName":")" + volume +
                            R"(","accessModes":[")" + mode + R"("]},"status":{"phase":")" + phase + R"("}})");
    ASSERT_TRUE(c.ok());
    cl.lister.claims["default/" + name] = *c;
  }
  static std::string WithClaim(const std::string& name, const std::string& claim) {
    return PodJson(name, R"([{"name":"c"}])", R"("volumes":[{"name":"v","persistentVolumeClaim":{"claimName":")" + claim + R"("}}])");
  }
  Cluster cl;
};

TEST_F(Volumes, MissingClaim) {
  auto r = cl.Schedule(*Pod(WithClaim("p", "nope")));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Message(), "0/2 nodes are available: persistentvolumeclaim \"nope\" not found.");
}

TEST_F(Volumes, UnboundClaim) {
  AddClaim("data", "Pending", "", "ReadWriteOnce");
  auto r = cl.Schedule(*Pod(WithClaim("p", "data")));
  EXPECT_EQ(r.Message(), "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.");
}

TEST_F(Volumes, BoundClaimSchedules) {
  AddClaim("data", "Bound", "pv1", "ReadWriteMany");
  cl.AddPod(WithClaim("user", "data"), "n1");
  auto r = cl.Schedule(*Pod(WithClaim("p", "data")));
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.feasible_nodes, 2);
}

TEST_F(Volumes, ReadWriteOnceInUseOnAnotherNode) {
  AddClaim("data", "Bound", "pv1", "ReadWriteOnce");
  cl.AddPod(WithClaim("user", "data"), "n1");
  auto r = cl.Schedule(*Pod(WithClaim("p", "data")));
  EXPECT_EQ(r.node, "n1");
  EXPECT_EQ(cl.FilterOn(*Pod(WithClaim("p", "data")), "n2"), std::vector<std::string>{kReasonDiskConflict});
}

TEST_F(Volumes, ReadWriteOncePodInUse) {
  AddClaim("data", "Bound", "pv1", "ReadWriteOncePod");
  cl.AddPod(WithClaim("user", "data"), "n1");
  auto r = cl.Schedule(*Pod(WithClaim("p", "data")));
  EXPECT_EQ(r.Message(), std::string("0/2 nodes are available: 2 ") + kReasonReadWriteOncePod + ".");
}

TEST_F(Volumes, VolumeNodeAffinity) {
  AddClaim("data", "Bound", "pv1", "ReadWriteOnce");
  auto v = ParseVolumeJson(R"({"metadata":{"name":"pv1"},"spec":{"accessModes":["ReadWriteOnce"],"nodeAffinity":{"required":
      {"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["b"]}]}]}}}})");
  ASSERT_TRUE(v.ok());
  cl.lister.volumes["pv1"] = *v;
  auto r = cl.Schedule(*Pod(WithClaim("p", "data")));
  EXPECT_EQ(r.node, "n2");
  EXPECT_EQ(cl.FilterOn(*Pod(WithClaim("p", "data")), "n1"), std::vector<std::string>{kReasonVolumeNodeAffinity});
}

// ---------------------------------------------------------------------------------------------
// Scores

std::vector<NodeScore> ScoreAll(Cluster& cl, const PodInfo& pod) {
  return Score(pod, cl.cache.Nodes(), cl.cache.Nodes(), ScoreWeights{});
}
const NodeScore& Of(const std::vector<NodeScore>& s, const std::string& node) {
  for (auto& x : s) {
    if (x.node->node->name == node) return x;
  }
  static NodeScore none;
  ADD_FAILURE() << "no score for " << node;
  return none;
}

TEST(Scores, LeastAllocatedPrefersTheEmptierNode) {
  Cluster cl;
  cl.AddNode("busy");
  cl.AddNode("idle");
  cl.AddPod(PodJson("e", Requests("2", "4Gi")), "busy");
  auto p = Pod(PodJson("p", Requests("1", "1Gi")));
  auto s = ScoreAll(cl, *p);
  EXPECT_EQ(Of(s, "idle").least_allocated, (75 + 87) / 2);  // cpu 3/4 free, memory 7/8 free
  EXPECT_EQ(Of(s, "busy").least_allocated, (25 + 37) / 2);
  EXPECT_EQ(cl.Schedule(*p).node, "idle");
}

TEST(Scores, LeastAllocatedCountsDefaultRequestsOfEmptyPods) {
  Cluster cl;
  cl.AddNode("n", {.cpu = "1", .memory = "1000Mi"});
  auto s = ScoreAll(cl, *Pod(PodJson("p")));
  EXPECT_EQ(Of(s, "n").least_allocated, (90 + 80) / 2);  // 100m of 1, 200Mi of 1000Mi
}

TEST(Scores, BalancedAllocationPrefersEvenUse) {
  Cluster cl;
  cl.AddNode("cpu-heavy");
  cl.AddNode("even");
  cl.AddPod(PodJson("e1", Requests("2", "1Gi")), "cpu-heavy");
  cl.AddPod(PodJson("e2", Requests("1", "2Gi")), "even");
  auto p = Pod(PodJson("p", Requests("1", "2Gi")));
  auto s = ScoreAll(cl, *p);
  // cpu-heavy: cpu 3/4, memory 3/8 -> std 0.1875; even: cpu 2/4, memory 4/8 -> 0.
  EXPECT_EQ(Of(s, "even").balanced_allocation, 100);
  EXPECT_EQ(Of(s, "cpu-heavy").balanced_allocation, 81);
  EXPECT_EQ(cl.Schedule(*p).node, "even");
}

TEST(Scores, SpreadsPodsOfOneOwner) {
  Cluster cl;
  cl.AddNode("n1");
  cl.AddNode("n2");
  cl.AddNode("n3");
  std::string owner = R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"rs-1","controller":true}])";
  cl.AddPod(PodJson("r1", R"([{"name":"c"}])", "", owner), "n1");
  cl.AddPod(PodJson("r2", R"([{"name":"c"}])", "", owner), "n1");
  cl.AddPod(PodJson("r3", R"([{"name":"c"}])", "", owner), "n2");
  auto p = Pod(PodJson("r4", R"([{"name":"c"}])", "", owner));
  auto s = ScoreAll(cl, *p);
  EXPECT_EQ(Of(s, "n1").spread, 0);
  EXPECT_EQ(Of(s, "n2").spread, 50);
  EXPECT_EQ(Of(s, "n3").spread, 100);
  EXPECT_EQ(cl.Schedule(*p).node, "n3");
  // A pod without an owner is not spread (neutral).
  EXPECT_EQ(Of(ScoreAll(cl, *Pod(PodJson("x"))), "n1").spread, 0);
}

TEST(Scores, SpreadWeighsZones) {
  Cluster cl;
  cl.AddNode("a1", {.labels = R"("topology.kubernetes.io/zone":"a")"});
  cl.AddNode("a2", {.labels = R"("topology.kubernetes.io/zone":"a")"});
  cl.AddNode("b1", {.labels = R"("topology.kubernetes.io/zone":"b")"});
  std::string owner = R"("ownerReferences":[{"uid":"rs-1","controller":true,"kind":"ReplicaSet","name":"rs","apiVersion":"apps/v1"}])";
  cl.AddPod(PodJson("r1", R"([{"name":"c"}])", "", owner), "a1");
  auto s = ScoreAll(cl, *Pod(PodJson("r2", R"([{"name":"c"}])", "", owner)));
  // a2 is empty but in the used zone: 100/3 + 0; b1: 100.
  EXPECT_EQ(Of(s, "a1").spread, 0);
  EXPECT_EQ(Of(s, "a2").spread, 33);
  EXPECT_EQ(Of(s, "b1").spread, 100);
}

TEST(Scores, PreferredNodeAffinity) {
  Cluster cl;
  cl.AddNode("ssd", {.labels = R"("disk":"ssd")"});
  cl.AddNode("hdd", {.labels = R"("disk":"hdd")"});
  cl.AddNode("both", {.labels = R"("disk":"ssd","fast":"yes")"});
  auto p = Pod(PodJson("p", R"([{"name":"c"}])",
                       R"("affinity":{"nodeAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
                           {"weight":30,"preference":{"matchExpressions":[{"key":"disk","operator":"In","values":["ssd"]}]}},
                           {"weight":10,"preference":{"matchExpressions":[{"key":"fast","operator":"Exists"}]}}]}})"));
  auto s = ScoreAll(cl, *p);
  EXPECT_EQ(Of(s, "both").node_affinity, 100);
  EXPECT_EQ(Of(s, "ssd").node_affinity, 75);
  EXPECT_EQ(Of(s, "hdd").node_affinity, 0);
  EXPECT_EQ(cl.Schedule(*p).node, "both");
}

TEST(Scores, PreferredPodAffinityAndAntiAffinity) {
  Cluster cl;
  cl.AddNode("a1", {.labels = R"("zone":"a")"});
  cl.AddNode("b1", {.labels = R"("zone":"b")"});
  cl.AddNode("c1", {.labels = R"("zone":"c")"});
  cl.AddPod(PodJson("db", R"([{"name":"c"}])", "", R"("labels":{"app":"db"})"), "a1");
  cl.AddPod(PodJson("web", R"([{"name":"c"}])", "", R"("labels":{"app":"web"})"), "b1");
  auto p = Pod(PodJson("p", R"([{"name":"c"}])",
                       R"("affinity":{"podAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
                           {"weight":50,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"db"}},"topologyKey":"zone"}}]},
                         "podAntiAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
                           {"weight":50,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"web"}},"topologyKey":"zone"}}]}})"));
  auto s = ScoreAll(cl, *p);
  EXPECT_EQ(Of(s, "a1").inter_pod_affinity, 100);
  EXPECT_EQ(Of(s, "c1").inter_pod_affinity, 50);
  EXPECT_EQ(Of(s, "b1").inter_pod_affinity, 0);
  EXPECT_EQ(cl.Schedule(*p).node, "a1");
}

TEST(Scores, ExistingPodsPreferredAffinityAttracts) {
  Cluster cl;
  cl.AddNode("a1", {.labels = R"("zone":"a")"});
  cl.AddNode("b1", {.labels = R"("zone":"b")"});
  cl.AddPod(PodJson("fan", R"([{"name":"c"}])",
                    R"("affinity":{"podAffinity":{"preferredDuringSchedulingIgnoredDuringExecution":[
                        {"weight":10,"podAffinityTerm":{"labelSelector":{"matchLabels":{"app":"star"}},"topologyKey":"zone"}}]}})"),
            "b1");
  auto s = ScoreAll(cl, *Pod(PodJson("star", R"([{"name":"c"}])", "", R"("labels":{"app":"star"})")));
  EXPECT_EQ(Of(s, "b1").inter_pod_affinity, 100);
  EXPECT_EQ(Of(s, "a1").inter_pod_affinity, 0);
}

TEST(Scores, PreferNoScheduleTaints) {
  Cluster cl;
  cl.AddNode("tainted", {.spec = R"("taints":[{"key":"k","effect":"PreferNoSchedule"}])"});
  cl.AddNode("clean");
  auto s = ScoreAll(cl, *Pod(PodJson("p")));
  EXPECT_EQ(Of(s, "tainted").taint_toleration, 0);
  EXPECT_EQ(Of(s, "clean").taint_toleration, 100);
  auto tolerant = Pod(PodJson("p", R"([{"name":"c"}])", R"("tolerations":[{"key":"k","operator":"Exists","effect":"PreferNoSchedule"}])"));
  EXPECT_EQ(Of(ScoreAll(cl, *tolerant), "tainted").taint_toleration, 100);
}

TEST(Scores, WeightedTotal) {
  Cluster cl;
  cl.AddNode("n");
  auto s = ScoreAll(cl, *Pod(PodJson("p", Requests("1", "2Gi"))));
  const NodeScore& n = Of(s, "n");
  EXPECT_EQ(n.total, n.least_allocated + n.balanced_allocation + 2 * n.spread + 2 * n.node_affinity +
                         2 * n.inter_pod_affinity + 3 * n.taint_toleration);
}

// ---------------------------------------------------------------------------------------------
// Selection, sampling, message

TEST(Select, TiesBrokenRoundRobin) {
  Cluster cl;
  for (auto n : {"n1", "n2", "n3"}) cl.AddNode(n);
  Algorithm a({.percentage_of_nodes_to_score = 100});
  std::set<std::string> picked;
  std::vector<std::string> order;
  for (int i = 0; i < 6; ++i) {
    auto r = a.Schedule(*Pod(PodJson("p" + std::to_string(i))), cl.cache.Nodes(), cl.lister);
    ASSERT_TRUE(r.ok());
    order.push_back(r.node);
    picked.insert(r.node);
  }
  EXPECT_EQ(picked.size(), 3u);  // identical nodes and no state change: every node in turn
  EXPECT_EQ(order[0], order[3]);
  EXPECT_EQ(order[1], order[4]);
  EXPECT_NE(order[0], order[1]);
}

TEST(Select, NumFeasibleNodesToFind) {
  EXPECT_EQ(NumFeasibleNodesToFind(50, 0), 50);
  EXPECT_EQ(NumFeasibleNodesToFind(100, 0), 100);
  EXPECT_EQ(NumFeasibleNodesToFind(200, 0), 100);   // 48% = 96 -> at least 100
  EXPECT_EQ(NumFeasibleNodesToFind(1000, 0), 420);  // 50 - 8 = 42%
  EXPECT_EQ(NumFeasibleNodesToFind(5000, 0), 500);  // 10%
  EXPECT_EQ(NumFeasibleNodesToFind(10000, 0), 500); // 5% floor
  EXPECT_EQ(NumFeasibleNodesToFind(1000, 30), 300);
  EXPECT_EQ(NumFeasibleNodesToFind(1000, 100), 1000);
}

TEST(Select, SamplingStopsEarlyAndRotatesTheStart) {
  Cluster cl;
  for (int i = 0; i < 1000; ++i) cl.AddNode("n" + std::to_string(i));
  Algorithm a;
  auto r1 = a.Schedule(*Pod(PodJson("p1")), cl.cache.Nodes(), cl.lister);
  EXPECT_EQ(r1.evaluated_nodes, 420);
  EXPECT_EQ(r1.feasible_nodes, 420);
  auto r2 = a.Schedule(*Pod(PodJson("p2")), cl.cache.Nodes(), cl.lister);
  EXPECT_EQ(r2.evaluated_nodes, 420);
  // Every node evaluated when few fit (the diagnosis then covers them all).
  auto big = Pod(PodJson("big", Requests("3", "")));
  for (int i = 0; i < 999; ++i) cl.AddPod(PodJson("e" + std::to_string(i), Requests("2", "")), "n" + std::to_string(i));
  auto r3 = a.Schedule(*big, cl.cache.Nodes(), cl.lister);
  EXPECT_EQ(r3.evaluated_nodes, 1000);
  EXPECT_EQ(r3.node, "n999");
}

TEST(Message, CountsAndSortsReasons) {
  Cluster cl;
  cl.AddNode("other1", {.cpu = "8"});
  cl.AddNode("other2", {.cpu = "8"});
  auto p = Pod(PodJson("p", Requests("2", ""), R"("nodeSelector":{"disk":"ssd"})"));
  cl.cache.AddNode(Node("small", {.cpu = "1", .labels = R"("disk":"ssd")"}));
  auto r = cl.Schedule(*p);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Message(), "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.");
}

TEST(Message, SortedAsStringsLikeKubeScheduler) {
  Diagnosis d;
  d.num_nodes = 12;
  d.reasons = {{"node(s) were unschedulable", 1}, {"Insufficient memory", 10}, {"Insufficient cpu", 10},
               {"node(s) had untolerated taint {a: b}", 2}};
  EXPECT_EQ(FailedSchedulingMessage(d),
            "0/12 nodes are available: 1 node(s) were unschedulable, 10 Insufficient cpu, 10 Insufficient memory, "
            "2 node(s) had untolerated taint {a: b}.");
}

TEST(Message, NoNodes) {
  Cluster cl;
  auto r = cl.Schedule(*Pod(PodJson("p")));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Message(), "no nodes available to schedule pods");
}

// ---------------------------------------------------------------------------------------------
// Decision cost at 5000 nodes (the benchmark's shape: a ReplicaSet's pods with requests, spread).

TEST(Perf, DecisionCostAt5000Nodes) {
  Cluster cl;
  for (int i = 0; i < 5000; ++i) {
    cl.AddNode("node-" + std::to_string(i), {.cpu = "8", .memory = "32Gi", .labels = "\"topology.kubernetes.io/zone\":\"z" + std::to_string(i % 3) + "\""});
  }
  std::string owner = R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"rs-1","controller":true}])";
  Algorithm a;
  const int kPods = 3000;
  std::vector<PodInfoPtr> pods;
  for (int i = 0; i < kPods; ++i) pods.push_back(Pod(PodJson("p" + std::to_string(i), Requests("100m", "128Mi"), "", owner)));
  auto t0 = std::chrono::steady_clock::now();
  for (auto& p : pods) {
    auto r = a.Schedule(*p, cl.cache.Nodes(), cl.lister);
    ASSERT_TRUE(r.ok());
    cl.cache.AssumePod(p, r.node);
  }
  double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / kPods;
  RecordProperty("decision_us", std::to_string(us));
  std::printf("decision cost at 5000 nodes: %.1f us/pod (%.0f pods/s on one core)\n", us, 1e6 / us);
  EXPECT_LT(us, 3700.0);  // 270 pods/s
}

}  // namespace
}  // namespace rc::scheduler
