#include "rc/nodeagent/prober.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>

#include "rc/apimachinery/json.h"
#include "rc/nodeagent/pod_runtime.h"

namespace rc::nodeagent {

namespace am = rc::apimachinery;
namespace http = boost::beast::http;
using tcp = boost::asio::ip::tcp;
namespace ssl = boost::asio::ssl;

namespace {

int IntOr(const rapidjson::Value& obj, const char* name, int fallback) {
  const rapidjson::Value* v = am::FindMember(obj, name);
  return v && v->IsInt() ? v->GetInt() : fallback;
}

Result<int> ResolvePort(const rapidjson::Value* port, const rapidjson::Value& container) {
  if (!port) return Status::InvalidArgument("probe port is required");
  if (port->IsInt()) {
    if (port->GetInt() < 1 || port->GetInt() > 65535) {
      return Status::InvalidArgument("probe port " + std::to_string(port->GetInt()) + " is out of range 1-65535");
    }
    return port->GetInt();
  }
  if (port->IsString()) {
    std::string name = port->GetString();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) {
      // A numeric string is a port number; anything past 65535 is refused, never thrown.
      if (name.size() > 5 || std::stoi(name) < 1 || std::stoi(name) > 65535) {
        return Status::InvalidArgument("probe port " + name + " is out of range 1-65535");
      }
      return std::stoi(name);
    }
    if (const rapidjson::Value* ports = am::FindMember(container, "ports"); ports && ports->IsArray()) {
      for (const auto& p : ports->GetArray()) {
        if (am::GetStringOr(p, "name") == name) return IntOr(p, "containerPort", 0);
      }
    }
    return Status::InvalidArgument("probe port " + name + " is not a named port of the container");
  }
  return Status::InvalidArgument("probe port must be a number or a port name");
}

// One HTTP GET over an established (plain or TLS) stream; success is a 2xx or 3xx status.
struct HttpExchange {
  std::string url;  // for messages: "http://10.244.0.5:8080/healthz"
  boost::beast::flat_buffer buffer;
  http::request<http::empty_body> request;
  // Only the status line and headers are read: the status decides, and a body that is large,
  // endless or ends in a TLS stream without close_notify must not fail a healthy probe.
  http::response_parser<http::empty_body> response;
};

template <typename Stream>
void SendHttpProbe(Stream& stream, const ProbeSpec& probe, const std::string& target, HttpExchange& ex,
                   ProbeOutcome& outcome) {
  ex.request.method(http::verb::get);
  ex.request.target(probe.path);
  ex.request.version(11);
  ex.request.set(http::field::host, target);
  ex.request.set(http::field::user_agent, "kube-probe/1.31");
  ex.request.set(http::field::accept, "*/*");
  ex.request.set(http::field::connection, "close");
  for (const auto& [k, v] : probe.http_headers) ex.request.set(k, v);
  http::async_write(stream, ex.request, [&stream, &ex, &outcome](boost::system::error_code we, size_t) {
    if (we) {
      outcome.message = "Get \"" + ex.url + "\": " + we.message();
      return;
    }
    http::async_read_header(stream, ex.buffer, ex.response, [&ex, &outcome](boost::system::error_code re, size_t) {
      if (re) {
        outcome.message = "Get \"" + ex.url + "\": " +
                          (re == boost::beast::error::timeout ? "context deadline exceeded" : re.message());
        return;
      }
      unsigned code = ex.response.get().result_int();
      if (code >= 200 && code < 400) {
        outcome.success = true;
      } else {
        outcome.message = "HTTP probe failed with statuscode: " + std::to_string(code);
      }
    });
  });
}

}  // namespace

Result<ProbeSpec> ParseProbe(
const rapidjson::Value* probe, const rapidjson::Value& container) {
  ProbeSpec spec;
  if (!probe || !probe->IsObject()) return spec;
  spec.initial_delay_seconds = IntOr(*probe, "initialDelaySeconds", 0);
  spec.period_seconds = std::max(1, IntOr(*probe, "periodSeconds", 10));
  spec.timeout_seconds = std::max(1, IntOr(*probe, "timeoutSeconds", 1));
  spec.success_threshold = std::max(1, IntOr(*probe, "successThreshold", 1));
  spec.failure_threshold = std::max(1, IntOr(*probe, "failureThreshold", 3));
  if (const rapidjson::Value* e = am::FindMember(*probe, "exec")) {
    spec.kind = ProbeSpec::Kind::kExec;
    if (const rapidjson::Value* c = am::FindMember(*e, "command"); c && c->IsArray()) {
      for (const auto& a : c->GetArray()) {
        if (a.IsString()) spec.command.push_back(a.GetString());
      }
    }
    if (spec.command.empty()) return Status::InvalidArgument("exec probe needs a command");
  } else if (const rapidjson::Value* h = am::FindMember(*probe, "httpGet")) {
    spec.kind = ProbeSpec::Kind::kHttpGet;
    auto port = ResolvePort(am::FindMember(*h, "port"), container);
    if (!port.ok()) return port.status();
    spec.port = *port;
    spec.path = std::string(am::GetStringOr(*h, "path", "/"));
    if (spec.path.empty() || spec.path[0] != '/') spec.path = "/" + spec.path;
    spec.host = std::string(am::GetStringOr(*h, "host"));
    spec.scheme = std::string(am::GetStringOr(*h, "scheme", "HTTP"));
    if (spec.scheme != "HTTP" && spec.scheme != "HTTPS") {
      return Status::InvalidArgument("httpGet scheme \"" + spec.scheme + "\" is not HTTP or HTTPS");
    }
    if (const rapidjson::Value* hs = am::FindMember(*h, "httpHeaders"); hs && hs->IsArray()) {
      for (const auto& x : hs->GetArray()) {
        spec.http_headers.emplace_back(am::GetStringOr(x, "name"), am::GetStringOr(x, "value"));
      }
    }
  } else if (const rapidjson::Value* t = am::FindMember(*probe, "tcpSocket")) {
    spec.kind = ProbeSpec::Kind::kTcpSocket;
    auto port = ResolvePort(am::FindMember(*t, "port"), container);
    if (!port.ok()) return port.status();
    spec.port = *port;
    spec.host = std::string(am::GetStringOr(*t, "host"));
  } else {
    return Status::InvalidArgument("probe needs exec, httpGet or tcpSocket");
  }
  return spec;
}

