// The fake cluster's EffectHost semantics: what the controller runtime and API server do.
#include <gtest/gtest.h>

#include "rc/compiler/rcctest/fake_cluster.h"
#include "rc/stdlib/runtime.h"

namespace rc::rcctest {
namespace {

using W = rt::EffectHost::Write;

std::vector<ResourceType> Types() {
  ResourceType pod{"v1", "Pod", "pods", "", true, true, nullptr};
  ResourceType cm{"v1", "ConfigMap", "configmaps", "", true, false, nullptr};
  ResourceType rs{"apps/v1", "ReplicaSet", "replicasets", "apps", true, true, nullptr};
  ResourceType node{"v1", "Node", "nodes", "", false, true, nullptr};
  return {pod, cm, rs, node};
}

class FakeClusterTest : public testing::Test {
 protected:
  FakeClusterTest() : cluster(Types()) { cluster.set_now(1704067200); }  // 2024-01-01T00:00:00Z
  rc_value* J(const std::string& json) {
    rc_value* v = rt::ParseJson(&ctx, json);
    EXPECT_NE(v, nullptr) << json;
    return v;
  }
  std::string Field(const DocPtr& d, const char* a, const char* b) {
    if (!d || !d->HasMember(a) || !(*d)[a].HasMember(b)) return "<absent>";
    return Canonical((*d)[a][b]);
  }
  rc_ctx ctx;
  FakeCluster cluster;
};

TEST_F(FakeClusterTest, CreateAssignsMetadataAndGeneratesNames) {
  ASSERT_TRUE(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","namespace":"ns"},"status":{"phase":"Running"}})"), nullptr).ok());
  ASSERT_TRUE(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","namespace":"ns"}})"), nullptr).ok());
  auto pods = cluster.OfKind("Pod");
  ASSERT_EQ(pods.size(), 2u);
  std::string a = (*pods[0])["metadata"]["name"].GetString(), b = (*pods[1])["metadata"]["name"].GetString();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind("web-", 0), 0u);
  EXPECT_EQ(a.size(), 9u);  // 5 generated characters
  EXPECT_EQ(Field(pods[0], "metadata", "creationTimestamp"), "\"2024-01-01T00:00:00Z\"");
  EXPECT_EQ(Field(pods[0], "metadata", "generation"), "1");
  EXPECT_NE(Field(pods[0], "metadata", "uid"), Field(pods[1], "metadata", "uid"));
  EXPECT_NE(Field(pods[0], "metadata", "resourceVersion"), "<absent>");
  // What the write stored is what create() returns in rc code.
  ASSERT_NE(cluster.Written(), nullptr);
  EXPECT_EQ(std::string((*cluster.Written())["metadata"]["name"].GetString()), b);
  // The status subresource: a create's status is reset.
  EXPECT_EQ(Canonical((*pods[0])["status"]), "{}");
  // Same name again: AlreadyExists; the action is recorded as failed.
  std::string dup = std::string(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")") + a + R"(","namespace":"ns"}})";
  Status st = cluster.Apply(W::kCreate, *J(dup), nullptr);
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(st.message(), "create Pod ns/" + a + ": pods \"" + a + "\" already exists");
  EXPECT_EQ(cluster.Written(), nullptr);
  ASSERT_EQ(cluster.actions().size(), 3u);
  EXPECT_FALSE(cluster.actions()[2].ok);
  // Cluster-scoped: no namespace kept.
  ASSERT_TRUE(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"Node","metadata":{"name":"n1","namespace":"x"}})"), nullptr).ok());
  EXPECT_TRUE(cluster.Find("Node", "", "n1"));
  EXPECT_FALSE(cluster.Find("Node", "", "n1")->operator[]("metadata").HasMember("namespace"));
  // Metadata is validated like the API server does (422 with its wording).
  Status bad = cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"Bad_Name","namespace":"ns","labels":{"a b":"c"}}})"), nullptr);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message().rfind("create Pod ns/Bad_Name: Pod \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain", 0), 0u) << bad.message();
  EXPECT_NE(bad.message().find("metadata.labels: Invalid value: \"a b\""), std::string::npos) << bad.message();
  // Unknown kind: 404.
  EXPECT_EQ(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"Gadget","metadata":{"name":"g"}})"), nullptr).message(),
            "create Gadget g: no resource type v1 Gadget is served");
  // As the runtime's host: apiVersion and kind, a namespace for namespaced types, a name to update.
  EXPECT_EQ(cluster.Apply(W::kCreate, *J(R"({"kind":"Pod","metadata":{"name":"p","namespace":"ns"}})"), nullptr).message(),
            "create Pod ns/p: the object has no apiVersion/kind");
  EXPECT_EQ(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"apps/v1","kind":"Pod","metadata":{"name":"p","namespace":"ns"}})"), nullptr).message(),
            "create Pod ns/p: no resource type apps/v1 Pod is served");
  EXPECT_EQ(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"p-"}})"), nullptr).message(),
            "create Pod p-*: metadata.namespace is not set");
  EXPECT_EQ(cluster.Apply(W::kUpdate, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"namespace":"ns"}})"), nullptr).message(),
            "update Pod ns/*: metadata.name is not set");
}

