#include "rc/client/rest_client.h"

#include <sys/socket.h>
#include <poll.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "rc/apimachinery/json.h"

namespace rc::client {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {


}  // namespace

Status ToStatus(const HttpReply& reply) {
  if (reply.status >= 200 && reply.status < 300) return Status::Ok();
  std::string message = "HTTP " + std::to_string(reply.status);
  std::string reason;
  if (auto doc = apimachinery::ParseJson(reply.body); doc.ok() && doc->IsObject()) {
    if (auto m = apimachinery::GetStringOr(*doc, "message"); !m.empty()) message = std::string(m);
    reason = std::string(apimachinery::GetStringOr(*doc, "reason"));
  } else if (!reply.body.empty()) {
    message += ": " + reply.body.substr(0, 200);
  }
  switch (reply.status) {
    case 404: return Status::NotFound(message);
    case 409: return reason == "AlreadyExists" ? Status::AlreadyExists(message) : Status::Conflict(message);
    case 410: return Status::Compacted(message);
    case 400:
    case 422: return Status::InvalidArgument(message);
    case 429: return Status::ResourceExhausted(message);
    default: return Status::Unavailable(message);
  }
}

void WatchHandle::Cancel() {
  cancelled_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // wakes the blocked reader
}

struct RestClient::Connection {
  asio::io_context io;
  tcp::socket socket{io};
  beast::flat_buffer buffer;
};

Result<std::unique_ptr<RestClient>> RestClient::Create(const std::string& base_url) {
  return Create(base_url, Options{});
}

Result<std::unique_ptr<RestClient>> RestClient::Create(const std::string& base_url, Options options) {
  std::string rest = base_url;
  const std::string scheme = "http://";
  if (rest.rfind(scheme, 0) != 0) {
    return Status::InvalidArgument("server URL must start with http:// (got '" + base_url + "')");
  }
  rest = rest.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  std::string host = colon == std::string::npos ? rest : rest.substr(0, colon);
  std::string port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty() || port.empty()) return Status::InvalidArgument("bad server URL '" + base_url + "'");
  return std::unique_ptr<RestClient>(new RestClient(std::move(host), std::move(port), std::move(options)));
}

RestClient::RestClient(std::string host, std::string port, Options options)
    : host_(std::move(host)), port_(std::move(port)), options_(std::move(options)) {}

RestClient::~RestClient() = default;

Result<std::unique_ptr<RestClient::Connection>> RestClient::Connect() {
  auto c = std::make_unique<Connection>();
  beast::error_code ec;
  tcp::resolver resolver(c->io);
  auto endpoints = resolver.resolve(host_, port_, ec);
  if (ec) return Status::Unavailable("resolving " + host_ + ": " + ec.message());
  // Asynchronous connect under a deadline (blocking sockets ignore SO_RCVTIMEO inside asio).
  bool done = false;
  asio::async_connect(c->socket, endpoints, [&](const beast::error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  c->io.run_for(std::chrono::milliseconds(options_.connect_timeout_ms));
  if (!done) {
    c->socket.close(ec);
    c->io.restart();
    c->io.run();
    return Status::Unavailable("connecting to " + host_ + ":" + port_ + ": timed out after " +
                               std::to_string(options_.connect_timeout_ms) + " ms");
  }
  if (ec) return Status::Unavailable("connecting to " + host_ + ":" + port_ + ": " + ec.message());
  c->socket.set_option(tcp::no_delay(true), ec);
  return c;
}

std::unique_ptr<RestClient::Connection> RestClient::Acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.empty()) return nullptr;
  auto c = std::move(idle_.back());
  idle_.pop_back();
  return c;
}

void RestClient::Release(std::unique_ptr<Connection> c) {
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < options_.max_idle_connections) idle_.push_back(std::move(c));
}

Result<HttpReply> RestClient::Do(const std::string& method, const std::string& target, const std::string& body,
                                 const std::string& content_type, int timeout_ms) {
  if (timeout_ms <= 0) timeout_ms = options_.request_timeout_ms;
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, host_ + ":" + port_);
  req.set(http::field::user_agent, options_.user_agent);
  req.set(http::field::accept, "application/json");
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.set(http::field::content_type, content_type);
    req.body() = body;
  }
  req.keep_alive(true);
  req.prepare_payload();

  // A pooled connection may have been closed by the server since its last use. That shows as a
  // failed write or a read that got no byte of a response: only then is the request sent again,
  // on a fresh connection (a request that may have been processed is never repeated).
  for (int attempt = 0; attempt < 2; ++attempt) {
    std::unique_ptr<Connection> c = attempt == 0 ? Acquire() : nullptr;
    bool reused = c != nullptr;
    if (!c) {
      auto fresh = Connect();
      if (!fresh.ok()) return fresh.status();
      c = std::move(*fresh);
    }
    beast::error_code ec;
    bool done = false, write_failed = false;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    c->io.restart();
    http::async_write(c->socket, req, [&](const beast::error_code& e, size_t) {
      if (e) {
        ec = e;
        write_failed = done = true;
        return;
      }
      http::async_read(c->socket, c->buffer, parser, [&](const beast::error_code& e2, size_t) {
        ec = e2;
        done = true;
      });
    });
    c->io.run_for(std::chrono::milliseconds(timeout_ms));
    if (!done) {
      beast::error_code ignored;
      c->socket.close(ignored);
      c->io.restart();
      c->io.run();  // completes the aborted handlers
      return Status::Unavailable(method + " " + target + ": no reply within " + std::to_string(timeout_ms) + " ms");
    }
    if (ec) {
      if (reused && (write_failed || !parser.got_some())) continue;
      return Status::Unavailable(method + " " + target + ": " + ec.message());
    }
    auto& res = parser.get();
    HttpReply reply{static_cast<int>(res.result_int()), std::move(res.body())};
    if (res.keep_alive()) Release(std::move(c));
    return reply;
  }
  return Status::Unavailable(method + " " + target + ": connection failed");
}

