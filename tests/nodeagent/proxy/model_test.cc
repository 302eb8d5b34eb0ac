// nodeagent.proxy (unit): Services + Endpoints -> service ports -> rendered ruleset; no kernel.
#include <gtest/gtest.h>

#include <map>

#include "rc/apimachinery/json.h"
#include "rc/proxy/model.h"
#include "rc/proxy/ruleset.h"

namespace rc::proxy {
namespace {

rapidjson::Document Json(const std::string& s) {
  auto d = apimachinery::ParseJson(s);
  EXPECT_TRUE(d.ok());
  return std::move(*d);
}

const char* kService = R"({"metadata":{"name":"web","namespace":"ns"},"spec":{"clusterIP":"10.96.0.10",
  "type":"NodePort","sessionAffinity":"ClientIP","sessionAffinityConfig":{"clientIP":{"timeoutSeconds":60}},
  "ports":[{"name":"http","port":80,"nodePort":30080},{"name":"dns","port":53,"protocol":"UDP"}]}})";
const char* kEndpoints = R"({"metadata":{"name":"web","namespace":"ns"},"subsets":[
  {"addresses":[{"ip":"10.244.0.12"},{"ip":"10.244.0.11"}],"notReadyAddresses":[{"ip":"10.244.0.99"}],
   "ports":[{"name":"http","port":8080},{"name":"dns","port":5353,"protocol":"UDP"}]}]})";

TEST(ProxyModel, PortsMatchEndpointsByNameAndSkipNotReady) {
  auto svc = Json(kService);
  auto ep = Json(kEndpoints);
  auto ports = PortsOf(svc, &ep);
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0].Id(), "ns/web/http/tcp");
  EXPECT_EQ(ports[0].node_port, 30080);
  EXPECT_TRUE(ports[0].affinity_client_ip);
  EXPECT_EQ(ports[0].affinity_timeout_s, 60);
  ASSERT_EQ(ports[0].endpoints.size(), 2u);
  EXPECT_EQ(FormatIPv4(ports[0].endpoints[0].ip), "10.244.0.11");  // sorted
  EXPECT_EQ(ports[0].endpoints[0].port, 8080);
  EXPECT_EQ(ports[1].Id(), "ns/web/dns/udp");
  EXPECT_EQ(ports[1].endpoints[0].port, 5353);
}

TEST(ProxyModel, HeadlessAndExternalNameHaveNoPorts) {
  auto headless = Json(R"({"metadata":{"name":"h","namespace":"n"},"spec":{"clusterIP":"None","ports":[{"port":80}]}})");
  EXPECT_TRUE(PortsOf(headless, nullptr).empty());
  auto ext = Json(R"({"metadata":{"name":"e","namespace":"n"},"spec":{"type":"ExternalName","externalName":"x"}})");
  EXPECT_TRUE(PortsOf(ext, nullptr).empty());
  auto unallocated = Json(R"({"metadata":{"name":"u","namespace":"n"},"spec":{"ports":[{"port":80}]}})");
  EXPECT_TRUE(PortsOf(unallocated, nullptr).empty());
}

TEST(ProxyModel, NoEndpointsRendersRejectEntries) {
  auto svc = Json(kService);
  auto ports = PortsOf(svc, nullptr);
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_TRUE(ports[0].endpoints.empty());
  auto r = RenderPort(ports[0], {});
  EXPECT_TRUE(r.chains.empty());
  ASSERT_EQ(r.elements.size(), 2u);
  EXPECT_EQ(r.elements[0].set, kNoEndpointServicesSet);
  EXPECT_EQ(r.elements[1].set, kNoEndpointNodePortsSet);
}

