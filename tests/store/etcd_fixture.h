// Test fixtures for the etcd store: a real etcd (/usr/bin/etcd) or our rc-etcd as child
// processes on loopback with free ports and temp data dirs. Children are killed (SIGKILL, by
// pid) and reaped when their owner goes away, also when a test fails; PR_SET_PDEATHSIG kills
// them if the test process dies first.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "rc/store/etcd_store.h"
#include "store_test_util.h"

namespace rc::store::testing {

#ifdef RC_ETCD_SERVER_BINARY
inline const char* EtcdBinary() { return RC_ETCD_SERVER_BINARY; }
#else
inline const char* EtcdBinary() { return "/usr/bin/etcd"; }
#endif
inline bool HaveEtcd() { return access(EtcdBinary(), X_OK) == 0; }

// A port that was free a moment ago, below the kernel's ephemeral range (32768+) so that no
// outgoing connection of a concurrently running test (kubectl, curl, clients) takes it between
// this check and etcd's bind: random in [20000, 32000), checked with a bind.
inline int FreePort() {
  static std::mt19937 rng(static_cast<unsigned>(getpid()) * 7919u + static_cast<unsigned>(time(nullptr)));
  for (int attempt = 0; attempt < 200; ++attempt) {
    int port = 20000 + static_cast<int>(rng() % 12000);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    bool free = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (free) return port;
  }
  throw std::runtime_error("FreePort: no free port in 20000-32000");
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One child process with stdout+stderr appended to a log file.
class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { Kill(); }

  void Start(const std::vector<std::string>& argv, const std::string& log_path) {
    Kill();
    std::vector<std::string> args = argv;
    std::vector<char*> cargv;
    for (auto& s : args) cargv.push_back(s.data());
    cargv.push_back(nullptr);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(127);
      int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      int devnull = open("/dev/null", O_RDONLY);
      if (devnull >= 0) dup2(devnull, 0);
      execv(cargv[0], cargv.data());
      _exit(127);
    }
    pid_ = pid;
  }

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  // SIGKILL + reap (only our own child, by pid).
  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
};

inline Result<std::unique_ptr<Store>> OpenStoreWithRetry(
    std::vector<std::string> endpoints,
    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    EtcdStoreOptions o;
    o.endpoints = endpoints;
    o.dial_timeout = std::chrono::milliseconds(200);
    o.request_timeout = std::chrono::seconds(5);
    o.max_reconnect_backoff = std::chrono::milliseconds(200);
    auto s = OpenEtcdStore(o);
    if (s.ok() || std::chrono::steady_clock::now() > deadline) return s;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// One etcd member; `Cluster` below starts several.
struct EtcdMember {
  std::string name;
  int client_port = 0;
  int peer_port = 0;
  std::string data_dir;
  std::string log;
  ChildProcess process;

  std::string client_url() const { return "http://127.0.0.1:" + std::to_string(client_port); }
  std::string peer_url() const { return "http://127.0.0.1:" + std::to_string(peer_port); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client_port); }
};

// A real etcd cluster of `n` members on loopback (fast raft ticks so elections take ~100 ms).
class EtcdCluster {
 public:
  explicit EtcdCluster(int n = 1) {
    for (int i = 0; i < n; ++i) {
      auto m = std::make_unique<EtcdMember>();
      m->name = "m" + std::to_string(i);
      m->client_port = FreePort();
      m->peer_port = FreePort();
      m->data_dir = dir_.path() + "/" + m->name;
      m->log = dir_.path() + "/" + m->name + ".log";
      members_.push_back(std::move(m));
    }
    for (const auto& m : members_) {
      initial_cluster_ += (initial_cluster_.empty() ? "" : ",") + m->name + "=" + m->peer_url();
    }
    for (size_t i = 0; i < members_.size(); ++i) StartMember(i);
  }
  ~EtcdCluster() {
    for (auto& m : members_) m->process.Kill();
  }

  EtcdMember& member(size_t i) { return *members_[i]; }
  size_t size() const { return members_.size(); }
  std::vector<std::string> endpoints() const {
    std::vector<std::string> out;
    for (const auto& m : members_) out.push_back(m->endpoint());
    return out;
  }

  // (Re)starts member i on its ports and data dir (the client port may have been changed).
  void StartMember(size_t i) {
    EtcdMember& m = *members_[i];
    m.process.Start({EtcdBinary(), "--name", m.name, "--data-dir", m.data_dir,
                     "--listen-client-urls", m.client_url(), "--advertise-client-urls",
                     m.client_url(), "--listen-peer-urls", m.peer_url(),
                     "--initial-advertise-peer-urls", m.peer_url(), "--initial-cluster",
                     initial_cluster_, "--initial-cluster-state", "new",
                     "--initial-cluster-token", "rc-test", "--heartbeat-interval", "10",
                     "--election-timeout", "100", "--logger", "zap", "--log-level", "error",
                     "--enable-v2=false"},
                    m.log);
  }
  void KillMember(size_t i) { members_[i]->process.Kill(); }

  // Waits until every member answers (a Status round trip).
  void WaitReady() {
    for (const auto& m : members_) {
      auto s = OpenStoreWithRetry({m->endpoint()});
      if (!s.ok()) {
        throw std::runtime_error("etcd " + m->name + " did not start: " + s.status().ToString() +
                                 "\n" + ReadFile(m->log));
      }
    }
  }

  std::string Logs() {
    std::string out;
    for (const auto& m : members_) out += "--- " + m->name + "\n" + ReadFile(m->log);
    return out;
  }

 private:
  TempDir dir_;
  std::vector<std::unique_ptr<EtcdMember>> members_;
  std::string initial_cluster_;
};

// Our rc-etcd (RocksDB store, no fsync) on a free port.
class RcEtcdServer {
 public:
  RcEtcdServer() {
    log_ = dir_.path() + "/rc-etcd.log";
    process_.Start({RC_ETCD_BINARY, "--data-dir", dir_.path() + "/db", "--listen", "127.0.0.1:0",
                    "--no-sync"},
                   log_);
    const std::string marker = "rc-etcd listening on ";
    bool ok = WaitUntil([&] { return ReadFile(log_).find('\n', ReadFile(log_).find(marker)) !=
                                         std::string::npos &&
                                     ReadFile(log_).find(marker) != std::string::npos; },
                        std::chrono::seconds(10));
    if (!ok) throw std::runtime_error("rc-etcd did not start:\n" + ReadFile(log_));
    std::string log = ReadFile(log_);
    size_t at = log.find(marker) + marker.size();
    endpoint_ = log.substr(at, log.find('\n', at) - at);
  }
  const std::string& endpoint() const { return endpoint_; }

 private:
  TempDir dir_;
  std::string log_;
  ChildProcess process_;
  std::string endpoint_;
};

}  // namespace rc::store::testing
