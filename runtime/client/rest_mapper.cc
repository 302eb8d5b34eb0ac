#include "rc/client/rest_mapper.h"

#include <algorithm>

#include "rc/apimachinery/json.h"

namespace rc::client {

namespace am = rc::apimachinery;

bool ResourceInfo::HasVerb(const std::string& v) const {
  return std::find(verbs.begin(), verbs.end(), v) != verbs.end();
}
bool ResourceInfo::HasSubresource(const std::string& s) const {
  return std::find(subresources.begin(), subresources.end(), s) != subresources.end();
}

std::string ResourceInfo::CollectionPath(const std::string& ns) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + ns;
  return p + "/" + plural;
}

std::string ResourceInfo::ObjectPath(const std::string& ns, const std::string& name, const std::string& sub) const {
  std::string p = CollectionPath(ns) + "/" + name;
  if (!sub.empty()) p += "/" + sub;
  return p;
}

namespace {

Result<rapidjson::Document> GetJson(RestClient* client, const std::string& path) {
  auto reply = client->Do("GET", path);
  if (!reply.ok()) return reply.status();
  if (Status s = ToStatus(*reply); !s.ok()) return s;
  return am::ParseJson(reply->body, 200);
}

// Adds the resources of one APIResourceList document.
void AddResourceList(const rapidjson::Value& list, const std::string& group, const std::string& version,
                     std::map<std::pair<std::string, std::string>, ResourceInfo>& out) {
  const rapidjson::Value* resources = am::FindMember(list, "resources");
  if (!resources || !resources->IsArray()) return;
  std::string api_version = group.empty() ? version : group + "/" + version;
  std::map<std::string, std::vector<std::string>> subs;
  for (auto& r : resources->GetArray()) {
    std::string name(am::GetStringOr(r, "name"));
    if (size_t slash = name.find('/'); slash != std::string::npos) subs[name.substr(0, slash)].push_back(name.substr(slash + 1));
  }
  for (auto& r : resources->GetArray()) {
    std::string name(am::GetStringOr(r, "name"));
    if (name.empty() || name.find('/') != std::string::npos) continue;
    ResourceInfo info;
    info.group = group;
    info.version = version;
    info.kind = std::string(am::GetStringOr(r, "kind"));
    info.plural = name;
    if (auto* n = am::FindMember(r, "namespaced"); n && n->IsBool()) info.namespaced = n->GetBool();
    if (auto* verbs = am::FindMember(r, "verbs"); verbs && verbs->IsArray()) {
      for (auto& v : verbs->GetArray()) if (v.IsString()) info.verbs.emplace_back(v.GetString());
    }
    info.subresources = subs[name];
    out[{api_version, info.kind}] = std::move(info);
  }
}

}  // namespace

Status RestMapper::Refresh() {
  std::map<std::pair<std::string, std::string>, ResourceInfo> found;
  auto core = GetJson(client_, "/api/v1");
  if (!core.ok()) return core.status();
  AddResourceList(*core, "", "v1", found);
  auto groups = GetJson(client_, "/apis");
  if (!groups.ok()) return groups.status();
  if (auto* list = am::FindMember(*groups, "groups"); list && list->IsArray()) {
    for (auto& g : list->GetArray()) {
      std::string group(am::GetStringOr(g, "name"));
      const rapidjson::Value* versions = am::FindMember(g, "versions");
      if (!versions || !versions->IsArray()) continue;
      for (auto& v : versions->GetArray()) {
        std::string version(am::GetStringOr(v, "version"));
        auto doc = GetJson(client_, "/apis/" + group + "/" + version);
        if (!doc.ok()) {
          if (doc.status().IsNotFound()) continue;  // a group removed between the two reads
          // Anything else: keep the previous map rather than forget a group's types (the garbage
          // collector and namespace controller must never mistake "unreadable" for "gone").
          return doc.status();
        }
        AddResourceList(*doc, group, version, found);
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  by_kind_ = std::move(found);
  last_refresh_ = std::chrono::steady_clock::now();
  return Status::Ok();
}

Result<ResourceInfo> RestMapper::ForKind(const std::string& api_version, const std::string& kind) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = by_kind_.find({api_version, kind}); it != by_kind_.end()) return it->second;
    if (std::chrono::steady_clock::now() - last_refresh_ < std::chrono::milliseconds(500) && !by_kind_.empty()) {
      return Status::NotFound("the server does not serve kind " + kind + " in " + api_version);
    }
  }
  RC_RETURN_IF_ERROR(Refresh());
  std::lock_guard<std::mutex> lock(mu_);
  if (auto it = by_kind_.find({api_version, kind}); it != by_kind_.end()) return it->second;
  return Status::NotFound("the server does not serve kind " + kind + " in " + api_version);
}

Result<std::vector<ResourceInfo>> RestMapper::All() {
  RC_RETURN_IF_ERROR(Refresh());
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ResourceInfo> out;
  for (auto& [k, v] : by_kind_) out.push_back(v);
  return out;
}

}  // namespace rc::client
