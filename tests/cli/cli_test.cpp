#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/command.h"
#include "common/crypto.h"
#include "common/evidence.h"
#include "common/json.h"

namespace tasklease::cli {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

struct Run {
  int code;
  std::string out;
  std::string err;
};

Run run(const std::vector<std::string>& args, const std::string& stdinText = "") {
  std::istringstream in(stdinText);
  std::ostringstream out, err;
  CliIo io{in, out, err};
  int code = runCli(args, io);
  return {code, out.str(), err.str()};
}

const char* kBadDeployment = R"(apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: team-a}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      initContainers:
      - name: init
        image: busybox
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
        - name: DB_PASSWORD
          valueFrom: {secretKeyRef: {name: db, key: password}}
      containers:
      - {name: app, image: app}
)";

const char* kDedicatedSa = R"(apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  namespace: team-a
  annotations: {tasklease.io/dedicated-to: Deployment/web}
)";

const char* kCleanPod = R"(apiVersion: v1
kind: Pod
metadata: {name: web, namespace: team-a}
spec:
  serviceAccountName: web
  containers: [{name: app, image: app}]
)";

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("cli-" + randomHex(4));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  fs::path dir_;
};

TEST_F(CliTest, CheckFindsTheViolationWithItsPathAndExitsOne) {
  auto r = run({"check", "-f", write("d.yaml", kBadDeployment)});
  EXPECT_EQ(r.code, 1) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Deployment team-a/web"));
  EXPECT_THAT(r.out, HasSubstr("TL001 spec.template.spec.initContainers[0].env[2]: "));
  EXPECT_THAT(r.out, HasSubstr("checked 1 object: 1 violation in 1 object"));
}

TEST_F(CliTest, CleanManifestsExitZero) {
  std::string pod = std::string(kCleanPod) + "---\n" +
                    R"(apiVersion: v1
kind: ServiceAccount
metadata:
  name: web
  namespace: team-a
  annotations: {tasklease.io/dedicated-to: Pod/web}
)";
  auto r = run({"check", "-f", write("p.yaml", pod)});
  EXPECT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("checked 1 object (1 of other kinds ignored): 0 violations"));
}

TEST_F(CliTest, ServiceAccountNotInTheFilesIsANoteNotAViolation) {
  auto r = run({"check", "-f", write("p.yaml", kCleanPod)});
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_THAT(r.out,
              HasSubstr("note: TL006 not evaluated: ServiceAccount team-a/web is not known here"));
}

TEST_F(CliTest, ServiceAccountAnnotationsInTheFilesDecideTL006) {
  std::string manifest = std::string(kDedicatedSa) + "---\n" + kCleanPod;
  auto r = run({"check", "-f", write("p.yaml", manifest)});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(
      r.out,
      HasSubstr(
          "TL006 spec.serviceAccountName: ServiceAccount \"web\" is dedicated to Deployment/web"));
}

TEST_F(CliTest, JsonOutputListsFindings) {
  auto r = run({"check", "-o", "json", "-f", write("d.yaml", kBadDeployment), "-f",
                write("sa.yaml", kDedicatedSa)});
  EXPECT_EQ(r.code, 1);
  Json j = Json::parse(r.out);
  ASSERT_EQ(j["objects"].size(), 1U);
  const Json& v = j["objects"][0]["violations"];
  ASSERT_EQ(v.size(), 1U);
  EXPECT_EQ(v[0]["rule"], "TL001");
  EXPECT_EQ(v[0]["name"], "secret-env");
  EXPECT_EQ(v[0]["path"], "spec.template.spec.initContainers[0].env[2]");
  EXPECT_EQ(j["summary"]["passed"], false);
  EXPECT_EQ(j["summary"]["violations"], 1);
}

TEST_F(CliTest, ReadsStdinAndDirectoriesRecursively) {
  write("deploy/a/sa.yaml", kDedicatedSa);
  write("deploy/b/d.yaml", kBadDeployment);
  auto r = run({"check", "-f", (dir_ / "deploy").string(), "-f", "-"}, kCleanPod);
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("d.yaml: Deployment team-a/web"));
  EXPECT_THAT(r.out, HasSubstr("<stdin>: Pod team-a/web"));
}

