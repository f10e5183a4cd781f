#include "webhook/secret_detectors.h"

#include <gtest/gtest.h>

#include "common/base64.h"

namespace tasklease::webhook {
namespace {

// Test tokens are assembled from parts so the source itself carries no complete key.
const std::string kBody36 = std::string("8f3KzQ1vLw9XbT2m") + "N7pR4sY6uA0cE5dGhJ2k";  // 36
const std::string kBody80 =
    kBody36 + "Tq7WnZ3xBv1Lc9Mf" + "Hs5Dg2Pj8Ka4Ry6Ue0Io3Yw7Xz1Nb5Vc9";  // 85

struct Case {
  std::string name;  // env var name
  std::string value;
  std::string detector;  // expected detector id, "" for none
};

void expectCases(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    auto hit = detectLiteralSecret(c.name, c.value);
    if (c.detector.empty()) {
      EXPECT_FALSE(hit.has_value())
          << c.name << "=" << c.value << " flagged as " << (hit ? hit->detector : "");
    } else {
      ASSERT_TRUE(hit.has_value()) << c.name << "=" << c.value << " not flagged";
      EXPECT_EQ(hit->detector, c.detector) << c.name << "=" << c.value;
    }
  }
}

TEST(SecretDetectorsTest, AwsAccessKeyIds) {
  expectCases({
      {"X", "AKIA" + std::string("Z7Q3M5N2K8P4R6T1"), "aws-access-key-id"},
      {"X", "ASIA" + std::string("Y2W4E6R8T1Q3Z5X7"), "aws-access-key-id"},
      {"X", "aws_access_key_id=AKIA" + std::string("Z7Q3M5N2K8P4R6T1"), "aws-access-key-id"},
      // AWS's documentation key.
      {"AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", ""},
      {"X", "AKIA" + std::string("Z7Q3M5N2"), ""},           // too short
      {"X", "XAKIA" + std::string("Z7Q3M5N2K8P4R6T1"), ""},  // inside a word
      {"X", "AKIA" + std::string("Z7Q3M5N2K8P4R6T1X"), ""},  // too long
  });
}

TEST(SecretDetectorsTest, GitHubClassicTokens) {
  expectCases({
      {"X", "ghp_" + kBody36, "github-token"},
      {"X", "gho_" + kBody36, "github-token"},
      {"X", "ghu_" + kBody36, "github-token"},
      {"X", "ghs_" + kBody36, "github-token"},
      {"X", "ghr_" + kBody36, "github-token"},
      {"X", "https://x-access-token:ghs_" + kBody36 + "@github.com/o/r", "github-token"},
      {"X", "ghp_" + std::string(36, 'x'), ""},   // placeholder
      {"X", "ghp_" + kBody36.substr(0, 20), ""},  // too short
      {"X", "ghx_" + kBody36, ""},                // not a GitHub prefix
  });
}

TEST(SecretDetectorsTest, GitHubFineGrainedTokens) {
  expectCases({
      {"X", "github_pat_11ABCDEFG0" + kBody36 + "_" + kBody36.substr(0, 30),
       "github-fine-grained-token"},
      {"X", "github_pat_<your-token-here>", ""},
      {"X", "github_pat_" + kBody36.substr(0, 20), ""},
  });
}

TEST(SecretDetectorsTest, GitLabTokens) {
  expectCases({
      {"X", "glpat-" + kBody36.substr(0, 20), "gitlab-token"},
      {"X", "glpat-xxxxxxxxxxxxxxxxxxxx", ""},
      {"X", "glpat-" + kBody36.substr(0, 10), ""},
  });
}

TEST(SecretDetectorsTest, SlackTokensAndWebhooks) {
  expectCases({
      {"X", "xoxb-" + std::string("123456789012-1234567890123-") + "AbCdEfGhIjKlMnOpQrStUvWx",
       "slack-token"},
      {"X", "xoxp-" + std::string("2048104729-2710473820-") + kBody36.substr(0, 24), "slack-token"},
      {"X", "xoxb-your-bot-token-goes-here", ""},
      {"X", "https://hooks.slack.com/services/T01ABCDEF/B02GHIJKL/" + kBody36.substr(0, 24),
       "slack-webhook"},
      {"X", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", ""},
      {"X", "https://hooks.slack.com/services/", ""},
  });
}

TEST(SecretDetectorsTest, StripeLiveKeys) {
  expectCases({
      {"X", "sk_live_" + kBody36.substr(0, 24), "stripe-live-key"},
      {"X", "rk_live_" + kBody36.substr(0, 24), "stripe-live-key"},
      {"X", "sk_test_" + kBody36.substr(0, 24), ""},  // test mode
      {"X", "pk_live_" + kBody36.substr(0, 24), ""},  // publishable, meant to be public
  });
}

TEST(SecretDetectorsTest, GoogleApiKeys) {
  expectCases({
      {"X", "AIza" + kBody36.substr(0, 35), "google-api-key"},
      {"X", "AIza" + kBody36.substr(0, 20), ""},
      {"X", "AIza" + std::string(35, 'X'), ""},
  });
}

TEST(SecretDetectorsTest, OpenAiAndAnthropicKeys) {
  expectCases({
      {"X", "sk-" + kBody36 + "Ab3Cd5Ef7Gh9", "openai-api-key"},
      {"X", "sk-proj-" + kBody80, "openai-api-key"},
      {"X", "sk-ant-api03-" + kBody80 + "-AA", "anthropic-api-key"},
      {"X", "sk-your-api-key-here", ""},
      {"X", "sk-" + std::string(48, 'x'), ""},
      {"X", "disk-" + kBody36 + "Ab3Cd5Ef7Gh9", ""},  // "sk-" inside a word
      {"X", "sk-" + kBody36.substr(0, 20), ""},       // too short
  });
}

TEST(SecretDetectorsTest, PemPrivateKeys) {
  const std::string body = "\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n";
  expectCases({
      {"X", "-----BEGIN RSA PRIVATE KEY-----" + body + "-----END RSA PRIVATE KEY-----",
       "private-key-pem"},
      {"X", "-----BEGIN PRIVATE KEY-----" + body + "-----END PRIVATE KEY-----", "private-key-pem"},
      {"X", "-----BEGIN OPENSSH PRIVATE KEY-----" + body, "private-key-pem"},
      {"X", "-----BEGIN EC PRIVATE KEY-----" + body, "private-key-pem"},
      {"X", "-----BEGIN CERTIFICATE-----" + body + "-----END CERTIFICATE-----", ""},
      {"X", "-----BEGIN PUBLIC KEY-----" + body + "-----END PUBLIC KEY-----", ""},
  });
}

TEST(SecretDetectorsTest, Jwts) {
  const std::string header = base64Encode(R"({"alg":"HS256","typ":"JWT"})");
  auto url = [](std::string s) {
    for (char& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
    while (!s.empty() && s.back() == '=') s.pop_back();
    return s;
  };
  const std::string payload = url(base64Encode(R"({"sub":"1234567890","iat":1516239022})"));
  const std::string sig = kBody36.substr(0, 32) + "Ab3Cd5Ef7Gh";
  expectCases({
      {"X", url(header) + "." + payload + "." + sig, "jwt"},
      {"X", "Bearer " + url(header) + "." + payload + "." + sig, "jwt"},
      // alg none: unsigned, grants nothing by itself.
      {"X", url(base64Encode(R"({"alg":"none"})")) + "." + payload + ".", ""},
      // header without alg
      {"X", url(base64Encode(R"({"typ":"JWT"})")) + "." + payload + "." + sig, ""},
      {"X", "1.2.3", ""},
      {"X", "eyJhbGciOi.b.c", ""},
  });
}

TEST(SecretDetectorsTest, PasswordsInUrls) {
  expectCases({
      {"DATABASE_URL", "postgres://app:s3cr3tP4ss@db:5432/app", "url-credentials"},
      {"REDIS_URL", "redis://:hunter2@redis:6379/0", "url-credentials"},
      {"DATABASE_URL", "postgres://app:$(DB_PASSWORD)@db:5432/app", ""},
      {"DATABASE_URL", "postgres://app:${DB_PASSWORD}@db:5432/app", ""},
      {"DATABASE_URL", "postgres://user:password@localhost/app", ""},
      {"UPSTREAM", "https://user@example.com/path", ""},
      {"UPSTREAM", "https://example.com:8443/a:b@c", ""},
  });
}

TEST(SecretDetectorsTest, HighEntropyValuesUnderSecretLikeNames) {
  expectCases({
      {"DB_PASSWORD", "Xk9#mQ2$vL8@pR4!wT6z", "high-entropy-secret"},
      {"dbPassword", "Xk9#mQ2$vL8@pR4!wT6z", "high-entropy-secret"},
      {"API_KEY", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b", "high-entropy-secret"},
      {"CLIENT_SECRET", "Q2hhbmdlZCBieSB0aGUgdGVzdA7x", "high-entropy-secret"},
      {"TOKEN", "5Jv8qLz3Rk0Wb7Nd2Ty4", "high-entropy-secret"},
      {"WEBHOOK_SIGNING_KEY", "mZ4vQ8xK2pL7wN9rT3bY", "high-entropy-secret"},
      // About a secret, not the secret.
      {"TOKEN_URL", "5Jv8qLz3Rk0Wb7Nd2Ty4", ""},
      {"PASSWORD_FILE", "/run/secrets/db-password", ""},
      {"SECRET_NAME", "team-a-db-credentials-v2", ""},
      {"TOKEN_AUDIENCE", "Xk9mQ2vL8pR4wT6zAbCd", ""},
      // Not high-entropy, or not a value.
      {"DB_PASSWORD", "true", ""},
      {"DB_PASSWORD", "Ab1Cd2Ef3", ""},
      {"DB_PASSWORD", "change-me-in-production", ""},
      {"DB_PASSWORD", "$(DB_PASSWORD_FROM_FILE)", ""},
      {"API_KEY", "aaaaaaaaaaaaaaaaaaaaaaaa", ""},
      {"API_KEY", "1234567890123456789012", ""},
      {"SECRET", "the quick brown fox jumps over", ""},
      // Random-looking value under a name that is not secret-like.
      {"BUILD_ID", "5Jv8qLz3Rk0Wb7Nd2Ty4", ""},
      {"CACHE_KEY", "5Jv8qLz3Rk0Wb7Nd2Ty4", ""},
  });
}

TEST(SecretDetectorsTest, HighEntropyThresholdsAreInclusiveAtTheirValues) {
  // A second, independent test of the thresholds, at their edges. 16 characters, 12 distinct
  // (4 of them twice): exactly 3.5 bits per character, flagged; 11 distinct (5 twice): 3.375,
  // not flagged.
  const std::string at = "Q7wZ3kP9xR2mQ7wZ";
  const std::string below = "Q7wZ3kP9xR2Q7wZ3";
  ASSERT_DOUBLE_EQ(shannonEntropy(at), 3.5);
  ASSERT_DOUBLE_EQ(shannonEntropy(below), 3.375);
  EXPECT_EQ(entropyThresholds().minBitsPerChar, 3.5);
  auto hit = detectLiteralSecret("API_TOKEN", at);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->detector, "high-entropy-secret");
  EXPECT_FALSE(detectLiteralSecret("API_TOKEN", below).has_value());
  // Hex: 32 digits of 8 values, 4 each, is exactly 3.0 bits: flagged; 31 of them are too short.
  const std::string hex = "0123456789abcdef0123456789abcdef";
  const std::string hex8 = "01234567012345670123456701234567";
  ASSERT_DOUBLE_EQ(shannonEntropy(hex8), 3.0);
  EXPECT_TRUE(detectLiteralSecret("API_TOKEN", hex8).has_value());
  EXPECT_FALSE(detectLiteralSecret("API_TOKEN", hex8.substr(1)).has_value());
  EXPECT_TRUE(detectLiteralSecret("API_TOKEN", hex).has_value());
  // 15 characters of high entropy are below the minimum length.
  EXPECT_FALSE(detectLiteralSecret("API_TOKEN", "Q7wZ3kP9xR2mAbC").has_value());
  EXPECT_TRUE(detectLiteralSecret("API_TOKEN", "Q7wZ3kP9xR2mAbCd").has_value());
}

TEST(SecretDetectorsTest, Base64WrappedValuesAreDecodedOnceAndRechecked) {
  auto pem =
      base64Encode("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----\n");
  auto gh = base64Encode("ghp_" + kBody36);
  auto hit = detectLiteralSecret("CONFIG_BLOB", gh);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->detector, "github-token");
  EXPECT_TRUE(hit->base64Wrapped);
  hit = detectLiteralSecret("TLS_MATERIAL", pem);
  ASSERT_TRUE(hit.has_value());
  EXPECT_EQ(hit->detector, "private-key-pem");
  EXPECT_FALSE(detectLiteralSecret("GREETING", base64Encode("hello, this is a harmless message")));
  // Decoded only once: base64 of base64 of a token is not unwrapped twice.
  EXPECT_FALSE(detectLiteralSecret("BLOB", base64Encode(gh)));
}

TEST(SecretDetectorsTest, SecretLikeNames) {
  for (const char* yes : {"PASSWORD", "DB_PASSWORD", "dbPassword", "GITHUB_TOKEN", "API_KEY",
                          "apiKey", "APIKey", "PRIVATE_KEY", "AWS_SECRET_ACCESS_KEY", "CREDENTIALS",
                          "AZURE_STORAGE_CONNECTION_STRING", "TOKEN_V2"}) {
    EXPECT_TRUE(isSecretLikeName(yes)) << yes;
  }
  for (const char* no : {"TOKEN_URL", "PASSWORD_FILE", "SECRET_NAME", "API_KEY_HEADER",
                         "AWS_ACCESS_KEY_ID", "TOKEN_TTL_SECONDS", "HOSTNAME", "CACHE_KEY",
                         "PARTITION_KEY", "KEY", "PASSWORD_FILE_PATH", "OIDC_TOKEN_ENDPOINT"}) {
    EXPECT_FALSE(isSecretLikeName(no)) << no;
  }
}

TEST(SecretDetectorsTest, ShannonEntropy) {
  EXPECT_DOUBLE_EQ(shannonEntropy(""), 0);
  EXPECT_DOUBLE_EQ(shannonEntropy("aaaa"), 0);
  EXPECT_DOUBLE_EQ(shannonEntropy("abab"), 1);
  EXPECT_DOUBLE_EQ(shannonEntropy("abcdefgh"), 3);
}

TEST(SecretDetectorsTest, EveryDetectorIsListed) {
  const auto& ids = secretDetectorIds();
  for (const char* id :
       {"aws-access-key-id", "github-token", "github-fine-grained-token", "gitlab-token",
        "slack-token", "slack-webhook", "stripe-live-key", "google-api-key", "openai-api-key",
        "anthropic-api-key", "private-key-pem", "jwt", "url-credentials", "high-entropy-secret"}) {
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
  }
}

}  // namespace
}  // namespace tasklease::webhook
