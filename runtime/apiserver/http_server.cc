#include "rc/apiserver/http_server.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <deque>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

namespace rc::apiserver {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void ParseQuery(std::string_view q, std::multimap<std::string, std::string>& out) {
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    std::string key = PercentDecode(part.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1), true);
    out.emplace(std::move(key), std::move(value));
  }
}

std::string ReasonPhrase(int status) {
  return std::string(http::obsolete_reason(static_cast<http::status>(status)));
}

class Session;

// A chunk queued on a session: optional framing around shared payload bytes.
struct OutChunk {
  std::string prefix;
  std::shared_ptr<const std::string> payload;
  std::string suffix;
  bool counted = false;  // part of the stream backlog (payload chunks, not the header)
  size_t size() const { return prefix.size() + (payload ? payload->size() : 0) + suffix.size(); }
};

class StreamImpl : public HttpStream, public std::enable_shared_from_this<StreamImpl> {
 public:
  StreamImpl(std::shared_ptr<Session> session, bool chunked, size_t max_backlog)
      : session_(std::move(session)), chunked_(chunked), max_backlog_(max_backlog) {}
  bool Send(std::shared_ptr<const std::string> chunk) override;
  void Close() override;
  bool closed() const override { return closed_.load(); }
  void OnClose(std::function<void()> callback) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (fired_) {
      callback();
      return;
    }
    callbacks_.push_back(std::move(callback));
  }
  // Marks closed and fires callbacks once (called by the session).
  void MarkClosed() {
    closed_.store(true);
    std::vector<std::function<void()>> callbacks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fired_) return;
      fired_ = true;
      callbacks.swap(callbacks_);
    }
    for (auto& cb : callbacks) cb();
  }

  std::shared_ptr<Session> session_;
  bool chunked_;
  size_t max_backlog_;
  std::atomic<bool> closed_{false};
  std::atomic<bool> close_requested_{false};
  std::atomic<size_t> backlog_{0};
  std::mutex mu_;
  bool fired_ = false;
  std::vector<std::function<void()>> callbacks_;
};

class ServerImpl;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ServerImpl* server);
  void Start() { DoRead(); }
  void Reply(HttpResponse response);
  std::shared_ptr<HttpStream> StartStream(int status, const std::string& content_type);
  void QueueStreamChunk(std::shared_ptr<StreamImpl> stream, OutChunk chunk);
  void FinishStream(std::shared_ptr<StreamImpl> stream);
  void ForceClose() {
    net::post(stream_.get_executor(), [self = shared_from_this()] { self->CloseSocket(); });
  }

 private:
  void DoRead();
  void OnRead(beast::error_code ec, size_t bytes);
  void WriteSimple(int status, std::string body, bool close_after);
  void CloseSocket();
  // After a final error response: stop sending, discard what the client still sends (bounded),
  // then close, so the client reads our response instead of a connection reset.
  void DrainAndClose();
  bool drain_after_write_ = false;
  size_t drained_ = 0;
  void PumpStream();
  void WatchForDisconnect();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  ServerImpl* server_;
  bool keep_alive_ = true;
  int http_version_ = 11;
  // Streaming state (strand-confined).
  std::shared_ptr<StreamImpl> active_stream_;
  std::deque<OutChunk> out_;
  bool writing_ = false;
  bool stream_finishing_ = false;
  std::array<char, 16384> discard_{};
  bool closed_ = false;
};

class ExchangeImpl : public HttpExchange {
 public:
  explicit ExchangeImpl(std::shared_ptr<Session> session) : session_(std::move(session)) {}
  void Reply(HttpResponse response) override { session_->Reply(std::move(response)); }
  std::shared_ptr<HttpStream> StartStream(int status, const std::string& content_type) override {
    return session_->StartStream(status, content_type);
  }

 private:
  std::shared_ptr<Session> session_;
};

class ServerImpl : public HttpServer {
 public:
  ServerImpl(const HttpServerOptions& options, HttpHandler handler)
      : options_(options), handler_(std::move(handler)), ioc_(options.io_threads),
        acceptor_(ioc_) {}
  ~ServerImpl() override { Shutdown(); }

