#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/patch.h"

namespace rc::apimachinery {
namespace {

struct Outcome {
  bool ok;
  std::string text;  // result JSON, or the error message
};

Outcome Smp(const std::string& target, const std::string& patch,
            const PatchSchema& schema = KubernetesPatchSchema()) {
  auto t = ParseJson(target);
  auto p = ParseJson(patch);
  EXPECT_TRUE(t.ok()) << target << " " << t.status().ToString();
  EXPECT_TRUE(p.ok()) << patch << " " << p.status().ToString();
  std::string before = ToJson(*t);
  Status s = ApplyStrategicMergePatch(*t, *p, t->GetAllocator(), schema);
  if (!s.ok()) {
    EXPECT_EQ(ToJson(*t), before) << "target modified by a failed patch";
    return {false, s.message()};
  }
  std::string out = ToJson(*t);
  EXPECT_EQ(out.find("\"$"), std::string::npos) << "directive leaked: " << out;
  return {true, out};
}

// Normalizes a JSON literal written with whitespace for readability.
std::string J(const std::string& json) {
  auto d = ParseJson(json);
  EXPECT_TRUE(d.ok()) << json;
  return ToJson(*d);
}

const char* kDeployment = R"({
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}, "finalizers": ["a", "b"]},
  "spec": {
    "replicas": 2,
    "selector": {"matchLabels": {"app": "web"}},
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
    "template": {
      "metadata": {"labels": {"app": "web"}},
      "spec": {
        "containers": [{
          "name": "web", "image": "nginx:1.25",
          "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
          "ports": [{"containerPort": 80, "protocol": "TCP"}],
          "volumeMounts": [{"name": "data", "mountPath": "/data"}]
        }],
        "volumes": [{"name": "data", "emptyDir": {}}],
        "tolerations": [{"key": "k1", "operator": "Exists"}, {"key": "k2", "operator": "Exists"}]
      }
    }
  }
})";

// What `kubectl apply` sends when only the image of a container changed.
TEST(StrategicMergePatch, KubectlApplyImageChange) {
  Outcome o = Smp(kDeployment,
                  R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],
                                   "containers":[{"image":"nginx:1.26","name":"web"}]}}}})");
  ASSERT_TRUE(o.ok) << o.text;
  auto expected = ParseJson(kDeployment);
  (*expected)["spec"]["template"]["spec"]["containers"][0]["image"].SetString("nginx:1.26");
  EXPECT_EQ(o.text, ToJson(*expected));
}

// kubectl apply after removing env B from the manifest.
TEST(StrategicMergePatch, KubectlApplyRemovesEnvEntry) {
  Outcome o = Smp(kDeployment,
                  R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"web"}],
      "containers":[{"$setElementOrder/env":[{"name":"A"}],"env":[{"$patch":"delete","name":"B"}],"name":"web"}]}}}})");
  ASSERT_TRUE(o.ok) << o.text;
  auto doc = ParseJson(o.text);
  EXPECT_EQ(ToJson((*doc)["spec"]["template"]["spec"]["containers"][0]["env"]),
            R"([{"name":"A","value":"1"}])");
  EXPECT_EQ(ToJson((*doc)["spec"]["template"]["spec"]["containers"][0]["image"]),
            R"("nginx:1.25")");
}

// kubectl apply adding an env var in the middle and a sidecar container.
TEST(StrategicMergePatch, KubectlApplyAddsItemsInOrder) {
  Outcome o = Smp(kDeployment, R"({"spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"web"},{"name":"sidecar"}],
      "containers":[{"$setElementOrder/env":[{"name":"A"},{"name":"NEW"},{"name":"B"}],
                     "env":[{"name":"NEW","value":"n"}],"name":"web"},
                    {"name":"sidecar","image":"busybox"}]}}}})");
  ASSERT_TRUE(o.ok) << o.text;
  auto doc = ParseJson(o.text);
  const auto& spec = (*doc)["spec"]["template"]["spec"];
  EXPECT_EQ(ToJson(spec["containers"][0]["env"]),
            R"([{"name":"A","value":"1"},{"name":"NEW","value":"n"},{"name":"B","value":"2"}])");
  EXPECT_EQ(ToJson(spec["containers"][1]), R"({"name":"sidecar","image":"busybox"})");
}

