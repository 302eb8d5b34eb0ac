#include "admission.h"

#include <set>

#include "rc/apimachinery/selector.h"
#include "rc/apimachinery/validation.h"
#include "rc/schema/algorithms.h"

namespace rc::apiserver {

namespace am = rc::apimachinery;

namespace {

void SetDefault(JsonValue& obj, std::string_view name, JsonValue value, JsonAlloc& a) {
  if (!obj.IsObject()) return;
  if (JsonValue* m = Member(obj, name); m && !m->IsNull()) return;
  Set(obj, name, std::move(value), a);
}

void DefaultString(JsonValue& obj, std::string_view name, std::string_view value, JsonAlloc& a) {
  SetDefault(obj, name, Str(value, a), a);
}

std::string ImageTag(std::string_view image) {
  if (image.find('@') != std::string_view::npos) return "@digest";
  size_t slash = image.rfind('/');
  size_t colon = image.rfind(':');
  if (colon == std::string_view::npos || (slash != std::string_view::npos && colon < slash)) return "";
  return std::string(image.substr(colon + 1));
}

void DefaultContainers(JsonValue* containers, JsonAlloc& a) {
  if (!containers || !containers->IsArray()) return;
  for (auto& c : containers->GetArray()) {
    if (!c.IsObject()) continue;
    std::string tag = ImageTag(StrAt(c, "image"));
    DefaultString(c, "imagePullPolicy", (tag.empty() || tag == "latest") ? "Always" : "IfNotPresent", a);
    DefaultString(c, "terminationMessagePath", "/dev/termination-log", a);
    DefaultString(c, "terminationMessagePolicy", "File", a);
    SetDefault(c, "resources", JsonValue(rapidjson::kObjectType), a);
    if (JsonValue* ports = Member(c, "ports"); ports && ports->IsArray()) {
      for (auto& p : ports->GetArray()) DefaultString(p, "protocol", "TCP", a);
    }
  }
}

void DefaultPodSpec(JsonValue& spec, JsonAlloc& a) {
  if (!spec.IsObject()) return;
  DefaultString(spec, "restartPolicy", "Always", a);
  DefaultString(spec, "dnsPolicy", "ClusterFirst", a);
  DefaultString(spec, "schedulerName", "default-scheduler", a);
  SetDefault(spec, "terminationGracePeriodSeconds", JsonValue(30), a);
  SetDefault(spec, "securityContext", JsonValue(rapidjson::kObjectType), a);
  SetDefault(spec, "enableServiceLinks", JsonValue(true), a);
  DefaultContainers(Member(spec, "containers"), a);
  DefaultContainers(Member(spec, "initContainers"), a);
}

void DefaultTemplate(JsonValue& obj, JsonAlloc& a) {
  JsonValue& spec = ObjectMember(obj, "spec", a);
  JsonValue& tmpl = ObjectMember(spec, "template", a);
  DefaultPodSpec(ObjectMember(tmpl, "spec", a), a);
}

void DefaultRollingUpdate(JsonValue& strategy, JsonAlloc& a, bool with_surge) {
  DefaultString(strategy, "type", "RollingUpdate", a);
  if (StrAt(strategy, "type") != "RollingUpdate") return;
  JsonValue& ru = ObjectMember(strategy, "rollingUpdate", a);
  if (with_surge) {
    DefaultString(ru, "maxUnavailable", "25%", a);
    DefaultString(ru, "maxSurge", "25%", a);
  } else {
    SetDefault(ru, "maxUnavailable", JsonValue(1), a);
    SetDefault(ru, "maxSurge", JsonValue(0), a);
  }
}

void Require(std::vector<StatusCause>& out, const JsonValue& obj, std::string_view path) {
  const JsonValue* v = Path(obj, path);
  bool missing = !v || v->IsNull() || (v->IsString() && v->GetStringLength() == 0) ||
                 (v->IsArray() && v->Empty());
  if (missing) out.push_back({"FieldValueRequired", "Required value", std::string(path)});
}

void CheckName(std::vector<StatusCause>& out, const std::string& value, const std::string& field,
               bool label) {
  auto errors = label ? am::IsDNS1123Label(value) : am::IsDNS1123Subdomain(value);
  for (auto& e : errors) {
    out.push_back({"FieldValueInvalid", "Invalid value: " + Quote(value) + ": " + e, field});
  }
}

void CheckLabels(std::vector<StatusCause>& out, const JsonValue* labels, const std::string& field) {
  if (!labels || labels->IsNull()) return;
  if (!labels->IsObject()) {
    out.push_back({"FieldValueInvalid", "Invalid value: must be a map of strings", field});
    return;
  }
  for (auto& m : labels->GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    for (auto& e : am::IsQualifiedName(key)) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Quote(key) + ": " + e, field});
    }
    if (!m.value.IsString()) {
      out.push_back({"FieldValueInvalid", "Invalid value: label values must be strings", field + "." + key});
      continue;
    }
    std::string value(m.value.GetString(), m.value.GetStringLength());
    for (auto& e : am::IsValidLabelValue(value)) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + Quote(value) + ": " + e, field});
    }
  }
}

