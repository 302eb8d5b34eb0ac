// store_bench [--dir DIR] [--threads N] [--ops N] [--value BYTES] [--memory] [--nosync]
//             [--reads] [--watch]
// A quick load generator for the Store implementations (not a test): N threads issue Puts of
// unique keys (or Range reads of existing keys with --reads) and the tool prints throughput
// and latency percentiles.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "rc/store/rocks_store.h"
#include "rc/store/store.h"

namespace {
class CountingSink : public rc::store::WatchSink {
 public:
  void OnEvents(std::span<const rc::store::Event> events) override { n += events.size(); }
  std::atomic<size_t> n{0};
};
}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/rc_store_bench";
  int threads = 64, ops = 200, value = 256;
  bool memory = false, sync = true, reads = false, watch = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? argv[++i] : (fprintf(stderr, "missing value\n"), exit(2), ""); };
    if (a == "--dir") dir = next();
    else if (a == "--threads") threads = atoi(next());
    else if (a == "--ops") ops = atoi(next());
    else if (a == "--value") value = atoi(next());
    else if (a == "--memory") memory = true;
    else if (a == "--nosync") sync = false;
    else if (a == "--reads") reads = true;
    else if (a == "--watch") watch = true;
    else { fprintf(stderr, "unknown flag %s\n", a.c_str()); return 2; }
  }
  std::unique_ptr<rc::store::Store> store;
  if (memory) {
    store = rc::store::NewMemoryStore();
  } else {
    std::filesystem::remove_all(dir);
    rc::store::RocksStoreOptions o;
    o.path = dir;
    o.sync = sync;
    auto t0 = std::chrono::steady_clock::now();
    auto s = rc::store::OpenRocksStore(o);
    if (!s.ok()) { fprintf(stderr, "%s\n", s.status().ToString().c_str()); return 1; }
    store = std::move(s).value();
    printf("open: %.1f ms\n", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  CountingSink sink;
  std::unique_ptr<rc::store::WatchHandle> wh;
  if (watch) wh = std::move(store->Watch("", std::string(1, '\0'), 0, &sink)).value();
  const std::string val(value, 'x');
  if (reads) {
    for (int t = 0; t < threads; ++t)
      for (int i = 0; i < ops; ++i) (void)store->Put("k/" + std::to_string(t) + "/" + std::to_string(i), val);
  }
  std::vector<std::vector<double>> lat(threads);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ths;
  for (int t = 0; t < threads; ++t) {
    ths.emplace_back([&, t] {
      lat[t].reserve(ops);
      for (int i = 0; i < ops; ++i) {
        std::string key = "k/" + std::to_string(t) + "/" + std::to_string(i);
        auto t0 = std::chrono::steady_clock::now();
        bool ok = reads ? store->Range(key, {}).ok() : store->Put(key, val).ok();
        if (!ok) { fprintf(stderr, "op failed\n"); exit(1); }
        lat[t].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
      }
    });
  }
  for (auto& th : ths) th.join();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) { return all[std::min(all.size() - 1, size_t(p * all.size()))]; };
  printf("%s %zu ops in %.3f s: %.0f ops/s  p50 %.0f us  p99 %.0f us  max %.0f us\n",
         reads ? "reads" : "writes", all.size(), secs, all.size() / secs, pct(0.5), pct(0.99), all.back());
  if (!memory) {
    auto st = rc::store::GetRocksStoreStats(*store);
    printf("batches %ld  wal syncs %ld  requests %ld\n", st->write_batches, st->wal_syncs, st->write_requests);
  }
  if (watch) printf("watch events %zu\n", sink.n.load());
  auto t0 = std::chrono::steady_clock::now();
  wh.reset();
  store.reset();
  printf("close: %.1f ms\n", std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  if (!memory) std::filesystem::remove_all(dir);
  return 0;
}