TEST(StrategicMergePatch, DeleteListElementByMergeKey) {
  const char* pod =
      R"({"spec":{"containers":[{"name":"a","image":"x"},{"name":"b","image":"y"},{"name":"c"}]}})";
  Outcome o = Smp(pod, R"({"spec":{"containers":[{"name":"b","$patch":"delete"}]}})");
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(o.text, J(R"({"spec":{"containers":[{"name":"a","image":"x"},{"name":"c"}]}})"));
  // Deleting an element that does not exist is a no-op.
  Outcome n = Smp(pod, R"({"spec":{"containers":[{"name":"zzz","$patch":"delete"}]}})");
  ASSERT_TRUE(n.ok) << n.text;
  EXPECT_EQ(n.text, J(pod));
  // The delete marker needs the merge key.
  Outcome e = Smp(pod, R"({"spec":{"containers":[{"$patch":"delete","image":"x"}]}})");
  EXPECT_FALSE(e.ok);
  EXPECT_NE(e.text.find("does not contain declared merge key: name"), std::string::npos) << e.text;
}

TEST(StrategicMergePatch, ReplaceDirectives) {
  const char* pod =
      R"({"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}})";
  // $patch: replace inside a list replaces the whole list.
  Outcome l = Smp(
      pod, R"({"spec":{"containers":[{"$patch":"replace"},{"name":"z","image":"i","x":null}]}})");
  ASSERT_TRUE(l.ok) << l.text;
  EXPECT_EQ(
      l.text,
      J(R"({"metadata":{"labels":{"a":"1","b":"2"}},"spec":{"containers":[{"name":"z","image":"i"}]}})"));
  // $patch: replace on a map replaces the map.
  Outcome m = Smp(pod, R"({"metadata":{"labels":{"$patch":"replace","c":"3"}}})");
  ASSERT_TRUE(m.ok) << m.text;
  EXPECT_EQ(
      m.text,
      J(R"({"metadata":{"labels":{"c":"3"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}})"));
  // $patch: delete on a map empties it (as Kubernetes does).
  Outcome d = Smp(pod, R"({"metadata":{"labels":{"$patch":"delete"}}})");
  ASSERT_TRUE(d.ok) << d.text;
  EXPECT_EQ(d.text,
            J(R"({"metadata":{"labels":{}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}})"));
  // $patch: merge is the default behaviour.
  Outcome g = Smp(
      pod,
      R"({"metadata":{"labels":{"$patch":"merge","c":"3"}},"spec":{"containers":[{"$patch":"merge"}]}})");
  ASSERT_TRUE(g.ok) << g.text;
  EXPECT_EQ(
      g.text,
      J(R"({"metadata":{"labels":{"a":"1","b":"2","c":"3"}},"spec":{"containers":[{"name":"a"},{"name":"b"}]}})"));
  // Unknown directive values are errors.
  Outcome u = Smp(pod, R"({"metadata":{"labels":{"$patch":"explode"}}})");
  EXPECT_FALSE(u.ok);
  EXPECT_NE(u.text.find("unknown patch type: explode"), std::string::npos) << u.text;
  Outcome ul = Smp(pod, R"({"spec":{"containers":[{"name":"a","$patch":"explode"}]}})");
  EXPECT_FALSE(ul.ok);
}