TEST_F(FakeClusterTest, UpdateConflictsOnStaleVersionAndKeepsStatus) {
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":1},"status":{"replicas":1}})")).ok());
  DocPtr v1 = cluster.Find("ReplicaSet", "ns", "web");
  std::string rv1 = (*v1)["metadata"]["resourceVersion"].GetString();
  cluster.TakeEvents();
  // Spec change with the current version: generation bumps, status stays (subresource).
  rc_value* upd = J(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns","resourceVersion":")" + rv1 +
                    R"("},"spec":{"replicas":3},"status":{"replicas":99}})");
  ASSERT_TRUE(cluster.Apply(W::kUpdate, *upd, nullptr).ok());
  DocPtr v2 = cluster.Find("ReplicaSet", "ns", "web");
  EXPECT_EQ(Field(v2, "spec", "replicas"), "3");
  EXPECT_EQ(Field(v2, "status", "replicas"), "1");
  EXPECT_EQ(Field(v2, "metadata", "generation"), "2");
  EXPECT_EQ(Field(v2, "metadata", "uid"), Field(v1, "metadata", "uid"));
  EXPECT_EQ(cluster.TakeEvents().size(), 1u);
  // The old version again: 409, nothing written.
  Status st = cluster.Apply(W::kUpdate, *upd, nullptr);
  EXPECT_EQ(st.code(), StatusCode::kConflict);
  EXPECT_NE(st.message().find("Operation cannot be fulfilled on replicasets.apps \"web\": the object has been modified"), std::string::npos);
  // updateStatus takes only the status.
  std::string rv2 = (*v2)["metadata"]["resourceVersion"].GetString();
  ASSERT_TRUE(cluster.Apply(W::kUpdateStatus, *J(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns","resourceVersion":")" + rv2 +
                                                 R"("},"spec":{"replicas":7},"status":{"replicas":3}})"), nullptr).ok());
  DocPtr v3 = cluster.Find("ReplicaSet", "ns", "web");
  EXPECT_EQ(Field(v3, "spec", "replicas"), "3");
  EXPECT_EQ(Field(v3, "status", "replicas"), "3");
  EXPECT_EQ(Field(v3, "metadata", "generation"), "2");
  // An update without resourceVersion is unconditional; one that changes nothing writes nothing.
  int64_t changes = cluster.changes();
  ASSERT_TRUE(cluster.Apply(W::kUpdateStatus, *J(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns"},"status":{"replicas":3}})"), nullptr).ok());
  EXPECT_EQ(cluster.changes(), changes);
  EXPECT_FALSE(cluster.actions().back().changed);
  EXPECT_EQ(Field(cluster.Find("ReplicaSet", "ns", "web"), "metadata", "resourceVersion"), Field(v3, "metadata", "resourceVersion"));
  EXPECT_TRUE(cluster.TakeEvents().size() == 1u);  // only the status change before
  // Absent object: 404; status of a type without the subresource: 404.
  EXPECT_EQ(cluster.Apply(W::kUpdate, *J(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"nope","namespace":"ns"}})"), nullptr).code(), StatusCode::kNotFound);
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ConfigMap","metadata":{"name":"c","namespace":"ns"},"data":{"a":"1"}})")).ok());
  // updateStatus of a type without the subresource is a plain update (the host PUTs the object).
  ASSERT_TRUE(cluster.Apply(W::kUpdateStatus, *J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"ns"},"data":{"a":"2"}})"), nullptr).ok());
  EXPECT_EQ(Canonical((*cluster.Find("ConfigMap", "ns", "c"))["data"]), R"({"a":"2"})");
}

