// The REST client components use to talk to the API server (components talk only to the API
// server): plain HTTP/1.1 with keep-alive connections, JSON bodies, Kubernetes error mapping, and
// streaming watches.
//
//   auto client = RestClient::Create("http://127.0.0.1:6443");
//   auto r = (*client)->Do("GET", "/api/v1/namespaces/default/pods");  // Result<HttpReply>
//   Status s = ToStatus(*r);                 // 404 -> kNotFound, 409 -> kConflict / kAlreadyExists...
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "rc/base/status.h"

namespace rc::client {

struct HttpReply {
  int status = 0;
  std::string body;
};

// Maps an API server reply to a Status: 2xx ok; 404 NotFound; 409 Conflict (AlreadyExists when the
// Status reason says so); 410 Compacted (Gone: the resourceVersion is too old); 400/422
// InvalidArgument; 429 ResourceExhausted; 5xx and anything else Unavailable. The message is the
// Status object's message when the body has one.
Status ToStatus(const HttpReply& reply);

// A watch stream in progress; Cancel() from any thread ends it (the reading thread returns).
class WatchHandle {
 public:
  void Cancel();
  bool cancelled() const { return cancelled_.load(); }

 private:
  friend class RestClient;
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  int fd_ = -1;
};

class RestClient {
 public:
  struct Options {
    std::string user_agent = "rc";
    int connect_timeout_ms = 5000;
    int request_timeout_ms = 30000;  // per request (not watches)
    size_t max_idle_connections = 64;
    int watch_header_timeout_ms = 10000;  // a watch's response headers must arrive within this
    int watch_idle_timeout_ms = 150000;   // a watch body silent this long is dead (bookmarks: 60 s)
  };
  // base_url: "http://host:port" (https is not supported yet: the API server is plain HTTP).
  static Result<std::unique_ptr<RestClient>> Create(const std::string& base_url);
  static Result<std::unique_ptr<RestClient>> Create(const std::string& base_url, Options options);
  ~RestClient();

  // One request over a pooled keep-alive connection (sent again on a fresh connection only when a
  // reused one turns out closed before any reply byte). Transport errors and a reply not complete
  // within timeout_ms (<= 0: Options::request_timeout_ms) are kUnavailable; HTTP errors are
  // replies (see ToStatus). Thread-safe.
  Result<HttpReply> Do(const std::string& method, const std::string& target, const std::string& body = "",
                       const std::string& content_type = "application/json", int timeout_ms = 0);

  // A streaming GET (watch): calls on_line with each newline-terminated line of the body until the
  // body ends, on_line returns false, or handle->Cancel(). Returns ok when the stream ended
  // normally or was cancelled; a non-2xx reply is returned as its Status.
  Status Stream(const std::string& target, const std::function<bool(std::string_view line)>& on_line,
                WatchHandle* handle);

  // A streaming GET of bytes (a followed log): on_headers once a 2xx reply's headers are in, then
  // on_data with the body's bytes as they arrive, unchanged, until the body ends, on_data returns
  // false, or handle->Cancel(). *complete (may be null) tells whether the body ended normally.
  // Statuses as Stream's.
  Status StreamBytes(const std::string& target, const std::function<void()>& on_headers,
                     const std::function<bool(std::string_view data)>& on_data, WatchHandle* handle,
                     bool* complete = nullptr);

  const std::string& host() const { return host_; }
  const std::string& port() const { return port_; }

 private:
  struct Connection;
  RestClient(std::string host, std::string port, Options options);
  std::unique_ptr<Connection> Acquire();
  void Release(std::unique_ptr<Connection> c);
  Result<std::unique_ptr<Connection>> Connect();

  std::string host_, port_;
  Options options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
};

// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);

}  // namespace rc::client
