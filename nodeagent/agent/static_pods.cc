#include "rc/nodeagent/static_pods.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "rc/apimachinery/json.h"
#include "rc/apimachinery/yaml.h"
#include "rc/nodeagent/node_status.h"

namespace rc::nodeagent {

namespace am = rc::apimachinery;
namespace fs = std::filesystem;

namespace {

std::string Hex64(uint64_t v) {
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void SetString(rapidjson::Value& obj, const char* name, const std::string& v, rapidjson::Document::AllocatorType& a) {
  if (auto* m = am::FindMember(obj, name)) {
    m->SetString(v.c_str(), static_cast<rapidjson::SizeType>(v.size()), a);
  } else {
    obj.AddMember(rapidjson::Value(name, a), rapidjson::Value(v.c_str(), a), a);
  }
}

rapidjson::Value& Obj(rapidjson::Value& parent, const char* name, rapidjson::Document::AllocatorType& a) {
  rapidjson::Value* m = am::FindMember(parent, name);
  if (!m) {
    parent.AddMember(rapidjson::Value(name, a), rapidjson::Value(rapidjson::kObjectType), a);
    m = am::FindMember(parent, name);
  } else if (!m->IsObject()) {
    m->SetObject();
  }
  return *m;
}

}  // namespace

StaticPods::StaticPods(client::RestClient* client, PodManager* pods, std::string dir, std::string node_name, int poll_ms)
    : client_(client), pods_(pods), dir_(std::move(dir)), node_(std::move(node_name)), poll_ms_(poll_ms) {}

StaticPods::~StaticPods() { Stop(); }

void StaticPods::Start() {
  Scan();  // before the pod manager adopts: its static pods are known, not orphans
  DeleteOrphanMirrors();
  thread_ = std::thread([this] { Loop(); });
}

void StaticPods::DeleteOrphanMirrors() {
  auto r = client_->Do("GET", "/api/v1/pods?fieldSelector=" + client::UrlEncode("spec.nodeName=" + node_));
  if (!r.ok() || r->status != 200) return;
  auto list = am::ParseJson(r->body);
  if (!list.ok()) return;
  const rapidjson::Value* items = am::FindMember(*list, "items");
  if (!items || !items->IsArray()) return;
  std::set<std::string> live;
  for (const auto& [path, e] : by_file_) live.insert(e.key);
  for (const auto& pod : items->GetArray()) {
    const rapidjson::Value* meta = am::FindMember(pod, "metadata");
    const rapidjson::Value* ann = meta ? am::FindMember(*meta, "annotations") : nullptr;
    if (!ann || !am::FindMember(*ann, "kubernetes.io/config.mirror")) continue;
    std::string key = std::string(am::GetStringOr(*meta, "namespace")) + "/" + std::string(am::GetStringOr(*meta, "name"));
    if (live.count(key)) continue;
    spdlog::info("static pod {}: its manifest is gone; deleting the mirror pod", key);
    DeleteMirror(key, std::string(am::GetStringOr(*meta, "uid")));
  }
}

void StaticPods::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void StaticPods::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stop_; })) return;
    }
    Scan();
  }
}

void StaticPods::Scan() {
  std::map<std::string, std::string> files;  // path -> content
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".yaml" && ext != ".yml" && ext != ".json")) continue;
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    files[e.path().string()] = ss.str();
  }
  // Removed files: stop their pods.
  for (auto it = by_file_.begin(); it != by_file_.end();) {
    if (!files.count(it->first)) {
      spdlog::info("static pod {}: manifest {} removed", it->second.key, it->first);
      pods_->RemoveStaticPod(it->second.key);
      DeleteMirror(it->second.key, "");
      it = by_file_.erase(it);
    } else {
      ++it;
    }
  }
  std::map<std::string, std::string> claimed;  // pod key -> the manifest that runs it (first by name)
  auto duplicate = [&](const std::string& path, const std::string& key) {
    auto [it, fresh] = claimed.emplace(key, path);
    if (fresh) {
      ignored_.erase(path);
      return false;
    }
    if (ignored_[path] != it->second) {
      spdlog::warn("static pod manifest {}: pod {} is already defined by {}; ignored", path, key, it->second);
      ignored_[path] = it->second;
    }
    if (auto known = by_file_.find(path); known != by_file_.end()) by_file_.erase(known);  // the winner runs the key
    return true;
  };
  for (auto it = ignored_.begin(); it != ignored_.end();) it = files.count(it->first) ? std::next(it) : ignored_.erase(it);
  for (const auto& [path, content] : files) {
    std::string hash = Hex64(std::hash<std::string>{}(content + "\n" + node_));
    auto known = by_file_.find(path);
    if (known != by_file_.end() && known->second.content_hash == hash) {
      if (duplicate(path, known->second.key)) continue;
      EnsureMirror(known->second);
      continue;
    }
    auto parsed = am::ParseYamlToJson(content);
    if (!parsed.ok() || !parsed->IsObject() || am::GetStringOr(*parsed, "kind") != "Pod") {
      spdlog::warn("static pod manifest {}: {}", path, parsed.ok() ? "not a Pod" : parsed.status().message());
      continue;
    }
    auto doc = std::make_shared<rapidjson::Document>(std::move(*parsed));
    auto& a = doc->GetAllocator();
    rapidjson::Value& meta = Obj(*doc, "metadata", a);
    std::string name(am::GetStringOr(meta, "name"));
    if (name.empty()) {
      spdlog::warn("static pod manifest {}: metadata.name is required", path);
      continue;
    }
    std::string ns(am::GetStringOr(meta, "namespace", "default"));
    std::string full = name + "-" + node_;
    // The uid is the content hash in UUID form, so an edit is a new pod.
    std::string uid = hash.substr(0, 8) + "-" + hash.substr(8, 4) + "-" + hash.substr(12, 4) + "-0000-" + hash.substr(0, 12);
    SetString(meta, "name", full, a);
    SetString(meta, "namespace", ns, a);
    SetString(meta, "uid", uid, a);
    SetString(meta, "creationTimestamp", NowRfc3339(), a);
    rapidjson::Value& ann = Obj(meta, "annotations", a);
    SetString(ann, "kubernetes.io/config.source", "file", a);
    SetString(ann, "kubernetes.io/config.hash", hash, a);
    SetString(ann, "kubernetes.io/config.seen", NowRfc3339(), a);
    rapidjson::Value& spec = Obj(*doc, "spec", a);
    SetString(spec, "nodeName", node_, a);
    if (!am::FindMember(spec, "restartPolicy")) SetString(spec, "restartPolicy", "Always", a);
    std::string key = ns + "/" + full;
    if (duplicate(path, key)) continue;
    if (known != by_file_.end() && known->second.key != key) {
      pods_->RemoveStaticPod(known->second.key);
      DeleteMirror(known->second.key, "");
    }
    Entry e{key, uid, hash, doc};
    spdlog::info("static pod {} from {} (config hash {})", key, path, hash);
    pods_->UpsertStaticPod(key, doc);
    by_file_[path] = e;
    EnsureMirror(e);
  }
}

