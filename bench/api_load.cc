// api_load: closed-loop HTTP/1.1 keep-alive load on one URL path, for bulk-creating objects
// through rc's Kubernetes API (and for timing it).
//
//   api_load --url http://127.0.0.1:PORT --path /api/v1/namespaces/default/configmaps
//            --count 1000 --concurrency 16 [--method POST] [--body-template configmap]
//
// --concurrency connections each keep one request in flight until --count requests completed
// (or --max-seconds passed). For POST/PUT the body is --body-template with "{name}" replaced by
// --name-prefix + the request index (0..count-1) and "{pad}" by filler bytes so that the body
// has about --body-size bytes; the template "configmap" (default) is a ConfigMap in
// --namespace. Prints status-code counts, throughput, latency percentiles and one
// machine-readable line "RESULT {json}". Exit status 1 if any response was not 2xx.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string url = "http://127.0.0.1:6443";
  std::string path = "/api/v1/namespaces/default/configmaps";
  std::string method = "POST";
  std::string body_template = "configmap";
  std::string name_prefix = "cm-";
  std::string ns = "default";
  int64_t count = 1000;
  int concurrency = 16;
  int body_size = 200;
  double max_seconds = 300;
  int64_t start_index = 0;
  std::string label;
  bool quiet = false;
};

struct Target {
  std::string host;
  int port = 80;
};

bool ParseUrl(const std::string& url, Target& t) {
  const std::string scheme = "http://";
  if (url.compare(0, scheme.size(), scheme) != 0) return false;
  std::string rest = url.substr(scheme.size());
  size_t slash = rest.find('/');
  if (slash != std::string::npos) rest = rest.substr(0, slash);
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos) {
    t.host = rest;
  } else {
    t.host = rest.substr(0, colon);
    t.port = std::stoi(rest.substr(colon + 1));
  }
  return true;
}

