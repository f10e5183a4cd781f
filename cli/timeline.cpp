#include "cli/timeline.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <map>
#include <sstream>

#include "common/delegation_stamp.h"

namespace tasklease::cli {
namespace {

using std::chrono::milliseconds;

// The order a task goes through its steps; it decides between steps in the same second.
enum Rank : int {
  kRankRequested = 0,
  kRankDecision = 1,
  kRankIssued = 2,
  kRankWorkload = 3,
  kRankPods = 4,
  kRankEnding = 5,
  kRankRevoked = 6,
};

// Which source's time a step takes: evidence has milliseconds, the status and Events seconds.
enum TimePriority : int { kNoTime = -1, kEventTime = 0, kTaskTime = 1, kEvidenceTime = 2 };

struct Draft {
  TimelineStep step;
  int rank = 0;
  int timePriority = kNoTime;

  void setTime(const std::optional<TimePoint>& t, int priority) {
    if (t && priority > timePriority) {
      step.time = t;
      timePriority = priority;
    }
  }
  void addSource(const std::string& source) {
    if (std::find(step.sources.begin(), step.sources.end(), source) == step.sources.end()) {
      step.sources.push_back(source);
    }
  }
  // Fills what the step does not know yet; what it knows is the first source's word.
  void addDetails(const Json& more) {
    if (!more.is_object()) return;
    for (const auto& [k, v] : more.items()) {
      if (!step.details.contains(k)) step.details[k] = v;
    }
  }
};

const Json& member(const Json& j, std::initializer_list<const char*> path) {
  static const Json kNull;
  const Json* cur = &j;
  for (const char* p : path) {
    if (!cur->is_object()) return kNull;
    auto it = cur->find(p);
    if (it == cur->end()) return kNull;
    cur = &*it;
  }
  return *cur;
}

std::string text(const Json& j, std::initializer_list<const char*> path) {
  const Json& v = member(j, path);
  return v.is_string() ? v.get<std::string>() : std::string();
}

std::optional<TimePoint> timeOf(const std::string& s) {
  if (s.empty()) return std::nullopt;
  auto t = parseRfc3339(s);
  if (!t.ok()) return std::nullopt;
  return *t;
}

std::string joinStrings(const Json& list, const std::string& sep = ", ") {
  std::string out;
  if (!list.is_array()) return out;
  for (const Json& v : list) {
    if (!v.is_string()) continue;
    out += (out.empty() ? "" : sep) + v.get<std::string>();
  }
  return out;
}

std::string baseName(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool isEndingReason(const std::string& reason) {
  static const char* const kEndings[] = {"Completed", "WorkloadSucceeded", "WorkloadFailed",
                                         "WorkloadDeleted", "Expired"};
  return std::any_of(std::begin(kEndings), std::end(kEndings),
                     [&](const char* r) { return reason == r; });
}

bool isTerminalPhase(const std::string& phase) {
  return phase == "Succeeded" || phase == "Failed" || phase == "Expired";
}

// Evidence records about the task: same namespace and name, and the task's uid or none.
bool aboutTask(const EvidenceRecord& r, const std::string& ns, const std::string& name,
               const std::string& uid) {
  return r.task.ns == ns && r.task.name == name && (r.task.uid.empty() || r.task.uid == uid);
}

bool eventAboutTask(const Json& event, const std::string& name, const std::string& uid) {
  const Json& involved = member(event, {"involvedObject"});
  const std::string eventUid = text(involved, {"uid"});
  if (!eventUid.empty()) return eventUid == uid;
  return text(involved, {"kind"}) == "AgentTask" && text(involved, {"name"}) == name;
}

std::optional<TimePoint> eventTime(const Json& event) {
  for (const char* field : {"firstTimestamp", "eventTime"}) {
    if (auto t = timeOf(text(event, {field}))) return t;
  }
  return timeOf(text(event, {"metadata", "creationTimestamp"}));
}

std::string requestedSummary(const Json& d) {
  const std::string user = d.value("username", std::string());
  if (user.empty()) return "requested; no requested-by stamp names who asked";
  std::string out = "requested by " + user;
  std::string extra;
  if (!d.value("uid", std::string()).empty()) extra = "uid " + d["uid"].get<std::string>();
  const std::string groups = joinStrings(d.value("groups", Json::array()));
  if (!groups.empty()) extra += (extra.empty() ? "" : ", ") + std::string("groups ") + groups;
  if (!extra.empty()) out += " (" + extra + ")";
  if (d.contains("verified") && d["verified"].is_boolean()) {
    out += d["verified"].get<bool>() ? "; delegation verified (stamped by the webhook)"
                                     : "; delegation NOT verified";
  }
  return out;
}

std::string decisionSummary(const std::string& step, const Json& d) {
  const std::string policy = d.value("policy", std::string());
  const std::string reason = d.value("reason", std::string());
  std::string out = step == "authorized"
                        ? "authorized" + (policy.empty() ? "" : " by policy \"" + policy + "\"")
                        : std::string("denied");
  return reason.empty() ? out : out + ": " + reason;
}

std::string issuedSummary(const Json& d) {
  std::string out = d.value("type", std::string("credential")) + " issued";
  if (!d.value("serviceAccount", std::string()).empty())
    out += " for ServiceAccount " + d["serviceAccount"].get<std::string>();
  if (!d.value("secret", std::string()).empty())
    out += " in Secret " + d["secret"].get<std::string>();
  if (!d.value("spiffeID", std::string()).empty())
    out += ", SPIFFE ID " + d["spiffeID"].get<std::string>();
  if (!d.value("fingerprint", std::string()).empty())
    out += ", fingerprint " + d["fingerprint"].get<std::string>();
  if (!d.value("expiresAt", std::string()).empty())
    out += ", expires " + d["expiresAt"].get<std::string>();
  return out;
}

std::string podSummary(const std::string& kind, const std::string& actor, const Json& d) {
  std::string object = d.value("object", std::string("workload"));
  std::string out = object;
  if (kind == "admitted") {
    out += " admitted";
    if (!d.value("serviceAccount", std::string()).empty())
      out += " under ServiceAccount " + d["serviceAccount"].get<std::string>();
  } else if (kind == "rejected") {
    out += " rejected";
    std::string rules;
    for (const Json& v : d.value("violations", Json::array())) {
      if (v.is_object() && v.contains("rule") && v["rule"].is_string())
        rules += (rules.empty() ? "" : ", ") + v["rule"].get<std::string>();
    }
    if (!rules.empty()) out += " (" + rules + ")";
  } else {
    out += " allowed by IdentityException \"" + d.value("exception", std::string()) + "\"";
  }
  if (!actor.empty()) out += ", requested by " + actor;
  return out;
}

std::string endingSummary(const Json& d) {
  std::string out = d.value("outcome", std::string("ended"));
  if (!d.value("message", std::string()).empty()) out += ": " + d["message"].get<std::string>();
  if (!d.value("reason", std::string()).empty()) out += " (" + d["reason"].get<std::string>() + ")";
  return out;
}

std::string revokedSummary(const Json& d, const std::optional<RevocationLatency>& latency) {
  std::string out = "credential revoked";
  const std::string deleted = joinStrings(d.value("deleted", Json::array()));
  if (!deleted.empty()) out += ": " + deleted + " deleted";
  if (latency) out += "; " + std::to_string(latency->millis) + " ms after the ending";
  return out;
}

Json evidenceFileJson(const EvidenceFileSummary& f) {
  Json j = {{"file", f.file},
            {"ok", f.verify.ok()},
            {"records", f.verify.records},
            {"matched", f.matched}};
  if (!f.verify.ok()) {
    j["problem"] = evidenceProblemName(f.verify.problem);
    j["seq"] = f.verify.seq;
    j["message"] = f.verify.message;
  }
  return j;
}

std::string timeText(const std::optional<TimePoint>& t) {
  return t ? formatRfc3339(*t, true) : std::string("(no time)");
}

}  // namespace

StatusOr<EvidenceSource> readEvidenceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return invalidArgument("evidence file " + path + ": cannot read it: " + std::strerror(errno));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return invalidArgument("evidence file " + path + ": read error");
  const std::string content = buffer.str();
  EvidenceSource source;
  source.file = path;
  std::istringstream verifyIn(content);
  source.verify = verifyEvidence(verifyIn);
  std::istringstream lines(content);
  for (std::string line; std::getline(lines, line);) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j = Json::parse(line, nullptr, false);
    if (j.is_discarded()) continue;
    auto record = evidenceRecordFromJson(j);
    if (record.ok()) source.records.push_back(std::move(*record));
  }
  return source;
}

