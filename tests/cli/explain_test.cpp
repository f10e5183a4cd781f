// explain's timeline assembly (status, Events and evidence merged in time order, revocation
// latency, disagreements) on fixtures, and the explain and complete commands against an
// in-memory API server.

#include "cli/explain.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "cli/complete.h"
#include "cli/timeline.h"
#include "common/crypto.h"
#include "common/evidence.h"
#include "common/json.h"
#include "tests/mocks/fake_api_client.h"

namespace tasklease::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kUid[] = "uid-1";
constexpr char kFingerprint[] = "sha256:aa11";

TimePoint at(const std::string& t) {
  return *parseRfc3339(t);
}

// A task that went the whole way: requested, allowed, issued, completed, revoked.
Json finishedTask() {
  return Json::parse(R"({
    "apiVersion": "tasklease.io/v1alpha1", "kind": "AgentTask",
    "metadata": {"name": "fix-billing", "namespace": "team-a", "uid": "uid-1",
                 "creationTimestamp": "2026-03-01T12:00:00Z"},
    "spec": {"agent": "refactor-bot", "completed": true},
    "status": {
      "phase": "Succeeded",
      "delegation": {"username": "alice", "uid": "u-alice", "groups": ["devs"], "verified": true},
      "policy": {"name": "team-a-refactor", "decision": "Allowed", "reason": "allowed by team-a-refactor",
                 "evaluatedAt": "2026-03-01T12:00:00Z"},
      "credential": {"type": "ServiceAccountToken", "serviceAccountName": "tl-fix-billing-1a2b",
                     "secretName": "tl-fix-billing-1a2b", "issuedAt": "2026-03-01T12:00:01Z",
                     "expiresAt": "2026-03-01T12:30:00Z", "fingerprint": "sha256:aa11",
                     "tokenID": "jti-1", "revokedAt": "2026-03-01T12:05:02Z"},
      "conditions": [{"type": "Ready", "status": "False", "reason": "Completed",
                      "lastTransitionTime": "2026-03-01T12:05:02Z"}]}})");
}

Json event(const std::string& reason, const std::string& time, const std::string& uid = kUid,
           const std::string& message = "m") {
  return {
      {"type", reason == "Denied" ? "Warning" : "Normal"},
      {"reason", reason},
      {"message", message},
      {"count", 1},
      {"firstTimestamp", time},
      {"lastTimestamp", time},
      {"metadata", {{"name", "fix-billing." + randomHex(4)}, {"namespace", "team-a"}}},
      {"involvedObject",
       {{"kind", "AgentTask"}, {"name", "fix-billing"}, {"namespace", "team-a"}, {"uid", uid}}}};
}

class ExplainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("explain-" + randomHex(4));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes an evidence chain whose records carry the given times, in order.
  std::string chain(const std::string& name,
                    const std::vector<std::pair<std::string, EvidenceEvent>>& records) {
    const std::string path = (dir_ / name).string();
    size_t next = 0;
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<FileEvidenceSink>(path));
    auto c =
        EvidenceChain::open(std::move(sinks), nullptr, [&]() { return at(records[next].first); });
    EXPECT_TRUE(c.ok());
    for (; next < records.size(); ++next) EXPECT_TRUE((*c)->append(records[next].second).ok());
    return path;
  }

  // The operator's records for finishedTask(), with or without its latency measure.
  std::string operatorChain(bool withLatency = true) {
    const EvidenceTask task{"team-a", "fix-billing", kUid};
    Json revoked = {
        {"reason", "Completed"},
        {"deleted", {"RoleBinding/tl-x", "Secret/tl-x", "ServiceAccount/tl-x", "Role/tl-x"}},
        {"fingerprint", kFingerprint}};
    if (withLatency) revoked["latencyMs"] = 850;
    return chain(
        "operator.jsonl",
        {{"2026-03-01T12:00:00.100Z",
          {EvidenceKind::kDelegated, task, "alice", {{"uid", "u-alice"}, {"verified", true}}}},
         {"2026-03-01T12:00:00.200Z",
          {EvidenceKind::kAuthorized,
           task,
           "tasklease-operator",
           {{"policy", "team-a-refactor"}, {"reason", "allowed by team-a-refactor"}}}},
         {"2026-03-01T12:00:00.300Z",
          {EvidenceKind::kAuthorized,
           {"team-a", "other-task", "uid-9"},
           "tasklease-operator",
           {{"policy", "p"}}}},
         {"2026-03-01T12:00:01.400Z",
          {EvidenceKind::kIssued,
           task,
           "tasklease-operator",
           {{"fingerprint", kFingerprint}, {"expiresAt", "2026-03-01T12:30:00Z"}}}},
         {"2026-03-01T12:05:01.900Z",
          {EvidenceKind::kCompleted,
           task,
           "tasklease-operator",
           {{"outcome", "Succeeded"}, {"reason", "Completed"}, {"message", "done"}}}},
         {"2026-03-01T12:05:02.750Z",
          {EvidenceKind::kRevoked, task, "tasklease-operator", revoked}}});
  }

  std::string webhookChain() {
    return chain("webhook.jsonl",
                 {{"2026-03-01T12:01:00.000Z",
                   {EvidenceKind::kAdmitted,
                    {"team-a", "fix-billing", kUid},
                    "bob",
                    {{"object", "Pod/agent-1"}, {"serviceAccount", "tl-fix-billing-1a2b"}}}},
                  {"2026-03-01T12:01:00.500Z",
                   {EvidenceKind::kAdmitted,
                    {"team-a", "fix-billing", "uid-of-an-earlier-task"},
                    "bob",
                    {{"object", "Pod/old"}}}}});
  }

  static TaskTimeline explain(const Json& task, const std::vector<Json>& events,
                              const std::vector<std::string>& files) {
    std::vector<EvidenceSource> sources;
    for (const auto& f : files) {
      auto s = readEvidenceFile(f);
      EXPECT_TRUE(s.ok()) << s.status().message();
      if (s.ok()) sources.push_back(std::move(*s));
    }
    return buildTimeline(task, events, sources);
  }

  static std::vector<std::string> stepNames(const TaskTimeline& t) {
    std::vector<std::string> out;
    for (const auto& s : t.steps) out.push_back(s.step);
    return out;
  }

  fs::path dir_;
};

TEST_F(ExplainTest, StepsFromStatusEventsAndEvidenceAreInTimeOrder) {
  const std::vector<Json> events = {event("CredentialRevoked", "2026-03-01T12:05:02Z"),
                                    event("Authorized", "2026-03-01T12:00:00Z"),
                                    event("WorkloadStarted", "2026-03-01T12:00:30Z"),
                                    event("CredentialIssued", "2026-03-01T12:00:01Z"),
                                    event("Completed", "2026-03-01T12:05:02Z")};
  TaskTimeline t = explain(finishedTask(), events, {operatorChain(), webhookChain()});
  EXPECT_THAT(stepNames(t), ElementsAre("requested", "authorized", "issued", "workload", "admitted",
                                        "completed", "revoked"));
  EXPECT_TRUE(t.problems.empty()) << t.problems.front();

  const TimelineStep& issued = t.steps[2];
  EXPECT_THAT(issued.sources, ElementsAre("task", "event", "evidence"));
  EXPECT_EQ(issued.details["fingerprint"], kFingerprint);
  EXPECT_EQ(issued.details["expiresAt"], "2026-03-01T12:30:00Z");
  ASSERT_EQ(issued.evidence.size(), 1U);
  EXPECT_EQ(issued.evidence[0].seq, 4U);
  // Evidence times (milliseconds) win over the status's whole seconds.
  EXPECT_EQ(formatRfc3339(*issued.time, true), "2026-03-01T12:00:01.400Z");
  EXPECT_THAT(t.steps[0].summary, HasSubstr("requested by alice"));
  EXPECT_THAT(t.steps[0].summary, HasSubstr("delegation verified"));
  EXPECT_THAT(t.steps[1].summary, HasSubstr("policy \"team-a-refactor\""));
  EXPECT_EQ(t.steps[4].details["object"], "Pod/agent-1");
  // The ending's words are the evidence's, not the Event's.
  EXPECT_EQ(t.steps[5].summary, "Succeeded: done (Completed)");
  EXPECT_EQ(t.steps[4].evidence[0].file, (dir_ / "webhook.jsonl").string());
  // The other task's record and the earlier incarnation's pod are not this task's.
  ASSERT_EQ(t.evidence.size(), 2U);
  EXPECT_EQ(t.evidence[0].matched, 5U);
  EXPECT_EQ(t.evidence[1].matched, 1U);
}

