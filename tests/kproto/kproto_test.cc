// Tests for rc::kproto: golden request bodies captured from the real kubectl 1.32 / 1.33 (expected
// JSON = the same command's `--dry-run=client -o json` output, i.e. Go's JSON encoding of the very
// object that was sent), plus unit tests of each special type, the zero-value rules and malformed
// input.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "k8s.io/api/apps/v1/generated.pb.h"
#include "k8s.io/api/autoscaling/v1/generated.pb.h"
#include "k8s.io/api/batch/v1/generated.pb.h"
#include "k8s.io/api/coordination/v1/generated.pb.h"
#include "k8s.io/api/core/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/apis/meta/v1/generated.pb.h"
#include "k8s.io/apimachinery/pkg/runtime/generated.pb.h"
#include "rc/kproto/kproto.h"

namespace {

namespace core = k8s::io::api::core::v1;
namespace apps = k8s::io::api::apps::v1;
namespace coordination = k8s::io::api::coordination::v1;
namespace meta = k8s::io::apimachinery::pkg::apis::meta::v1;
namespace runtime = k8s::io::apimachinery::pkg::runtime;

using rc::kproto::DecodeToJson;
using rc::kproto::IsKubernetesProtobuf;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string ToJson(const rapidjson::Value& v) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  v.Accept(w);
  return buf.GetString();
}

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str(), text.size());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

// "k8s\0" + runtime.Unknown{typeMeta, raw}.
std::string Envelope(const std::string& api_version, const std::string& kind, const std::string& raw,
                     const std::string& content_encoding = "") {
  runtime::Unknown u;
  u.mutable_typemeta()->set_apiversion(api_version);
  u.mutable_typemeta()->set_kind(kind);
  u.set_raw(raw);
  u.set_contentencoding(content_encoding);
  u.set_contenttype("");
  return std::string("k8s\0", 4) + u.SerializeAsString();
}

std::string Envelope(const std::string& api_version, const std::string& kind,
                     const google::protobuf::Message& m) {
  return Envelope(api_version, kind, m.SerializeAsString());
}

// Decodes and returns compact JSON; fails the test on error.
std::string DecodeOk(const std::string& body) {
  auto doc = DecodeToJson(body);
  EXPECT_TRUE(doc.ok()) << doc.status().ToString();
  if (!doc.ok()) return "";
  return ToJson(*doc);
}

void ExpectJsonEq(const std::string& actual, const std::string& expected) {
  rapidjson::Document a = ParseJson(actual);
  rapidjson::Document e = ParseJson(expected);
  EXPECT_TRUE(a == e) << "actual:   " << actual << "\nexpected: " << ToJson(e);
}

std::string DecodeError(const std::string& body) {
  auto doc = DecodeToJson(body);
  EXPECT_FALSE(doc.ok()) << "unexpectedly decoded: " << (doc.ok() ? ToJson(*doc) : "");
  if (doc.ok()) return "";
  EXPECT_EQ(doc.status().code(), rc::StatusCode::kInvalidArgument) << doc.status().ToString();
  return doc.status().message();
}

// ---------------------------------------------------------------------------------------------
// Golden bodies from the real kubectl.

const char* const kGolden[] = {
    "k133-create-namespace",
    "k133-create-configmap",
    "k133-create-secret-generic",
    "k133-create-secret-docker-registry",
    "k133-create-deployment",
    "k133-create-deployment-zero",
    "k133-create-service-clusterip",
    "k133-create-service-nodeport",
    "k133-create-service-externalname",
    "k133-create-job",
    "k132-create-namespace",
    "k132-create-configmap",
    "k132-create-deployment",
    "k132-create-service-clusterip",
    "k132-create-job",
};

class Golden : public ::testing::TestWithParam<const char*> {};

TEST_P(Golden, DecodesToKubectlJson) {
  const std::string base = std::string(RC_KPROTO_TESTDATA_DIR) + "/" + GetParam();
  const std::string body = ReadFile(base + ".pb");
  const std::string expected = ReadFile(base + ".json");
  ASSERT_FALSE(body.empty());
  ASSERT_FALSE(expected.empty());
  ASSERT_TRUE(IsKubernetesProtobuf(body));
  ExpectJsonEq(DecodeOk(body), expected);
}

