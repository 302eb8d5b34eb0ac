// The Kubernetes-compatible API server: REST over HTTP/1.x with discovery, OpenAPI v3, CRUD,
// PATCH (JSON, merge, strategic merge), LIST with selectors and pagination, WATCH, server-side
// Table printing, /status and /scale subresources, on any rc::store::Store.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rc/apiserver/registry.h"
#include "rc/base/status.h"
#include "rc/store/store.h"

namespace rc::apiserver {

struct ApiServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 6443;  // 0 = pick a free port
  int io_threads = 2;
  int worker_threads = 64;              // blocking store writes run here so fsyncs batch up
  size_t max_body_bytes = 3 << 20;      // 413 above
  int max_requests_inflight = 400;      // 429 above (watches excluded)
  int max_json_depth = 100;             // 400 above
  size_t watch_window_events = 1000;    // per resource type; older resumes use a store watch
  int bookmark_interval_seconds = 60;
  int watch_timeout_seconds = 1800;     // default for watches without timeoutSeconds
  // Services' spec.clusterIP and nodePorts come from these (IPv4 CIDR; "BASE-MAX"); an empty
  // cluster IP range turns allocation off (Services keep what clients send).
  std::string service_cluster_ip_range = "10.96.0.0/12";
  std::string service_node_port_range = "30000-32767";
};

class ApiServer {
 public:
  // Creates the system namespaces if missing, starts the watch caches, then serves.
  static Result<std::unique_ptr<ApiServer>> Start(store::Store* store, ResourceRegistry registry,
                                                  const ApiServerOptions& options);
  virtual ~ApiServer() = default;
  virtual uint16_t port() const = 0;
  // Serves `schemas` (compiled DSL resource types) from now on: new types appear in discovery and
  // OpenAPI, changed ones replace their previous definition; types `origin` installed before and
  // no longer lists stop being served. Thread-safe; in-flight requests finish on what they had.
  virtual Status InstallResources(const std::vector<schema::ResourceSchema>& schemas,
                                  const std::string& origin) = 0;
  virtual void Shutdown() = 0;
};

}  // namespace rc::apiserver