  Status Listen() {
    beast::error_code ec;
    auto address = net::ip::make_address(options_.address, ec);
    if (ec) return Status::InvalidArgument("bad listen address '" + options_.address + "'");
    tcp::endpoint endpoint(address, options_.port);
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      return Status::Unavailable("cannot listen on " + options_.address + ":" +
                                 std::to_string(options_.port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    DoAccept();
    for (int i = 0; i < std::max(1, options_.io_threads); ++i) {
      threads_.emplace_back([this] { ioc_.run(); });
    }
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  void Shutdown() override {
    if (stopped_.exchange(true)) return;
    net::post(acceptor_.get_executor(), [this] {
      beast::error_code ec;
      acceptor_.close(ec);
    });
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& weak : sessions_) {
        if (auto s = weak.lock()) s->ForceClose();
      }
    }
    // Give sessions a moment to flush terminations, then stop.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ioc_.stop();
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

  void Track(const std::shared_ptr<Session>& s) {
    std::lock_guard<std::mutex> lock(mu_);
    if (++track_count_ % 256 == 0) {
      for (auto it = sessions_.begin(); it != sessions_.end();) {
        it = it->expired() ? sessions_.erase(it) : std::next(it);
      }
    }
    sessions_.push_back(s);
  }

  const HttpServerOptions& options() const { return options_; }
  HttpHandler& handler() { return handler_; }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec) {
        if (ec == net::error::operation_aborted || stopped_) return;
        spdlog::warn("accept: {}", ec.message());
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        auto session = std::make_shared<Session>(std::move(socket), this);
        Track(session);
        session->Start();
      }
      if (!stopped_) DoAccept();
    });
  }

  HttpServerOptions options_;
  HttpHandler handler_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  std::vector<std::weak_ptr<Session>> sessions_;
  size_t track_count_ = 0;
};

Session::Session(tcp::socket socket, ServerImpl* server)
    : stream_(std::move(socket)), server_(server) {}

void Session::DoRead() {
  parser_.emplace();
  parser_->body_limit(server_->options().max_body_bytes);
  parser_->header_limit(64 * 1024);
  stream_.expires_never();
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&Session::OnRead, shared_from_this()));
}

void Session::OnRead(beast::error_code ec, size_t) {
  if (ec == http::error::end_of_stream || ec == net::error::operation_aborted ||
      ec == net::error::eof || ec == net::error::connection_reset) {
    CloseSocket();
    return;
  }
  if (ec == http::error::body_limit) {
    std::string body =
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the request body is too large: limit is )" +
        std::to_string(server_->options().max_body_bytes) +
        R"( bytes","reason":"RequestEntityTooLarge","code":413})";
    WriteSimple(413, std::move(body), true);
    return;
  }
  if (ec) {
    std::string body =
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"malformed HTTP request: )" +
        ec.message() + R"(","reason":"BadRequest","code":400})";
    WriteSimple(400, std::move(body), true);
    return;
  }
  auto raw = parser_->release();
  HttpRequest req;
  req.method = std::string(raw.method_string());
  req.target = std::string(raw.target());
  req.http_version = raw.version() == 10 ? 10 : 11;
  http_version_ = req.http_version;
  keep_alive_ = raw.keep_alive();
  std::string_view target = req.target;
  size_t qpos = target.find('?');
  req.path = PercentDecode(target.substr(0, qpos), false);
  if (qpos != std::string_view::npos) ParseQuery(target.substr(qpos + 1), req.query);
  for (const auto& field : raw) {
    std::string name(field.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto [it, inserted] = req.headers.emplace(name, std::string(field.value()));
    if (!inserted) it->second += "," + std::string(field.value());
  }
  req.body = std::move(raw.body());
  server_->handler()(std::move(req), std::make_shared<ExchangeImpl>(shared_from_this()));
}

void Session::WriteSimple(int status, std::string body, bool close_after) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  keep_alive_ = !close_after && keep_alive_;
  drain_after_write_ = close_after;
  Reply(std::move(r));
}

void Session::Reply(HttpResponse response) {
  net::post(stream_.get_executor(), [self = shared_from_this(), response = std::move(response)]() mutable {
    auto res = std::make_shared<http::response<http::string_body>>();
    res->result(static_cast<http::status>(response.status));
    res->version(self->http_version_ == 10 ? 10 : 11);
    res->set(http::field::content_type, response.content_type);
    res->set(http::field::cache_control, "no-cache, private");
    for (auto& [k, v] : response.headers) res->set(k, v);
    res->body() = std::move(response.body);
    res->keep_alive(self->keep_alive_);
    res->prepare_payload();
    http::async_write(self->stream_, *res, [self, res](beast::error_code ec, size_t) {
      if (!ec && self->drain_after_write_) {
        self->DrainAndClose();
        return;
      }
      if (ec || !self->keep_alive_) {
        self->CloseSocket();
        return;
      }
      self->DoRead();
    });
  });
}

std::shared_ptr<HttpStream> Session::StartStream(int status, const std::string& content_type) {
  bool chunked = http_version_ >= 11;
  auto stream = std::make_shared<StreamImpl>(shared_from_this(), chunked,
                                             server_->options().max_stream_backlog_bytes);
  std::string header = (chunked ? "HTTP/1.1 " : "HTTP/1.0 ") + std::to_string(status) + " " +
                       ReasonPhrase(status) + "\r\nContent-Type: " + content_type +
                       "\r\nCache-Control: no-cache, private\r\n";
  header += chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!chunked) keep_alive_ = false;
  net::post(stream_.get_executor(), [self = shared_from_this(), stream, header = std::move(header)]() mutable {
    self->active_stream_ = stream;
    OutChunk head;
    head.prefix = std::move(header);
    self->out_.push_back(std::move(head));
    self->PumpStream();
    self->WatchForDisconnect();
  });
  return stream;
}