TEST_F(ExplainTest, RevocationLatencyIsTheOperatorsMeasureWhenRecorded) {
  TaskTimeline t = explain(finishedTask(), {}, {operatorChain(true)});
  ASSERT_TRUE(t.revocationLatency);
  EXPECT_EQ(t.revocationLatency->millis, 850);
  EXPECT_EQ(t.revocationLatency->source, "operator");
  EXPECT_THAT(t.steps.back().summary, HasSubstr("850 ms after the ending"));
}

TEST_F(ExplainTest, RevocationLatencyIsComputedFromTheRecordTimesOtherwise) {
  TaskTimeline t = explain(finishedTask(), {}, {operatorChain(false)});
  ASSERT_TRUE(t.revocationLatency);
  EXPECT_EQ(t.revocationLatency->millis, 850);  // 12:05:02.750 - 12:05:01.900
  EXPECT_EQ(t.revocationLatency->source, "computed");
}

TEST_F(ExplainTest, ExpiredTaskLatencyRunsFromTheDeadlineWithoutEvidence) {
  Json task = finishedTask();
  task["status"]["phase"] = "Expired";
  task["status"]["credential"]["revokedAt"] = "2026-03-01T12:30:02Z";
  task["status"]["conditions"][0]["reason"] = "Expired";
  task["status"]["conditions"][0]["lastTransitionTime"] = "2026-03-01T12:30:02Z";
  TaskTimeline t = explain(task, {}, {});
  EXPECT_THAT(stepNames(t), ElementsAre("requested", "authorized", "issued", "expired", "revoked"));
  ASSERT_TRUE(t.revocationLatency);
  EXPECT_EQ(t.revocationLatency->millis, 2000);
  EXPECT_EQ(t.revocationLatency->source, "computed");
}

TEST_F(ExplainTest, StepsInTheSameSecondFollowTheTaskOrder) {
  Json task = finishedTask();
  for (auto* f :
       {&task["status"]["policy"]["evaluatedAt"], &task["status"]["credential"]["issuedAt"],
        &task["status"]["credential"]["revokedAt"],
        &task["status"]["conditions"][0]["lastTransitionTime"]}) {
    *f = "2026-03-01T12:00:00Z";
  }
  TaskTimeline t = explain(task, {}, {});
  EXPECT_THAT(stepNames(t),
              ElementsAre("requested", "authorized", "issued", "completed", "revoked"));
}

TEST_F(ExplainTest, EventsOfAnEarlierTaskWithTheSameNameAreIgnored) {
  TaskTimeline t =
      explain(finishedTask(), {event("WorkloadRefused", "2026-03-01T12:00:30Z", "old-uid")}, {});
  for (const auto& s : t.steps) EXPECT_TRUE(s.events.empty()) << s.step;
}

