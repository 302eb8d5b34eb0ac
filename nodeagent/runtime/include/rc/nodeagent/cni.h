// CNI driver: runs the plugins of a network configuration list as the CNI spec (1.0) says:
// CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH/CNI_ARGS in the environment, the
// plugin's config (name, cniVersion, prevResult) on stdin, its result or error JSON on stdout.
// ADD runs the list in order chaining prevResult; CHECK in order with the cached result; DEL in
// reverse order with the cached result.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "rc/base/status.h"

namespace rc::nodeagent {

struct CniOptions {
  std::vector<std::string> bin_dirs = {"/usr/lib/cni", "/opt/cni/bin"};
  std::string conf_dir;       // the first *.conflist (or *.conf) by name is used
  std::string run_in_netns;   // "" : plugins run in the caller's network namespace
  int timeout_ms = 30000;
};

struct CniResult {
  std::string ip;          // first IPv4 address, without the prefix
  int prefix_length = 0;
  std::string gateway;
  std::string json;        // the final result, cached by the caller for CHECK and DEL
};

struct CniInvocation {
  std::string container_id, netns_path, ifname = "eth0";
  std::vector<std::pair<std::string, std::string>> args;  // CNI_ARGS (K8S_POD_NAME=...)
  // Capability arguments, a JSON object ({"portMappings":[...]}) or "": each plugin gets, as
  // its runtimeConfig, the members it declares in its "capabilities" (CNI conventions).
  std::string capability_args;
};

class CniDriver {
 public:
  explicit CniDriver(CniOptions options) : options_(std::move(options)) {}

  Result<CniResult> Add(const CniInvocation& inv) const;
  Status Check(const CniInvocation& inv, const std::string& cached_result) const;
  // cached_result may be "" (DEL without prevResult).
  Status Del(const CniInvocation& inv, const std::string& cached_result) const;
  // Name of the network the config dir defines (errors: no or unreadable config).
  Result<std::string> NetworkName() const;

 private:
  Result<std::string> Invoke(const std::string& command, const std::string& plugin_conf,
                             const std::string& type, const CniInvocation& inv) const;
  const CniOptions options_;
};

// A conflist for a node: bridge `bridge` (the pods' gateway, ipMasq false, hairpin on),
// host-local IPAM over `subnet` with its allocations in `ipam_data_dir`, portmap (hostPort,
// through the portMappings capability), then loopback.
std::string MakeBridgeConfList(const std::string& network_name, const std::string& bridge,
                               const std::string& subnet, const std::string& ipam_data_dir);

}  // namespace rc::nodeagent