int SocketInNetns(const std::string& netns_path, int domain, int type) {
  if (netns_path.empty()) return socket(domain, type | SOCK_CLOEXEC, 0);
  int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  int target = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0) {
    int err = errno;
    if (self >= 0) close(self);
    if (target >= 0) close(target);
    errno = err;
    return -1;
  }
  int fd = -1;
  if (setns(target, CLONE_NEWNET) == 0) {
    fd = socket(domain, type | SOCK_CLOEXEC, 0);
    int err = errno;
    if (setns(self, CLONE_NEWNET) != 0) abort();  // a thread left in the pod network would be a bug
    errno = err;
  }
  close(self);
  close(target);
  return fd;
}

ProbeOutcome RunProbe(const ProbeSpec& probe, PodRuntime* runtime, const std::string& container_id,
                      const std::string& pod_ip, const std::string& netns_path) {
  auto timeout = std::chrono::seconds(probe.timeout_seconds);
  if (probe.kind == ProbeSpec::Kind::kExec) {
    auto r = runtime->Exec(container_id, probe.command, probe.timeout_seconds * 1000);
    if (!r.ok()) return {false, r.status().message()};
    if (r->timed_out) return {false, "command timed out after " + std::to_string(probe.timeout_seconds) + "s"};
    std::string out = r->output;
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    if (r->exit_code != 0) {
      return {false, out.empty() ? "command exited with " + std::to_string(r->exit_code) : out};
    }
    return {true, out};
  }
  std::string host = probe.host.empty() ? pod_ip : probe.host;
  if (host.empty()) return {false, "the pod has no IP yet"};
  boost::system::error_code ec;
  auto address = boost::asio::ip::make_address_v4(host, ec);
  const bool named_host = static_cast<bool>(ec);
  if (named_host) {
    // A DNS name (httpGet.host / tcpSocket.host): resolved by the agent, as the kubelet does.
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &found);
    if (rc != 0 || !found) return {false, "dial tcp: lookup " + host + ": " + gai_strerror(rc)};
    address = boost::asio::ip::address_v4(ntohl(reinterpret_cast<sockaddr_in*>(found->ai_addr)->sin_addr.s_addr));
    freeaddrinfo(found);
  }
  int fd = SocketInNetns(netns_path, AF_INET, SOCK_STREAM);
  if (fd < 0) return {false, std::string("socket: ") + strerror(errno)};
  boost::asio::io_context io;
  tcp::socket sock(io);
  sock.assign(tcp::v4(), fd, ec);
  if (ec) {
    close(fd);
    return {false, ec.message()};
  }
  tcp::endpoint endpoint(address, static_cast<unsigned short>(probe.port));
  std::string target = host + ":" + std::to_string(probe.port);
  const bool https = probe.kind == ProbeSpec::Kind::kHttpGet && probe.scheme == "HTTPS";
  // An HTTPS probe is TLS without certificate verification, as the kubelet does it.
  boost::beast::tcp_stream plain(std::move(sock));
  std::optional<ssl::context> tls_context;
  std::optional<ssl::stream<boost::beast::tcp_stream>> tls;
  if (https) {
    tls_context.emplace(ssl::context::tls_client);
    tls_context->set_verify_mode(ssl::verify_none);
    tls.emplace(std::move(plain), *tls_context);
    if (named_host) SSL_set_tlsext_host_name(tls->native_handle(), host.c_str());  // SNI
  }
  boost::beast::tcp_stream& lowest = https ? boost::beast::get_lowest_layer(*tls) : plain;
  ProbeOutcome outcome{false, ""};
  HttpExchange exchange;
  exchange.url = std::string(https ? "https://" : "http://") + target + probe.path;
  lowest.expires_after(timeout);
  lowest.async_connect(endpoint, [&](boost::system::error_code e) {
    if (e) {
      outcome.message = "dial tcp " + target + ": " + (e == boost::beast::error::timeout ? "i/o timeout" : e.message());
      return;
    }
    if (probe.kind == ProbeSpec::Kind::kTcpSocket) {
      outcome.success = true;
      return;
    }
    if (!https) {
      SendHttpProbe(plain, probe, target, exchange, outcome);
      return;
    }
    tls->async_handshake(ssl::stream_base::client, [&](boost::system::error_code he) {
      if (he) {
        outcome.message = "Get \"" + exchange.url + "\": " +
                          (he == boost::beast::error::timeout ? "context deadline exceeded" : "tls: " + he.message());
        return;
      }
      SendHttpProbe(*tls, probe, target, exchange, outcome);
    });
  });
  io.run();
  return outcome;
}

}  // namespace rc::nodeagent
