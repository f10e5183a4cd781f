#pragma once
// Status and StatusOr<T>: errors as values. Errors from the network, the API server or input
// travel as a Status carrying a code, the Kubernetes Status reason (NotFound, Conflict, ...),
// the HTTP code when there was one, a message and field causes. Nothing here throws.
//
//   StatusOr<Object> got = client.get(ref);
//   if (!got.ok()) { if (got.status().isNotFound()) ...; return got.status(); }
//   use(*got);

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace tasklease {

enum class StatusCode {
  kOk,
  kInvalidArgument,     // 400 BadRequest / 422 Invalid / malformed input
  kUnauthenticated,     // 401
  kPermissionDenied,    // 403
  kNotFound,            // 404
  kAlreadyExists,       // 409 AlreadyExists
  kConflict,            // 409 Conflict (stale resourceVersion)
  kGone,                // 410 Expired / Gone
  kResourceExhausted,   // 429 TooManyRequests
  kInternal,            // 500
  kUnavailable,         // 503, connection errors
  kDeadlineExceeded,    // 504, timeouts
  kCancelled,           // the caller stopped the operation
  kFailedPrecondition,  // state does not allow the operation
  kUnknown,
};

const char* statusCodeName(StatusCode code);

// One field-level cause, as in metav1.StatusCause.
struct StatusCause {
  std::string reason;   // e.g. FieldValueRequired
  std::string message;  // e.g. Required value
  std::string field;    // e.g. spec.ttl
};

class Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status okStatus() { return {}; }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // Kubernetes details, when the error came from an API server.
  const std::string& reason() const { return reason_; }
  int httpCode() const { return httpCode_; }
  const std::vector<StatusCause>& causes() const { return causes_; }
  std::optional<std::chrono::seconds> retryAfter() const { return retryAfter_; }

  Status& withReason(std::string reason) {
    reason_ = std::move(reason);
    return *this;
  }
  Status& withHttpCode(int code) {
    httpCode_ = code;
    return *this;
  }
  Status& withCause(StatusCause cause) {
    causes_.push_back(std::move(cause));
    return *this;
  }
  Status& withRetryAfter(std::chrono::seconds after) {
    retryAfter_ = after;
    return *this;
  }

  bool isNotFound() const { return code_ == StatusCode::kNotFound; }
  bool isAlreadyExists() const { return code_ == StatusCode::kAlreadyExists; }
  bool isConflict() const { return code_ == StatusCode::kConflict; }
  bool isGone() const { return code_ == StatusCode::kGone; }

  // "NotFound: pods \"x\" not found" plus causes, for logs and messages.
  std::string toString() const;

  // Prefixes the message with context: "creating Role team-a/x: <message>".
  Status annotate(const std::string& context) const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  std::string reason_;
  int httpCode_ = 0;
  std::vector<StatusCause> causes_;
  std::optional<std::chrono::seconds> retryAfter_;
};

inline Status invalidArgument(std::string msg) {
  return {StatusCode::kInvalidArgument, std::move(msg)};
}
inline Status notFound(std::string msg) {
  return {StatusCode::kNotFound, std::move(msg)};
}
inline Status internalError(std::string msg) {
  return {StatusCode::kInternal, std::move(msg)};
}
inline Status unavailable(std::string msg) {
  return {StatusCode::kUnavailable, std::move(msg)};
}
inline Status failedPrecondition(std::string msg) {
  return {StatusCode::kFailedPrecondition, std::move(msg)};
}
inline Status cancelled(std::string msg) {
  return {StatusCode::kCancelled, std::move(msg)};
}

// Holds either a value or a non-OK Status.
template <typename T>
class StatusOr {
 public:
  StatusOr(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  StatusOr(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    if (std::get<Status>(v_).ok())
      v_ = Status(StatusCode::kInternal, "StatusOr built from OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  T valueOr(T fallback) const& { return ok() ? value() : std::move(fallback); }

 private:
  std::variant<Status, T> v_;
};

}  // namespace tasklease
