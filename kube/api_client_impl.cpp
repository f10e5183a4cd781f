#include "kube/api_client_impl.h"

#include <random>

#include "common/log.h"
#include "kube/backoff.h"
#include "kube/errors.h"

namespace tasklease::kube {
namespace {

bool isSuccess(int code) {
  return code >= 200 && code < 300;
}

// Fields the server sets or changes on every write; a re-read copy differs in them even when
// it is exactly what we wrote.
bool serverOwned(const std::string& path) {
  return path == "/metadata/resourceVersion" || path == "/metadata/uid" ||
         path == "/metadata/creationTimestamp" || path == "/metadata/generation" ||
         path == "/metadata/managedFields" || path == "/status";
}

// True when every field of `sent` is present in `stored` with the same value: `stored` is what
// a write of `sent` produced, possibly with defaults added by the server.
bool containsAll(const Json& sent, const Json& stored, const std::string& path = "") {
  if (serverOwned(path)) return true;
  if (sent.is_object()) {
    if (!stored.is_object()) return false;
    for (const auto& [k, v] : sent.items()) {
      std::string child = path;
      child.append("/").append(k);
      const auto it = stored.find(k);
      if (it == stored.end()) {
        if (v.is_null() || serverOwned(child)) continue;
        return false;
      }
      if (!containsAll(v, *it, child)) return false;
    }
    return true;
  }
  if (sent.is_array()) {
    if (!stored.is_array() || stored.size() != sent.size()) return false;
    for (size_t i = 0; i < sent.size(); ++i) {
      if (!containsAll(sent[i], stored[i], path + "/" + std::to_string(i))) return false;
    }
    return true;
  }
  return sent == stored;
}

const char* patchContentType(PatchType type) {
  switch (type) {
    case PatchType::kMerge:
      return "application/merge-patch+json";
    case PatchType::kJson:
      return "application/json-patch+json";
    case PatchType::kStrategicMerge:
      return "application/strategic-merge-patch+json";
  }
  return "application/merge-patch+json";
}

Status missingName(const ResourceRef& resource) {
  return invalidArgument(resource.kind + ": metadata.name is required");
}

// Reviews are computed, not stored: repeating one has no effect.
bool isReview(const ResourceRef& resource) {
  return resource.resource == "tokenreviews" || resource.resource == "subjectaccessreviews" ||
         resource.resource == "selfsubjectaccessreviews" ||
         resource.resource == "localsubjectaccessreviews" ||
         resource.resource == "selfsubjectrulesreviews" ||
         resource.resource == "selfsubjectreviews";
}

}  // namespace

ApiClientImpl::ApiClientImpl(RestConfig config, HttpTransportPtr transport,
                             CredentialProviderPtr credentials, Clock& clock)
    : config_(std::move(config)),
      transport_(std::move(transport)),
      credentials_(std::move(credentials)),
      clock_(clock),
      limiter_(config_.qps, config_.burst, clock),
      seedBase_(std::random_device{}()) {}

ApiClientImpl::Outcome ApiClientImpl::execute(const Request& request, const CallOptions& call) {
  Outcome outcome{Status(StatusCode::kUnknown, "not attempted"), false};
  const bool hasDeadline = call.timeout.count() > 0;
  const auto deadline = clock_.now() + call.timeout;
  const int maxAttempts = std::max(1, config_.retry.maxAttempts);
  Backoff backoff(config_.retry.backoff, nextSeed());
  bool reauthenticated = false;
  const std::string what = request.method + " " + request.path;
  const std::string body = request.body != nullptr ? request.body->dump() : std::string();

  for (int attempt = 1;; ++attempt) {
    if (!limiter_.wait(call.stop)) {
      outcome.result = cancelled(what + ": stopped");
      return outcome;
    }
    auto creds = credentials_->current();
    if (!creds.ok()) {
      outcome.result = creds.status().annotate(what);
      return outcome;
    }
    HttpRequest http;
    http.method = request.method;
    http.path = request.path;
    http.headers.emplace_back("Accept", "application/json");
    if (request.body != nullptr) {
      http.headers.emplace_back("Content-Type", request.contentType);
      http.body = body;
    }
    if (!creds->bearerToken.empty()) {
      http.headers.emplace_back("Authorization", "Bearer " + creds->bearerToken);
    }
    http.clientCertPem = creds->clientCertPem;
    http.clientKeyPem = creds->clientKeyPem;
    http.timeout = config_.requestTimeout;
    if (hasDeadline) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_.now());
      if (left.count() <= 0) {
        outcome.result = Status(StatusCode::kDeadlineExceeded, what + ": call deadline passed");
        return outcome;
      }
      http.timeout = std::min(http.timeout, left);
    }