TEST_F(FakeClusterTest, PutReplacesLikeAUserUpdate) {
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":1},"status":{"replicas":1}})")).ok());
  std::string uid = Field(cluster.Find("ReplicaSet", "ns", "web"), "metadata", "uid");
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":2}})")).ok());
  DocPtr rs = cluster.Find("ReplicaSet", "ns", "web");
  EXPECT_EQ(Field(rs, "metadata", "uid"), uid);
  EXPECT_EQ(Field(rs, "metadata", "generation"), "2");
  EXPECT_EQ(Field(rs, "status", "replicas"), "1");  // kept: the status subresource
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns"},"spec":{"replicas":2},"status":{"replicas":2}})")).ok());
  rs = cluster.Find("ReplicaSet", "ns", "web");
  EXPECT_EQ(Field(rs, "metadata", "generation"), "2");  // only the status changed
  EXPECT_EQ(Field(rs, "status", "replicas"), "2");
}

TEST_F(FakeClusterTest, PatchIsAMergePatchOnTheStoredObject) {
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ConfigMap","metadata":{"name":"c","namespace":"ns","labels":{"a":"1","b":"2"}},"data":{"x":"1"}})")).ok());
  rc_value* stale = J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"ns","resourceVersion":"1"}})");
  ASSERT_TRUE(cluster.Apply(W::kPatch, *stale, J(R"({"metadata":{"labels":{"a":null,"c":"3"}},"data":{"y":"2"}})")).ok());
  DocPtr c = cluster.Find("ConfigMap", "ns", "c");
  EXPECT_EQ(Canonical((*c)["metadata"]["labels"]), R"({"b":"2","c":"3"})");
  EXPECT_EQ(Canonical((*c)["data"]), R"({"x":"1","y":"2"})");
  // A patch naming a stale resourceVersion conflicts.
  EXPECT_EQ(cluster.Apply(W::kPatch, *stale, J(R"({"metadata":{"resourceVersion":"1"},"data":{"z":"3"}})")).code(), StatusCode::kConflict);
}

