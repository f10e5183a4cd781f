#include "tests/mocks/fake_api_client.h"

#include <algorithm>
#include <set>

#include "common/rfc3339.h"
#include "kube/errors.h"
#include "kube/selector.h"

namespace tasklease::kube {
namespace {

Status apiError(int code, const std::string& reason, const std::string& message) {
  Status s(statusCodeForHttp(code, reason), message);
  s.withReason(reason).withHttpCode(code);
  return s;
}

Status notFoundError(const ResourceRef& r, const std::string& name) {
  return apiError(404, "NotFound", r.groupResource() + " \"" + name + "\" not found");
}

Status conflictError(const ResourceRef& r, const std::string& name, const std::string& why) {
  return apiError(
      409, "Conflict",
      "Operation cannot be fulfilled on " + r.groupResource() + " \"" + name + "\": " + why);
}

bool isReviewResource(const std::string& resource) {
  return resource == "tokenreviews" || resource == "subjectaccessreviews" ||
         resource == "selfsubjectaccessreviews" || resource == "localsubjectaccessreviews";
}

// Everything but metadata and status: a change here bumps metadata.generation.
Json specPart(const Json& object) {
  Json out = object;
  if (out.is_object()) {
    out.erase("metadata");
    out.erase("status");
  }
  return out;
}

Json withoutVersion(const Json& object) {
  Json out = object;
  if (out.contains("metadata")) out["metadata"].erase("resourceVersion");
  return out;
}

std::vector<std::string> ownerUids(const Json& object) {
  std::vector<std::string> out;
  if (!object.contains("metadata")) return out;
  const Json refs = object["metadata"].value("ownerReferences", Json::array());
  for (const auto& r : refs) {
    if (r.is_object() && r.contains("uid")) out.push_back(r.value("uid", std::string()));
  }
  return out;
}

bool hasFinalizers(const Json& object) {
  if (!object.contains("metadata")) return false;
  const Json f = object["metadata"].value("finalizers", Json::array());
  return f.is_array() && !f.empty();
}

// Whether a list or a collection delete in `ns` with these selectors takes `o`. The error is a
// malformed field selector, which the API server answers with 400.
StatusOr<bool> isSelected(const ResourceRef& resource, const std::string& ns,
                          const LabelSelector& labels, const std::string& fieldSelector,
                          const Json& o) {
  if (resource.namespaced && !ns.empty() && objectKeyOf(o).ns != ns) return false;
  if (!labels.matches(labelsOf(o))) return false;
  if (fieldSelector.empty()) return true;
  return matchesFieldSelector(fieldSelector, o);
}

}  // namespace

FakeApiClient::FakeApiClient() = default;

FakeApiClient::~FakeApiClient() {
  closeWatches();
}

void FakeApiClient::prependReactor(const std::string& verb, const std::string& resource,
                                   Reactor reactor) {
  std::lock_guard lock(mu_);
  reactors_.insert(reactors_.begin(), {verb, resource, std::move(reactor)});
}

void FakeApiClient::failNext(const std::string& verb, const std::string& resource,
                             const Status& status, int times) {
  auto left = std::make_shared<int>(times);
  prependReactor(verb, resource, [left, status](const Action&) -> std::optional<StatusOr<Json>> {
    if (*left <= 0) return std::nullopt;
    --*left;
    return StatusOr<Json>(status);
  });
}

std::vector<FakeApiClient::Action> FakeApiClient::actions() const {
  std::lock_guard lock(mu_);
  return actions_;
}

void FakeApiClient::clearActions() {
  std::lock_guard lock(mu_);
  actions_.clear();
}

std::optional<StatusOr<Json>> FakeApiClient::reactLocked(const Action& action) {
  for (auto& [verb, resource, reactor] : reactors_) {
    if ((verb == "*" || verb == action.verb) && (resource == "*" || resource == action.resource)) {
      if (auto answer = reactor(action)) return answer;
    }
  }
  return std::nullopt;
}

std::map<std::string, Json>& FakeApiClient::storeLocked(const ResourceRef& resource) {
  refs_.emplace(resource.groupResource(), resource);
  return objects_[resource.groupResource()];
}

const Json* FakeApiClient::findLocked(const ResourceRef& resource, const ObjectKey& key) const {
  const auto store = objects_.find(resource.groupResource());
  if (store == objects_.end()) return nullptr;
  const ObjectKey k{resource.namespaced ? key.ns : "", key.name};
  const auto it = store->second.find(k.toString());
  return it == store->second.end() ? nullptr : &it->second;
}

void FakeApiClient::emitLocked(const std::string& resource, WatchEventType type, const Json& object,
                               const Json& previous) {
  history_.push_back({std::stoll(resourceVersionOf(object)), resource, type, object, previous});
  while (history_.size() > historyLimit_) {
    oldestResumable_ = history_.front().rv;
    history_.pop_front();
  }
  changed_.notify_all();
}

std::optional<Json> FakeApiClient::object(const ResourceRef& resource, const ObjectKey& key) const {
  std::lock_guard lock(mu_);
  const Json* found = findLocked(resource, key);
  if (found == nullptr) return std::nullopt;
  return *found;
}

std::vector<Json> FakeApiClient::objects(const ResourceRef& resource) const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  const auto store = objects_.find(resource.groupResource());
  if (store == objects_.end()) return out;
  for (const auto& [k, v] : store->second) out.push_back(v);
  return out;
}

