#include "common/evidence.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/crypto.h"

namespace tasklease {
namespace {

namespace fs = std::filesystem;

TimePoint fixedTime() {
  return *parseRfc3339("2026-03-01T12:00:00.000Z");
}

class EvidenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("evidence-" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" +
            randomHex(4));
    fs::create_directories(dir_);
    file_ = (dir_ / "chain.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  EvidenceChainPtr openChain(ChainHeadStore* store = nullptr) {
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<FileEvidenceSink>(file_));
    auto chain = EvidenceChain::open(std::move(sinks), store, fixedTime);
    EXPECT_TRUE(chain.ok()) << chain.status().toString();
    return chain.ok() ? std::move(*chain) : nullptr;
  }

  void appendN(EvidenceChain& chain, int n) {
    for (int i = 0; i < n; ++i) {
      auto r = chain.append({EvidenceKind::kIssued,
                             {"team-a", "task-" + std::to_string(i), "uid-" + std::to_string(i)},
                             "tasklease-operator",
                             {{"fingerprint", fingerprint("token-" + std::to_string(i))}}});
      ASSERT_TRUE(r.ok()) << r.status().toString();
    }
  }

  std::vector<std::string> lines() const {
    std::ifstream in(file_);
    std::vector<std::string> out;
    for (std::string l; std::getline(in, l);) out.push_back(l);
    return out;
  }

  // Writes these lines as the file, and opens a chain that continues it.
  StatusOr<EvidenceChainPtr> reopenWith(const std::vector<std::string>& ls) {
    {
      std::ofstream out(file_, std::ios::trunc);
      for (const auto& l : ls) out << l << '\n';
    }
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<FileEvidenceSink>(file_));
    return EvidenceChain::open(std::move(sinks), nullptr, fixedTime);
  }

  static VerifyResult verifyLines(const std::vector<std::string>& ls,
                                  const VerifyOptions& options = {}) {
    std::stringstream ss;
    for (const auto& l : ls) ss << l << '\n';
    return verifyEvidence(ss, options);
  }

  fs::path dir_;
  std::string file_;
};

TEST_F(EvidenceTest, CanonicalJsonSortsKeysAndHasNoWhitespace) {
  Json j = Json::parse(R"({"b": [1, {"z": true, "a": null}], "a": "x\ny", "é": "ü"})");
  auto c = canonicalJson(j);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, "{\"a\":\"x\\ny\",\"b\":[1,{\"a\":null,\"z\":true}],\"é\":\"ü\"}");
}

TEST_F(EvidenceTest, CanonicalJsonRefusesFractionsAndInvalidUtf8) {
  EXPECT_FALSE(canonicalJson(Json{{"ms", 1.5}}).ok());
  EXPECT_FALSE(canonicalJson(Json{{"s", std::string("\xff\xfe")}}).ok());
}

TEST_F(EvidenceTest, RecordHashIsSha256OverPrevAndCanonicalRecordWithoutHash) {
  auto chain = openChain();
  appendN(*chain, 1);
  Json rec = Json::parse(lines().at(0));
  std::string hash = rec["hash"];
  Json without = rec;
  without.erase("hash");
  EXPECT_EQ(rec["prev"], kEvidenceGenesis);
  EXPECT_EQ(hash, sha256Hex(std::string(kEvidenceGenesis) + *canonicalJson(without)));
  EXPECT_EQ(rec["time"], "2026-03-01T12:00:00.000Z");
  EXPECT_EQ(rec["seq"], 1);
  EXPECT_EQ(rec["task"]["namespace"], "team-a");
}

TEST_F(EvidenceTest, UntouchedFileVerifies) {
  auto chain = openChain();
  appendN(*chain, 5);
  VerifyResult r = verifyLines(lines());
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.records, 5U);
  EXPECT_EQ(r.head, chain->head());
}

