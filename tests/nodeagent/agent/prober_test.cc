// Probe parsing and the httpGet / tcpSocket probes against real local servers (plain HTTP and
// TLS with a self-signed certificate made in the test), in the test's own network namespace.
#include "rc/nodeagent/prober.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <rapidjson/document.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <string>
#include <thread>

namespace rc::nodeagent {
namespace {

namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

rapidjson::Document Json(const std::string& text) {
  rapidjson::Document d;
  d.Parse(text.c_str());
  EXPECT_FALSE(d.HasParseError()) << text;
  return d;
}

Result<ProbeSpec> Parse(const std::string& probe, const std::string& container = "{}") {
  auto p = Json(probe);
  auto c = Json(container);
  return ParseProbe(&p, c);
}

TEST(ProbeParseTest, DefaultsAndPorts) {
  auto spec = Parse(R"({"httpGet":{"port":8080,"path":"healthz"}})");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  EXPECT_EQ(spec->kind, ProbeSpec::Kind::kHttpGet);
  EXPECT_EQ(spec->port, 8080);
  EXPECT_EQ(spec->path, "/healthz");
  EXPECT_EQ(spec->scheme, "HTTP");
  EXPECT_EQ(spec->period_seconds, 10);
  EXPECT_EQ(spec->timeout_seconds, 1);
  EXPECT_EQ(spec->failure_threshold, 3);

  auto named = Parse(R"({"tcpSocket":{"port":"web"}})", R"({"ports":[{"name":"web","containerPort":81}]})");
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->port, 81);
  auto numeric = Parse(R"({"tcpSocket":{"port":"8443"}})");
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(numeric->port, 8443);
}

TEST(ProbeParseTest, BadProbesAreErrorsNotCrashes) {
  auto unknown = Parse(R"({"tcpSocket":{"port":"metrics"}})");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("not a named port"), std::string::npos);
  // A digit string past int range used to throw out of std::stoi and take the agent down.
  auto huge = Parse(R"({"tcpSocket":{"port":"99999999999999999999"}})");
  ASSERT_FALSE(huge.ok());
  EXPECT_NE(huge.status().message().find("out of range"), std::string::npos);
  EXPECT_FALSE(Parse(R"({"tcpSocket":{"port":70000}})").ok());
  EXPECT_FALSE(Parse(R"({"tcpSocket":{"port":0}})").ok());
  auto scheme = Parse(R"({"httpGet":{"port":80,"scheme":"FTP"}})");
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.status().message().find("FTP"), std::string::npos);
  EXPECT_FALSE(Parse(R"({"exec":{"command":[]}})").ok());
  EXPECT_FALSE(Parse(R"({"periodSeconds":3})").ok());
}

// A self-signed certificate and key for the TLS server.
struct SelfSigned {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
  SelfSigned() {
    key = EVP_EC_gen("prime256v1");
    cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("probe-test"), -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
  }
  ~SelfSigned() {
    X509_free(cert);
    EVP_PKEY_free(key);
  }
};

// Serves GET /ok with 200, /redirect with 302, anything else with 500, plain or over TLS, on
// 127.0.0.1 and an ephemeral port. Remembers the last User-Agent and X-Probe header it saw.
class ProbeServer {
 public:
  explicit ProbeServer(bool tls) : tls_(tls), acceptor_(io_, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0)) {
    if (tls_) {
      context_ = std::make_unique<ssl::context>(ssl::context::tls_server);
      SSL_CTX_use_certificate(context_->native_handle(), cert_.cert);
      SSL_CTX_use_PrivateKey(context_->native_handle(), cert_.key);
    }
    thread_ = std::thread([this] { Serve(); });
  }
  ~ProbeServer() {
    stop_ = true;
    boost::system::error_code ec;
    // Wake the blocking accept with a connection of our own.
    tcp::socket poke(io_);
    poke.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port()), ec);
    thread_.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  std::string last_header() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_header_;
  }

 private:
  template <typename Stream>
  void Answer(Stream& stream) {
    boost::beast::flat_buffer buffer;
    http::request<http::string_body> req;
    boost::system::error_code ec;
    http::read(stream, buffer, req, ec);
    if (ec) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_header_ = std::string(req[http::field::user_agent]) + "|" + std::string(req["X-Probe"]);
    }
    http::status status = req.target() == "/ok"         ? http::status::ok
                          : req.target() == "/redirect" ? http::status::found
                                                        : http::status::internal_server_error;
    http::response<http::string_body> res(status, 11);
    res.body() = "probe";
    res.prepare_payload();
    http::write(stream, res, ec);
  }
  void Serve() {
    while (!stop_) {
      boost::system::error_code ec;
      tcp::socket sock(io_);
      acceptor_.accept(sock, ec);
      if (ec || stop_) return;
      if (!tls_) {
        Answer(sock);
        continue;
      }
      ssl::stream<tcp::socket> stream(std::move(sock), *context_);
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) Answer(stream);
    }
  }

  bool tls_;
  SelfSigned cert_;
  std::unique_ptr<ssl::context> context_;
  boost::asio::io_context io_;
  tcp::acceptor acceptor_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string last_header_;
};

