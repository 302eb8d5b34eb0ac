// The rendered nftables ruleset of the proxy (kernel-independent IR), rendered from a
// DesiredState. The NftProgrammer turns it into netlink messages; equality of rules is equality
// of their text (Rule::Text), which is also hashed into each rule's comment so a dump of the kernel
// table can be checked against what we wrote.
//
// Layout (table ip <name>), kube-proxy nftables-mode style but flat (no per-service sets, no
// per-endpoint chains), so the kernel's per-transaction cost stays linear (see
// nodeagent/proxy/README.md, "Why this layout"):
//   map service-ips       ip daddr . meta l4proto . th dport : verdict  -> goto svc-<id>
//   map service-nodeports meta l4proto . th dport : verdict             -> goto ext-<id>
//   map service-endpoints vip . proto . port . index : ip . port (data map, no verdicts)
//   set hairpin-endpoints vip . proto . port . endpoint . endpoint (ct original daddr/dport,
//                         ip saddr, ip daddr in postrouting: a pod reached itself -> masquerade)
//   set nodeport-ips      the node's addresses (NodePort only to these)
//   set no-endpoint-services / no-endpoint-nodeports                   -> reject
//   chain nat-prerouting (nat prerouting dstnat) / nat-output (nat output -100): jump services
//   chain services: the two map lookups
//   chain svc-<id>: [masquerade off-cluster sources] goto select-<N>
//   chain select-<n> (n = 1..kSharedSelectMax, shared): ip daddr . l4proto . th dport .
//                   numgen random mod n -> @service-endpoints -> dnat (np-select-<n>: the same
//                   with 0.0.0.0 . l4proto . nodePort, for NodePorts)
//   with ClientIP affinity or more than kSharedSelectMax endpoints, instead:
//   chain svc-<id>: [masquerade] [saddr @aff-<id> -> dnat] numgen mod N -> @eps-<id>
//                   (index : ip . port, a map of its own) -> [update @aff-<id>] dnat
//   chain ext-<id>: mark for masquerade, goto np-select-<N> (or svc-<id>)
//   chain nat-postrouting (nat postrouting srcnat): hairpin -> masquerade; marked -> masquerade
//   chain filter-prerouting / filter-output (filter, -110): no-endpoint sets -> reject
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "rc/proxy/model.h"