TEST_P(Golden, EveryTruncationFailsCleanly) {
  const std::string body = ReadFile(std::string(RC_KPROTO_TESTDATA_DIR) + "/" + GetParam() + ".pb");
  for (size_t n = 0; n < body.size(); ++n) {
    auto doc = DecodeToJson(std::string_view(body).substr(0, n));
    // A cut exactly between two envelope fields can still be a complete message (e.g. only the
    // trailing empty contentType dropped); anything else must be an InvalidArgument.
    if (!doc.ok()) EXPECT_EQ(doc.status().code(), rc::StatusCode::kInvalidArgument);
  }
}

TEST_P(Golden, RandomMutationsNeverCrash) {
  const std::string body = ReadFile(std::string(RC_KPROTO_TESTDATA_DIR) + "/" + GetParam() + ".pb");
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 2000; ++iter) {
    std::string m = body;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits && !m.empty(); ++e) {
      const size_t pos = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[pos] = static_cast<char>(rng()); break;
        case 1: m.erase(pos, 1); break;
        default: m.insert(pos, 1, static_cast<char>(rng())); break;
      }
    }
    auto doc = DecodeToJson(m);
    if (!doc.ok()) EXPECT_EQ(doc.status().code(), rc::StatusCode::kInvalidArgument);
  }
}

INSTANTIATE_TEST_SUITE_P(Kubectl, Golden, ::testing::ValuesIn(kGolden),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

// ---------------------------------------------------------------------------------------------
// Envelope and kinds.

TEST(Envelope, IsKubernetesProtobuf) {
  EXPECT_TRUE(IsKubernetesProtobuf(std::string("k8s\0", 4)));
  EXPECT_TRUE(IsKubernetesProtobuf(std::string("k8s\0\x0a\x00", 6)));
  EXPECT_FALSE(IsKubernetesProtobuf(""));
  EXPECT_FALSE(IsKubernetesProtobuf("k8s"));
  EXPECT_FALSE(IsKubernetesProtobuf("{\"kind\":\"Pod\"}"));
  EXPECT_FALSE(IsKubernetesProtobuf(std::string("k8s\1", 4)));
}

TEST(Envelope, WrongMagic) {
  core::Namespace ns;
  std::string body = Envelope("v1", "Namespace", ns);
  body[3] = 'x';
  EXPECT_NE(DecodeError(body).find("k8s"), std::string::npos);
  EXPECT_FALSE(DecodeToJson("").ok());
  EXPECT_FALSE(DecodeToJson("{}").ok());
}

TEST(Envelope, MagicOnlyHasNoKind) {
  EXPECT_NE(DecodeError(std::string("k8s\0", 4)).find("no kind"), std::string::npos);
}

TEST(Envelope, UnknownKindIsNamed) {
  core::Namespace ns;
  std::string msg = DecodeError(Envelope("v1", "Foo", ns));
  EXPECT_NE(msg.find("\"v1\""), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"Foo\""), std::string::npos) << msg;
  msg = DecodeError(Envelope("example.com/v1", "Widget", ns));
  EXPECT_NE(msg.find("example.com/v1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Widget"), std::string::npos) << msg;
  // Right kind, wrong group version.
  EXPECT_FALSE(DecodeToJson(Envelope("apps/v1", "Pod", ns)).ok());
}

TEST(Envelope, GarbageRaw) {
  EXPECT_NE(DecodeError(Envelope("v1", "Pod", std::string("\xff\xff\xff", 3))).find("malformed"),
            std::string::npos);
  // A length-delimited field whose length runs past the end.
  EXPECT_FALSE(DecodeToJson(Envelope("v1", "Pod", std::string("\x0a\x7f\x01", 3))).ok());
  // Wrong wire type for metadata (varint instead of bytes).
  EXPECT_FALSE(DecodeToJson(Envelope("v1", "Pod", std::string("\x08\x01", 2))).ok());
}

TEST(Envelope, MalformedEnvelope) {
  EXPECT_NE(DecodeError(std::string("k8s\0\xff\xff", 6)).find("envelope"), std::string::npos);
  EXPECT_FALSE(DecodeToJson(std::string("k8s\0\x0a\x05\x0a", 7)).ok());
}

