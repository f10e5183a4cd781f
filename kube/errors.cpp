#include "kube/errors.h"

#include <cctype>
#include <charconv>
#include <string>

namespace tasklease::kube {
namespace {

const char* defaultReason(int httpCode) {
  switch (httpCode) {
    case 400:
      return "BadRequest";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "NotFound";
    case 405:
      return "MethodNotAllowed";
    case 406:
      return "NotAcceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Expired";
    case 413:
      return "RequestEntityTooLarge";
    case 415:
      return "UnsupportedMediaType";
    case 422:
      return "Invalid";
    case 429:
      return "TooManyRequests";
    case 500:
      return "InternalError";
    case 503:
      return "ServiceUnavailable";
    case 504:
      return "Timeout";
    default:
      return "Unknown";
  }
}

// At most 200 printable characters of a body that is not a Status (a proxy's HTML page).
std::string excerpt(std::string_view body) {
  std::string out;
  for (const char c : body.substr(0, 200)) {
    out.push_back(std::isprint(static_cast<unsigned char>(c)) != 0 ? c : ' ');
  }
  return out;
}

}  // namespace

StatusCode statusCodeForHttp(int httpCode, std::string_view reason) {
  if (reason == "AlreadyExists") return StatusCode::kAlreadyExists;
  if (reason == "Conflict") return StatusCode::kConflict;
  if (reason == "Expired" || reason == "Gone") return StatusCode::kGone;
  switch (httpCode) {
    case 400:
    case 405:
    case 406:
    case 413:
    case 415:
    case 422:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kConflict;
    case 410:
      return StatusCode::kGone;
    case 429:
      return StatusCode::kResourceExhausted;
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kDeadlineExceeded;
    default:
      break;
  }
  if (httpCode >= 500) return StatusCode::kInternal;
  return StatusCode::kUnknown;
}

Status statusFromStatusObject(const Json& status, int httpCodeFallback) {
  int httpCode = httpCodeFallback;
  if (status.contains("code") && status["code"].is_number_integer()) {
    httpCode = status["code"].get<int>();
  }
  std::string reason = status.value("reason", std::string());
  if (reason.empty()) reason = defaultReason(httpCode);
  std::string message = status.value("message", std::string());
  if (message.empty()) message = "the server answered HTTP " + std::to_string(httpCode);
  Status out(statusCodeForHttp(httpCode, reason), message);
  out.withReason(reason).withHttpCode(httpCode);
  if (const auto details = status.find("details");
      details != status.end() && details->is_object()) {
    if (const auto causes = details->find("causes");
        causes != details->end() && causes->is_array()) {
      for (const auto& c : *causes) {
        if (!c.is_object()) continue;
        out.withCause({c.value("reason", std::string()), c.value("message", std::string()),
                       c.value("field", std::string())});
      }
    }
    if (const auto ra = details->find("retryAfterSeconds");
        ra != details->end() && ra->is_number_integer() && ra->get<long long>() > 0) {
      out.withRetryAfter(std::chrono::seconds(ra->get<long long>()));
    }
  }
  return out;
}

Status statusFromResponse(int httpCode, std::string_view body,
                          std::optional<std::chrono::seconds> retryAfter) {
  Status out;
  const Json parsed = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_object() && parsed.value("kind", std::string()) == "Status") {
    out = statusFromStatusObject(parsed, httpCode);
    out.withHttpCode(httpCode);  // the transport's code wins over the body's claim
  } else {
    std::string message = "the server answered HTTP " + std::to_string(httpCode);
    if (!body.empty()) message += ": " + excerpt(body);
    const char* reason = defaultReason(httpCode);
    out = Status(statusCodeForHttp(httpCode, reason), message);
    out.withReason(reason).withHttpCode(httpCode);
  }
  if (retryAfter) out.withRetryAfter(*retryAfter);
  return out;
}

std::optional<std::chrono::seconds> parseRetryAfter(std::string_view header) {
  while (!header.empty() && std::isspace(static_cast<unsigned char>(header.front())) != 0) {
    header.remove_prefix(1);
  }
  while (!header.empty() && std::isspace(static_cast<unsigned char>(header.back())) != 0) {
    header.remove_suffix(1);
  }
  long long seconds = 0;
  const auto [end, ec] = std::from_chars(header.data(), header.data() + header.size(), seconds);
  if (ec != std::errc() || end != header.data() + header.size() || seconds < 0) {
    return std::nullopt;
  }
  return std::chrono::seconds(seconds);
}

bool isNotProcessed(const Status& status) {
  return status.code() == StatusCode::kResourceExhausted || status.reason() == kReasonConnectFailed;
}

bool isRetryable(const Status& status) {
  if (isNotProcessed(status)) return true;
  if (status.reason() == kReasonConnectionLost || status.reason() == kReasonTimeout) return true;
  switch (status.httpCode()) {
    case 500:
    case 503:
    case 504:
      return true;
    default:
      return false;
  }
}

}  // namespace tasklease::kube
