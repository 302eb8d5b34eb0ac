#include "admission.h"

#include <set>

#include "rc/apimachinery/selector.h"
#include "rc/apimachinery/validation.h"
#include "rc/schema/algorithms.h"

namespace rc::apiserver {

namespace am = rc::apimachinery;

namespace {

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

}  // namespace

void ApplyDefaults(const ResourceInfo& r, JsonValue& obj, JsonAlloc& a) {
  if (r.kind == "Namespace" && r.group.empty()) {
    // NamespaceDefaultLabelName: API machinery, not schema.
    JsonValue& meta = ObjectMember(obj, "metadata", a);
    JsonValue& labels = ObjectMember(meta, "labels", a);
    std::string name = StrAt(meta, "name");
    if (!name.empty()) Set(labels, "kubernetes.io/metadata.name", Str(name, a), a);
  }
  // Every default comes from the compiled DSL schema: constants and computed ones.
  if (r.schema && r.schema->root) schema::ApplyDefaults(*r.schema->root, obj, a);
}

void ResetStatusOnCreate(const ResourceInfo& r, JsonValue& obj, JsonAlloc& a) {
  if (!r.has_status) return;
  JsonValue status(rapidjson::kObjectType);
  // Status starts empty (the schema's status defaults fill it, e.g. Pod phase Pending), except for
  // objects whose creator reports status itself.
  if (r.kind == "Node" || r.kind == "Service") {
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
  }
  return out;
}

}  // namespace rc::apiserver