TEST_F(EvidenceTest, FlippingOneFieldIsDetectedAtThatSeq) {
  auto chain = openChain();
  appendN(*chain, 5);
  for (const char* field : {"actor", "kind", "time", "seq", "details"}) {
    auto ls = lines();
    Json rec = Json::parse(ls[2]);
    if (std::string(field) == "actor") rec["actor"] = "mallory";
    if (std::string(field) == "kind") rec["kind"] = "revoked";
    if (std::string(field) == "time") rec["time"] = "2026-03-01T11:00:00.000Z";
    if (std::string(field) == "seq") rec["seq"] = 30;
    if (std::string(field) == "details") rec["details"]["fingerprint"] = "sha256:00";
    ls[2] = rec.dump();
    VerifyResult r = verifyLines(ls);
    EXPECT_EQ(r.problem, EvidenceProblem::kAltered) << field;
    EXPECT_EQ(r.seq, 3U) << field << ": " << r.message;
    EXPECT_EQ(r.line, 3U) << field;
  }
}

TEST_F(EvidenceTest, AddingAMemberIsDetectedAsAltered) {
  auto chain = openChain();
  appendN(*chain, 3);
  auto ls = lines();
  Json rec = Json::parse(ls[1]);
  rec["note"] = "added later";
  ls[1] = rec.dump();
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kAltered);
  EXPECT_EQ(r.seq, 2U);
}

TEST_F(EvidenceTest, RewrittenRecordWithRecomputedHashIsDetectedThroughTheNextLink) {
  auto chain = openChain();
  appendN(*chain, 4);
  auto ls = lines();
  Json rec = Json::parse(ls[1]);
  rec["actor"] = "mallory";
  rec["hash"] = *evidenceHash(rec);
  ls[1] = rec.dump();
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kAltered);
  EXPECT_EQ(r.seq, 2U) << r.message;
}

TEST_F(EvidenceTest, DeletingARecordIsDetectedAsMissingAtItsSeq) {
  auto chain = openChain();
  appendN(*chain, 5);
  auto ls = lines();
  ls.erase(ls.begin() + 2);
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kMissing);
  EXPECT_EQ(r.seq, 3U) << r.message;
}

TEST_F(EvidenceTest, DeletingTheFirstRecordIsDetectedAsMissing) {
  auto chain = openChain();
  appendN(*chain, 3);
  auto ls = lines();
  ls.erase(ls.begin());
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kMissing);
  EXPECT_EQ(r.seq, 1U);
}

TEST_F(EvidenceTest, DeletingTheLastRecordIsDetectedAgainstThePersistedHead) {
  FileChainHeadStore store((dir_ / "head.json").string());
  auto chain = openChain(&store);
  appendN(*chain, 4);
  auto ls = lines();
  ls.pop_back();
  auto head = store.load();
  ASSERT_TRUE(head.ok() && head->has_value());
  VerifyOptions options;
  options.expectedHead = **head;
  VerifyResult r = verifyLines(ls, options);
  EXPECT_EQ(r.problem, EvidenceProblem::kMissing);
  EXPECT_EQ(r.seq, 4U);
  EXPECT_TRUE(verifyLines(lines(), options).ok());
}

TEST_F(EvidenceTest, RewritingTheLastRecordWithARecomputedHashIsDetectedAgainstThePersistedHead) {
  FileChainHeadStore store((dir_ / "head.json").string());
  auto chain = openChain(&store);
  appendN(*chain, 4);
  auto ls = lines();
  // No record follows the last one, so no prev link can catch its rewrite: only the head can.
  Json rec = Json::parse(ls.back());
  rec["actor"] = "mallory";
  rec["hash"] = *evidenceHash(rec);
  ls.back() = rec.dump();
  ASSERT_TRUE(verifyLines(ls).ok()) << "without the head the rewrite is undetectable";
  auto head = store.load();
  ASSERT_TRUE(head.ok() && head->has_value());
  VerifyOptions options;
  options.expectedHead = **head;
  VerifyResult r = verifyLines(ls, options);
  EXPECT_EQ(r.problem, EvidenceProblem::kAltered) << r.message;
  EXPECT_EQ(r.seq, 4U);
  EXPECT_NE(r.message.find("persisted chain head"), std::string::npos) << r.message;
  EXPECT_TRUE(verifyLines(lines(), options).ok());
}

