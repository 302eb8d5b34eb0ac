// ApiServer::InstallResources over real HTTP: types installed, changed and removed while serving
// (what `rcd --resources DIR` does on a file change), with hand-built schemas — no DSL compiler.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include <atomic>
#include <thread>

#include "http_client.h"
#include "rc/apiserver/api_server.h"

namespace rc::apiserver {
namespace {

using rc::testing::HttpCall;
using rc::testing::HttpReply;
using rc::testing::RawStream;

std::string Ptr(const std::string& json, const char* pointer) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  const rapidjson::Value* v = d.HasParseError() ? nullptr : rapidjson::Pointer(pointer).Get(d);
  if (!v) return "<missing>";
  if (v->IsString()) return v->GetString();
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  if (v->IsDouble()) return std::to_string(v->GetDouble());
  return "<other>";
}

schema::TypeRef Scalar(schema::TypeKind kind, schema::Constraints c = {}) {
  auto t = std::make_shared<schema::Type>();
  t->kind = kind;
  t->constraints = c;
  return t;
}

schema::Field MakeField(std::string name, schema::TypeRef type, std::optional<std::string> default_json = std::nullopt,
                        bool required = false) {
  schema::Field f;
  f.name = std::move(name);
  f.type = std::move(type);
  f.default_json = std::move(default_json);
  f.required = required;
  return f;
}

// example.com/v1 Widget: spec { size: int = 1 @min(1) [@max(max)]; color: Red|Green|Blue = Blue;
// parts: [Part] keyed by name }, status { phase }, columns Size (+ Color when `color_column`).
schema::ResourceSchema Widget(std::optional<double> max = std::nullopt, bool color_column = false) {
  using schema::TypeKind;
  schema::Constraints size;
  size.minimum = 1;
  size.maximum = max;
  auto color = std::make_shared<schema::Type>();
  color->kind = TypeKind::kEnum;
  color->enum_values = {"Red", "Green", "Blue"};
  auto part = std::make_shared<schema::Type>();
  part->kind = TypeKind::kStruct;
  part->fields = {MakeField("name", Scalar(TypeKind::kString), std::nullopt, true), MakeField("count", Scalar(TypeKind::kInt))};
  auto parts = std::make_shared<schema::Type>();
  parts->kind = TypeKind::kList;
  parts->element = part;
  parts->list_map_keys = {"name"};
  auto spec = std::make_shared<schema::Type>();
  spec->kind = TypeKind::kStruct;
  spec->fields = {MakeField("size", Scalar(TypeKind::kInt, size), "1"), MakeField("color", color, "\"Blue\""),
                  MakeField("parts", parts)};
  auto status = std::make_shared<schema::Type>();
  status->kind = TypeKind::kStruct;
  status->fields = {MakeField("phase", Scalar(TypeKind::kString))};
  auto root = std::make_shared<schema::Type>();
  root->kind = TypeKind::kStruct;
  root->fields = {MakeField("spec", spec, "{}", true), MakeField("status", status)};

  schema::ResourceSchema s;
  s.group = "example.com";
  s.version = "v1";
  s.kind = "Widget";
  s.plural = "widgets";
  s.singular = "widget";
  s.short_names = {"wd"};
  s.has_status = true;
  s.root = root;
  schema::Column name;
  name.name = "Name";
  name.type = "string";
  name.format = "name";
  name.json_path = "metadata.name";
  schema::Column size_col;
  size_col.name = "Size";
  size_col.type = "integer";
  size_col.json_path = "spec.size";
  s.columns = {name, size_col};
  if (color_column) {
    schema::Column c;
    c.name = "Color";
    c.type = "string";
    c.compute = [](const std::string& object_json, int64_t) {
      size_t at = object_json.find("\"color\":\"");
      return at == std::string::npos ? std::string("?") : object_json.substr(at + 9, object_json.find('"', at + 9) - at - 9);
    };
    s.columns.push_back(c);
  }
  return s;
}

// Just enough core/v1 to have namespaces (no root type: the generic, schema-less path).
schema::ResourceSchema Namespaces() {
  schema::ResourceSchema s;
  s.version = "v1";
  s.kind = "Namespace";
  s.plural = "namespaces";
  s.singular = "namespace";
  s.namespaced = false;
  s.has_status = true;
  s.name_format = schema::StringFormat::kDns1123Label;
  return s;
}

// A store that counts live watches (the API server's watch caches hold one per served type).
class CountingStore : public store::Store {
 public:
  explicit CountingStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}
  int live_watches() const { return live_->load(); }

