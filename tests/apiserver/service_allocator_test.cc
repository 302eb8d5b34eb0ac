// Service ClusterIP / NodePort allocation (runtime/apiserver/service_allocator.h) through the
// storage layer on an in-memory store: ranges, requested values, exhaustion, release and reuse,
// immutability, concurrent creates in one process and in two "rcd" on one store, restart and
// repair.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "object_storage.h"
#include "service_allocator.h"

namespace rc::apiserver {
namespace {

ResourceInfo ServicesInfo() {
  ResourceInfo r;
  r.version = "v1";
  r.kind = "Service";
  r.plural = "services";
  r.singular = "service";
  r.namespaced = true;
  r.has_status = true;
  return r;
}

// One API server's view: an allocator plus the storage layer using it.
struct Server {
  Server(store::Store* s, std::string ips = "10.96.0.0/12", std::string ports = "30000-32767") : objects(s) {
    auto created = ServiceAllocator::Create(s, {.cluster_ip_range = ips, .node_port_range = ports});
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    allocator = std::move(created.value());
    Status repaired = allocator->Repair();
    EXPECT_TRUE(repaired.ok()) << repaired.ToString();
    objects.SetServiceAllocator(allocator.get());
  }
  std::unique_ptr<ServiceAllocator> allocator;
  ObjectStorage objects;
};

class ServiceAllocatorTest : public ::testing::Test {
 protected:
  ApiResult<std::string> Create(Server& s, const std::string& name, const std::string& spec_json,
                                bool dry_run = false) {
    JsonDoc doc;
    std::string body = R"({"apiVersion":"v1","kind":"Service","metadata":{"name":")" + name +
                       R"("},"spec":)" + spec_json + "}";
    doc.Parse(body.c_str());
    EXPECT_FALSE(doc.HasParseError()) << body;
    return s.objects.Create(info_, "default", doc, dry_run);
  }
  ApiResult<std::string> Patch(Server& s, const std::string& name, const std::function<void(JsonDoc&)>& edit) {
    return s.objects.Update(info_, "default", name, Subresource::kNone, [&](JsonDoc& obj) -> std::optional<ApiError> {
      Remove(ObjectMember(obj, "metadata", obj.GetAllocator()), "resourceVersion");
      edit(obj);
      return std::nullopt;
    }, false);
  }
  ApiResult<std::string> Delete(Server& s, const std::string& name) {
    return s.objects.Delete(info_, "default", name, {});
  }
  static std::string At(const std::string& json, std::string_view path) {
    JsonDoc d;
    d.Parse(json.c_str());
    const JsonValue* v = Path(d, path);
    if (!v) return "<missing>";
    if (v->IsString()) return v->GetString();
    if (v->IsInt64()) return std::to_string(v->GetInt64());
    return ToJson(*v);
  }
  static std::string NodePort(const std::string& json, int i = 0) {
    JsonDoc d;
    d.Parse(json.c_str());
    const JsonValue* ports = Path(d, "spec.ports");
    if (!ports || !ports->IsArray() || ports->Size() <= static_cast<rapidjson::SizeType>(i)) return "<missing>";
    auto np = IntAt((*ports)[i], "nodePort");
    return np ? std::to_string(*np) : "<missing>";
  }
  int64_t Keys(std::string_view prefix) {
    std::string p(prefix);
    auto res = store_->Range(p, {.range_end = store::PrefixEnd(p), .count_only = true});
    return res.ok() ? res->count : -1;
  }
  static std::string Message(const ApiResult<std::string>& r) {
    return r.ok() ? "<ok>" : std::to_string(r.error().code) + " " + r.error().message;
  }

  std::unique_ptr<store::Store> store_ = store::NewMemoryStore();
  ResourceInfo info_ = ServicesInfo();
};

constexpr const char* kPorts = R"({"ports":[{"port":80,"protocol":"TCP"}]})";