TEST_F(CliTest, IdentityExceptionInTheFilesAllowsUntilItExpires) {
  std::string exception = R"(apiVersion: tasklease.io/v1alpha1
kind: IdentityException
metadata: {name: legacy, namespace: team-a}
spec:
  reason: migrating the init step
  approvedBy: security@example.com
  expiresAt: "2026-03-10T00:00:00Z"
  rules: [TL001]
  podSelector: {matchLabels: {app: web}}
)";
  std::string files =
      write("all.yaml", std::string(kBadDeployment) + "---\n" + kDedicatedSa + "---\n" + exception);
  auto allowed = run({"check", "--now", "2026-03-01T00:00:00Z", "-f", files});
  EXPECT_EQ(allowed.code, 0) << allowed.out;
  EXPECT_THAT(allowed.out, HasSubstr("allowed by IdentityException \"legacy\""));
  auto expired = run({"check", "--now", "2026-03-11T00:00:00Z", "-f", files});
  EXPECT_EQ(expired.code, 1);
  // An exception already past its expiry is itself reported.
  EXPECT_THAT(expired.out, HasSubstr("error: spec.expiresAt: is in the past"));
}

TEST_F(CliTest, InvalidIdentityExceptionFailsTheCheck) {
  std::string exception = R"(apiVersion: tasklease.io/v1alpha1
kind: IdentityException
metadata: {name: forever, namespace: team-a}
spec:
  reason: r
  approvedBy: me
  expiresAt: "2027-01-01T00:00:00Z"
  rules: [TL042]
  serviceAccountNames: [web]
)";
  auto r = run({"check", "--now", "2026-03-01T00:00:00Z", "-f", write("e.yaml", exception)});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("error: spec.expiresAt: is more than 30 days"));
  EXPECT_THAT(r.out, HasSubstr("error: spec.rules[0]: unknown rule TL042"));
}

TEST_F(CliTest, UsageErrorsExitTwo) {
  EXPECT_EQ(run({"check"}).code, 2);
  EXPECT_EQ(run({"check", "-o", "yaml", "-f", write("p.yaml", kCleanPod)}).code, 2);
  auto missing = run({"check", "-f", (dir_ / "none.yaml").string()});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("none.yaml"));
  auto broken = run({"check", "-f", write("b.yaml", "kind: [\n")});
  EXPECT_EQ(broken.code, 2);
  EXPECT_THAT(broken.err, HasSubstr("line"));
  EXPECT_EQ(run({"frobnicate"}).code, 2);
  EXPECT_EQ(run({}).code, 2);
}

TEST_F(CliTest, HelpListsTheCommands) {
  auto r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_THAT(r.out, HasSubstr("check"));
  EXPECT_THAT(r.out, HasSubstr("evidence"));
  EXPECT_EQ(run({"check", "--help"}).code, 0);
  EXPECT_THAT(run({"evidence", "--help"}).out, HasSubstr("verify"));
}

// An evidence file of `n` records, and its lines for tampering.
class EvidenceVerifyTest : public CliTest {
 protected:
  void SetUp() override {
    CliTest::SetUp();
    file_ = (dir_ / "chain.jsonl").string();
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<FileEvidenceSink>(file_));
    auto chain = EvidenceChain::open(std::move(sinks), nullptr);
    ASSERT_TRUE(chain.ok());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE((*chain)
                      ->append({EvidenceKind::kAdmitted, {"team-a", "t", "u"}, "alice", {{"i", i}}})
                      .ok());
    }
    std::ifstream in(file_);
    for (std::string l; std::getline(in, l);) lines_.push_back(l);
    ASSERT_EQ(lines_.size(), 5U);
  }
  void rewrite() {
    std::ofstream out(file_, std::ios::trunc);
    for (const auto& l : lines_) out << l << "\n";
  }
  std::string file_;
  std::vector<std::string> lines_;
};

TEST_F(EvidenceVerifyTest, UntouchedFileVerifies) {
  auto ok = run({"evidence", "verify", file_});
  EXPECT_EQ(ok.code, 0) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("ok, 5 records, head seq 5"));
  Json j = Json::parse(run({"evidence", "verify", "-o", "json", file_}).out);
  EXPECT_EQ(j[0]["ok"], true);
  EXPECT_EQ(j[0]["records"], 5);
  EXPECT_EQ(j[0]["head"]["seq"], 5);
  EXPECT_FALSE(j[0].contains("problem"));
}

TEST_F(EvidenceVerifyTest, FlippingOneFieldIsReportedAtThatSeq) {
  Json rec = Json::parse(lines_[1]);
  rec["actor"] = "mallory";
  lines_[1] = rec.dump();
  rewrite();
  auto bad = run({"evidence", "verify", file_});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.out, HasSubstr("altered at seq 2"));
  Json j = Json::parse(run({"evidence", "verify", "-o", "json", file_}).out);
  EXPECT_EQ(j[0]["ok"], false);
  EXPECT_EQ(j[0]["problem"], "altered");
  EXPECT_EQ(j[0]["seq"], 2);
}

