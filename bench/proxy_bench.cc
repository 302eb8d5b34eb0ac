// Driver of bench/proxy_bench.sh: programs N Services x E endpoints with rc's nftables
// programmer (full sync, then incremental one-endpoint updates), writes the equivalent
// kube-proxy iptables-restore input, and samples TCP connect times.
//   rc-proxy-bench full --netns PATH --services N [--endpoints E] [--backend IP:PORT] [--updates K]
//   rc-proxy-bench iptables --services N [--endpoints E] [--backend IP:PORT] > rules.txt
//   rc-proxy-bench connect IP:PORT SAMPLES [LISTEN_IP:PORT]   (run inside the client netns;
//       with LISTEN, a thread accepts on that address first: the backend the Service points at)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "rc/proxy/model.h"
#include "rc/proxy/nft_programmer.h"
#include "rc/proxy/ruleset.h"

using namespace rc::proxy;
using Clock = std::chrono::steady_clock;

namespace {

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

struct Args {
  std::string mode, netns, backend;
  int services = 1000, endpoints = 10, updates = 20;
};

// Service i: 10.96.0.0 + i : 80/tcp; endpoints 10.128.0.0 + i*E + j : 8080. The last Service
// points at --backend instead (one endpoint), for the latency probe.
DesiredState Generate(const Args& a) {
  DesiredState s;
  uint32_t vip0 = *ParseIPv4("10.96.0.0"), ep0 = *ParseIPv4("10.128.0.0");
  for (int i = 0; i < a.services; ++i) {
    ServicePort p;
    p.ns = "bench";
    char name[32];
    std::snprintf(name, sizeof name, "svc-%06d", i);  // map (and KUBE-SERVICES) order = i
    p.name = name;
    p.port_name = "http";
    p.cluster_ip = vip0 + 1 + i;
    p.port = 80;
    for (int j = 0; j < a.endpoints; ++j) p.endpoints.push_back({ep0 + static_cast<uint32_t>(i * a.endpoints + j), 8080});
    if (i == a.services - 1 && !a.backend.empty()) {
      auto colon = a.backend.find(':');
      p.endpoints = {{*ParseIPv4(a.backend.substr(0, colon)), static_cast<uint16_t>(std::stoi(a.backend.substr(colon + 1)))}};
    }
    s.ports.emplace(p.Id(), p);
  }
  return s;
}

std::string Hash16(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llX", static_cast<unsigned long long>(h));
  return buf;
}

// kube-proxy's iptables mode for the same Services (nat table; as iptables-save prints it).
void PrintIptables(const DesiredState& s) {
  std::string chains, rules;
  chains += ":KUBE-SERVICES - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n:KUBE-POSTROUTING - [0:0]\n";
  rules +=
      "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
      "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n"
      "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n"
      "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000\n"
      "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n"
      "-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0\n"
      "-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n";
  std::string svc_rules, per_chain;
  for (const auto& [id, p] : s.ports) {
    std::string svc = "KUBE-SVC-" + Hash16(id);
    std::string vip = FormatIPv4(p.cluster_ip);
    chains += ":" + svc + " - [0:0]\n";
    std::string comment = "\"" + p.ns + "/" + p.name + ":" + p.port_name + " cluster IP\"";
    svc_rules += "-A KUBE-SERVICES -d " + vip + "/32 -p tcp -m comment --comment " + comment + " -m tcp --dport " +
                 std::to_string(p.port) + " -j " + svc + "\n";
    per_chain += "-A " + svc + " ! -s 10.244.0.0/16 -d " + vip + "/32 -p tcp -m comment --comment " + comment +
                 " -m tcp --dport " + std::to_string(p.port) + " -j KUBE-MARK-MASQ\n";
    size_t n = p.endpoints.size();
    for (size_t j = 0; j < n; ++j) {
      const auto& ep = p.endpoints[j];
      std::string addr = FormatIPv4(ep.ip) + ":" + std::to_string(ep.port);
      std::string sep = "KUBE-SEP-" + Hash16(id + addr);
      chains += ":" + sep + " - [0:0]\n";
      std::string c = "\"" + p.ns + "/" + p.name + ":" + p.port_name + " -> " + addr + "\"";
      if (j + 1 < n) {
        char prob[32];
        std::snprintf(prob, sizeof prob, "%.10f", 1.0 / static_cast<double>(n - j));
        per_chain += "-A " + svc + " -m comment --comment " + c + " -m statistic --mode random --probability " + prob +
                     " -j " + sep + "\n";
      } else {
        per_chain += "-A " + svc + " -m comment --comment " + c + " -j " + sep + "\n";
      }
      per_chain += "-A " + sep + " -s " + FormatIPv4(ep.ip) + "/32 -m comment --comment \"" + p.ns + "/" + p.name +
                   ":" + p.port_name + "\" -j KUBE-MARK-MASQ\n";
      per_chain += "-A " + sep + " -p tcp -m comment --comment \"" + p.ns + "/" + p.name + ":" + p.port_name +
                   "\" -m tcp -j DNAT --to-destination " + addr + "\n";
    }
  }
  std::fputs("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n",
             stdout);
  std::fputs(chains.c_str(), stdout);
  std::fputs(rules.c_str(), stdout);
  std::fputs(svc_rules.c_str(), stdout);
  std::fputs(per_chain.c_str(), stdout);
  std::fputs("COMMIT\n", stdout);
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

sockaddr_in Addr(const std::string& target) {
  auto colon = target.find(':');
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(target.substr(colon + 1))));
  inet_pton(AF_INET, target.substr(0, colon).c_str(), &a.sin_addr);
  return a;
}