TEST(ServiceRanges, ParsesIpRanges) {
  auto r = ParseServiceIpRange("10.96.0.0/12");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->Size(), 1u << 20);
  EXPECT_FALSE(r->Contains(*ParseIPv4("10.96.0.0")));  // network address
  EXPECT_TRUE(r->Contains(*ParseIPv4("10.96.0.1")));
  EXPECT_TRUE(r->Contains(*ParseIPv4("10.111.255.254")));
  EXPECT_FALSE(r->Contains(*ParseIPv4("10.111.255.255")));  // broadcast
  EXPECT_FALSE(r->Contains(*ParseIPv4("10.112.0.1")));
  for (const char* bad : {"10.96.0.1/12", "10.96.0.0", "10.0.0.0/8", "10.0.0.0/31", "fd00::/108", "10.96.0.0/x",
                          "300.0.0.0/12", ""}) {
    auto parsed = ParseServiceIpRange(bad);
    EXPECT_FALSE(parsed.ok()) << bad;
    if (!parsed.ok()) EXPECT_EQ(parsed.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_FALSE(ParseIPv4("10.1.2").has_value());
  EXPECT_FALSE(ParseIPv4("10.1.2.3.4").has_value());
  EXPECT_FALSE(ParseIPv4("10.01.2.3").has_value());
  EXPECT_EQ(FormatIPv4(*ParseIPv4("192.168.0.255")), "192.168.0.255");
}

TEST(ServiceRanges, ParsesPortRanges) {
  auto r = ParsePortRange("30000-32767");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->base, 30000);
  EXPECT_EQ(r->size, 2768);
  auto plus = ParsePortRange("30000+2767");
  ASSERT_TRUE(plus.ok());
  EXPECT_EQ(plus->text, "30000-32767");
  for (const char* bad : {"5-3", "0-10", "30000-70000", "abc", "30000-", ""}) {
    EXPECT_FALSE(ParsePortRange(bad).ok()) << bad;
  }
}

TEST_F(ServiceAllocatorTest, AllocatesAClusterIPInTheRangeAndMirrorsIt) {
  Server s(store_.get());
  auto created = Create(s, "web", kPorts);
  ASSERT_TRUE(created.ok()) << Message(created);
  std::string ip = At(*created, "spec.clusterIP");
  auto parsed = ParseIPv4(ip);
  ASSERT_TRUE(parsed.has_value()) << ip;
  EXPECT_TRUE(s.allocator->ip_range().Contains(*parsed));
  EXPECT_NE(ip, "10.96.0.1");  // kept for the kubernetes Service
  EXPECT_EQ(At(*created, "spec.clusterIPs"), "[\"" + ip + "\"]");
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kIpKeyPrefix) + ip), 1);
  EXPECT_EQ(At(*s.objects.Get(info_, "default", "web"), "spec.clusterIP"), ip);
}

TEST_F(ServiceAllocatorTest, HonoursARequestedIPAndRefusesItTwice) {
  Server s(store_.get());
  auto first = Create(s, "a", R"({"clusterIP":"10.96.0.10","ports":[{"port":80}]})");
  ASSERT_TRUE(first.ok()) << Message(first);
  EXPECT_EQ(At(*first, "spec.clusterIP"), "10.96.0.10");
  auto kubernetes = Create(s, "kubernetes", R"({"clusterIP":"10.96.0.1","ports":[{"port":443}]})");
  EXPECT_TRUE(kubernetes.ok()) << Message(kubernetes);
  auto second = Create(s, "b", R"({"clusterIP":"10.96.0.10","ports":[{"port":80}]})");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().code, 422);
  EXPECT_EQ(second.error().message,
            "Service \"b\" is invalid: spec.clusterIP: Invalid value: \"10.96.0.10\": provided IP is already allocated");
  ASSERT_EQ(second.error().causes.size(), 1u);
  EXPECT_EQ(second.error().causes[0].field, "spec.clusterIP");
  auto via_ips = Create(s, "c", R"({"clusterIPs":["10.96.0.11"],"ports":[{"port":80}]})");
  ASSERT_TRUE(via_ips.ok()) << Message(via_ips);
  EXPECT_EQ(At(*via_ips, "spec.clusterIP"), "10.96.0.11");
}