TEST_F(FakeClusterTest, DeleteHonoursUidFinalizersGraceAndCollectsGarbage) {
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns","uid":"rs-1"}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Pod","metadata":{"name":"p1","namespace":"ns","ownerReferences":[{"kind":"ReplicaSet","name":"web","uid":"rs-1","controller":true}]}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Pod","metadata":{"name":"p2","namespace":"ns","ownerReferences":[{"kind":"ReplicaSet","name":"web","uid":"rs-1"},{"kind":"ReplicaSet","name":"x","uid":"other"}]}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Pod","metadata":{"name":"bound","namespace":"ns"},"spec":{"nodeName":"n1"}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ConfigMap","metadata":{"name":"held","namespace":"ns","finalizers":["x/y"]}})")).ok());
  // Wrong uid: 409 (the object was replaced by another of the same name).
  EXPECT_EQ(cluster.Apply(W::kDelete, *J(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns","uid":"old"}})"), nullptr).code(), StatusCode::kConflict);
  // Deleting the owner removes p1 (its only owner is gone); p2 has another owner reference but
  // that owner does not exist either, so it goes too.
  ASSERT_TRUE(cluster.Apply(W::kDelete, *J(R"({"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"web","namespace":"ns","uid":"rs-1"}})"), nullptr).ok());
  EXPECT_FALSE(cluster.Find("ReplicaSet", "ns", "web"));
  EXPECT_FALSE(cluster.Find("Pod", "ns", "p1"));
  EXPECT_FALSE(cluster.Find("Pod", "ns", "p2"));
  // 404 is ignored.
  EXPECT_TRUE(cluster.Apply(W::kDelete, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p1","namespace":"ns"}})"), nullptr).ok());
  // A pod bound to a node is deleted gracefully: deletionTimestamp = now + 30s.
  ASSERT_TRUE(cluster.Apply(W::kDelete, *J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"bound","namespace":"ns"}})"), nullptr).ok());
  EXPECT_EQ(Field(cluster.Find("Pod", "ns", "bound"), "metadata", "deletionTimestamp"), "\"2024-01-01T00:00:30Z\"");
  // Finalizers keep the object; the update that removes the last one deletes it.
  ASSERT_TRUE(cluster.Apply(W::kDelete, *J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","namespace":"ns"}})"), nullptr).ok());
  DocPtr held = cluster.Find("ConfigMap", "ns", "held");
  ASSERT_TRUE(held);
  EXPECT_EQ(Field(held, "metadata", "deletionTimestamp"), "\"2024-01-01T00:00:00Z\"");
  ASSERT_TRUE(cluster.Apply(W::kPatch, *J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"held","namespace":"ns"}})"), J(R"({"metadata":{"finalizers":[]}})")).ok());
  EXPECT_FALSE(cluster.Find("ConfigMap", "ns", "held"));
}

TEST_F(FakeClusterTest, ListFiltersAndSorts) {
  for (const char* obj : {
           R"({"kind":"Pod","metadata":{"name":"b","namespace":"ns1","labels":{"app":"web","tier":"db"},"ownerReferences":[{"kind":"ReplicaSet","name":"r","uid":"u1","controller":true}]}})",
           R"({"kind":"Pod","metadata":{"name":"a","namespace":"ns2","labels":{"app":"web"},"ownerReferences":[{"kind":"ReplicaSet","name":"r","uid":"u1"}]}})",
           R"({"kind":"Pod","metadata":{"name":"a","namespace":"ns1","labels":{"app":"api"}}})",
           R"({"kind":"ConfigMap","metadata":{"name":"a","namespace":"ns1","labels":{"app":"web"}}})"}) {
    ASSERT_TRUE(cluster.Put(*J(obj)).ok());
  }
  auto names = [&](std::vector<const rc_value*> items) {
    std::string out;
    for (auto* i : items) out += std::string((*i)["metadata"]["namespace"].GetString()) + "/" + (*i)["metadata"]["name"].GetString() + " ";
    return out;
  };
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", nullptr, nullptr, nullptr)), "ns1/a ns1/b ns2/a ");
  EXPECT_EQ(names(cluster.List("v1", "Pod", "ns1", nullptr, nullptr, nullptr)), "ns1/a ns1/b ");
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", J(R"({"matchLabels":{"app":"web"}})"), nullptr, nullptr)), "ns1/b ns2/a ");
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", J(R"({"matchExpressions":[{"key":"tier","operator":"DoesNotExist"}]})"), nullptr, nullptr)), "ns1/a ns2/a ");
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", J("{}"), nullptr, nullptr)), "ns1/a ns1/b ns2/a ");
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", nullptr, J(R"({"app":"web","tier":"db"})"), nullptr)), "ns1/b ");
  // owner: a controller reference with the owner's uid (not a plain reference).
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", nullptr, nullptr, J(R"({"metadata":{"uid":"u1"}})"))), "ns1/b ");
  EXPECT_EQ(names(cluster.List("v1", "Pod", "", nullptr, nullptr, J(R"({"metadata":{}})"))), "");
  // Get: cluster-scoped types ignore the namespace.
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Node","metadata":{"name":"n1"}})")).ok());
  EXPECT_NE(cluster.Get("v1", "Node", "n1", "whatever"), nullptr);
  EXPECT_EQ(cluster.List("v1", "Node", "ns1", nullptr, nullptr, nullptr).size(), 1u);
  // Ordered by the cache key string, as the runtime's informers: "a-b/x" before "a/x".
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ConfigMap","metadata":{"name":"x","namespace":"a"}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ConfigMap","metadata":{"name":"x","namespace":"a-b"}})")).ok());
  EXPECT_EQ(names(cluster.List("v1", "ConfigMap", "", nullptr, nullptr, nullptr)), "a-b/x a/x ns1/a ");
  EXPECT_EQ(cluster.Get("v1", "Pod", "zz", "ns1"), nullptr);
}

