#include "webhook/admission.h"

#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

// Depth of the deepest array/object, scanning bytes (strings skipped) so that a hostile body
// is refused before a recursive walk could exhaust the stack.
bool nestingWithin(std::string_view text, size_t maxDepth) {
  size_t depth = 0;
  bool inString = false;
  bool escaped = false;
  for (char c : text) {
    if (inString) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        inString = false;
      }
      continue;
    }
    if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      if (++depth > maxDepth) return false;
    } else if ((c == '}' || c == ']') && depth > 0) {
      --depth;
    }
  }
  return true;
}

Status fieldError(const std::string& field, const std::string& what) {
  return invalidArgument("AdmissionReview " + field + ": " + what);
}

Status readString(const Json& obj, const char* key, const std::string& path, bool required,
                  std::string* out) {
  const Json* v = member(obj, key);
  if (v == nullptr || v->is_null()) {
    if (required) return fieldError(path + key, "required string is missing");
    return {};
  }
  if (!v->is_string())
    return fieldError(path + key, "must be a string, got " + std::string(v->type_name()));
  *out = v->get<std::string>();
  return {};
}

}  // namespace

StatusOr<Json> parseJsonLimited(std::string_view text, size_t maxDepth) {
  if (!nestingWithin(text, maxDepth)) {
    return invalidArgument("JSON nested deeper than " + std::to_string(maxDepth) + " levels");
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument("body is not valid JSON");
  return j;
}

StatusOr<AdmissionRequest> decodeAdmissionReview(std::string_view body) {
  StatusOr<Json> parsed = parseJsonLimited(body);
  if (!parsed.ok()) return parsed.status().annotate("AdmissionReview");
  Json& doc = *parsed;
  if (!doc.is_object()) return invalidArgument("AdmissionReview: body must be a JSON object");
  std::string apiVersion, kind;
  Status s = readString(doc, "apiVersion", "", true, &apiVersion);
  if (!s.ok()) return s;
  if (!(s = readString(doc, "kind", "", true, &kind)).ok()) return s;
  if (apiVersion != "admission.k8s.io/v1" || kind != "AdmissionReview") {
    return invalidArgument(
        "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got " + apiVersion +
        " " + kind + " (register the webhook with admissionReviewVersions: [v1])");
  }
  Json* request = nullptr;
  if (auto it = doc.find("request"); it != doc.end() && it->is_object()) request = &*it;
  if (request == nullptr) return fieldError("request", "required object is missing");

  AdmissionRequest r;
  if (!(s = readString(*request, "uid", "request.", true, &r.uid)).ok()) return s;
  if (r.uid.empty()) return fieldError("request.uid", "must not be empty");
  const Json* k = member(*request, "kind");
  if (k == nullptr || !k->is_object())
    return fieldError("request.kind", "required object is missing");
  if (!(s = readString(*k, "group", "request.kind.", false, &r.group)).ok()) return s;
  if (!(s = readString(*k, "version", "request.kind.", true, &r.version)).ok()) return s;
  if (!(s = readString(*k, "kind", "request.kind.", true, &r.kind)).ok()) return s;
  const Json* res = member(*request, "resource");
  if (res != nullptr && res->is_object()) {
    if (!(s = readString(*res, "resource", "request.resource.", false, &r.resource)).ok()) return s;
  } else if (res != nullptr && !res->is_null()) {
    return fieldError("request.resource", "must be an object");
  }
  if (!(s = readString(*request, "subResource", "request.", false, &r.subResource)).ok()) return s;
  if (!(s = readString(*request, "name", "request.", false, &r.name)).ok()) return s;
  if (!(s = readString(*request, "namespace", "request.", false, &r.ns)).ok()) return s;
  if (!(s = readString(*request, "operation", "request.", true, &r.operation)).ok()) return s;
  if (r.operation != "CREATE" && r.operation != "UPDATE" && r.operation != "DELETE" &&
      r.operation != "CONNECT") {
    return fieldError("request.operation",
                      "must be CREATE, UPDATE, DELETE or CONNECT, got " + r.operation);
  }
  if (const Json* ui = member(*request, "userInfo"); ui != nullptr && !ui->is_null()) {
    if (!ui->is_object()) return fieldError("request.userInfo", "must be an object");
    if (!(s = readString(*ui, "username", "request.userInfo.", false, &r.userInfo.username)).ok())
      return s;
    if (!(s = readString(*ui, "uid", "request.userInfo.", false, &r.userInfo.uid)).ok()) return s;
    for (const Json& g : arrayMember(*ui, "groups")) {
      if (!g.is_string()) return fieldError("request.userInfo.groups", "must be a list of strings");
      r.userInfo.groups.push_back(g.get<std::string>());
    }
  }
  for (const char* key : {"object", "oldObject"}) {
    auto it = request->find(key);
    if (it == request->end() || it->is_null()) continue;
    if (!it->is_object()) return fieldError(std::string("request.") + key, "must be an object");
    (std::string(key) == "object" ? r.object : r.oldObject) = std::move(*it);
  }
  if ((r.operation == "CREATE" || r.operation == "UPDATE") && r.object.is_null()) {
    return fieldError("request.object", "required for " + r.operation);
  }
  if (const Json* dry = member(*request, "dryRun"); dry != nullptr && !dry->is_null()) {
    if (!dry->is_boolean()) return fieldError("request.dryRun", "must be a boolean");
    r.dryRun = dry->get<bool>();
  }
  return r;
}

std::string encodeAdmissionReview(const AdmissionResponse& response) {
  Json resp = {{"uid", response.uid}, {"allowed", response.allowed}};
  if (!response.allowed || !response.message.empty()) {
    Json status = {{"code", response.code}, {"message", response.message}};
    if (!response.allowed) status["status"] = "Failure";
    if (!response.reason.empty()) status["reason"] = response.reason;
    resp["status"] = std::move(status);
  }
  if (!response.warnings.empty()) resp["warnings"] = response.warnings;
  if (!response.auditAnnotations.empty()) resp["auditAnnotations"] = response.auditAnnotations;
  Json review = {{"apiVersion", "admission.k8s.io/v1"},
                 {"kind", "AdmissionReview"},
                 {"response", std::move(resp)}};
  // Messages quote outside input (names); invalid UTF-8 in them is replaced, never thrown on.
  return review.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tasklease::webhook
