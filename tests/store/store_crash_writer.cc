// store_crash_writer DIR PREFIX [THREADS]: opens the RocksDB store in DIR and writes unique keys
// PREFIX/<thread>/<n> from several threads as fast as it can. After each Put returns it prints
// "<key> <revision>\n" to stdout with one write(2) (atomic on a pipe), so every printed line is
// an acknowledged write. Runs until killed. Used by rocks_store_test's crash test.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "rc/store/store.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s DIR PREFIX [THREADS]\n", argv[0]);
    return 2;
  }
  rc::store::RocksStoreOptions options;
  options.path = argv[1];
  const std::string prefix = argv[2];
  const int threads = argc > 3 ? atoi(argv[3]) : 8;
  auto store = rc::store::OpenRocksStore(options);
  if (!store.ok()) {
    fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  rc::store::Store* s = store->get();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([s, t, &prefix] {
      std::string value(100, 'v');
      for (long n = 0;; ++n) {
        std::string key = prefix + "/" + std::to_string(t) + "/" + std::to_string(n);
        value[0] = static_cast<char>('a' + n % 26);
        auto r = s->Put(key, value);
        if (!r.ok()) {
          fprintf(stderr, "put %s: %s\n", key.c_str(), r.status().ToString().c_str());
          _exit(1);
        }
        std::string line = key + " " + std::to_string(r->revision) + "\n";
        if (write(STDOUT_FILENO, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
          _exit(1);
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}
