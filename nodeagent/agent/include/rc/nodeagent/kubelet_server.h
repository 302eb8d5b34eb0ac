// The agent's HTTP endpoints (the kubelet's read-only subset): GET /healthz, GET /pods (a PodList
// of what this node runs) and GET /containerLogs/{ns}/{pod}/{container}?follow=&tailLines=&
// previous=&limitBytes= (what the API server's pods/log proxies to).
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "rc/apiserver/http_server.h"
#include "rc/nodeagent/pod_manager.h"

namespace rc::nodeagent {

class KubeletServer {
 public:
  // Serves on address:port (0 = any free port).
  // `pods` may be null until SetPods (requests then get 503): the port must be known before the
  // Node is registered, the pod manager can only start after.
  static Result<std::unique_ptr<KubeletServer>> Start(PodManager* pods, const std::string& address, uint16_t port);
  void SetPods(PodManager* pods) { pods_.store(pods); }
  ~KubeletServer();
  uint16_t port() const;
  void Shutdown();

 private:
  explicit KubeletServer(PodManager* pods) : pods_(pods) {}
  void Handle(apiserver::HttpRequest req, std::shared_ptr<apiserver::HttpExchange> ex);
  void Follow(std::string path, int64_t offset, std::shared_ptr<apiserver::HttpExchange> ex);

  std::atomic<PodManager*> pods_;
  std::unique_ptr<apiserver::HttpServer> http_;
  std::mutex mu_;
  std::condition_variable cv_;
  int follows_ = 0;
  bool stop_ = false;
};

// Reads the last `tail_lines` lines (< 0: all) of a file, at most `limit_bytes` (<= 0: no limit)
// counted from the start of what is returned. `end_offset` gets the file size read up to.
Result<std::string> ReadLogTail(const std::string& path, int64_t tail_lines, int64_t limit_bytes, int64_t* end_offset);

}  // namespace rc::nodeagent