ProbeSpec HttpProbe(int port, const std::string& path, const std::string& scheme = "HTTP") {
  ProbeSpec spec;
  spec.kind = ProbeSpec::Kind::kHttpGet;
  spec.port = port;
  spec.path = path;
  spec.scheme = scheme;
  spec.timeout_seconds = 2;
  spec.http_headers.emplace_back("X-Probe", "yes");
  return spec;
}

TEST(ProbeRunTest, HttpGetStatusCodes) {
  ProbeServer server(/*tls=*/false);
  auto ok = RunProbe(HttpProbe(server.port(), "/ok"), nullptr, "", "127.0.0.1", "");
  EXPECT_TRUE(ok.success) << ok.message;
  EXPECT_EQ(server.last_header(), "kube-probe/1.31|yes");
  EXPECT_TRUE(RunProbe(HttpProbe(server.port(), "/redirect"), nullptr, "", "127.0.0.1", "").success);
  auto bad = RunProbe(HttpProbe(server.port(), "/broken"), nullptr, "", "127.0.0.1", "");
  EXPECT_FALSE(bad.success);
  EXPECT_EQ(bad.message, "HTTP probe failed with statuscode: 500");
}

TEST(ProbeRunTest, HttpsProbeSpeaksTlsWithoutVerifying) {
  ProbeServer server(/*tls=*/true);
  auto ok = RunProbe(HttpProbe(server.port(), "/ok", "HTTPS"), nullptr, "", "127.0.0.1", "");
  EXPECT_TRUE(ok.success) << ok.message;
  EXPECT_EQ(server.last_header(), "kube-probe/1.31|yes");
  auto bad = RunProbe(HttpProbe(server.port(), "/broken", "HTTPS"), nullptr, "", "127.0.0.1", "");
  EXPECT_FALSE(bad.success);
  EXPECT_EQ(bad.message, "HTTP probe failed with statuscode: 500");
  // Plain HTTP against the TLS port fails (the server reads garbage), and does not hang.
  EXPECT_FALSE(RunProbe(HttpProbe(server.port(), "/ok"), nullptr, "", "127.0.0.1", "").success);
}

// "localhost" resolves from /etc/hosts: no query leaves the machine.
TEST(ProbeRunTest, ANamedHostIsResolved) {
  ProbeServer plain(/*tls=*/false), tls(/*tls=*/true);
  ProbeSpec spec = HttpProbe(plain.port(), "/ok");
  spec.host = "localhost";
  auto r = RunProbe(spec, nullptr, "", "", "");
  EXPECT_TRUE(r.success) << r.message;
  spec = HttpProbe(tls.port(), "/ok", "HTTPS");
  spec.host = "localhost";
  r = RunProbe(spec, nullptr, "", "", "");
  EXPECT_TRUE(r.success) << r.message;
  // (No lookup of a name that does not exist: it would ask the machine's DNS servers.)
}

TEST(ProbeRunTest, HttpsAgainstPlainServerFailsWithReason) {
  ProbeServer server(/*tls=*/false);
  auto r = RunProbe(HttpProbe(server.port(), "/ok", "HTTPS"), nullptr, "", "127.0.0.1", "");
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.message.find("https://127.0.0.1:" + std::to_string(server.port()) + "/ok"), std::string::npos)
      << r.message;
}

TEST(ProbeRunTest, TcpSocketOpenAndClosedPorts) {
  ProbeServer server(/*tls=*/false);
  ProbeSpec spec;
  spec.kind = ProbeSpec::Kind::kTcpSocket;
  spec.port = server.port();
  EXPECT_TRUE(RunProbe(spec, nullptr, "", "127.0.0.1", "").success);
  // A port nobody listens on: bind one, note it, close it.
  int closed_port;
  {
    boost::asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    closed_port = a.local_endpoint().port();
  }
  spec.port = closed_port;
  auto r = RunProbe(spec, nullptr, "", "127.0.0.1", "");
  EXPECT_FALSE(r.success);
  EXPECT_NE(r.message.find("dial tcp 127.0.0.1:" + std::to_string(closed_port)), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("refused"), std::string::npos) << r.message;
}

}  // namespace
}  // namespace rc::nodeagent
