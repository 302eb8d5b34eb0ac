// rc-agent: the node agent. Registers its Node, heartbeats through a Lease, runs the pods bound
// to it (rc-pause sandboxes, CNI, runc), probes them, reports their status, serves their logs.
//   rc-agent --server URL --node-name NAME [--state-dir DIR] [--node-netns PATH] ...
//   rc-agent images import FILE [--state-dir DIR]
//   rc-agent --simulate N --server URL        (fake nodes: pods go Running without containers)
#include <CLI/CLI.hpp>
#include <ifaddrs.h>
#include <net/if.h>
#include <arpa/inet.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "rc/apimachinery/json.h"
#include "rc/client/rest_client.h"
#include "rc/client/rest_mapper.h"
#include "rc/controller/event_recorder.h"
#include "rc/nodeagent/image_store.h"
#include "rc/nodeagent/kubelet_server.h"
#include "rc/nodeagent/node_status.h"
#include "rc/nodeagent/pod_manager.h"
#include "rc/nodeagent/runc_pod_runtime.h"
#include "rc/nodeagent/static_pods.h"
#include "rc/controller/informer.h"
#include "rc/proxy/service_proxy.h"
#include "rc/nodeagent/simulator.h"

namespace am = rc::apimachinery;
namespace na = rc::nodeagent;

namespace {

// IPv4 addresses of the up, non-loopback interfaces in network namespace `netns` ("" = own),
// without the pods' bridge and veths: where NodePorts answer.
std::vector<std::string> NodeAddressesIn(const std::string& netns, const std::string& bridge) {
  std::vector<std::string> out;
  std::thread t([&] {
    if (!netns.empty()) {
      int fd = open(netns.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
        if (fd >= 0) close(fd);
        return;
      }
      close(fd);
    }
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0) return;
    for (ifaddrs* a = list; a; a = a->ifa_next) {
      if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK)) continue;
      std::string name = a->ifa_name;
      if (name == bridge || name.rfind("veth", 0) == 0) continue;
      char buf[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
      out.push_back(buf);
    }
    freeifaddrs(list);
  });  // the thread leaves with its namespace: the agent's own threads never switch
  t.join();
  return out;
}

// The first IPv4 address of an interface that is up, not loopback and not one the agent's pods
// create (the CNI bridge, veths).
std::string DetectNodeIp(const std::string& bridge) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a; a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || !(a->ifa_flags & IFF_UP) || (a->ifa_flags & IFF_LOOPBACK)) continue;
    std::string name = a->ifa_name;
    if (name == bridge || name.rfind("veth", 0) == 0 || name.rfind("cni", 0) == 0) continue;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, buf, sizeof buf);
    found = buf;
    break;
  }
  freeifaddrs(list);
  return found;
}

std::string OsImage() {
  std::ifstream f("/etc/os-release");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string v = line.substr(12);
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      return v;
    }
  }
  return "Linux";
}

