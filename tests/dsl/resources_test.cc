// The built-in resource files (resources/*.rc) against what the API server served from its
// hand-written table: same names, scope, subresources, field selectors and table columns.
#include <gtest/gtest.h>

#include <filesystem>
#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "rc/compiler/program.h"

namespace rc::compiler {
namespace {

namespace fs = std::filesystem;

std::vector<schema::ResourceSchema> LoadBuiltins() {
  std::vector<std::string> files;
  for (auto& e : fs::directory_iterator(RC_RESOURCES_DIR)) {
    if (e.path().extension() == ".rc" && e.path().filename() != "meta_v1.rc") files.push_back(e.path().string());
  }
  dsl::Diagnostics diags;
  auto program = CheckFiles(files, diags);
  EXPECT_FALSE(diags.HasErrors()) << diags.FormatText();
  return LowerResources(*program);
}

// One line per resource and per column, compared with builtin_resources.expected (written from
// the hand-written table the DSL files replaced; RC_UPDATE_GOLDENS=1 rewrites it).
std::string Describe(const std::vector<schema::ResourceSchema>& schemas) {
  std::vector<std::string> lines;
  auto join = [](const std::vector<std::string>& v) {
    std::string out;
    for (auto& x : v) out += (out.empty() ? "" : ",") + x;
    return out;
  };
  for (auto& s : schemas) {
    std::string line = (s.group.empty() ? "core" : s.group) + "/" + s.version + " " + s.kind + " plural=" + s.plural +
                       " singular=" + s.singular + " short=" + join(s.short_names) + " categories=" + join(s.categories) +
                       " namespaced=" + (s.namespaced ? "1" : "0") + " status=" + (s.has_status ? "1" : "0") +
                       " scale=" + (s.scale ? "1" : "0") +
                       " dnslabel=" + (s.name_format == schema::StringFormat::kDns1123Label ? "1" : "0") +
                       " fieldSelectors=" + join(s.field_selectors) + "\n";
    for (auto& c : s.columns) line += "  column " + c.name + (c.priority ? " (wide)" : "") + "\n";
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (auto& l : lines) out += l;
  return out;
}

TEST(BuiltinResources, MatchTheServedTable) {
  std::string actual = Describe(LoadBuiltins());
  std::string path = std::string(RC_GOLDEN_FILE);
  if (getenv("RC_UPDATE_GOLDENS")) {
    std::ofstream(path) << actual;
    return;
  }
  std::ifstream in(path);
  std::stringstream expected;
  expected << in.rdbuf();
  EXPECT_EQ(expected.str(), actual);
}

const schema::Field* FieldAt(const schema::ResourceSchema& s, const std::string& dotted) {
  const schema::Type* t = s.root.get();
  const schema::Field* f = nullptr;
  size_t start = 0;
  while (t) {
    size_t dot = dotted.find('.', start);
    f = t->FindField(dotted.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (!f || dot == std::string::npos) return f;
    t = f->type.get();
    if (t && t->kind == schema::TypeKind::kList) t = t->element.get();
    start = dot + 1;
  }
  return nullptr;
}

TEST(BuiltinResources, DefaultsAndConstraintsLanded) {
  auto schemas = LoadBuiltins();
  auto find = [&](const std::string& kind) -> const schema::ResourceSchema& {
    for (auto& s : schemas) if (s.kind == kind) return s;
    static schema::ResourceSchema none;
    ADD_FAILURE() << "no " << kind;
    return none;
  };
  const auto* restart = FieldAt(find("Pod"), "spec.restartPolicy");
  ASSERT_TRUE(restart);
  EXPECT_EQ(restart->default_json.value_or(""), "\"Always\"");
  const auto* containers = FieldAt(find("Pod"), "spec.containers");
  ASSERT_TRUE(containers);
  EXPECT_TRUE(containers->required);
  EXPECT_EQ(containers->type->list_map_keys, std::vector<std::string>{"name"});
  const auto* replicas = FieldAt(find("Deployment"), "spec.replicas");
  ASSERT_TRUE(replicas);
  EXPECT_EQ(replicas->type->constraints.minimum.value_or(-1), 0);
  EXPECT_EQ(replicas->default_json.value_or(""), "1");
  const auto* selector = FieldAt(find("Deployment"), "spec.selector");
  ASSERT_TRUE(selector);
  EXPECT_TRUE(selector->immutable);
  // A computed default (from the image tag) is left for compiled code.
  const auto* pull = FieldAt(find("Pod"), "spec.containers.imagePullPolicy");
  ASSERT_TRUE(pull);
  EXPECT_FALSE(pull->default_json.has_value());
  EXPECT_EQ(FieldAt(find("Service"), "spec.type")->default_json.value_or(""), "\"ClusterIP\"");
}


// The registry the API server served before resources/*.rc replaced it (runtime/apiserver/
// registry.cc BuiltinRegistry() at f22a485^), written out so that the parity does not depend on
// a golden file RC_UPDATE_GOLDENS can rewrite. Columns: name, 1 for -o wide.
struct Expected {
  std::string group, kind, plural, singular;
  std::vector<std::string> short_names, categories;
  bool namespaced, has_status, has_scale, dns_label;
  std::vector<std::string> field_selectors;
  std::vector<std::pair<std::string, int>> columns;
};

std::vector<std::pair<std::string, int>> WithWorkloadWide(std::vector<std::pair<std::string, int>> c) {
  c.insert(c.end(), {{"Containers", 1}, {"Images", 1}, {"Selector", 1}});
  return c;
}

const std::vector<Expected>& ReplacedRegistry() {
  static const std::vector<Expected> kAll = {
      {"", "Namespace", "namespaces", "namespace", {"ns"}, {}, false, true, false, true, {"status.phase"},
       {{"Name", 0}, {"Status", 0}, {"Age", 0}}},
      {"", "Pod", "pods", "pod", {"po"}, {"all"}, true, true, false, false,
       {"spec.nodeName", "status.phase", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "status.podIP", "status.nominatedNodeName"},
       {{"Name", 0}, {"Ready", 0}, {"Status", 0}, {"Restarts", 0}, {"Age", 0}, {"IP", 1}, {"Node", 1},
        {"Nominated Node", 1}, {"Readiness Gates", 1}}},
      {"", "Service", "services", "service", {"svc"}, {"all"}, true, true, false, true, {},
       {{"Name", 0}, {"Type", 0}, {"Cluster-IP", 0}, {"External-IP", 0}, {"Port(s)", 0}, {"Age", 0}, {"Selector", 1}}},
      {"", "Endpoints", "endpoints", "endpoints", {"ep"}, {}, true, false, false, false, {},
       {{"Name", 0}, {"Endpoints", 0}, {"Age", 0}}},
      {"", "Node", "nodes", "node", {"no"}, {}, false, true, false, false, {"spec.unschedulable"},
       {{"Name", 0}, {"Status", 0}, {"Roles", 0}, {"Age", 0}, {"Version", 0}, {"Internal-IP", 1}, {"External-IP", 1},
        {"OS-Image", 1}, {"Kernel-Version", 1}, {"Container-Runtime", 1}}},
      {"", "Event", "events", "event", {"ev"}, {}, true, false, false, false,
       {"involvedObject.kind", "involvedObject.name", "involvedObject.namespace", "involvedObject.uid", "reason",
        "type", "source"},
       {{"Last Seen", 0}, {"Type", 0}, {"Reason", 0}, {"Object", 0}, {"Message", 0}, {"Subobject", 1},
        {"Source", 1}, {"Count", 1}, {"Name", 1}}},
      {"", "ConfigMap", "configmaps", "configmap", {"cm"}, {}, true, false, false, false, {},
       {{"Name", 0}, {"Data", 0}, {"Age", 0}}},
      {"", "Secret", "secrets", "secret", {}, {}, true, false, false, false, {"type"},
       {{"Name", 0}, {"Type", 0}, {"Data", 0}, {"Age", 0}}},
      {"", "PersistentVolume", "persistentvolumes", "persistentvolume", {"pv"}, {}, false, true, false, false, {},
       {{"Name", 0}, {"Capacity", 0}, {"Access Modes", 0}, {"Reclaim Policy", 0}, {"Status", 0}, {"Claim", 0},
        {"StorageClass", 0}, {"VolumeAttributesClass", 0}, {"Reason", 0}, {"Age", 0}, {"VolumeMode", 1}}},
      {"", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", {"pvc"}, {}, true, true, false,
       false, {},
       {{"Name", 0}, {"Status", 0}, {"Volume", 0}, {"Capacity", 0}, {"Access Modes", 0}, {"StorageClass", 0},
        {"VolumeAttributesClass", 0}, {"Age", 0}, {"VolumeMode", 1}}},
      {"", "ComponentStatus", "componentstatuses", "componentstatus", {"cs"}, {}, false, false, false, false, {},
       {{"Name", 0}, {"Status", 0}, {"Message", 0}, {"Error", 0}}},
      {"apps", "Deployment", "deployments", "deployment", {"deploy"}, {"all"}, true, true, true, false, {},
       WithWorkloadWide({{"Name", 0}, {"Ready", 0}, {"Up-to-date", 0}, {"Available", 0}, {"Age", 0}})},
      {"apps", "ReplicaSet", "replicasets", "replicaset", {"rs"}, {"all"}, true, true, true, false, {},
       WithWorkloadWide({{"Name", 0}, {"Desired", 0}, {"Current", 0}, {"Ready", 0}, {"Age", 0}})},
      {"apps", "DaemonSet", "daemonsets", "daemonset", {"ds"}, {"all"}, true, true, false, false, {},
       WithWorkloadWide({{"Name", 0}, {"Desired", 0}, {"Current", 0}, {"Ready", 0}, {"Up-to-date", 0},
                         {"Available", 0}, {"Node Selector", 0}, {"Age", 0}})},
      {"apps", "StatefulSet", "statefulsets", "statefulset", {"sts"}, {"all"}, true, true, true, false, {},
       {{"Name", 0}, {"Ready", 0}, {"Age", 0}, {"Containers", 1}, {"Images", 1}}},
      {"batch", "Job", "jobs", "job", {}, {"all"}, true, true, false, false, {},
       WithWorkloadWide({{"Name", 0}, {"Status", 0}, {"Completions", 0}, {"Duration", 0}, {"Age", 0}})},
      {"coordination.k8s.io", "Lease", "leases", "lease", {}, {}, true, false, false, false, {},
       {{"Name", 0}, {"Holder", 0}, {"Age", 0}}},
  };
  return kAll;
}

TEST(BuiltinResources, SameRegistryAsTheReplacedTable) {
  auto schemas = LoadBuiltins();
  // rc's own types (group rc.dev, e.g. Controller) came after the replaced table.
  size_t kubernetes_types = 0;
  for (auto& s : schemas) kubernetes_types += s.group != "rc.dev";
  EXPECT_EQ(kubernetes_types, ReplacedRegistry().size());
  for (const Expected& e : ReplacedRegistry()) {
    SCOPED_TRACE(e.kind);
    const schema::ResourceSchema* s = nullptr;
    for (auto& x : schemas) if (x.group == e.group && x.kind == e.kind) s = &x;
    ASSERT_TRUE(s) << "no lowered schema for " << e.group << "/" << e.kind;
    EXPECT_EQ(s->version, "v1");
    EXPECT_EQ(s->plural, e.plural);
    EXPECT_EQ(s->singular, e.singular);
    EXPECT_EQ(s->short_names, e.short_names);
    EXPECT_EQ(s->categories, e.categories);
    EXPECT_EQ(s->namespaced, e.namespaced);
    EXPECT_EQ(s->has_status, e.has_status);
    EXPECT_EQ(s->scale.has_value(), e.has_scale);
    EXPECT_EQ(s->name_format == schema::StringFormat::kDns1123Label, e.dns_label);
    EXPECT_EQ(s->field_selectors, e.field_selectors);
    std::vector<std::pair<std::string, int>> columns;
    for (auto& c : s->columns) columns.emplace_back(c.name, c.priority);
    EXPECT_EQ(columns, e.columns);
    if (s->scale) {
      // The replaced table's /scale read spec.replicas, status.replicas and the spec.selector object.
      EXPECT_EQ(s->scale->spec_replicas_path, "spec.replicas");
      EXPECT_EQ(s->scale->status_replicas_path, "status.replicas");
      EXPECT_EQ(s->scale->label_selector_path, "spec.selector");
    }
  }
}

const schema::ResourceSchema& Find(const std::vector<schema::ResourceSchema>& schemas, const std::string& kind) {
  for (auto& s : schemas) if (s.kind == kind) return s;
  static schema::ResourceSchema none;
  ADD_FAILURE() << "no " << kind;
  return none;
}

// Strategic merge patch keys (x-kubernetes-list-map-keys) where k8s.io/api has a patch merge key.
TEST(BuiltinResources, ListMapKeysFollowThePatchMergeKeys) {
  auto schemas = LoadBuiltins();
  struct Case { std::string kind, path; std::vector<std::string> keys; };
  const std::vector<Case> cases = {
      {"Pod", "spec.containers", {"name"}},
      {"Pod", "spec.initContainers", {"name"}},
      {"Pod", "spec.containers.ports", {"containerPort", "protocol"}},
      {"Pod", "spec.containers.env", {"name"}},
      {"Pod", "spec.containers.volumeMounts", {"mountPath"}},
      {"Pod", "spec.volumes", {"name"}},
      {"Pod", "spec.imagePullSecrets", {"name"}},
      {"Pod", "spec.hostAliases", {"ip"}},
      {"Pod", "spec.tolerations", {}},  // atomic
      {"Pod", "status.conditions", {"type"}},
      {"Pod", "status.podIPs", {"ip"}},
      {"Deployment", "spec.template.spec.containers", {"name"}},
      {"Deployment", "status.conditions", {"type"}},
      {"Job", "status.conditions", {"type"}},
      {"Service", "spec.ports", {"port", "protocol"}},
      {"Node", "status.conditions", {"type"}},
  };
  for (auto& c : cases) {
    const auto* f = FieldAt(Find(schemas, c.kind), c.path);
    ASSERT_TRUE(f) << c.kind << " " << c.path;
    ASSERT_EQ(f->type->kind, schema::TypeKind::kList) << c.kind << " " << c.path;
    EXPECT_EQ(f->type->list_map_keys, c.keys) << c.kind << " " << c.path;
  }
}

// The constant defaults the replaced admission.cc applied.
TEST(BuiltinResources, DefaultsOfTheReplacedAdmission) {
  auto schemas = LoadBuiltins();
  struct Case { std::string kind, path, json; };
  const std::vector<Case> cases = {
      {"Pod", "spec.restartPolicy", "\"Always\""},
      {"Pod", "spec.dnsPolicy", "\"ClusterFirst\""},
      {"Pod", "spec.terminationGracePeriodSeconds", "30"},
      {"Pod", "spec.schedulerName", "\"default-scheduler\""},
      {"Pod", "spec.enableServiceLinks", "true"},
      {"Pod", "spec.securityContext", "{}"},
      {"Pod", "spec.containers.terminationMessagePath", "\"/dev/termination-log\""},
      {"Pod", "spec.containers.terminationMessagePolicy", "\"File\""},
      {"Pod", "spec.containers.resources", "{}"},
      {"Pod", "spec.containers.ports.protocol", "\"TCP\""},
      {"Pod", "status.phase", "\"Pending\""},
      {"Deployment", "spec.replicas", "1"},
      {"Deployment", "spec.revisionHistoryLimit", "10"},
      {"Deployment", "spec.progressDeadlineSeconds", "600"},
      {"Deployment", "spec.strategy.type", "\"RollingUpdate\""},
      {"Deployment", "spec.strategy.rollingUpdate.maxUnavailable", "\"25%\""},
      {"Deployment", "spec.strategy.rollingUpdate.maxSurge", "\"25%\""},
      {"Deployment", "spec.template.spec.restartPolicy", "\"Always\""},
      {"ReplicaSet", "spec.replicas", "1"},
      {"DaemonSet", "spec.revisionHistoryLimit", "10"},
      {"DaemonSet", "spec.updateStrategy.type", "\"RollingUpdate\""},
      {"DaemonSet", "spec.updateStrategy.rollingUpdate.maxUnavailable", "1"},
      {"DaemonSet", "spec.updateStrategy.rollingUpdate.maxSurge", "0"},
      {"StatefulSet", "spec.replicas", "1"},
      {"StatefulSet", "spec.podManagementPolicy", "\"OrderedReady\""},
      {"StatefulSet", "spec.updateStrategy.rollingUpdate.partition", "0"},
      {"StatefulSet", "spec.persistentVolumeClaimRetentionPolicy.whenDeleted", "\"Retain\""},
      {"Job", "spec.parallelism", "1"},
      {"Job", "spec.completions", "1"},
      {"Job", "spec.backoffLimit", "6"},
      {"Job", "spec.completionMode", "\"NonIndexed\""},
      {"Job", "spec.suspend", "false"},
      {"Service", "spec.type", "\"ClusterIP\""},
      {"Service", "spec.sessionAffinity", "\"None\""},
      {"Service", "spec.ports.protocol", "\"TCP\""},
      {"Namespace", "status.phase", "\"Active\""},
      {"Secret", "type", "\"Opaque\""},
      {"PersistentVolume", "spec.persistentVolumeReclaimPolicy", "\"Retain\""},
      {"PersistentVolume", "spec.volumeMode", "\"Filesystem\""},
      {"PersistentVolumeClaim", "spec.volumeMode", "\"Filesystem\""},
  };
  for (auto& c : cases) {
    const auto* f = FieldAt(Find(schemas, c.kind), c.path);
    ASSERT_TRUE(f) << c.kind << " " << c.path;
    EXPECT_EQ(f->default_json.value_or("<none>"), c.json) << c.kind << " " << c.path;
  }
  // Defaults that read sibling fields are compiled, not constants.
  for (auto [kind, path] : std::vector<std::pair<std::string, std::string>>{
           {"Service", "spec.ports.targetPort"}, {"Service", "spec.internalTrafficPolicy"},
           {"Deployment", "spec.template.spec.containers.imagePullPolicy"}}) {
    const auto* f = FieldAt(Find(schemas, kind), path);
    ASSERT_TRUE(f) << kind << " " << path;
    EXPECT_FALSE(f->default_json.has_value()) << kind << " " << path;
  }
}

// The validations the replaced admission.cc made, as schema constraints.
TEST(BuiltinResources, ConstraintsOfTheReplacedAdmission) {
  auto schemas = LoadBuiltins();
  const auto& pod = Find(schemas, "Pod");
  EXPECT_TRUE(FieldAt(pod, "spec")->required);
  EXPECT_TRUE(FieldAt(pod, "spec.containers.name")->required);
  EXPECT_EQ(FieldAt(pod, "spec.containers.name")->type->constraints.format, schema::StringFormat::kDns1123Label);
  EXPECT_EQ(FieldAt(pod, "spec.initContainers.name")->type->constraints.format, schema::StringFormat::kDns1123Label);
  EXPECT_TRUE(FieldAt(pod, "spec.containers.image")->required);
  EXPECT_EQ(FieldAt(pod, "spec.restartPolicy")->type->enum_values,
            (std::vector<std::string>{"Always", "OnFailure", "Never"}));
  EXPECT_EQ(FieldAt(pod, "spec.terminationGracePeriodSeconds")->type->constraints.minimum.value_or(-1), 0);
  for (const char* kind : {"Deployment", "ReplicaSet", "StatefulSet"}) {
    const auto* replicas = FieldAt(Find(schemas, kind), "spec.replicas");
    ASSERT_TRUE(replicas) << kind;
    EXPECT_EQ(replicas->type->constraints.minimum.value_or(-1), 0) << kind;
  }
  for (const char* kind : {"Deployment", "ReplicaSet", "DaemonSet", "StatefulSet"}) {
    const auto& s = Find(schemas, kind);
    EXPECT_TRUE(FieldAt(s, "spec.selector")->required) << kind;
    EXPECT_TRUE(FieldAt(s, "spec.selector")->immutable) << kind;
    EXPECT_TRUE(FieldAt(s, "spec.template")->required) << kind;
    // Selector must match the template labels; an empty selector is rejected.
    EXPECT_EQ(FieldAt(s, "spec")->type->rules.size(), 2u) << kind;
  }
  const auto& svc = Find(schemas, "Service");
  EXPECT_EQ(FieldAt(svc, "spec.type")->type->enum_values,
            (std::vector<std::string>{"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}));
  EXPECT_EQ(FieldAt(svc, "spec.ports.port")->type->constraints.minimum.value_or(-1), 1);
  EXPECT_EQ(FieldAt(svc, "spec.ports.port")->type->constraints.maximum.value_or(-1), 65535);
  EXPECT_EQ(FieldAt(Find(schemas, "Lease"), "spec.leaseDurationSeconds")->type->constraints.minimum.value_or(-1), 1);
  EXPECT_EQ(FieldAt(Find(schemas, "Job"), "spec.backoffLimit")->type->constraints.minimum.value_or(-1), 0);
}

}  // namespace
}  // namespace rc::compiler
