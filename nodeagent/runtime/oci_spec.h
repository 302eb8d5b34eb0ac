// Internal: the OCI runtime spec (config.json) of a container in a pod sandbox.
#pragma once

#include <string>
#include <vector>

#include "rc/base/status.h"
#include "rc/nodeagent/image_store.h"
#include "rc/nodeagent/pod_runtime.h"

namespace rc::nodeagent {

struct OciSpecInput {
  const ImageConfig* image = nullptr;
  const ContainerConfig* config = nullptr;
  std::string hostname;
  std::string pid_ns, net_ns, ipc_ns, uts_ns;           // paths to join
  std::string hosts_file, hostname_file, resolv_file;   // bind-mounted into /etc
  std::string cgroups_path;                             // "" : runc's default
  bool with_resources = true;
};

// Kubernetes' merge: command -> command+args; args only -> Entrypoint+args; neither ->
// Entrypoint+Cmd. Empty -> kInvalidArgument.
Result<std::vector<std::string>> ContainerArgv(const ImageConfig& image,
                                               const ContainerConfig& config);
// Image env, then the container's (same name replaces), PATH defaulted, HOSTNAME set.
std::vector<std::string> ContainerEnv(const ImageConfig& image, const ContainerConfig& config,
                                      const std::string& hostname);
Result<std::string> BuildOciSpec(const OciSpecInput& in);

}  // namespace rc::nodeagent
