#pragma once
// RFC 3339 timestamps as Kubernetes writes them (metav1.Time "2026-01-02T15:04:05Z", MicroTime
// with a fraction), for status fields, IdentityException expiry and evidence records.
//
//   StatusOr<TimePoint> t = parseRfc3339(obj["spec"]["expiresAt"].get<std::string>());
//   std::string s = formatRfc3339(std::chrono::system_clock::now(), /*millis=*/true);

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tasklease {

using TimePoint = std::chrono::system_clock::time_point;

// Accepts "YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)"; 't' and 'z' as in RFC 3339.
// Errors quote the input and show the expected shape.
StatusOr<TimePoint> parseRfc3339(std::string_view text);

// UTC with a trailing Z; with millis, three fraction digits ("2026-01-02T15:04:05.123Z").
std::string formatRfc3339(TimePoint t, bool millis = false);

}  // namespace tasklease
