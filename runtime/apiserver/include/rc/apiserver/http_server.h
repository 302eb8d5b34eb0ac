// An asynchronous HTTP/1.x server on Boost.Beast: request/response plus long-lived streams
// (chunked for HTTP/1.1 clients, close-delimited for HTTP/1.0), so thousands of watches need
// no thread each.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "rc/base/status.h"

namespace rc::apiserver {

struct HttpRequest {
  std::string method;  // GET, POST, ...
  std::string target;  // raw request target (path + query)
  std::string path;    // percent-decoded path
  std::multimap<std::string, std::string> query;  // decoded query parameters
  std::map<std::string, std::string> headers;     // lower-cased names
  std::string body;
  int http_version = 11;  // 10 or 11

  // The first value of query parameter `name`, or `fallback`.
  std::string Query(const std::string& name, const std::string& fallback = "") const;
  bool HasQuery(const std::string& name) const { return query.count(name) > 0; }
  std::string Header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A long-lived response (a watch). Thread-safe. Chunks are written in Send order.
class HttpStream {
 public:
  virtual ~HttpStream() = default;
  // Queues `chunk`; returns false once the stream is closed (client gone, backlog too large).
  virtual bool Send(std::shared_ptr<const std::string> chunk) = 0;
  // Finishes the response (terminating chunk or connection close) after queued chunks.
  virtual void Close() = 0;
  virtual bool closed() const = 0;
  // Called once (on an I/O thread) when the stream closes for any reason.
  virtual void OnClose(std::function<void()> callback) = 0;
};

// One in-progress exchange. Exactly one of Reply or StartStream must be called, from any thread.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  virtual void Reply(HttpResponse response) = 0;
  virtual std::shared_ptr<HttpStream> StartStream(int status, const std::string& content_type) = 0;
};

using HttpHandler = std::function<void(HttpRequest, std::shared_ptr<HttpExchange>)>;

struct HttpServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;           // 0 = pick a free port
  int io_threads = 2;
  size_t max_body_bytes = 3 << 20;  // larger bodies get 413
  size_t max_stream_backlog_bytes = 64 << 20;  // a slower stream is closed
};

class HttpServer {
 public:
  // Binds and starts serving; `handler` runs on an I/O thread and must not block for long.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                   HttpHandler handler);
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  // Stops accepting, closes connections and streams, joins the I/O threads.
  virtual void Shutdown() = 0;
};

// Percent-decodes `s` ('+' stays '+', as Go's PathUnescape/QueryUnescape for paths).
std::string PercentDecode(std::string_view s, bool plus_is_space);

}  // namespace rc::apiserver