TEST(Envelope, ContentEncodingRejected) {
  core::Namespace ns;
  EXPECT_NE(DecodeError(Envelope("v1", "Namespace", ns.SerializeAsString(), "gzip")).find("gzip"),
            std::string::npos);
}

TEST(Envelope, UnknownFieldRejected) {
  core::Pod pod;
  pod.mutable_metadata()->set_name("p");
  std::string raw = pod.SerializeAsString();
  raw += std::string("\xf8\x06\x01", 3);  // field 111, varint 1
  std::string msg = DecodeError(Envelope("v1", "Pod", raw));
  EXPECT_NE(msg.find("111"), std::string::npos) << msg;
  EXPECT_NE(msg.find("k8s.io.api.core.v1.Pod"), std::string::npos) << msg;
}

TEST(Envelope, InvalidUtf8Rejected) {
  core::Namespace ns;
  ns.mutable_metadata()->set_name(std::string("a\xff", 2));
  EXPECT_NE(DecodeError(Envelope("v1", "Namespace", ns)).find("UTF-8"), std::string::npos);
  core::ConfigMap cm;
  (*cm.mutable_data())[std::string("\xc0\x80", 2)] = "x";  // overlong encoding
  EXPECT_NE(DecodeError(Envelope("v1", "ConfigMap", cm)).find("UTF-8"), std::string::npos);
}

TEST(Envelope, EverySupportedKindDecodes) {
  const std::vector<std::pair<std::string, std::string>> kinds = {
      {"v1", "Namespace"}, {"v1", "Pod"}, {"v1", "Service"}, {"v1", "Endpoints"}, {"v1", "Node"},
      {"v1", "Event"}, {"v1", "ConfigMap"}, {"v1", "Secret"}, {"v1", "PersistentVolume"},
      {"v1", "PersistentVolumeClaim"}, {"v1", "ComponentStatus"}, {"apps/v1", "Deployment"},
      {"apps/v1", "ReplicaSet"}, {"apps/v1", "DaemonSet"}, {"apps/v1", "StatefulSet"},
      {"batch/v1", "Job"}, {"coordination.k8s.io/v1", "Lease"}, {"autoscaling/v1", "Scale"},
      {"v1", "DeleteOptions"}, {"apps/v1", "DeleteOptions"}, {"meta.k8s.io/v1", "DeleteOptions"},
  };
  for (const auto& [gv, kind] : kinds) {
    ExpectJsonEq(DecodeOk(Envelope(gv, kind, "")),
                 "{\"kind\":\"" + kind + "\",\"apiVersion\":\"" + gv + "\"}");
  }
}

// ---------------------------------------------------------------------------------------------
// Special types.

TEST(Special, Time) {
  core::Namespace ns;
  ns.mutable_metadata()->set_name("t");
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(1700000000);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_nanos(999999999);  // dropped, as Go
  ns.mutable_metadata()->mutable_deletiontimestamp();                        // empty -> null
  ExpectJsonEq(DecodeOk(Envelope("v1", "Namespace", ns)),
               R"({"kind":"Namespace","apiVersion":"v1","metadata":{"name":"t",
                   "creationTimestamp":"2023-11-14T22:13:20Z","deletionTimestamp":null}})");

  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(0);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_nanos(0);
  EXPECT_NE(DecodeOk(Envelope("v1", "Namespace", ns)).find("\"1970-01-01T00:00:00Z\""), std::string::npos);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(-62135596800);  // time.Time{}
  EXPECT_NE(DecodeOk(Envelope("v1", "Namespace", ns)).find("\"creationTimestamp\":null"), std::string::npos);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(253402300799);
  EXPECT_NE(DecodeOk(Envelope("v1", "Namespace", ns)).find("\"9999-12-31T23:59:59Z\""), std::string::npos);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(-1);
  EXPECT_NE(DecodeOk(Envelope("v1", "Namespace", ns)).find("\"1969-12-31T23:59:59Z\""), std::string::npos);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(951782400);  // leap day 2000
  EXPECT_NE(DecodeOk(Envelope("v1", "Namespace", ns)).find("\"2000-02-29T00:00:00Z\""), std::string::npos);

  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(253402300800);
  EXPECT_NE(DecodeError(Envelope("v1", "Namespace", ns)).find("out of range"), std::string::npos);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(INT64_MIN);
  EXPECT_FALSE(DecodeToJson(Envelope("v1", "Namespace", ns)).ok());
  ns.mutable_metadata()->mutable_creationtimestamp()->set_seconds(0);
  ns.mutable_metadata()->mutable_creationtimestamp()->set_nanos(-1);
  EXPECT_FALSE(DecodeToJson(Envelope("v1", "Namespace", ns)).ok());
}