void FakeApiClient::compact() {
  std::lock_guard lock(mu_);
  history_.clear();
  oldestResumable_ = rv_;
}

void FakeApiClient::closeWatches() {
  std::lock_guard lock(mu_);
  ++closeGeneration_;
  changed_.notify_all();
}

void FakeApiClient::bookmark(const ResourceRef& resource) {
  std::lock_guard lock(mu_);
  const Json marker = {{"kind", resource.kind},
                       {"apiVersion", resource.apiVersion()},
                       {"metadata", {{"resourceVersion", nextVersionLocked()}}}};
  emitLocked(resource.groupResource(), WatchEventType::kBookmark, marker, Json());
}

void FakeApiClient::setHistoryLimit(size_t events) {
  std::lock_guard lock(mu_);
  historyLimit_ = std::max<size_t>(events, 1);
}

int64_t FakeApiClient::resourceVersion() const {
  std::lock_guard lock(mu_);
  return rv_;
}

size_t FakeApiClient::openWatches() const {
  std::lock_guard lock(mu_);
  return openWatches_;
}

StatusOr<Json> FakeApiClient::get(const ResourceRef& resource, const ObjectKey& key,
                                  const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"get", resource.resource, key, "", Json()};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  const Json* found = findLocked(resource, key);
  if (found == nullptr) return notFoundError(resource, key.name);
  return *found;
}

StatusOr<Json> FakeApiClient::list(const ResourceRef& resource, const std::string& ns,
                                   const ListOptions& options, const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"list", resource.resource, {ns, ""}, "", Json()};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  auto selector = LabelSelector::parse(options.labelSelector);
  if (!selector.ok()) return apiError(400, "BadRequest", selector.status().message());
  Json items = Json::array();
  std::string continueToken;
  std::string lastKey;
  const auto& store = storeLocked(resource);
  for (auto it = store.upper_bound(options.continueToken); it != store.end(); ++it) {
    const Json& o = it->second;
    auto selected = isSelected(resource, ns, *selector, options.fieldSelector, o);
    if (!selected.ok()) return apiError(400, "BadRequest", selected.status().message());
    if (!*selected) continue;
    if (options.limit > 0 && static_cast<int64_t>(items.size()) == options.limit) {
      continueToken = lastKey;
      break;
    }
    items.push_back(o);
    lastKey = it->first;
  }
  Json meta = {{"resourceVersion", std::to_string(rv_)}};
  if (!continueToken.empty()) meta["continue"] = continueToken;
  return Json{{"kind", resource.kind + "List"},
              {"apiVersion", resource.apiVersion()},
              {"metadata", meta},
              {"items", items}};
}