void StaticPods::EnsureMirror(const Entry& e) {
  std::string ns = e.key.substr(0, e.key.find('/'));
  std::string name = e.key.substr(e.key.find('/') + 1);
  std::string path = "/api/v1/namespaces/" + ns + "/pods/" + name;
  auto got = client_->Do("GET", path);
  if (!got.ok()) return;
  if (got->status == 200) {
    auto doc = am::ParseJson(got->body);
    if (!doc.ok()) return;
    const rapidjson::Value* meta = am::FindMember(*doc, "metadata");
    const rapidjson::Value* ann = meta ? am::FindMember(*meta, "annotations") : nullptr;
    std::string mirror = ann ? std::string(am::GetStringOr(*ann, "kubernetes.io/config.mirror")) : "";
    bool deleting = meta && am::FindMember(*meta, "deletionTimestamp");
    if (mirror == e.content_hash && !deleting) return;  // up to date
    // Stale (old content), deleted by someone, or a regular pod squatting the name: replace.
    DeleteMirror(e.key, std::string(meta ? am::GetStringOr(*meta, "uid") : ""));
  } else if (got->status != 404) {
    return;
  }
  std::string node_uid;
  if (auto n = client_->Do("GET", "/api/v1/nodes/" + node_); n.ok() && n->status == 200) {
    if (auto nd = am::ParseJson(n->body); nd.ok()) {
      if (const auto* m = am::FindMember(*nd, "metadata")) node_uid = std::string(am::GetStringOr(*m, "uid"));
    }
  }
  rapidjson::Document mirror;
  mirror.CopyFrom(*e.pod, mirror.GetAllocator());
  auto& a = mirror.GetAllocator();
  rapidjson::Value& meta = Obj(mirror, "metadata", a);
  meta.RemoveMember("uid");
  meta.RemoveMember("creationTimestamp");
  SetString(Obj(meta, "annotations", a), "kubernetes.io/config.mirror", e.content_hash, a);
  if (!node_uid.empty()) {
    rapidjson::Value refs(rapidjson::kArrayType), ref(rapidjson::kObjectType);
    ref.AddMember("apiVersion", "v1", a);
    ref.AddMember("kind", "Node", a);
    ref.AddMember("name", rapidjson::Value(node_.c_str(), a), a);
    ref.AddMember("uid", rapidjson::Value(node_uid.c_str(), a), a);
    ref.AddMember("controller", true, a);
    refs.PushBack(ref, a);
    meta.RemoveMember("ownerReferences");
    meta.AddMember("ownerReferences", refs, a);
  }
  mirror.RemoveMember("status");
  auto created = client_->Do("POST", "/api/v1/namespaces/" + ns + "/pods", am::ToJson(mirror));
  if (created.ok() && created->status == 201) {
    spdlog::info("static pod {}: mirror pod created", e.key);
    pods_->ResendStatus(e.key);
  } else if (created.ok() && created->status != 409) {
    spdlog::warn("static pod {}: creating the mirror pod: {}", e.key, client::ToStatus(*created).ToString());
  }
}

void StaticPods::DeleteMirror(const std::string& key, const std::string& uid) {
  std::string ns = key.substr(0, key.find('/'));
  std::string name = key.substr(key.find('/') + 1);
  std::string body = R"({"kind":"DeleteOptions","apiVersion":"v1","gracePeriodSeconds":0)";
  if (!uid.empty()) body += R"(,"preconditions":{"uid":")" + uid + R"("})";
  body += "}";
  (void)client_->Do("DELETE", "/api/v1/namespaces/" + ns + "/pods/" + name, body);
}

}  // namespace rc::nodeagent
