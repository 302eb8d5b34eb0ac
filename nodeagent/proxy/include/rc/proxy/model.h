// The proxy's pure model: Services + Endpoints (core v1 JSON) -> the service ports to program.
// No kernel, no I/O: unit-testable.
#pragma once

#include <rapidjson/document.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rc/base/status.h"

namespace rc::proxy {

enum class Protocol : uint8_t { kTCP = 6, kUDP = 17, kSCTP = 132 };
const char* ProtocolName(Protocol p);  // "tcp", "udp", "sctp"

// IPv4 in network byte order helpers. ParseIPv4("10.0.0.1") -> host-order value.
Result<uint32_t> ParseIPv4(const std::string& text);
std::string FormatIPv4(uint32_t host_order);
struct Cidr {
  uint32_t address = 0;  // host order, masked
  int prefix = 0;
  bool Contains(uint32_t ip) const;
};
Result<Cidr> ParseCidr(const std::string& text);

struct Endpoint {
  uint32_t ip = 0;  // host order
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
  auto operator<=>(const Endpoint&) const = default;
};

// One (Service, port) the proxy programs.
struct ServicePort {
  std::string ns, name, port_name;  // port_name may be empty (single unnamed port)
  Protocol protocol = Protocol::kTCP;
  std::string type = "ClusterIP";   // ClusterIP | NodePort | LoadBalancer
  uint32_t cluster_ip = 0;          // host order
  uint16_t port = 0;
  uint16_t node_port = 0;           // 0: none
  bool affinity_client_ip = false;
  int affinity_timeout_s = 10800;
  std::vector<Endpoint> endpoints;  // ready endpoints, sorted, unique

  // Stable identity: "ns/name/portname/tcp" (portname is the port number when unnamed).
  std::string Id() const;
  bool operator==(const ServicePort&) const = default;
};

// The ports of one Service (key "ns/name") given its Endpoints object (may be null). Headless
// (clusterIP None), unallocated (no clusterIP) and ExternalName Services yield none. Endpoint ports
// match Service ports by name (unnamed: the only one); notReadyAddresses are skipped.
std::vector<ServicePort> PortsOf(const rapidjson::Value& service, const rapidjson::Value* endpoints);

// The whole desired state: ports by Id (ordered, so rendering is deterministic).
struct DesiredState {
  std::map<std::string, ServicePort> ports;
  std::vector<uint32_t> node_ips;  // host order, sorted: NodePort addresses
};

}  // namespace rc::proxy
