#pragma once
// Kubernetes API errors as Status values. Every non-2xx answer becomes a Status with the
// Status object's reason, the HTTP code, the message, field causes and Retry-After; failures
// below HTTP (no connection, a dropped connection, a timeout) get the reasons below, so the
// retry logic can tell "never reached the server" from "may have been processed".
//
//   Status s = statusFromResponse(409, body, std::nullopt);
//   s.isAlreadyExists();  s.reason() == "AlreadyExists";  s.httpCode() == 409

#include <chrono>
#include <optional>
#include <string_view>

#include "common/json.h"
#include "common/status.h"

namespace tasklease::kube {

// The connection could not be made: the request never reached the server.
inline constexpr std::string_view kReasonConnectFailed = "ConnectFailed";
// The connection broke after the request was (perhaps) sent: it may have been processed.
inline constexpr std::string_view kReasonConnectionLost = "ConnectionLost";
// No answer within the request timeout: it may have been processed.
inline constexpr std::string_view kReasonTimeout = "Timeout";

// Maps an HTTP answer to a Status. `body` is parsed as a metav1.Status when it is one; any
// other body contributes at most a short, printable excerpt to the message. `retryAfter` is
// the Retry-After header; details.retryAfterSeconds is used when the header is absent.
Status statusFromResponse(int httpCode, std::string_view body,
                          std::optional<std::chrono::seconds> retryAfter);

// A metav1.Status object (from a response body or a watch ERROR event) as a Status.
Status statusFromStatusObject(const Json& status, int httpCodeFallback);

// The Retry-After header's delta-seconds form; nullopt for anything else.
std::optional<std::chrono::seconds> parseRetryAfter(std::string_view header);

// The StatusCode for an HTTP code and Status reason ("AlreadyExists" and "Conflict" share 409).
StatusCode statusCodeForHttp(int httpCode, std::string_view reason);

// 429, 500, 503, 504 and transport failures: worth another attempt after a pause.
bool isRetryable(const Status& status);

// 429 and connection failures: the server did not act on the request, so repeating it is safe
// whatever the verb.
bool isNotProcessed(const Status& status);

}  // namespace tasklease::kube
