#include "kube/time.h"

#include <cstdio>
#include <ctime>

namespace tasklease::kube {

std::string formatMicroTime(std::chrono::system_clock::time_point t) {
  const auto sinceEpoch = t.time_since_epoch();
  const auto secs = std::chrono::floor<std::chrono::seconds>(sinceEpoch);
  const auto micros = std::chrono::duration_cast<std::chrono::microseconds>(sinceEpoch - secs);
  const auto tt = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros.count()));
  return buf;
}

}  // namespace tasklease::kube