int Connect(const Target& t) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(t.port));
  if (::inet_pton(AF_INET, t.host == "localhost" ? "127.0.0.1" : t.host.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    return -1;
  }
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// Reads one HTTP/1.1 response; returns the status code, or -1 on a broken connection.
// `buf` keeps bytes read past the response. Sets `close` if the server will close.
int ReadResponse(int fd, std::string& buf, bool& close, size_t& body_bytes) {
  auto fill = [&]() {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    return true;
  };
  size_t hdr_end;
  while ((hdr_end = buf.find("\r\n\r\n")) == std::string::npos) {
    if (!fill()) return -1;
  }
  std::string head = buf.substr(0, hdr_end);
  buf.erase(0, hdr_end + 4);
  int status = -1;
  if (head.size() > 12) status = std::atoi(head.c_str() + 9);
  std::string lower = head;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  close = lower.find("\r\nconnection: close") != std::string::npos;
  bool chunked = lower.find("\r\ntransfer-encoding: chunked") != std::string::npos;
  size_t cl_pos = lower.find("\r\ncontent-length:");
  body_bytes = 0;
  if (chunked) {
    while (true) {
      size_t eol;
      while ((eol = buf.find("\r\n")) == std::string::npos) {
        if (!fill()) return -1;
      }
      size_t len = std::strtoul(buf.c_str(), nullptr, 16);
      buf.erase(0, eol + 2);
      while (buf.size() < len + 2) {
        if (!fill()) return -1;
      }
      buf.erase(0, len + 2);
      body_bytes += len;
      if (len == 0) break;  // (trailers are not used by the servers measured here)
    }
  } else if (cl_pos != std::string::npos) {
    size_t len = std::strtoul(lower.c_str() + cl_pos + 17, nullptr, 10);
    while (buf.size() < len) {
      if (!fill()) return -1;
    }
    buf.erase(0, len);
    body_bytes = len;
  } else if (status != 204 && status != 304) {
    while (fill()) {
    }
    body_bytes = buf.size();
    buf.clear();
    close = true;
  }
  return status;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"api_load: closed-loop HTTP/1.1 keep-alive load (bulk creation) on one path"};
  app.add_option("--url", cfg.url, "http://HOST:PORT (loopback)")->capture_default_str();
  app.add_option("--path", cfg.path, "request path")->capture_default_str();
  app.add_option("--method", cfg.method, "GET, POST or PUT")->capture_default_str();
  app.add_option("--body-template", cfg.body_template,
                 "'configmap' or a JSON text with {name} and {pad} placeholders")->capture_default_str();
  app.add_option("--name-prefix", cfg.name_prefix, "object names are PREFIX + index")->capture_default_str();
  app.add_option("--namespace", cfg.ns, "namespace for the configmap template")->capture_default_str();
  app.add_option("--count", cfg.count, "requests in total")->check(CLI::Range(int64_t{1}, int64_t{10000000}))
      ->capture_default_str();
  app.add_option("--start-index", cfg.start_index, "first index")->capture_default_str();
  app.add_option("--concurrency", cfg.concurrency, "connections")->check(CLI::Range(1, 1024))->capture_default_str();
  app.add_option("--body-size", cfg.body_size, "approximate body bytes (filler in {pad})")->capture_default_str();
  app.add_option("--max-seconds", cfg.max_seconds, "stop after this long")->capture_default_str();
  app.add_option("--label", cfg.label, "free text copied into the RESULT line");
  app.add_flag("--quiet", cfg.quiet, "print only the RESULT line");
  CLI11_PARSE(app, argc, argv);

  Target target;
  if (!ParseUrl(cfg.url, target)) {
    std::fprintf(stderr, "api_load: --url must be http://HOST:PORT\n");
    return 2;
  }
  std::string tmpl = cfg.body_template;
  if (tmpl == "configmap") {
    tmpl = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"{name}","namespace":")" + cfg.ns +
           R"("},"data":{"v":"{pad}"}})";
  }
  size_t fixed = ReplaceAll(ReplaceAll(tmpl, "{name}", cfg.name_prefix + "0000"), "{pad}", "").size();
  std::string pad(cfg.body_size > static_cast<int>(fixed) ? static_cast<size_t>(cfg.body_size) - fixed : 0, 'x');
  for (size_t i = 0; i < pad.size(); ++i) pad[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[i % 36];
  bool has_body = cfg.method == "POST" || cfg.method == "PUT" || cfg.method == "PATCH";

  std::atomic<int64_t> next{0};
  std::mutex mu;
  std::map<int, int64_t> statuses;
  std::vector<uint32_t> all_lat;
  int64_t conn_errors = 0;
  auto start = Clock::now();
  auto deadline = start + std::chrono::milliseconds(static_cast<int64_t>(cfg.max_seconds * 1000));

  std::vector<std::thread> threads;
  for (int c = 0; c < cfg.concurrency; ++c) {
    threads.emplace_back([&] {
      std::map<int, int64_t> my_status;
      std::vector<uint32_t> lat;
      int64_t my_conn_errors = 0;
      int fd = -1;
      std::string buf;
      while (Clock::now() < deadline) {
        int64_t i = next.fetch_add(1);
        if (i >= cfg.count) break;
        std::string name = cfg.name_prefix + std::to_string(cfg.start_index + i);
        std::string path = ReplaceAll(cfg.path, "{name}", name);
        std::string req = cfg.method + " " + path + " HTTP/1.1\r\nHost: " + target.host + ":" +
                          std::to_string(target.port) + "\r\nAccept: application/json\r\n";
        if (has_body) {
          std::string body = ReplaceAll(ReplaceAll(tmpl, "{name}", name), "{pad}", pad);
          req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
        } else {
          req += "\r\n";
        }
        int status = -1;
        auto t0 = Clock::now();
        for (int attempt = 0; attempt < 2 && status < 0; ++attempt) {
          if (fd < 0) {
            fd = Connect(target);
            buf.clear();
            if (fd < 0) break;
          }
          bool close = false;
          size_t body_bytes = 0;
          if (SendAll(fd, req)) status = ReadResponse(fd, buf, close, body_bytes);
          if (status < 0 || close) {
            ::close(fd);
            fd = -1;
          }
        }
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
        if (status < 0) {
          ++my_conn_errors;
          continue;
        }
        my_status[status]++;
        lat.push_back(static_cast<uint32_t>(std::min<int64_t>(us, UINT32_MAX)));
      }
      if (fd >= 0) ::close(fd);
      std::lock_guard<std::mutex> lock(mu);
      for (auto& [s, n] : my_status) statuses[s] += n;
      all_lat.insert(all_lat.end(), lat.begin(), lat.end());
      conn_errors += my_conn_errors;
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(all_lat.begin(), all_lat.end());
  auto pct = [&](double p) {
    if (all_lat.empty()) return 0.0;
    size_t idx = static_cast<size_t>(p / 100.0 * static_cast<double>(all_lat.size() - 1) + 0.5);
    return all_lat[std::min(idx, all_lat.size() - 1)] / 1000.0;
  };
  int64_t ok = 0, bad = 0;
  for (auto& [s, n] : statuses) (s >= 200 && s < 300 ? ok : bad) += n;
  double rps = seconds > 0 ? static_cast<double>(ok + bad) / seconds : 0;
  if (!cfg.quiet) {
    std::printf("%s %s%s x%" PRId64 " with %d connections: %.3f s, %.1f req/s\n", cfg.method.c_str(),
                cfg.url.c_str(), cfg.path.c_str(), cfg.count, cfg.concurrency, seconds, rps);
    for (auto& [s, n] : statuses) std::printf("  status %d: %" PRId64 "\n", s, n);
    if (conn_errors) std::printf("  connection errors: %" PRId64 "\n", conn_errors);
    std::printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", pct(50), pct(90), pct(99), pct(100));
  }
  std::printf(
      "RESULT {\"tool\":\"api_load\",\"label\":\"%s\",\"method\":\"%s\",\"count\":%" PRId64 ",\"concurrency\":%d,"
      "\"ok\":%" PRId64 ",\"non_2xx\":%" PRId64 ",\"conn_errors\":%" PRId64 ",\"seconds\":%.3f,\"req_per_sec\":%.1f,"
      "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f}}\n",
      cfg.label.c_str(), cfg.method.c_str(), cfg.count, cfg.concurrency, ok, bad, conn_errors, seconds, rps, pct(50),
      pct(90), pct(99), pct(100));
  return (bad > 0 || conn_errors > 0 || ok < cfg.count) ? 1 : 0;
}
