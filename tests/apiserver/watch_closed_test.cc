// Store watches that end (WatchSink::OnClosed, as the etcd store does when a broken stream would
// have to resume from a compacted revision): the HTTP watches they fed end with a 410 ERROR event
// and the watch cache serves again afterwards. Hand-built schemas, no DSL compiler.
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/pointer.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "http_client.h"
#include "rc/apiserver/api_server.h"

namespace rc::apiserver {
namespace {

using rc::testing::HttpCall;
using rc::testing::HttpReply;

std::string Ptr(const std::string& json, const char* pointer) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  const rapidjson::Value* v = d.HasParseError() ? nullptr : rapidjson::Pointer(pointer).Get(d);
  if (!v) return "<missing>";
  if (v->IsString()) return v->GetString();
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  return "<other>";
}

schema::ResourceSchema Schemaless(std::string kind, std::string plural, bool namespaced) {
  schema::ResourceSchema s;
  s.version = "v1";
  s.kind = std::move(kind);
  s.plural = std::move(plural);
  s.singular = s.kind;
  for (auto& c : s.singular) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  s.namespaced = namespaced;
  if (!namespaced) s.name_format = schema::StringFormat::kDns1123Label;
  return s;
}

// A Store whose watches the test can end with OnClosed(reason) on demand, as the etcd store ends
// one; it can also refuse the next watches of a key. Everything else goes to the inner store.
class ClosableStore : public store::Store {
 public:
  explicit ClosableStore(std::unique_ptr<store::Store> inner) : inner_(std::move(inner)) {}

  // Ends every live watch whose key is `key` with OnClosed(reason); returns how many.
  int CloseWatches(const std::string& key, const Status& reason) {
    std::vector<std::shared_ptr<Tap>> taps;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& t : taps_) {
        if (t->key == key) taps.push_back(t);
      }
    }
    int closed = 0;
    for (auto& t : taps) closed += t->Close(reason) ? 1 : 0;
    return closed;
  }
  // Live (not yet released) watches of `key`, closed or not.
  int live(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    int n = 0;
    for (auto& t : taps_) n += t->key == key ? 1 : 0;
    return n;
  }
  // Watches of `key` ever started.
  int started(const std::string& key) {
    std::lock_guard<std::mutex> lock(mu_);
    return started_[key];
  }
  // The next `n` watches of `key` fail with `status`.
  void FailNextWatches(const std::string& key, int n, Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_[key] = {n, std::move(status)};
  }

  Result<std::unique_ptr<store::WatchHandle>> Watch(const std::string& key, const std::string& end, int64_t start,
                                                    store::WatchSink* sink) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto f = failures_.find(key);
      if (f != failures_.end() && f->second.first > 0) {
        --f->second.first;
        return f->second.second;
      }
    }
    auto tap = std::make_shared<Tap>();
    tap->key = key;
    tap->sink = sink;
    auto inner = inner_->Watch(key, end, start, tap.get());
    if (!inner.ok()) return inner.status();
    {
      std::lock_guard<std::mutex> lock(mu_);
      taps_.insert(tap);
      ++started_[key];
    }
    auto handle = std::make_unique<Handle>();
    handle->inner = std::move(inner.value());
    handle->tap = tap;
    handle->store = this;
    return std::unique_ptr<store::WatchHandle>(std::move(handle));
  }

  Result<store::RangeResult> Range(const std::string& key, const store::RangeOptions& o) override { return inner_->Range(key, o); }
  Result<store::PutResult> Put(const std::string& key, const std::string& value, int64_t lease, bool prev_kv) override {
    return inner_->Put(key, value, lease, prev_kv);
  }
  Result<store::DeleteResult> DeleteRange(const std::string& key, const std::string& end, bool prev_kv) override {
    return inner_->DeleteRange(key, end, prev_kv);
  }
  Result<store::TxnResult> Txn(const store::TxnRequest& r) override { return inner_->Txn(r); }
  Status Compact(int64_t revision) override { return inner_->Compact(revision); }
  Result<store::LeaseInfo> LeaseGrant(int64_t id, int64_t ttl) override { return inner_->LeaseGrant(id, ttl); }
  Status LeaseRevoke(int64_t id) override { return inner_->LeaseRevoke(id); }
  Result<int64_t> LeaseKeepAlive(int64_t id) override { return inner_->LeaseKeepAlive(id); }
  Result<store::LeaseInfo> LeaseTimeToLive(int64_t id, bool with_keys) override { return inner_->LeaseTimeToLive(id, with_keys); }
  std::vector<int64_t> Leases() override { return inner_->Leases(); }
  int64_t CurrentRevision() override { return inner_->CurrentRevision(); }
  int64_t CompactRevision() override { return inner_->CompactRevision(); }
  store::StoreStatus GetStatus() override { return inner_->GetStatus(); }

 private:
  // Passes events on until closed (then nothing follows, as the WatchSink contract says).
  struct Tap : store::WatchSink {
    std::string key;
    store::WatchSink* sink = nullptr;
    std::mutex mu;
    bool ended = false;  // closed, or its handle released

    void OnEvents(std::span<const store::Event> events) override {
      std::lock_guard<std::mutex> lock(mu);
      if (!ended) sink->OnEvents(events);
    }
    bool Close(const Status& reason) {
      std::lock_guard<std::mutex> lock(mu);
      if (ended) return false;
      ended = true;
      sink->OnClosed(reason);
      return true;
    }
  };
  struct Handle : store::WatchHandle {
    std::unique_ptr<store::WatchHandle> inner;
    std::shared_ptr<Tap> tap;
    ClosableStore* store = nullptr;
    ~Handle() override {
      inner.reset();
      {
        std::lock_guard<std::mutex> lock(tap->mu);  // waits for a Close in progress
        tap->ended = true;
      }
      std::lock_guard<std::mutex> lock(store->mu_);
      store->taps_.erase(tap);
    }
  };

  std::unique_ptr<store::Store> inner_;
  std::mutex mu_;
  std::set<std::shared_ptr<Tap>> taps_;
  std::map<std::string, int> started_;
  std::map<std::string, std::pair<int, Status>> failures_;
};

