// Static pods: pod manifests in a directory (--pod-manifest-path) that the agent runs without
// the API server, like the kubelet's file source. Each becomes pod NAME-NODE (namespace from the
// manifest, default "default") with a uid derived from its content, and gets a mirror pod in
// the API (annotation kubernetes.io/config.mirror, owned by the Node) that carries its status.
// Editing a file replaces the pod; removing it stops the pod and deletes the mirror; deleting the
// mirror through the API only makes the agent create it again. Two files naming the same pod:
// the first by file name runs, the other is ignored with a warning. At start, mirror pods of
// this node whose manifest is gone (removed while the agent was down) are deleted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "rc/client/rest_client.h"
#include "rc/nodeagent/pod_manager.h"

namespace rc::nodeagent {

class StaticPods {
 public:
  StaticPods(client::RestClient* client, PodManager* pods, std::string dir, std::string node_name, int poll_ms = 1000);
  ~StaticPods();
  // Reads the manifests once (call before PodManager::Start), then polls.
  void Start();
  void Stop();

 private:
  struct Entry {
    std::string key, uid, content_hash;
    std::shared_ptr<const rapidjson::Document> pod;
  };
  void Loop();
  void Scan();
  void EnsureMirror(const Entry& e);
  void DeleteMirror(const std::string& key, const std::string& uid);
  void DeleteOrphanMirrors();

  client::RestClient* client_;
  PodManager* pods_;
  std::string dir_, node_;
  int poll_ms_;
  std::map<std::string, Entry> by_file_;
  std::map<std::string, std::string> ignored_;  // duplicate manifest path -> the path that won
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace rc::nodeagent