TaskTimeline buildTimeline(const Json& task, const std::vector<Json>& events,
                           const std::vector<EvidenceSource>& evidence) {
  TaskTimeline out;
  out.ns = text(task, {"metadata", "namespace"});
  out.name = text(task, {"metadata", "name"});
  out.uid = text(task, {"metadata", "uid"});
  out.phase = text(task, {"status", "phase"});
  const Json& status = member(task, {"status"});

  std::optional<Draft> requested, decision, issued, ending, revoked;
  std::vector<Draft> others;
  auto draft = [](std::optional<Draft>& d, const std::string& step, int rank) -> Draft& {
    if (!d) {
      d.emplace();
      d->step.step = step;
      d->rank = rank;
    }
    return *d;
  };

  // ---- the task: metadata and status ----
  {
    Json who = Json::object();
    const Json& delegation = member(status, {"delegation"});
    if (delegation.is_object() && !text(delegation, {"username"}).empty()) {
      who = delegation;
    } else {
      const std::string stamp = text(task, {"metadata", "annotations", kRequestedByAnnotation});
      if (!stamp.empty()) {
        if (auto r = parseRequestedBy(stamp); r.ok()) {
          who = {{"username", r->username}, {"uid", r->uid}, {"groups", r->groups}};
        }
      }
    }
    Draft& d = draft(requested, "requested", kRankRequested);
    d.addSource("task");
    d.addDetails(who);
    d.setTime(timeOf(text(task, {"metadata", "creationTimestamp"})), kTaskTime);
  }
  const Json& policy = member(status, {"policy"});
  if (policy.is_object() && !text(policy, {"decision"}).empty()) {
    const bool allowed = text(policy, {"decision"}) == "Allowed";
    Draft& d = draft(decision, allowed ? "authorized" : "denied", kRankDecision);
    d.addSource("task");
    Json facts = {{"reason", text(policy, {"reason"})}};
    if (!text(policy, {"name"}).empty()) facts["policy"] = text(policy, {"name"});
    d.addDetails(facts);
    d.setTime(timeOf(text(policy, {"evaluatedAt"})), kTaskTime);
  }
  const Json& credential = member(status, {"credential"});
  const std::string statusFingerprint = text(credential, {"fingerprint"});
  if (!text(credential, {"issuedAt"}).empty()) {
    Draft& d = draft(issued, "issued", kRankIssued);
    d.addSource("task");
    Json facts = Json::object();
    for (const auto& [from, to] : std::initializer_list<std::pair<const char*, const char*>>{
             {"type", "type"},
             {"serviceAccountName", "serviceAccount"},
             {"secretName", "secret"},
             {"fingerprint", "fingerprint"},
             {"issuedAt", "issuedAt"},
             {"expiresAt", "expiresAt"},
             {"tokenID", "tokenID"},
             {"serial", "serial"},
             {"spiffeID", "spiffeID"}}) {
      if (!text(credential, {from}).empty()) facts[to] = text(credential, {from});
    }
    d.addDetails(facts);
    d.setTime(timeOf(text(credential, {"issuedAt"})), kTaskTime);
  }
  const Json& revocation = member(status, {"revocation"});
  if (isTerminalPhase(out.phase)) {
    Draft& d = draft(ending, out.phase == "Expired" ? "expired" : "completed", kRankEnding);
    d.addSource("task");
    Json facts = {{"outcome", out.phase}};
    for (const Json& c : member(status, {"conditions"})) {
      if (text(c, {"type"}) != "Ready") continue;
      facts["reason"] = text(c, {"reason"});
      d.setTime(timeOf(text(c, {"lastTransitionTime"})), kTaskTime);
    }
    d.addDetails(facts);
  } else if (out.phase == "Revoking" && isEndingReason(text(revocation, {"reason"}))) {
    // Ended, and being revoked: status.revocation says how and since when.
    const std::string outcome = text(revocation, {"outcome"});
    Draft& d = draft(ending, outcome == "Expired" ? "expired" : "completed", kRankEnding);
    d.addSource("task");
    d.addDetails({{"outcome", outcome},
                  {"reason", text(revocation, {"reason"})},
                  {"message", text(revocation, {"message"})}});
    d.setTime(timeOf(text(revocation, {"startedAt"})), kTaskTime);
  }
  if (out.phase == "Revoking") {
    // A finalizer holding one of the task's objects: everything else is revoked, that is not.
    for (const Json& held : member(revocation, {"held"})) {
      std::string finalizers = joinStrings(member(held, {"finalizers"}));
      out.problems.push_back("the revocation is held up: " + text(held, {"kind"}) + " " + out.ns +
                             "/" + text(held, {"name"}) +
                             " is still present after its deletion (finalizers: " +
                             (finalizers.empty() ? std::string("none") : finalizers) + ")");
    }
  }
  if (!text(credential, {"revokedAt"}).empty()) {
    Draft& d = draft(revoked, "revoked", kRankRevoked);
    d.addSource("task");
    d.addDetails({{"revokedAt", text(credential, {"revokedAt"})}});
    d.setTime(timeOf(text(credential, {"revokedAt"})), kTaskTime);
  }

  // ---- evidence ----
  std::string evidenceIssuedFingerprint;
  std::optional<int64_t> operatorLatency;
  for (const EvidenceSource& source : evidence) {
    EvidenceFileSummary summary{source.file, source.verify, 0};
    if (!source.verify.ok()) {
      out.problems.push_back("evidence " + source.file + ": " +
                             evidenceProblemName(source.verify.problem) + " at seq " +
                             std::to_string(source.verify.seq) + ": " + source.verify.message);
    }
    for (const EvidenceRecord& r : source.records) {
      if (!aboutTask(r, out.ns, out.name, out.uid)) continue;
      ++summary.matched;
      const std::string kind = evidenceKindName(r.kind);
      Draft* d = nullptr;
      Draft own;
      Json facts = r.details.is_object() ? r.details : Json::object();
      switch (r.kind) {
        case EvidenceKind::kDelegated:
          d = &draft(requested, "requested", kRankRequested);
          facts["username"] = r.actor;
          break;
        case EvidenceKind::kAuthorized:
        case EvidenceKind::kDenied:
          d = &draft(decision, kind, kRankDecision);
          if (d->step.step != kind) {
            out.problems.push_back("the status says " + d->step.step + " but evidence " +
                                   baseName(source.file) + " seq " + std::to_string(r.seq) +
                                   " records " + kind);
          }
          break;
        case EvidenceKind::kIssued:
          d = &draft(issued, "issued", kRankIssued);
          if (evidenceIssuedFingerprint.empty())
            evidenceIssuedFingerprint = text(facts, {"fingerprint"});
          break;
        case EvidenceKind::kCompleted:
        case EvidenceKind::kExpired:
          d = &draft(ending, kind, kRankEnding);
          break;
        case EvidenceKind::kRevoked:
          d = &draft(revoked, "revoked", kRankRevoked);
          if (!operatorLatency && member(facts, {"latencyMs"}).is_number_integer())
            operatorLatency = facts["latencyMs"].get<int64_t>();
          if (!text(facts, {"fingerprint"}).empty() && !statusFingerprint.empty() &&
              text(facts, {"fingerprint"}) != statusFingerprint) {
            out.problems.push_back("evidence " + baseName(source.file) + " seq " +
                                   std::to_string(r.seq) + " revoked fingerprint " +
                                   text(facts, {"fingerprint"}) + ", the status names " +
                                   statusFingerprint);
          }
          break;
        case EvidenceKind::kAdmitted:
        case EvidenceKind::kRejected:
        case EvidenceKind::kExceptionUsed:
          own.step.step = kind;
          own.rank = kRankPods;
          own.step.summary = podSummary(kind, r.actor, facts);
          facts["actor"] = r.actor;
          d = &own;
          break;
      }
      d->addSource("evidence");
      d->addDetails(facts);
      d->setTime(timeOf(r.time), kEvidenceTime);
      d->step.evidence.push_back({source.file, r.seq, kind, r.hash});
      if (d == &own) others.push_back(std::move(own));
    }
    out.evidence.push_back(std::move(summary));
  }
  // ---- Events (after the evidence: their messages are the least precise) ----
  for (const Json& e : events) {
    if (!eventAboutTask(e, out.name, out.uid)) continue;
    EventRef ref{text(e, {"type"}), text(e, {"reason"}), text(e, {"message"}),
                 member(e, {"count"}).is_number_integer() ? e["count"].get<int64_t>() : 1};
    Draft* d = nullptr;
    Draft own;
    if (ref.reason == "Authorized" || ref.reason == "Denied") {
      d = &draft(decision, ref.reason == "Authorized" ? "authorized" : "denied", kRankDecision);
    } else if (ref.reason == "CredentialIssued") {
      d = &draft(issued, "issued", kRankIssued);
    } else if (isEndingReason(ref.reason)) {
      d = &draft(ending, ref.reason == "Expired" ? "expired" : "completed", kRankEnding);
      d->addDetails({{"reason", ref.reason}, {"message", ref.message}});
    } else if (ref.reason == "CredentialRevoked") {
      d = &draft(revoked, "revoked", kRankRevoked);
    } else {
      own.step.step = ref.reason == "WorkloadStarted" ? "workload" : "event";
      own.rank = kRankWorkload;
      own.step.summary = ref.type + " " + ref.reason + ": " + ref.message;
      d = &own;
    }
    d->addSource("event");
    d->setTime(eventTime(e), kEventTime);
    d->step.events.push_back(std::move(ref));
    if (d == &own) others.push_back(std::move(own));
  }

  if (!evidenceIssuedFingerprint.empty() && !statusFingerprint.empty() &&
      evidenceIssuedFingerprint != statusFingerprint) {
    out.problems.push_back("the status names credential fingerprint " + statusFingerprint +
                           " but the issued evidence record names " + evidenceIssuedFingerprint);
  }

  // ---- revocation latency ----
  if (revoked) {
    if (operatorLatency) {
      out.revocationLatency = RevocationLatency{*operatorLatency, "operator"};
    } else {
      // (Plain values, not optionals: g++ 12 misreads the optional's state here.)
      TimePoint endedAt{};
      bool ended = ending && ending->step.time.has_value();
      if (ended) endedAt = ending->step.time.value();
      if (out.phase == "Expired" && (!ending || ending->timePriority < kEvidenceTime)) {
        // The deadline is when an expired credential should have stopped working.
        if (auto deadline = timeOf(text(credential, {"expiresAt"}))) {
          endedAt = deadline.value();
          ended = true;
        }
      }
      const TimePoint revokedAt = revoked->step.time.value_or(TimePoint{});
      if (ended && revoked->step.time.has_value() && revokedAt >= endedAt) {
        out.revocationLatency = RevocationLatency{
            std::chrono::duration_cast<milliseconds>(revokedAt - endedAt).count(), "computed"};
      }
    }
  }
  if (issued && isTerminalPhase(out.phase) && !revoked) {
    out.problems.push_back("the task is " + out.phase +
                           " but nothing records its credential as revoked");
  }

  // ---- summaries and order ----
  if (requested) requested->step.summary = requestedSummary(requested->step.details);
  if (decision)
    decision->step.summary = decisionSummary(decision->step.step, decision->step.details);
  if (issued) issued->step.summary = issuedSummary(issued->step.details);
  if (ending) ending->step.summary = endingSummary(ending->step.details);
  if (revoked) revoked->step.summary = revokedSummary(revoked->step.details, out.revocationLatency);

  std::vector<Draft> all;
  for (auto* d : {&requested, &decision, &issued, &ending, &revoked}) {
    if (*d) all.push_back(std::move(**d));
  }
  for (auto& d : others) all.push_back(std::move(d));
  for (Draft& d : all) {
    static const std::map<std::string, int> kSourceOrder = {
        {"task", 0}, {"event", 1}, {"evidence", 2}};
    std::sort(d.step.sources.begin(), d.step.sources.end(),
              [](const std::string& a, const std::string& b) {
                return kSourceOrder.at(a) < kSourceOrder.at(b);
              });
  }
  std::vector<Draft> timed, untimed;
  for (Draft& d : all) (d.step.time ? timed : untimed).push_back(std::move(d));
  auto second = [](const Draft& d) {
    return std::chrono::floor<std::chrono::seconds>(*d.step.time);
  };
  std::stable_sort(timed.begin(), timed.end(), [&](const Draft& a, const Draft& b) {
    if (second(a) != second(b)) return second(a) < second(b);
    if (a.rank != b.rank) return a.rank < b.rank;
    return *a.step.time < *b.step.time;
  });
  // A step without a time goes after the last step that comes before it in a task's life.
  std::stable_sort(untimed.begin(), untimed.end(),
                   [](const Draft& a, const Draft& b) { return a.rank < b.rank; });
  for (Draft& u : untimed) {
    auto at = timed.end();
    while (at != timed.begin() && std::prev(at)->rank > u.rank) --at;
    timed.insert(at, std::move(u));
  }
  for (Draft& d : timed) out.steps.push_back(std::move(d.step));
  return out;
}