// One HTTP/1.0 watch (close-delimited: the stream's end is the connection's end).
class WatchStream {
 public:
  WatchStream(uint16_t port, const std::string& target) : sock_(ioc_) {
    sock_.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
    std::string request = "GET " + target + " HTTP/1.0\r\n\r\n";
    boost::asio::write(sock_, boost::asio::buffer(request));
    sock_.non_blocking(true);
  }
  // Reads until `marker` occurs (true) or the stream ends or `timeout` passes (false).
  bool ReadUntil(const std::string& marker, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (data_.find(marker) == std::string::npos) {
      if (ended_ || std::chrono::steady_clock::now() >= deadline) return false;
      ReadSome();
    }
    return true;
  }
  // Reads until the server ends the stream (true) or `timeout` passes (false).
  bool ReadToEnd(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!ended_ && std::chrono::steady_clock::now() < deadline) ReadSome();
    return ended_;
  }
  const std::string& data() const { return data_; }
  // The body's last line (the last event).
  std::string LastEvent() const {
    size_t end = data_.find_last_not_of('\n');
    if (end == std::string::npos) return "";
    size_t begin = data_.rfind('\n', end);
    return data_.substr(begin == std::string::npos ? 0 : begin + 1, end + 1 - (begin == std::string::npos ? 0 : begin + 1));
  }

 private:
  void ReadSome() {
    char buf[65536];
    boost::system::error_code ec;
    size_t n = sock_.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      return;
    }
    if (ec) {
      ended_ = true;
      return;
    }
    data_.append(buf, n);
  }

  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket sock_;
  std::string data_;
  bool ended_ = false;
};

constexpr const char* kConfigMaps = "/api/v1/namespaces/default/configmaps";
const std::string kCacheKey = "/registry/configmaps/";           // the watch cache's store watch
const std::string kDefaultKey = "/registry/configmaps/default/";  // a private one in "default"

std::string ConfigMap(const std::string& name, const std::string& labels = "{}") {
  return R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name + R"(","labels":)" + labels +
         R"(},"data":{"k":"v"}})";
}

Status CompactedReason() {
  return Status::Compacted("etcd: required revision 5 has been compacted (compaction revision 9)");
}

void ExpectGone(const std::string& event) {
  EXPECT_EQ(Ptr(event, "/type"), "ERROR") << event;
  EXPECT_EQ(Ptr(event, "/object/kind"), "Status") << event;
  EXPECT_EQ(Ptr(event, "/object/status"), "Failure") << event;
  EXPECT_EQ(Ptr(event, "/object/code"), "410") << event;
  EXPECT_EQ(Ptr(event, "/object/reason"), "Expired") << event;
  EXPECT_EQ(Ptr(event, "/object/message").rfind("too old resource version: ", 0), 0u) << event;
}

class WatchClosedTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(ApiServerOptions{}); }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  void Start(ApiServerOptions options) {
    if (server_) server_->Shutdown();
    server_.reset();
    auto closable = std::make_unique<ClosableStore>(store::NewMemoryStore());
    store_ = closable.get();
    owned_ = std::move(closable);
    options.port = 0;
    auto s = ApiServer::Start(owned_.get(),
                              RegistryFromSchemas({Schemaless("Namespace", "namespaces", false),
                                                   Schemaless("ConfigMap", "configmaps", true)},
                                                  "builtin"),
                              options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s.value());
  }
  HttpReply Call(const std::string& method, const std::string& target, const std::string& body = "") {
    return HttpCall(server_->port(), method, target, body);
  }
  void Create(const std::string& name, const std::string& labels = "{}") {
    auto r = Call("POST", kConfigMaps, ConfigMap(name, labels));
    ASSERT_EQ(r.status, 201) << r.body;
  }
  // Waits until the cache's store watch has been started `n` times and one of them is live.
  bool WaitForCacheWatch(int n) {
    for (int i = 0; i < 100; ++i) {
      if (store_->started(kCacheKey) == n && store_->live(kCacheKey) == 1) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  std::unique_ptr<store::Store> owned_;
  ClosableStore* store_ = nullptr;
  std::unique_ptr<ApiServer> server_;
};

TEST_F(WatchClosedTest, OpenWatchesEndWithGoneAndTheCacheServesAgain) {
  Create("a", R"({"app":"x"})");
  WatchStream all(server_->port(), std::string(kConfigMaps) + "?watch=true");
  WatchStream selected(server_->port(), std::string(kConfigMaps) + "?watch=true&labelSelector=app%3Dx");
  ASSERT_TRUE(all.ReadUntil("\"name\":\"a\""));
  ASSERT_TRUE(selected.ReadUntil("\"name\":\"a\""));
  Create("b", R"({"app":"x"})");
  ASSERT_TRUE(all.ReadUntil("\"name\":\"b\"")) << all.data();  // live, from the cache
  ASSERT_TRUE(selected.ReadUntil("\"name\":\"b\"")) << selected.data();
  EXPECT_EQ(store_->live(kDefaultKey), 0);  // no private store watch
  ASSERT_EQ(store_->started(kCacheKey), 1);

  ASSERT_EQ(store_->CloseWatches(kCacheKey, CompactedReason()), 1);
  ASSERT_TRUE(all.ReadToEnd()) << all.data();
  ASSERT_TRUE(selected.ReadToEnd()) << selected.data();
  ExpectGone(all.LastEvent());
  ExpectGone(selected.LastEvent());
  EXPECT_NE(all.LastEvent().find("compaction revision 9"), std::string::npos) << all.LastEvent();

  // The cache watches the store again (from the current revision, empty window).
  ASSERT_TRUE(WaitForCacheWatch(2));
  Create("c", R"({"app":"x"})");
  WatchStream again(server_->port(), std::string(kConfigMaps) + "?watch=true");
  ASSERT_TRUE(again.ReadUntil("\"name\":\"c\"")) << again.data();  // the initial state
  Create("d");
  ASSERT_TRUE(again.ReadUntil("\"name\":\"d\"")) << again.data();  // live
  EXPECT_EQ(store_->live(kDefaultKey), 0);

  // LIST, then watch from its resourceVersion: only later changes, served by the cache.
  auto list = Call("GET", kConfigMaps);
  ASSERT_EQ(list.status, 200) << list.body;
  std::string rv = Ptr(list.body, "/metadata/resourceVersion");
  ASSERT_EQ(Ptr(list.body, "/items/3/metadata/name"), "d");
  WatchStream from_list(server_->port(), std::string(kConfigMaps) + "?watch=true&resourceVersion=" + rv);
  Create("e");
  ASSERT_TRUE(from_list.ReadUntil("\"name\":\"e\"")) << from_list.data();
  EXPECT_EQ(from_list.data().find("\"name\":\"d\""), std::string::npos) << from_list.data();
  EXPECT_EQ(Ptr(from_list.LastEvent(), "/type"), "ADDED");
  EXPECT_EQ(store_->live(kDefaultKey), 0);
  ASSERT_TRUE(again.ReadUntil("\"name\":\"e\"")) << again.data();
}

// A watch served by its own store watch (resumed from before the window) ends the same way;
// the cache and its watches are unaffected.
TEST_F(WatchClosedTest, PrivateWatchEndsWithGone) {
  ApiServerOptions options;
  options.watch_window_events = 2;
  Start(options);
  Create("a");
  std::string rv = Ptr(Call("GET", std::string(kConfigMaps) + "/a").body, "/metadata/resourceVersion");
  WatchStream cached(server_->port(), std::string(kConfigMaps) + "?watch=true");
  ASSERT_TRUE(cached.ReadUntil("\"name\":\"a\"")) << cached.data();
  for (const char* name : {"b", "c", "d"}) Create(name);
  ASSERT_TRUE(cached.ReadUntil("\"name\":\"d\"")) << cached.data();  // the window moved past rv

  WatchStream resumed(server_->port(), std::string(kConfigMaps) + "?watch=true&resourceVersion=" + rv);
  ASSERT_TRUE(resumed.ReadUntil("\"name\":\"d\"")) << resumed.data();
  EXPECT_EQ(resumed.data().find("\"name\":\"a\""), std::string::npos);  // changes after rv only
  // Its history arrives while Store::Watch runs, before the store hands out the watch.
  for (int i = 0; i < 100 && store_->live(kDefaultKey) != 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(store_->live(kDefaultKey), 1);

  ASSERT_EQ(store_->CloseWatches(kDefaultKey, CompactedReason()), 1);
  ASSERT_TRUE(resumed.ReadToEnd()) << resumed.data();
  ExpectGone(resumed.LastEvent());
  Create("e");
  ASSERT_TRUE(cached.ReadUntil("\"name\":\"e\"")) << cached.data();
  EXPECT_EQ(store_->started(kCacheKey), 1);
  // The ended store watch is released (the ticker collects finished watchers every 0.5 s).
  for (int i = 0; i < 100 && store_->live(kDefaultKey) != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(store_->live(kDefaultKey), 0);
}

// The store refuses the first re-watch: the ticker retries; watches meanwhile use a store watch
// of their own, and once the cache watches again new watches are served from it.
TEST_F(WatchClosedTest, ReWatchIsRetried) {
  Create("a");
  WatchStream before(server_->port(), std::string(kConfigMaps) + "?watch=true");
  ASSERT_TRUE(before.ReadUntil("\"name\":\"a\""));
  store_->FailNextWatches(kCacheKey, 1, Status::Unavailable("etcd: no endpoint answered"));
  ASSERT_EQ(store_->CloseWatches(kCacheKey, Status::Unavailable("etcd: watch stream ended")), 1);
  ASSERT_TRUE(before.ReadToEnd()) << before.data();
  ExpectGone(before.LastEvent());

  ASSERT_TRUE(WaitForCacheWatch(2));  // the failed attempt did not start one
  Create("b");
  WatchStream after(server_->port(), std::string(kConfigMaps) + "?watch=true");
  ASSERT_TRUE(after.ReadUntil("\"name\":\"b\"")) << after.data();
  Create("c");
  ASSERT_TRUE(after.ReadUntil("\"name\":\"c\"")) << after.data();
  EXPECT_EQ(store_->live(kDefaultKey), 0);
}

// Closures racing with writes, new watches and shutdown (run under ThreadSanitizer too).
TEST_F(WatchClosedTest, ClosuresUnderLoad) {
  std::atomic<bool> stop{false};
  std::atomic<int> created{0};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      auto r = HttpCall(server_->port(), "POST", kConfigMaps, ConfigMap("w" + std::to_string(i)));
      if (r.status == 201) ++created;
    }
  });
  for (int round = 0; round < 8; ++round) {
    // From the current revision: after the cache's restart, so the cache serves it (its first
    // event proves the subscription).
    WatchStream w(server_->port(), std::string(kConfigMaps) + "?watch=true&resourceVersion=" +
                                       std::to_string(store_->CurrentRevision()));
    WatchStream late(server_->port(), std::string(kConfigMaps) + "?watch=true");  // may race the closure
    ASSERT_TRUE(w.ReadUntil("\"type\":\"ADDED\"")) << w.data();
    ASSERT_EQ(store_->CloseWatches(kCacheKey, CompactedReason()), 1);
    ASSERT_TRUE(w.ReadToEnd()) << w.data();
    ExpectGone(w.LastEvent());
    ASSERT_TRUE(WaitForCacheWatch(round + 2));
    // `late` was served by the old cache (ended with 410), or by a store watch of its own, or by
    // the new cache: either way it ends with 410 or still streams.
    Create("late" + std::to_string(round));
    if (!late.ReadUntil("\"name\":\"late" + std::to_string(round) + "\"", std::chrono::milliseconds(500))) {
      ASSERT_TRUE(late.ReadToEnd()) << late.data();
      ExpectGone(late.LastEvent());
    }
  }
  stop = true;
  writer.join();
  EXPECT_GT(created.load(), 0);
}

}  // namespace
}  // namespace rc::apiserver
