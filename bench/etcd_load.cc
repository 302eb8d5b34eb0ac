// etcd_load: a closed-loop load generator for the etcd v3 KV gRPC API.
//
//   etcd_load --endpoint 127.0.0.1:2379 --clients 64 --requests 20000
//             --key-size 32 --value-size 256 [--op put|range|txn] [--conns N] [--threads N]
//
// Each of --clients clients keeps exactly one request outstanding (closed loop) until --requests
// requests have completed in total (or --max-seconds passed). Clients are spread round-robin over
// --conns HTTP/2 connections (distinct gRPC channels that do not share a subchannel) and over
// --threads completion-queue threads (gRPC's async API, so the tool itself needs little CPU).
//
// Ops:
//   put    Put(key, value), a fresh key per request (key i = prefix + i) unless --key-space > 0,
//          in which case keys are drawn uniformly from [0, key-space) (overwrites).
//   txn    Kubernetes' create: Txn(If create_revision(key) == 0 Then Put(key) Else Range(key)).
//   range  Range(key) of one existing key; --key-space keys (default 1000) are written first
//          (not timed). --serializable makes it a serializable read (etcd: no ReadIndex).
//
// Values: random printable bytes (one value for all requests, like etcd's benchmark tool), or
// with --value-format configmap a ConfigMap JSON document per key ({"apiVersion":"v1",
// "kind":"ConfigMap","metadata":{"name":<last key segment>,"namespace":...},"data":{...}})
// padded to --value-size bytes — the bytes rc's API server stores for a ConfigMap.
//
// Output: human-readable lines, then one machine-readable line starting with "RESULT " followed
// by a JSON object (ops_per_sec, latencies in milliseconds, errors, ...). Exit status 1 if any
// request failed or fewer than --requests completed.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "etcdserverpb/rpc.grpc.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string endpoint = "127.0.0.1:2379";
  int clients = 1;
  int conns = 0;    // 0: ceil(clients / 16)
  int threads = 2;  // completion-queue threads
  int64_t requests = 10000;
  int key_size = 32;
  int value_size = 256;
  std::string op = "put";
  int64_t key_space = 0;  // 0: unique keys (put/txn); 1000 for range
  std::string key_prefix = "/bench/";
  std::string value_format = "raw";
  std::string ns = "default";
  bool serializable = false;
  double max_seconds = 300;
  double timeout_seconds = 10;
  std::string label;
  uint64_t seed = 1;
  bool quiet = false;
};

enum class Op { kPut, kRange, kTxn };

std::string MakeKey(const Config& c, int64_t i) {
  std::string n = std::to_string(i);
  std::string key = c.key_prefix;
  int pad = c.key_size - static_cast<int>(key.size() + n.size());
  if (pad > 0) key.append(static_cast<size_t>(pad), '0');
  key += n;
  return key;
}

std::string RandomPrintable(size_t n, uint64_t seed) {
  static const char kAlphabet[] =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::mt19937_64 rng(seed);
  std::string s(n, 'x');
  for (auto& ch : s) ch = kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

// A ConfigMap as rc's API server stores it (no resourceVersion), padded to `size` bytes with
// one data entry.
std::string ConfigMapValue(const Config& c, const std::string& key, const std::string& filler) {
  std::string name = key.substr(key.rfind('/') + 1);
  std::string head = R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":")" + name +
                     R"(","namespace":")" + c.ns + R"(","uid":"00000000-0000-4000-8000-)" +
                     [&] {
                       char buf[16];
                       std::snprintf(buf, sizeof buf, "%012llx",
                                     static_cast<unsigned long long>(std::hash<std::string>{}(key)) &
                                         0xffffffffffffULL);
                       return std::string(buf);
                     }() +
                     R"(","creationTimestamp":"2024-01-01T00:00:00Z"},"data":{"v":")";
  std::string tail = "\"}}";
  size_t used = head.size() + tail.size();
  size_t pad = static_cast<size_t>(c.value_size) > used ? c.value_size - used : 0;
  return head + filler.substr(0, std::min(pad, filler.size())) + tail;
}

struct Shared;

// One closed-loop client: one request in flight at a time.
class Client {
 public:
  Client(Shared* shared, etcdserverpb::KV::Stub* stub, grpc::CompletionQueue* cq, int thread,
         uint64_t seed)
      : shared_(shared), stub_(stub), cq_(cq), thread_(thread), rng_(seed) {}

  // Claims the next request index and starts it; returns false if the budget is spent.
  bool Start();
  // Called on the CQ thread when the in-flight call finished.
  void Done(bool ok);
  int thread() const { return thread_; }