void ValidateContainers(std::vector<StatusCause>& out, const JsonValue* containers,
                        const std::string& field, bool required) {
  if (!containers || !containers->IsArray() || containers->Empty()) {
    if (required) out.push_back({"FieldValueRequired", "Required value", field});
    return;
  }
  std::set<std::string> names;
  for (rapidjson::SizeType i = 0; i < containers->Size(); ++i) {
    const JsonValue& c = (*containers)[i];
    std::string at = field + "[" + std::to_string(i) + "]";
    std::string name = StrAt(c, "name");
    if (name.empty()) {
      out.push_back({"FieldValueRequired", "Required value", at + ".name"});
    } else {
      CheckName(out, name, at + ".name", true);
      if (!names.insert(name).second) {
        out.push_back({"FieldValueDuplicate", "Duplicate value: " + Quote(name), at + ".name"});
      }
    }
    if (StrAt(c, "image").empty()) out.push_back({"FieldValueRequired", "Required value", at + ".image"});
  }
}

void ValidatePodSpec(std::vector<StatusCause>& out, const JsonValue* spec, const std::string& field) {
  if (!spec || !spec->IsObject()) {
    out.push_back({"FieldValueRequired", "Required value", field});
    return;
  }
  ValidateContainers(out, Member(*spec, "containers"), field + ".containers", true);
  ValidateContainers(out, Member(*spec, "initContainers"), field + ".initContainers", false);
  std::string rp = StrAt(*spec, "restartPolicy");
  if (!rp.empty() && rp != "Always" && rp != "OnFailure" && rp != "Never") {
    out.push_back({"FieldValueNotSupported",
                   "Unsupported value: " + Quote(rp) + ": supported values: \"Always\", \"OnFailure\", \"Never\"",
                   field + ".restartPolicy"});
  }
}

std::string LabelsText(const JsonValue* labels) {
  if (!labels || !labels->IsObject()) return "null";
  std::string out = "map[string]string{";
  bool first = true;
  for (auto& m : labels->GetObject()) {
    out += (first ? "" : ", ") + Quote(m.name.GetString()) + ":" + (m.value.IsString() ? Quote(m.value.GetString()) : ToJson(m.value));
    first = false;
  }
  return out + "}";
}

