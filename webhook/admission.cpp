#include "webhook/admission.h"

#include <simdjson.h>

#include <algorithm>
#include <memory>

#include "common/base64.h"
#include "webhook/decoded_document.h"
#include "webhook/json_access.h"
#include "webhook/workload.h"

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

const char* typeName(const simdjson::dom::element& e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY:
      return "array";
    case simdjson::dom::element_type::OBJECT:
      return "object";
    case simdjson::dom::element_type::INT64:
    case simdjson::dom::element_type::UINT64:
    case simdjson::dom::element_type::DOUBLE:
      return "number";
    case simdjson::dom::element_type::STRING:
      return "string";
    case simdjson::dom::element_type::BOOL:
      return "boolean";
    case simdjson::dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

Status readString(const simdjson::dom::object& obj, const char* key, const std::string& path,
                  bool required, std::string* out) {
  simdjson::dom::element v;
  if (obj.at_key(key).get(v) != simdjson::SUCCESS || v.is_null()) {
    if (required) return fieldError(path + key, "required string is missing");
    return {};
  }
  std::string_view text;
  if (v.get(text) != simdjson::SUCCESS) {
    return fieldError(path + key, std::string("must be a string, got ") + typeName(v));
  }
  *out = std::string(text);
  return {};
}

// Reviews up to this size reuse a per-thread parser.
constexpr size_t kReusedParserBytes = size_t{256} * 1024;

std::unique_ptr<simdjson::dom::parser> newParser(size_t capacity) {
  auto p = std::make_unique<simdjson::dom::parser>();
  if (p->allocate(capacity, kMaxJsonDepth) != simdjson::SUCCESS) return nullptr;
  return p;
}

// Parsed documents outlive their parse (a request keeps its own), so each thread keeps a few
// for reuse instead of allocating the tape and string buffer for every review; a document
// grown past kReusedParserBytes by a large review is freed rather than kept.
constexpr size_t kPooledDocuments = 8;
thread_local std::vector<std::unique_ptr<simdjson::dom::document>> documentPool;

std::unique_ptr<simdjson::dom::document, DecodedDocument::DocumentDeleter> takeDocument() {
  if (documentPool.empty()) {
    return std::unique_ptr<simdjson::dom::document, DecodedDocument::DocumentDeleter>(
        new simdjson::dom::document());
  }
  simdjson::dom::document* doc = documentPool.back().release();
  documentPool.pop_back();
  return std::unique_ptr<simdjson::dom::document, DecodedDocument::DocumentDeleter>(doc);
}

}  // namespace

void DecodedDocument::DocumentDeleter::operator()(simdjson::dom::document* doc) const {
  std::unique_ptr<simdjson::dom::document> owned(doc);
  if (documentPool.size() < kPooledDocuments && owned->capacity() <= kReusedParserBytes) {
    documentPool.push_back(std::move(owned));
  }
}

JsonView AdmissionRequest::objectView() const {
  if (document && document->object) return JsonViewAccess::of(*document->object);
  return object.is_null() ? JsonView() : JsonView(object);
}

JsonView AdmissionRequest::oldObjectView() const {
  if (document && document->oldObject) return JsonViewAccess::of(*document->oldObject);
  return oldObject.is_null() ? JsonView() : JsonView(oldObject);
}

StatusOr<Json> parseJsonLimited(std::string_view text, size_t maxDepth) {
  if (!nestingWithin(text, maxDepth)) {
    return invalidArgument("JSON nested deeper than " + std::to_string(maxDepth) + " levels");
  }
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalidArgument("body is not valid JSON");
  return j;
}

