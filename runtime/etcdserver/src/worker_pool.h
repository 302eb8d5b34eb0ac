// A fixed pool of threads running queued tasks (FIFO). Used for blocking store calls so that
// gRPC's callback threads never block.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace rc::etcdserver {

class WorkerPool {
 public:
  WorkerPool(int threads, std::string name);
  ~WorkerPool();  // Stop()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. After Stop() has begun, runs it on the calling thread instead (so a task's
  // completion duties, e.g. finishing an RPC, are never dropped).
  void Post(std::function<void()> task);

  // Runs every queued task, then joins the threads. Idempotent.
  void Stop();

 private:
  void Run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::string name_;
};

}  // namespace rc::etcdserver