 private:
  Shared* shared_;
  etcdserverpb::KV::Stub* stub_;
  grpc::CompletionQueue* cq_;
  int thread_;
  std::mt19937_64 rng_;
  std::unique_ptr<grpc::ClientContext> ctx_;
  grpc::Status status_;
  etcdserverpb::PutResponse put_resp_;
  etcdserverpb::RangeResponse range_resp_;
  etcdserverpb::TxnResponse txn_resp_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::PutResponse>> put_rpc_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::RangeResponse>> range_rpc_;
  std::unique_ptr<grpc::ClientAsyncResponseReader<etcdserverpb::TxnResponse>> txn_rpc_;
  Clock::time_point started_;
};

struct Shared {
  Config cfg;
  Op op = Op::kPut;
  int64_t budget = 0;         // requests in this phase
  int64_t key_space = 0;      // 0: key = request index
  bool timed = true;
  std::string raw_value;
  std::string filler;
  Clock::time_point deadline;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> completed{0};
  std::atomic<int64_t> errors{0};
  std::atomic<int> active{0};
  std::vector<std::unique_ptr<grpc::CompletionQueue>> cqs;
  std::vector<std::vector<uint32_t>> latencies_us;  // one vector per CQ thread
  std::mutex err_mu;
  std::map<std::string, int64_t> error_kinds;
  int64_t txn_failed = 0;  // txns whose compare failed (key already existed)
  std::atomic<int64_t> txn_failed_atomic{0};

  std::string KeyFor(int64_t index, std::mt19937_64& rng) const {
    int64_t k = key_space > 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(key_space)) : index;
    return MakeKey(cfg, k);
  }
  std::string ValueFor(const std::string& key) const {
    if (cfg.value_format == "configmap") return ConfigMapValue(cfg, key, filler);
    return raw_value;
  }
  void Finished() {
    if (active.fetch_sub(1) == 1) {
      for (auto& cq : cqs) cq->Shutdown();
    }
  }
};

bool Client::Start() {
  if (Clock::now() >= shared_->deadline) return false;
  int64_t index = shared_->next.fetch_add(1);
  if (index >= shared_->budget) return false;
  std::string key = shared_->KeyFor(index, rng_);
  ctx_ = std::make_unique<grpc::ClientContext>();
  ctx_->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(
                                        static_cast<int64_t>(shared_->cfg.timeout_seconds * 1000)));
  started_ = Clock::now();
  switch (shared_->op) {
    case Op::kPut: {
      etcdserverpb::PutRequest req;
      req.set_key(key);
      req.set_value(shared_->ValueFor(key));
      put_rpc_ = stub_->PrepareAsyncPut(ctx_.get(), req, cq_);
      put_rpc_->StartCall();
      put_rpc_->Finish(&put_resp_, &status_, this);
      break;
    }
    case Op::kRange: {
      etcdserverpb::RangeRequest req;
      req.set_key(key);
      req.set_serializable(shared_->cfg.serializable);
      range_rpc_ = stub_->PrepareAsyncRange(ctx_.get(), req, cq_);
      range_rpc_->StartCall();
      range_rpc_->Finish(&range_resp_, &status_, this);
      break;
    }
    case Op::kTxn: {
      etcdserverpb::TxnRequest req;
      auto* cmp = req.add_compare();
      cmp->set_key(key);
      cmp->set_target(etcdserverpb::Compare::CREATE);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      cmp->set_create_revision(0);
      auto* put = req.add_success()->mutable_request_put();
      put->set_key(key);
      put->set_value(shared_->ValueFor(key));
      req.add_failure()->mutable_request_range()->set_key(key);
      txn_rpc_ = stub_->PrepareAsyncTxn(ctx_.get(), req, cq_);
      txn_rpc_->StartCall();
      txn_rpc_->Finish(&txn_resp_, &status_, this);
      break;
    }
  }
  return true;
}

void Client::Done(bool ok) {
  auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_);
  if (!ok || !status_.ok()) {
    shared_->errors.fetch_add(1);
    std::lock_guard<std::mutex> lock(shared_->err_mu);
    std::string kind = ok ? std::to_string(status_.error_code()) + ": " + status_.error_message()
                          : "completion queue not ok";
    shared_->error_kinds[kind.substr(0, 200)]++;
  } else {
    if (shared_->op == Op::kTxn && !txn_resp_.succeeded()) shared_->txn_failed_atomic.fetch_add(1);
    shared_->completed.fetch_add(1);
    shared_->latencies_us[thread_].push_back(
        static_cast<uint32_t>(std::min<int64_t>(elapsed.count(), UINT32_MAX)));
  }
  if (!Start()) shared_->Finished();
}

struct PhaseResult {
  double seconds = 0;
  int64_t completed = 0;
  int64_t errors = 0;
  int64_t txn_failed = 0;
  std::vector<uint32_t> lat;  // sorted, microseconds
  std::map<std::string, int64_t> error_kinds;
};