StatusOr<Json> FakeApiClient::createLocked(const ResourceRef& resource, Json object) {
  if (!object.is_object()) return apiError(400, "BadRequest", "the body is not an object");
  Json& meta = object["metadata"];
  if (!meta.is_object()) meta = Json::object();
  std::string name = meta.value("name", std::string());
  if (name.empty() && !meta.value("generateName", std::string()).empty()) {
    name = meta.value("generateName", std::string()) + std::to_string(uidCounter_ + 10000);
    meta["name"] = name;
  }
  if (name.empty()) {
    Status s = apiError(422, "Invalid", resource.kind + " is invalid: metadata.name: Required");
    s.withCause({"FieldValueRequired", "Required value", "metadata.name"});
    return s;
  }
  if (resource.namespaced && meta.value("namespace", std::string()).empty()) {
    return apiError(400, "BadRequest", "the namespace of the object is required");
  }
  if (!resource.namespaced) meta.erase("namespace");
  const ObjectKey key = objectKeyOf(object);
  auto& store = storeLocked(resource);
  if (store.count(key.toString()) != 0) {
    return apiError(409, "AlreadyExists",
                    resource.groupResource() + " \"" + name + "\" already exists");
  }
  object["kind"] = resource.kind;
  object["apiVersion"] = resource.apiVersion();
  object.erase("status");
  meta["uid"] = "fake-uid-" + std::to_string(++uidCounter_);
  meta["creationTimestamp"] = formatRfc3339(clock_());
  meta["generation"] = 1;
  meta.erase("deletionTimestamp");
  meta["resourceVersion"] = nextVersionLocked();
  store[key.toString()] = object;
  emitLocked(resource.groupResource(), WatchEventType::kAdded, object, Json());
  return object;
}

StatusOr<Json> FakeApiClient::create(const ResourceRef& resource, const Json& object,
                                     const WriteOptions& options, const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"create", resource.resource, objectKeyOf(object), "", object};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  if (isReviewResource(resource.resource)) {
    // Reviews are answered, not stored; without a reactor the answer is "no".
    Json answer = object;
    answer["status"] =
        resource.resource == "tokenreviews"
            ? Json{{"authenticated", false},
                   {"error", "FakeApiClient: no token reviewer configured"}}
            : Json{{"allowed", false}, {"reason", "FakeApiClient: no access reviewer configured"}};
    return answer;
  }
  if (options.dryRun) {
    Json preview = object;
    preview["kind"] = resource.kind;
    preview["apiVersion"] = resource.apiVersion();
    return preview;
  }
  return createLocked(resource, object);
}

StatusOr<Json> FakeApiClient::replaceLocked(const ResourceRef& resource, const ObjectKey& key,
                                            Json next, bool statusOnly, bool checkVersion) {
  const Json* storedPtr = findLocked(resource, key);
  if (storedPtr == nullptr) return notFoundError(resource, key.name);
  const Json stored = *storedPtr;
  const std::string sentVersion = resourceVersionOf(next);
  if (checkVersion && !sentVersion.empty() && sentVersion != resourceVersionOf(stored)) {
    return conflictError(resource, key.name,
                         "the object has been modified; please apply your changes to the latest "
                         "version and try again");
  }
  Json result;
  if (statusOnly) {
    result = stored;
    if (next.contains("status")) {
      result["status"] = next["status"];
    } else {
      result.erase("status");
    }
  } else {
    result = std::move(next);
    if (!result.is_object()) return apiError(400, "BadRequest", "the body is not an object");
    Json& meta = result["metadata"];
    const Json& oldMeta = stored["metadata"];
    for (const char* field :
         {"uid", "creationTimestamp", "generation", "deletionTimestamp", "name", "namespace"}) {
      if (oldMeta.contains(field)) {
        meta[field] = oldMeta[field];
      } else {
        meta.erase(field);
      }
    }
    if (stored.contains("status")) {
      result["status"] = stored["status"];
    } else {
      result.erase("status");
    }
    result["kind"] = resource.kind;
    result["apiVersion"] = resource.apiVersion();
    if (specPart(result) != specPart(stored)) {
      meta["generation"] = oldMeta.value("generation", int64_t{1}) + 1;
    }
  }
  result["metadata"]["resourceVersion"] = resourceVersionOf(stored);
  if (withoutVersion(result) == withoutVersion(stored)) return stored;  // no change, no event

  auto& store = storeLocked(resource);
  const std::string k = objectKeyOf(stored).toString();
  result["metadata"]["resourceVersion"] = nextVersionLocked();
  if (result["metadata"].contains("deletionTimestamp") && !hasFinalizers(result)) {
    // The last finalizer is gone: the deletion completes.
    store.erase(k);
    emitLocked(resource.groupResource(), WatchEventType::kDeleted, result, stored);
    collectGarbageLocked(uidOf(result));
    return result;
  }
  store[k] = result;
  emitLocked(resource.groupResource(), WatchEventType::kModified, result, stored);
  return result;
}

