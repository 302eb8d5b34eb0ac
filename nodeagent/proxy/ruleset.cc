#include "rc/proxy/ruleset.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace rc::proxy {
namespace {

// nft's datatype ids (so `nft list` prints our sets like its own).
constexpr uint32_t kTypeInteger = 4, kTypeIpAddr = 7, kTypeInetProto = 12, kTypeInetService = 13;
constexpr uint32_t kTypeMark = 19;
constexpr uint32_t kTypeBits = 6;
constexpr uint32_t kServiceKeyType = (kTypeIpAddr << (2 * kTypeBits)) | (kTypeInetProto << kTypeBits) | kTypeInetService;
constexpr uint32_t kNodePortKeyType = (kTypeInetProto << kTypeBits) | kTypeInetService;
// vip . proto . port . endpoint index (numgen; host order like nft's mark type)
constexpr uint32_t kEndpointsKeyType = (kServiceKeyType << kTypeBits) | kTypeMark;
constexpr uint32_t kEndpointDataType = (kTypeIpAddr << kTypeBits) | kTypeInetService;  // ip . port
// vip . proto . port . ip saddr . ip daddr
constexpr uint32_t kHairpinKeyType = (((kServiceKeyType << kTypeBits) | kTypeIpAddr) << kTypeBits) | kTypeIpAddr;
constexpr uint32_t kReg1 = NFT_REG_1, kReg2 = NFT_REG_2, kReg32_0 = NFT_REG32_00;

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
std::string Be16(uint16_t v) { return {static_cast<char>(v >> 8), static_cast<char>(v)}; }
std::string Host32(uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); }
std::string Pad4(std::string s) {
  s.resize((s.size() + 3) / 4 * 4, '\0');
  return s;
}

std::string Hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

Expr Payload(uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
  Expr e{Expr::Kind::kPayload};
  e.base = base, e.offset = offset, e.len = len, e.dreg = dreg;
  return e;
}
Expr Saddr(uint32_t dreg) { return Payload(NFT_PAYLOAD_NETWORK_HEADER, 12, 4, dreg); }
Expr Daddr(uint32_t dreg) { return Payload(NFT_PAYLOAD_NETWORK_HEADER, 16, 4, dreg); }
Expr Dport(uint32_t dreg) { return Payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, dreg); }
Expr Meta(uint32_t key, uint32_t dreg) {
  Expr e{Expr::Kind::kMeta};
  e.key = key, e.dreg = dreg;
  return e;
}
Expr MetaSet(uint32_t key, uint32_t sreg) {
  Expr e{Expr::Kind::kMetaSet};
  e.key = key, e.sreg = sreg;
  return e;
}
Expr Cmp(uint32_t sreg, uint32_t op, std::string data) {
  Expr e{Expr::Kind::kCmp};
  e.sreg = sreg, e.op = op, e.data = std::move(data);
  return e;
}
Expr Bitwise(uint32_t reg, std::string mask, std::string xor_) {
  Expr e{Expr::Kind::kBitwise};
  e.sreg = reg, e.dreg = reg, e.len = static_cast<uint32_t>(mask.size()), e.mask = std::move(mask);
  e.xor_ = std::move(xor_);
  return e;
}
Expr Lookup(uint32_t sreg, std::string set, bool map = false) {
  Expr e{Expr::Kind::kLookup};
  e.sreg = sreg, e.name = std::move(set), e.map = map, e.dreg = NFT_REG_VERDICT;
  return e;
}
Expr Immediate(uint32_t dreg, std::string data) {
  Expr e{Expr::Kind::kImmediate};
  e.dreg = dreg, e.data = std::move(data);
  return e;
}
Expr Verdict(int32_t verdict, std::string chain = "") {
  Expr e{Expr::Kind::kVerdict};
  e.verdict = verdict, e.name = std::move(chain);
  return e;
}
Expr Reject(uint32_t type, uint32_t code) {
  Expr e{Expr::Kind::kReject};
  e.key = type, e.op = code;
  return e;
}