TEST(StrategicMergePatch, MapsMergeAndNullDeletes) {
  Outcome o = Smp(
      R"({"metadata":{"labels":{"a":"1","b":"2"},"annotations":{"x":"y"}},"data":{"k":"v"}})",
      R"({"metadata":{"labels":{"a":null,"c":"3"},"annotations":null,"missing":null},"data":{"k2":"v2"}})");
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(o.text, J(R"({"metadata":{"labels":{"b":"2","c":"3"}},"data":{"k":"v","k2":"v2"}})"));
  // Type change replaces; nulls inside the new value are dropped.
  Outcome t = Smp(R"({"a":"str","b":[1]})", R"({"a":{"x":1,"y":null},"b":{"c":[2]}})");
  ASSERT_TRUE(t.ok) << t.text;
  EXPECT_EQ(t.text, J(R"({"a":{"x":1},"b":{"c":[2]}})"));
}

TEST(StrategicMergePatch, ListsWithoutStrategyAreReplaced) {
  Outcome o =
      Smp(kDeployment,
          R"({"spec":{"template":{"spec":{"tolerations":[{"key":"k3","operator":"Exists"}]}}}})");
  ASSERT_TRUE(o.ok) << o.text;
  auto doc = ParseJson(o.text);
  EXPECT_EQ(ToJson((*doc)["spec"]["template"]["spec"]["tolerations"]),
            R"([{"key":"k3","operator":"Exists"}])");
  // Unknown lists (e.g. args) are replaced too.
  Outcome a = Smp(R"({"spec":{"containers":[{"name":"w","args":["a","b"]}]}})",
                  R"({"spec":{"containers":[{"name":"w","args":["c"]}]}})");
  ASSERT_TRUE(a.ok) << a.text;
  EXPECT_EQ(a.text, J(R"({"spec":{"containers":[{"name":"w","args":["c"]}]}})"));
}

TEST(StrategicMergePatch, MergeByKeyKeepsLiveOrderAndMergesFields) {
  const char* pod =
      R"({"spec":{"containers":[{"name":"w","ports":[{"containerPort":80,"protocol":"TCP"},
      {"containerPort":443}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]}]}})";
  Outcome o =
      Smp(pod, R"({"spec":{"containers":[{"name":"w","ports":[{"containerPort":80,"name":"http"}],
      "env":[{"name":"B","value":"3"}]}]}})");
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(
      o.text,
      J(R"({"spec":{"containers":[{"name":"w","ports":[{"containerPort":80,"protocol":"TCP","name":"http"},
      {"containerPort":443}],"env":[{"name":"A","value":"1"},{"name":"B","value":"3"}]}]}})"));
}

// Without $setElementOrder Kubernetes puts patch items that are new to the live list before the
// live items they are compared with (mergeSortedSlice); kubectl always sends $setElementOrder.
TEST(StrategicMergePatch, NewItemsOrderingMatchesKubernetes) {
  const char* pod = R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})";
  Outcome o = Smp(pod, R"({"spec":{"containers":[{"name":"new"}]}})");
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(o.text, J(R"({"spec":{"containers":[{"name":"new"},{"name":"a"},{"name":"b"}]}})"));
  Outcome s =
      Smp(pod, R"({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"},{"name":"new"}],
                              "containers":[{"name":"new"}]}})");
  ASSERT_TRUE(s.ok) << s.text;
  EXPECT_EQ(s.text, J(R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"new"}]}})"));
  // Server-only items (not in $setElementOrder) are interleaved by their live position: "injected"
  // (live index 1) goes before "b" (live index 2), as Kubernetes' mergeSortedSlice does.
  Outcome k = Smp(R"({"spec":{"containers":[{"name":"a"},{"name":"injected"},{"name":"b"}]}})",
                  R"({"spec":{"$setElementOrder/containers":[{"name":"b"},{"name":"a"}]}})");
  ASSERT_TRUE(k.ok) << k.text;
  EXPECT_EQ(k.text,
            J(R"({"spec":{"containers":[{"name":"injected"},{"name":"b"},{"name":"a"}]}})"));
  Outcome k2 = Smp(R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"injected"}]}})",
                   R"({"spec":{"$setElementOrder/containers":[{"name":"a"},{"name":"b"}]}})");
  ASSERT_TRUE(k2.ok) << k2.text;
  EXPECT_EQ(k2.text,
            J(R"({"spec":{"containers":[{"name":"a"},{"name":"b"},{"name":"injected"}]}})"));
}