void Session::WatchForDisconnect() {
  // A watching client sends nothing; any read completion means it left (or misbehaves).
  stream_.socket().async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t) {
    if (!self->active_stream_) return;
    if (ec) {
      self->CloseSocket();
      return;
    }
    self->WatchForDisconnect();
  });
}

void Session::QueueStreamChunk(std::shared_ptr<StreamImpl> stream, OutChunk chunk) {
  net::post(stream_.get_executor(), [self = shared_from_this(), stream, chunk = std::move(chunk)]() mutable {
    if (self->active_stream_ != stream || self->closed_) return;
    self->out_.push_back(std::move(chunk));
    self->PumpStream();
  });
}

void Session::FinishStream(std::shared_ptr<StreamImpl> stream) {
  net::post(stream_.get_executor(), [self = shared_from_this(), stream] {
    if (self->active_stream_ != stream || self->closed_) return;
    self->stream_finishing_ = true;
    if (stream->chunked_) {
      OutChunk end;
      end.prefix = "0\r\n\r\n";
      self->out_.push_back(std::move(end));
    }
    self->PumpStream();
  });
}

void Session::PumpStream() {
  if (writing_ || closed_) return;
  if (out_.empty()) {
    if (stream_finishing_) {
      auto stream = std::move(active_stream_);
      active_stream_.reset();
      stream_finishing_ = false;
      stream->MarkClosed();
      // A finished stream ends its connection (the client opens a new one), so the pending
      // disconnect read never races a new request read.
      CloseSocket();
    }
    return;
  }
  writing_ = true;
  // Gather everything queued into one write.
  auto batch = std::make_shared<std::vector<OutChunk>>();
  size_t bytes = 0;
  while (!out_.empty() && batch->size() < 256) {
    if (out_.front().counted) bytes += out_.front().size();
    batch->push_back(std::move(out_.front()));
    out_.pop_front();
  }
  std::vector<net::const_buffer> buffers;
  buffers.reserve(batch->size() * 3);
  for (auto& c : *batch) {
    if (!c.prefix.empty()) buffers.push_back(net::buffer(c.prefix));
    if (c.payload) buffers.push_back(net::buffer(*c.payload));
    if (!c.suffix.empty()) buffers.push_back(net::buffer(c.suffix));
  }
  net::async_write(stream_.socket(), buffers, [self = shared_from_this(), batch, bytes](beast::error_code ec, size_t) {
    self->writing_ = false;
    if (self->active_stream_) self->active_stream_->backlog_ -= bytes;
    if (ec) {
      self->CloseSocket();
      return;
    }
    self->PumpStream();
  });
}

void Session::DrainAndClose() {
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream_.expires_after(std::chrono::seconds(5));
  stream_.async_read_some(net::buffer(discard_), [self = shared_from_this()](beast::error_code ec, size_t n) {
    self->drained_ += n;
    if (ec || self->drained_ > (64u << 20)) {
      self->CloseSocket();
      return;
    }
    self->DrainAndClose();
  });
}

void Session::CloseSocket() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ec;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
  stream_.socket().close(ec);
  out_.clear();
  if (active_stream_) {
    auto stream = std::move(active_stream_);
    active_stream_.reset();
    stream->MarkClosed();
  }
}

bool StreamImpl::Send(std::shared_ptr<const std::string> chunk) {
  if (closed_.load() || close_requested_.load()) return false;
  OutChunk c;
  if (chunked_) {
    char hex[32];
    snprintf(hex, sizeof(hex), "%zx\r\n", chunk->size());
    c.prefix = hex;
    c.suffix = "\r\n";
  }
  c.payload = std::move(chunk);
  c.counted = true;
  size_t size = c.size();
  if (backlog_.fetch_add(size) + size > max_backlog_) {
    spdlog::warn("closing a stream whose client does not keep up ({} bytes queued)", backlog_.load());
    Close();
    return false;
  }
  session_->QueueStreamChunk(shared_from_this(), std::move(c));
  return true;
}

void StreamImpl::Close() {
  if (close_requested_.exchange(true)) return;
  session_->FinishStream(shared_from_this());
}

}  // namespace

std::string HttpRequest::Query(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

std::string HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%' && i + 2 < s.size()) {
      int hi = HexValue(s[i + 1]);
      int lo = HexValue(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
        continue;
      }
    }
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                      HttpHandler handler) {
  auto server = std::make_unique<ServerImpl>(options, std::move(handler));
  Status s = server->Listen();
  if (!s.ok()) return s;
  return std::unique_ptr<HttpServer>(std::move(server));
}

}  // namespace rc::apiserver