// A line whose record hashes correctly but which is not byte for byte its canonical form: the
// writer never writes it, so someone edited the file.
TEST_F(EvidenceTest, AKeyGivenTwiceIsDetectedAsAlteredThoughTheHashHolds) {
  auto chain = openChain();
  appendN(*chain, 3);
  auto ls = lines();
  // The parser keeps the last of two equal keys, so the hash still covers "tasklease-operator";
  // a reader that keeps the first sees "mallory".
  const std::string original = ls[1];
  ASSERT_EQ(original.rfind("{\"actor\":", 0), 0u) << original;
  ls[1] = "{\"actor\":\"mallory\"," + original.substr(1);
  ASSERT_EQ(*evidenceHash(Json::parse(ls[1])), Json::parse(ls[1])["hash"]);
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kAltered) << r.message;
  EXPECT_EQ(r.seq, 2U);
  EXPECT_EQ(r.line, 2U);
  EXPECT_NE(r.message.find("canonical form"), std::string::npos) << r.message;
}

TEST_F(EvidenceTest, WhitespaceOrEscapesTheWriterNeverWritesAreDetectedAsAltered) {
  auto chain = openChain();
  appendN(*chain, 3);
  const auto original = lines();
  const std::vector<std::pair<std::string, std::string>> edits = {
      {",\"kind\":", ", \"kind\":"},       // a space between members
      {"\"kind\":", "\"kind\" :"},         // a space before a colon
      {"\"issued\"", "\"\\u0069ssued\""},  // an escape for a plain letter
  };
  for (const auto& [from, to] : edits) {
    auto ls = original;
    const auto at = ls[2].find(from);
    ASSERT_NE(at, std::string::npos) << from;
    ls[2].replace(at, from.size(), to);
    ASSERT_EQ(*evidenceHash(Json::parse(ls[2])), Json::parse(ls[2])["hash"]) << to;
    VerifyResult r = verifyLines(ls);
    EXPECT_EQ(r.problem, EvidenceProblem::kAltered) << to << ": " << r.message;
    EXPECT_EQ(r.seq, 3U) << to;
  }
  // Trailing whitespace, and a line ending converted to CRLF.
  for (const char* tail : {" ", "\r"}) {
    auto ls = original;
    ls[0] += tail;
    VerifyResult r = verifyLines(ls);
    EXPECT_EQ(r.problem, EvidenceProblem::kAltered) << r.message;
    EXPECT_EQ(r.seq, 1U);
  }
}

TEST_F(EvidenceTest, SwappingTwoRecordsIsDetectedAsReorderedAtTheFirst) {
  auto chain = openChain();
  appendN(*chain, 5);
  auto ls = lines();
  std::swap(ls[1], ls[3]);
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kReordered);
  EXPECT_EQ(r.seq, 2U) << r.message;
  EXPECT_EQ(r.line, 2U);
}

TEST_F(EvidenceTest, DuplicatedRecordIsDetectedAsReordered) {
  auto chain = openChain();
  appendN(*chain, 3);
  auto ls = lines();
  ls.push_back(ls[1]);
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kReordered);
  EXPECT_EQ(r.seq, 2U);
  EXPECT_EQ(r.line, 4U);
}

TEST_F(EvidenceTest, MalformedLineIsReportedWithItsLine) {
  auto chain = openChain();
  appendN(*chain, 3);
  auto ls = lines();
  ls[1] = ls[1].substr(0, ls[1].size() / 2);
  VerifyResult r = verifyLines(ls);
  EXPECT_EQ(r.problem, EvidenceProblem::kMalformed);
  EXPECT_EQ(r.line, 2U);
  EXPECT_EQ(r.seq, 2U);
}

TEST_F(EvidenceTest, FileStartingMidChainVerifiesWhenGenesisIsNotRequired) {
  auto chain = openChain();
  appendN(*chain, 5);
  auto ls = lines();
  ls.erase(ls.begin(), ls.begin() + 2);
  EXPECT_EQ(verifyLines(ls).problem, EvidenceProblem::kMissing);
  VerifyOptions options;
  options.requireGenesis = false;
  VerifyResult r = verifyLines(ls, options);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.records, 3U);
}

TEST_F(EvidenceTest, RestartContinuesTheChainFromTheStoredHead) {
  FileChainHeadStore store((dir_ / "head.json").string());
  {
    auto chain = openChain(&store);
    appendN(*chain, 3);
  }
  // The second process writes to stdout only: its head can come only from the store.
  std::stringstream second;
  {
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<StreamEvidenceSink>(second));
    auto chain = EvidenceChain::open(std::move(sinks), &store, fixedTime);
    ASSERT_TRUE(chain.ok());
    EXPECT_EQ((*chain)->head().seq, 3U);
    appendN(**chain, 2);
  }
  std::stringstream all;
  for (const auto& l : lines()) all << l << '\n';
  all << second.str();
  VerifyResult r = verifyEvidence(all);
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.records, 5U);
}