StatusOr<Json> FakeApiClient::update(const ResourceRef& resource, const Json& object,
                                     const WriteOptions& /*options*/, const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"update", resource.resource, objectKeyOf(object), "", object};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  return replaceLocked(resource, objectKeyOf(object), object, false, true);
}

StatusOr<Json> FakeApiClient::updateStatus(const ResourceRef& resource, const Json& object,
                                           const WriteOptions& /*options*/,
                                           const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"update", resource.resource, objectKeyOf(object), "status", object};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  return replaceLocked(resource, objectKeyOf(object), object, true, true);
}

StatusOr<Json> FakeApiClient::patch(const ResourceRef& resource, const ObjectKey& key,
                                    const Json& patchBody, const PatchOptions& options,
                                    const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"patch", resource.resource, key, options.subresource, patchBody};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  const Json* stored = findLocked(resource, key);
  if (stored == nullptr) return notFoundError(resource, key.name);
  Json patched = *stored;
  if (options.type == PatchType::kJson) {
    try {
      patched = stored->patch(patchBody);
    } catch (const Json::exception& e) {
      return apiError(422, "Invalid",
                      "the JSON patch could not be applied: " + std::string(e.what()));
    }
  } else {
    // Strategic merge is treated as a JSON merge patch here: good enough for maps, but lists
    // are replaced, not merged by key.
    patched.merge_patch(patchBody);
  }
  if (options.dryRun) return patched;
  return replaceLocked(resource, key, std::move(patched), options.subresource == "status", true);
}

Status FakeApiClient::deleteLocked(const ResourceRef& resource, const ObjectKey& key,
                                   const DeleteOptions& options) {
  const Json* storedPtr = findLocked(resource, key);
  if (storedPtr == nullptr) return notFoundError(resource, key.name);
  const Json stored = *storedPtr;
  if (!options.preconditionUid.empty() && options.preconditionUid != uidOf(stored)) {
    return conflictError(resource, key.name,
                         "Precondition failed: UID in precondition: " + options.preconditionUid +
                             ", UID in object meta: " + uidOf(stored));
  }
  if (!options.preconditionResourceVersion.empty() &&
      options.preconditionResourceVersion != resourceVersionOf(stored)) {
    return conflictError(resource, key.name,
                         "Precondition failed: ResourceVersion in precondition: " +
                             options.preconditionResourceVersion +
                             ", ResourceVersion in object meta: " + resourceVersionOf(stored));
  }
  auto& store = storeLocked(resource);
  const std::string k = objectKeyOf(stored).toString();
  if (hasFinalizers(stored)) {
    if (stored["metadata"].contains("deletionTimestamp")) return {};
    Json marked = stored;
    marked["metadata"]["deletionTimestamp"] = formatRfc3339(clock_());
    marked["metadata"]["resourceVersion"] = nextVersionLocked();
    store[k] = marked;
    emitLocked(resource.groupResource(), WatchEventType::kModified, marked, stored);
    return {};
  }
  Json gone = stored;
  gone["metadata"]["resourceVersion"] = nextVersionLocked();
  store.erase(k);
  emitLocked(resource.groupResource(), WatchEventType::kDeleted, gone, stored);
  if (options.propagation != PropagationPolicy::kOrphan) collectGarbageLocked(uidOf(stored));
  return {};
}