Json TaskTimeline::toJson() const {
  Json stepList = Json::array();
  for (const TimelineStep& s : steps) {
    Json evidenceRefs = Json::array();
    for (const EvidenceRef& e : s.evidence) {
      evidenceRefs.push_back(
          {{"file", e.file}, {"seq", e.seq}, {"kind", e.kind}, {"hash", e.hash}});
    }
    Json eventRefs = Json::array();
    for (const EventRef& e : s.events) {
      eventRefs.push_back(
          {{"type", e.type}, {"reason", e.reason}, {"message", e.message}, {"count", e.count}});
    }
    stepList.push_back({{"step", s.step},
                        {"time", s.time ? Json(formatRfc3339(*s.time, true)) : Json(nullptr)},
                        {"summary", s.summary},
                        {"details", s.details},
                        {"sources", s.sources},
                        {"evidence", evidenceRefs},
                        {"events", eventRefs}});
  }
  Json revocation = nullptr;
  for (const TimelineStep& s : steps) {
    if (s.step != "revoked") continue;
    revocation = {
        {"time", s.time ? Json(formatRfc3339(*s.time, true)) : Json(nullptr)},
        {"latencyMs", revocationLatency ? Json(revocationLatency->millis) : Json(nullptr)},
        {"latencySource", revocationLatency ? Json(revocationLatency->source) : Json(nullptr)}};
  }
  Json files = Json::array();
  for (const EvidenceFileSummary& f : evidence) files.push_back(evidenceFileJson(f));
  return {{"task", {{"namespace", ns}, {"name", name}, {"uid", uid}, {"phase", phase}}},
          {"steps", stepList},
          {"revocation", revocation},
          {"evidenceFiles", files},
          {"problems", problems}};
}

