#include "common/delegation_stamp.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/rfc3339.h"

namespace tasklease {
namespace {

using std::chrono::seconds;

const Requester kAlice{"alice", "uid-alice", {"dev", "system:authenticated"}};

Json spec() {
  return {{"agent", "refactor-bot"},
          {"ttl", "30m"},
          {"scope",
           {{"rules", {{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get"}}}}}}},
          {"completed", false}};
}

std::string bioString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(len));
}

TimePoint at(const char* text) {
  return *parseRfc3339(text);
}

// An AgentTask as the API server stores it after the webhook stamped it at `signedAt`.
Json stampedTask(const SigningKey& key, const std::string& name = "t1",
                 const std::string& generateName = "",
                 const char* signedAt = "2026-03-01T12:00:00.250Z",
                 const char* created = "2026-03-01T12:00:00Z") {
  const std::string who = requestedByValue(kAlice);
  const std::string signedName = generateName.empty() ? name : "";
  auto sig = signStamp(key, {"team-a", signedName, generateName, spec()}, who, at(signedAt));
  EXPECT_TRUE(sig.ok()) << sig.status().message();
  Json meta = {
      {"name", name},
      {"namespace", "team-a"},
      {"uid", "u-1"},
      {"creationTimestamp", created},
      {"annotations", {{kRequestedByAnnotation, who}, {kRequestedBySignatureAnnotation, *sig}}}};
  if (!generateName.empty()) meta["generateName"] = generateName;
  return {{"apiVersion", "tasklease.io/v1alpha1"},
          {"kind", "AgentTask"},
          {"metadata", meta},
          {"spec", spec()}};
}

struct Fixture {
  SigningKey key = *SigningKey::generate();
  Keyring keys;
  Fixture() { EXPECT_TRUE(keys.add(key.publicPem()).ok()); }
};

TEST(DelegationStampTest, StampSignedByTheWebhookVerifiesAndNamesTheRequester) {
  Fixture f;
  StampCheck c = verifyStamp(stampedTask(f.key), f.keys);
  EXPECT_EQ(c.result, StampResult::kVerified) << c.message;
  EXPECT_EQ(c.requester, kAlice);
  EXPECT_EQ(c.keyId, f.key.keyId());
}

TEST(DelegationStampTest, StampSignedForGenerateNameVerifiesOnTheGeneratedName) {
  Fixture f;
  StampCheck c = verifyStamp(stampedTask(f.key, "job-x7k2q", "job-"), f.keys);
  EXPECT_EQ(c.result, StampResult::kVerified) << c.message;
}

TEST(DelegationStampTest, CompletingTheTaskKeepsTheStampValid) {
  Fixture f;
  Json task = stampedTask(f.key);
  task["spec"]["completed"] = true;
  EXPECT_TRUE(verifyStamp(task, f.keys).verified());
}

TEST(DelegationStampTest, ChangedSpecBreaksTheSignature) {
  Fixture f;
  Json task = stampedTask(f.key);
  task["spec"]["scope"]["rules"][0]["verbs"].push_back("update");
  EXPECT_EQ(verifyStamp(task, f.keys).result, StampResult::kBadSignature);
}

TEST(DelegationStampTest, RewrittenRequesterBreaksTheSignature) {
  Fixture f;
  Json task = stampedTask(f.key);
  task["metadata"]["annotations"][kRequestedByAnnotation] =
      requestedByValue({"mallory", "uid-m", {"dev"}});
  StampCheck c = verifyStamp(task, f.keys);
  EXPECT_EQ(c.result, StampResult::kBadSignature);
  EXPECT_EQ(c.requester.username, "mallory");  // read, but not trusted
}

// The stamp speaks for the whole requester, not for a username: the API server authorizes by
// groups and uid too, so the same name in system:masters (or another user of that name, with
// another uid) is someone else.
TEST(DelegationStampTest, TheSameUsernameWithOtherGroupsOrAnotherUidDoesNotVerify) {
  Fixture f;
  const std::vector<Requester> others = {
      {"alice", "uid-alice", {"dev", "system:authenticated", "system:masters"}},
      {"alice", "uid-alice", {"system:masters"}},
      {"alice", "uid-alice", {"dev"}},                          // a group dropped
      {"alice", "uid-alice", {"system:authenticated", "dev"}},  // the same groups reordered
      {"alice", "uid-other", {"dev", "system:authenticated"}},
      {"alice", "", {"dev", "system:authenticated"}},
  };
  for (const Requester& other : others) {
    Json task = stampedTask(f.key);
    task["metadata"]["annotations"][kRequestedByAnnotation] = requestedByValue(other);
    StampCheck c = verifyStamp(task, f.keys);
    EXPECT_EQ(c.result, StampResult::kBadSignature) << requestedByValue(other) << ": " << c.message;
    EXPECT_FALSE(c.verified());
  }
}

TEST(DelegationStampTest, StampCopiedToAnotherNamespaceDoesNotVerify) {
  Fixture f;
  Json task = stampedTask(f.key);
  task["metadata"]["namespace"] = "team-b";
  EXPECT_EQ(verifyStamp(task, f.keys).result, StampResult::kBadSignature);
}

TEST(DelegationStampTest, StampCopiedToATaskOfAnotherNameDoesNotVerify) {
  Fixture f;
  Json task = stampedTask(f.key);
  task["metadata"]["name"] = "t2";
  StampCheck c = verifyStamp(task, f.keys);
  EXPECT_EQ(c.result, StampResult::kMismatch);
  EXPECT_NE(c.message.find("\"t1\""), std::string::npos) << c.message;
}

TEST(DelegationStampTest, GeneratedNameMustStartWithTheSignedGenerateName) {
  Fixture f;
  Json task = stampedTask(f.key, "job-x7k2q", "job-");
  task["metadata"]["name"] = "other-x7k2q";
  EXPECT_EQ(verifyStamp(task, f.keys).result, StampResult::kMismatch);
}

TEST(DelegationStampTest, StampReplayedOnALaterTaskOfTheSameNameDoesNotVerify) {
  Fixture f;
  // Signed for a task created at noon, presented on a task of the same name created at one.
  Json task = stampedTask(f.key, "t1", "", "2026-03-01T12:00:00.250Z", "2026-03-01T13:00:00Z");
  StampCheck c = verifyStamp(task, f.keys);
  EXPECT_EQ(c.result, StampResult::kMismatch);
  EXPECT_TRUE(verifyStamp(task, f.keys, std::chrono::hours(2)).verified());
}

TEST(DelegationStampTest, StampFromAKeyOutsideTheKeyringIsUnknown) {
  Fixture f;
  SigningKey other = *SigningKey::generate();
  StampCheck c = verifyStamp(stampedTask(other), f.keys);
  EXPECT_EQ(c.result, StampResult::kUnknownKey);
  EXPECT_EQ(c.keyId, other.keyId());
}

TEST(DelegationStampTest, MissingStampIsAbsentAndStampWithoutSignatureIsUnsigned) {
  Fixture f;
  Json task = stampedTask(f.key);
  task["metadata"]["annotations"].erase(kRequestedBySignatureAnnotation);
  StampCheck c = verifyStamp(task, f.keys);
  EXPECT_EQ(c.result, StampResult::kUnsigned);
  EXPECT_EQ(c.requester.username, "alice");
  task["metadata"].erase("annotations");
  EXPECT_EQ(verifyStamp(task, f.keys).result, StampResult::kAbsent);
}

TEST(DelegationStampTest, UnreadableSignatureIsMalformed) {
  Fixture f;
  for (const char* bad : {"", "not json", "{\"v\":\"1\",\"keyId\":\"k\",\"issuedAt\":\"x\"}",
                          "{\"v\":1,\"keyId\":\"k\",\"issuedAt\":\"x\",\"signature\":\"!!\"}"}) {
    Json task = stampedTask(f.key);
    task["metadata"]["annotations"][kRequestedBySignatureAnnotation] = bad;
    EXPECT_EQ(verifyStamp(task, f.keys).result, StampResult::kMalformed) << bad;
  }
}

TEST(DelegationStampTest, SigningKeySurvivesPemRoundTripWithItsKeyId) {
  SigningKey key = *SigningKey::generate();
  auto again = SigningKey::fromPem(key.privatePem());
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(again->keyId(), key.keyId());
  EXPECT_EQ(key.keyId().size(), 16U);
  Keyring keys;
  ASSERT_TRUE(keys.add(key.publicPem()).ok());
  EXPECT_TRUE(verifyStamp(stampedTask(*again), keys).verified());
  EXPECT_EQ(key.publicPem().find("PRIVATE"), std::string::npos);
}

TEST(DelegationStampTest, KeysOtherThanEd25519AreRefused) {
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  BIO* priv = BIO_new(BIO_s_mem());
  BIO* pub = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(priv, ec, nullptr, nullptr, 0, nullptr, nullptr);
  PEM_write_bio_PUBKEY(pub, ec);
  const std::string privPem = bioString(priv);
  const std::string pubPem = bioString(pub);
  BIO_free(priv);
  BIO_free(pub);
  EVP_PKEY_free(ec);
  auto key = SigningKey::fromPem(privPem);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("Ed25519"), std::string::npos);
  Keyring keys;
  EXPECT_FALSE(keys.add(pubPem).ok());
  EXPECT_FALSE(SigningKey::fromPem("garbage").ok());
}

TEST(DelegationStampTest, KeyringFromConfigMapTakesEveryPemEntryAndReportsBrokenOnes) {
  SigningKey a = *SigningKey::generate();
  SigningKey b = *SigningKey::generate();
  const Json data = {{a.keyId() + ".pem", a.publicPem()},
                     {b.keyId() + ".pem", b.publicPem()},
                     {"broken.pem", "not a key"},
                     {"README", "ignored"}};
  std::vector<std::string> problems;
  Keyring keys = Keyring::fromConfigMapData(data, &problems);
  EXPECT_EQ(keys.size(), 2U);
  EXPECT_TRUE(keys.contains(a.keyId()));
  EXPECT_TRUE(keys.contains(b.keyId()));
  ASSERT_EQ(problems.size(), 1U);
  EXPECT_NE(problems[0].find("data.broken.pem"), std::string::npos);
}

TEST(DelegationStampTest, RequestedByIsCanonicalAndReadsBack) {
  EXPECT_EQ(requestedByValue(kAlice),
            R"({"groups":["dev","system:authenticated"],"uid":"uid-alice","username":"alice"})");
  auto back = parseRequestedBy(requestedByValue(kAlice));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, kAlice);
  EXPECT_FALSE(parseRequestedBy("alice").ok());
  EXPECT_FALSE(parseRequestedBy(R"({"username":""})").ok());
  EXPECT_FALSE(parseRequestedBy(R"({"username":"a","groups":"dev"})").ok());
}

TEST(DelegationStampTest, SpecDigestIgnoresCompletedAndKeyOrder) {
  Json a = spec();
  Json b = Json::parse(R"({"ttl":"30m","completed":true,"agent":"refactor-bot",
      "scope":{"rules":[{"verbs":["get"],"resources":["configmaps"],"apiGroups":[""]}]}})");
  EXPECT_EQ(*stampSpecDigest(a), *stampSpecDigest(b));
  b["ttl"] = "31m";
  EXPECT_NE(*stampSpecDigest(a), *stampSpecDigest(b));
  // A fraction (a cpu quantity written as a number) is digested, not refused.
  a["workload"] = {{"template", {{"cpu", 0.5}}}};
  EXPECT_TRUE(stampSpecDigest(a).ok());
}

}  // namespace
}  // namespace tasklease