int Connect(const std::string& target, int samples, const std::string& listen_on) {
  if (!listen_on.empty()) {
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in la = Addr(listen_on);
    if (bind(ls, reinterpret_cast<sockaddr*>(&la), sizeof la) != 0 || listen(ls, 4096) != 0) {
      std::perror("listen");
      return 1;
    }
    std::thread([ls] {
      for (;;) {
        int c = accept(ls, nullptr, nullptr);
        if (c >= 0) close(c);
      }
    }).detach();
  }
  sockaddr_in a = Addr(target);
  std::vector<double> ms;
  int failures = 0;
  for (int i = -20; i < samples; ++i) {  // 20 warm-up connects are not counted
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    linger l{1, 0};  // RST on close: no TIME_WAIT pile-up
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    auto t0 = Clock::now();
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    auto t1 = Clock::now();
    close(fd);
    if (i < 0) continue;
    if (rc != 0) {
      ++failures;
      continue;
    }
    ms.push_back(Ms(t0, t1));
  }
  std::printf("connect samples=%zu failures=%d p50_ms=%.4f p99_ms=%.4f\n", ms.size(), failures, Percentile(ms, 0.5),
              Percentile(ms, 0.99));
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: see bench/proxy_bench.sh\n");
    return 2;
  }
  Args a;
  a.mode = argv[1];
  if (a.mode == "connect") {
    if (argc != 4 && argc != 5) return 2;
    return Connect(argv[2], std::stoi(argv[3]), argc == 5 ? argv[4] : "");
  }
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--netns") a.netns = v;
    else if (k == "--services") a.services = std::stoi(v);
    else if (k == "--endpoints") a.endpoints = std::stoi(v);
    else if (k == "--backend") a.backend = v;
    else if (k == "--updates") a.updates = std::stoi(v);
  }
  auto t0 = Clock::now();
  DesiredState state = Generate(a);
  if (a.mode == "iptables") {
    PrintIptables(state);
    return 0;
  }
  Rendered rendered = Render(state, {.cluster_cidr = *ParseCidr("10.244.0.0/16")});
  auto t1 = Clock::now();
  auto prog = NftProgrammer::Open({"rc-proxy", a.netns});
  if (!prog.ok()) {
    std::fprintf(stderr, "%s\n", prog.status().ToString().c_str());
    return 1;
  }
  TransactionStats st;
  auto t2 = Clock::now();
  auto s = (*prog)->ApplyFull(rendered, &st);
  auto t3 = Clock::now();
  if (!s.ok()) {
    std::fprintf(stderr, "full sync: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("full services=%d endpoints=%d rules=%zu messages=%zu bytes=%zu render_ms=%.1f sync_ms=%.1f\n",
              a.services, a.endpoints, rendered.RuleCount(), st.messages, st.bytes, Ms(t0, t1), Ms(t2, t3));
  // Incremental: replace one endpoint of one Service (rendering + diff + transaction).
  std::vector<double> ms;
  for (int u = 0; u < a.updates; ++u) {
    auto it = state.ports.begin();
    std::advance(it, (u * 7919) % std::max(1, a.services - 1));
    ServicePort changed = it->second;
    changed.endpoints[0].ip += 0x00100000 + u;  // a new pod IP
    std::sort(changed.endpoints.begin(), changed.endpoints.end());
    auto u0 = Clock::now();
    Rendered from, to;
    from.ports.emplace(it->first, rendered.ports.at(it->first));
    to.ports.emplace(it->first, RenderPort(changed, {.cluster_cidr = *ParseCidr("10.244.0.0/16")}));
    auto ds = (*prog)->ApplyDelta(from, to, &st);
    auto u1 = Clock::now();
    if (!ds.ok()) {
      std::fprintf(stderr, "delta: %s\n", ds.ToString().c_str());
      return 1;
    }
    ms.push_back(Ms(u0, u1));
    rendered.ports[it->first] = to.ports.at(it->first);
    it->second = changed;
  }
  if (!ms.empty()) {
    std::printf("delta updates=%zu messages=%zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", ms.size(), st.messages,
                Percentile(ms, 0.5), Percentile(ms, 0.99), *std::max_element(ms.begin(), ms.end()));
  }
  // Verify the table reads back as written.
  auto f = (*prog)->ReadFingerprint();
  bool same = f.ok() && *f == ExpectedFingerprint(rendered);
  std::printf("readback %s\n", same ? "matches" : "DIFFERS");
  return same ? 0 : 1;
}
