// rcd: the control plane in one process — embedded store, etcd-compatible gRPC endpoint and the
// Kubernetes API server. (Controllers and the scheduler join in later milestones.)
#include <atomic>
#include <CLI/CLI.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <csignal>
#include <mutex>
#include <thread>
#include <filesystem>
#include <iostream>
#include <set>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "rc/apiserver/api_server.h"
#include "rc/apiserver/http_server.h"
#include "rc/client/rest_client.h"
#include "rc/compiler/controller_loader.h"
#include "rc/compiler/jit.h"
#include "rc/compiler/resource_loader.h"
#include "rc/controller/builtin_controllers.h"
#include "rc/scheduler/scheduler.h"
#include "rc/controller/controller_manager.h"
#include "rc/etcdserver/etcd_server.h"
#include "rc/store/etcd_store.h"
#include "rc/store/store.h"

namespace {

bool SplitHostPort(const std::string& s, std::string& host, uint16_t& port) {
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  host = s.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    int p = std::stoi(s.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (...) {
    return false;
  }
  return true;
}

std::string host_of(const std::string& address) {
  std::string host;
  uint16_t port = 0;
  return SplitHostPort(address, host, port) ? host : address;
}

// Compacts the store's history like kube-apiserver does: at every tick, discard the history older
// than the revision seen at the previous tick, so watchers get one interval to catch up.
class PeriodicCompactor {
 public:
  PeriodicCompactor(rc::store::Store* store, int interval_seconds)
      : store_(store), interval_(interval_seconds) {
    if (interval_ > 0) thread_ = std::thread([this] { Run(); });
  }
  ~PeriodicCompactor() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void Run() {
    int64_t previous = store_->CurrentRevision();
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::seconds(interval_), [this] { return stop_; })) {
      int64_t current = store_->CurrentRevision();
      if (previous > store_->CompactRevision()) {
        rc::Status s = store_->Compact(previous);
        if (s.ok()) {
          spdlog::info("compacted store history before revision {}", previous);
        } else if (!s.IsCompacted()) {
          spdlog::warn("compaction at revision {}: {}", previous, s.ToString());
        }
      }
      previous = current;
    }
  }

  rc::store::Store* store_;
  int interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Serves the .rc files of a directory as resource types and reloads them when they change. A
// version that fails to compile is refused with its diagnostics logged; the previous one stays.
class ResourceDirWatcher {
 public:
  ResourceDirWatcher(std::string dir, rc::compiler::JitHost* jit, rc::apiserver::ApiServer* server, int poll_ms)
      : dir_(std::move(dir)), loader_(jit), server_(server), poll_ms_(poll_ms) {}
  ~ResourceDirWatcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void StartPolling() {
    thread_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stop_; })) {
        lock.unlock();
        Reload();
        lock.lock();
      }
    });
  }

  // Loads the directory if its content changed since the last attempt.
  void Reload() {
    auto sources = rc::compiler::ReadRcDirectory(dir_);
    if (!sources.ok()) {
      if (last_error_ != sources.status().message()) spdlog::error("resources {}: {}", dir_, sources.status().message());
      last_error_ = sources.status().message();
      return;
    }
    std::string fingerprint;
    for (auto& [path, text] : *sources) fingerprint += path + '\0' + text + '\0';
    if (fingerprint == last_fingerprint_) return;
    last_fingerprint_ = fingerprint;
    rc::dsl::Diagnostics diags;
    auto t0 = std::chrono::steady_clock::now();
    auto loaded = loader_.Load(*sources, rc::compiler::BuiltinResourceSources(), "resources:" + dir_, diags);
    auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!loaded.ok()) {
      spdlog::error("resources {}: refused ({} error(s)); the previous version stays:\n{}", dir_,
                    diags.ErrorCount(), loaded.status().message());
      return;
    }
    if (auto st = server_->InstallResources(loaded->schemas, "resources:" + dir_); !st.ok()) {
      spdlog::error("resources {}: install failed: {}", dir_, st.ToString());
      return;
    }
    std::string kinds;
    for (auto& s : loaded->schemas) kinds += (kinds.empty() ? "" : ", ") + s.plural + (s.group.empty() ? "" : "." + s.group);
    spdlog::info("resources {}: serving {} type(s) [{}] from {} file(s), hash {}, {:.1f} ms", dir_,
                 loaded->schemas.size(), kinds, sources->size(), loaded->content_hash, ms);
  }

 private:
  std::string dir_;
  rc::compiler::ResourceLoader loader_;
  rc::apiserver::ApiServer* server_;
  int poll_ms_;
  std::string last_fingerprint_;
  std::string last_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

