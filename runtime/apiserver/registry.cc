#include "rc/apiserver/registry.h"

#include <algorithm>

namespace rc::apiserver {

ResourceRegistry::ResourceRegistry(ResourceRegistry&& other) noexcept {
  std::lock_guard<std::mutex> lock(other.mu_);
  resources_ = std::move(other.resources_);
  graveyard_ = std::move(other.graveyard_);
}

ResourceRegistry& ResourceRegistry::operator=(ResourceRegistry&& other) noexcept {
  if (this != &other) {
    std::scoped_lock lock(mu_, other.mu_);
    resources_ = std::move(other.resources_);
    graveyard_ = std::move(other.graveyard_);
  }
  return *this;
}

void ResourceRegistry::Add(ResourceInfo info) {
  std::lock_guard<std::mutex> lock(mu_);
  resources_.push_back(std::make_unique<ResourceInfo>(std::move(info)));
}

const ResourceInfo* ResourceRegistry::Upsert(ResourceInfo info) {
  std::lock_guard<std::mutex> lock(mu_);
  auto entry = std::make_unique<ResourceInfo>(std::move(info));
  const ResourceInfo* out = entry.get();
  for (auto& r : resources_) {
    if (r->group == out->group && r->version == out->version && r->plural == out->plural) {
      graveyard_.push_back(std::move(r));
      r = std::move(entry);
      return out;
    }
  }
  resources_.push_back(std::move(entry));
  return out;
}

bool ResourceRegistry::Remove(const std::string& group, const std::string& version, const std::string& plural) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = resources_.begin(); it != resources_.end(); ++it) {
    if ((*it)->group == group && (*it)->version == version && (*it)->plural == plural) {
      graveyard_.push_back(std::move(*it));
      resources_.erase(it);
      return true;
    }
  }
  return false;
}

std::vector<const ResourceInfo*> ResourceRegistry::All() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<const ResourceInfo*> out;
  for (const auto& r : resources_) out.push_back(r.get());
  return out;
}

const ResourceInfo* ResourceRegistry::Find(const std::string& group, const std::string& version,
                                           const std::string& plural) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : resources_) {
    if (r->group == group && r->version == version && r->plural == plural) return r.get();
  }
  return nullptr;
}

const ResourceInfo* ResourceRegistry::FindByKind(const std::string& group,
                                                 const std::string& version,
                                                 const std::string& kind) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : resources_) {
    if (r->group == group && r->version == version && r->kind == kind) return r.get();
  }
  return nullptr;
}

std::vector<std::string> ResourceRegistry::Groups() const {
  std::vector<std::string> groups;
  for (const ResourceInfo* r : All()) {
    if (std::find(groups.begin(), groups.end(), r->group) == groups.end()) groups.push_back(r->group);
  }
  return groups;
}

std::vector<std::string> ResourceRegistry::Versions(const std::string& group) const {
  std::vector<std::string> versions;
  for (const ResourceInfo* r : All()) {
    if (r->group == group &&
        std::find(versions.begin(), versions.end(), r->version) == versions.end()) {
      versions.push_back(r->version);
    }
  }
  return versions;
}

std::vector<const ResourceInfo*> ResourceRegistry::InGroupVersion(const std::string& group,
                                                                  const std::string& version) const {
  std::vector<const ResourceInfo*> out;
  for (const ResourceInfo* r : All()) {
    if (r->group == group && r->version == version) out.push_back(r);
  }
  return out;
}

ResourceInfo FromSchema(const schema::ResourceSchema& s, const std::string& origin) {
  ResourceInfo r;
  r.group = s.group;
  r.version = s.version;
  r.kind = s.kind;
  r.plural = s.plural;
  r.singular = s.singular;
  r.short_names = s.short_names;
  r.categories = s.categories;
  r.namespaced = s.namespaced;
  r.has_status = s.has_status;
  r.has_scale = s.scale.has_value();
  if (s.scale) {
    r.scale_spec_replicas_path = s.scale->spec_replicas_path;
    r.scale_status_replicas_path = s.scale->status_replicas_path;
    r.scale_selector_path = s.scale->label_selector_path;
  }
  r.name_is_dns_label = s.name_format == schema::StringFormat::kDns1123Label;
  r.field_selectors = s.field_selectors;
  for (const auto& c : s.columns) {
    ColumnInfo col;
    col.name = c.name;
    col.type = c.type;
    col.format = c.format;
    col.description = c.description;
    col.priority = c.priority;
    col.source = c.json_path;
    if (c.type == "date" && !c.json_path.empty()) col.source = "$agepath:" + c.json_path;
    col.compute = c.compute;
    col.compute_value = c.compute_value;
    r.columns.push_back(std::move(col));
  }
  r.schema = std::make_shared<schema::ResourceSchema>(s);
  r.origin = origin;
  return r;
}