TEST(StrategicMergePatch, PrimitiveMergeLists) {
  // finalizers: set union.
  Outcome u =
      Smp(R"({"metadata":{"finalizers":["a","b"]}})", R"({"metadata":{"finalizers":["b","c"]}})");
  ASSERT_TRUE(u.ok) << u.text;
  EXPECT_EQ(u.text, J(R"({"metadata":{"finalizers":["a","b","c"]}})"));
  // $deleteFromPrimitiveList.
  Outcome d = Smp(R"({"metadata":{"finalizers":["a","b","c"]}})",
                  R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b","zzz"]}})");
  ASSERT_TRUE(d.ok) << d.text;
  EXPECT_EQ(d.text, J(R"({"metadata":{"finalizers":["a","c"]}})"));
  // What kubectl apply sends when one finalizer is added and one removed.
  Outcome k = Smp(
      R"({"metadata":{"finalizers":["a","b"]}})",
      R"({"metadata":{"$setElementOrder/finalizers":["x","a"],"$deleteFromPrimitiveList/finalizers":["b"],
                      "finalizers":["x"]}})");
  ASSERT_TRUE(k.ok) << k.text;
  EXPECT_EQ(k.text, J(R"({"metadata":{"finalizers":["x","a"]}})"));
  // Reorder only.
  Outcome r = Smp(R"({"metadata":{"finalizers":["a","b","c"]}})",
                  R"({"metadata":{"$setElementOrder/finalizers":["c","a","b"]}})");
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(r.text, J(R"({"metadata":{"finalizers":["c","a","b"]}})"));
  // Deleting from an absent list is a no-op.
  Outcome n =
      Smp(R"({"metadata":{}})", R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})");
  ASSERT_TRUE(n.ok) << n.text;
  EXPECT_EQ(n.text, J(R"({"metadata":{}})"));
}

TEST(StrategicMergePatch, RetainKeys) {
  // kubectl apply switching the deployment strategy to Recreate.
  Outcome o = Smp(
      kDeployment,
      R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","rollingUpdate":null}}})");
  ASSERT_TRUE(o.ok) << o.text;
  auto doc = ParseJson(o.text);
  EXPECT_EQ(ToJson((*doc)["spec"]["strategy"]), R"({"type":"Recreate"})");
  // Volume source switch inside a merge list.
  Outcome v = Smp(
      R"({"spec":{"volumes":[{"name":"v","secret":{"secretName":"s"}},{"name":"w","emptyDir":{}}]}})",
      R"({"spec":{"volumes":[{"$retainKeys":["configMap","name"],"configMap":{"name":"cm"},"name":"v"}]}})");
  ASSERT_TRUE(v.ok) << v.text;
  EXPECT_EQ(
      v.text,
      J(R"({"spec":{"volumes":[{"name":"v","configMap":{"name":"cm"}},{"name":"w","emptyDir":{}}]}})"));
  // Every patched field must be listed.
  Outcome e = Smp(kDeployment,
                  R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate","other":1}}})");
  EXPECT_FALSE(e.ok);
  EXPECT_NE(e.text.find("invalid patch format of retainKeys"), std::string::npos) << e.text;
}

