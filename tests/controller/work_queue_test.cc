// WorkQueue: client-go's contract (dedupe, one worker per key, re-queue of keys added while
// processed, back-off, delayed adds).
#include "rc/controller/work_queue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

namespace rc::controller {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueue, DeduplicatesQueuedKeys) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(*q.Get(), "a");
  EXPECT_EQ(*q.Get(), "b");
}

TEST(WorkQueue, KeyAddedWhileProcessingIsQueuedAgainOnDone) {
  WorkQueue q;
  q.Add("a");
  auto k = q.Get();
  ASSERT_EQ(*k, "a");
  q.Add("a");             // while processing: not handed out twice
  EXPECT_EQ(q.Len(), 0u);
  q.Add("a");             // and still only once
  q.Done("a");
  EXPECT_EQ(q.Len(), 1u);
  EXPECT_EQ(*q.Get(), "a");
  q.Done("a");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueue, NeverHandsOneKeyToTwoWorkers) {
  WorkQueue q;
  std::atomic<int> in_flight{0}, max_in_flight{0}, handled{0};
  std::vector<std::thread> workers;
  for (int i = 0; i < 4; ++i) {
    workers.emplace_back([&] {
      while (auto k = q.Get()) {
        int n = ++in_flight;
        int m = max_in_flight.load();
        while (n > m && !max_in_flight.compare_exchange_weak(m, n)) {}
        std::this_thread::sleep_for(100us);
        --in_flight;
        ++handled;
        q.Done(*k);
      }
    });
  }
  for (int i = 0; i < 2000; ++i) q.Add("same");
  std::this_thread::sleep_for(50ms);
  q.ShutDown();
  for (auto& t : workers) t.join();
  EXPECT_EQ(max_in_flight.load(), 1);
  EXPECT_GE(handled.load(), 1);
}

TEST(WorkQueue, BackOffGrowsExponentiallyAndForgetResets) {
  WorkQueue q(WorkQueue::Options{.base_delay = 20ms, .max_delay = 1000ms});
  auto t0 = std::chrono::steady_clock::now();
  q.AddRateLimited("k");  // 20 ms
  ASSERT_EQ(*q.Get(), "k");
  q.Done("k");
  auto first = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(first, 18ms);
  t0 = std::chrono::steady_clock::now();
  q.AddRateLimited("k");  // 40 ms
  ASSERT_EQ(*q.Get(), "k");
  q.Done("k");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 38ms);
  EXPECT_EQ(q.Failures("k"), 2);
  q.Forget("k");
  EXPECT_EQ(q.Failures("k"), 0);
}

TEST(WorkQueue, AddAfterKeepsTheEarliestAndDeliversInOrder) {
  WorkQueue q;
  q.AddAfter("late", 60ms);
  q.AddAfter("early", 10ms);
  q.AddAfter("late", 200ms);  // an earlier pending add wins
  EXPECT_EQ(q.DelayedLen(), 2u);
  EXPECT_EQ(*q.Get(), "early");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(*q.Get(), "late");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 150ms);
}

TEST(WorkQueue, ShutDownWakesWaiters) {
  WorkQueue q;
  std::thread t([&] { EXPECT_FALSE(q.Get().has_value()); });
  std::this_thread::sleep_for(20ms);
  q.ShutDown();
  t.join();
}

}  // namespace
}  // namespace rc::controller