TEST_F(EvidenceTest, RestartContinuesFromTheFileWhenTheStoreLagsBehind) {
  FileChainHeadStore store((dir_ / "head.json").string());
  {
    auto chain = openChain(&store);
    appendN(*chain, 2);
  }
  auto stored = store.load();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  ChainHead lagging = **stored;
  {
    auto chain = openChain(&store);
    appendN(*chain, 2);
  }
  // As if the process died after writing record 4 but before saving the head.
  ASSERT_TRUE(store.save(lagging).ok());
  auto chain = openChain(&store);
  EXPECT_EQ(chain->head().seq, 4U);
  appendN(*chain, 1);
  VerifyResult r = verifyLines(lines());
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.records, 5U);
}

TEST_F(EvidenceTest, TornLastLineIsCutOffOnRestart) {
  {
    auto chain = openChain();
    appendN(*chain, 2);
  }
  {
    std::ofstream out(file_, std::ios::app);
    out << R"({"actor":"tasklease-operator","deta)";
  }
  auto chain = openChain();
  EXPECT_EQ(chain->head().seq, 2U);
  appendN(*chain, 1);
  VerifyResult r = verifyLines(lines());
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.records, 3U);
}

TEST_F(EvidenceTest, ContinuingAFileWhoseLastRecordWasAlteredIsRefused) {
  {
    auto chain = openChain();
    appendN(*chain, 2);
  }
  auto ls = lines();
  Json rec = Json::parse(ls[1]);
  rec["actor"] = "mallory";
  ls[1] = rec.dump();
  auto chain = reopenWith(ls);
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("seq 2"), std::string::npos);
}

TEST_F(EvidenceTest, ContinuingAFileWhoseLastLineIsNotCanonicalIsRefused) {
  {
    auto chain = openChain();
    appendN(*chain, 2);
  }
  auto ls = lines();
  // The same record with a space after a comma: its hash still holds.
  const auto comma = ls[1].find(",\"kind\":");
  ASSERT_NE(comma, std::string::npos);
  ls[1].insert(comma + 1, " ");
  auto chain = reopenWith(ls);
  ASSERT_FALSE(chain.ok());
  EXPECT_NE(chain.status().message().find("canonical form"), std::string::npos)
      << chain.status().message();
}

TEST_F(EvidenceTest, AppendRefusesDetailsWithFractions) {
  auto chain = openChain();
  auto r = chain->append({EvidenceKind::kRevoked, {"ns", "t", "u"}, "op", {{"latency", 0.5}}});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("details.latency"), std::string::npos);
  EXPECT_EQ(chain->head().seq, 0U);
}

TEST_F(EvidenceTest, ConcurrentAppendsFormOneValidChain) {
  auto chain = openChain();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] { appendN(*chain, 50); });
  }
  for (auto& t : threads) t.join();
  VerifyResult r = verifyLines(lines());
  EXPECT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.records, 200U);
}

TEST_F(EvidenceTest, RecordRoundTripsThroughJson) {
  EvidenceRecord rec;
  rec.seq = 7;
  rec.time = "2026-03-01T12:00:00.000Z";
  rec.kind = EvidenceKind::kExceptionUsed;
  rec.task = {"ns", "t", "u"};
  rec.actor = "alice";
  rec.details = {{"rule", "TL001"}};
  rec.prev = kEvidenceGenesis;
  rec.hash = std::string(64, 'a');
  auto back = evidenceRecordFromJson(evidenceRecordToJson(rec));
  ASSERT_TRUE(back.ok()) << back.status().toString();
  EXPECT_EQ(back->kind, EvidenceKind::kExceptionUsed);
  EXPECT_EQ(evidenceRecordToJson(*back), evidenceRecordToJson(rec));
  EXPECT_EQ(std::string(evidenceKindName(EvidenceKind::kExceptionUsed)), "exception-used");
}

TEST_F(EvidenceTest, RecordFromJsonNamesTheBadField) {
  Json j = Json::parse(R"({"seq": 1, "time": "2026-03-01T12:00:00Z", "kind": "nope"})");
  auto r = evidenceRecordFromJson(j);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("kind"), std::string::npos);
}

}  // namespace
}  // namespace tasklease
