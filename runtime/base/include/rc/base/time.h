// RFC 3339 timestamps as the Kubernetes API writes them (UTC, "2026-01-02T03:04:05Z").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace rc {

// Seconds since the epoch -> "2026-01-02T03:04:05Z".
std::string FormatRfc3339(int64_t unix_seconds);
// "2026-01-02T03:04:05Z", with an optional fraction (MicroTime) and a "Z" or "+hh:mm"/"-hh:mm"
// offset -> seconds since the epoch (the fraction dropped); nullopt if it does not parse.
std::optional<int64_t> ParseRfc3339(std::string_view text);
int64_t NowUnixSeconds();

}  // namespace rc
