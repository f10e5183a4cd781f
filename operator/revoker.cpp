#include "operator/revoker.h"

#include <algorithm>
#include <atomic>
#include <iterator>
#include <map>
#include <set>

namespace tasklease::op {
namespace {

std::string uidLabelOf(const Json& object) {
  return stringAt(object, {"metadata", "labels", kTaskUidLabel});
}

std::vector<std::string> uidsOf(const std::vector<RevocationTarget>& targets,
                                const std::vector<size_t>& which) {
  std::vector<std::string> uids;
  uids.reserve(which.size());
  for (size_t i : which) uids.push_back(targets[i].task.uid);
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}

// "3 tasks in team-a" or "task team-a/t1", for error messages.
std::string describe(const std::vector<RevocationTarget>& targets, const std::vector<size_t>& which,
                     const std::string& ns) {
  if (which.size() == 1) return "task " + ns + "/" + targets[which.front()].task.name;
  return std::to_string(which.size()) + " tasks in " + ns;
}

}  // namespace

std::string HeldObject::describe() const {
  std::string out = kind + " " + ns + "/" + name + " (finalizers: ";
  for (size_t i = 0; i < finalizers.size(); ++i) out += (i == 0 ? "" : ", ") + finalizers[i];
  return out + (finalizers.empty() ? "none; it is deleted again on the next pass)" : ")");
}

Json HeldObject::toJson() const {
  return {{"kind", kind}, {"name", name}, {"finalizers", finalizers}};
}

struct Revoker::Pending {
  RevocationTarget target;
  TimePoint now;
  std::optional<StatusOr<RevocationReport>> result;
};

std::string taskUidSelector(const std::vector<std::string>& uids) {
  std::string selector = std::string(kManagedSelector) + "," + kTaskUidLabel + " in (";
  for (size_t i = 0; i < uids.size(); ++i) selector += (i == 0 ? "" : ",") + uids[i];
  return selector + ")";
}

Revoker::Revoker(kube::ApiClient& client, const IssuerSet& issuers, RevokerOptions options)
    : client_(client),
      issuers_(issuers),
      options_{std::max<size_t>(options.maxBatch, 1), std::max<size_t>(options.parallelGroups, 1)} {
}

StatusOr<RevocationReport> Revoker::revoke(const RevocationTarget& target, TimePoint now) {
  auto mine = std::make_shared<Pending>(Pending{target, now, std::nullopt});
  std::unique_lock lock(mu_);
  queue_.push_back(mine);
  while (!mine->result) {
    if (busy_) {
      cv_.wait(lock);
      continue;
    }
    // No batch in flight: this caller runs one with everything gathered so far (its own
    // target included) while the callers that come meanwhile gather the next.
    busy_ = true;
    std::vector<std::shared_ptr<Pending>> batch;
    batch.swap(queue_);
    lock.unlock();
    std::vector<RevocationTarget> targets;
    targets.reserve(batch.size());
    TimePoint latest = now;
    for (const auto& p : batch) {
      targets.push_back(p->target);
      latest = std::max(latest, p->now);
    }
    std::vector<StatusOr<RevocationReport>> results;
    try {
      results = revokeAll(targets, latest);
    } catch (...) {
      lock.lock();
      busy_ = false;
      for (const auto& p : batch) p->result = internalError("the revocation batch failed");
      cv_.notify_all();
      throw;
    }
    lock.lock();
    for (size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
    busy_ = false;
    cv_.notify_all();
  }
  return std::move(*mine->result);
}

size_t Revoker::waiting() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

std::vector<StatusOr<RevocationReport>> Revoker::revokeAll(
    const std::vector<RevocationTarget>& targets, TimePoint now) {
  std::vector<StatusOr<RevocationReport>> results(targets.size(), RevocationReport{});
  // By namespace (a selector is per namespace), then in groups of at most maxBatch uids; the
  // targets of one uid (a task given twice) always share a group, since groups run in parallel.
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  std::map<std::string, std::vector<size_t>> byNamespace;
  for (size_t i = 0; i < targets.size(); ++i) byNamespace[targets[i].task.ns].push_back(i);
  for (const auto& [ns, all] : byNamespace) {
    std::map<std::string, size_t> groupOfUid;
    size_t uidsInLast = 0;
    for (size_t i : all) {
      const std::string& uid = targets[i].task.uid;
      if (const auto seen = groupOfUid.find(uid); seen != groupOfUid.end()) {
        groups[seen->second].second.push_back(i);
        continue;
      }
      if (groupOfUid.empty() || uidsInLast == options_.maxBatch) {
        groups.emplace_back(ns, std::vector<size_t>{});
        uidsInLast = 0;
      }
      groupOfUid.emplace(uid, groups.size() - 1);
      ++uidsInLast;
      groups.back().second.push_back(i);
    }
  }
  // Groups are independent (each writes only its own targets' results): up to
  // parallelGroups of them at once, each on its own thread, the first on this one.
  std::atomic<size_t> next{0};
  const auto drain = [&] {
    for (size_t g = next++; g < groups.size(); g = next++) {
      revokeGroup(targets, groups[g].first, groups[g].second, now, results);
    }
  };
  {
    std::vector<std::jthread> helpers;
    const size_t threads = std::min(groups.size(), options_.parallelGroups);
    for (size_t t = 1; t < threads; ++t) helpers.emplace_back(drain);
    drain();
  }
  return results;
}

void Revoker::revokeGroup(const std::vector<RevocationTarget>& targets, const std::string& ns,
                          const std::vector<size_t>& group, TimePoint now,
                          std::vector<StatusOr<RevocationReport>>& results) {
  // What this pass asked the API server to delete, per target, whether or not the target's
  // revocation finishes (merged with earlier passes' at the end).
  std::map<size_t, std::vector<std::string>> requested;
  std::map<size_t, std::vector<HeldObject>> held;
  std::map<size_t, Status> failed;  // the first error of each target; its other steps still run
  const auto failAll = [&](const std::vector<size_t>& which, const Status& s) {
    for (size_t i : which) failed.emplace(i, s);
  };
  // Deletes the kind's objects of `which`, then lists what is left: a task with an object left
  // has it held, and goes on with the next kind all the same.
  const auto step = [&](const kube::ResourceRef& kind, const std::vector<size_t>& which) {
    if (which.empty()) return;
    kube::ListOptions selection;
    selection.labelSelector = taskUidSelector(uidsOf(targets, which));
    kube::DeleteOptions options;
    options.propagation = kube::PropagationPolicy::kBackground;
    const std::string whose = describe(targets, which, ns);
    auto deleted = client_.removeCollection(kind, ns, selection, options);
    if (!deleted.ok()) {
      return failAll(which,
                     deleted.status().annotate("deleting the " + kind.kind + " of " + whose));
    }
    std::map<std::string, std::vector<std::string>> gone;  // uid -> "Kind/name"
    for (const Json& item : deleted->value("items", Json::array())) {
      gone[uidLabelOf(item)].push_back(kind.kind + "/" + stringAt(item, {"metadata", "name"}));
    }
    for (size_t i : which) {
      const auto& names = gone[targets[i].task.uid];
      requested[i].insert(requested[i].end(), names.begin(), names.end());
    }
    auto left = client_.list(kind, ns, selection);
    if (!left.ok()) {
      return failAll(which, left.status().annotate("verifying the deletion of the " + kind.kind +
                                                   " of " + whose));
    }
    for (const Json& item : left->value("items", Json::array())) {
      HeldObject object{kind.kind, ns, stringAt(item, {"metadata", "name"}), {}};
      for (const Json& f : objectAt(item, {"metadata"}).value("finalizers", Json::array())) {
        if (f.is_string()) object.finalizers.push_back(f.get<std::string>());
      }
      const std::string uid = uidLabelOf(item);
      for (size_t i : which) {
        if (targets[i].task.uid == uid) held[i].push_back(object);
      }
    }
  };

  step(kube::resources::kRoleBindings, group);
  std::vector<size_t> secrets = group;
  beforeSecrets(targets, ns, secrets, now, failed);
  step(kube::resources::kSecrets, secrets);
  step(kube::resources::kServiceAccounts, group);
  step(kube::resources::kRoles, group);
  for (size_t i : group) {
    if (const auto error = failed.find(i); error != failed.end()) {
      results[i] = error->second;
      continue;
    }
    results[i] = RevocationReport{};
    if (const auto h = held.find(i); h != held.end()) results[i]->held = std::move(h->second);
  }
  report(targets, group, requested, results);
}

void Revoker::report(const std::vector<RevocationTarget>& targets, const std::vector<size_t>& group,
                     const std::map<size_t, std::vector<std::string>>& requested,
                     std::vector<StatusOr<RevocationReport>>& results) {
  std::map<std::string, std::vector<size_t>> byUid;
  for (size_t i : group) byUid[targets[i].task.uid].push_back(i);
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(unfinishedMu_);
  // A revocation this process stopped retrying (the task gone elsewhere, leadership lost) is
  // let go after a while.
  std::erase_if(unfinished_,
                [&](const auto& entry) { return now - entry.second.touched > kUnfinishedMemory; });
  for (const auto& [uid, which] : byUid) {
    std::vector<std::string> all;  // earlier passes' first
    if (auto earlier = unfinished_.find(uid); earlier != unfinished_.end()) {
      all = std::move(earlier->second.deleted);
      unfinished_.erase(earlier);
    }
    const auto fromEarlier = static_cast<std::ptrdiff_t>(all.size());
    for (size_t i : which) {
      const auto mine = requested.find(i);
      if (mine == requested.end()) continue;
      for (const std::string& name : mine->second) {
        if (std::find(all.begin(), all.end(), name) == all.end()) all.push_back(name);
      }
    }
    // Every report says what the revocation deleted so far, a finished one or one held up.
    for (size_t i : which) {
      if (!results[i].ok()) continue;
      results[i]->deleted = all;
      results[i]->deletedByThisPass.assign(all.begin() + fromEarlier, all.end());
    }
    const bool done = std::any_of(which.begin(), which.end(), [&](size_t i) {
      return results[i].ok() && results[i]->complete();
    });
    if (!done && !all.empty())
      unfinished_[uid] = {std::move(all), now};  // for the pass that finishes
  }
}

void Revoker::beforeSecrets(const std::vector<RevocationTarget>& targets, const std::string& ns,
                            std::vector<size_t>& which, TimePoint now,
                            std::map<size_t, Status>& failed) {
  // A token dies with its Secret; only other types (or an unknown one) need the Secret read
  // first, for what must outlive it.
  const auto needsSecret = [&](size_t i) {
    return targets[i].type != CredentialType::kServiceAccountToken;
  };
  std::set<size_t> keep;                // targets whose Secret must stay for the next pass
  std::map<std::string, Json> secrets;  // uid -> its credential Secret
  if (std::any_of(which.begin(), which.end(), needsSecret)) {
    std::vector<size_t> reading;
    std::copy_if(which.begin(), which.end(), std::back_inserter(reading), needsSecret);
    kube::ListOptions selection;
    selection.labelSelector = taskUidSelector(uidsOf(targets, reading));
    auto listed = client_.list(kube::resources::kSecrets, ns, selection);
    if (!listed.ok()) {
      const Status s = listed.status().annotate("reading the credential Secrets of " +
                                                describe(targets, reading, ns));
      for (size_t i : reading) {
        failed.emplace(i, s);
        keep.insert(i);
      }
    } else {
      std::map<std::string, std::string> expectedName;  // uid -> the credential Secret's name
      for (size_t i : reading) expectedName[targets[i].task.uid] = targets[i].names.secret();
      for (Json& item : (*listed)["items"]) {
        const std::string uid = uidLabelOf(item);
        const bool named = stringAt(item, {"metadata", "name"}) == expectedName[uid];
        if (named || secrets.count(uid) == 0) secrets[uid] = std::move(item);
      }
    }
  }
  std::map<CredentialType, std::vector<size_t>> byType;
  for (size_t i : which) {
    if (keep.count(i) != 0) continue;
    std::optional<CredentialType> type = targets[i].type;
    const auto secret = secrets.find(targets[i].task.uid);
    if (!type && secret != secrets.end()) {
      type = parseCredentialType(
          stringAt(secret->second, {"metadata", "annotations", kCredentialTypeAnnotation}));
    }
    if (type) byType[*type].push_back(i);
  }
  for (const auto& [type, ofType] : byType) {
    const auto issuer = issuers_.find(type);
    if (issuer == issuers_.end()) continue;
    std::vector<RevokeContext> contexts;
    for (size_t i : ofType) {
      const auto secret = secrets.find(targets[i].task.uid);
      contexts.push_back(
          {targets[i].task,
           secret != secrets.end() ? std::optional<Json>(secret->second) : std::nullopt,
           targets[i].statusCredential, now});
    }
    Status s = issuer->second->beforeRevoke(contexts);
    if (s.ok()) continue;
    for (size_t i : ofType) {
      failed.emplace(i, s.annotate("revoking the credential of " + targets[i].task.ns + "/" +
                                   targets[i].task.name));
      keep.insert(i);
    }
  }
  std::erase_if(which, [&](size_t i) { return keep.count(i) != 0; });
}

// ---- RevocationBatcher ----

namespace {
// An outcome nobody came back for (the task vanished meanwhile) is let go after this.
constexpr std::chrono::minutes kOutcomeMemory{10};
}  // namespace

RevocationBatcher::RevocationBatcher(Revoker& revoker, std::function<TimePoint()> now, size_t lanes)
    : revoker_(revoker), now_(std::move(now)) {
  for (size_t i = 0; i < std::max<size_t>(lanes, 1); ++i) {
    lanes_.emplace_back([this](const std::stop_token& stop) { run(stop); });
  }
}

RevocationBatcher::~RevocationBatcher() {
  for (auto& lane : lanes_) lane.request_stop();
  cv_.notify_all();
}

void RevocationBatcher::setDone(std::function<void(const std::string& key)> done) {
  std::lock_guard lock(doneMu_);
  done_ = std::move(done);
}

std::optional<StatusOr<RevocationReport>> RevocationBatcher::poll(const std::string& key,
                                                                  const RevocationTarget& target) {
  std::lock_guard lock(mu_);
  const std::string& uid = target.task.uid;
  if (auto found = outcomes_.find(uid); found != outcomes_.end()) {
    StatusOr<RevocationReport> result = std::move(found->second.result);
    outcomes_.erase(found);
    return result;
  }
  if (queued_.insert(uid).second) {
    queue_.push_back({key, target});
    cv_.notify_all();
  }
  return std::nullopt;
}

std::vector<RevocationBatcher::Entry> RevocationBatcher::takeGroup() {
  std::vector<Entry> group;
  const std::string ns = queue_.front().target.task.ns;
  for (auto it = queue_.begin(); it != queue_.end() && group.size() < revoker_.maxBatch();) {
    if (it->target.task.ns != ns) {
      ++it;
      continue;
    }
    group.push_back(std::move(*it));
    it = queue_.erase(it);
  }
  return group;
}

void RevocationBatcher::run(const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, stop, [&] { return !queue_.empty(); });
    if (stop.stop_requested()) return;
    std::vector<Entry> group = takeGroup();
    lock.unlock();
    std::vector<RevocationTarget> targets;
    targets.reserve(group.size());
    for (const Entry& e : group) targets.push_back(e.target);
    auto results = revoker_.revokeAll(targets, now_());
    lock.lock();
    const auto at = std::chrono::steady_clock::now();
    std::erase_if(outcomes_, [&](const auto& o) { return at - o.second.at > kOutcomeMemory; });
    for (size_t i = 0; i < group.size(); ++i) {
      const std::string& uid = group[i].target.task.uid;
      outcomes_.insert_or_assign(uid, Outcome{std::move(results[i]), at});
      queued_.erase(uid);
    }
    lock.unlock();
    {
      std::lock_guard done(doneMu_);
      if (done_) {
        for (const Entry& e : group) done_(e.key);
      }
    }
    lock.lock();
  }
}

}  // namespace tasklease::op