    auto response = transport_->send(http, call.stop);
    Status failure;
    if (!response.ok()) {
      failure = response.status();
      if (failure.code() == StatusCode::kCancelled) {
        outcome.result = failure;
        return outcome;
      }
    } else if (isSuccess(response->code)) {
      if (response->body.empty()) {
        outcome.result = Json::object();
        return outcome;
      }
      Json parsed = Json::parse(response->body, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded()) {
        outcome.result = internalError(what + ": the server's answer is not JSON");
      } else {
        outcome.result = std::move(parsed);
      }
      return outcome;
    } else {
      failure = statusFromResponse(response->code, response->body,
                                   parseRetryAfter(response->header("Retry-After")));
    }

    if (failure.code() == StatusCode::kUnauthenticated && !reauthenticated &&
        credentials_->refreshAfterUnauthorized(*creds)) {
      reauthenticated = true;  // one more attempt with fresh credentials, then give up
      continue;
    }
    const bool allowed =
        isRetryable(failure) && (request.repeat == Repeat::kAlways || isNotProcessed(failure));
    if (!allowed || attempt >= maxAttempts) {
      outcome.result = failure.annotate(what);
      return outcome;
    }
    if (!isNotProcessed(failure)) outcome.ambiguous = true;
    const std::chrono::milliseconds delay =
        failure.retryAfter() ? std::chrono::milliseconds(*failure.retryAfter()) : backoff.next();
    if (hasDeadline && clock_.now() + delay > deadline) {
      outcome.result = failure.annotate(what + " (no time left to retry)");
      return outcome;
    }
    logDebug("kube: retrying", {{"request", what},
                                {"attempt", attempt},
                                {"error", failure.toString()},
                                {"delayMs", delay.count()}});
    if (!sleepFor(delay, call.stop)) {
      outcome.result = cancelled(what + ": stopped");
      return outcome;
    }
  }
}

StatusOr<Json> ApiClientImpl::request(const std::string& method, const std::string& path,
                                      const Json* body, bool retrySafe, const CallOptions& call) {
  Request r{method, path, body, "application/json",
            retrySafe ? Repeat::kAlways : Repeat::kIfNotProcessed};
  return execute(r, call).result;
}

StatusOr<Json> ApiClientImpl::get(const ResourceRef& resource, const ObjectKey& key,
                                  const CallOptions& call) {
  if (key.name.empty()) return missingName(resource);
  return execute({"GET", resource.objectPath(key.ns, key.name)}, call).result;
}

StatusOr<Json> ApiClientImpl::list(const ResourceRef& resource, const std::string& ns,
                                   const ListOptions& options, const CallOptions& call) {
  return execute({"GET", resource.collectionPath(ns) + listQuery(options)}, call).result;
}

