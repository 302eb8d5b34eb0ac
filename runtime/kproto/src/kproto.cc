// Kubernetes protobuf bodies -> JSON. A generic converter over protobuf reflection: every message is
// an object of its fields (proto field name = JSON name), plus a small table of message types with
// a custom JSON form (Time, MicroTime, Duration, Quantity, IntOrString, RawExtension, FieldsV1) and
// a table of fields whose zero value must be kept (Go pointer fields).
#include "rc/kproto/kproto.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <google/protobuf/unknown_field_set.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "k8s.io/api/apps/v1/generated.pb.h"
#include "k8s.io/api/autoscaling/v1/generated.pb.h"
#include "k8s.io/api/batch/v1/generated.pb.h"
#include "k8s.io/api/coordination/v1/generated.pb.h"
#include "k8s.io/api/core/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/runtime/generated.pb.h"

namespace rc::kproto {
namespace {

namespace pb = google::protobuf;
using Alloc = rapidjson::Document::AllocatorType;
using rapidjson::Value;

constexpr std::string_view kMagic("k8s\0", 4);
// Nesting limit for JSON embedded in RawExtension / FieldsV1 (as rc::apimachinery's parser).
constexpr int kMaxEmbeddedJsonDepth = 100;

// ---------------------------------------------------------------------------------------------
// Which protobuf message an envelope's apiVersion/kind decodes to.

struct KindEntry {
  std::string_view api_version;
  std::string_view kind;
  const pb::Message* prototype;
};

const std::vector<KindEntry>& Kinds() {
  static const std::vector<KindEntry> kinds = [] {
    namespace core = k8s::io::api::core::v1;
    namespace apps = k8s::io::api::apps::v1;
    namespace batch = k8s::io::api::batch::v1;
    namespace coordination = k8s::io::api::coordination::v1;
    namespace autoscaling = k8s::io::api::autoscaling::v1;
    namespace meta = k8s::io::apimachinery::pkg::apis::meta::v1;
    // Referencing default_instance() also keeps every generated file linked in (their static
    // initializers register the descriptors).
    std::vector<KindEntry> k = {
        {"v1", "Namespace", &core::Namespace::default_instance()},
        {"v1", "Pod", &core::Pod::default_instance()},
        {"v1", "Service", &core::Service::default_instance()},
        {"v1", "Endpoints", &core::Endpoints::default_instance()},
        {"v1", "Node", &core::Node::default_instance()},
        {"v1", "Event", &core::Event::default_instance()},
        {"v1", "ConfigMap", &core::ConfigMap::default_instance()},
        {"v1", "Secret", &core::Secret::default_instance()},
        {"v1", "PersistentVolume", &core::PersistentVolume::default_instance()},
        {"v1", "PersistentVolumeClaim", &core::PersistentVolumeClaim::default_instance()},
        {"v1", "ComponentStatus", &core::ComponentStatus::default_instance()},
        {"apps/v1", "Deployment", &apps::Deployment::default_instance()},
        {"apps/v1", "ReplicaSet", &apps::ReplicaSet::default_instance()},
        {"apps/v1", "DaemonSet", &apps::DaemonSet::default_instance()},
        {"apps/v1", "StatefulSet", &apps::StatefulSet::default_instance()},
        {"batch/v1", "Job", &batch::Job::default_instance()},
        {"coordination.k8s.io/v1", "Lease", &coordination::Lease::default_instance()},
        {"autoscaling/v1", "Scale", &autoscaling::Scale::default_instance()},
    };
    // metav1.DeleteOptions is registered in every group version (AddToGroupVersion), so a typed
    // client's Delete body carries the resource's group version; meta.k8s.io/v1 is its own.
    for (std::string_view gv :
         {"v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1", "autoscaling/v1", "meta.k8s.io/v1"}) {
      k.push_back({gv, "DeleteOptions", &meta::DeleteOptions::default_instance()});
    }
    return k;
  }();
  return kinds;
}

const pb::Message* FindKind(std::string_view api_version, std::string_view kind) {
  for (const KindEntry& e : Kinds()) {
    if (e.api_version == api_version && e.kind == kind) return e.prototype;
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Message types whose JSON form is not "an object of its fields".

enum class Special { kNone, kTime, kMicroTime, kDuration, kQuantity, kIntOrString, kRawExtension, kFieldsV1 };

Special SpecialOf(const pb::Descriptor* d) {
  const std::string& n = d->full_name();
  if (n == "k8s.io.apimachinery.pkg.apis.meta.v1.Time") return Special::kTime;
  if (n == "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime") return Special::kMicroTime;
  if (n == "k8s.io.apimachinery.pkg.apis.meta.v1.Duration") return Special::kDuration;
  if (n == "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1") return Special::kFieldsV1;
  if (n == "k8s.io.apimachinery.pkg.api.resource.Quantity") return Special::kQuantity;
  if (n == "k8s.io.apimachinery.pkg.util.intstr.IntOrString") return Special::kIntOrString;
  if (n == "k8s.io.apimachinery.pkg.runtime.RawExtension") return Special::kRawExtension;
  return Special::kNone;
}

// ---------------------------------------------------------------------------------------------
// Fields whose zero value ("", 0, false) is emitted when present on the wire.
//
// Go's protobuf encoding writes non-pointer scalar fields always, even when zero, while its JSON
// encoding omits them when zero (`omitempty`); pointer fields are written (to both) only when set,
// and then a zero is meaningful (replicas: 0, automountServiceAccountToken: false,
// storageClassName: ""). The .proto files do not say which is which, so the pointer fields of the
// decoded types are listed here (from k8s.io/api types.go). "*" means every scalar field of the
// message. A field missing from this list loses an explicit zero; one listed by mistake only gains
// an explicit zero, which Kubernetes decodes identically.

struct KeepZeroSpec {
  const char* message;  // full name without the common "k8s.io." prefix
  const char* fields;   // space-separated field names, or "*"
};

constexpr KeepZeroSpec kKeepZero[] = {
    // meta/v1
    {"apimachinery.pkg.apis.meta.v1.ObjectMeta", "deletionGracePeriodSeconds"},
    {"apimachinery.pkg.apis.meta.v1.OwnerReference", "controller blockOwnerDeletion"},
    {"apimachinery.pkg.apis.meta.v1.DeleteOptions", "*"},
    {"apimachinery.pkg.apis.meta.v1.Preconditions", "*"},
    // core/v1
    {"api.core.v1.ConfigMap", "immutable"},
    {"api.core.v1.Secret", "immutable"},
    {"api.core.v1.Container", "restartPolicy"},
    {"api.core.v1.EphemeralContainerCommon", "restartPolicy"},
    {"api.core.v1.SecurityContext", "*"},
    {"api.core.v1.PodSecurityContext", "*"},
    {"api.core.v1.WindowsSecurityContextOptions", "*"},
    {"api.core.v1.SeccompProfile", "localhostProfile"},
    {"api.core.v1.AppArmorProfile", "localhostProfile"},
    {"api.core.v1.PodSpec",
     "terminationGracePeriodSeconds activeDeadlineSeconds automountServiceAccountToken "
     "shareProcessNamespace priority enableServiceLinks preemptionPolicy setHostnameAsFQDN hostUsers "
     "runtimeClassName hostnameOverride"},
    {"api.core.v1.Probe", "terminationGracePeriodSeconds"},
    {"api.core.v1.GRPCAction", "service"},
    {"api.core.v1.ConfigMapVolumeSource", "defaultMode optional"},
    {"api.core.v1.SecretVolumeSource", "defaultMode optional"},
    {"api.core.v1.KeyToPath", "mode"},
    {"api.core.v1.DownwardAPIVolumeFile", "mode"},
    {"api.core.v1.DownwardAPIVolumeSource", "defaultMode"},
    {"api.core.v1.ProjectedVolumeSource", "defaultMode"},
    {"api.core.v1.ConfigMapProjection", "optional"},
    {"api.core.v1.SecretProjection", "optional"},
    {"api.core.v1.ConfigMapKeySelector", "optional"},
    {"api.core.v1.SecretKeySelector", "optional"},
    {"api.core.v1.ConfigMapEnvSource", "optional"},
    {"api.core.v1.SecretEnvSource", "optional"},
    {"api.core.v1.FileKeySelector", "optional"},
    {"api.core.v1.HostPathVolumeSource", "type"},
    {"api.core.v1.ServiceAccountTokenProjection", "expirationSeconds"},
    {"api.core.v1.ClusterTrustBundleProjection", "name signerName optional"},
    {"api.core.v1.PodCertificateProjection", "maxExpirationSeconds"},
    {"api.core.v1.CSIVolumeSource", "readOnly fsType"},
    {"api.core.v1.AzureDiskVolumeSource", "cachingMode fsType readOnly kind"},
    {"api.core.v1.ISCSIVolumeSource", "initiatorName"},
    {"api.core.v1.ISCSIPersistentVolumeSource", "initiatorName"},
    {"api.core.v1.PersistentVolumeClaimSpec", "storageClassName volumeMode volumeAttributesClassName"},
    {"api.core.v1.PersistentVolumeSpec", "volumeMode volumeAttributesClassName"},
    {"api.core.v1.PersistentVolumeClaimStatus", "currentVolumeAttributesClassName"},
    {"api.core.v1.ServiceSpec",
     "ipFamilyPolicy allocateLoadBalancerNodePorts loadBalancerClass internalTrafficPolicy "
     "trafficDistribution"},
    {"api.core.v1.ClientIPConfig", "timeoutSeconds"},
    {"api.core.v1.ServicePort", "appProtocol"},
    {"api.core.v1.EndpointPort", "appProtocol"},
    {"api.core.v1.EndpointAddress", "nodeName"},
    {"api.core.v1.LoadBalancerIngress", "ipMode"},
    {"api.core.v1.PortStatus", "error"},
    {"api.core.v1.Toleration", "tolerationSeconds"},
    {"api.core.v1.TopologySpreadConstraint", "minDomains nodeAffinityPolicy nodeTaintsPolicy"},
    {"api.core.v1.VolumeMount", "mountPropagation recursiveReadOnly"},
    {"api.core.v1.VolumeMountStatus", "recursiveReadOnly"},
    {"api.core.v1.ContainerStatus", "started stopSignal"},
    {"api.core.v1.Lifecycle", "stopSignal"},
    {"api.core.v1.LinuxContainerUser", "uid gid"},
    {"api.core.v1.PodResourceClaim", "resourceClaimName resourceClaimTemplateName"},
    {"api.core.v1.PodResourceClaimStatus", "resourceClaimName"},
    {"api.core.v1.ResourceHealth", "message"},
    {"api.core.v1.NodeRuntimeHandlerFeatures", "*"},
    {"api.core.v1.NodeFeatures", "*"},
    {"api.core.v1.NodeSwapStatus", "capacity"},
    // apps/v1
    {"api.apps.v1.DeploymentSpec", "replicas revisionHistoryLimit progressDeadlineSeconds podReplacementPolicy"},
    {"api.apps.v1.DeploymentStatus", "terminatingReplicas collisionCount"},
    {"api.apps.v1.ReplicaSetSpec", "replicas"},
    {"api.apps.v1.ReplicaSetStatus", "terminatingReplicas"},
    {"api.apps.v1.DaemonSetSpec", "revisionHistoryLimit"},
    {"api.apps.v1.DaemonSetStatus", "collisionCount"},
    {"api.apps.v1.StatefulSetSpec", "replicas revisionHistoryLimit"},
    {"api.apps.v1.StatefulSetStatus", "collisionCount"},
    {"api.apps.v1.RollingUpdateStatefulSetStrategy", "partition"},
    // batch/v1
    {"api.batch.v1.JobSpec", "*"},
    {"api.batch.v1.JobStatus", "terminating ready failedIndexes"},
    {"api.batch.v1.SuccessPolicyRule", "*"},
    {"api.batch.v1.PodFailurePolicyOnExitCodesRequirement", "containerName"},
    // coordination.k8s.io/v1
    {"api.coordination.v1.LeaseSpec", "*"},
    // autoscaling/v1: Scale.spec.replicas is not a pointer, but "scale to 0" reads better explicit.
    {"api.autoscaling.v1.ScaleSpec", "replicas"},
};

const std::unordered_set<std::string>& KeepZeroSet() {
  static const std::unordered_set<std::string> set = [] {
    std::unordered_set<std::string> s;
    for (const KeepZeroSpec& spec : kKeepZero) {
      std::string prefix = std::string("k8s.io.") + spec.message + ".";
      std::string_view fields = spec.fields;
      while (!fields.empty()) {
        size_t sp = fields.find(' ');
        std::string_view f = fields.substr(0, sp);
        if (!f.empty()) s.insert(prefix + std::string(f));
        if (sp == std::string_view::npos) break;
        fields.remove_prefix(sp + 1);
      }
    }
    return s;
  }();
  return set;
}

bool KeepZero(const pb::FieldDescriptor* f) {
  const auto& set = KeepZeroSet();
  return set.count(f->full_name()) > 0 || set.count(f->containing_type()->full_name() + ".*") > 0;
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

Status Invalid(std::string msg) { return Status::InvalidArgument(std::move(msg)); }

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int len;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

std::string Base64(std::string_view in) {
  static constexpr char kTable[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                 static_cast<unsigned char>(in[i + 2]);
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
    out += kTable[(v >> 6) & 63];
    out += kTable[v & 63];
  }
  if (size_t rest = in.size() - i; rest > 0) {
    uint32_t v = static_cast<unsigned char>(in[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kTable[(v >> 18) & 63];
    out += kTable[(v >> 12) & 63];
    out += rest == 2 ? kTable[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Seconds since the Unix epoch -> "YYYY-MM-DDTHH:MM:SS" (UTC). Caller checks the range.
std::string FormatCivil(int64_t seconds) {
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  // Howard Hinnant's civil_from_days.
  days += 719468;
  const int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const int64_t doe = days - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = yoe + era * 400;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  if (m <= 2) ++y;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", static_cast<long long>(y),
                static_cast<long long>(m), static_cast<long long>(d), static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60));
  return buf;
}

// Go's time.Duration.String().
std::string GoDuration(int64_t d) {
  char buf[40];
  int w = sizeof(buf);
  uint64_t u = static_cast<uint64_t>(d);
  const bool neg = d < 0;
  if (neg) u = 0 - u;
  auto fmt_frac = [&](uint64_t v, int prec) {
    bool print = false;
    for (int i = 0; i < prec; ++i) {
      const int digit = static_cast<int>(v % 10);
      print = print || digit != 0;
      if (print) buf[--w] = static_cast<char>('0' + digit);
      v /= 10;
    }
    if (print) buf[--w] = '.';
    return v;
  };
  auto fmt_int = [&](uint64_t v) {
    if (v == 0) {
      buf[--w] = '0';
      return;
    }
    while (v > 0) {
      buf[--w] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  constexpr uint64_t kMicro = 1000, kMilli = 1000000, kSecond = 1000000000;
  if (u < kSecond) {
    int prec = 0;
    buf[--w] = 's';
    if (u == 0) {
      return "0s";
    } else if (u < kMicro) {
      prec = 0;
      buf[--w] = 'n';
    } else if (u < kMilli) {
      prec = 3;
      buf[--w] = '\xB5';  // U+00B5 MICRO SIGN, as Go
      buf[--w] = '\xC2';
    } else {
      prec = 6;
      buf[--w] = 'm';
    }
    u = fmt_frac(u, prec);
    fmt_int(u);
  } else {
    buf[--w] = 's';
    u = fmt_frac(u, 9);
    fmt_int(u % 60);
    u /= 60;
    if (u > 0) {
      buf[--w] = 'm';
      fmt_int(u % 60);
      u /= 60;
      if (u > 0) {
        buf[--w] = 'h';
        fmt_int(u);
      }
    }
  }
  if (neg) buf[--w] = '-';
  return std::string(buf + w, sizeof(buf) - w);
}

// Container nesting depth of a JSON text (strings skipped); stops counting past `limit`.
int JsonTextDepth(std::string_view s, int limit) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) max_depth = depth;
      if (max_depth > limit) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// ---------------------------------------------------------------------------------------------
// The converter.

class Converter {
 public:
  explicit Converter(Alloc& alloc) : a_(alloc) {}

  // `m` -> JSON value (an object, or the special form of a special type).
  Status Message(const pb::Message& m, Value* out) {
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    const pb::UnknownFieldSet& unknown = r->GetUnknownFields(m);
    if (!unknown.empty()) {
      return Invalid("unknown field number " + std::to_string(unknown.field(0).number()) + " in " +
                     d->full_name() + " (not in this server's copy of the Kubernetes protobuf definitions)");
    }
    if (Special s = SpecialOf(d); s != Special::kNone) return SpecialValue(s, m, out);

    out->SetObject();
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      Value v;
      if (f->is_map()) {
        if (r->FieldSize(m, f) == 0) continue;
        RC_RETURN_IF_ERROR(Map(m, f, &v));
      } else if (f->is_repeated()) {
        const int n = r->FieldSize(m, f);
        if (n == 0) continue;
        v.SetArray();
        v.Reserve(static_cast<rapidjson::SizeType>(n), a_);
        for (int j = 0; j < n; ++j) {
          Value e;
          if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
            RC_RETURN_IF_ERROR(Message(r->GetRepeatedMessage(m, f, j), &e));
          } else {
            RC_RETURN_IF_ERROR(Scalar(m, f, j, &e, nullptr));
          }
          v.PushBack(std::move(e), a_);
        }
      } else {
        if (!r->HasField(m, f)) continue;
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          RC_RETURN_IF_ERROR(Message(r->GetMessage(m, f), &v));
        } else {
          bool zero = false;
          RC_RETURN_IF_ERROR(Scalar(m, f, -1, &v, &zero));
          if (zero && !KeepZero(f)) continue;
        }
      }
      out->AddMember(Value(f->name().c_str(), static_cast<rapidjson::SizeType>(f->name().size()), a_),
                     std::move(v), a_);
    }
    return Status::Ok();
  }

 private:
  // Map fields (repeated key/value entries; the last entry of a key wins; keys sorted as Go).
  Status Map(const pb::Message& m, const pb::FieldDescriptor* f, Value* out) {
    const pb::Reflection* r = m.GetReflection();
    const pb::FieldDescriptor* key_f = f->message_type()->map_key();
    const pb::FieldDescriptor* value_f = f->message_type()->map_value();
    if (key_f->cpp_type() != pb::FieldDescriptor::CPPTYPE_STRING) {
      return Invalid("map field " + f->full_name() + " has non-string keys");
    }
    std::map<std::string, const pb::Message*> entries;
    const int n = r->FieldSize(m, f);
    for (int j = 0; j < n; ++j) {
      const pb::Message& entry = r->GetRepeatedMessage(m, f, j);
      if (!entry.GetReflection()->GetUnknownFields(entry).empty()) {
        return Invalid("malformed map entry in " + f->full_name());
      }
      std::string key = entry.GetReflection()->GetString(entry, key_f);
      if (!ValidUtf8(key)) return Invalid("invalid UTF-8 in a key of " + f->full_name());
      entries[std::move(key)] = &entry;
    }
    out->SetObject();
    for (const auto& [key, entry] : entries) {
      Value v;
      if (value_f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        RC_RETURN_IF_ERROR(Message(entry->GetReflection()->GetMessage(*entry, value_f), &v));
      } else {
        RC_RETURN_IF_ERROR(Scalar(*entry, value_f, -1, &v, nullptr));
      }
      out->AddMember(Value(key.c_str(), static_cast<rapidjson::SizeType>(key.size()), a_), std::move(v), a_);
    }
    return Status::Ok();
  }

  // A scalar field value (index -1: singular). Sets *zero when the value is the type's zero.
  Status Scalar(const pb::Message& m, const pb::FieldDescriptor* f, int index, Value* out, bool* zero) {
    const pb::Reflection* r = m.GetReflection();
    const bool rep = index >= 0;
    bool is_zero = false;
    switch (f->cpp_type()) {
      case pb::FieldDescriptor::CPPTYPE_INT32: {
        int32_t v = rep ? r->GetRepeatedInt32(m, f, index) : r->GetInt32(m, f);
        out->SetInt(v);
        is_zero = v == 0;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_INT64: {
        int64_t v = rep ? r->GetRepeatedInt64(m, f, index) : r->GetInt64(m, f);
        out->SetInt64(v);
        is_zero = v == 0;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT32: {
        uint32_t v = rep ? r->GetRepeatedUInt32(m, f, index) : r->GetUInt32(m, f);
        out->SetUint(v);
        is_zero = v == 0;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_UINT64: {
        uint64_t v = rep ? r->GetRepeatedUInt64(m, f, index) : r->GetUInt64(m, f);
        out->SetUint64(v);
        is_zero = v == 0;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_DOUBLE:
      case pb::FieldDescriptor::CPPTYPE_FLOAT: {
        double v = f->cpp_type() == pb::FieldDescriptor::CPPTYPE_DOUBLE
                       ? (rep ? r->GetRepeatedDouble(m, f, index) : r->GetDouble(m, f))
                       : (rep ? r->GetRepeatedFloat(m, f, index) : r->GetFloat(m, f));
        if (!std::isfinite(v)) return Invalid("non-finite number in " + f->full_name());
        out->SetDouble(v);
        is_zero = v == 0;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_BOOL: {
        bool v = rep ? r->GetRepeatedBool(m, f, index) : r->GetBool(m, f);
        out->SetBool(v);
        is_zero = !v;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_ENUM: {
        const pb::EnumValueDescriptor* e = rep ? r->GetRepeatedEnum(m, f, index) : r->GetEnum(m, f);
        out->SetString(e->name().c_str(), static_cast<rapidjson::SizeType>(e->name().size()), a_);
        is_zero = e->number() == 0;
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_STRING: {
        std::string scratch;
        const std::string& v = rep ? r->GetRepeatedStringReference(m, f, index, &scratch)
                                   : r->GetStringReference(m, f, &scratch);
        is_zero = v.empty();
        if (f->type() == pb::FieldDescriptor::TYPE_BYTES) {
          std::string b64 = Base64(v);  // Go encodes []byte as base64 (StdEncoding)
          out->SetString(b64.c_str(), static_cast<rapidjson::SizeType>(b64.size()), a_);
        } else {
          if (!ValidUtf8(v)) return Invalid("invalid UTF-8 in " + f->full_name());
          if (v.size() > UINT32_MAX) return Invalid("string too long in " + f->full_name());
          out->SetString(v.data(), static_cast<rapidjson::SizeType>(v.size()), a_);
        }
        break;
      }
      case pb::FieldDescriptor::CPPTYPE_MESSAGE:
        return Status::Internal("message field treated as scalar: " + f->full_name());
    }
    if (zero != nullptr) *zero = is_zero;
    return Status::Ok();
  }

  Status SpecialValue(Special s, const pb::Message& m, Value* out) {
    const pb::Descriptor* d = m.GetDescriptor();
    const pb::Reflection* r = m.GetReflection();
    auto field = [&](int number) -> const pb::FieldDescriptor* { return d->FindFieldByNumber(number); };
    switch (s) {
      case Special::kTime:
      case Special::kMicroTime: {
        const pb::FieldDescriptor* sec_f = field(1);
        const pb::FieldDescriptor* nanos_f = field(2);
        // Go: an empty Time message is the zero time, which marshals as null.
        if (!r->HasField(m, sec_f) && !r->HasField(m, nanos_f)) {
          out->SetNull();
          return Status::Ok();
        }
        const int64_t sec = r->GetInt64(m, sec_f);
        const int32_t nanos = r->GetInt32(m, nanos_f);
        // 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z, as google.protobuf.Timestamp.
        constexpr int64_t kMin = -62135596800, kMax = 253402300799;
        if (sec < kMin || sec > kMax) return Invalid("time out of range in " + d->full_name());
        if (nanos < 0 || nanos > 999999999) return Invalid("invalid nanos in " + d->full_name());
        if (sec == kMin && nanos == 0) {  // time.Time{}: IsZero
          out->SetNull();
          return Status::Ok();
        }
        std::string t = FormatCivil(sec);
        if (s == Special::kMicroTime) {
          char frac[16];
          std::snprintf(frac, sizeof(frac), ".%06d", nanos / 1000);
          t += frac;
        }
        t += 'Z';
        out->SetString(t.c_str(), static_cast<rapidjson::SizeType>(t.size()), a_);
        return Status::Ok();
      }
      case Special::kDuration: {
        std::string v = GoDuration(r->GetInt64(m, field(1)));
        out->SetString(v.c_str(), static_cast<rapidjson::SizeType>(v.size()), a_);
        return Status::Ok();
      }
      case Special::kQuantity: {
        const pb::FieldDescriptor* f = field(1);
        if (!r->HasField(m, f)) {  // the zero Quantity
          out->SetString("0", a_);
          return Status::Ok();
        }
        std::string v = r->GetString(m, f);
        if (v.empty()) return Invalid("empty quantity");
        if (!ValidUtf8(v)) return Invalid("invalid UTF-8 in a quantity");
        out->SetString(v.c_str(), static_cast<rapidjson::SizeType>(v.size()), a_);
        return Status::Ok();
      }
      case Special::kIntOrString: {
        const int64_t type = r->GetInt64(m, field(1));
        if (type == 0) {
          out->SetInt(r->GetInt32(m, field(2)));
        } else if (type == 1) {
          std::string v = r->GetString(m, field(3));
          if (!ValidUtf8(v)) return Invalid("invalid UTF-8 in an IntOrString");
          out->SetString(v.c_str(), static_cast<rapidjson::SizeType>(v.size()), a_);
        } else {
          return Invalid("invalid IntOrString type " + std::to_string(type));
        }
        return Status::Ok();
      }
      case Special::kRawExtension:
      case Special::kFieldsV1: {
        const std::string raw = r->GetString(m, field(1));
        return EmbeddedJson(raw, d->full_name(), out);
      }
      case Special::kNone:
        break;
    }
    return Status::Internal("not a special type");
  }

  // Raw bytes that are a JSON value (RawExtension.raw, FieldsV1.Raw). Empty -> null (Go's nil Raw).
  Status EmbeddedJson(std::string_view raw, const std::string& where, Value* out) {
    size_t b = raw.find_first_not_of(" \t\r\n");
    if (b == std::string_view::npos) {
      out->SetNull();
      return Status::Ok();
    }
    if (raw.find('\0') != std::string_view::npos) return Invalid("raw bytes of " + where + " are not JSON");
    if (JsonTextDepth(raw, kMaxEmbeddedJsonDepth) > kMaxEmbeddedJsonDepth) {
      return Invalid("JSON embedded in " + where + " is nested too deeply");
    }
    rapidjson::Document tmp(&a_);
    tmp.Parse<rapidjson::kParseValidateEncodingFlag>(raw.data(), raw.size());
    if (tmp.HasParseError()) return Invalid("raw bytes of " + where + " are not valid JSON");
    // `tmp` allocated from a_, so its value can be moved into the output tree.
    *out = std::move(static_cast<Value&>(tmp));
    return Status::Ok();
  }

  Alloc& a_;
};

}  // namespace

std::string FormatGoDuration(int64_t nanos) { return GoDuration(nanos); }

bool IsKubernetesProtobuf(std::string_view body) { return body.substr(0, kMagic.size()) == kMagic; }

Result<rapidjson::Document> DecodeToJson(std::string_view body) {
  if (!IsKubernetesProtobuf(body)) {
    return Status::InvalidArgument("not a Kubernetes protobuf body (missing the \"k8s\\0\" prefix)");
  }
  body.remove_prefix(kMagic.size());
  if (body.size() > static_cast<size_t>(INT_MAX)) return Status::InvalidArgument("protobuf body too large");

  k8s::io::apimachinery::pkg::runtime::Unknown envelope;
  if (!envelope.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return Status::InvalidArgument("malformed protobuf envelope (runtime.Unknown)");
  }
  if (!envelope.GetReflection()->GetUnknownFields(envelope).empty() ||
      !envelope.typemeta().GetReflection()->GetUnknownFields(envelope.typemeta()).empty()) {
    return Status::InvalidArgument("malformed protobuf envelope (unknown fields in runtime.Unknown)");
  }
  if (!envelope.contentencoding().empty()) {
    return Status::InvalidArgument("unsupported protobuf contentEncoding \"" + envelope.contentencoding() + "\"");
  }
  if (!envelope.contenttype().empty() && envelope.contenttype() != kProtobufContentType) {
    return Status::InvalidArgument("unsupported protobuf contentType \"" + envelope.contenttype() + "\"");
  }
  const std::string& api_version = envelope.typemeta().apiversion();
  const std::string& kind = envelope.typemeta().kind();
  if (!ValidUtf8(api_version) || !ValidUtf8(kind)) {
    return Status::InvalidArgument("malformed protobuf envelope (invalid UTF-8 in typeMeta)");
  }
  if (kind.empty()) return Status::InvalidArgument("protobuf envelope has no kind (apiVersion \"" + api_version + "\")");
  const pb::Message* prototype = FindKind(api_version, kind);
  if (prototype == nullptr) {
    return Status::InvalidArgument("protobuf decoding of apiVersion \"" + api_version + "\", kind \"" + kind +
                                   "\" is not supported; send it as application/json");
  }

  std::unique_ptr<pb::Message> msg(prototype->New());
  if (!msg->ParseFromString(envelope.raw())) {
    return Status::InvalidArgument("malformed protobuf for " + api_version + "/" + kind);
  }

  rapidjson::Document doc;
  auto& a = doc.GetAllocator();
  Value fields;
  Converter conv(a);
  if (Status st = conv.Message(*msg, &fields); !st.ok()) {
    return Status::InvalidArgument("invalid protobuf " + api_version + "/" + kind + ": " + st.message());
  }
  doc.SetObject();
  doc.AddMember("kind", Value(kind.c_str(), static_cast<rapidjson::SizeType>(kind.size()), a), a);
  doc.AddMember("apiVersion", Value(api_version.c_str(), static_cast<rapidjson::SizeType>(api_version.size()), a),
                a);
  for (auto& member : fields.GetObject()) {
    doc.AddMember(std::move(member.name), std::move(member.value), a);
  }
  return doc;
}

}  // namespace rc::kproto
