// The scheduler cache: aggregates per node, assumed pods, confirmations, removals.
#include <set>

#include "test_util.h"

namespace rc::scheduler {
namespace {

using namespace rc::scheduler::testing;

std::string HostPort8080() { return R"([{"name":"c","ports":[{"containerPort":80,"hostPort":8080}],"resources":{"requests":{"cpu":"500m","memory":"1Gi"}}}])"; }
std::string Owner() { return R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"rs","uid":"rs-1","controller":true}])"; }

TEST(Cache, AggregatesBoundPods) {
  Cache c;
  c.AddNode(Node("n1"));
  c.AddPod(BoundTo(Pod(PodJson("a", HostPort8080(), "", Owner())), "n1"));
  c.AddPod(BoundTo(Pod(PodJson("b", Requests("1", ""))), "n1"));
  const NodeInfo* n = c.Node("n1");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->pod_count, 2);
  EXPECT_EQ(n->requested.milli_cpu, 1500);
  EXPECT_EQ(n->requested.memory, 1024 * 1024 * 1024);
  EXPECT_EQ(n->nonzero_requested.memory, 1024 * 1024 * 1024 + kDefaultMemoryRequest);
  EXPECT_TRUE(n->PortInUse(HostPort{"", "TCP", 8080}));
  EXPECT_EQ(n->OwnerCount("rs-1"), 1);
  c.RemovePod("default/a");
  EXPECT_EQ(n->pod_count, 1);
  EXPECT_EQ(n->requested.milli_cpu, 1000);
  EXPECT_FALSE(n->PortInUse(HostPort{"", "TCP", 8080}));
  EXPECT_EQ(n->OwnerCount("rs-1"), 0);
}

TEST(Cache, AssumedPodsCountUntilForgotten) {
  Cache c;
  c.AddNode(Node("n1"));
  auto p = Pod(PodJson("a", Requests("1", "")));
  c.AssumePod(p, "n1");
  EXPECT_TRUE(c.IsAssumed("default/a"));
  EXPECT_EQ(c.Node("n1")->requested.milli_cpu, 1000);
  EXPECT_EQ(c.assumed_count(), 1u);
  c.ForgetPod("default/a");
  EXPECT_FALSE(c.IsAssumed("default/a"));
  EXPECT_EQ(c.Node("n1")->requested.milli_cpu, 0);
  EXPECT_EQ(c.Node("n1")->pod_count, 0);
}

TEST(Cache, WatchConfirmsAnAssumption) {
  Cache c;
  c.AddNode(Node("n1"));
  auto p = Pod(PodJson("a", Requests("1", "")));
  c.AssumePod(p, "n1");
  c.AddPod(BoundTo(p, "n1"));  // the watch shows it bound
  EXPECT_FALSE(c.IsAssumed("default/a"));
  EXPECT_EQ(c.Node("n1")->pod_count, 1);
  EXPECT_EQ(c.Node("n1")->requested.milli_cpu, 1000);
  c.ForgetPod("default/a");  // a late bind error must not drop a confirmed pod
  EXPECT_EQ(c.Node("n1")->pod_count, 1);
}

TEST(Cache, ConfirmationOnAnotherNodeMovesThePod) {
  Cache c;
  c.AddNode(Node("n1"));
  c.AddNode(Node("n2"));
  auto p = Pod(PodJson("a", Requests("1", "")));
  c.AssumePod(p, "n1");
  c.AddPod(BoundTo(p, "n2"));  // someone else bound it first
  EXPECT_EQ(c.Node("n1")->pod_count, 0);
  EXPECT_EQ(c.Node("n2")->pod_count, 1);
}

TEST(Cache, ConsecutiveDecisionsSeeAssumedPods) {
  Cache c;
  StaticLister lister;
  c.AddNode(Node("n1", {.cpu = "2"}));
  c.AddNode(Node("n2", {.cpu = "2"}));
  Algorithm a;
  std::set<std::string> used;
  for (int i = 0; i < 2; ++i) {
    auto p = Pod(PodJson("p" + std::to_string(i), Requests("2", "")));
    auto r = a.Schedule(*p, c.Nodes(), lister);
    ASSERT_TRUE(r.ok());
    c.AssumePod(p, r.node);
    used.insert(r.node);
  }
  EXPECT_EQ(used.size(), 2u);
  auto r = a.Schedule(*Pod(PodJson("p3", Requests("1", ""))), c.Nodes(), lister);
  EXPECT_EQ(r.Message(), "0/2 nodes are available: 2 Insufficient cpu.");
}

TEST(Cache, UpdateReplacesThePodsContribution) {
  Cache c;
  c.AddNode(Node("n1"));
  c.AddPod(BoundTo(Pod(PodJson("a", Requests("1", ""))), "n1"));
  c.AddPod(BoundTo(Pod(PodJson("a", Requests("2", ""))), "n1"));
  EXPECT_EQ(c.Node("n1")->pod_count, 1);
  EXPECT_EQ(c.Node("n1")->requested.milli_cpu, 2000);
}

TEST(Cache, TerminalPodsUseNothing) {
  Cache c;
  c.AddNode(Node("n1"));
  c.AddPod(BoundTo(Pod(PodJson("a", Requests("1", ""))), "n1"));
  auto done = Pod(R"({"metadata":{"name":"a","namespace":"default"},"spec":{"nodeName":"n1","containers":[{"name":"c","resources":{"requests":{"cpu":"1"}}}]},"status":{"phase":"Succeeded"}})");
  c.AddPod(done);
  EXPECT_EQ(c.Node("n1")->pod_count, 0);
  EXPECT_EQ(c.pod_count(), 0u);
}

TEST(Cache, NodesKeepAStableOrderAndPodsOutliveTheirNode) {
  Cache c;
  c.AddNode(Node("n1"));
  c.AddNode(Node("n2"));
  c.AddNode(Node("n3"));
  c.AddPod(BoundTo(Pod(PodJson("a")), "n1"));
  c.AddNode(Node("n1", {.cpu = "8"}));  // an update keeps the place
  ASSERT_EQ(c.Nodes().size(), 3u);
  EXPECT_EQ(c.Nodes()[0]->node->name, "n1");
  EXPECT_EQ(c.Nodes()[0]->node->allocatable.milli_cpu, 8000);
  c.RemoveNode("n1");
  ASSERT_EQ(c.Nodes().size(), 2u);
  EXPECT_EQ(c.Nodes()[0]->node->name, "n3");
  // The pod still counts if the node comes back.
  c.AddNode(Node("n1"));
  EXPECT_EQ(c.Node("n1")->pod_count, 1);
  // A pod on a node never seen gets an anonymous entry that is not schedulable.
  c.AddPod(BoundTo(Pod(PodJson("b")), "ghost"));
  EXPECT_EQ(c.Nodes().size(), 3u);
  c.RemovePod("default/b");
  EXPECT_EQ(c.Node("ghost"), nullptr);
}

}  // namespace
}  // namespace rc::scheduler