StatusOr<Json> ApiClientImpl::write(const std::string& method, const ResourceRef& resource,
                                    const Json& object, const std::string& subresource,
                                    const WriteOptions& options, const CallOptions& call) {
  const ObjectKey key = objectKeyOf(object);
  if (resource.namespaced && key.ns.empty() && !isReview(resource)) {
    return invalidArgument(resource.kind + ": metadata.namespace is required");
  }
  const std::string query = writeQuery(options.dryRun, options.fieldManager);
  Request r;
  r.method = method;
  r.body = &object;
  if (method == "POST") {
    // A create is repeated only when a second attempt can tell whether the first one
    // happened: the object has a fixed name (see the AlreadyExists check below). Reviews are
    // computed, not stored, and always safe.
    const bool named = !key.name.empty();
    r.path = resource.collectionPath(key.ns) + query;
    r.repeat = named || isReview(resource) ? Repeat::kAlways : Repeat::kIfNotProcessed;
    Outcome out = execute(r, call);
    if (out.ambiguous && !out.result.ok() && out.result.status().isAlreadyExists()) {
      auto existing = get(resource, key, call);
      if (existing.ok() && containsAll(object, *existing)) {
        logInfo("kube: create was applied by an earlier attempt",
                {{"resource", resource.groupResource()}, {"object", key.toString()}});
        return existing;
      }
    }
    return out.result;
  }
  if (key.name.empty()) return missingName(resource);
  // PUT: with a resourceVersion the server rejects a second application as a Conflict, which
  // is resolved below; without one, a repeat could overwrite someone else's write.
  const std::string rv = resourceVersionOf(object);
  r.path = resource.objectPath(key.ns, key.name, subresource) + query;
  r.repeat = rv.empty() ? Repeat::kIfNotProcessed : Repeat::kAlways;
  Outcome out = execute(r, call);
  if (out.ambiguous && !out.result.ok() && out.result.status().isConflict()) {
    // The conflict may be with our own earlier attempt: if the stored object is what we
    // wrote, that attempt succeeded.
    auto current = get(resource, key, call);
    if (current.ok()) {
      Json sent = object;
      sent["metadata"].erase("resourceVersion");
      const bool same = subresource == "status"
                            ? current->value("status", Json()) == object.value("status", Json())
                            : containsAll(sent, *current);
      if (same) return current;
    }
  }
  return out.result;
}

StatusOr<Json> ApiClientImpl::create(const ResourceRef& resource, const Json& object,
                                     const WriteOptions& options, const CallOptions& call) {
  return write("POST", resource, object, "", options, call);
}

StatusOr<Json> ApiClientImpl::update(const ResourceRef& resource, const Json& object,
                                     const WriteOptions& options, const CallOptions& call) {
  return write("PUT", resource, object, "", options, call);
}

StatusOr<Json> ApiClientImpl::updateStatus(const ResourceRef& resource, const Json& object,
                                           const WriteOptions& options, const CallOptions& call) {
  return write("PUT", resource, object, "status", options, call);
}

StatusOr<Json> ApiClientImpl::patch(const ResourceRef& resource, const ObjectKey& key,
                                    const Json& patchBody, const PatchOptions& options,
                                    const CallOptions& call) {
  if (key.name.empty()) return missingName(resource);
  Request r;
  r.method = "PATCH";
  r.path = resource.objectPath(key.ns, key.name, options.subresource) +
           writeQuery(options.dryRun, options.fieldManager);
  r.body = &patchBody;
  r.contentType = patchContentType(options.type);
  // Applying a merge patch twice gives the same object; a JSON patch may not (an "add" to a
  // list appends twice), so it is repeated only when the server never saw it.
  r.repeat = options.type == PatchType::kJson ? Repeat::kIfNotProcessed : Repeat::kAlways;
  return execute(r, call).result;
}

Status ApiClientImpl::remove(const ResourceRef& resource, const ObjectKey& key,
                             const DeleteOptions& options, const CallOptions& call) {
  if (key.name.empty()) return missingName(resource);
  const Json body = deleteOptionsBody(options);
  Request r;
  r.method = "DELETE";
  r.path = resource.objectPath(key.ns, key.name);
  r.body = &body;
  Outcome out = execute(r, call);
  if (out.result.ok()) return {};
  // The deletion may have gone through on an attempt whose answer was lost.
  if (out.ambiguous && out.result.status().isNotFound()) return {};
  return out.result.status();
}

StatusOr<Json> ApiClientImpl::removeCollection(const ResourceRef& resource, const std::string& ns,
                                               const ListOptions& selection,
                                               const DeleteOptions& options,
                                               const CallOptions& call) {
  ListOptions query;
  query.labelSelector = selection.labelSelector;
  query.fieldSelector = selection.fieldSelector;
  const Json body = deleteOptionsBody(options);
  Request r;
  r.method = "DELETE";
  r.path = resource.collectionPath(ns) + listQuery(query);
  r.body = &body;
  // Deleting what matches is idempotent: a repeat deletes what an earlier attempt left (and
  // its answer names only that).
  r.repeat = Repeat::kAlways;
  return execute(r, call).result;
}