TEST_F(ServiceAllocatorTest, RejectsInvalidRequestsWithFieldPaths) {
  Server s(store_.get());
  EXPECT_EQ(Message(Create(s, "x", R"({"clusterIP":"10.0.0.1","ports":[{"port":80}]})")),
            "422 Service \"x\" is invalid: spec.clusterIP: Invalid value: \"10.0.0.1\": provided IP is not in the "
            "valid range. The range of valid IPs is 10.96.0.0/12");
  EXPECT_EQ(Message(Create(s, "x", R"({"clusterIP":"bogus","ports":[{"port":80}]})")),
            "422 Service \"x\" is invalid: spec.clusterIP: Invalid value: \"bogus\": must be a valid IP address, "
            "(e.g. 10.9.8.7 or 2001:db8::ffff)");
  EXPECT_EQ(Message(Create(s, "x", R"({"type":"NodePort","clusterIP":"None","ports":[{"port":80}]})")),
            "422 Service \"x\" is invalid: spec.clusterIP: Invalid value: \"None\": may not be set to 'None' for "
            "NodePort services");
  EXPECT_EQ(Message(Create(s, "x", R"({"type":"NodePort","ports":[{"port":80,"nodePort":80}]})")),
            "422 Service \"x\" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the "
            "valid range. The range of valid ports is 30000-32767");
  EXPECT_EQ(Message(Create(s, "x", R"({"ports":[{"port":80,"nodePort":30001}]})")),
            "422 Service \"x\" is invalid: spec.ports[0].nodePort: Forbidden: may not be used when `type` is "
            "'ClusterIP'");
  EXPECT_EQ(Message(Create(s, "x", R"({"type":"NodePort","ports":[{"port":80,"nodePort":30001},)"
                                   R"({"port":81,"nodePort":30001}]})")),
            "422 Service \"x\" is invalid: spec.ports[1].nodePort: Duplicate value: 30001");
  EXPECT_EQ(Message(Create(s, "x", R"({"type":"ExternalName","externalName":"a.b","clusterIP":"10.96.0.5"})")),
            "422 Service \"x\" is invalid: spec.clusterIP: Forbidden: may not be set for ExternalName services");
  EXPECT_EQ(Keys(ServiceAllocator::kIpKeyPrefix) + Keys(ServiceAllocator::kPortKeyPrefix), 0);
  EXPECT_EQ(s.allocator->MarkedIps() + s.allocator->MarkedPorts(), 0u);
}

TEST_F(ServiceAllocatorTest, HeadlessAndExternalNameGetNoAddress) {
  Server s(store_.get());
  auto headless = Create(s, "h", R"({"clusterIP":"None","ports":[{"port":80}]})");
  ASSERT_TRUE(headless.ok()) << Message(headless);
  EXPECT_EQ(At(*headless, "spec.clusterIP"), "None");
  EXPECT_EQ(At(*headless, "spec.clusterIPs"), "[\"None\"]");
  auto external = Create(s, "e", R"({"type":"ExternalName","externalName":"example.com"})");
  ASSERT_TRUE(external.ok()) << Message(external);
  EXPECT_EQ(At(*external, "spec.clusterIP"), "<missing>");
  EXPECT_EQ(Keys(ServiceAllocator::kIpKeyPrefix), 0);
}