// ip daddr . meta l4proto . th dport -> reg 1 (12 bytes)
void ServiceKey(std::vector<Expr>& x) {
  x.push_back(Daddr(kReg1));
  x.push_back(Meta(NFT_META_L4PROTO, kReg32_0 + 1));
  x.push_back(Dport(kReg32_0 + 2));
}
// ip daddr @nodeport-ips ; meta l4proto . th dport -> reg 1 (8 bytes)
void NodePortKey(std::vector<Expr>& x) {
  x.push_back(Daddr(kReg1));
  x.push_back(Lookup(kReg1, kNodePortIpsSet));
  x.push_back(Meta(NFT_META_L4PROTO, kReg1));
  x.push_back(Dport(kReg32_0 + 1));
}
void IfTcp(std::vector<Expr>& x) {
  x.push_back(Meta(NFT_META_L4PROTO, kReg1));
  x.push_back(Cmp(kReg1, NFT_CMP_EQ, std::string(1, static_cast<char>(IPPROTO_TCP))));
}

std::string ServiceElementKey(const ServicePort& p) {
  return Be32(p.cluster_ip) + Pad4(std::string(1, static_cast<char>(p.protocol))) + Pad4(Be16(p.port));
}
std::string NodePortElementKey(const ServicePort& p) {
  return Pad4(std::string(1, static_cast<char>(p.protocol))) + Pad4(Be16(p.node_port));
}

ChainSpec Base(std::string name, std::string type, uint32_t hook, int32_t prio) {
  ChainSpec c;
  c.name = std::move(name), c.base = true, c.type = std::move(type), c.hook = hook, c.priority = prio;
  return c;
}

const char* KindName(Expr::Kind k) {
  switch (k) {
    case Expr::Kind::kPayload: return "payload";
    case Expr::Kind::kMeta: return "meta";
    case Expr::Kind::kMetaSet: return "metaset";
    case Expr::Kind::kCmp: return "cmp";
    case Expr::Kind::kBitwise: return "bitwise";
    case Expr::Kind::kLookup: return "lookup";
    case Expr::Kind::kImmediate: return "imm";
    case Expr::Kind::kVerdict: return "verdict";
    case Expr::Kind::kNumgen: return "numgen";
    case Expr::Kind::kCt: return "ct";
    case Expr::Kind::kDnat: return "dnat";
    case Expr::Kind::kMasq: return "masq";
    case Expr::Kind::kReject: return "reject";
    case Expr::Kind::kDynsetUpdate: return "update";
  }
  return "?";
}

}  // namespace

std::string SelectChain(uint32_t n, bool node_port) {
  return (node_port ? "np-select-" : "select-") + std::to_string(n);
}

std::string Rule::Text() const {
  std::string out;
  char buf[160];
  for (const auto& e : exprs) {
    std::snprintf(buf, sizeof buf, "[%s b%u o%u l%u k%u op%u m%u s%u,%u d%u v%d%s%s", KindName(e.kind), e.base,
                  e.offset, e.len, e.key, e.op, e.mod, e.sreg, e.sreg2, e.dreg, e.verdict, e.invert ? " inv" : "",
                  e.map ? " map" : "");
    out += buf;
    if (!e.data.empty()) out += " " + Hex(e.data);
    if (!e.mask.empty()) out += " &" + Hex(e.mask) + "^" + Hex(e.xor_);
    if (!e.name.empty()) out += " " + e.name;
    out += "]";
  }
  return out;
}

bool ChainSpec::operator==(const ChainSpec& o) const {
  if (name != o.name || base != o.base || type != o.type || hook != o.hook || priority != o.priority ||
      rules.size() != o.rules.size()) {
    return false;
  }
  for (size_t i = 0; i < rules.size(); ++i) {
    if (rules[i].Text() != o.rules[i].Text()) return false;
  }
  return true;
}