  Result<store::RangeResult> Range(const std::string& key, const store::RangeOptions& o) override { return inner_->Range(key, o); }
  Result<store::PutResult> Put(const std::string& key, const std::string& value, int64_t lease, bool prev_kv) override {
    return inner_->Put(key, value, lease, prev_kv);
  }
  Result<store::DeleteResult> DeleteRange(const std::string& key, const std::string& end, bool prev_kv) override {
    return inner_->DeleteRange(key, end, prev_kv);
  }
  Result<store::TxnResult> Txn(const store::TxnRequest& r) override { return inner_->Txn(r); }
  Status Compact(int64_t revision) override { return inner_->Compact(revision); }
  Result<std::unique_ptr<store::WatchHandle>> Watch(const std::string& key, const std::string& end, int64_t start,
                                                    store::WatchSink* sink) override {
    auto h = inner_->Watch(key, end, start, sink);
    if (!h.ok()) return h.status();
    return std::unique_ptr<store::WatchHandle>(std::make_unique<Counted>(std::move(h.value()), live_));
  }
  Result<store::LeaseInfo> LeaseGrant(int64_t id, int64_t ttl) override { return inner_->LeaseGrant(id, ttl); }
  Status LeaseRevoke(int64_t id) override { return inner_->LeaseRevoke(id); }
  Result<int64_t> LeaseKeepAlive(int64_t id) override { return inner_->LeaseKeepAlive(id); }
  Result<store::LeaseInfo> LeaseTimeToLive(int64_t id, bool with_keys) override { return inner_->LeaseTimeToLive(id, with_keys); }
  std::vector<int64_t> Leases() override { return inner_->Leases(); }
  int64_t CurrentRevision() override { return inner_->CurrentRevision(); }
  int64_t CompactRevision() override { return inner_->CompactRevision(); }
  store::StoreStatus GetStatus() override { return inner_->GetStatus(); }

 private:
  struct Counted : store::WatchHandle {
    Counted(std::unique_ptr<store::WatchHandle> h, std::shared_ptr<std::atomic<int>> n) : inner(std::move(h)), live(std::move(n)) { ++*live; }
    ~Counted() override {
      inner.reset();
      --*live;
    }
    std::unique_ptr<store::WatchHandle> inner;
    std::shared_ptr<std::atomic<int>> live;
  };
  std::unique_ptr<store::Store> inner_;
  std::shared_ptr<std::atomic<int>> live_ = std::make_shared<std::atomic<int>>(0);
};

constexpr const char* kWidgets = "/apis/example.com/v1/namespaces/default/widgets";

std::string WidgetJson(const std::string& name, const std::string& spec) {
  return R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":")" + name + R"("},"spec":)" + spec + "}";
}

class InstallResourcesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto counting = std::make_unique<CountingStore>(store::NewMemoryStore());
    counting_ = counting.get();
    store_ = std::move(counting);
    auto s = ApiServer::Start(store_.get(), RegistryFromSchemas({Namespaces()}, "builtin"), ApiServerOptions{.port = 0});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "",
                 std::map<std::string, std::string> headers = {}) {
    return HttpCall(server_->port(), method, target, body, headers);
  }

  std::unique_ptr<store::Store> store_;
  CountingStore* counting_ = nullptr;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(InstallResourcesTest, NewTypeIsDiscoveredDocumentedAndValidated) {
  EXPECT_EQ(Call("GET", "/apis/example.com/v1").status, 404);
  EXPECT_EQ(Call("POST", kWidgets, WidgetJson("w1", R"({"size":3})")).status, 404);

  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());

  EXPECT_NE(Call("GET", "/apis").body.find("\"example.com\""), std::string::npos);
  auto list = Call("GET", "/apis/example.com/v1");
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(Ptr(list.body, "/resources/0/name"), "widgets");
  EXPECT_EQ(Ptr(list.body, "/resources/0/shortNames/0"), "wd");
  EXPECT_EQ(Ptr(list.body, "/resources/1/name"), "widgets/status");

  // OpenAPI v3: the index lists the group version; its document has the schema and ObjectMeta.
  std::string url = Ptr(Call("GET", "/openapi/v3").body, "/paths/apis~1example.com~1v1/serverRelativeURL");
  ASSERT_EQ(url.rfind("/openapi/v3/apis/example.com/v1?hash=", 0), 0u) << url;
  std::string doc = Call("GET", url).body;
  const char* widget = "/components/schemas/io.rc.api.example.com.v1.Widget";
  EXPECT_EQ(Ptr(doc, (std::string(widget) + "/properties/spec/properties/size/minimum").c_str()), "1.000000");
  EXPECT_EQ(Ptr(doc, (std::string(widget) + "/properties/spec/properties/color/enum/2").c_str()), "Blue");
  EXPECT_EQ(Ptr(doc, (std::string(widget) + "/properties/metadata/allOf/0/$ref").c_str()),
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  EXPECT_EQ(Ptr(doc, "/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta/properties/name/type"), "string");

  // A valid instance: 201 with defaults applied.
  auto created = Call("POST", kWidgets, WidgetJson("w1", R"({"size":3})"));
  ASSERT_EQ(created.status, 201) << created.body;
  EXPECT_EQ(Ptr(created.body, "/spec/color"), "Blue");
  auto defaulted = Call("POST", kWidgets, WidgetJson("w0", "{}"));
  ASSERT_EQ(defaulted.status, 201) << defaulted.body;
  EXPECT_EQ(Ptr(defaulted.body, "/spec/size"), "1");

  // Invalid ones: 422 naming the fields, in CRD wording.
  auto bad = Call("POST", kWidgets, WidgetJson("bad", R"({"size":0,"color":"Purple"})"));
  ASSERT_EQ(bad.status, 422) << bad.body;
  EXPECT_EQ(Ptr(bad.body, "/reason"), "Invalid");
  EXPECT_EQ(Ptr(bad.body, "/details/kind"), "Widget");
  EXPECT_EQ(Ptr(bad.body, "/details/causes/0/field"), "spec.size");
  EXPECT_EQ(Ptr(bad.body, "/details/causes/0/message"), "Invalid value: 0: spec.size in body should be greater than or equal to 1");
  EXPECT_EQ(Ptr(bad.body, "/details/causes/1/field"), "spec.color");
  EXPECT_EQ(Ptr(bad.body, "/details/causes/1/message"), "Unsupported value: \"Purple\": supported values: \"Red\", \"Green\", \"Blue\"");
  auto wrong_type = Call("POST", kWidgets, WidgetJson("bad", R"({"size":"big"})"));
  EXPECT_EQ(wrong_type.status, 422);
  EXPECT_NE(wrong_type.body.find("spec.size in body must be of type integer: \\\"big\\\""), std::string::npos) << wrong_type.body;
}

TEST_F(InstallResourcesTest, FieldValidationStrictAndWarn) {
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  std::string unknown = WidgetJson("u", R"({"size":2,"sise":3,"parts":[{"name":"a","cnt":1}]})");
  auto strict = Call("POST", std::string(kWidgets) + "?fieldValidation=Strict", unknown);
  EXPECT_EQ(strict.status, 400);
  EXPECT_EQ(Ptr(strict.body, "/message"), "strict decoding error: unknown field \"spec.sise\", unknown field \"spec.parts[0].cnt\"");
  auto warn = Call("POST", std::string(kWidgets) + "?fieldValidation=Warn", unknown);
  EXPECT_EQ(warn.status, 201) << warn.body;
  EXPECT_EQ(warn.headers["warning"], "299 - \"unknown field \\\"spec.sise\\\"\", 299 - \"unknown field \\\"spec.parts[0].cnt\\\"\"");
  auto meta = Call("POST", std::string(kWidgets) + "?fieldValidation=Strict",
                   R"({"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"m","lables":{"a":"b"}},"spec":{}})");
  EXPECT_EQ(meta.status, 400);
  EXPECT_EQ(Ptr(meta.body, "/message"), "strict decoding error: unknown field \"metadata.lables\"");
  auto ignore = Call("POST", std::string(kWidgets) + "?fieldValidation=Ignore", WidgetJson("i", R"({"sise":3})"));
  EXPECT_EQ(ignore.status, 201);
  EXPECT_EQ(ignore.headers.count("warning"), 0u);
  // Patches are checked too (merge and strategic merge; directives are not fields).
  auto patch = Call("PATCH", std::string(kWidgets) + "/i?fieldValidation=Strict", R"({"spec":{"colour":"Red"}})",
                    {{"Content-Type", "application/merge-patch+json"}});
  EXPECT_EQ(patch.status, 400);
  EXPECT_NE(patch.body.find("unknown field \\\"spec.colour\\\""), std::string::npos) << patch.body;
  auto smp = Call("PATCH", std::string(kWidgets) + "/i?fieldValidation=Strict",
                  R"({"spec":{"$setElementOrder/parts":[{"name":"a"}],"parts":[{"name":"a","count":1}]}})",
                  {{"Content-Type", "application/strategic-merge-patch+json"}});
  EXPECT_EQ(smp.status, 200) << smp.body;
  // kubectl apply removes a field it applied before with null: not an unknown field.
  auto drop = Call("PATCH", std::string(kWidgets) + "/u?fieldValidation=Strict", R"({"spec":{"sise":null}})",
                   {{"Content-Type", "application/merge-patch+json"}});
  EXPECT_EQ(drop.status, 200) << drop.body;
}