StatusOr<AdmissionRequest> decodeAdmissionReview(std::string_view body) {
  // Small reviews reuse this thread's parser and its buffers; a rare large one gets its own,
  // so that no thread keeps megabytes after one big request.
  thread_local std::unique_ptr<simdjson::dom::parser> shared;
  std::unique_ptr<simdjson::dom::parser> own;
  simdjson::dom::parser* parser = nullptr;
  if (body.size() <= kReusedParserBytes) {
    if (!shared) shared = newParser(kReusedParserBytes);
    parser = shared.get();
  } else {
    own = newParser(body.size());
    parser = own.get();
  }
  if (parser == nullptr) return internalError("AdmissionReview: cannot allocate the JSON parser");
  auto decoded = std::make_shared<DecodedDocument>();
  decoded->document = takeDocument();
  simdjson::dom::element doc;
  simdjson::error_code err =
      parser->parse_into_document(*decoded->document, body.data(), body.size()).get(doc);
  if (err == simdjson::DEPTH_ERROR) {
    return invalidArgument("AdmissionReview: JSON nested deeper than " +
                           std::to_string(kMaxJsonDepth) + " levels");
  }
  if (err != simdjson::SUCCESS) {
    return invalidArgument(std::string("AdmissionReview: body is not valid JSON (") +
                           simdjson::error_message(err) + ")");
  }
  simdjson::dom::object top;
  if (doc.get(top) != simdjson::SUCCESS) {
    return invalidArgument("AdmissionReview: body must be a JSON object");
  }
  std::string apiVersion, kind;
  Status s = readString(top, "apiVersion", "", true, &apiVersion);
  if (!s.ok()) return s;
  if (!(s = readString(top, "kind", "", true, &kind)).ok()) return s;
  if (apiVersion != "admission.k8s.io/v1" || kind != "AdmissionReview") {
    return invalidArgument(
        "expected apiVersion admission.k8s.io/v1 and kind AdmissionReview, got " + apiVersion +
        " " + kind + " (register the webhook with admissionReviewVersions: [v1])");
  }
  simdjson::dom::element requestElement;
  simdjson::dom::object request;
  if (top.at_key("request").get(requestElement) != simdjson::SUCCESS ||
      requestElement.get(request) != simdjson::SUCCESS) {
    return fieldError("request", "required object is missing");
  }

  AdmissionRequest r;
  if (!(s = readString(request, "uid", "request.", true, &r.uid)).ok()) return s;
  if (r.uid.empty()) return fieldError("request.uid", "must not be empty");
  simdjson::dom::element kindElement;
  simdjson::dom::object k;
  if (request.at_key("kind").get(kindElement) != simdjson::SUCCESS ||
      kindElement.get(k) != simdjson::SUCCESS) {
    return fieldError("request.kind", "required object is missing");
  }
  if (!(s = readString(k, "group", "request.kind.", false, &r.group)).ok()) return s;
  if (!(s = readString(k, "version", "request.kind.", true, &r.version)).ok()) return s;
  if (!(s = readString(k, "kind", "request.kind.", true, &r.kind)).ok()) return s;
  simdjson::dom::element res;
  if (request.at_key("resource").get(res) == simdjson::SUCCESS && !res.is_null()) {
    simdjson::dom::object resource;
    if (res.get(resource) != simdjson::SUCCESS) {
      return fieldError("request.resource", "must be an object");
    }
    if (!(s = readString(resource, "resource", "request.resource.", false, &r.resource)).ok()) {
      return s;
    }
  }
  if (!(s = readString(request, "subResource", "request.", false, &r.subResource)).ok()) return s;
  if (!(s = readString(request, "name", "request.", false, &r.name)).ok()) return s;
  if (!(s = readString(request, "namespace", "request.", false, &r.ns)).ok()) return s;
  if (!(s = readString(request, "operation", "request.", true, &r.operation)).ok()) return s;
  if (r.operation != "CREATE" && r.operation != "UPDATE" && r.operation != "DELETE" &&
      r.operation != "CONNECT") {
    return fieldError("request.operation",
                      "must be CREATE, UPDATE, DELETE or CONNECT, got " + r.operation);
  }
  simdjson::dom::element ui;
  if (request.at_key("userInfo").get(ui) == simdjson::SUCCESS && !ui.is_null()) {
    simdjson::dom::object user;
    if (ui.get(user) != simdjson::SUCCESS)
      return fieldError("request.userInfo", "must be an object");
    if (!(s = readString(user, "username", "request.userInfo.", false, &r.userInfo.username))
             .ok()) {
      return s;
    }
    if (!(s = readString(user, "uid", "request.userInfo.", false, &r.userInfo.uid)).ok()) return s;
    simdjson::dom::element groups;
    if (user.at_key("groups").get(groups) == simdjson::SUCCESS && !groups.is_null()) {
      simdjson::dom::array list;
      if (groups.get(list) != simdjson::SUCCESS) {
        return fieldError("request.userInfo.groups", "must be a list of strings");
      }
      for (simdjson::dom::element g : list) {
        std::string_view v;
        if (g.get(v) != simdjson::SUCCESS) {
          return fieldError("request.userInfo.groups", "must be a list of strings");
        }
        r.userInfo.groups.emplace_back(v);
      }
    }
    simdjson::dom::element extra;
    if (user.at_key("extra").get(extra) == simdjson::SUCCESS && !extra.is_null()) {
      simdjson::dom::object entries;
      if (extra.get(entries) != simdjson::SUCCESS) {
        return fieldError("request.userInfo.extra", "must be a map of string lists");
      }
      for (auto [key, value] : entries) {
        std::vector<std::string>& values = r.userInfo.extra[std::string(key)];
        simdjson::dom::array list;
        if (value.get(list) != simdjson::SUCCESS) {
          return fieldError("request.userInfo.extra", "must be a map of string lists");
        }
        for (simdjson::dom::element item : list) {
          std::string_view v;
          if (item.get(v) != simdjson::SUCCESS) {
            return fieldError("request.userInfo.extra", "must be a map of string lists");
          }
          values.emplace_back(v);
        }
      }
    }
  }
  // Pods and workloads stay in the parsed body, read in place; other kinds (IdentityException,
  // AgentTask) are converted.
  const bool podBearing = isPodBearing(r.group, r.kind);
  bool hasObject = false;
  for (const char* key : {"object", "oldObject"}) {
    simdjson::dom::element o;
    if (request.at_key(key).get(o) != simdjson::SUCCESS || o.is_null()) continue;
    if (!o.is_object()) return fieldError(std::string("request.") + key, "must be an object");
    const bool isObject = std::string_view(key) == "object";
    hasObject = hasObject || isObject;
    if (podBearing) {
      (isObject ? decoded->object : decoded->oldObject) = o;
    } else {
      (isObject ? r.object : r.oldObject) = JsonViewAccess::of(o).toJson();
    }
  }
  if (podBearing) r.document = std::move(decoded);
  if ((r.operation == "CREATE" || r.operation == "UPDATE") && !hasObject) {
    return fieldError("request.object", "required for " + r.operation);
  }
  simdjson::dom::element dry;
  if (request.at_key("dryRun").get(dry) == simdjson::SUCCESS && !dry.is_null()) {
    bool b = false;
    if (dry.get(b) != simdjson::SUCCESS) {
      return fieldError("request.dryRun", "must be a boolean");
    }
    r.dryRun = b;
  }
  return r;
}

