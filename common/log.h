#pragma once
// Structured logs: one JSON object per line on stderr ({"time","level","component","msg",...}),
// through spdlog. Fields are JSON values; never put a secret in them: log
// tasklease::fingerprint(secret) instead.
//
//   initLogging("tasklease-webhook", LogLevel::kInfo);
//   logInfo("review answered", {{"uid", uid}, {"allowed", false}});

#include <string_view>

#include "common/json.h"

namespace tasklease {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

// Names the component in every line and sets the threshold. Safe to call again (tests).
void initLogging(std::string_view component, LogLevel level = LogLevel::kInfo);

// "debug", "info", "warn", "error"; false for any other name.
bool parseLogLevel(std::string_view name, LogLevel* out);

void logAt(LogLevel level, std::string_view msg, const Json& fields = Json::object());
// Whether a line at this level would be written: check before building costly fields.
bool logEnabled(LogLevel level);
inline void logDebug(std::string_view msg, const Json& fields = Json::object()) {
  logAt(LogLevel::kDebug, msg, fields);
}
inline void logInfo(std::string_view msg, const Json& fields = Json::object()) {
  logAt(LogLevel::kInfo, msg, fields);
}
inline void logWarn(std::string_view msg, const Json& fields = Json::object()) {
  logAt(LogLevel::kWarn, msg, fields);
}
inline void logError(std::string_view msg, const Json& fields = Json::object()) {
  logAt(LogLevel::kError, msg, fields);
}

}  // namespace tasklease