TEST_F(ExplainTest, FingerprintThatDisagreesWithTheEvidenceIsAProblem) {
  Json task = finishedTask();
  task["status"]["credential"]["fingerprint"] = "sha256:bb22";
  TaskTimeline t = explain(task, {}, {operatorChain()});
  ASSERT_FALSE(t.problems.empty());
  EXPECT_THAT(t.problems.back(), HasSubstr("sha256:bb22"));
  EXPECT_THAT(t.problems.back(), HasSubstr(kFingerprint));
}

TEST_F(ExplainTest, DecisionThatDisagreesWithTheEvidenceIsAProblem) {
  Json task = finishedTask();
  task["status"]["policy"]["decision"] = "Denied";
  TaskTimeline t = explain(task, {}, {operatorChain()});
  ASSERT_FALSE(t.problems.empty());
  EXPECT_THAT(t.problems.front(), HasSubstr("the status says denied"));
}

TEST_F(ExplainTest, BrokenEvidenceChainIsAProblemNamingTheSeq) {
  const std::string path = operatorChain();
  std::vector<std::string> lines;
  {
    std::ifstream in(path);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
  }
  lines.erase(lines.begin() + 2);  // seq 3
  {
    std::ofstream out(path, std::ios::trunc);
    for (const auto& l : lines) out << l << "\n";
  }
  TaskTimeline t = explain(finishedTask(), {}, {path});
  ASSERT_EQ(t.problems.size(), 1U);
  EXPECT_THAT(t.problems[0], HasSubstr("missing at seq 3"));
  EXPECT_FALSE(t.evidence[0].verify.ok());
}

TEST_F(ExplainTest, AnX509TasksIssuedStepNamesItsSpiffeIdWithTheTaskUid) {
  Json task = finishedTask();
  const std::string id = "spiffe://example.org/ns/team-a/task/fix-billing/uid/uid-1";
  task["status"]["credential"]["type"] = "X509SVID";
  task["status"]["credential"].erase("tokenID");
  task["status"]["credential"]["serial"] = "5f3a";
  task["status"]["credential"]["spiffeID"] = id;
  TaskTimeline t = explain(task, {}, {});
  ASSERT_THAT(stepNames(t),
              ElementsAre("requested", "authorized", "issued", "completed", "revoked"));
  EXPECT_EQ(t.steps[2].details["spiffeID"], id);
  EXPECT_THAT(t.steps[2].summary, HasSubstr("SPIFFE ID " + id));
}

TEST_F(ExplainTest, ARevokingTaskShowsItsEndingAndTheObjectThatHoldsItsRevocation) {
  Json task = finishedTask();
  task["status"]["phase"] = "Revoking";
  task["status"]["credential"].erase("revokedAt");
  task["status"]["revocation"] = {{"outcome", "Succeeded"},
                                  {"reason", "Completed"},
                                  {"message", "spec.completed is true"},
                                  {"startedAt", "2026-03-01T12:05:01.900Z"},
                                  {"held",
                                   {{{"kind", "RoleBinding"},
                                     {"name", "tl-fix-billing-1a2b"},
                                     {"finalizers", {"example.com/hold"}}}}}};
  TaskTimeline t = explain(task, {}, {});
  EXPECT_THAT(stepNames(t), ElementsAre("requested", "authorized", "issued", "completed"));
  EXPECT_THAT(t.steps[3].summary, HasSubstr("Succeeded: spec.completed is true (Completed)"));
  ASSERT_EQ(t.problems.size(), 1U);
  EXPECT_EQ(t.problems[0],
            "the revocation is held up: RoleBinding team-a/tl-fix-billing-1a2b is still present "
            "after its deletion (finalizers: example.com/hold)");
}

TEST_F(ExplainTest, EndedTaskWithoutARevocationIsAProblem) {
  Json task = finishedTask();
  task["status"]["credential"].erase("revokedAt");
  TaskTimeline t = explain(task, {}, {});
  ASSERT_EQ(t.problems.size(), 1U);
  EXPECT_THAT(t.problems[0], HasSubstr("nothing records its credential as revoked"));
}