TEST(StrategicMergePatch, ServiceAndMetadataLists) {
  Outcome s = Smp(
      R"({"kind":"Service","spec":{"ports":[{"port":80,"targetPort":8080},{"port":443,"targetPort":8443}]}})",
      R"({"spec":{"ports":[{"port":80,"targetPort":9090}]}})");
  ASSERT_TRUE(s.ok) << s.text;
  EXPECT_EQ(
      s.text,
      J(R"({"kind":"Service","spec":{"ports":[{"port":80,"targetPort":9090},{"port":443,"targetPort":8443}]}})"));
  Outcome r =
      Smp(R"({"metadata":{"ownerReferences":[{"uid":"1","name":"a"},{"uid":"2","name":"b"}]}})",
          R"({"metadata":{"ownerReferences":[{"uid":"2","controller":true}]}})");
  ASSERT_TRUE(r.ok) << r.text;
  EXPECT_EQ(
      r.text,
      J(R"({"metadata":{"ownerReferences":[{"uid":"1","name":"a"},{"uid":"2","name":"b","controller":true}]}})"));
  Outcome c = Smp(
      R"({"status":{"conditions":[{"type":"Ready","status":"False"},{"type":"Synced","status":"True"}]}})",
      R"({"status":{"conditions":[{"type":"Ready","status":"True","reason":"Up"}]}})");
  ASSERT_TRUE(c.ok) << c.text;
  EXPECT_EQ(
      c.text,
      J(R"({"status":{"conditions":[{"type":"Ready","status":"True","reason":"Up"},{"type":"Synced","status":"True"}]}})"));
}

TEST(StrategicMergePatch, DirectivesNeverLeakFromNewValues) {
  Outcome o = Smp(R"({"kind":"Pod"})", R"({"spec":{
      "$setElementOrder/containers":[{"name":"b"}],
      "containers":[{"name":"a","$patch":"delete"},{"name":"b","image":"x","unset":null,
                     "env":[{"name":"E","$patch":"delete"},{"name":"F","value":"f"}]}],
      "volumes":[{"$patch":"replace"},{"name":"v","emptyDir":{}}],
      "affinity":{"$patch":"replace","nodeAffinity":{}},
      "$retainKeys":["containers","volumes","affinity","tolerations"],
      "tolerations":[{"$patch":"delete"},{"key":"k"}]},
    "metadata":{"$deleteFromPrimitiveList/finalizers":["x"],"labels":{"$patch":"delete"}}})");
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(
      o.text,
      J(R"({"kind":"Pod","spec":{"containers":[{"name":"b","image":"x","env":[{"name":"F","value":"f"}]}],
      "volumes":[{"name":"v","emptyDir":{}}],"affinity":{"nodeAffinity":{}},"tolerations":[{"key":"k"}]},
      "metadata":{"labels":{}}})"));
}

TEST(StrategicMergePatch, ErrorsLeaveTargetUnchanged) {
  struct Case {
    const char* patch;
    const char* message;
  } cases[] = {
      {R"({"spec":{"template":{"spec":{"containers":[{"image":"no-name"}]}}}})",
       "does not contain declared merge key: name"},
      {R"({"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"a"}],"containers":[{"name":"zz"}]}}}})",
       "doesn't match $setElementOrder list"},
      {R"({"spec":{"template":{"spec":{"$setElementOrder/containers":{"name":"web"}}}}})",
       "invalid patch format of setElementOrder list"},
      {R"({"metadata":{"$deleteFromPrimitiveList":["a"]}})",
       "invalid patch format of primitive list"},
      {R"({"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}})",
       "invalid patch format of primitive list"},
      {R"({"spec":{"template":{"spec":{"containers":[[1]]}}}})",
       "lists of lists are not supported"},
      {R"({"spec":{"template":{"spec":{"containers":["x"]}}}})",
       "list element types are not identical"},
      {R"({"spec":{"strategy":{"$retainKeys":"type"}}})", "invalid patch format of retainKeys"},
      // The first edit succeeds, the second one fails: nothing is applied.
      {R"({"metadata":{"labels":{"new":"x"}},"spec":{"template":{"spec":{"volumes":[{"emptyDir":{}}]}}}})",
       "strategic merge patch at spec.template.spec.volumes: map: {\"emptyDir\":{}} does not "
       "contain declared merge key: name"},
  };
  for (const auto& c : cases) {
    Outcome o = Smp(kDeployment, c.patch);
    EXPECT_FALSE(o.ok) << c.patch << " -> " << o.text;
    EXPECT_NE(o.text.find(c.message), std::string::npos) << c.patch << " -> " << o.text;
  }
  auto t = ParseJson(R"({"a":1})");
  auto arr = ParseJson("[1]");
  EXPECT_FALSE(ApplyStrategicMergePatch(*t, *arr, t->GetAllocator(), KubernetesPatchSchema()).ok());
  EXPECT_FALSE(
      ApplyStrategicMergePatch(*arr, *t, arr->GetAllocator(), KubernetesPatchSchema()).ok());
}

