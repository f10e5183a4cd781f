#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/rfc3339.h"

namespace tasklease {
namespace {

struct LogState {
  std::mutex mu;
  std::shared_ptr<spdlog::logger> logger;  // guarded by mu
  std::string component;                   // guarded by mu
  std::atomic<int> threshold{static_cast<int>(LogLevel::kInfo)};
};

LogState& state() {
  static LogState s;
  return s;
}

// Called with s.mu held. The sink's own mutex keeps lines whole when threads log at once.
void ensureLogger(LogState& s) {
  if (s.logger) return;
  s.logger = std::make_shared<spdlog::logger>("tasklease",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  s.logger->set_pattern("%v");
  s.logger->set_level(spdlog::level::trace);
  s.logger->flush_on(spdlog::level::trace);
}

spdlog::level::level_enum toSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

const char* levelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void initLogging(std::string_view component, LogLevel level) {
  LogState& s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  ensureLogger(s);
  s.component = std::string(component);
  s.threshold.store(static_cast<int>(level));
}

bool parseLogLevel(std::string_view name, LogLevel* out) {
  for (LogLevel l : {LogLevel::kDebug, LogLevel::kInfo, LogLevel::kWarn, LogLevel::kError}) {
    if (name == levelName(l)) {
      *out = l;
      return true;
    }
  }
  return false;
}

bool logEnabled(LogLevel level) {
  return static_cast<int>(level) >= state().threshold.load(std::memory_order_relaxed);
}

void logAt(LogLevel level, std::string_view msg, const Json& fields) {
  LogState& s = state();
  if (!logEnabled(level)) return;
  std::shared_ptr<spdlog::logger> logger;
  Json line = Json::object();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    ensureLogger(s);
    logger = s.logger;
    line["component"] = s.component;
  }
  line["time"] = formatRfc3339(std::chrono::system_clock::now(), /*millis=*/true);
  line["level"] = levelName(level);
  line["msg"] = std::string(msg);
  if (fields.is_object()) {
    for (const auto& [k, v] : fields.items()) {
      if (k != "time" && k != "level" && k != "msg" && k != "component") line[k] = v;
    }
  }
  // Invalid UTF-8 from outside input is replaced rather than thrown on.
  logger->log(toSpd(level), "{}", line.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace tasklease