TEST_F(ExplainTest, RequesterComesFromTheStampBeforeTheOperatorDecides) {
  Json task = finishedTask();
  task.erase("status");
  task["metadata"]["annotations"] = {
      {"tasklease.io/requested-by", R"({"groups":["devs"],"uid":"u-bob","username":"bob"})"}};
  TaskTimeline t = explain(task, {}, {});
  EXPECT_THAT(stepNames(t), ElementsAre("requested"));
  EXPECT_THAT(t.steps[0].summary, HasSubstr("requested by bob (uid u-bob, groups devs)"));
}

TEST_F(ExplainTest, UnreadableEvidenceFileIsAnErrorNamingIt) {
  auto s = readEvidenceFile((dir_ / "nope.jsonl").string());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("nope.jsonl"));
}

// ---- the commands, against an in-memory API server ----

struct CommandRun {
  int code;
  std::string out;
  std::string err;
};

class TaskCommandTest : public ExplainTest {
 protected:
  void SetUp() override {
    ExplainTest::SetUp();
    fake_ = std::make_shared<kube::FakeApiClient>();
    Json task = finishedTask();
    task["metadata"].erase("uid");
    task["spec"]["completed"] = false;
    auto created = fake_->create(kAgentTaskResource, task);
    ASSERT_TRUE(created.ok()) << created.status().message();
    uid_ = (*created)["metadata"]["uid"];
    // Like an API server, the fake keeps the status only through the status subresource.
    Json withStatus = *created;
    withStatus["status"] = task["status"];
    ASSERT_TRUE(fake_->updateStatus(kAgentTaskResource, withStatus).ok());
    for (const char* reason : {"Authorized", "CredentialIssued"}) {
      Json e = event(reason, "2026-03-01T12:00:01Z", uid_);
      ASSERT_TRUE(fake_->create(kube::resources::kEvents, e).ok());
    }
  }

  ClusterConnector connector() {
    return [this](const KubeFlags& flags) -> StatusOr<ClusterAccess> {
      seen_ = flags;
      return ClusterAccess{fake_, flags.ns.empty() ? "default" : flags.ns};
    };
  }

  CommandRun run(Command& command, const std::vector<std::string>& args) {
    std::istringstream in;
    std::ostringstream out, err;
    CliIo io{in, out, err};
    int code = command.run(args, io);
    return {code, out.str(), err.str()};
  }

  std::shared_ptr<kube::FakeApiClient> fake_;
  std::string uid_;
  KubeFlags seen_;
};

TEST_F(TaskCommandTest, ExplainPrintsJsonWithStepsEventsAndEvidenceFiles) {
  ExplainCommand explainCommand(connector());
  // The uid in the fake differs from the fixture chain's, so only uid-less records would match;
  // the file is still read and summarised.
  auto r = run(explainCommand, {"fix-billing", "-n", "team-a", "--kubeconfig", "/k", "--context",
                                "c", "--evidence", operatorChain(), "-o", "json"});
  EXPECT_EQ(seen_.kubeconfig, "/k");
  EXPECT_EQ(seen_.context, "c");
  Json j = Json::parse(r.out);
  EXPECT_EQ(j["task"]["namespace"], "team-a");
  EXPECT_EQ(j["task"]["uid"], uid_);
  // (The fake stamps its own creationTimestamp, so the requested step is not first here.)
  std::map<std::string, Json> steps;
  for (const Json& s : j["steps"]) steps[s["step"]] = s;
  ASSERT_TRUE(steps.count("authorized")) << r.out;
  EXPECT_EQ(steps["authorized"]["events"][0]["reason"], "Authorized");
  EXPECT_EQ(steps["authorized"]["sources"], (Json{"task", "event"}));
  EXPECT_EQ(steps["issued"]["details"]["fingerprint"], kFingerprint);
  EXPECT_TRUE(steps.count("requested"));
  EXPECT_TRUE(steps.count("completed"));
  EXPECT_EQ(j["evidenceFiles"][0]["ok"], true);
  EXPECT_EQ(j["evidenceFiles"][0]["records"], 6);
  EXPECT_TRUE(j["revocation"].is_object());
  EXPECT_EQ(r.code, 0) << r.err << r.out;
}

