#include "common/duration.h"

#include <cmath>
#include <cstdint>
#include <limits>

namespace tasklease {
namespace {

Status badDuration(std::string_view text, const std::string& why) {
  return invalidArgument(
      "invalid duration \"" + std::string(text) + "\": " + why +
      " (use a number with a unit: ns, us, ms, s, m, h, e.g. \"30m\" or \"1h30m\")");
}

// Unit length in nanoseconds, or 0 when the unit is unknown.
int64_t unitNanos(std::string_view unit) {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") return 1000;
  if (unit == "ms") return 1000 * 1000;
  if (unit == "s") return 1000LL * 1000 * 1000;
  if (unit == "m") return 60LL * 1000 * 1000 * 1000;
  if (unit == "h") return 3600LL * 1000 * 1000 * 1000;
  return 0;
}

bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace

StatusOr<std::chrono::nanoseconds> parseDuration(std::string_view text) {
  std::string_view s = text;
  if (s.empty()) return badDuration(text, "empty");
  bool negative = false;
  if (s.front() == '-' || s.front() == '+') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::nanoseconds(0);
  if (s.empty()) return badDuration(text, "no number");
  long double total = 0;
  while (!s.empty()) {
    size_t i = 0;
    while (i < s.size() && isDigit(s[i])) ++i;
    size_t intEnd = i;
    size_t fracEnd = i;
    if (i < s.size() && s[i] == '.') {
      ++i;
      while (i < s.size() && isDigit(s[i])) ++i;
      fracEnd = i;
    }
    if (fracEnd == 0 || (intEnd == 0 && fracEnd == 1))
      return badDuration(text, "expected a number");
    long double number = std::stold(std::string(s.substr(0, fracEnd)));
    size_t u = fracEnd;
    while (u < s.size() && !isDigit(s[u]) && s[u] != '.') ++u;
    std::string_view unit = s.substr(fracEnd, u - fracEnd);
    if (unit.empty()) return badDuration(text, "missing unit");
    int64_t scale = unitNanos(unit);
    if (scale == 0) return badDuration(text, "unknown unit \"" + std::string(unit) + "\"");
    total += number * static_cast<long double>(scale);
    if (total > static_cast<long double>(std::numeric_limits<int64_t>::max())) {
      return badDuration(text, "out of range");
    }
    s.remove_prefix(u);
  }
  auto ns = static_cast<int64_t>(std::llround(total));
  return std::chrono::nanoseconds(negative ? -ns : ns);
}

std::string formatDuration(std::chrono::seconds d) {
  int64_t secs = d.count();
  std::string out;
  if (secs < 0) {
    out = "-";
    secs = -secs;
  }
  int64_t h = secs / 3600;
  int64_t m = (secs % 3600) / 60;
  int64_t s = secs % 60;
  if (h > 0) out += std::to_string(h) + "h";
  if (h > 0 || m > 0) out += std::to_string(m) + "m";
  out += std::to_string(s) + "s";
  return out;
}

}  // namespace tasklease
