// Shared fixtures for the etcdserver tests: temp dirs, stores, a running EtcdServer, etcdctl.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "rc/etcdserver/etcd_server.h"
#include "rc/store/store.h"
#include "subprocess.h"

namespace rc::testing {

// A fresh directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir() {
    std::string base = std::filesystem::temp_directory_path() / "rc-etcdserver-test-XXXXXX";
    std::vector<char> buf(base.begin(), base.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

enum class StoreKind { kMemory, kRocks };

inline std::string StoreKindName(const ::testing::TestParamInfo<StoreKind>& info) {
  return info.param == StoreKind::kMemory ? "Memory" : "Rocks";
}

// Finds etcdctl in PATH ("" if missing).
inline std::string FindEtcdctl() {
  const char* path = getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = p.substr(start, end - start) + "/etcdctl";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// An EtcdServer on port 0 over a memory or RocksDB store (in a temp dir).
class ServerFixture {
 public:
  void SetUpServer(StoreKind kind, etcdserver::EtcdServerOptions options = {}) {
    signal(SIGPIPE, SIG_IGN);
    if (kind == StoreKind::kMemory) {
      store_ = store::NewMemoryStore();
    } else {
      dir_ = std::make_unique<TempDir>();
      ASSERT_FALSE(dir_->path().empty());
      store::RocksStoreOptions ro;
      ro.path = dir_->path() + "/db";
      auto s = store::OpenRocksStore(ro);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      store_ = std::move(s.value());
    }
    options.listen_address = "127.0.0.1:0";
    auto server = etcdserver::EtcdServer::Start(store_.get(), options);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server.value());
    ASSERT_GT(server_->port(), 0);
    endpoint_ = "127.0.0.1:" + std::to_string(server_->port());
  }

  void TearDownServer() {
    if (server_) server_->Shutdown();
    server_.reset();
    store_.reset();
    dir_.reset();
  }

  // Runs `etcdctl --endpoints=<server> args...` with ETCDCTL_API=3.
  RunResult Etcdctl(const std::vector<std::string>& args, const std::string& input = "",
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
    return Run(EtcdctlArgv(args), input, timeout, {{"ETCDCTL_API", "3"}});
  }

  std::vector<std::string> EtcdctlArgv(const std::vector<std::string>& args) const {
    std::vector<std::string> argv = {FindEtcdctl(), "--endpoints=" + endpoint_,
                                     "--dial-timeout=5s", "--command-timeout=20s"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  store::Store* store() { return store_.get(); }
  const std::string& endpoint() const { return endpoint_; }

 protected:
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<etcdserver::EtcdServer> server_;
  std::string endpoint_;
};

// Splits into lines, dropping empty ones.
inline std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < s.size()) {
    size_t end = s.find('\n', start);
    if (end == std::string::npos) end = s.size();
    if (end > start) out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace rc::testing