// Runs the controllers of the stdlib (embedded) and of --controllers DIR, one JIT module per file,
// and reloads a file when it changes: the new code replaces the old atomically; a file that fails
// to compile leaves the previous version running and reports its diagnostics (log + Event).
class ControllerFiles {
 public:
  ControllerFiles(rc::compiler::JitHost* jit, rc::controller::ControllerManager* manager, std::string dir, int poll_ms)
      : loader_(jit), manager_(manager), dir_(std::move(dir)), poll_ms_(poll_ms) {}
  ~ControllerFiles() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Loads the stdlib files as one module (one type-check of the built-in types for all of them;
  // per file if that fails), then the directory. A user file's controller replaces a stdlib one of
  // the same name.
  void LoadAll() {
    LoadStdlib();
    if (!dir_.empty()) Poll();
  }

  // Watches the directory with inotify (a write is picked up at once) and also re-reads it every
  // poll interval (file systems without inotify, missed events).
  void StartPolling() {
    if (dir_.empty()) return;
    thread_ = std::thread([this] {
      int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
      if (fd >= 0 && inotify_add_watch(fd, dir_.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE) < 0) {
        close(fd);
        fd = -1;
      }
      auto last_poll = std::chrono::steady_clock::now();
      while (true) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stop_) break;
        }
        bool changed = false;
        if (fd >= 0) {
          pollfd pfd{fd, POLLIN, 0};
          if (::poll(&pfd, 1, 50) > 0) {
            char buf[4096];
            while (read(fd, buf, sizeof buf) > 0) {}
            changed = true;
          }
        } else {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        auto now = std::chrono::steady_clock::now();
        if (changed || now - last_poll >= std::chrono::milliseconds(poll_ms_)) {
          last_poll = now;
          Poll();
        }
      }
      if (fd >= 0) close(fd);
    });
  }

 private:
  void Poll() {
    auto sources = rc::compiler::ReadRcDirectory(dir_);
    if (!sources.ok()) {
      if (last_error_ != sources.status().message()) spdlog::error("controllers {}: {}", dir_, sources.status().message());
      last_error_ = sources.status().message();
      return;
    }
    std::set<std::string> present;
    for (auto& [path, text] : *sources) {
      present.insert(path);
      auto it = seen_.find(path);
      if (it != seen_.end() && it->second == text) continue;
      seen_[path] = text;
      Load(path, {{path, text}}, path);
    }
    // Deleted files: their controllers stop; stdlib ones they overrode come back.
    std::vector<std::string> deleted;
    for (auto& [path, names] : loaded_) {
      if (path == "stdlib" || path.rfind("stdlib/", 0) == 0 || present.count(path)) continue;
      deleted.push_back(path);
    }
    for (auto& path : deleted) {
      for (auto& name : loaded_[path]) {
        (void)manager_->Remove(name);
        user_owned_.erase(name);
        spdlog::info("controller {} removed ({} deleted)", name, path);
      }
      seen_.erase(path);
      loaded_.erase(path);
    }
    if (!deleted.empty()) LoadStdlib();  // unchanged code: no recompile, only reinstalls
  }

  void LoadStdlib() {
    if (!Load("stdlib", rc::compiler::StdlibControllerSources(), "stdlib")) {
      for (auto& [path, text] : rc::compiler::StdlibControllerSources()) Load(path, {{path, text}}, "stdlib");
    }
  }

  // Compiles `sources` as JIT module "controllers:<key>" and installs their controllers. False
  // (and nothing changes) when they do not compile.
  bool Load(const std::string& key, const rc::compiler::SourceList& sources, const std::string& origin) {
    const std::string& path = key;
    rc::dsl::Diagnostics diags;
    auto t0 = std::chrono::steady_clock::now();
    auto loaded = loader_.Load(sources, rc::compiler::BuiltinResourceSources(), "controllers:" + key, origin, diags);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!loaded.ok()) {
      spdlog::error("controllers {}: refused ({} error(s)); the previous version keeps running:\n{}", path,
                    diags.ErrorCount(), loaded.status().message());
      // A Warning Event on each Controller object the file runs (or one named after the file).
      std::vector<std::string> targets;
      for (auto& n : loaded_[path]) targets.push_back(rc::controller::ControllerObjectName(n));
      if (targets.empty()) targets.push_back(std::filesystem::path(path).stem().string());
      for (auto& target : targets) {
        rapidjson::Document ev(rapidjson::kObjectType);
        auto& a = ev.GetAllocator();
        ev.AddMember("apiVersion", "rc.dev/v1", a);
        ev.AddMember("kind", "Controller", a);
        rapidjson::Value meta(rapidjson::kObjectType);
        meta.AddMember("name", rapidjson::Value(target.c_str(), a), a);
        ev.AddMember("metadata", meta, a);
        manager_->events("rc-controller-loader").Record(ev, "Warning", "FailedCompile", loaded.status().message());
      }
      return false;
    }
    std::vector<std::string> names;
    for (auto& c : loaded->controllers) {
      std::string name = c.name;
      // A stdlib controller does not replace a user's of the same name.
      if (origin == "stdlib" && user_owned_.count(name)) continue;
      if (origin != "stdlib") user_owned_.insert(name);
      if (auto st = manager_->Install(std::move(c)); !st.ok()) {
        spdlog::error("controller {}: {}", name, st.ToString());
        continue;
      }
      names.push_back(name);
    }
    // Controllers the file no longer declares stop (a stdlib name a user file runs is the user's).
    for (auto& old : loaded_[path]) {
      if (std::find(names.begin(), names.end(), old) != names.end()) continue;
      if (origin == "stdlib" && user_owned_.count(old)) continue;
      (void)manager_->Remove(old);
    }
    loaded_[path] = names;
    spdlog::info("controllers {}: {} controller(s) loaded in {:.1f} ms (hash {}{})", path, names.size(), ms,
                 loaded->content_hash, loaded->compiled ? "" : ", cached");
    return true;
  }

  rc::compiler::ControllerLoader loader_;
  rc::controller::ControllerManager* manager_;
  std::string dir_;
  int poll_ms_;
  std::map<std::string, std::string> seen_;
  std::map<std::string, std::vector<std::string>> loaded_;
  std::set<std::string> user_owned_;
  std::string last_error_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace

// Read by the /metrics handler; cleared before the scheduler stops.
std::atomic<rc::scheduler::Scheduler*> scheduler_for_metrics{nullptr};

int main(int argc, char** argv) {
  CLI::App app{"rcd: the rc control plane (store, etcd v3 endpoint, Kubernetes API server)"};
  std::string data_dir;
  std::string listen = "127.0.0.1:6443";
  std::string etcd_listen = "127.0.0.1:2379";
  std::string log_level = "info";
  bool no_sync = false;
  int compaction_interval_seconds = 300;
  rc::apiserver::ApiServerOptions api;
  std::string store_spec;
  app.add_option("--data-dir", data_dir, "Directory of the embedded store (created if missing)");
  app.add_option("--store", store_spec,
                 "Use an etcd cluster instead of the embedded store: etcd://host:port[,host:port...] "
                 "(several rcd processes can share it; leader election picks the one that reconciles)");
  app.add_option("--listen", listen, "Address of the Kubernetes API (HTTP)")->capture_default_str();
  app.add_option("--etcd-listen", etcd_listen, "Address of the etcd v3 gRPC endpoint; empty disables it")
      ->capture_default_str();
  app.add_option("--max-requests-inflight", api.max_requests_inflight, "Requests served at once before 429")
      ->capture_default_str();
  app.add_option("--io-threads", api.io_threads, "HTTP I/O threads")->capture_default_str();
  app.add_option("--service-cluster-ip-range", api.service_cluster_ip_range,
                 "IPv4 CIDR Services' spec.clusterIP is allocated from; empty: no allocation")
      ->capture_default_str();
  app.add_option("--service-node-port-range", api.service_node_port_range,
                 "Ports NodePort/LoadBalancer Services' nodePorts are allocated from (BASE-MAX)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  app.add_option("--compaction-interval-seconds", compaction_interval_seconds,
                 "Discard store history older than one interval; 0 disables")
      ->capture_default_str();
  std::string resources_dir;
  int resources_poll_ms = 1000;
  app.add_option("--resources", resources_dir,
                 "Directory of .rc resource type files served like CRDs (reloaded on change)");
  app.add_option("--resources-poll-ms", resources_poll_ms, "How often --resources is checked for changes")
      ->capture_default_str();
  std::string metrics_listen = "127.0.0.1:10257";
  app.add_option("--metrics-listen", metrics_listen,
                 "Address of the controller manager's /metrics and /healthz (Prometheus text); empty disables; "
                 "a port in use only logs a warning")
      ->capture_default_str();
  std::string controllers_dir;
  int controllers_poll_ms = 1000;
  bool no_controllers = false;
  bool leader_elect = true;
  std::string identity;
  double lease_duration_s = 2.0, renew_deadline_s = 1.5, retry_period_s = 0.25;
  app.add_option("--controllers", controllers_dir,
                 "Directory of .rc controller files run besides (or instead of, by name) the stdlib ones; reloaded on change");
  app.add_option("--controllers-poll-ms", controllers_poll_ms, "How often --controllers is re-read besides inotify notifications")
      ->capture_default_str();
  std::string cluster_cidr = "10.244.0.0/16";
  int node_cidr_mask_size = 24;
  app.add_option("--cluster-cidr", cluster_cidr, "Pod address range; each Node gets a spec.podCIDR block of it (empty: no node IPAM)")
      ->capture_default_str();
  app.add_option("--node-cidr-mask-size", node_cidr_mask_size, "Prefix length of each node's podCIDR")->capture_default_str();
  rc::controller::NodeLifecycleOptions node_lifecycle;
  app.add_option("--node-monitor-grace-period", node_lifecycle.grace_period_seconds,
                 "Seconds without a node heartbeat before its node is marked Ready=Unknown and tainted unreachable")
      ->check(CLI::Range(1, 86400))
      ->capture_default_str();
  app.add_option("--node-monitor-period", node_lifecycle.monitor_period_ms, "Milliseconds between node health checks")
      ->check(CLI::Range(100, 600000))
      ->capture_default_str();
  app.add_option("--default-unreachable-toleration-seconds", node_lifecycle.default_unreachable_toleration_seconds,
                 "Seconds a pod without its own toleration stays on an unreachable node before it is evicted")
      ->check(CLI::Range(0, 86400 * 365))
      ->capture_default_str();
  app.add_option("--default-not-ready-toleration-seconds", node_lifecycle.default_not_ready_toleration_seconds,
                 "Seconds a pod without its own toleration stays on a not-ready node before it is evicted")
      ->check(CLI::Range(0, 86400 * 365))
      ->capture_default_str();
  bool no_scheduler = false;
  std::string scheduler_name = "default-scheduler";
  app.add_flag("--no-scheduler", no_scheduler, "Run no scheduler (pods stay Pending unless another scheduler binds them)");
  app.add_option("--scheduler-name", scheduler_name, "Pods whose spec.schedulerName is this are scheduled here")->capture_default_str();
  app.add_flag("--no-controllers", no_controllers, "Run no controllers (API server and store only)");
  app.add_option("--leader-elect", leader_elect, "Elect a leader through a Lease before reconciling")->capture_default_str();
  app.add_option("--identity", identity, "Leader-election identity (default: hostname_pid)");
  app.add_option("--leader-elect-lease-duration", lease_duration_s, "Seconds a lease is valid without renewal")
      ->capture_default_str();
  app.add_option("--leader-elect-renew-deadline", renew_deadline_s, "Seconds a leader keeps trying to renew before stepping down")
      ->capture_default_str();
  app.add_option("--leader-elect-retry-period", retry_period_s, "Seconds between acquire/renew attempts")
      ->capture_default_str();
  app.add_flag("--unsafe-no-fsync", no_sync, "Acknowledge writes before they are synced (benchmarks only)");
  CLI11_PARSE(app, argc, argv);

  // Logs go to stderr; stdout carries only the "rcd ready" line scripts wait for.
  spdlog::set_default_logger(spdlog::stderr_color_mt("rcd"));
  spdlog::set_level(spdlog::level::from_str(log_level));
  std::string host;
  if (!SplitHostPort(listen, host, api.port)) {
    std::cerr << "rcd: --listen must be HOST:PORT, got '" << listen << "'\n";
    return 2;
  }
  api.address = host;

  if (data_dir.empty() && store_spec.empty()) {
    std::cerr << "rcd: --data-dir (embedded store) or --store etcd://... is required\n";
    return 2;
  }
  rc::Result<std::unique_ptr<rc::store::Store>> store = rc::Status::Internal("no store");
  if (!store_spec.empty()) {
    auto endpoints = rc::store::ParseEtcdEndpoints(store_spec);
    if (!endpoints.ok()) {
      std::cerr << "rcd: --store: " << endpoints.status().message() << "\n";
      return 2;
    }
    rc::store::EtcdStoreOptions eo;
    eo.endpoints = *endpoints;
    store = rc::store::OpenEtcdStore(eo);
    if (!store.ok()) {
      std::cerr << "rcd: connecting to etcd " << store_spec << ": " << store.status().ToString() << "\n";
      return 1;
    }
    spdlog::info("store: etcd at {} (revision {})", store_spec, (*store)->CurrentRevision());
  } else {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) {
      std::cerr << "rcd: cannot create data dir " << data_dir << ": " << ec.message() << "\n";
      return 1;
    }
    rc::store::RocksStoreOptions so;
    so.path = (std::filesystem::path(data_dir) / "store").string();
    so.sync = !no_sync;
    store = rc::store::OpenRocksStore(so);
    if (!store.ok()) {
      std::cerr << "rcd: opening the store in " << so.path << ": " << store.status().ToString() << "\n";
      return 1;
    }
    spdlog::info("store open at {} (revision {})", so.path, (*store)->CurrentRevision());
  }

  // Block the stop signals before any thread starts, so sigwait below gets them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::unique_ptr<rc::etcdserver::EtcdServer> etcd;
  if (!etcd_listen.empty()) {
    auto started = rc::etcdserver::EtcdServer::Start(store->get(), etcd_listen);
    if (!started.ok()) {
      std::cerr << "rcd: etcd endpoint on " << etcd_listen << ": " << started.status().ToString() << "\n";
      return 1;
    }
    etcd = std::move(started.value());
    spdlog::info("etcd v3 gRPC endpoint on {}", etcd_listen);
  }

  // The built-in types are DSL files (resources/*.rc, embedded): compile them first.
  auto jit = rc::compiler::JitHost::Create();
  if (!jit.ok()) {
    std::cerr << "rcd: " << jit.status().ToString() << "\n";
    return 1;
  }
  auto t_builtin = std::chrono::steady_clock::now();
  auto builtin = rc::compiler::LoadBuiltinSchemas(jit->get());
  if (!builtin.ok()) {
    std::cerr << "rcd: " << builtin.status().message() << "\n";
    return 1;
  }
  spdlog::info("{} built-in resource types compiled from DSL in {:.0f} ms", builtin->size(),
               std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_builtin).count());
  auto server = rc::apiserver::ApiServer::Start(
      store->get(), rc::apiserver::RegistryFromSchemas(*builtin, "builtin"), api);
  if (!server.ok()) {
    std::cerr << "rcd: API server on " << listen << ": " << server.status().ToString() << "\n";
    return 1;
  }
  spdlog::info("Kubernetes API on http://{}:{}", api.address, (*server)->port());

  std::unique_ptr<ResourceDirWatcher> resource_watcher;
  if (!resources_dir.empty()) {
    resource_watcher = std::make_unique<ResourceDirWatcher>(resources_dir, jit->get(), server->get(), resources_poll_ms);
    resource_watcher->Reload();  // before "ready": the types are served from the start
    resource_watcher->StartPolling();
  }
  // Tests and scripts read this line to learn the bound ports (useful with port 0).
  std::cout << "rcd ready: api=http://" << api.address << ":" << (*server)->port()
            << " etcd=" << (etcd ? host_of(etcd_listen) + ":" + std::to_string(etcd->port()) : "off")
            << std::endl;

  // The controller manager talks to the API server like any other client (loopback HTTP).
  std::unique_ptr<rc::client::RestClient> loopback;
  std::unique_ptr<rc::controller::ControllerManager> manager;
  std::unique_ptr<ControllerFiles> controller_files;
  std::unique_ptr<rc::apiserver::HttpServer> metrics_server;
  std::vector<std::unique_ptr<rc::controller::BuiltinController>> builtin_controllers;
  std::unique_ptr<rc::scheduler::Scheduler> scheduler;
  if (!no_controllers) {
    std::string loop_host = api.address == "0.0.0.0" || api.address.empty() ? "127.0.0.1" : api.address;
    if (loop_host.find(':') != std::string::npos) loop_host = "[" + loop_host + "]";
    auto client = rc::client::RestClient::Create("http://" + loop_host + ":" + std::to_string((*server)->port()));
    if (!client.ok()) {
      std::cerr << "rcd: " << client.status().ToString() << "\n";
      return 1;
    }
    loopback = std::move(*client);
    rc::controller::ControllerManagerOptions mo;
    if (identity.empty()) {
      char hostname[256] = {0};
      gethostname(hostname, sizeof hostname - 1);
      identity = std::string(hostname) + "_" + std::to_string(getpid());
    }
    mo.identity = identity;
    mo.leader_elect = leader_elect;
    mo.leader_election.identity = identity;
    mo.leader_election.lease_duration = std::chrono::milliseconds(static_cast<int64_t>(lease_duration_s * 1000));
    mo.leader_election.renew_deadline = std::chrono::milliseconds(static_cast<int64_t>(renew_deadline_s * 1000));
    mo.leader_election.retry_period = std::chrono::milliseconds(static_cast<int64_t>(retry_period_s * 1000));
    manager = std::make_unique<rc::controller::ControllerManager>(loopback.get(), mo);
    controller_files = std::make_unique<ControllerFiles>(jit->get(), manager.get(), controllers_dir, controllers_poll_ms);
    auto t_ctrl = std::chrono::steady_clock::now();
    controller_files->LoadAll();
    builtin_controllers.push_back(rc::controller::StartGarbageCollector(manager.get()));
    builtin_controllers.push_back(rc::controller::StartNamespaceController(manager.get()));
    builtin_controllers.push_back(rc::controller::StartControllerStatusReporter(manager.get()));
    if (!cluster_cidr.empty()) {
      auto ipam = rc::controller::StartNodeIpamController(manager.get(), cluster_cidr, node_cidr_mask_size);
      if (!ipam.ok()) {
        std::cerr << "rcd: " << ipam.status().message() << "\n";
        return 2;
      }
      builtin_controllers.push_back(std::move(*ipam));
    }
    builtin_controllers.push_back(rc::controller::StartNodeLifecycleController(manager.get(), node_lifecycle));
    if (!no_scheduler) {
      rc::scheduler::SchedulerOptions so;
      so.scheduler_name = scheduler_name;
      auto sched = rc::scheduler::Scheduler::Start(&manager->informers(), manager->client(), manager.get(), std::move(so));
      if (sched.ok()) {
        scheduler = std::move(*sched);
        scheduler_for_metrics = scheduler.get();
      } else {
        spdlog::error("scheduler: {} (pods will not be scheduled)", sched.status().ToString());
      }
    }
    manager->Start();
    controller_files->StartPolling();
    std::string mhost;
    uint16_t mport = 0;
    if (!metrics_listen.empty() && SplitHostPort(metrics_listen, mhost, mport)) {
      rc::apiserver::HttpServerOptions ho;
      ho.address = mhost;
      ho.port = mport;
      ho.io_threads = 1;
      auto* m = manager.get();
      auto started = rc::apiserver::HttpServer::Start(ho, [m](rc::apiserver::HttpRequest req, std::shared_ptr<rc::apiserver::HttpExchange> ex) {
        rc::apiserver::HttpResponse r;
        if (req.path == "/metrics") {
          r.content_type = "text/plain; version=0.0.4";
          r.body = m->MetricsText();
          if (auto* sc = scheduler_for_metrics.load()) r.body += sc->MetricsText();
        } else if (req.path == "/healthz") {
          r.content_type = "text/plain";
          r.body = "ok";
        } else {
          r.status = 404;
          r.content_type = "text/plain";
          r.body = "404 page not found\n";
        }
        ex->Reply(std::move(r));
      });
      if (started.ok()) {
        metrics_server = std::move(*started);
        spdlog::info("controller manager metrics on http://{}:{}/metrics", mhost, metrics_server->port());
      } else {
        spdlog::warn("metrics on {}: {} (continuing without)", metrics_listen, started.status().ToString());
      }
    }
    spdlog::info("controller manager started as {} ({} controllers, {:.0f} ms){}", identity, manager->Controllers().size(),
                 std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_ctrl).count(),
                 leader_elect ? ", waiting for the lease kube-system/rc-controller-manager" : "");
  }

  PeriodicCompactor compactor(store->get(), compaction_interval_seconds);
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: shutting down", sig);
  resource_watcher.reset();
  if (metrics_server) metrics_server->Shutdown();
  controller_files.reset();
  for (auto& c : builtin_controllers) c->Stop();
  scheduler_for_metrics = nullptr;
  if (scheduler) scheduler->Stop();  // before the manager: it records Events through it
  if (manager) manager->Stop();  // releases the lease: a standby takes over at once
  builtin_controllers.clear();
  manager.reset();
  (*server)->Shutdown();
  if (etcd) etcd->Shutdown();
  return 0;
}