StatusOr<Json> ApiClientImpl::createSubresource(const ResourceRef& resource, const ObjectKey& key,
                                                const std::string& subresource, const Json& body,
                                                const CallOptions& call) {
  if (key.name.empty()) return missingName(resource);
  Request r;
  r.method = "POST";
  r.path = resource.objectPath(key.ns, key.name, subresource);
  r.body = &body;
  // A TokenRequest or an eviction must not happen twice behind the caller's back.
  r.repeat = Repeat::kIfNotProcessed;
  return execute(r, call).result;
}

Status ApiClientImpl::watch(const ResourceRef& resource, const std::string& ns,
                            const WatchOptions& options, const WatchHandler& handler,
                            const CallOptions& call) {
  const std::string path = resource.collectionPath(ns) + watchQuery(options);
  bool reauthenticated = false;
  while (true) {
    if (!limiter_.wait(call.stop)) return cancelled("watch " + path + ": stopped");
    auto creds = credentials_->current();
    if (!creds.ok()) return creds.status().annotate("watch " + path);
    HttpRequest http;
    http.method = "GET";
    http.path = path;
    http.headers.emplace_back("Accept", "application/json");
    if (!creds->bearerToken.empty()) {
      http.headers.emplace_back("Authorization", "Bearer " + creds->bearerToken);
    }
    http.clientCertPem = creds->clientCertPem;
    http.clientKeyPem = creds->clientKeyPem;
    // A watch idles between events; only a server that stops answering altogether is cut off,
    // a while after the timeout it was asked to keep.
    if (options.timeoutSeconds > 0) {
      http.timeout = std::chrono::seconds(options.timeoutSeconds) + std::chrono::seconds(30);
    }
    Status streamError;
    const LineHandler onLine = [&](std::string_view line) {
      Json frame = Json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!frame.is_object() || !frame.contains("type") || !frame["type"].is_string()) {
        streamError = internalError("watch " + path + ": malformed event from the server");
        return false;
      }
      const std::string type = frame["type"].get<std::string>();
      WatchEvent event;
      if (type == "ADDED") {
        event.type = WatchEventType::kAdded;
      } else if (type == "MODIFIED") {
        event.type = WatchEventType::kModified;
      } else if (type == "DELETED") {
        event.type = WatchEventType::kDeleted;
      } else if (type == "BOOKMARK") {
        event.type = WatchEventType::kBookmark;
      } else if (type == "ERROR") {
        event.type = WatchEventType::kError;
      } else {
        std::string msg = "watch " + path;
        msg.append(": unknown event type \"").append(type).append("\"");
        streamError = internalError(msg);
        return false;
      }
      event.object = std::move(frame["object"]);
      if (event.type == WatchEventType::kError) {
        streamError = statusFromStatusObject(event.object, 500).annotate("watch " + path);
        handler(std::move(event));
        return false;
      }
      return handler(std::move(event));
    };
    auto response = transport_->stream(http, onLine, call.stop);
    if (!response.ok()) return response.status().annotate("watch " + path);
    if (!isSuccess(response->code)) {
      Status s = statusFromResponse(response->code, response->body,
                                    parseRetryAfter(response->header("Retry-After")));
      if (s.code() == StatusCode::kUnauthenticated && !reauthenticated &&
          credentials_->refreshAfterUnauthorized(*creds)) {
        reauthenticated = true;
        continue;
      }
      return s.annotate("watch " + path);
    }
    return streamError;
  }
}

StatusOr<std::unique_ptr<ApiClientImpl>> makeApiClient(const RestConfig& config) {
  auto transport = makeCurlTransport(config);
  if (!transport.ok()) return transport.status();
  return std::make_unique<ApiClientImpl>(config, std::move(*transport),
                                         makeCredentialProvider(config));
}

}  // namespace tasklease::kube