Status RestClient::Stream(const std::string& target, const std::function<bool(std::string_view)>& on_line,
                          WatchHandle* handle) {
  std::string pending;
  bool complete = false;
  Status s = StreamBytes(
      target, nullptr,
      [&](std::string_view data) {
        pending.append(data);
        size_t start = 0;
        for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
          std::string_view line(pending.data() + start, nl - start);
          if (line.empty()) continue;
          if (!on_line(line)) return false;
        }
        pending.erase(0, start);
        return true;
      },
      handle, &complete);
  if (s.ok() && complete && !pending.empty()) on_line(pending);
  return s;
}

Status RestClient::StreamBytes(const std::string& target, const std::function<void()>& on_headers,
                               const std::function<bool(std::string_view)>& on_data, WatchHandle* handle,
                               bool* complete) {
  if (complete) *complete = false;
  auto connected = Connect();
  if (!connected.ok()) return connected.status();
  std::unique_ptr<Connection> c = std::move(*connected);
  {
    std::lock_guard<std::mutex> lock(handle->mu_);
    if (handle->cancelled()) return Status::Ok();
    handle->fd_ = c->socket.native_handle();
  }
  struct Unregister {
    WatchHandle* h;
    ~Unregister() {
      std::lock_guard<std::mutex> lock(h->mu_);
      h->fd_ = -1;
    }
  } unregister{handle};

  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, host_ + ":" + port_);
  req.set(http::field::user_agent, options_.user_agent);
  req.set(http::field::accept, "application/json");
  beast::error_code ec;
  http::write(c->socket, req, ec);
  if (ec) return handle->cancelled() ? Status::Ok() : Status::Unavailable("watch " + target + ": " + ec.message());

  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  // Deadlines without asio timers: wait for readability with poll() before each read (the
  // Beast buffer may already hold data, then there is nothing to wait for). Headers must come
  // within header_timeout_ms; after that the body may be quiet for at most idle_timeout_ms
  // (servers send bookmarks or close watches long before: a silent connection is a dead one).
  auto readable = [&](int ms) {
    if (c->buffer.size() > 0) return true;
    pollfd pfd{c->socket.native_handle(), POLLIN, 0};
    return ::poll(&pfd, 1, ms) > 0;
  };
  while (!parser.is_header_done()) {
    if (!readable(options_.watch_header_timeout_ms)) {
      return handle->cancelled() ? Status::Ok() : Status::Unavailable("watch " + target + ": no response headers within " +
                                                                     std::to_string(options_.watch_header_timeout_ms) + " ms");
    }
    http::read_some(c->socket, c->buffer, parser, ec);
    if (ec) break;
  }
  if (ec) return handle->cancelled() ? Status::Ok() : Status::Unavailable("watch " + target + ": " + ec.message());
  int status = static_cast<int>(parser.get().result_int());
  if (status < 200 || status >= 300) {
    // Read the (small) error body for the message.
    http::response_parser<http::string_body> err{std::move(parser)};
    http::read(c->socket, c->buffer, err, ec);
    return ToStatus(HttpReply{status, err.get().body()});
  }
  if (on_headers) on_headers();
  char chunk[64 * 1024];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    if (!readable(options_.watch_idle_timeout_ms)) {
      if (handle->cancelled()) return Status::Ok();
      return Status::Unavailable("watch " + target + ": silent for " + std::to_string(options_.watch_idle_timeout_ms) + " ms");
    }
    http::read_some(c->socket, c->buffer, parser, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) {
      if (handle->cancelled() || ec == http::error::end_of_stream || ec == asio::error::eof) return Status::Ok();
      return Status::Unavailable("watch " + target + ": " + ec.message());
    }
    size_t n = sizeof chunk - parser.get().body().size;
    if (n > 0 && !on_data(std::string_view(chunk, n))) return Status::Ok();
    if (handle->cancelled()) return Status::Ok();
  }
  if (complete) *complete = true;
  return Status::Ok();
}

std::string UrlEncode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

}  // namespace rc::client