PhaseResult RunPhase(const Config& cfg, Op op, int64_t budget, int64_t key_space,
                     const std::vector<std::unique_ptr<etcdserverpb::KV::Stub>>& stubs) {
  Shared shared;
  shared.cfg = cfg;
  shared.op = op;
  shared.budget = budget;
  shared.key_space = key_space;
  shared.raw_value = RandomPrintable(static_cast<size_t>(cfg.value_size), cfg.seed);
  shared.filler = RandomPrintable(static_cast<size_t>(std::max(cfg.value_size, 1)), cfg.seed + 7);
  int nthreads = std::max(1, std::min(cfg.threads, cfg.clients));
  for (int t = 0; t < nthreads; ++t) shared.cqs.push_back(std::make_unique<grpc::CompletionQueue>());
  shared.latencies_us.resize(static_cast<size_t>(nthreads));
  for (auto& v : shared.latencies_us) v.reserve(static_cast<size_t>(budget / nthreads + 16));

  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < cfg.clients; ++i) {
    int t = i % nthreads;
    clients.push_back(std::make_unique<Client>(&shared, stubs[static_cast<size_t>(i) % stubs.size()].get(),
                                               shared.cqs[static_cast<size_t>(t)].get(), t,
                                               cfg.seed * 1000003ULL + static_cast<uint64_t>(i)));
  }
  auto start = Clock::now();
  shared.deadline = start + std::chrono::milliseconds(static_cast<int64_t>(cfg.max_seconds * 1000));
  shared.active = cfg.clients;
  int started = 0;
  for (auto& c : clients) {
    if (c->Start()) {
      ++started;
    } else {
      shared.Finished();
    }
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < nthreads; ++t) {
    threads.emplace_back([&shared, t] {
      void* tag = nullptr;
      bool ok = false;
      while (shared.cqs[static_cast<size_t>(t)]->Next(&tag, &ok)) {
        static_cast<Client*>(tag)->Done(ok);
      }
    });
  }
  if (started == 0) {
    // Nothing in flight: Finished() already shut the queues down.
  }
  for (auto& th : threads) th.join();
  auto end = Clock::now();

  PhaseResult r;
  r.seconds = std::chrono::duration<double>(end - start).count();
  r.completed = shared.completed.load();
  r.errors = shared.errors.load();
  r.txn_failed = shared.txn_failed_atomic.load();
  for (auto& v : shared.latencies_us) r.lat.insert(r.lat.end(), v.begin(), v.end());
  std::sort(r.lat.begin(), r.lat.end());
  r.error_kinds = shared.error_kinds;
  return r;
}

double Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t idx = static_cast<size_t>(p / 100.0 * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(idx, sorted.size() - 1)] / 1000.0;
}

