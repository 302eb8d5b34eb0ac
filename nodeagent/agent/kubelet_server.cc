#include "rc/nodeagent/kubelet_server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "rc/apimachinery/json.h"

namespace rc::nodeagent {

namespace am = rc::apimachinery;
using apiserver::HttpExchange;
using apiserver::HttpRequest;
using apiserver::HttpResponse;

Result<std::string> ReadLogTail(const std::string& path, int64_t tail_lines, int64_t limit_bytes, int64_t* end_offset) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *end_offset = 0;
      return std::string();
    }
    return Status::IOError(path + ": " + strerror(errno));
  }
  struct stat sb {};
  fstat(fd, &sb);
  int64_t size = sb.st_size;
  // Read backwards in blocks until enough newlines were seen.
  int64_t start = 0;
  if (tail_lines == 0) {
    start = size;
  } else if (tail_lines > 0) {
    // The N-th newline from the end (not counting the file's final one) precedes the tail.
    std::string block(64 * 1024, '\0');
    int64_t pos = size, newlines = 0;
    bool found = false;
    while (pos > 0 && !found) {
      int64_t n = std::min<int64_t>(pos, static_cast<int64_t>(block.size()));
      pos -= n;
      if (pread(fd, block.data(), static_cast<size_t>(n), pos) != n) break;
      for (int64_t i = n - 1; i >= 0; --i) {
        if (block[static_cast<size_t>(i)] != '\n' || pos + i == size - 1) continue;
        if (++newlines == tail_lines) {
          start = pos + i + 1;
          found = true;
          break;
        }
      }
    }
  }
  std::string out;
  int64_t want = size - start;
  if (limit_bytes > 0) want = std::min(want, limit_bytes);
  out.resize(static_cast<size_t>(want));
  ssize_t got = want > 0 ? pread(fd, out.data(), static_cast<size_t>(want), start) : 0;
  close(fd);
  if (got < 0) return Status::IOError(path + ": " + strerror(errno));
  out.resize(static_cast<size_t>(got));
  *end_offset = start + got;
  return out;
}

Result<std::unique_ptr<KubeletServer>> KubeletServer::Start(PodManager* pods, const std::string& address, uint16_t port) {
  std::unique_ptr<KubeletServer> s(new KubeletServer(pods));
  apiserver::HttpServerOptions o;
  o.address = address;
  o.port = port;
  o.io_threads = 1;
  KubeletServer* self = s.get();
  auto http = apiserver::HttpServer::Start(o, [self](HttpRequest req, std::shared_ptr<HttpExchange> ex) {
    self->Handle(std::move(req), std::move(ex));
  });
  if (!http.ok()) return http.status();
  s->http_ = std::move(*http);
  return s;
}

KubeletServer::~KubeletServer() { Shutdown(); }

uint16_t KubeletServer::port() const { return http_ ? http_->port() : 0; }

void KubeletServer::Shutdown() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    stop_ = true;
    cv_.wait_for(lock, std::chrono::seconds(3), [this] { return follows_ == 0; });
  }
  if (http_) http_->Shutdown();
  http_.reset();
}

namespace {

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  r.body = std::move(body);
  return r;
}

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  return parts;
}

}  // namespace

void KubeletServer::Handle(HttpRequest req, std::shared_ptr<HttpExchange> ex) {
  if (req.method != "GET") return ex->Reply(Text(405, "method not allowed\n"));
  if (req.path == "/healthz") return ex->Reply(Text(200, "ok"));
  PodManager* pods = pods_.load();
  if (!pods) return ex->Reply(Text(503, "the pod manager is starting\n"));
  if (req.path == "/pods" || req.path == "/pods/") {
    std::string body = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
    bool first = true;
    for (const auto& p : pods->Pods()) {
      if (!first) body += ",";
      first = false;
      body += am::ToJson(*p);
    }
    HttpResponse r;
    r.body = body + "]}";
    return ex->Reply(std::move(r));
  }
  auto parts = SplitPath(req.path);
  if (parts.size() == 4 && parts[0] == "containerLogs") {
    bool previous = req.Query("previous") == "true";
    bool follow = req.Query("follow") == "true";
    int64_t tail = req.HasQuery("tailLines") ? atoll(req.Query("tailLines").c_str()) : -1;
    int64_t limit = req.HasQuery("limitBytes") ? atoll(req.Query("limitBytes").c_str()) : 0;
    auto where = pods->LogFor(parts[1], parts[2], parts[3], previous);
    if (!where.ok()) {
      std::string msg = where.status().message();
      std::string body = R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":)" +
                         am::ToJson(rapidjson::Value(rapidjson::StringRef(msg.c_str()))) +
                         (where.status().IsNotFound() ? R"(,"reason":"NotFound","code":404})" : R"(,"reason":"BadRequest","code":400})");
      HttpResponse r;
      r.status = where.status().IsNotFound() ? 404 : 400;
      r.body = body;
      return ex->Reply(std::move(r));
    }
    int64_t end = 0;
    auto text = ReadLogTail(where->path, tail, limit, &end);
    if (!text.ok()) return ex->Reply(Text(500, text.status().message()));
    if (!follow || previous) return ex->Reply(Text(200, std::move(*text)));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return ex->Reply(Text(503, "shutting down"));
      ++follows_;
    }
    auto stream = ex->StartStream(200, "text/plain; charset=utf-8");
    if (!text->empty()) stream->Send(std::make_shared<const std::string>(std::move(*text)));
    std::string path = where->path;
    std::thread([this, pods, path, end, stream] {
      int64_t offset = end;
      std::string buf(64 * 1024, '\0');
      int idle_checks = 0;
      while (!stream->closed()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stop_) break;
        }
        int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
        ssize_t n = 0;
        if (fd >= 0) {
          n = pread(fd, buf.data(), buf.size(), offset);
          close(fd);
        }
        if (n > 0) {
          offset += n;
          idle_checks = 0;
          if (!stream->Send(std::make_shared<const std::string>(buf.substr(0, static_cast<size_t>(n))))) break;
          continue;
        }
        // Nothing new: the follow ends once the container attempt has exited (after a last read).
        if (++idle_checks % 10 == 0 && !pods->AttemptRunning(path)) {
          if (idle_checks >= 20) break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      stream->Close();
      std::lock_guard<std::mutex> lock(mu_);
      --follows_;
      cv_.notify_all();
    }).detach();
    return;
  }
  ex->Reply(Text(404, "404 page not found\n"));
}

}  // namespace rc::nodeagent