TEST(Special, MicroTime) {
  coordination::Lease lease;
  lease.mutable_metadata()->set_name("l");
  auto* spec = lease.mutable_spec();
  spec->set_holderidentity("node-1");
  spec->set_leasedurationseconds(40);
  spec->mutable_renewtime()->set_seconds(1700000000);
  spec->mutable_renewtime()->set_nanos(123456789);  // truncated to microseconds
  spec->mutable_acquiretime()->set_seconds(1700000000);
  spec->set_leasetransitions(0);  // pointer field: kept
  ExpectJsonEq(DecodeOk(Envelope("coordination.k8s.io/v1", "Lease", lease)),
               R"({"kind":"Lease","apiVersion":"coordination.k8s.io/v1","metadata":{"name":"l"},
                   "spec":{"holderIdentity":"node-1","leaseDurationSeconds":40,
                           "acquireTime":"2023-11-14T22:13:20.000000Z",
                           "renewTime":"2023-11-14T22:13:20.123456Z","leaseTransitions":0}})");

  core::Event ev;
  ev.mutable_metadata()->set_name("e");
  ev.mutable_eventtime()->set_seconds(86400);
  ev.mutable_eventtime()->set_nanos(1000);
  ev.mutable_firsttimestamp();  // zero Time: null
  ev.set_count(2);
  ev.set_reason("Started");
  ExpectJsonEq(DecodeOk(Envelope("v1", "Event", ev)),
               R"({"kind":"Event","apiVersion":"v1","metadata":{"name":"e"},"reason":"Started",
                   "firstTimestamp":null,"count":2,"eventTime":"1970-01-02T00:00:00.000001Z"})");
}

TEST(Special, Duration) {
  using rc::kproto::FormatGoDuration;
  EXPECT_EQ(FormatGoDuration(0), "0s");
  EXPECT_EQ(FormatGoDuration(1), "1ns");
  EXPECT_EQ(FormatGoDuration(1100), "1.1\xC2\xB5s");
  EXPECT_EQ(FormatGoDuration(2200000), "2.2ms");
  EXPECT_EQ(FormatGoDuration(1000000000), "1s");
  EXPECT_EQ(FormatGoDuration(3500000000), "3.5s");
  EXPECT_EQ(FormatGoDuration(60000000000), "1m0s");
  EXPECT_EQ(FormatGoDuration(3723000000000), "1h2m3s");
  EXPECT_EQ(FormatGoDuration(-90000000000), "-1m30s");
  EXPECT_EQ(FormatGoDuration(INT64_MIN), "-2562047h47m16.854775808s");
  EXPECT_EQ(FormatGoDuration(INT64_MAX), "2562047h47m16.854775807s");
}

TEST(Special, QuantityAndMaps) {
  core::Pod pod;
  pod.mutable_metadata()->set_name("p");
  auto* c = pod.mutable_spec()->add_containers();
  c->set_name("c");
  c->set_image("nginx");
  auto* req = c->mutable_resources()->mutable_requests();
  (*req)["memory"].set_string("64Mi");
  (*req)["cpu"].set_string("100m");
  (*c->mutable_resources()->mutable_limits())["cpu"];  // no string: the zero Quantity
  ExpectJsonEq(DecodeOk(Envelope("v1", "Pod", pod)),
               R"({"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},
                   "spec":{"containers":[{"name":"c","image":"nginx",
                     "resources":{"limits":{"cpu":"0"},"requests":{"cpu":"100m","memory":"64Mi"}}}]}})");
  // Map keys come out sorted, as Go.
  std::string json = DecodeOk(Envelope("v1", "Pod", pod));
  EXPECT_LT(json.find("\"cpu\":\"100m\""), json.find("\"memory\""));

  (*req)["cpu"].set_string("");
  EXPECT_NE(DecodeError(Envelope("v1", "Pod", pod)).find("quantity"), std::string::npos);
}

