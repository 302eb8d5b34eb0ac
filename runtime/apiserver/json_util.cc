#include "json_util.h"

#include "rc/base/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace rc::apiserver {

namespace {
std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()));
  return rng;
}
}  // namespace

std::string FormatTimestamp(int64_t unix_seconds) { return FormatRfc3339(unix_seconds); }

std::optional<int64_t> ParseTimestamp(std::string_view s) { return ParseRfc3339(s); }

int64_t NowSeconds() { return NowUnixSeconds(); }

std::string NewUid() {
  uint64_t a = Rng()(), b = Rng()();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buf[40];
  snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
           static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
           static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

std::string RandomNameSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out(5, ' ');
  for (auto& c : out) c = kAlphabet[Rng()() % (sizeof(kAlphabet) - 1)];
  return out;
}

std::string HumanDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  if (seconds < 120) return std::to_string(seconds) + "s";
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return std::to_string(minutes) + "m" + (s ? std::to_string(s) + "s" : "");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  int64_t hours = minutes / 60;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m ? std::to_string(m) + "m" : "");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  int64_t days = hours / 24;
  if (days < 8) {
    int64_t h = hours % 24;
    return std::to_string(days) + "d" + (h ? std::to_string(h) + "h" : "");
  }
  if (days < 365 * 2) return std::to_string(days) + "d";
  return std::to_string(days / 365) + "y";
}

}  // namespace rc::apiserver