void FakeApiClient::collectGarbageLocked(const std::string& ownerUid) {
  if (ownerUid.empty()) return;
  std::set<std::string> liveUids;
  for (const auto& [gr, store] : objects_) {
    for (const auto& [k, o] : store) liveUids.insert(uidOf(o));
  }
  std::vector<std::pair<ResourceRef, ObjectKey>> orphans;
  for (const auto& [gr, store] : objects_) {
    for (const auto& [k, o] : store) {
      const auto owners = ownerUids(o);
      if (std::find(owners.begin(), owners.end(), ownerUid) == owners.end()) continue;
      const bool anyOwnerLeft = std::any_of(owners.begin(), owners.end(),
                                            [&](const auto& u) { return liveUids.count(u) != 0; });
      if (!anyOwnerLeft) orphans.emplace_back(refs_.at(gr), objectKeyOf(o));
    }
  }
  for (const auto& [ref, key] : orphans) deleteLocked(ref, key, DeleteOptions{});
}

Status FakeApiClient::remove(const ResourceRef& resource, const ObjectKey& key,
                             const DeleteOptions& options, const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"delete", resource.resource, key, "", deleteOptionsBody(options)};
  recordLocked(action);
  if (auto answer = reactLocked(action)) {
    return answer->ok() ? Status() : answer->status();
  }
  return deleteLocked(resource, key, options);
}

StatusOr<Json> FakeApiClient::removeCollection(const ResourceRef& resource, const std::string& ns,
                                               const ListOptions& selection,
                                               const DeleteOptions& options,
                                               const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"deletecollection",
                      resource.resource,
                      {ns, ""},
                      "",
                      {{"labelSelector", selection.labelSelector},
                       {"fieldSelector", selection.fieldSelector},
                       {"options", deleteOptionsBody(options)}}};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  auto selector = LabelSelector::parse(selection.labelSelector);
  if (!selector.ok()) return apiError(400, "BadRequest", selector.status().message());
  std::vector<ObjectKey> matching;
  for (const auto& [k, o] : storeLocked(resource)) {
    auto selected = isSelected(resource, ns, *selector, selection.fieldSelector, o);
    if (!selected.ok()) return apiError(400, "BadRequest", selected.status().message());
    if (*selected) matching.push_back(objectKeyOf(o));
  }
  Json items = Json::array();
  for (const ObjectKey& key : matching) {
    const Json* before = findLocked(resource, key);
    if (before == nullptr) continue;  // collected as garbage of an earlier one
    Json last = *before;
    Status s = deleteLocked(resource, key, options);
    if (!s.ok()) {
      if (s.isNotFound()) continue;
      return s;
    }
    if (const Json* after = findLocked(resource, key)) last = *after;
    items.push_back(std::move(last));
  }
  return Json{{"kind", resource.kind + "List"},
              {"apiVersion", resource.apiVersion()},
              {"metadata", {{"resourceVersion", std::to_string(rv_)}}},
              {"items", items}};
}

StatusOr<Json> FakeApiClient::createSubresource(const ResourceRef& resource, const ObjectKey& key,
                                                const std::string& subresource, const Json& body,
                                                const CallOptions& /*call*/) {
  std::lock_guard lock(mu_);
  const Action action{"create", resource.resource, key, subresource, body};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return *answer;
  if (findLocked(resource, key) == nullptr) return notFoundError(resource, key.name);
  if (resource.resource == "serviceaccounts" && subresource == "token") {
    const Json spec = body.value("spec", Json::object());
    const int64_t seconds = spec.value("expirationSeconds", int64_t{3600});
    const auto expires = std::chrono::system_clock::now() + std::chrono::seconds(seconds);
    Json answer = body;
    answer["apiVersion"] = "authentication.k8s.io/v1";
    answer["kind"] = "TokenRequest";
    answer["metadata"] = {{"name", key.name}, {"namespace", key.ns}};
    answer["status"] = {{"token", "fake-token-" + std::to_string(++uidCounter_)},
                        {"expirationTimestamp", formatRfc3339(expires)}};
    return answer;
  }
  return apiError(404, "NotFound",
                  "the server could not find the requested resource (" + resource.groupResource() +
                      "/" + subresource + ")");
}

