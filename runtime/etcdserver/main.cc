// rc-etcd: serves an rc RocksDB store over the etcd v3 gRPC API.
//
//   rc-etcd --data-dir DIR [--listen 127.0.0.1:2379] [--no-sync] [--name rc]
//
// Prints "rc-etcd listening on HOST:PORT" once serving (the chosen port if PORT was 0);
// SIGTERM/SIGINT shut it down cleanly.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "rc/etcdserver/etcd_server.h"
#include "rc/store/store.h"

int main(int argc, char** argv) {
  CLI::App app{"rc-etcd: an etcd v3-compatible gRPC endpoint on an rc RocksDB store"};
  std::string data_dir;
  std::string listen = "127.0.0.1:2379";
  std::string name = "rc";
  bool no_sync = false;
  int workers = 0;
  app.add_option("--data-dir", data_dir, "RocksDB store directory (created if missing)")
      ->required();
  app.add_option("--listen", listen, "host:port to serve on (port 0 picks a free one)")
      ->capture_default_str();
  app.add_option("--name", name, "member name")->capture_default_str();
  app.add_option("--workers", workers, "threads for blocking store calls (0 = default)");
  app.add_flag("--no-sync", no_sync, "do not fsync the WAL before acknowledging writes");
  CLI11_PARSE(app, argc, argv);

  // Block the shutdown signals in every thread; the main thread waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  rc::store::RocksStoreOptions store_options;
  store_options.path = data_dir;
  store_options.sync = !no_sync;
  auto store = rc::store::OpenRocksStore(store_options);
  if (!store.ok()) {
    std::cerr << "rc-etcd: cannot open store " << data_dir << ": " << store.status().ToString()
              << "\n";
    return 1;
  }

  rc::etcdserver::EtcdServerOptions options;
  options.listen_address = listen;
  options.name = name;
  options.worker_threads = workers;
  auto server = rc::etcdserver::EtcdServer::Start(store->get(), options);
  if (!server.ok()) {
    std::cerr << "rc-etcd: " << server.status().ToString() << "\n";
    return 1;
  }
  std::string host = listen.substr(0, listen.rfind(':'));
  std::cout << "rc-etcd listening on " << host << ":" << (*server)->port() << std::endl;

  int sig = 0;
  sigwait(&signals, &sig);
  std::cout << "rc-etcd: received " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
            << ", shutting down" << std::endl;
  (*server)->Shutdown();
  server.value().reset();
  store.value().reset();
  return 0;
}