TEST_F(ServiceAllocatorTest, ExhaustionReleaseAndReuse) {
  // A /29: 8 addresses, minus network, broadcast and the reserved first one = 5 to hand out.
  Server s(store_.get(), "10.0.0.0/29");
  std::set<std::string> ips;
  for (int i = 0; i < 5; ++i) {
    auto created = Create(s, "s" + std::to_string(i), kPorts);
    ASSERT_TRUE(created.ok()) << Message(created);
    ips.insert(At(*created, "spec.clusterIP"));
  }
  EXPECT_EQ(ips, (std::set<std::string>{"10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"}));
  auto full = Create(s, "full", kPorts);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, 500);
  EXPECT_NE(full.error().message.find("failed to allocate a serviceIP: range is full"), std::string::npos);
  std::string freed = At(*s.objects.Get(info_, "default", "s2"), "spec.clusterIP");
  ASSERT_TRUE(Delete(s, "s2").ok());
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kIpKeyPrefix) + freed), 0);
  auto reused = Create(s, "again", kPorts);
  ASSERT_TRUE(reused.ok()) << Message(reused);
  EXPECT_EQ(At(*reused, "spec.clusterIP"), freed);
  // A requested IP is free again once its Service is deleted.
  std::string held = At(*s.objects.Get(info_, "default", "s0"), "spec.clusterIP");
  ASSERT_TRUE(Delete(s, "s0").ok());
  auto requested = Create(s, "requested", R"({"clusterIP":")" + held + R"(","ports":[{"port":80}]})");
  EXPECT_TRUE(requested.ok()) << Message(requested);
}

TEST_F(ServiceAllocatorTest, ReleasedByAnotherServerIsFoundBeforeFull) {
  Server a(store_.get(), "10.0.0.0/29");
  Server b(store_.get(), "10.0.0.0/29");
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Create(a, "s" + std::to_string(i), kPorts).ok());
  ASSERT_TRUE(Delete(b, "s3").ok());  // a's view still has it marked
  auto created = Create(a, "after", kPorts);
  EXPECT_TRUE(created.ok()) << Message(created);
}

TEST_F(ServiceAllocatorTest, NodePortsAllocatedReleasedAndRequested) {
  Server s(store_.get(), "10.96.0.0/12", "30000-30002");
  auto a = Create(s, "a", R"({"type":"NodePort","ports":[{"port":80},{"port":53,"protocol":"UDP","name":"u"},)"
                          R"({"port":53,"protocol":"TCP","name":"t"}]})");
  ASSERT_TRUE(a.ok()) << Message(a);
  EXPECT_NE(NodePort(*a, 0), "<missing>");
  EXPECT_EQ(NodePort(*a, 1), NodePort(*a, 2));  // one number, two protocols: one node port
  EXPECT_NE(NodePort(*a, 0), NodePort(*a, 1));
  EXPECT_EQ(Keys(ServiceAllocator::kPortKeyPrefix), 2);
  auto b = Create(s, "b", R"({"type":"LoadBalancer","ports":[{"port":80}]})");
  ASSERT_TRUE(b.ok()) << Message(b);
  auto full = Create(s, "c", R"({"type":"NodePort","ports":[{"port":80}]})");
  ASSERT_FALSE(full.ok());
  EXPECT_NE(full.error().message.find("failed to allocate a nodePort: range is full"), std::string::npos);
  // A requested port that is taken.
  auto taken = Create(s, "c", R"({"type":"NodePort","ports":[{"port":80,"nodePort":)" + NodePort(*b) + "}]}");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, 422);
  EXPECT_EQ(taken.error().message, "Service \"c\" is invalid: spec.ports[0].nodePort: Invalid value: " +
                                       NodePort(*b) + ": provided port is already allocated");
  // Back to ClusterIP: the node port is dropped and released.
  std::string released = NodePort(*b);
  auto changed = Patch(s, "b", [](JsonDoc& obj) { Set(obj["spec"], "type", JsonValue("ClusterIP"), obj.GetAllocator()); });
  ASSERT_TRUE(changed.ok()) << Message(changed);
  EXPECT_EQ(NodePort(*changed), "<missing>");
  auto c = Create(s, "c", R"({"type":"NodePort","ports":[{"port":80,"nodePort":)" + released + "}]}");
  EXPECT_TRUE(c.ok()) << Message(c);
  // Delete releases.
  ASSERT_TRUE(Delete(s, "a").ok());
  EXPECT_EQ(Keys(ServiceAllocator::kPortKeyPrefix), 1);
  EXPECT_TRUE(Create(s, "d", R"({"type":"NodePort","ports":[{"port":80}]})").ok());
}

