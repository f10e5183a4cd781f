#include "kube/api_client.h"

namespace tasklease::kube {
namespace {

void addParam(std::string& query, const char* name, const std::string& value) {
  if (value.empty()) return;
  query += query.empty() ? "?" : "&";
  query += name;
  query += "=" + urlEncode(value);
}

}  // namespace

const char* watchEventTypeName(WatchEventType type) {
  switch (type) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
    case WatchEventType::kError:
      return "ERROR";
  }
  return "ERROR";
}

std::string listQuery(const ListOptions& options) {
  std::string q;
  addParam(q, "labelSelector", options.labelSelector);
  addParam(q, "fieldSelector", options.fieldSelector);
  if (options.limit > 0) addParam(q, "limit", std::to_string(options.limit));
  addParam(q, "continue", options.continueToken);
  addParam(q, "resourceVersion", options.resourceVersion);
  return q;
}

std::string watchQuery(const WatchOptions& options) {
  std::string q = "?watch=true";
  addParam(q, "labelSelector", options.labelSelector);
  addParam(q, "fieldSelector", options.fieldSelector);
  addParam(q, "resourceVersion", options.resourceVersion);
  if (options.allowBookmarks) addParam(q, "allowWatchBookmarks", "true");
  if (options.timeoutSeconds > 0) {
    addParam(q, "timeoutSeconds", std::to_string(options.timeoutSeconds));
  }
  return q;
}

std::string writeQuery(bool dryRun, const std::string& fieldManager) {
  std::string q;
  if (dryRun) addParam(q, "dryRun", "All");
  addParam(q, "fieldManager", fieldManager);
  return q;
}

Json deleteOptionsBody(const DeleteOptions& options) {
  Json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  switch (options.propagation) {
    case PropagationPolicy::kDefault:
      break;
    case PropagationPolicy::kBackground:
      body["propagationPolicy"] = "Background";
      break;
    case PropagationPolicy::kForeground:
      body["propagationPolicy"] = "Foreground";
      break;
    case PropagationPolicy::kOrphan:
      body["propagationPolicy"] = "Orphan";
      break;
  }
  if (!options.preconditionUid.empty()) body["preconditions"]["uid"] = options.preconditionUid;
  if (!options.preconditionResourceVersion.empty()) {
    body["preconditions"]["resourceVersion"] = options.preconditionResourceVersion;
  }
  if (options.gracePeriodSeconds) body["gracePeriodSeconds"] = *options.gracePeriodSeconds;
  return body;
}

StatusOr<ListResult> listAll(ApiClient& client, const ResourceRef& resource, const std::string& ns,
                             ListOptions options, const CallOptions& call) {
  if (options.limit <= 0) options.limit = 500;
  options.continueToken.clear();
  ListResult result;
  while (true) {
    auto page = client.list(resource, ns, options, call);
    bool lastPage = false;
    if (!page.ok() && page.status().isGone() && !options.continueToken.empty()) {
      // The continue token expired: one consistent list without pages instead.
      options.limit = 0;
      options.continueToken.clear();
      result.items.clear();
      page = client.list(resource, ns, options, call);
      lastPage = true;
    }
    if (!page.ok()) return page.status().annotate("listing " + resource.groupResource());
    Json& body = *page;
    if (auto items = body.find("items"); items != body.end() && items->is_array()) {
      for (auto& item : *items) {
        // Items of a list carry no kind/apiVersion; restore them so they stand alone.
        if (item.is_object()) {
          if (!item.contains("kind")) item["kind"] = resource.kind;
          if (!item.contains("apiVersion")) item["apiVersion"] = resource.apiVersion();
        }
        result.items.push_back(std::move(item));
      }
    }
    const Json& meta = body.contains("metadata") ? body["metadata"] : Json::object();
    result.resourceVersion = meta.value("resourceVersion", std::string());
    const std::string next = meta.value("continue", std::string());
    if (next.empty() || lastPage) break;
    options.continueToken = next;
  }
  return result;
}

}  // namespace tasklease::kube
