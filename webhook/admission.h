#pragma once
// admission.k8s.io/v1 AdmissionReview: the request the API server sends and the response it
// expects, decoded from and encoded to JSON. Decoding is strict about what the rules rely on
// and names the field that is wrong; it never throws.
//
// For Pods and the workload kinds, request.object and request.oldObject are not converted to
// Json at all: the rules read them in place from the parsed body, which `document` keeps, through
// objectView() and oldObjectView() (docs/decisions.md, "The rules read the parsed review in
// place"): building a Json tree cost more than the rules that read it. Other kinds
// (IdentityException, AgentTask) are decoded into object and oldObject.
//
//   StatusOr<AdmissionRequest> req = decodeAdmissionReview(body);
//   if (!req.ok()) return badRequest(req.status().message());
//   std::string reply = encodeAdmissionReview(response);

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "webhook/json_view.h"

namespace tasklease::webhook {

struct DecodedDocument;  // webhook/decoded_document.h, internal to the library

struct UserInfo {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  // Authenticator-specific attributes (scopes, the node of a bound token); passed on to the
  // SubjectAccessReviews that check an AgentTask against its requester.
  std::map<std::string, std::vector<std::string>> extra;
};

struct AdmissionRequest {
  std::string uid;
  std::string group;        // kind.group: "" for core, "apps", "tasklease.io"
  std::string version;      // kind.version
  std::string kind;         // kind.kind
  std::string resource;     // resource.resource: "pods"
  std::string subResource;  // "ephemeralcontainers", "status", ...
  std::string name;
  std::string ns;
  std::string operation;  // CREATE, UPDATE, DELETE, CONNECT
  UserInfo userInfo;
  Json object;     // null when absent (DELETE) or left in `document` (see above)
  Json oldObject;  // null when absent (CREATE) or left in `document`
  bool dryRun = false;
  // Pods and workloads decoded by decodeAdmissionReview: the parsed body, and where object and
  // oldObject are in it. Null otherwise (other kinds, requests built in tests).
  std::shared_ptr<const DecodedDocument> document;

  // The object and the old object wherever they are: in `document`, else in object and
  // oldObject. Absent when the request has none. Valid while this request lives.
  JsonView objectView() const;
  JsonView oldObjectView() const;
};

struct AdmissionResponse {
  std::string uid;
  bool allowed = true;
  int code = 200;      // the HTTP code the API server reports for a denial (403, 422, 400)
  std::string reason;  // metav1.Status reason: Forbidden, Invalid, BadRequest
  std::string message;
  std::vector<std::string> warnings;
  std::map<std::string, std::string> auditAnnotations;
  // A JSON Patch document (mutating admission); sent base64-encoded with patchType JSONPatch.
  std::string patch;
};

// Deepest nesting of arrays and objects accepted; Kubernetes objects stay far below it.
inline constexpr size_t kMaxJsonDepth = 128;

// Errors (kInvalidArgument) say what is wrong: not JSON, too deeply nested, not an
// admission.k8s.io/v1 AdmissionReview, or a request field missing or of the wrong type.
StatusOr<AdmissionRequest> decodeAdmissionReview(std::string_view body);

// {"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{...}}
std::string encodeAdmissionReview(const AdmissionResponse& response);

// Parses JSON with the nesting limit, for any outside input. nullopt-like error when not JSON.
StatusOr<Json> parseJsonLimited(std::string_view text, size_t maxDepth = kMaxJsonDepth);

}  // namespace tasklease::webhook