TEST_F(ServiceAllocatorTest, UpdatesKeepClusterIPImmutable) {
  Server s(store_.get());
  auto created = Create(s, "web", R"({"type":"NodePort","ports":[{"port":80}]})");
  ASSERT_TRUE(created.ok());
  std::string ip = At(*created, "spec.clusterIP");
  std::string np = NodePort(*created);
  auto changed = Patch(s, "web", [](JsonDoc& obj) {
    Set(obj["spec"], "clusterIP", JsonValue("10.96.0.99"), obj.GetAllocator());
  });
  EXPECT_EQ(Message(changed), "422 Service \"web\" is invalid: spec.clusterIP: Invalid value: \"10.96.0.99\": field is immutable");
  // A replace without clusterIP/clusterIPs/nodePort keeps the allocated values (as Kubernetes does).
  auto replaced = Patch(s, "web", [](JsonDoc& obj) {
    Remove(obj["spec"], "clusterIP");
    Remove(obj["spec"], "clusterIPs");
    Remove(obj["spec"]["ports"][0], "nodePort");
    Set(obj["spec"], "selector", JsonValue(rapidjson::kObjectType), obj.GetAllocator());
  });
  ASSERT_TRUE(replaced.ok()) << Message(replaced);
  EXPECT_EQ(At(*replaced, "spec.clusterIP"), ip);
  EXPECT_EQ(NodePort(*replaced), np);
  EXPECT_EQ(Keys(ServiceAllocator::kIpKeyPrefix), 1);
  EXPECT_EQ(Keys(ServiceAllocator::kPortKeyPrefix), 1);
  // To ExternalName: the IP and node port are released.
  auto external = Patch(s, "web", [](JsonDoc& obj) {
    Set(obj["spec"], "type", JsonValue("ExternalName"), obj.GetAllocator());
    Set(obj["spec"], "externalName", JsonValue("example.com"), obj.GetAllocator());
  });
  ASSERT_TRUE(external.ok()) << Message(external);
  EXPECT_EQ(At(*external, "spec.clusterIP"), "<missing>");
  EXPECT_EQ(Keys(ServiceAllocator::kIpKeyPrefix), 0);
  EXPECT_EQ(Keys(ServiceAllocator::kPortKeyPrefix), 0);
}

TEST_F(ServiceAllocatorTest, DryRunReservesNothing) {
  Server s(store_.get(), "10.0.0.0/29");
  auto dry = Create(s, "dry", R"({"clusterIP":"10.0.0.3","ports":[{"port":80}]})", /*dry_run=*/true);
  ASSERT_TRUE(dry.ok()) << Message(dry);
  EXPECT_EQ(At(*dry, "spec.clusterIP"), "10.0.0.3");
  EXPECT_EQ(Keys(ServiceAllocator::kIpKeyPrefix), 0);
  EXPECT_EQ(s.allocator->MarkedIps(), 0u);
  EXPECT_TRUE(Create(s, "real", R"({"clusterIP":"10.0.0.3","ports":[{"port":80}]})").ok());
}

TEST_F(ServiceAllocatorTest, FiftyParallelCreatesGetFiftyDistinctIPs) {
  Server s(store_.get(), "10.0.0.0/26");  // 61 to hand out: picks collide often
  std::vector<std::string> ips(50);
  std::vector<std::thread> threads;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      auto created = Create(s, "s" + std::to_string(i), kPorts);
      ips[i] = created.ok() ? At(*created, "spec.clusterIP") : Message(created);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct(ips.begin(), ips.end());
  EXPECT_EQ(distinct.size(), 50u);
  for (const auto& ip : ips) EXPECT_TRUE(ParseIPv4(ip).has_value()) << ip;
  EXPECT_EQ(Keys(ServiceAllocator::kIpKeyPrefix), 50);
}