namespace {

// A JSON string literal for s, exactly as nlohmann's dump with error_handler_t::replace writes
// it: printable ASCII other than '"' and '\\' is copied, anything else goes through nlohmann
// (escapes, UTF-8 checks and the replacement of invalid bytes).
void appendJsonString(std::string& out, std::string_view s) {
  bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
  });
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

void appendMember(std::string& out, bool& first, std::string_view key) {
  if (!first) out += ',';
  first = false;
  appendJsonString(out, key);
  out += ':';
}

}  // namespace

// Written directly rather than built as a Json and dumped: this runs once per review. Members
// come in the order nlohmann's std::map-backed objects print them (sorted by key), so the bytes
// are what `Json::dump` gave before (the tests compare whole answers).
std::string encodeAdmissionReview(const AdmissionResponse& response) {
  std::string out;
  out.reserve(160 + response.uid.size() + response.message.size() + response.patch.size() * 2);
  out += R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{)";
  bool first = true;
  appendMember(out, first, "allowed");
  out += response.allowed ? "true" : "false";
  if (!response.auditAnnotations.empty()) {
    appendMember(out, first, "auditAnnotations");
    out += '{';
    bool firstAnnotation = true;
    for (const auto& [k, v] : response.auditAnnotations) {  // a std::map: sorted already
      appendMember(out, firstAnnotation, k);
      appendJsonString(out, v);
    }
    out += '}';
  }
  if (!response.patch.empty()) {
    appendMember(out, first, "patch");
    appendJsonString(out, base64Encode(response.patch));
    appendMember(out, first, "patchType");
    out += "\"JSONPatch\"";
  }
  if (!response.allowed || !response.message.empty()) {
    appendMember(out, first, "status");
    out += '{';
    bool firstStatus = true;
    appendMember(out, firstStatus, "code");
    out += std::to_string(response.code);
    appendMember(out, firstStatus, "message");
    appendJsonString(out, response.message);
    if (!response.reason.empty()) {
      appendMember(out, firstStatus, "reason");
      appendJsonString(out, response.reason);
    }
    if (!response.allowed) {
      appendMember(out, firstStatus, "status");
      out += "\"Failure\"";
    }
    out += '}';
  }
  appendMember(out, first, "uid");
  appendJsonString(out, response.uid);
  if (!response.warnings.empty()) {
    appendMember(out, first, "warnings");
    out += '[';
    for (size_t i = 0; i < response.warnings.size(); ++i) {
      if (i > 0) out += ',';
      appendJsonString(out, response.warnings[i]);
    }
    out += ']';
  }
  out += "}}";
  return out;
}

}  // namespace tasklease::webhook