TEST_F(TaskCommandTest, ExplainOfAMissingTaskNamesTheNamespace) {
  ExplainCommand explainCommand(connector());
  auto r = run(explainCommand, {"nope", "-n", "team-b"});
  EXPECT_EQ(r.code, kExitCluster);
  EXPECT_THAT(r.err, HasSubstr("AgentTask \"nope\" not found in namespace \"team-b\""));
}

TEST_F(TaskCommandTest, ExplainWithAnUnreadableEvidenceFileNamesItAndExitsTwo) {
  ExplainCommand explainCommand(connector());
  const std::string missing = (dir_ / "gone.jsonl").string();
  auto r = run(explainCommand, {"fix-billing", "-n", "team-a", "--evidence", missing});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr(missing));
}

TEST_F(TaskCommandTest, ExplainUsageErrorsExitTwo) {
  ExplainCommand explainCommand(connector());
  EXPECT_EQ(run(explainCommand, {}).code, kExitUsage);
  EXPECT_EQ(run(explainCommand, {"a", "b"}).code, kExitUsage);
  EXPECT_EQ(run(explainCommand, {"a", "-o", "yaml"}).code, kExitUsage);
  EXPECT_EQ(run(explainCommand, {"--help"}).code, kExitOk);
}

TEST_F(TaskCommandTest, CompleteSetsSpecCompletedWithAMergePatchOnce) {
  CompleteCommand completeCommand(connector());
  auto first = run(completeCommand, {"fix-billing", "-n", "team-a", "-o", "json"});
  ASSERT_EQ(first.code, 0) << first.err;
  Json j = Json::parse(first.out);
  EXPECT_EQ(j["changed"], true);
  EXPECT_EQ(j["completed"], true);
  EXPECT_EQ(j["uid"], uid_);
  EXPECT_EQ((*fake_->object(kAgentTaskResource, {"team-a", "fix-billing"}))["spec"]["completed"],
            true);
  int patches = 0;
  for (const auto& a : fake_->actions()) {
    if (a.verb != "patch") continue;
    ++patches;
    EXPECT_EQ(a.body, (Json{{"spec", {{"completed", true}}}}));
  }
  EXPECT_EQ(patches, 1);

  auto again = run(completeCommand, {"fix-billing", "-n", "team-a"});
  EXPECT_EQ(again.code, 0);
  EXPECT_THAT(again.out, HasSubstr("already completed"));
  patches = 0;
  for (const auto& a : fake_->actions()) patches += a.verb == "patch" ? 1 : 0;
  EXPECT_EQ(patches, 1);
}

TEST_F(TaskCommandTest, CompleteOfAMissingTaskNamesTheNamespace) {
  CompleteCommand completeCommand(connector());
  auto r = run(completeCommand, {"nope", "-n", "team-a"});
  EXPECT_EQ(r.code, kExitCluster);
  EXPECT_THAT(r.err, HasSubstr("AgentTask \"nope\" not found in namespace \"team-a\""));
}

TEST_F(TaskCommandTest, CompleteRefusedByTheServerExitsThreeWithItsMessage) {
  fake_->failNext("patch", "agenttasks",
                  Status(StatusCode::kPermissionDenied, "admission webhook denied the request"));
  CompleteCommand completeCommand(connector());
  auto r = run(completeCommand, {"fix-billing", "-n", "team-a"});
  EXPECT_EQ(r.code, kExitCluster);
  EXPECT_THAT(r.err, HasSubstr("admission webhook denied the request"));
}

}  // namespace
}  // namespace tasklease::cli