TEST_F(EvidenceVerifyTest, DeletingARecordIsReportedAsMissingAtItsSeq) {
  lines_.erase(lines_.begin() + 2);
  rewrite();
  auto bad = run({"evidence", "verify", file_});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.out, HasSubstr("missing at seq 3"));
  Json j = Json::parse(run({"evidence", "verify", "-o", "json", file_}).out);
  EXPECT_EQ(j[0]["problem"], "missing");
  EXPECT_EQ(j[0]["seq"], 3);
}

TEST_F(EvidenceVerifyTest, SwappingTwoRecordsIsReportedAsReorderedAtTheFirst) {
  std::swap(lines_[1], lines_[3]);
  rewrite();
  auto bad = run({"evidence", "verify", file_});
  EXPECT_EQ(bad.code, 1);
  EXPECT_THAT(bad.out, HasSubstr("reordered at seq 2"));
  Json j = Json::parse(run({"evidence", "verify", "-o", "json", file_}).out);
  EXPECT_EQ(j[0]["problem"], "reordered");
  EXPECT_EQ(j[0]["seq"], 2);
}

// A second, independent check of the prev link (the first is in evidence_test.cpp): a record
// taken from another chain at the same seq carries a hash of its own that holds, so only its
// prev, which names the other chain's record before it, gives it away.
TEST_F(EvidenceVerifyTest, ARecordFromAnotherChainAtTheSameSeqIsFoundByItsPrevLink) {
  const std::string other = (dir_ / "other.jsonl").string();
  {
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<FileEvidenceSink>(other));
    auto chain = EvidenceChain::open(std::move(sinks), nullptr);
    ASSERT_TRUE(chain.ok());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(
          (*chain)
              ->append({EvidenceKind::kAdmitted, {"team-b", "t", "u"}, "mallory", {{"i", i}}})
              .ok());
    }
  }
  std::vector<std::string> foreign;
  {
    std::ifstream in(other);
    for (std::string l; std::getline(in, l);) foreign.push_back(l);
  }
  ASSERT_EQ(foreign.size(), 5U);
  // Records 1 to 4 of this chain, then the other chain's record 5: seq and hash both hold.
  lines_.back() = foreign.back();
  rewrite();
  auto bad = run({"evidence", "verify", file_});
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("altered at seq 4"));
  EXPECT_THAT(bad.out, HasSubstr("record seq 5 does not chain to the record before it"));
  Json j = Json::parse(run({"evidence", "verify", "-o", "json", file_}).out);
  EXPECT_EQ(j[0]["problem"], "altered");
  EXPECT_EQ(j[0]["line"], 5);
}

TEST_F(EvidenceVerifyTest, ALineWithAKeyGivenTwiceIsReportedAsAltered) {
  // The hash covers the last "actor" (what the parser keeps); a reader keeping the first one
  // would see "mallory".
  ASSERT_EQ(lines_[2].rfind("{\"actor\":\"alice\",", 0), 0u) << lines_[2];
  lines_[2] = "{\"actor\":\"mallory\"," + lines_[2].substr(1);
  rewrite();
  auto bad = run({"evidence", "verify", file_});
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("altered at seq 3"));
  EXPECT_THAT(bad.out, HasSubstr("canonical form"));
}

TEST_F(EvidenceVerifyTest, ALineWithWhitespaceTheWriterNeverWritesIsReportedAsAltered) {
  lines_[1] = Json::parse(lines_[1]).dump(-1, ' ').insert(1, " ");
  rewrite();
  auto bad = run({"evidence", "verify", file_});
  EXPECT_EQ(bad.code, 1) << bad.out;
  EXPECT_THAT(bad.out, HasSubstr("altered at seq 2"));
}

TEST_F(EvidenceVerifyTest, OneBrokenFileAmongSeveralFailsTheRunAndIsNamed) {
  const std::string good = (dir_ / "good.jsonl").string();
  fs::copy_file(file_, good);
  lines_.erase(lines_.begin());
  rewrite();
  auto r = run({"evidence", "verify", good, file_});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr(good + ": ok, 5 records"));
  EXPECT_THAT(r.out, HasSubstr(file_ + ": missing at seq 1"));
}

TEST_F(EvidenceVerifyTest, UnreadableFileExitsTwoNamingIt) {
  auto r = run({"evidence", "verify", (dir_ / "none.jsonl").string()});
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("none.jsonl"));
}

}  // namespace
}  // namespace tasklease::cli