namespace {

ColumnInfo Name() { return {"Name", "string", "name", "Name must be unique within a namespace.", 0, "metadata.name"}; }
ColumnInfo Age() { return {"Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0, "$age"}; }
ColumnInfo Col(std::string name, std::string type, std::string source, int priority = 0,
               std::string description = "") {
  return {std::move(name), std::move(type), "", std::move(description), priority, std::move(source)};
}

ResourceInfo Make(std::string group, std::string version, std::string kind, std::string plural,
                  std::string singular, std::vector<std::string> short_names, bool namespaced) {
  ResourceInfo r;
  r.group = std::move(group);
  r.version = std::move(version);
  r.kind = std::move(kind);
  r.plural = std::move(plural);
  r.singular = std::move(singular);
  r.short_names = std::move(short_names);
  r.namespaced = namespaced;
  return r;
}

std::vector<ColumnInfo> WorkloadWide() {
  return {Col("Containers", "string", "$template.containers", 1),
          Col("Images", "string", "$template.images", 1),
          Col("Selector", "string", "$selector", 1)};
}

}  // namespace

ResourceRegistry BuiltinRegistry() {
  ResourceRegistry reg;

  // core/v1
  {
    auto r = Make("", "v1", "Namespace", "namespaces", "namespace", {"ns"}, false);
    r.has_status = true;
    r.name_is_dns_label = true;
    r.field_selectors = {"status.phase"};
    r.columns = {Name(), Col("Status", "string", "status.phase"), Age()};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "Pod", "pods", "pod", {"po"}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.field_selectors = {"spec.nodeName", "status.phase", "spec.restartPolicy",
                         "spec.schedulerName", "spec.serviceAccountName", "status.podIP",
                         "status.nominatedNodeName"};
    r.columns = {Name(),
                 Col("Ready", "string", "$pod.ready", 0, "The aggregate readiness state of this pod for accepting traffic."),
                 Col("Status", "string", "$pod.status", 0, "The aggregate status of the containers in this pod."),
                 Col("Restarts", "string", "$pod.restarts", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
                 Age(),
                 Col("IP", "string", "$none:status.podIP", 1, "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated."),
                 Col("Node", "string", "$pod.node", 1, "Name of the Node on which the Pod runs."),
                 Col("Nominated Node", "string", "$pod.nominated", 1, "Name of the node that the scheduler nominated for this pod."),
                 Col("Readiness Gates", "string", "$pod.gates", 1, "The readiness gates of the pod.")};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "Service", "services", "service", {"svc"}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.name_is_dns_label = true;
    r.columns = {Name(), Col("Type", "string", "spec.type"),
                 Col("Cluster-IP", "string", "$svc.clusterip"),
                 Col("External-IP", "string", "$svc.externalip"),
                 Col("Port(s)", "string", "$svc.ports"), Age(),
                 Col("Selector", "string", "$svc.selector", 1)};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "Endpoints", "endpoints", "endpoints", {"ep"}, true);
    r.columns = {Name(), Col("Endpoints", "string", "$endpoints"), Age()};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "Node", "nodes", "node", {"no"}, false);
    r.has_status = true;
    r.field_selectors = {"spec.unschedulable"};
    r.columns = {Name(), Col("Status", "string", "$node.status"), Col("Roles", "string", "$node.roles"),
                 Age(), Col("Version", "string", "status.nodeInfo.kubeletVersion"),
                 Col("Internal-IP", "string", "$node.internalip", 1),
                 Col("External-IP", "string", "$node.externalip", 1),
                 Col("OS-Image", "string", "status.nodeInfo.osImage", 1),
                 Col("Kernel-Version", "string", "status.nodeInfo.kernelVersion", 1),
                 Col("Container-Runtime", "string", "status.nodeInfo.containerRuntimeVersion", 1)};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "Event", "events", "event", {"ev"}, true);
    r.field_selectors = {"involvedObject.kind", "involvedObject.name", "involvedObject.namespace",
                         "involvedObject.uid", "reason", "type", "source"};
    r.columns = {Col("Last Seen", "string", "$event.lastseen"), Col("Type", "string", "type"),
                 Col("Reason", "string", "reason"), Col("Object", "string", "$event.object"),
                 Col("Message", "string", "message"),
                 Col("Subobject", "string", "involvedObject.fieldPath", 1),
                 Col("Source", "string", "$event.source", 1),
                 Col("Count", "string", "count", 1),
                 Col("Name", "string", "metadata.name", 1)};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "ConfigMap", "configmaps", "configmap", {"cm"}, true);
    r.columns = {Name(), Col("Data", "integer", "$count.data+binaryData"), Age()};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "Secret", "secrets", "secret", {}, true);
    r.field_selectors = {"type"};
    r.columns = {Name(), Col("Type", "string", "type"), Col("Data", "integer", "$count.data"), Age()};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", {"pv"}, false);
    r.has_status = true;
    r.columns = {Name(), Col("Capacity", "string", "spec.capacity.storage"),
                 Col("Access Modes", "string", "$pv.accessmodes"),
                 Col("Reclaim Policy", "string", "spec.persistentVolumeReclaimPolicy"),
                 Col("Status", "string", "status.phase"), Col("Claim", "string", "$pv.claim"),
                 Col("StorageClass", "string", "spec.storageClassName"),
                 Col("VolumeAttributesClass", "string", "spec.volumeAttributesClassName"),
                 Col("Reason", "string", "status.reason"), Age(),
                 Col("VolumeMode", "string", "spec.volumeMode", 1)};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
                  "persistentvolumeclaim", {"pvc"}, true);
    r.has_status = true;
    r.columns = {Name(), Col("Status", "string", "status.phase"),
                 Col("Volume", "string", "spec.volumeName"),
                 Col("Capacity", "string", "status.capacity.storage"),
                 Col("Access Modes", "string", "$pvc.accessmodes"),
                 Col("StorageClass", "string", "spec.storageClassName"),
                 Col("VolumeAttributesClass", "string", "spec.volumeAttributesClassName"), Age(),
                 Col("VolumeMode", "string", "spec.volumeMode", 1)};
    reg.Add(r);
  }
  {
    auto r = Make("", "v1", "ComponentStatus", "componentstatuses", "componentstatus", {"cs"}, false);
    r.columns = {Name(), Col("Status", "string", "$cs.status"), Col("Message", "string", "$cs.message"),
                 Col("Error", "string", "$cs.error")};
    reg.Add(r);
  }

  // apps/v1
  {
    auto r = Make("apps", "v1", "Deployment", "deployments", "deployment", {"deploy"}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.has_scale = true;
    r.columns = {Name(), Col("Ready", "string", "$ratio.status.readyReplicas/spec.replicas"),
                 Col("Up-to-date", "integer", "status.updatedReplicas"),
                 Col("Available", "integer", "status.availableReplicas"), Age()};
    for (auto& c : WorkloadWide()) r.columns.push_back(c);
    reg.Add(r);
  }
  {
    auto r = Make("apps", "v1", "ReplicaSet", "replicasets", "replicaset", {"rs"}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.has_scale = true;
    r.columns = {Name(), Col("Desired", "integer", "spec.replicas"),
                 Col("Current", "integer", "status.replicas"),
                 Col("Ready", "integer", "status.readyReplicas"), Age()};
    for (auto& c : WorkloadWide()) r.columns.push_back(c);
    reg.Add(r);
  }
  {
    auto r = Make("apps", "v1", "DaemonSet", "daemonsets", "daemonset", {"ds"}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.columns = {Name(), Col("Desired", "integer", "status.desiredNumberScheduled"),
                 Col("Current", "integer", "status.currentNumberScheduled"),
                 Col("Ready", "integer", "status.numberReady"),
                 Col("Up-to-date", "integer", "status.updatedNumberScheduled"),
                 Col("Available", "integer", "status.numberAvailable"),
                 Col("Node Selector", "string", "$ds.nodeselector"), Age()};
    for (auto& c : WorkloadWide()) r.columns.push_back(c);
    reg.Add(r);
  }
  {
    auto r = Make("apps", "v1", "StatefulSet", "statefulsets", "statefulset", {"sts"}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.has_scale = true;
    r.columns = {Name(), Col("Ready", "string", "$ratio.status.readyReplicas/spec.replicas"), Age(),
                 Col("Containers", "string", "$template.containers", 1),
                 Col("Images", "string", "$template.images", 1)};
    reg.Add(r);
  }

  // batch/v1
  {
    auto r = Make("batch", "v1", "Job", "jobs", "job", {}, true);
    r.categories = {"all"};
    r.has_status = true;
    r.columns = {Name(), Col("Status", "string", "$job.status"),
                 Col("Completions", "string", "$job.completions"),
                 Col("Duration", "string", "$job.duration"), Age()};
    for (auto& c : WorkloadWide()) r.columns.push_back(c);
    reg.Add(r);
  }

  // coordination.k8s.io/v1
  {
    auto r = Make("coordination.k8s.io", "v1", "Lease", "leases", "lease", {}, true);
    r.columns = {Name(), Col("Holder", "string", "spec.holderIdentity"), Age()};
    reg.Add(r);
  }
  return reg;
}

}  // namespace rc::apiserver