bool PortRendering::operator==(const PortRendering& o) const {
  return sets == o.sets && chains == o.chains && elements == o.elements;
}

size_t Rendered::RuleCount() const {
  size_t n = 0;
  for (const auto& c : chains) n += c.rules.size();
  for (const auto& [id, p] : ports) {
    for (const auto& c : p.chains) n += c.rules.size();
  }
  return n;
}

PortRendering RenderPort(const ServicePort& p, const RenderOptions& options) {
  PortRendering out;
  const std::string id = p.Id();
  if (p.endpoints.empty()) {
    out.elements.push_back({kNoEndpointServicesSet, ServiceElementKey(p), "", ""});
    if (p.node_port != 0) out.elements.push_back({kNoEndpointNodePortsSet, NodePortElementKey(p), "", ""});
    return out;
  }
  const std::string svc_chain = "svc-" + id;
  const std::string key = ServiceElementKey(p);  // 12 bytes: vip . proto . port
  ChainSpec svc;
  svc.name = svc_chain;
  if (options.masquerade_all) {
    svc.rules.push_back({{Verdict(NFT_JUMP, "mark-for-masquerade")}});
  } else if (options.cluster_cidr) {
    const Cidr& c = *options.cluster_cidr;
    uint32_t mask = c.prefix == 0 ? 0 : ~uint32_t{0} << (32 - c.prefix);
    svc.rules.push_back({{Saddr(kReg1), Bitwise(kReg1, Be32(mask), Be32(0)), Cmp(kReg1, NFT_CMP_NEQ, Be32(c.address)),
                          Verdict(NFT_JUMP, "mark-for-masquerade")}});
  }
  Expr dnat{Expr::Kind::kDnat};
  dnat.sreg = kReg1, dnat.sreg2 = kReg32_0 + 1;  // ip in reg32 0, port in reg32 1 (the map's value)
  const uint32_t n = static_cast<uint32_t>(p.endpoints.size());
  const bool shared = !p.affinity_client_ip && n <= kSharedSelectMax;
  auto ep_data = [&](uint32_t i) { return Be32(p.endpoints[i].ip) + Pad4(Be16(p.endpoints[i].port)); };
  if (shared) {
    // The shared select-<n> chain looks the packet's (vip . proto . port . random index) up in
    // the shared data map: no set of our own, no binding of our own (see the README).
    svc.rules.push_back({{Verdict(NFT_GOTO, SelectChain(n, false))}});
    for (uint32_t i = 0; i < n; ++i) out.elements.push_back({kServiceEndpointsMap, key + Host32(i), "", ep_data(i)});
  } else {
    // Affinity (or more endpoints than the shared select chains cover): a map of our own.
    const std::string eps_set = "eps-" + id, aff_set = "aff-" + id;
    SetSpec eps;
    eps.name = eps_set, eps.key_type = kTypeMark, eps.key_len = 4, eps.flags = NFT_SET_MAP;
    eps.data_type = kEndpointDataType, eps.data_len = 8;
    out.sets.push_back(eps);
    for (uint32_t i = 0; i < n; ++i) out.elements.push_back({eps_set, Host32(i), "", ep_data(i)});
    if (p.affinity_client_ip) {
      SetSpec s;
      s.name = aff_set, s.key_type = kTypeIpAddr, s.key_len = 4, s.flags = NFT_SET_MAP | NFT_SET_TIMEOUT | NFT_SET_EVAL;
      s.data_type = kEndpointDataType, s.data_len = 8;
      s.timeout_ms = static_cast<uint64_t>(std::max(1, p.affinity_timeout_s)) * 1000, s.size = 65535;
      out.sets.push_back(s);
      Expr lookup = Lookup(kReg1, aff_set, true);
      lookup.dreg = kReg1;
      svc.rules.push_back({{Saddr(kReg1), lookup, dnat}});
    }
    Rule r;
    Expr ng{Expr::Kind::kNumgen};
    ng.dreg = kReg1, ng.mod = n;
    r.exprs.push_back(ng);
    Expr lookup = Lookup(kReg1, eps_set, true);
    lookup.dreg = kReg1;
    r.exprs.push_back(lookup);
    if (p.affinity_client_ip) {
      r.exprs.push_back(Saddr(kReg32_0 + 2));
      Expr upd{Expr::Kind::kDynsetUpdate};
      upd.sreg = kReg32_0 + 2, upd.sreg2 = kReg1, upd.name = aff_set;
      r.exprs.push_back(upd);
    }
    r.exprs.push_back(dnat);
    svc.rules.push_back(std::move(r));
  }
  for (uint32_t i = 0; i < n; ++i) {
    // Hairpin: a backend reaching itself through the service is masqueraded in postrouting, so
    // the reply comes back through the node (else it would answer itself directly).
    out.elements.push_back({kHairpinSet, key + Be32(p.endpoints[i].ip) + Be32(p.endpoints[i].ip), "", ""});
  }
  out.chains.push_back(std::move(svc));
  out.elements.push_back({kServiceIpsMap, key, svc_chain, ""});
  if (p.node_port != 0) {
    ChainSpec ext;
    ext.name = "ext-" + id;
    // Off-cluster clients of a NodePort: masquerade so replies come back through this node.
    ext.rules.push_back({{Verdict(NFT_JUMP, "mark-for-masquerade")}});
    if (shared) {
      ext.rules.push_back({{Verdict(NFT_GOTO, SelectChain(n, true))}});
      std::string np_key = Be32(0) + NodePortElementKey(p);  // 0.0.0.0 . proto . nodePort
      for (uint32_t i = 0; i < n; ++i) {
        out.elements.push_back({kServiceEndpointsMap, np_key + Host32(i), "", ep_data(i)});
      }
    } else {
      ext.rules.push_back({{Verdict(NFT_GOTO, svc_chain)}});
    }
    out.chains.push_back(std::move(ext));
    out.elements.push_back({kServiceNodePortsMap, NodePortElementKey(p), "ext-" + id, ""});
  }
  // The hairpin set's keys of two endpoints with the same IP (different ports) coincide.
  std::sort(out.elements.begin(), out.elements.end(), [](const Element& a, const Element& b) {
    return std::tie(a.set, a.key) < std::tie(b.set, b.key);
  });
  out.elements.erase(std::unique(out.elements.begin(), out.elements.end(),
                                 [](const Element& a, const Element& b) { return a.set == b.set && a.key == b.key; }),
                     out.elements.end());
  return out;
}

