#include "rc/proxy/model.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace rc::proxy {

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTCP:
      return "tcp";
    case Protocol::kUDP:
      return "udp";
    case Protocol::kSCTP:
      return "sctp";
  }
  return "?";
}

Result<uint32_t> ParseIPv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) {
    return Status::InvalidArgument("not an IPv4 address: \"" + text + "\"");
  }
  return ntohl(a.s_addr);
}

std::string FormatIPv4(uint32_t host_order) {
  in_addr a{htonl(host_order)};
  char buf[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &a, buf, sizeof buf);
  return buf;
}

bool Cidr::Contains(uint32_t ip) const {
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (ip & mask) == address;
}

Result<Cidr> ParseCidr(const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) return Status::InvalidArgument("not a CIDR: \"" + text + "\"");
  auto ip = ParseIPv4(text.substr(0, slash));
  if (!ip.ok()) return ip.status();
  int prefix = -1;
  try {
    prefix = std::stoi(text.substr(slash + 1));
  } catch (...) {
  }
  if (prefix < 0 || prefix > 32) return Status::InvalidArgument("bad prefix length in \"" + text + "\"");
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return Cidr{*ip & mask, prefix};
}

std::string ServicePort::Id() const {
  return ns + "/" + name + "/" + (port_name.empty() ? std::to_string(port) : port_name) + "/" +
         ProtocolName(protocol);
}

namespace {

std::string Str(const rapidjson::Value& obj, const char* field) {
  if (!obj.IsObject()) return "";
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}
int64_t Int(const rapidjson::Value& obj, const char* field, int64_t dflt) {
  if (!obj.IsObject()) return dflt;
  auto it = obj.FindMember(field);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) return dflt;
  return it->value.GetInt64();
}
const rapidjson::Value* Member(const rapidjson::Value& obj, const char* field) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(field);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}
bool ParseProtocol(const std::string& s, Protocol* out) {
  if (s.empty() || s == "TCP") {
    *out = Protocol::kTCP;
  } else if (s == "UDP") {
    *out = Protocol::kUDP;
  } else if (s == "SCTP") {
    *out = Protocol::kSCTP;
  } else {
    return false;
  }
  return true;
}

}  // namespace

std::vector<ServicePort> PortsOf(const rapidjson::Value& service, const rapidjson::Value* endpoints) {
  std::vector<ServicePort> out;
  const rapidjson::Value* meta = Member(service, "metadata");
  const rapidjson::Value* spec = Member(service, "spec");
  if (meta == nullptr || spec == nullptr) return out;
  std::string type = Str(*spec, "type");
  if (type.empty()) type = "ClusterIP";
  if (type == "ExternalName") return out;
  auto cluster_ip = ParseIPv4(Str(*spec, "clusterIP"));
  if (!cluster_ip.ok()) return out;  // None, "", or IPv6: nothing to program
  bool affinity = Str(*spec, "sessionAffinity") == "ClientIP";
  int timeout = 10800;
  if (const auto* cfg = Member(*spec, "sessionAffinityConfig")) {
    if (const auto* cip = Member(*cfg, "clientIP")) timeout = static_cast<int>(Int(*cip, "timeoutSeconds", 10800));
  }
  const rapidjson::Value* ports = Member(*spec, "ports");
  if (ports == nullptr || !ports->IsArray()) return out;
  for (const auto& p : ports->GetArray()) {
    ServicePort sp;
    sp.ns = Str(*meta, "namespace");
    sp.name = Str(*meta, "name");
    sp.port_name = Str(p, "name");
    if (!ParseProtocol(Str(p, "protocol"), &sp.protocol)) continue;
    sp.type = type;
    sp.cluster_ip = *cluster_ip;
    int64_t port = Int(p, "port", 0);
    if (port <= 0 || port > 65535) continue;
    sp.port = static_cast<uint16_t>(port);
    if (type == "NodePort" || type == "LoadBalancer") {
      int64_t np = Int(p, "nodePort", 0);
      if (np > 0 && np <= 65535) sp.node_port = static_cast<uint16_t>(np);
    }
    sp.affinity_client_ip = affinity;
    sp.affinity_timeout_s = timeout;
    const rapidjson::Value* subsets = endpoints != nullptr ? Member(*endpoints, "subsets") : nullptr;
    if (subsets != nullptr && subsets->IsArray()) {
      for (const auto& subset : subsets->GetArray()) {
        const rapidjson::Value* eports = Member(subset, "ports");
        const rapidjson::Value* addrs = Member(subset, "addresses");
        if (eports == nullptr || !eports->IsArray() || addrs == nullptr || !addrs->IsArray()) continue;
        int64_t target = 0;
        for (const auto& ep : eports->GetArray()) {
          Protocol proto;
          if (!ParseProtocol(Str(ep, "protocol"), &proto) || proto != sp.protocol) continue;
          // Unnamed service port: an unnamed endpoint port (or the only one) matches.
          if (Str(ep, "name") == sp.port_name || (sp.port_name.empty() && eports->Size() == 1)) {
            target = Int(ep, "port", 0);
            break;
          }
        }
        if (target <= 0 || target > 65535) continue;
        for (const auto& a : addrs->GetArray()) {
          auto ip = ParseIPv4(Str(a, "ip"));
          if (ip.ok()) sp.endpoints.push_back({*ip, static_cast<uint16_t>(target)});
        }
      }
    }
    std::sort(sp.endpoints.begin(), sp.endpoints.end());
    sp.endpoints.erase(std::unique(sp.endpoints.begin(), sp.endpoints.end()), sp.endpoints.end());
    out.push_back(std::move(sp));
  }
  return out;
}

}  // namespace rc::proxy
