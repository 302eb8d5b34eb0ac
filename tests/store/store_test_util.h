// Test helpers for Store tests: temp dirs, a collecting watch sink, status assertions.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <span>
#include <stdexcept>
#include <thread>
#include <mutex>
#include <string>
#include <vector>

#include "rc/store/store.h"

#define RC_TEST_CONCAT_(a, b) a##b
#define RC_TEST_CONCAT(a, b) RC_TEST_CONCAT_(a, b)

namespace rc::store::testing {

inline const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

}  // namespace rc::store::testing

#define ASSERT_OK(expr)                                                          \
  do {                                                                           \
    const auto& rc_test_v_ = (expr);                                             \
    ASSERT_TRUE(rc_test_v_.ok()) << ::rc::store::testing::StatusOf(rc_test_v_).ToString(); \
  } while (0)

#define EXPECT_OK(expr)                                                          \
  do {                                                                           \
    const auto& rc_test_v_ = (expr);                                             \
    EXPECT_TRUE(rc_test_v_.ok()) << ::rc::store::testing::StatusOf(rc_test_v_).ToString(); \
  } while (0)

#define EXPECT_CODE(expr, status_code)                                           \
  do {                                                                           \
    const auto& rc_test_v_ = (expr);                                             \
    EXPECT_EQ(::rc::store::testing::StatusOf(rc_test_v_).code(), (status_code))  \
        << ::rc::store::testing::StatusOf(rc_test_v_).ToString();                \
  } while (0)

#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)          \
  auto tmp = (expr);                                        \
  ASSERT_TRUE(tmp.ok()) << tmp.status().ToString();         \
  lhs = std::move(tmp).value()

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(RC_TEST_CONCAT(rc_test_r_, __LINE__), lhs, expr)

namespace rc::store::testing {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction.
class TempDir {
 public:
  TempDir() {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/rc_store_test_XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Records every event and every OnEvents call; thread-safe.
class CollectingSink : public WatchSink {
 public:
  void OnEvents(std::span<const Event> events) override {
    std::lock_guard<std::mutex> l(mu_);
    calls_.emplace_back(events.begin(), events.end());
    events_.insert(events_.end(), events.begin(), events.end());
    cv_.notify_all();
  }
  // Waits until at least n events arrived; false on timeout.
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> l(mu_);
    return cv_.wait_for(l, timeout, [&] { return events_.size() >= n; });
  }
  std::vector<Event> events() {
    std::lock_guard<std::mutex> l(mu_);
    return events_;
  }
  std::vector<std::vector<Event>> calls() {
    std::lock_guard<std::mutex> l(mu_);
    return calls_;
  }
  size_t size() {
    std::lock_guard<std::mutex> l(mu_);
    return events_.size();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::vector<std::vector<Event>> calls_;
};

inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

}  // namespace rc::store::testing