Rendered Render(const DesiredState& state, const RenderOptions& options) {
  Rendered r;
  auto set = [](const char* name, uint32_t type, uint32_t len, bool map) {
    SetSpec s;
    s.name = name, s.key_type = type, s.key_len = len, s.verdict_map = map, s.flags = map ? NFT_SET_MAP : 0;
    return s;
  };
  SetSpec endpoints = set(kServiceEndpointsMap, kEndpointsKeyType, 16, false);
  endpoints.flags = NFT_SET_MAP, endpoints.data_type = kEndpointDataType, endpoints.data_len = 8;
  r.sets = {set(kServiceIpsMap, kServiceKeyType, 12, true), set(kServiceNodePortsMap, kNodePortKeyType, 8, true),
            set(kNodePortIpsSet, kTypeIpAddr, 4, false), set(kNoEndpointServicesSet, kServiceKeyType, 12, false),
            set(kNoEndpointNodePortsSet, kNodePortKeyType, 8, false), endpoints,
            set(kHairpinSet, kHairpinKeyType, 20, false)};
  for (uint32_t ip : state.node_ips) r.elements.push_back({kNodePortIpsSet, Be32(ip), "", ""});

  ChainSpec mark;
  mark.name = "mark-for-masquerade";
  mark.rules.push_back({{Meta(NFT_META_MARK, kReg1), Bitwise(kReg1, Host32(~kMasqueradeMark), Host32(kMasqueradeMark)),
                         MetaSet(NFT_META_MARK, kReg1)}});
  ChainSpec services;
  services.name = "services";
  {
    Rule a;
    ServiceKey(a.exprs);
    a.exprs.push_back(Lookup(kReg1, kServiceIpsMap, true));
    services.rules.push_back(std::move(a));
    Rule b;
    NodePortKey(b.exprs);
    b.exprs.push_back(Lookup(kReg1, kServiceNodePortsMap, true));
    services.rules.push_back(std::move(b));
  }
  ChainSpec pre = Base("nat-prerouting", "nat", NF_INET_PRE_ROUTING, -100);
  pre.rules.push_back({{Verdict(NFT_JUMP, "services")}});
  ChainSpec out = Base("nat-output", "nat", NF_INET_LOCAL_OUT, -100);
  out.rules.push_back({{Verdict(NFT_JUMP, "services")}});
  ChainSpec post = Base("nat-postrouting", "nat", NF_INET_POST_ROUTING, 100);
  {
    // ct original daddr . l4proto . ct original dport . ip saddr . ip daddr @hairpin-endpoints
    Rule h;
    Expr vip{Expr::Kind::kCt};
    vip.key = NFT_CT_DST_IP, vip.op = 0 /* IP_CT_DIR_ORIGINAL */, vip.dreg = kReg1;
    Expr port{Expr::Kind::kCt};
    port.key = NFT_CT_PROTO_DST, port.op = 0, port.dreg = kReg32_0 + 2;
    h.exprs = {vip, Meta(NFT_META_L4PROTO, kReg32_0 + 1), port, Saddr(kReg32_0 + 3), Daddr(kReg32_0 + 4),
               Lookup(kReg1, kHairpinSet), Expr{Expr::Kind::kMasq}};
    post.rules.push_back(std::move(h));
  }
  post.rules.push_back({{Meta(NFT_META_MARK, kReg1), Bitwise(kReg1, Host32(kMasqueradeMark), Host32(0)),
                         Cmp(kReg1, NFT_CMP_NEQ, Host32(0)), Expr{Expr::Kind::kMasq}}});
  // No endpoints: refuse at once (TCP reset, ICMP port unreachable otherwise), before routing.
  auto no_endpoint_rules = [](ChainSpec& c) {
    Rule tcp;
    ServiceKey(tcp.exprs);
    tcp.exprs.push_back(Lookup(kReg1, kNoEndpointServicesSet));
    IfTcp(tcp.exprs);
    tcp.exprs.push_back(Reject(NFT_REJECT_TCP_RST, 0));
    c.rules.push_back(tcp);
    Rule other;
    ServiceKey(other.exprs);
    other.exprs.push_back(Lookup(kReg1, kNoEndpointServicesSet));
    other.exprs.push_back(Reject(NFT_REJECT_ICMP_UNREACH, 3));
    c.rules.push_back(other);
    Rule np_tcp;
    NodePortKey(np_tcp.exprs);
    np_tcp.exprs.push_back(Lookup(kReg1, kNoEndpointNodePortsSet));
    IfTcp(np_tcp.exprs);
    np_tcp.exprs.push_back(Reject(NFT_REJECT_TCP_RST, 0));
    c.rules.push_back(np_tcp);
    Rule np_other;
    NodePortKey(np_other.exprs);
    np_other.exprs.push_back(Lookup(kReg1, kNoEndpointNodePortsSet));
    np_other.exprs.push_back(Reject(NFT_REJECT_ICMP_UNREACH, 3));
    c.rules.push_back(np_other);
  };
  ChainSpec fpre = Base("filter-prerouting", "filter", NF_INET_PRE_ROUTING, -110);
  no_endpoint_rules(fpre);
  ChainSpec fout = Base("filter-output", "filter", NF_INET_LOCAL_OUT, -110);
  no_endpoint_rules(fout);
  r.chains = {std::move(mark), std::move(services), std::move(pre), std::move(out), std::move(post),
              std::move(fpre), std::move(fout)};
  // select-<n> / np-select-<n>: (vip . proto . port | 0 . proto . nodePort) . numgen random mod n
  // -> @service-endpoints -> dnat. The only rules bound to the shared data map.
  for (uint32_t n = 1; n <= kSharedSelectMax; ++n) {
    for (bool np : {false, true}) {
      ChainSpec c;
      c.name = SelectChain(n, np);
      Rule rule;
      if (np) {
        rule.exprs.push_back(Immediate(kReg32_0, Be32(0)));
      } else {
        rule.exprs.push_back(Daddr(kReg1));
      }
      rule.exprs.push_back(Meta(NFT_META_L4PROTO, kReg32_0 + 1));
      rule.exprs.push_back(Dport(kReg32_0 + 2));
      Expr ng{Expr::Kind::kNumgen};
      ng.dreg = kReg32_0 + 3, ng.mod = n;
      rule.exprs.push_back(ng);
      Expr lookup = Lookup(kReg1, kServiceEndpointsMap, true);
      lookup.dreg = kReg1;
      rule.exprs.push_back(lookup);
      Expr dnat{Expr::Kind::kDnat};
      dnat.sreg = kReg1, dnat.sreg2 = kReg32_0 + 1;
      rule.exprs.push_back(dnat);
      c.rules.push_back(std::move(rule));
      r.chains.push_back(std::move(c));
    }
  }
  for (const auto& [id, port] : state.ports) r.ports.emplace(id, RenderPort(port, options));
  return r;
}

