// A blocking HTTP/1.1 client for tests (Boost.Beast), plus a raw streaming reader for watches.
#pragma once

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace rc::testing {

struct HttpReply {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

inline HttpReply HttpCall(uint16_t port, const std::string& method, const std::string& target,
                          const std::string& body = "",
                          const std::map<std::string, std::string>& headers = {}) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  boost::asio::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(std::chrono::seconds(30));
  stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, "127.0.0.1");
  bool has_ct = false;
  for (auto& [k, v] : headers) {
    req.set(k, v);
    if (k == "Content-Type") has_ct = true;
  }
  if (!body.empty() && !has_ct) req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  beast::error_code write_ec;
  http::write(stream, req, write_ec);  // a server may answer (413) before reading the whole body
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(256 << 20);
  beast::error_code ec;
  http::read(stream, buffer, parser, ec);
  HttpReply reply;
  if (ec) {
    reply.status = -1;
    reply.body = ec.message();
    return reply;
  }
  auto res = parser.release();
  reply.status = res.result_int();
  reply.body = res.body();
  for (auto& f : res) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    reply.headers[name] = std::string(f.value());
  }
  return reply;
}

// Sends a raw request and reads whatever arrives for up to `duration` (or until `stop_after`
// occurrences of `marker` are seen); returns the raw bytes (headers and framing included).
inline std::string RawStream(uint16_t port, const std::string& raw_request,
                             std::chrono::milliseconds duration, const std::string& marker = "",
                             int stop_after = 0,
                             const std::function<void()>& after_connect = nullptr) {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::socket sock(ioc);
  sock.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port));
  boost::asio::write(sock, boost::asio::buffer(raw_request));
  if (after_connect) after_connect();
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + duration;
  sock.non_blocking(true);
  char buf[65536];
  while (std::chrono::steady_clock::now() < deadline) {
    boost::system::error_code ec;
    size_t n = sock.read_some(boost::asio::buffer(buf), ec);
    if (ec == boost::asio::error::would_block) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    if (ec) break;  // closed by the server
    out.append(buf, n);
    if (stop_after > 0 && !marker.empty()) {
      int count = 0;
      for (size_t pos = out.find(marker); pos != std::string::npos; pos = out.find(marker, pos + 1)) ++count;
      if (count >= stop_after) break;
    }
  }
  return out;
}

}  // namespace rc::testing