TEST(StrategicMergePatch, EmptySchemaReplacesLists) {
  Outcome o = Smp(R"({"spec":{"containers":[{"name":"a"},{"name":"b"}]}})",
                  R"({"spec":{"containers":[{"name":"c"}]}})", EmptyPatchSchema());
  ASSERT_TRUE(o.ok) << o.text;
  EXPECT_EQ(o.text, J(R"({"spec":{"containers":[{"name":"c"}]}})"));
}

TEST(StrategicMergePatch, PatchMayLiveInTargetDocument) {
  auto doc = ParseJson(R"({"obj":{"spec":{"containers":[{"name":"a","image":"1"}]}},
                          "patch":{"spec":{"containers":[{"name":"a","image":"2"}]}}})");
  ASSERT_TRUE(doc.ok());
  ASSERT_TRUE(ApplyStrategicMergePatch((*doc)["obj"], (*doc)["patch"], doc->GetAllocator(),
                                       KubernetesPatchSchema())
                  .ok());
  EXPECT_EQ(ToJson((*doc)["obj"]), R"({"spec":{"containers":[{"name":"a","image":"2"}]}})");
}

TEST(TablePatchSchema, SuffixMatching) {
  TablePatchSchema schema({
      {{"spec", "items"}, {true, "id"}},
      {{"*", "items"}, {true, "other"}},
      {{"^", "top"}, {true, ""}},
      {{"deep", "spec", "items"}, {false, ""}},
  });
  auto path = [](std::vector<std::string> p) { return p; };
  auto s1 = schema.ForPath(path({"spec", "items"}));
  ASSERT_TRUE(s1.has_value());
  EXPECT_EQ(s1->merge_key, "id");
  auto s2 = schema.ForPath(path({"status", "items"}));
  ASSERT_TRUE(s2.has_value());
  EXPECT_EQ(s2->merge_key, "other");
  EXPECT_TRUE(schema.ForPath(path({"top"})).has_value());
  EXPECT_FALSE(schema.ForPath(path({"x", "top"})).has_value());
  auto s3 = schema.ForPath(path({"deep", "spec", "items"}));
  ASSERT_TRUE(s3.has_value());
  EXPECT_FALSE(s3->merge);
  EXPECT_FALSE(schema.ForPath(path({"items"})).has_value());

  const PatchSchema& k8s = KubernetesPatchSchema();
  EXPECT_EQ(k8s.ForPath(path({"spec", "template", "spec", "containers"})),
            (ListStrategy{true, "name"}));
  EXPECT_EQ(k8s.ForPath(
                path({"spec", "jobTemplate", "spec", "template", "spec", "initContainers", "env"})),
            (ListStrategy{true, "name"}));
  EXPECT_EQ(k8s.ForPath(path({"spec", "containers", "ports"})),
            (ListStrategy{true, "containerPort"}));
  EXPECT_EQ(k8s.ForPath(path({"spec", "ports"})), (ListStrategy{true, "port"}));
  EXPECT_EQ(k8s.ForPath(path({"metadata", "finalizers"})), (ListStrategy{true, ""}));
  EXPECT_EQ(k8s.ForPath(path({"spec", "containers", "volumeMounts"})),
            (ListStrategy{true, "mountPath"}));
  EXPECT_EQ(k8s.ForPath(path({"spec", "template", "spec", "tolerations"})),
            (ListStrategy{false, ""}));
  EXPECT_FALSE(k8s.ForPath(path({"spec", "containers", "args"})).has_value());
}

}  // namespace
}  // namespace rc::apimachinery