std::string RuleTag(const Rule& rule) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "rc:%016llx", static_cast<unsigned long long>(Fnv1a(rule.Text())));
  return buf;
}

std::string ElementEntry(const std::string& key, const std::string& value) { return Hex(key) + ">" + value; }
std::string HexBytes(const std::string& bytes) { return Hex(bytes); }
std::string Element::Value() const { return !chain.empty() ? chain : data.empty() ? "" : "=" + Hex(data); }

Fingerprint ExpectedFingerprint(const Rendered& r) {
  Fingerprint f;
  auto add_chain = [&](const ChainSpec& c) {
    auto& tags = f.chains[c.name];
    for (const auto& rule : c.rules) tags.push_back(RuleTag(rule));
  };
  for (const auto& s : r.sets) {
    if (!(s.flags & NFT_SET_EVAL)) f.elements[s.name];
  }
  for (const auto& [id, p] : r.ports) {
    for (const auto& s : p.sets) {
      if (!(s.flags & NFT_SET_EVAL)) f.elements[s.name];
    }
  }
  for (const auto& c : r.chains) add_chain(c);
  auto add_element = [&](const Element& e) { f.elements[e.set].push_back(ElementEntry(e.key, e.Value())); };
  for (const auto& e : r.elements) add_element(e);
  for (const auto& [id, p] : r.ports) {
    for (const auto& c : p.chains) add_chain(c);
    for (const auto& e : p.elements) add_element(e);
  }
  for (auto& [name, v] : f.elements) std::sort(v.begin(), v.end());
  return f;
}

std::string Fingerprint::Summary() const {
  size_t rules = 0, elems = 0;
  for (const auto& [n, t] : chains) rules += t.size();
  for (const auto& [n, e] : elements) elems += e.size();
  return std::to_string(chains.size()) + " chains, " + std::to_string(rules) + " rules, " + std::to_string(elems) +
         " elements";
}

}  // namespace rc::proxy