TEST(Special, DuplicateMapKeysLastWins) {
  core::ConfigMap a, b;
  a.mutable_metadata()->set_name("cm");
  (*a.mutable_data())["k"] = "first";
  (*b.mutable_data())["k"] = "second";
  // Concatenated encodings merge; both map entries are on the wire.
  std::string raw = a.SerializeAsString() + b.SerializeAsString();
  ExpectJsonEq(DecodeOk(Envelope("v1", "ConfigMap", raw)),
               R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm"},"data":{"k":"second"}})");
}

TEST(Special, IntOrString) {
  core::Service svc;
  svc.mutable_metadata()->set_name("s");
  auto* p1 = svc.mutable_spec()->add_ports();
  p1->set_port(80);
  p1->mutable_targetport()->set_type(0);
  p1->mutable_targetport()->set_intval(8080);
  p1->mutable_targetport()->set_strval("");
  auto* p2 = svc.mutable_spec()->add_ports();
  p2->set_name("https");
  p2->set_port(443);
  p2->mutable_targetport()->set_type(1);
  p2->mutable_targetport()->set_strval("https");
  auto* p3 = svc.mutable_spec()->add_ports();
  p3->set_port(53);
  p3->mutable_targetport();  // empty message: int 0, as Go
  ExpectJsonEq(DecodeOk(Envelope("v1", "Service", svc)),
               R"({"kind":"Service","apiVersion":"v1","metadata":{"name":"s"},"spec":{"ports":[
                   {"port":80,"targetPort":8080},{"name":"https","port":443,"targetPort":"https"},
                   {"port":53,"targetPort":0}]}})");

  apps::Deployment d;
  auto* ru = d.mutable_spec()->mutable_strategy()->mutable_rollingupdate();
  ru->mutable_maxsurge()->set_type(1);
  ru->mutable_maxsurge()->set_strval("25%");
  ru->mutable_maxunavailable()->set_type(0);
  ru->mutable_maxunavailable()->set_intval(1);
  ExpectJsonEq(DecodeOk(Envelope("apps/v1", "Deployment", d)),
               R"({"kind":"Deployment","apiVersion":"apps/v1","spec":{"strategy":{"rollingUpdate":
                   {"maxUnavailable":1,"maxSurge":"25%"}}}})");

  p3->mutable_targetport()->set_type(2);
  EXPECT_NE(DecodeError(Envelope("v1", "Service", svc)).find("IntOrString"), std::string::npos);
}

TEST(Special, FieldsV1EmbeddedJson) {
  core::ConfigMap cm;
  cm.mutable_metadata()->set_name("cm");
  auto* mf = cm.mutable_metadata()->add_managedfields();
  mf->set_manager("kubectl");
  mf->set_operation("Update");
  mf->set_apiversion("v1");
  mf->mutable_time()->set_seconds(1700000000);
  mf->set_fieldstype("FieldsV1");
  mf->mutable_fieldsv1()->set_raw(R"({"f:data":{".":{},"f:a":{}}})");
  ExpectJsonEq(DecodeOk(Envelope("v1", "ConfigMap", cm)),
               R"({"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm","managedFields":[
                   {"manager":"kubectl","operation":"Update","apiVersion":"v1","time":"2023-11-14T22:13:20Z",
                    "fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:a":{}}}}]}})");

  mf->mutable_fieldsv1()->set_raw("");  // nil Raw -> null
  EXPECT_NE(DecodeOk(Envelope("v1", "ConfigMap", cm)).find("\"fieldsV1\":null"), std::string::npos);
  for (const std::string& bad : {std::string("{\"a\":"), std::string("{} {}"), std::string("\xff"),
                                 std::string("[1]\0", 4), std::string(10000, '[')}) {
    mf->mutable_fieldsv1()->set_raw(bad);
    EXPECT_FALSE(DecodeToJson(Envelope("v1", "ConfigMap", cm)).ok()) << bad.substr(0, 20);
  }
}