// Workloads: selector required, must match the template labels, immutable on update.
void ValidateWorkload(std::vector<StatusCause>& out, const JsonValue& obj, const JsonValue* old) {
  const JsonValue* selector = Path(obj, "spec.selector");
  if (!selector || !selector->IsObject()) {
    out.push_back({"FieldValueRequired", "Required value", "spec.selector"});
  } else {
    auto parsed = am::LabelSelectorFromJson(*selector);
    if (!parsed.ok()) {
      out.push_back({"FieldValueInvalid", "Invalid value: " + parsed.status().message(), "spec.selector"});
    } else if (parsed->Empty()) {
      out.push_back({"FieldValueInvalid", "Invalid value: empty selector is invalid for deployment", "spec.selector"});
    } else if (!parsed->Matches(Path(obj, "spec.template.metadata.labels"))) {
      out.push_back({"FieldValueInvalid",
                     "Invalid value: " + LabelsText(Path(obj, "spec.template.metadata.labels")) +
                         ": `selector` does not match template `labels`",
                     "spec.template.metadata.labels"});
    }
    if (old) {
      const JsonValue* old_selector = Path(*old, "spec.selector");
      if (old_selector && *old_selector != *selector) {
        out.push_back({"FieldValueInvalid", "Invalid value: " + ToJson(*selector) + ": field is immutable",
                       "spec.selector"});
      }
    }
  }
  CheckLabels(out, Path(obj, "spec.template.metadata.labels"), "spec.template.metadata.labels");
  if (auto replicas = IntAt(obj, "spec.replicas"); replicas && *replicas < 0) {
    out.push_back({"FieldValueInvalid", "Invalid value: " + std::to_string(*replicas) +
                                            ": must be greater than or equal to 0",
                   "spec.replicas"});
  }
  ValidatePodSpec(out, Path(obj, "spec.template.spec"), "spec.template.spec");
}

}  // namespace

void ApplyDefaults(const ResourceInfo& r, JsonValue& obj, JsonAlloc& a) {
  if (r.kind == "Namespace" && r.group.empty()) {
    // NamespaceDefaultLabelName: API machinery, not schema.
    JsonValue& meta = ObjectMember(obj, "metadata", a);
    JsonValue& labels = ObjectMember(meta, "labels", a);
    std::string name = StrAt(meta, "name");
    if (!name.empty()) Set(labels, "kubernetes.io/metadata.name", Str(name, a), a);
  }
  if (r.schema && r.schema->root) {
    // Compiled DSL schema: constant and computed defaults of every declared field.
    schema::ApplyDefaults(*r.schema->root, obj, a);
    return;
  }
  const std::string& kind = r.kind;
  if (kind == "Pod") {
    DefaultPodSpec(ObjectMember(obj, "spec", a), a);
  } else if (kind == "Deployment") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    SetDefault(spec, "replicas", JsonValue(1), a);
    SetDefault(spec, "revisionHistoryLimit", JsonValue(10), a);
    SetDefault(spec, "progressDeadlineSeconds", JsonValue(600), a);
    DefaultRollingUpdate(ObjectMember(spec, "strategy", a), a, true);
    DefaultTemplate(obj, a);
  } else if (kind == "ReplicaSet") {
    SetDefault(ObjectMember(obj, "spec", a), "replicas", JsonValue(1), a);
    DefaultTemplate(obj, a);
  } else if (kind == "DaemonSet") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    SetDefault(spec, "revisionHistoryLimit", JsonValue(10), a);
    DefaultRollingUpdate(ObjectMember(spec, "updateStrategy", a), a, false);
    DefaultTemplate(obj, a);
  } else if (kind == "StatefulSet") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    SetDefault(spec, "replicas", JsonValue(1), a);
    SetDefault(spec, "revisionHistoryLimit", JsonValue(10), a);
    DefaultString(spec, "podManagementPolicy", "OrderedReady", a);
    JsonValue& us = ObjectMember(spec, "updateStrategy", a);
    DefaultString(us, "type", "RollingUpdate", a);
    if (StrAt(us, "type") == "RollingUpdate") SetDefault(ObjectMember(us, "rollingUpdate", a), "partition", JsonValue(0), a);
    JsonValue& retention = ObjectMember(spec, "persistentVolumeClaimRetentionPolicy", a);
    DefaultString(retention, "whenDeleted", "Retain", a);
    DefaultString(retention, "whenScaled", "Retain", a);
    DefaultTemplate(obj, a);
  } else if (kind == "Job") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    SetDefault(spec, "parallelism", JsonValue(1), a);
    SetDefault(spec, "completions", JsonValue(1), a);
    SetDefault(spec, "backoffLimit", JsonValue(6), a);
    DefaultString(spec, "completionMode", "NonIndexed", a);
    SetDefault(spec, "suspend", JsonValue(false), a);
    JsonValue& tmpl = ObjectMember(spec, "template", a);
    JsonValue& pod_spec = ObjectMember(tmpl, "spec", a);
    DefaultPodSpec(pod_spec, a);
  } else if (kind == "Service") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    DefaultString(spec, "type", "ClusterIP", a);
    DefaultString(spec, "sessionAffinity", "None", a);
    if (StrAt(spec, "type") != "ExternalName") {
      DefaultString(spec, "internalTrafficPolicy", "Cluster", a);
      JsonValue families(rapidjson::kArrayType);
      families.PushBack(Str("IPv4", a), a);
      SetDefault(spec, "ipFamilies", std::move(families), a);
      DefaultString(spec, "ipFamilyPolicy", "SingleStack", a);
    }
    if (JsonValue* ports = Member(spec, "ports"); ports && ports->IsArray()) {
      for (auto& p : ports->GetArray()) {
        if (!p.IsObject()) continue;
        DefaultString(p, "protocol", "TCP", a);
        if (const JsonValue* port = Member(p, "port"); port && !Member(p, "targetPort")) {
          Set(p, "targetPort", JsonValue(*port, a), a);
        }
      }
    }
  } else if (kind == "Namespace") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    if (!Member(spec, "finalizers")) {
      JsonValue finalizers(rapidjson::kArrayType);
      finalizers.PushBack(Str("kubernetes", a), a);
      Set(spec, "finalizers", std::move(finalizers), a);
    }
    JsonValue& meta = ObjectMember(obj, "metadata", a);
    JsonValue& labels = ObjectMember(meta, "labels", a);
    std::string name = StrAt(meta, "name");
    if (!name.empty()) Set(labels, "kubernetes.io/metadata.name", Str(name, a), a);
  } else if (kind == "Secret") {
    DefaultString(obj, "type", "Opaque", a);
  } else if (kind == "PersistentVolume") {
    JsonValue& spec = ObjectMember(obj, "spec", a);
    DefaultString(spec, "persistentVolumeReclaimPolicy", "Retain", a);
    DefaultString(spec, "volumeMode", "Filesystem", a);
  } else if (kind == "PersistentVolumeClaim") {
    DefaultString(ObjectMember(obj, "spec", a), "volumeMode", "Filesystem", a);
  }
}