std::string Hostname() {
  char h[256] = {0};
  gethostname(h, sizeof h - 1);
  std::string s = h;
  for (auto& c : s) c = static_cast<char>(tolower(c));
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"rc-agent: the rc node agent (pods via rc-pause + CNI + runc, probes, status, logs)"};
  std::string server = "http://127.0.0.1:6443";
  std::string node_name = Hostname();
  std::string state_dir = "/var/lib/rc-agent";
  std::string node_ip, node_netns, pod_cidr, cni_bin_dir = "/usr/lib/cni", cni_conf_dir;
  std::string kubelet_address = "0.0.0.0", healthz_address = "127.0.0.1";
  int kubelet_port = 10250, healthz_port = 10248, max_pods = 110, workers = 4;
  std::string pod_manifest_path, log_level = "info";
  std::vector<std::string> node_labels;
  int simulate = 0;
  app.add_option("--server", server, "API server URL")->capture_default_str();
  app.add_option("--node-name", node_name, "Name of this node")->capture_default_str();
  app.add_option("--state-dir", state_dir, "Agent state: runtime state, images, logs")->capture_default_str();
  app.add_option("--node-ip", node_ip, "InternalIP reported for the node and hostIP of its pods (default: the first non-loopback IPv4)");
  app.add_option("--node-netns", node_netns,
                 "Network namespace (path) where pods are networked and probes dial; default: the agent's own");
  app.add_option("--pod-cidr", pod_cidr, "Pod address range of this node (default: spec.podCIDR assigned by rcd)");
  app.add_option("--cni-bin-dir", cni_bin_dir, "CNI plugin binaries")->capture_default_str();
  app.add_option("--cni-conf-dir", cni_conf_dir, "CNI configuration directory (default: STATE/runtime/cni/net.d)");
  app.add_option("--address", kubelet_address, "Address the kubelet API (/pods, /containerLogs) listens on")->capture_default_str();
  app.add_option("--port", kubelet_port, "Port of the kubelet API (0: any free port)")->capture_default_str();
  app.add_option("--healthz-bind-address", healthz_address, "Address of /healthz")->capture_default_str();
  app.add_option("--healthz-port", healthz_port, "Port of /healthz (0: any free port, -1: off)")->capture_default_str();
  int lease_duration_seconds = 40;
  app.add_option("--node-lease-duration-seconds", lease_duration_seconds,
                 "The node Lease's duration; it is renewed every quarter of it (the kubelet's nodeLeaseDurationSeconds)")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--max-pods", max_pods, "Pods this node offers")->capture_default_str();
  app.add_option("--node-labels", node_labels, "Labels to register the node with (k=v)")->delimiter(',');
  app.add_option("--pod-manifest-path", pod_manifest_path, "Directory of static pod manifests");
  app.add_option("--sync-workers", workers, "Pods synced in parallel")->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")->capture_default_str();
  bool proxy = true, cleanup_proxy = false, masquerade_all = true;
  std::string proxy_cluster_cidr = "10.244.0.0/16";
  std::vector<std::string> nodeport_addresses;
  int proxy_resync_s = 30;
  app.add_option("--proxy", proxy, "Run the service proxy (nftables table ip rc-proxy in the pods' network namespace)")->capture_default_str();
  app.add_flag("--cleanup-proxy", cleanup_proxy, "Delete the proxy's nftables table and exit");
  app.add_option("--cluster-cidr", proxy_cluster_cidr, "Pod network of the cluster (sources outside it are masqueraded to services)")
      ->capture_default_str();
  app.add_option("--masquerade-all", masquerade_all,
                 "Masquerade every service connection (needed: pods share an L2 bridge, replies must come back through the node)")
      ->capture_default_str();
  app.add_option("--nodeport-addresses", nodeport_addresses, "Addresses NodePorts answer on (default: the node network's IPv4 addresses)")
      ->delimiter(',');
  app.add_option("--proxy-resync-seconds", proxy_resync_s, "How often the proxy checks its table against the kernel")->capture_default_str();
  app.add_option("--simulate", simulate, "Register N simulated nodes instead (pods go Running without containers)");
  std::string sim_prefix = "sim-", sim_cpu = "32", sim_memory = "256Gi";
  int64_t sim_pods = 110;
  int sim_workers = 4;
  app.add_option("--simulate-prefix", sim_prefix, "Names of simulated nodes: PREFIX0..PREFIX{N-1}")->capture_default_str();
  app.add_option("--simulate-cpu", sim_cpu, "CPU of each simulated node")->capture_default_str();
  app.add_option("--simulate-memory", sim_memory, "Memory of each simulated node")->capture_default_str();
  app.add_option("--simulate-pods", sim_pods, "Pods each simulated node takes")->capture_default_str();
  app.add_option("--simulate-workers", sim_workers, "Threads writing simulated pods' status")->capture_default_str();
  auto* images_cmd = app.add_subcommand("images", "Manage the node's image store");
  std::string import_file, import_name;
  auto* import_cmd = images_cmd->add_subcommand("import", "Import an OCI image layout (dir or tar) or a docker-save tarball");
  import_cmd->add_option("FILE", import_file, "Image file or directory")->required();
  import_cmd->add_option("--name", import_name, "Reference for an image that carries no name");
  auto* list_cmd = images_cmd->add_subcommand("list", "List the images in the store");
  for (auto* cmd : {import_cmd, list_cmd}) cmd->add_option("--state-dir", state_dir, "Agent state directory");
  images_cmd->require_subcommand(1);
  auto* reset_cmd = app.add_subcommand("reset", "Stop and remove every sandbox and container of this agent's state dir (CNI DEL, unmount)");
  reset_cmd->add_option("--state-dir", state_dir, "Agent state directory");
  reset_cmd->add_option("--node-netns", node_netns, "Network namespace the pods were networked in");
  app.fallthrough();
  images_cmd->fallthrough();
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rc-agent] [%l] %v");

  std::string images_dir = state_dir + "/images";
  if (import_cmd->parsed() || list_cmd->parsed()) {
    std::error_code ec;
    std::filesystem::create_directories(images_dir, ec);
    na::ImageStore store(images_dir);
    if (import_cmd->parsed()) {
      auto refs = store.Import(import_file, import_name);
      if (!refs.ok()) {
        std::cerr << "rc-agent: importing " << import_file << ": " << refs.status().message() << "\n";
        return 1;
      }
      for (const auto& r : *refs) std::cout << "imported " << r << "\n";
      return 0;
    }
    auto list = store.List();
    if (!list.ok()) {
      std::cerr << "rc-agent: " << list.status().message() << "\n";
      return 1;
    }
    std::cout << "IMAGE\tID\n";
    for (const auto& img : *list) {
      for (const auto& r : img.refs) std::cout << r << "\t" << img.id.substr(0, 12) << "\n";
    }
    return 0;
  }

  if (reset_cmd->parsed()) {
    na::ImageStore images(images_dir);
    na::RuncPodRuntimeOptions ro;
    ro.state_dir = state_dir + "/runtime";
    ro.images = &images;
    ro.node_netns_path = node_netns;
    auto runtime = na::RuncPodRuntime::Create(ro);
    if (!runtime.ok()) {
      std::cerr << "rc-agent reset: " << runtime.status().message() << "\n";
      return 1;
    }
    auto sandboxes = (*runtime)->ListSandboxes();
    if (!sandboxes.ok()) {
      std::cerr << "rc-agent reset: " << sandboxes.status().message() << "\n";
      return 1;
    }
    int failed = 0;
    for (const auto& sb : *sandboxes) {
      rc::Status s = (*runtime)->StopSandbox(sb.id);
      std::cout << (s.ok() ? "removed" : "FAILED ") << " sandbox " << sb.id << " (" << sb.pod_namespace << "/" << sb.pod_name << ")"
                << (s.ok() ? "" : ": " + s.message()) << "\n";
      if (!s.ok()) ++failed;
    }
    return failed ? 1 : 0;
  }

  if (cleanup_proxy) {
    rc::Status s = rc::proxy::ServiceProxy::CleanupTable("rc-proxy", node_netns);
    if (!s.ok()) {
      std::cerr << "rc-agent --cleanup-proxy: " << s.message() << "\n";
      return 1;
    }
    std::cout << "deleted table ip rc-proxy\n";
    return 0;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto client = rc::client::RestClient::Create(server);
  if (!client.ok()) {
    std::cerr << "rc-agent: --server " << server << ": " << client.status().message() << "\n";
    return 2;
  }

  if (simulate > 0) {
    auto resources = na::ParseSimulatedResources(sim_cpu, sim_memory, sim_pods);
    if (!resources.ok()) {
      std::cerr << "rc-agent --simulate: " << resources.status().message() << "\n";
      return 2;
    }
    na::SimulatorOptions so;
    so.nodes = simulate;
    so.name_prefix = sim_prefix;
    so.capacity = *resources;
    so.workers = sim_workers;
    for (const auto& l : node_labels) {
      auto eq = l.find('=');
      if (eq != std::string::npos) so.labels[l.substr(0, eq)] = l.substr(eq + 1);
    }
    na::Simulator sim(client->get(), so);
    std::thread stopper([&] {
      int sig = 0;
      sigwait(&signals, &sig);
      sim.Stop();
    });
    rc::Status s = sim.Start();
    if (!s.ok()) {
      std::cerr << "rc-agent --simulate: " << s.message() << "\n";
      pthread_kill(stopper.native_handle(), SIGTERM);
      stopper.join();
      return 1;
    }
    std::cout << "rc-agent ready: simulated nodes=" << simulate << " prefix=" << sim_prefix << std::endl;
    // Progress every 10 s until a signal stops the simulator.
    std::atomic<bool> done{false};
    std::thread progress([&] {
      for (int i = 0; !done; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        if (i % 50 == 49) spdlog::info("{}", sim.StatsLine());
      }
    });
    stopper.join();
    done = true;
    progress.join();
    spdlog::info("stopped: {}", sim.StatsLine());
    return 0;
  }

  if (node_ip.empty()) node_ip = DetectNodeIp("rc0");
  if (node_ip.empty()) node_ip = "127.0.0.1";
  std::error_code ec;
  std::filesystem::create_directories(images_dir, ec);
  std::filesystem::create_directories(state_dir + "/pods", ec);

  auto kubelet = na::KubeletServer::Start(nullptr, kubelet_address, static_cast<uint16_t>(kubelet_port));
  if (!kubelet.ok()) {
    std::cerr << "rc-agent: kubelet API on " << kubelet_address << ":" << kubelet_port << ": " << kubelet.status().message() << "\n";
    return 1;
  }
  std::unique_ptr<na::KubeletServer> healthz;
  if (healthz_port >= 0) {
    auto h = na::KubeletServer::Start(nullptr, healthz_address, static_cast<uint16_t>(healthz_port));
    if (!h.ok()) {
      std::cerr << "rc-agent: /healthz on " << healthz_address << ":" << healthz_port << ": " << h.status().message() << "\n";
      return 1;
    }
    healthz = std::move(*h);
  }

  na::NodeIdentity node;
  node.name = node_name;
  node.internal_ip = node_ip;
  node.kubelet_port = (*kubelet)->port();
  node.capacity = na::DetectHostResources(state_dir);
  node.capacity.pods = max_pods;
  node.allocatable = node.capacity;
  node.pod_cidr = pod_cidr;
  for (const auto& l : node_labels) {
    auto eq = l.find('=');
    if (eq == std::string::npos) {
      std::cerr << "rc-agent: --node-labels " << l << ": want key=value\n";
      return 2;
    }
    node.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  utsname u{};
  uname(&u);
  node.kernel_version = u.release;
  node.os_image = OsImage();
  na::HeartbeatOptions ho;
  ho.lease_duration_seconds = lease_duration_seconds;
  ho.lease_renew_ms = lease_duration_seconds * 1000 / 4;
  ho.status_update_ms = 60000;
  na::NodeHeartbeat heartbeat(client->get(), {node}, ho);
  heartbeat.SetReady(node_name, false);  // Ready once the pod manager runs
  if (auto s = heartbeat.Start(); !s.ok()) {
    std::cerr << "rc-agent: registering node " << node_name << ": " << s.message() << "\n";
    return 1;
  }
  spdlog::info("node {} registered (InternalIP {}, kubelet port {})", node_name, node_ip, node.kubelet_port);

  // The pod CIDR: given, or assigned by rcd's node IPAM.
  for (int waited = 0; pod_cidr.empty(); ++waited) {
    auto r = (*client)->Do("GET", "/api/v1/nodes/" + node_name);
    if (r.ok() && r->status == 200) {
      if (auto doc = am::ParseJson(r->body); doc.ok()) {
        if (const auto* spec = am::FindMember(*doc, "spec")) pod_cidr = std::string(am::GetStringOr(*spec, "podCIDR"));
      }
    }
    if (!pod_cidr.empty()) break;
    if (waited % 20 == 0) spdlog::info("waiting for spec.podCIDR of node {} (rcd --cluster-cidr assigns it)", node_name);
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  spdlog::info("pod CIDR {}", pod_cidr);

  na::ImageStore images(images_dir);
  na::RuncPodRuntimeOptions ro;
  ro.state_dir = state_dir + "/runtime";
  ro.images = &images;
  ro.cni_bin_dirs = {cni_bin_dir};
  ro.cni_conf_dir = cni_conf_dir;
  ro.pod_cidr = pod_cidr;
  ro.node_netns_path = node_netns;
  auto runtime = na::RuncPodRuntime::Create(ro);
  if (!runtime.ok()) {
    std::cerr << "rc-agent: container runtime: " << runtime.status().message() << "\n";
    return 1;
  }
  rc::client::RestMapper mapper(client->get());
  auto pods_resource = mapper.ForKind("v1", "Pod");
  if (!pods_resource.ok()) {
    std::cerr << "rc-agent: " << pods_resource.status().message() << "\n";
    return 1;
  }
  rc::controller::EventRecorder events(client->get(), "kubelet", node_name, 2);
  na::PodManagerOptions po;
  po.node_name = node_name;
  po.host_ip = node_ip;
  po.log_dir = state_dir + "/pods";
  po.pod_netns_path = node_netns;
  po.workers = workers;
  po.images = &images;
  // Services for the containers' Docker-links variables; synced before the first pod starts,
  // as the kubelet waits for its Service lister.
  std::unique_ptr<rc::controller::Informer> services;
  if (auto svc = mapper.ForKind("v1", "Service"); svc.ok()) {
    services = std::make_unique<rc::controller::Informer>(client->get(), *svc);
    services->Start();
    if (!services->WaitForSync(10000)) spdlog::warn("the Service cache did not sync in 10 s; pods start without Service variables until it does");
    rc::controller::Informer* cache = services.get();
    po.services = [cache](const std::string& ns) { return cache->List(ns); };
  }
  na::PodManager pods(client->get(), *pods_resource, runtime->get(), &events, po);
  std::unique_ptr<na::StaticPods> static_pods;
  if (!pod_manifest_path.empty()) {
    static_pods = std::make_unique<na::StaticPods>(client->get(), &pods, pod_manifest_path, node_name);
    static_pods->Start();
  }
  if (auto s = pods.Start(); !s.ok()) {
    std::cerr << "rc-agent: " << s.message() << "\n";
    return 1;
  }
  // The service proxy, in the pods' network namespace, on informers of its own.
  rc::client::RestMapper proxy_mapper(client->get());
  rc::controller::InformerFactory proxy_informers(client->get(), &proxy_mapper);
  std::unique_ptr<rc::proxy::ServiceProxy> service_proxy;
  if (proxy) {
    rc::proxy::ServiceProxyOptions so;
    so.node_ips = nodeport_addresses.empty() ? NodeAddressesIn(node_netns, "rc0") : nodeport_addresses;
    so.cluster_cidr = proxy_cluster_cidr;
    so.masquerade_all = masquerade_all;
    so.netns = node_netns;
    so.resync_period = std::chrono::seconds(std::max(1, proxy_resync_s));
    auto sp = rc::proxy::ServiceProxy::Create(&proxy_informers, so);
    rc::Status started = sp.ok() ? (*sp)->Start() : sp.status();
    if (!started.ok()) {
      std::cerr << "rc-agent: service proxy: " << started.message() << " (use --proxy=false to run without)\n";
      return 1;
    }
    service_proxy = std::move(*sp);
    spdlog::info("service proxy: table ip rc-proxy{}, NodePorts on {} address(es)", node_netns.empty() ? "" : " in " + node_netns,
                 so.node_ips.size());
  }
  (*kubelet)->SetPods(&pods);
  if (healthz) healthz->SetPods(&pods);
  heartbeat.SetReady(node_name, true);
  std::cout << "rc-agent ready: node=" << node_name << " kubelet=" << kubelet_address << ":" << (*kubelet)->port()
            << " healthz=" << (healthz ? healthz_address + ":" + std::to_string(healthz->port()) : std::string("off"))
            << " podCIDR=" << pod_cidr << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: stopping (containers keep running)", sig);
  (*kubelet)->Shutdown();
  if (healthz) healthz->Shutdown();
  if (static_pods) static_pods->Stop();
  if (service_proxy) service_proxy->Stop();  // the rules stay: traffic keeps flowing
  proxy_informers.StopAll();
  pods.Stop();
  if (services) services->Stop();
  events.Flush();
  heartbeat.Stop();
  return 0;
}