TEST(Special, BytesAreBase64) {
  core::Secret s;
  s.mutable_metadata()->set_name("s");
  (*s.mutable_data())["a"] = std::string("\x00\xff", 2);
  (*s.mutable_data())["b"] = "abc";
  (*s.mutable_data())["c"] = "abcd";
  (*s.mutable_data())["empty"] = "";
  (*s.mutable_stringdata())["plain"] = "text";
  s.set_type("Opaque");
  ExpectJsonEq(DecodeOk(Envelope("v1", "Secret", s)),
               R"({"kind":"Secret","apiVersion":"v1","metadata":{"name":"s"},
                   "data":{"a":"AP8=","b":"YWJj","c":"YWJjZA==","empty":""},
                   "stringData":{"plain":"text"},"type":"Opaque"})");
}

// ---------------------------------------------------------------------------------------------
// Zero values: omitted for Go value fields (omitempty), kept for Go pointer fields.

TEST(ZeroValues, ValueFieldsOmittedPointerFieldsKept) {
  core::Pod pod;
  auto* md = pod.mutable_metadata();
  md->set_name("p");
  md->set_namespace_("");    // value string: omitted
  md->set_generation(0);     // value int64: omitted
  md->set_deletiongraceperiodseconds(0);  // *int64: kept
  (*md->mutable_labels())["empty"] = "";  // map values are always kept
  auto* spec = pod.mutable_spec();
  spec->set_hostnetwork(false);                  // value bool: omitted
  spec->set_dnspolicy("");                       // value string: omitted (so defaulting applies)
  spec->set_automountserviceaccounttoken(false); // *bool: kept
  spec->set_terminationgraceperiodseconds(0);    // *int64: kept
  spec->mutable_securitycontext()->set_runasuser(0);  // *int64: kept
  auto* c = spec->add_containers();
  c->set_name("c");
  c->set_stdin(false);
  c->add_args("");                               // repeated elements are always kept
  auto* port = c->add_ports();
  port->set_containerport(80);
  port->set_hostport(0);
  ExpectJsonEq(DecodeOk(Envelope("v1", "Pod", pod)),
               R"({"kind":"Pod","apiVersion":"v1",
                   "metadata":{"name":"p","deletionGracePeriodSeconds":0,"labels":{"empty":""}},
                   "spec":{"containers":[{"name":"c","args":[""],"ports":[{"containerPort":80}]}],
                           "terminationGracePeriodSeconds":0,"automountServiceAccountToken":false,
                           "securityContext":{"runAsUser":0}}})");
}

TEST(ZeroValues, PvcStorageClassNameEmptyIsKept) {
  core::PersistentVolumeClaim pvc;
  pvc.mutable_metadata()->set_name("c");
  pvc.mutable_spec()->set_storageclassname("");
  pvc.mutable_spec()->add_accessmodes("ReadWriteOnce");
  (*pvc.mutable_spec()->mutable_resources()->mutable_requests())["storage"].set_string("1Gi");
  ExpectJsonEq(DecodeOk(Envelope("v1", "PersistentVolumeClaim", pvc)),
               R"({"kind":"PersistentVolumeClaim","apiVersion":"v1","metadata":{"name":"c"},
                   "spec":{"accessModes":["ReadWriteOnce"],"resources":{"requests":{"storage":"1Gi"}},
                           "storageClassName":""}})");
}

TEST(ZeroValues, ScaleToZero) {
  k8s::io::api::autoscaling::v1::Scale scale;
  scale.mutable_metadata()->set_name("web");
  scale.mutable_spec()->set_replicas(0);
  ExpectJsonEq(DecodeOk(Envelope("autoscaling/v1", "Scale", scale)),
               R"({"kind":"Scale","apiVersion":"autoscaling/v1","metadata":{"name":"web"},
                   "spec":{"replicas":0}})");
}

TEST(ZeroValues, DeleteOptions) {
  meta::DeleteOptions opts;
  opts.set_graceperiodseconds(0);
  opts.set_propagationpolicy("Foreground");
  opts.mutable_preconditions()->set_uid("u-1");
  opts.add_dryrun("All");
  for (const char* gv : {"v1", "apps/v1", "meta.k8s.io/v1"}) {
    ExpectJsonEq(DecodeOk(Envelope(gv, "DeleteOptions", opts)),
                 std::string(R"({"kind":"DeleteOptions","apiVersion":")") + gv +
                     R"(","gracePeriodSeconds":0,"preconditions":{"uid":"u-1"},
                        "propagationPolicy":"Foreground","dryRun":["All"]})");
  }
}

}  // namespace
