// A rate-limited work queue with client-go's contract: a key is queued at most once (dirty set),
// never handed to two workers at once (processing set: a key added while processed is queued again
// when Done), per-key exponential back-off for failures, and delayed adds (requeue after).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace rc::controller {

class WorkQueue {
 public:
  struct Options {
    std::chrono::milliseconds base_delay{5};
    std::chrono::milliseconds max_delay{60000};
  };
  WorkQueue();
  explicit WorkQueue(Options options);
  ~WorkQueue();

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  // Add after the key's back-off (base * 2^failures, capped), counting one more failure.
  void AddRateLimited(const std::string& key);
  // Clears the key's failure count.
  void Forget(const std::string& key);
  int Failures(const std::string& key) const;

  // Blocks for the next key; nullopt after ShutDown.
  std::optional<std::string> Get();
  void Done(const std::string& key);
  void ShutDown();

  size_t Len() const;
  size_t DelayedLen() const;

 private:
  void DelayLoop();
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable delay_cv_;
  std::deque<std::string> queue_;
  std::unordered_set<std::string> dirty_;
  std::unordered_set<std::string> processing_;
  std::unordered_map<std::string, int> failures_;
  using Delayed = std::multimap<std::chrono::steady_clock::time_point, std::string>;
  Delayed delayed_;
  std::unordered_map<std::string, Delayed::iterator> delayed_by_key_;  // at most one per key
  bool shutdown_ = false;
  std::thread delay_thread_;
};

}  // namespace rc::controller
