// Kind -> REST resource, from the API server's discovery documents (/api/v1, /apis/...), refreshed
// when a kind is not known yet (operator types appear while the server runs).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "rc/base/status.h"
#include "rc/client/rest_client.h"

namespace rc::client {

struct ResourceInfo {
  std::string group;    // "" for core
  std::string version;  // "v1"
  std::string kind;     // "Pod"
  std::string plural;   // "pods"
  bool namespaced = true;
  std::vector<std::string> verbs;
  std::vector<std::string> subresources;  // "status", "scale", ...

  std::string api_version() const { return group.empty() ? version : group + "/" + version; }
  bool HasVerb(const std::string& v) const;
  bool HasSubresource(const std::string& s) const;
  // "/api/v1/namespaces/ns/pods" (ns ignored for cluster-scoped; "" = all namespaces).
  std::string CollectionPath(const std::string& ns) const;
  // CollectionPath + "/name" [+ "/sub"].
  std::string ObjectPath(const std::string& ns, const std::string& name, const std::string& sub = "") const;
};

class RestMapper {
 public:
  explicit RestMapper(RestClient* client) : client_(client) {}
  // The resource serving (apiVersion, kind); re-reads discovery (at most every 500 ms) on a miss.
  Result<ResourceInfo> ForKind(const std::string& api_version, const std::string& kind);
  // Every resource (not subresources) the server lists, re-read from discovery now.
  Result<std::vector<ResourceInfo>> All();

 private:
  Status Refresh();
  RestClient* client_;
  std::mutex mu_;
  std::map<std::pair<std::string, std::string>, ResourceInfo> by_kind_;
  std::chrono::steady_clock::time_point last_refresh_{};
};

}  // namespace rc::client