TEST_F(InstallResourcesTest, StrategicMergeUsesTheSchemasListKeys) {
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  ASSERT_EQ(Call("POST", kWidgets, WidgetJson("w", R"({"parts":[{"name":"a","count":1},{"name":"b","count":2}]})")).status, 201);
  auto r = Call("PATCH", std::string(kWidgets) + "/w", R"({"spec":{"parts":[{"name":"b","count":5}]}})",
                {{"Content-Type", "application/strategic-merge-patch+json"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Ptr(r.body, "/spec/parts/0/name"), "a");
  EXPECT_EQ(Ptr(r.body, "/spec/parts/1/count"), "5");
}

TEST_F(InstallResourcesTest, ChangedVersionTakesOverAndRemovalKeepsObjects) {
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  ASSERT_EQ(Call("POST", kWidgets, WidgetJson("w1", R"({"size":9,"color":"Red"})")).status, 201);

  // A watch opened on the first version keeps streaming across the change.
  std::string watch = RawStream(server_->port(), std::string("GET ") + kWidgets + "?watch=true&resourceVersion=0 HTTP/1.1\r\nHost: x\r\n\r\n",
                                std::chrono::seconds(5), "\"type\":", 2, [&] {
                                  ASSERT_TRUE(server_->InstallResources({Widget(5, true)}, "test").ok());
                                  ASSERT_EQ(Call("POST", kWidgets, WidgetJson("w2", R"({"size":4})")).status, 201);
                                });
  EXPECT_NE(watch.find("\"name\":\"w1\""), std::string::npos) << watch;
  EXPECT_NE(watch.find("\"name\":\"w2\""), std::string::npos) << watch;

  // The new maximum applies; the new column shows (a compiled column: `compute`).
  auto bad = Call("POST", kWidgets, WidgetJson("w3", R"({"size":9})"));
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(Ptr(bad.body, "/details/causes/0/message"), "Invalid value: 9: spec.size in body should be less than or equal to 5");
  auto table = Call("GET", kWidgets, "", {{"Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"}});
  ASSERT_EQ(table.status, 200);
  EXPECT_EQ(Ptr(table.body, "/columnDefinitions/2/name"), "Color");
  EXPECT_EQ(Ptr(table.body, "/rows/0/cells/0"), "w1");
  EXPECT_EQ(Ptr(table.body, "/rows/0/cells/1"), "9");
  EXPECT_EQ(Ptr(table.body, "/rows/0/cells/2"), "Red");
  // A stored object that the new version would refuse is still served and can be updated in
  // other ways only once it validates (as with a tightened CRD).
  EXPECT_EQ(Call("GET", std::string(kWidgets) + "/w1").status, 200);

  // Removal: the type disappears from discovery and routing; its objects stay in the store.
  ASSERT_TRUE(server_->InstallResources({}, "test").ok());
  EXPECT_EQ(Call("GET", "/apis/example.com/v1").status, 404);
  EXPECT_EQ(Call("GET", std::string(kWidgets) + "/w1").status, 404);
  EXPECT_EQ(Call("GET", "/apis").body.find("example.com"), std::string::npos);
  EXPECT_EQ(Call("GET", "/openapi/v3").body.find("example.com"), std::string::npos);
  EXPECT_EQ(Call("GET", "/api/v1/namespaces/default").status, 200);  // other origins untouched
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  auto back = Call("GET", std::string(kWidgets) + "/w1");
  EXPECT_EQ(back.status, 200);
  EXPECT_EQ(Ptr(back.body, "/spec/size"), "9");
}

TEST_F(InstallResourcesTest, ReplacedVersionsReleaseTheirStoreWatches) {
  int base = counting_->live_watches();  // namespaces
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  EXPECT_EQ(counting_->live_watches(), base + 1);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(server_->InstallResources({Widget(10 + i)}, "test").ok());
  EXPECT_EQ(counting_->live_watches(), base + 1);  // one per served version, none per replaced one

  // A watch on the current version keeps its cache (and store watch) through a replacement,
  // until it ends; then the retired cache lets go of the store (the ticker checks every 0.5 s).
  std::string out = RawStream(server_->port(), std::string("GET ") + kWidgets + "?watch=true&timeoutSeconds=1 HTTP/1.1\r\nHost: x\r\n\r\n",
                              std::chrono::seconds(5), "\"type\":", 1, [&] {
                                std::this_thread::sleep_for(std::chrono::milliseconds(300));  // subscribed
                                ASSERT_TRUE(server_->InstallResources({Widget(3)}, "test").ok());
                                EXPECT_EQ(counting_->live_watches(), base + 2);
                                ASSERT_EQ(Call("POST", kWidgets, WidgetJson("after", R"({"size":2})")).status, 201);
                              });
  EXPECT_NE(out.find("\"name\":\"after\""), std::string::npos) << out;
  for (int i = 0; i < 50 && counting_->live_watches() != base + 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(counting_->live_watches(), base + 1);

  // Removal releases it as well; a watch after reinstalling works.
  ASSERT_TRUE(server_->InstallResources({}, "test").ok());
  EXPECT_EQ(counting_->live_watches(), base);
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  std::string again = RawStream(server_->port(), std::string("GET ") + kWidgets + "?watch=true HTTP/1.1\r\nHost: x\r\n\r\n",
                                std::chrono::seconds(5), "\"type\":", 1, nullptr);
  EXPECT_NE(again.find("\"name\":\"after\""), std::string::npos) << again;
}

TEST_F(InstallResourcesTest, InstallWhileServing) {
  ASSERT_TRUE(server_->InstallResources({Widget()}, "test").ok());
  std::atomic<bool> stop{false};
  std::atomic<int> unexpected{0}, served{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c) {
    clients.emplace_back([&, c] {
      for (int i = 0; !stop; ++i) {
        std::string name = "c" + std::to_string(c) + "-" + std::to_string(i);
        int post = HttpCall(server_->port(), "POST", kWidgets, WidgetJson(name, R"({"size":2})")).status;
        int disc = HttpCall(server_->port(), "GET", "/apis/example.com/v1").status;
        int doc = HttpCall(server_->port(), "GET", "/openapi/v3/apis/example.com/v1").status;
        int list = HttpCall(server_->port(), "GET", kWidgets).status;
        int groups = HttpCall(server_->port(), "GET", "/apis").status;
        int group = HttpCall(server_->port(), "GET", "/apis/example.com").status;
        int index = HttpCall(server_->port(), "GET", "/openapi/v3").status;
        // Whichever version is installed at that moment answers: created, or not served.
        for (int s : {post, disc, doc, list, groups, group, index}) {
          if (s != 200 && s != 201 && s != 404) ++unexpected;
        }
        ++served;
      }
    });
  }
  for (int i = 0; i < 40; ++i) {
    std::vector<schema::ResourceSchema> set;
    if (i % 4 != 3) set.push_back(Widget(i % 2 ? std::optional<double>(10) : std::nullopt, i % 2));
    ASSERT_TRUE(server_->InstallResources(set, "test").ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  for (auto& t : clients) t.join();
  EXPECT_EQ(unexpected.load(), 0);
  EXPECT_GT(served.load(), 0);
}

}  // namespace
}  // namespace rc::apiserver