void ResetStatusOnCreate(const ResourceInfo& r, JsonValue& obj, JsonAlloc& a) {
  if (!r.has_status) return;
  JsonValue status(rapidjson::kObjectType);
  if (r.kind == "Pod") {
    status.AddMember("phase", "Pending", a);
    status.AddMember("qosClass", "BestEffort", a);
  } else if (r.kind == "Namespace") {
    status.AddMember("phase", "Active", a);
  } else if (r.kind == "PersistentVolume" || r.kind == "PersistentVolumeClaim") {
    status.AddMember("phase", "Pending", a);
  } else if (r.kind == "Node" || r.kind == "Service") {
    // Nodes report their own status at registration; keep what the client sent.
    if (const JsonValue* s = Member(obj, "status")) status.CopyFrom(*s, a);
    if (r.kind == "Service" && !Member(status, "loadBalancer")) {
      status.AddMember("loadBalancer", JsonValue(rapidjson::kObjectType), a);
    }
  }
  Set(obj, "status", std::move(status), a);
}

std::vector<StatusCause> Validate(const ResourceInfo& r, const JsonValue& obj, const JsonValue* old) {
  std::vector<StatusCause> out;
  std::string name = StrAt(obj, "metadata.name");
  if (name.empty()) {
    out.push_back({"FieldValueRequired", "name or generateName is required", "metadata.name"});
  } else {
    CheckName(out, name, "metadata.name", r.name_is_dns_label);
  }
  CheckLabels(out, Path(obj, "metadata.labels"), "metadata.labels");
  if (const JsonValue* ann = Path(obj, "metadata.annotations"); ann && !ann->IsNull()) {
    if (!ann->IsObject()) {
      out.push_back({"FieldValueInvalid", "Invalid value: must be a map of strings", "metadata.annotations"});
    } else {
      size_t total = 0;
      for (auto& m : ann->GetObject()) {
        if (!m.value.IsString()) {
          out.push_back({"FieldValueInvalid", "Invalid value: annotation values must be strings",
                         "metadata.annotations." + std::string(m.name.GetString())});
        } else {
          total += m.name.GetStringLength() + m.value.GetStringLength();
        }
      }
      if (total > 256 * 1024) {
        out.push_back({"FieldValueTooLong", "Too long: must have at most 262144 bytes", "metadata.annotations"});
      }
    }
  }

  if (r.schema && r.schema->root) {
    for (auto& v : schema::Validate(*r.schema, obj, old)) out.push_back({v.reason, v.message, v.field});
    return out;
  }
  const std::string& kind = r.kind;
  if (kind == "Pod") {
    ValidatePodSpec(out, Member(obj, "spec"), "spec");
  } else if (kind == "Deployment" || kind == "ReplicaSet" || kind == "DaemonSet" || kind == "StatefulSet") {
    ValidateWorkload(out, obj, old);
  } else if (kind == "Job") {
    ValidatePodSpec(out, Path(obj, "spec.template.spec"), "spec.template.spec");
    std::string rp = StrAt(obj, "spec.template.spec.restartPolicy");
    if (rp != "OnFailure" && rp != "Never") {
      out.push_back({"FieldValueNotSupported",
                     "Unsupported value: " + Quote(rp) + ": supported values: \"OnFailure\", \"Never\"",
                     "spec.template.spec.restartPolicy"});
    }
  } else if (kind == "Service") {
    std::string type = StrAt(obj, "spec.type");
    if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" && type != "ExternalName") {
      out.push_back({"FieldValueNotSupported",
                     "Unsupported value: " + Quote(type) +
                         ": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"",
                     "spec.type"});
    }
    if (type != "ExternalName" && StrAt(obj, "spec.clusterIP") != "None") Require(out, obj, "spec.ports");
    if (const JsonValue* ports = Path(obj, "spec.ports"); ports && ports->IsArray()) {
      for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
        auto port = IntAt((*ports)[i], "port");
        if (!port || *port < 1 || *port > 65535) {
          out.push_back({"FieldValueInvalid", "Invalid value: must be between 1 and 65535, inclusive",
                         "spec.ports[" + std::to_string(i) + "].port"});
        }
        if (ports->Size() > 1 && StrAt((*ports)[i], "name").empty()) {
          out.push_back({"FieldValueRequired", "Required value",
                         "spec.ports[" + std::to_string(i) + "].name"});
        }
      }
    }
  } else if (kind == "ConfigMap" || kind == "Secret") {
    for (const char* field : {"data", "binaryData", "stringData"}) {
      const JsonValue* data = Member(obj, field);
      if (!data || data->IsNull()) continue;
      if (!data->IsObject()) {
        out.push_back({"FieldValueInvalid", "Invalid value: must be a map", field});
        continue;
      }
      for (auto& m : data->GetObject()) {
        if (!m.value.IsString()) {
          out.push_back({"FieldValueInvalid", "Invalid value: must be a string",
                         std::string(field) + "[" + m.name.GetString() + "]"});
        }
      }
    }
  } else if (kind == "Lease") {
    if (auto d = IntAt(obj, "spec.leaseDurationSeconds"); d && *d <= 0) {
      out.push_back({"FieldValueInvalid", "Invalid value: must be greater than 0", "spec.leaseDurationSeconds"});
    }
  }
  return out;
}

}  // namespace rc::apiserver
