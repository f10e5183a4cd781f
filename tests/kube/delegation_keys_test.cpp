#include "kube/delegation_keys.h"

#include <gtest/gtest.h>

#include "common/base64.h"
#include "common/rfc3339.h"
#include "tests/mocks/fake_api_client.h"

namespace tasklease::kube {
namespace {

const ObjectKey kSecret{"tasklease-system", "tasklease-delegation-signing-key"};
const ObjectKey kConfigMap{"tasklease-system", "tasklease-delegation-keys"};

// An AgentTask stamped with `key` a moment before now.
Json stampedTask(const SigningKey& key) {
  const std::string who = requestedByValue({"alice", "u1", {"dev"}});
  const Json spec = {{"agent", "bot"}, {"ttl", "30m"}};
  const TimePoint now = std::chrono::system_clock::now();
  auto sig = signStamp(key, {"team-a", "t1", "", spec}, who, now);
  EXPECT_TRUE(sig.ok());
  return {
      {"metadata",
       {{"name", "t1"},
        {"namespace", "team-a"},
        {"creationTimestamp", formatRfc3339(now)},
        {"annotations", {{kRequestedByAnnotation, who}, {kRequestedBySignatureAnnotation, *sig}}}}},
      {"spec", spec}};
}

TEST(SigningKeyStoreTest, FirstStartCreatesTheSecretAndLaterStartsReuseIt) {
  FakeApiClient fake;
  auto first = ensureSigningKey(fake, kSecret);
  ASSERT_TRUE(first.ok()) << first.status().message();
  auto stored = fake.object(resources::kSecrets, kSecret);
  ASSERT_TRUE(stored.has_value());
  const auto pem = base64Decode((*stored)["data"][kSigningKeyDataKey].get<std::string>());
  ASSERT_TRUE(pem.has_value());
  EXPECT_EQ(*pem, first->privatePem());
  auto second = ensureSigningKey(fake, kSecret);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->keyId(), first->keyId());
}

TEST(SigningKeyStoreTest, AReplicaThatLosesTheCreateRaceUsesTheWinnersKey) {
  FakeApiClient fake;
  auto winner = ensureSigningKey(fake, kSecret);
  ASSERT_TRUE(winner.ok());
  // The loser's first read happened before the winner's create.
  fake.failNext("get", "secrets", Status(StatusCode::kNotFound, "not found"), 1);
  auto loser = ensureSigningKey(fake, kSecret);
  ASSERT_TRUE(loser.ok()) << loser.status().message();
  EXPECT_EQ(loser->keyId(), winner->keyId());
}

TEST(SigningKeyStoreTest, ASecretWithoutAKeyIsAnErrorAndIsNotOverwritten) {
  FakeApiClient fake;
  const Json secret = {{"apiVersion", "v1"},
                       {"kind", "Secret"},
                       {"metadata", {{"name", kSecret.name}, {"namespace", kSecret.ns}}},
                       {"data", {{"other", base64Encode("x")}}}};
  ASSERT_TRUE(fake.create(resources::kSecrets, secret).ok());
  auto key = ensureSigningKey(fake, kSecret);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("data.key.pem"), std::string::npos);
  EXPECT_FALSE((*fake.object(resources::kSecrets, kSecret))["data"].contains(kSigningKeyDataKey));
}

TEST(PublicKeyPublisherTest, PublishingAddsTheKeyAndKeepsTheOthers) {
  FakeApiClient fake;
  SigningKey a = *SigningKey::generate();
  SigningKey b = *SigningKey::generate();
  ASSERT_TRUE(publishPublicKey(fake, kConfigMap, a).ok());
  ASSERT_TRUE(publishPublicKey(fake, kConfigMap, b).ok());
  ASSERT_TRUE(publishPublicKey(fake, kConfigMap, b).ok());  // idempotent
  const Json data = (*fake.object(resources::kConfigMaps, kConfigMap))["data"];
  EXPECT_EQ(data.size(), 2U);
  EXPECT_EQ(data[a.keyId() + ".pem"], a.publicPem());
  EXPECT_EQ(data[b.keyId() + ".pem"], b.publicPem());
}

TEST(ConfigMapKeyringTest, VerifiesStampsOfEveryPublishedKey) {
  FakeApiClient fake;
  SigningKey a = *SigningKey::generate();
  ASSERT_TRUE(publishPublicKey(fake, kConfigMap, a).ok());
  ConfigMapKeyring keys(fake, kConfigMap);
  auto check = keys.verify(stampedTask(a));
  ASSERT_TRUE(check.ok());
  EXPECT_TRUE(check->verified()) << check->message;
}

TEST(ConfigMapKeyringTest, AKeyPublishedAfterTheLastReadIsFoundByReadingAgain) {
  FakeApiClient fake;
  ConfigMapKeyringOptions options;
  options.minRefetch = std::chrono::milliseconds(0);
  ConfigMapKeyring keys(fake, kConfigMap, options);
  SigningKey a = *SigningKey::generate();
  auto before = keys.verify(stampedTask(a));  // no ConfigMap yet: an empty keyring
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->result, StampResult::kUnknownKey);
  EXPECT_NE(before->message.find(kConfigMap.toString()), std::string::npos);
  ASSERT_TRUE(publishPublicKey(fake, kConfigMap, a).ok());
  auto after = keys.verify(stampedTask(a));
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->verified()) << after->message;
}

TEST(ConfigMapKeyringTest, AKeyRemovedFromTheConfigMapStopsVerifying) {
  FakeApiClient fake;
  SigningKey a = *SigningKey::generate();
  ASSERT_TRUE(publishPublicKey(fake, kConfigMap, a).ok());
  ConfigMapKeyringOptions options;
  options.maxAge = std::chrono::milliseconds(0);
  ConfigMapKeyring keys(fake, kConfigMap, options);
  ASSERT_TRUE(keys.verify(stampedTask(a))->verified());
  ASSERT_TRUE(
      fake.patch(resources::kConfigMaps, kConfigMap, {{"data", {{a.keyId() + ".pem", nullptr}}}})
          .ok());
  auto check = keys.verify(stampedTask(a));
  ASSERT_TRUE(check.ok());
  EXPECT_EQ(check->result, StampResult::kUnknownKey);
}

TEST(ConfigMapKeyringTest, PinnedKeysVerifyWithoutTheConfigMap) {
  FakeApiClient fake;
  SigningKey own = *SigningKey::generate();
  ConfigMapKeyringOptions options;
  options.pinnedPublicPems = {own.publicPem()};
  ConfigMapKeyring keys(fake, kConfigMap, options);
  EXPECT_TRUE(keys.verify(stampedTask(own))->verified());
}

TEST(ConfigMapKeyringTest, AnUnreadableConfigMapIsAnErrorNotAVerdict) {
  FakeApiClient fake;
  fake.failNext("get", "configmaps", Status(StatusCode::kUnavailable, "injected"), 1);
  ConfigMapKeyring keys(fake, kConfigMap);
  auto check = keys.verify(stampedTask(*SigningKey::generate()));
  ASSERT_FALSE(check.ok());
  EXPECT_NE(check.status().message().find(kConfigMap.toString()), std::string::npos);
}

}  // namespace
}  // namespace tasklease::kube
