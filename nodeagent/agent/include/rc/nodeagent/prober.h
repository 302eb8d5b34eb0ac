// Container probes (liveness, readiness, startup) as the kubelet runs them: exec through the
// runtime, httpGet and tcpSocket dialled from the pod network's namespace (the node's).
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rc/base/status.h"

namespace rc::nodeagent {

class PodRuntime;

struct ProbeSpec {
  enum class Kind { kNone, kExec, kHttpGet, kTcpSocket } kind = Kind::kNone;
  std::vector<std::string> command;  // exec
  std::string path = "/", host, scheme = "HTTP";
  int port = 0;
  std::vector<std::pair<std::string, std::string>> http_headers;
  int initial_delay_seconds = 0, period_seconds = 10, timeout_seconds = 1;
  int success_threshold = 1, failure_threshold = 3;
};

// Parses container.livenessProbe etc.; named ports resolve through the container's ports.
// An absent probe gives kind kNone; an invalid one an error.
Result<ProbeSpec> ParseProbe(const rapidjson::Value* probe, const rapidjson::Value& container);

struct ProbeOutcome {
  bool success = false;
  std::string message;  // why it failed ("HTTP probe failed with statuscode: 500", output, ...)
};

// Runs one probe against a container whose pod has `pod_ip`; TCP/HTTP connections are opened in
// the network namespace at `netns_path` ("" = the caller's).
ProbeOutcome RunProbe(const ProbeSpec& probe, PodRuntime* runtime, const std::string& container_id,
                      const std::string& pod_ip, const std::string& netns_path);

// A socket of `type` (SOCK_STREAM...) created inside the network namespace at `netns_path`
// ("" = the current one); the calling thread's namespace is restored. -1 with errno on failure.
int SocketInNetns(const std::string& netns_path, int domain, int type);

}  // namespace rc::nodeagent