TEST_F(FakeClusterTest, KubeletMakesPodsReadyAndFinishesTerminatingOnes) {
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Pod","metadata":{"name":"a","namespace":"ns"},"spec":{}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Pod","metadata":{"name":"gone","namespace":"ns","deletionTimestamp":"2024-01-01T00:00:00Z"}})")).ok());
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"Pod","metadata":{"name":"held","namespace":"ns","deletionTimestamp":"2024-01-01T00:00:00Z","finalizers":["x/y"]}})")).ok());
  cluster.TakeEvents();
  EXPECT_TRUE(cluster.Kubelet());
  DocPtr a = cluster.Find("Pod", "ns", "a");
  EXPECT_EQ(Field(a, "spec", "nodeName"), "\"node-1\"");
  EXPECT_EQ(Field(a, "status", "phase"), "\"Running\"");
  EXPECT_EQ(Field(a, "status", "podIP"), "\"10.244.0.3\"");
  EXPECT_EQ(Field(a, "status", "conditions"), R"([{"lastTransitionTime":"2024-01-01T00:00:00Z","status":"True","type":"Ready"}])");
  EXPECT_FALSE(cluster.Find("Pod", "ns", "gone"));
  EXPECT_TRUE(cluster.Find("Pod", "ns", "held"));
  EXPECT_EQ(cluster.TakeEvents().size(), 2u);
  EXPECT_TRUE(cluster.actions().empty());  // another actor: no controller actions
  EXPECT_FALSE(cluster.Kubelet());         // nothing left to do
}

TEST_F(FakeClusterTest, StaleViewAndAfterWriteHook) {
  ASSERT_TRUE(cluster.Put(*J(R"({"kind":"ConfigMap","metadata":{"name":"a","namespace":"ns"}})")).ok());
  State before = cluster.state();
  ASSERT_TRUE(cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"b","namespace":"ns"}})"), nullptr).ok());
  EXPECT_EQ(cluster.before_last_write().size(), 1u);
  cluster.SetView(cluster.before_last_write());
  EXPECT_EQ(cluster.List("v1", "ConfigMap", "ns", nullptr, nullptr, nullptr).size(), 1u);
  EXPECT_EQ(cluster.Get("v1", "ConfigMap", "b", "ns"), nullptr);
  cluster.ClearView();
  EXPECT_EQ(cluster.List("v1", "ConfigMap", "ns", nullptr, nullptr, nullptr).size(), 2u);
  // A crash after a write: the write persists, the controller sees a failure.
  cluster.after_write = [] { return Status::Unavailable("crashed"); };
  Status st = cluster.Apply(W::kCreate, *J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"ns"}})"), nullptr);
  EXPECT_EQ(st.message(), "crashed");
  EXPECT_TRUE(cluster.Find("ConfigMap", "ns", "c"));
  // Emit is an action, not an object.
  cluster.Emit(*J(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"ns"}})"), "Normal", "Made", "made it");
  EXPECT_EQ(cluster.actions().back().verb, "emit");
  EXPECT_EQ(cluster.actions().back().reason, "Made");
  EXPECT_EQ(cluster.OfKind("Event").size(), 0u);
}

}  // namespace
}  // namespace rc::rcctest