std::string TaskTimeline::toText() const {
  std::ostringstream out;
  out << "AgentTask " << ns << "/" << name << " (uid " << uid
      << "): " << (phase.empty() ? "no phase yet" : phase) << "\n\n";
  for (const TimelineStep& s : steps) {
    out << timeText(s.time) << "  " << s.step
        << std::string(s.step.size() < 15 ? 15 - s.step.size() : 1, ' ') << s.summary;
    std::string from;
    for (const std::string& src : s.sources) {
      if (src == "evidence") {
        for (const EvidenceRef& e : s.evidence)
          from += (from.empty() ? "" : ", ") + baseName(e.file) + "#" + std::to_string(e.seq);
      } else if (src == "event") {
        for (const EventRef& e : s.events)
          from += (from.empty() ? "" : ", ") + std::string("event ") + e.reason;
      } else {
        from += (from.empty() ? "" : ", ") + src;
      }
    }
    out << "  [" << from << "]\n";
  }
  if (revocationLatency) {
    out << "\nrevocation latency: " << revocationLatency->millis << " ms ("
        << (revocationLatency->source == "operator" ? "measured by the operator"
                                                    : "computed from the record times")
        << ")\n";
  }
  if (evidence.empty()) {
    out << "\nno evidence files given (--evidence FILE): steps from the status and Events only\n";
  } else {
    out << "\n";
    for (const EvidenceFileSummary& f : evidence) {
      out << "evidence " << f.file << ": "
          << (f.verify.ok() ? "chain ok" : "chain BROKEN (" + f.verify.message + ")") << ", "
          << f.verify.records << " records, " << f.matched << " about this task\n";
    }
  }
  if (!problems.empty()) {
    out << "\nproblems:\n";
    for (const std::string& p : problems) out << "  - " << p << "\n";
  }
  return out.str();
}

}  // namespace tasklease::cli