TEST(ProxyModel, RenderingIsFlatServiceAndExternalChainsWithEndpointMapElements) {
  auto svc = Json(kService);
  auto ep = Json(kEndpoints);
  auto ports = PortsOf(svc, &ep);
  auto r = RenderPort(ports[0], {.cluster_cidr = *ParseCidr("10.244.0.0/16")});
  // No per-endpoint chains: endpoints are elements of the shared data map.
  ASSERT_EQ(r.chains.size(), 2u);
  EXPECT_EQ(r.chains[0].name, "svc-ns/web/http/tcp");
  EXPECT_EQ(r.chains[1].name, "ext-ns/web/http/tcp");
  // masquerade off-cluster, affinity lookup, numgen selection
  ASSERT_EQ(r.chains[0].rules.size(), 3u);
  // ClientIP affinity: a map of its own (index -> endpoint) and the affinity map.
  ASSERT_EQ(r.sets.size(), 2u);
  EXPECT_EQ(r.sets[0].name, "eps-ns/web/http/tcp");
  EXPECT_EQ(r.sets[1].timeout_ms, 60000u);
  EXPECT_EQ(r.sets[1].data_len, 8u);
  std::map<std::string, std::vector<const Element*>> by_set;
  for (const auto& e : r.elements) by_set[e.set].push_back(&e);
  ASSERT_EQ(by_set[kServiceIpsMap].size(), 1u);
  EXPECT_EQ(by_set[kServiceIpsMap][0]->key.size(), 12u);
  EXPECT_EQ(by_set[kServiceIpsMap][0]->chain, "svc-ns/web/http/tcp");
  ASSERT_EQ(by_set[kServiceNodePortsMap].size(), 1u);
  EXPECT_EQ(by_set[kServiceNodePortsMap][0]->chain, "ext-ns/web/http/tcp");
  ASSERT_EQ(by_set["eps-ns/web/http/tcp"].size(), 2u);
  EXPECT_EQ(by_set["eps-ns/web/http/tcp"][0]->data.size(), 8u);
  EXPECT_TRUE(by_set[kServiceEndpointsMap].empty());
  ASSERT_EQ(by_set[kHairpinSet].size(), 2u);
  EXPECT_EQ(by_set[kHairpinSet][0]->key.size(), 20u);
  // Deterministic: same input, same rendering and tags.
  EXPECT_TRUE(RenderPort(ports[0], {.cluster_cidr = *ParseCidr("10.244.0.0/16")}) == r);
  // One endpoint changes: the chains stay, only elements differ.
  auto changed = ports[0];
  changed.endpoints[1].ip += 1;
  auto r2 = RenderPort(changed, {.cluster_cidr = *ParseCidr("10.244.0.0/16")});
  EXPECT_FALSE(r2 == r);
  EXPECT_TRUE(r2.chains[0] == r.chains[0]);
  EXPECT_TRUE(r2.chains[1] == r.chains[1]);
  EXPECT_FALSE(r2.elements == r.elements);
  // Without affinity: the shared select chain and the shared endpoint map.
  auto plain = ports[0];
  plain.affinity_client_ip = false;
  auto r3 = RenderPort(plain, {});
  EXPECT_TRUE(r3.sets.empty());
  ASSERT_EQ(r3.chains[0].rules.size(), 1u);
  EXPECT_EQ(r3.chains[0].rules[0].exprs[0].name, SelectChain(2, false));
  EXPECT_EQ(r3.chains[1].rules[1].exprs[0].name, SelectChain(2, true));
  size_t shared_eps = 0;
  for (const auto& e : r3.elements) {
    if (e.set == kServiceEndpointsMap) {
      ++shared_eps;
      EXPECT_EQ(e.key.size(), 16u);
      EXPECT_EQ(e.data.size(), 8u);
    }
  }
  EXPECT_EQ(shared_eps, 4u);  // 2 for the ClusterIP, 2 for the NodePort
}

TEST(ProxyModel, FingerprintOfRenderedState) {
  DesiredState s;
  s.node_ips = {*ParseIPv4("192.168.1.1")};
  auto svc = Json(kService);
  auto ep = Json(kEndpoints);
  for (auto& p : PortsOf(svc, &ep)) s.ports.emplace(p.Id(), p);
  auto rendered = Render(s, {});
  auto f = ExpectedFingerprint(rendered);
  EXPECT_EQ(f.elements[kNodePortIpsSet].size(), 1u);
  EXPECT_EQ(f.elements[kServiceIpsMap].size(), 2u);
  EXPECT_EQ(f.chains.count("services"), 1u);
  EXPECT_EQ(f.chains["nat-prerouting"].size(), 1u);
  EXPECT_EQ(f.chains["nat-prerouting"][0].substr(0, 3), "rc:");
}

TEST(ProxyModel, ParseCidr) {
  auto c = ParseCidr("10.244.3.4/16");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->Contains(*ParseIPv4("10.244.200.1")));
  EXPECT_FALSE(c->Contains(*ParseIPv4("10.245.0.1")));
  EXPECT_FALSE(ParseCidr("10.0.0.0/33").ok());
  EXPECT_FALSE(ParseIPv4("nope").ok());
}

}  // namespace
}  // namespace rc::proxy