std::string JsonEscape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{"etcd_load: closed-loop load on the etcd v3 KV gRPC API"};
  app.add_option("--endpoint", cfg.endpoint, "host:port of the etcd v3 gRPC endpoint")->capture_default_str();
  app.add_option("--clients", cfg.clients, "concurrent clients (one request in flight each)")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.add_option("--conns", cfg.conns, "gRPC connections (0: one per 16 clients)")->capture_default_str();
  app.add_option("--threads", cfg.threads, "completion-queue threads")->check(CLI::Range(1, 64))->capture_default_str();
  app.add_option("--requests", cfg.requests, "requests in total")->check(CLI::Range(int64_t{1}, int64_t{100000000}))
      ->capture_default_str();
  app.add_option("--key-size", cfg.key_size, "key bytes (prefix + zero-padded index)")->capture_default_str();
  app.add_option("--value-size", cfg.value_size, "value bytes")->check(CLI::Range(0, 1 << 20))->capture_default_str();
  app.add_option("--op", cfg.op, "put, range or txn")->check(CLI::IsMember({"put", "range", "txn"}))
      ->capture_default_str();
  app.add_option("--key-space", cfg.key_space,
                 "distinct keys; 0 = a new key per request (put/txn), 1000 for range")
      ->capture_default_str();
  app.add_option("--key-prefix", cfg.key_prefix, "key prefix")->capture_default_str();
  app.add_option("--value-format", cfg.value_format, "raw or configmap")
      ->check(CLI::IsMember({"raw", "configmap"}))->capture_default_str();
  app.add_option("--namespace", cfg.ns, "metadata.namespace for --value-format configmap")->capture_default_str();
  app.add_flag("--serializable", cfg.serializable, "range: serializable reads");
  app.add_option("--max-seconds", cfg.max_seconds, "stop after this long even if requests remain")
      ->capture_default_str();
  app.add_option("--timeout", cfg.timeout_seconds, "per-request deadline, seconds")->capture_default_str();
  app.add_option("--label", cfg.label, "free text copied into the RESULT line");
  app.add_option("--seed", cfg.seed, "random seed")->capture_default_str();
  app.add_flag("--quiet", cfg.quiet, "print only the RESULT line");
  CLI11_PARSE(app, argc, argv);

  Op op = cfg.op == "put" ? Op::kPut : cfg.op == "range" ? Op::kRange : Op::kTxn;
  if (op == Op::kRange && cfg.key_space == 0) cfg.key_space = 1000;
  int conns = cfg.conns > 0 ? cfg.conns : (cfg.clients + 15) / 16;
  conns = std::max(1, std::min(conns, cfg.clients));

  // Distinct channel args per channel: gRPC would otherwise share one subchannel (one TCP
  // connection) between channels with identical arguments.
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<etcdserverpb::KV::Stub>> stubs;
  for (int i = 0; i < conns; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("rc.bench.channel", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 << 20);
    auto ch = grpc::CreateCustomChannel(cfg.endpoint, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      std::cerr << "etcd_load: cannot connect to " << cfg.endpoint << "\n";
      return 2;
    }
    stubs.push_back(etcdserverpb::KV::NewStub(ch));
    channels.push_back(std::move(ch));
  }

  if (op == Op::kRange) {
    // Write the keys the reads will find (untimed).
    Config fill = cfg;
    fill.clients = std::min(cfg.clients, 64);
    PhaseResult f = RunPhase(fill, Op::kPut, cfg.key_space, 0, stubs);
    if (f.errors > 0 || f.completed < cfg.key_space) {
      std::cerr << "etcd_load: prefill failed (" << f.completed << " of " << cfg.key_space << " puts, "
                << f.errors << " errors)\n";
      for (auto& [k, n] : f.error_kinds) std::cerr << "  " << n << "x " << k << "\n";
      return 1;
    }
  }

  PhaseResult r = RunPhase(cfg, op, cfg.requests, op == Op::kRange ? cfg.key_space : cfg.key_space, stubs);
  double ops = r.seconds > 0 ? static_cast<double>(r.completed) / r.seconds : 0;
  double mean = 0;
  for (auto v : r.lat) mean += v;
  mean = r.lat.empty() ? 0 : mean / static_cast<double>(r.lat.size()) / 1000.0;
  double p50 = Percentile(r.lat, 50), p90 = Percentile(r.lat, 90), p99 = Percentile(r.lat, 99),
         p999 = Percentile(r.lat, 99.9);
  double mx = r.lat.empty() ? 0 : r.lat.back() / 1000.0;
  double mn = r.lat.empty() ? 0 : r.lat.front() / 1000.0;

  if (!cfg.quiet) {
    std::printf("endpoint %s  op %s  clients %d  conns %d  threads %d  key %dB  value %dB (%s)\n",
                cfg.endpoint.c_str(), cfg.op.c_str(), cfg.clients, conns, std::max(1, std::min(cfg.threads, cfg.clients)),
                cfg.key_size, cfg.value_size, cfg.value_format.c_str());
    std::printf("completed %" PRId64 " of %" PRId64 " in %.3f s, errors %" PRId64 "\n", r.completed,
                cfg.requests, r.seconds, r.errors);
    std::printf("throughput %.1f ops/s\n", ops);
    std::printf("latency ms: min %.3f  mean %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", mn, mean,
                p50, p90, p99, p999, mx);
    if (op == Op::kTxn) std::printf("txn compare failed (key existed): %" PRId64 "\n", r.txn_failed);
    for (auto& [k, n] : r.error_kinds) std::printf("error %" PRId64 "x: %s\n", n, k.c_str());
  }
  std::ostringstream js;
  js.setf(std::ios::fixed);
  js.precision(3);
  js << "{\"tool\":\"etcd_load\",\"label\":\"" << JsonEscape(cfg.label) << "\",\"endpoint\":\""
     << JsonEscape(cfg.endpoint) << "\",\"op\":\"" << cfg.op << "\",\"clients\":" << cfg.clients
     << ",\"conns\":" << conns << ",\"key_size\":" << cfg.key_size << ",\"value_size\":" << cfg.value_size
     << ",\"requests\":" << cfg.requests << ",\"completed\":" << r.completed << ",\"errors\":" << r.errors
     << ",\"seconds\":" << r.seconds << ",\"ops_per_sec\":" << ops << ",\"lat_ms\":{\"min\":" << mn
     << ",\"mean\":" << mean << ",\"p50\":" << p50 << ",\"p90\":" << p90 << ",\"p99\":" << p99
     << ",\"p999\":" << p999 << ",\"max\":" << mx << "}}";
  std::printf("RESULT %s\n", js.str().c_str());
  std::fflush(stdout);
  return (r.errors > 0 || r.completed < cfg.requests) ? 1 : 0;
}