Status FakeApiClient::watch(const ResourceRef& resource, const std::string& ns,
                            const WatchOptions& options, const WatchHandler& handler,
                            const CallOptions& call) {
  std::unique_lock lock(mu_);
  const Action action{"watch", resource.resource, {ns, ""}, "", Json()};
  recordLocked(action);
  if (auto answer = reactLocked(action)) return answer->ok() ? Status() : answer->status();
  auto selector = LabelSelector::parse(options.labelSelector);
  if (!selector.ok()) return apiError(400, "BadRequest", selector.status().message());
  const std::string gr = resource.groupResource();
  storeLocked(resource);
  const auto fits = [&](const Json& o) {
    if (o.is_null()) return false;
    if (resource.namespaced && !ns.empty() && objectKeyOf(o).ns != ns) return false;
    if (!selector->matches(labelsOf(o))) return false;
    if (options.fieldSelector.empty()) return true;
    auto f = matchesFieldSelector(options.fieldSelector, o);
    return f.ok() && *f;
  };

  ++openWatches_;
  struct Closer {
    FakeApiClient* self;
    ~Closer() { --self->openWatches_; }  // runs with mu_ held: `lock` is declared earlier
  } closer{this};
  const int64_t generation = closeGeneration_;

  // Delivers events with the lock released, so handlers may call back into the fake.
  const auto deliver = [&](std::vector<WatchEvent>& events) {
    lock.unlock();
    bool more = true;
    for (auto& e : events) {
      if (!handler(std::move(e))) {
        more = false;
        break;
      }
    }
    lock.lock();
    return more;
  };

  int64_t cursor = 0;
  if (options.resourceVersion.empty() || options.resourceVersion == "0") {
    std::vector<WatchEvent> initial;
    for (const auto& [k, o] : objects_[gr]) {
      if (fits(o)) initial.push_back({WatchEventType::kAdded, o});
    }
    cursor = rv_;
    if (!deliver(initial)) return {};
  } else {
    try {
      cursor = std::stoll(options.resourceVersion);
    } catch (const std::exception&) {
      return apiError(400, "BadRequest",
                      "invalid resourceVersion \"" + options.resourceVersion + "\"");
    }
  }

  while (true) {
    if (cursor < oldestResumable_) {
      Status gone = apiError(410, "Expired",
                             "too old resource version: " + std::to_string(cursor) + " (" +
                                 std::to_string(oldestResumable_) + ")");
      std::vector<WatchEvent> err{{WatchEventType::kError, Json{{"kind", "Status"},
                                                                {"apiVersion", "v1"},
                                                                {"status", "Failure"},
                                                                {"message", gone.message()},
                                                                {"reason", "Expired"},
                                                                {"code", 410}}}};
      deliver(err);
      return gone;
    }
    std::vector<WatchEvent> batch;
    for (const auto& h : history_) {
      if (h.rv <= cursor) continue;
      cursor = h.rv;
      if (h.resource != gr) continue;
      if (h.type == WatchEventType::kBookmark) {
        if (options.allowBookmarks) batch.push_back({WatchEventType::kBookmark, h.object});
        continue;
      }
      const bool now = fits(h.object);
      const bool before = fits(h.previous);
      if (h.type == WatchEventType::kDeleted) {
        if (before || now) batch.push_back({WatchEventType::kDeleted, h.object});
      } else if (now && before) {
        batch.push_back({WatchEventType::kModified, h.object});
      } else if (now) {
        batch.push_back({WatchEventType::kAdded, h.object});
      } else if (before) {
        batch.push_back({WatchEventType::kDeleted, h.object});
      }
    }
    if (!batch.empty()) {
      if (!deliver(batch)) return {};
      continue;
    }
    if (closeGeneration_ != generation) return {};
    const int64_t seen = rv_;
    changed_.wait(lock, call.stop, [&] {
      return rv_ != seen || closeGeneration_ != generation || cursor < oldestResumable_;
    });
    if (call.stop.stop_requested()) return cancelled("watch " + gr + ": stopped");
  }
}

}  // namespace tasklease::kube
