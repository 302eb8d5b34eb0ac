#include "rc/apiserver/registry.h"

#include <algorithm>

#include "rc/schema/algorithms.h"

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

const apimachinery::PatchSchema& ResourceInfo::PatchStrategies() const {
  return patch_schema ? *patch_schema : apimachinery::KubernetesPatchSchema();
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
  auto compiled = std::make_shared<schema::ResourceSchema>(s);
  if (origin == "builtin") compiled->native_messages = true;
  r.patch_schema = schema::PatchSchemaFor(
      *compiled, origin == "builtin" ? &apimachinery::KubernetesPatchSchema() : nullptr);
  r.schema = std::move(compiled);
  r.origin = origin;
  return r;
}

ResourceRegistry RegistryFromSchemas(const std::vector<schema::ResourceSchema>& schemas,
                                     const std::string& origin) {
  ResourceRegistry reg;
  for (const auto& s : schemas) reg.Add(FromSchema(s, origin));
  return reg;
}

}  // namespace rc::apiserver
