#pragma once
// One AgentTask's path from request to revocation, assembled from the three places it is
// written down: the task's status (and its requested-by annotation), the Events about it, and
// the evidence records about it. `kubectl tasklease explain` fetches those and prints this;
// assembly is a pure function so that it is tested on fixtures.
//
//   std::vector<EvidenceSource> evidence = {*readEvidenceFile("operator.jsonl")};
//   TaskTimeline t = buildTimeline(task, events, evidence);
//   out << (json ? t.toJson().dump(2) : t.toText());
//   return t.problems.empty() ? 0 : 1;
//
// Steps are in time order; steps within the same second are in the order a task goes through
// them (requested, decision, issued, workload, pods, ending, revoked), because status fields and
// Events carry whole seconds while evidence carries milliseconds.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/evidence.h"
#include "common/json.h"
#include "common/rfc3339.h"
#include "common/status.h"

namespace tasklease::cli {

// One evidence file as read: what verification found, and every record that parsed.
struct EvidenceSource {
  std::string file;
  VerifyResult verify;
  std::vector<EvidenceRecord> records;
};

// Reads and verifies one evidence file (mid-chain files allowed: a rotated log still explains).
// Errors name the file when it cannot be read.
StatusOr<EvidenceSource> readEvidenceFile(const std::string& path);

// Where a step's evidence record is.
struct EvidenceRef {
  std::string file;
  uint64_t seq = 0;
  std::string kind;
  std::string hash;
};

// An Event about the task that a step stands on.
struct EventRef {
  std::string type;  // Normal | Warning
  std::string reason;
  std::string message;
  int64_t count = 1;
};

struct TimelineStep {
  // requested, authorized, denied, issued, workload, admitted, rejected, exception-used,
  // completed, expired, revoked, event
  std::string step;
  std::optional<TimePoint> time;
  std::string summary;            // one line for people
  Json details = Json::object();  // the facts, merged from every source
  // "task" (its metadata and status), "event", "evidence", in that order
  std::vector<std::string> sources;
  std::vector<EvidenceRef> evidence;
  std::vector<EventRef> events;
};

// What explain says about one evidence file it read.
struct EvidenceFileSummary {
  std::string file;
  VerifyResult verify;
  uint64_t matched = 0;  // records about this task
};

struct RevocationLatency {
  int64_t millis = 0;
  // "operator": measured by the operator (the revoked record's latencyMs), from the moment it
  // saw the ending; "computed": the revoked record's (or revokedAt's) time minus the ending's.
  std::string source;
};

struct TaskTimeline {
  std::string ns;
  std::string name;
  std::string uid;
  std::string phase;
  std::vector<TimelineStep> steps;
  std::optional<RevocationLatency> revocationLatency;
  std::vector<EvidenceFileSummary> evidence;
  // Disagreements between the sources and broken evidence chains; explain exits 1 when any.
  std::vector<std::string> problems;

  Json toJson() const;
  std::string toText() const;
};

// task: the AgentTask object; events: core/v1 Events (those not about this task, by uid or
// name, are skipped); evidence: the files given. Records are this task's when their namespace
// and name match and their uid is the task's or empty (a record written before the API server
// assigned one).
TaskTimeline buildTimeline(const Json& task, const std::vector<Json>& events,
                           const std::vector<EvidenceSource>& evidence);

}  // namespace tasklease::cli