TEST_F(ServiceAllocatorTest, TwoServersOnOneStoreNeverShareAnIP) {
  // Two API servers (as two rcd on one etcd), each with its own in-memory view.
  Server a(store_.get(), "10.0.0.0/26");
  Server b(store_.get(), "10.0.0.0/26");
  std::vector<std::string> ips(60);
  std::vector<std::thread> threads;
  for (int i = 0; i < 60; ++i) {
    threads.emplace_back([&, i] {
      auto created = Create(i % 2 ? a : b, "s" + std::to_string(i), R"({"type":"NodePort","ports":[{"port":80}]})");
      ips[i] = created.ok() ? At(*created, "spec.clusterIP") + "/" + NodePort(*created) : Message(created);
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> distinct_ips, distinct_ports;
  for (const auto& v : ips) {
    ASSERT_NE(v.find('/'), std::string::npos) << v;
    distinct_ips.insert(v.substr(0, v.find('/')));
    distinct_ports.insert(v.substr(v.find('/') + 1));
  }
  EXPECT_EQ(distinct_ips.size(), 60u);
  EXPECT_EQ(distinct_ports.size(), 60u);
  // The 61st (the last free IP) fits; the 62nd finds the range full on either server.
  EXPECT_TRUE(Create(a, "last", kPorts).ok());
  EXPECT_NE(Message(Create(b, "over", kPorts)).find("range is full"), std::string::npos);
}

TEST_F(ServiceAllocatorTest, RestartKeepsAllocations) {
  std::string ip;
  {
    Server before(store_.get());
    auto created = Create(before, "web", R"({"type":"NodePort","ports":[{"port":80,"nodePort":30080}]})");
    ASSERT_TRUE(created.ok());
    ip = At(*created, "spec.clusterIP");
  }
  Server after(store_.get());
  EXPECT_EQ(after.allocator->MarkedIps(), 1u);
  EXPECT_EQ(after.allocator->MarkedPorts(), 1u);
  EXPECT_NE(Message(Create(after, "dup", R"({"clusterIP":")" + ip + R"(","ports":[{"port":80}]})"))
                .find("provided IP is already allocated"),
            std::string::npos);
  EXPECT_NE(Message(Create(after, "dup", R"({"type":"NodePort","ports":[{"port":80,"nodePort":30080}]})"))
                .find("provided port is already allocated"),
            std::string::npos);
}

TEST_F(ServiceAllocatorTest, RepairRecordsMissingReservationsAndDropsLeakedOnes) {
  // A Service stored without its reservation (written before allocation existed) and a
  // reservation whose owner is gone.
  ASSERT_TRUE(store_->Put("/registry/services/default/old",
                          R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"old","namespace":"default"},)"
                          R"("spec":{"type":"NodePort","clusterIP":"10.96.0.7","ports":[{"port":80,"nodePort":30007}]}})")
                  .ok());
  ASSERT_TRUE(store_->Put(std::string(ServiceAllocator::kIpKeyPrefix) + "10.96.0.8", "default/gone").ok());
  Server s(store_.get());
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kIpKeyPrefix) + "10.96.0.7"), 1);
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kPortKeyPrefix) + "30007"), 1);
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kIpKeyPrefix) + "10.96.0.8"), 0);
  EXPECT_FALSE(Create(s, "dup", R"({"clusterIP":"10.96.0.7","ports":[{"port":80}]})").ok());
  EXPECT_TRUE(Create(s, "reuse", R"({"clusterIP":"10.96.0.8","ports":[{"port":80}]})").ok());
  // The repaired Service releases on delete like any other.
  ASSERT_TRUE(Delete(s, "old").ok());
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kIpKeyPrefix) + "10.96.0.7"), 0);
  EXPECT_EQ(Keys(std::string(ServiceAllocator::kPortKeyPrefix) + "30007"), 0);
}

}  // namespace
}  // namespace rc::apiserver
