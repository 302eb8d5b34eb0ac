#include "rc/base/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace rc {

std::string FormatRfc3339(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::optional<int64_t> ParseRfc3339(std::string_view text) {
  std::string s(text);
  std::tm tm{};
  if (s.size() < 19 || sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                              &tm.tm_min, &tm.tm_sec) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t t = timegm(&tm);
  // A numeric offset after the seconds (and fraction): local time = UTC + offset.
  size_t tz = s.find_first_of("Z+-", 19);
  if (tz != std::string::npos && s[tz] != 'Z') {
    int hh = 0, mm = 0;
    if (sscanf(s.c_str() + tz + 1, "%2d:%2d", &hh, &mm) == 2) t -= (s[tz] == '+' ? 1 : -1) * (hh * 3600 + mm * 60);
  }
  return t;
}

int64_t NowUnixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace rc