namespace rc::proxy {

inline constexpr uint32_t kMasqueradeMark = 0x4000;

// One nftables expression. Registers: 1 = NFT_REG_1 (16 bytes), 8.. = 32-bit registers.
struct Expr {
  enum class Kind {
    kPayload,  // load `len` bytes at `offset` of header `base` (0 network, 1 transport) into dreg
    kMeta,     // load meta `key` into dreg
    kMetaSet,  // meta `key` = sreg
    kCmp,      // sreg `op` data (op: 0 eq, 1 neq)
    kBitwise,  // dreg = (sreg & mask) ^ xor, len = data size
    kLookup,   // sreg in set `name` [map: result into dreg (NFT_REG_VERDICT for a verdict map)] [invert]
    kImmediate,  // dreg = data
    kVerdict,    // verdict `verdict` (NFT_JUMP/NFT_GOTO/NF_ACCEPT...) to chain `name`
    kNumgen,     // dreg = random mod `mod`
    kCt,         // dreg = ct `key` (direction `op`)
    kDnat,       // dnat addr sreg, proto sreg2
    kMasq,
    kReject,     // type (0 icmp unreach, 1 tcp reset), code
    kDynsetUpdate,  // update set `name` with key sreg [data sreg2 (maps)]
  };
  Kind kind;
  uint32_t base = 0, offset = 0, len = 0, key = 0, op = 0, mod = 0;
  uint32_t sreg = 0, sreg2 = 0, dreg = 0;
  int32_t verdict = 0;
  bool invert = false, map = false;
  std::string data, mask, xor_;  // raw bytes
  std::string name;              // set or chain
};

struct Rule {
  std::vector<Expr> exprs;
  std::string Text() const;  // canonical, nft-like
};

struct ChainSpec {
  std::string name;
  bool base = false;
  std::string type;  // "nat" | "filter" (base chains)
  uint32_t hook = 0;
  int32_t priority = 0;
  std::vector<Rule> rules;
  bool operator==(const ChainSpec& o) const;
};

struct SetSpec {
  std::string name;
  uint32_t key_type = 0, key_len = 0;
  uint32_t flags = 0;       // NFT_SET_*
  bool verdict_map = false;
  uint32_t data_type = 0, data_len = 0;  // data maps (flags has NFT_SET_MAP, verdict_map false)
  uint64_t timeout_ms = 0;  // dynamic sets
  uint32_t size = 0;        // dynamic sets
  bool operator==(const SetSpec&) const = default;
};

struct Element {
  std::string set;
  std::string key;    // raw key bytes
  std::string chain;  // goto target for verdict maps; empty otherwise
  std::string data;   // raw value bytes for data maps; empty otherwise
  std::string Value() const;  // chain, or "=" + hex of data, or ""
  bool operator==(const Element&) const = default;
};

// Everything one service port owns.
struct PortRendering {
  std::vector<SetSpec> sets;       // affinity map (flushed when the port's endpoints change)
  std::vector<ChainSpec> chains;   // svc-, ext- chains
  std::vector<Element> elements;   // entries in the shared maps/sets
  bool operator==(const PortRendering& o) const;
};

struct RenderOptions {
  std::optional<Cidr> cluster_cidr;  // sources outside are masqueraded (ClusterIP)
  bool masquerade_all = false;       // masquerade every service connection (plain L2 bridges)
};

struct Rendered {
  std::vector<SetSpec> sets;      // the shared maps and sets
  std::vector<ChainSpec> chains;  // base chains and helper chains
  std::vector<Element> elements;  // static elements (node IPs)
  std::map<std::string, PortRendering> ports;  // by ServicePort::Id
  size_t RuleCount() const;
};

// Names of the shared objects.
inline constexpr const char* kServiceIpsMap = "service-ips";
inline constexpr const char* kServiceNodePortsMap = "service-nodeports";
inline constexpr const char* kNodePortIpsSet = "nodeport-ips";
inline constexpr const char* kNoEndpointServicesSet = "no-endpoint-services";
inline constexpr const char* kNoEndpointNodePortsSet = "no-endpoint-nodeports";
inline constexpr const char* kServiceEndpointsMap = "service-endpoints";
inline constexpr const char* kHairpinSet = "hairpin-endpoints";
// Services without affinity and with at most this many endpoints share the select-<n> chains;
// the others get a map of their own (eps-<id>).
inline constexpr uint32_t kSharedSelectMax = 32;
std::string SelectChain(uint32_t n, bool node_port);

PortRendering RenderPort(const ServicePort& port, const RenderOptions& options);
Rendered Render(const DesiredState& state, const RenderOptions& options);

// The fingerprint of a table's content as the programmer reads it back: chain names, each chain's
// rule tags in order, and the elements of the non-dynamic sets. Computed identically from a
// Rendered (ExpectedFingerprint) and from a kernel dump (NftProgrammer::ReadFingerprint).
struct Fingerprint {
  std::map<std::string, std::vector<std::string>> chains;    // name -> rule tags
  std::map<std::string, std::vector<std::string>> elements;  // set -> sorted "keyhex>chain"
  bool operator==(const Fingerprint&) const = default;
  std::string Summary() const;  // counts, for logs
};
std::string RuleTag(const Rule& rule);  // "rc:" + 16 hex digits of a hash of Text()
std::string ElementEntry(const std::string& key, const std::string& value);  // value: Element::Value()
std::string HexBytes(const std::string& bytes);
Fingerprint ExpectedFingerprint(const Rendered& rendered);

}  // namespace rc::proxy
