#include "common/crypto.h"

#include <gtest/gtest.h>

namespace tasklease {
namespace {

TEST(CryptoTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(CryptoTest, FingerprintNeverContainsTheSecret) {
  const std::string secret = "eyJhbGciOiJSUzI1NiJ9.payload.sig";
  std::string fp = fingerprint(secret);
  EXPECT_EQ(fp.rfind("sha256:", 0), 0U);
  EXPECT_EQ(fp.find(secret), std::string::npos);
  EXPECT_EQ(fp.size(), 7U + 64U);
}

TEST(CryptoTest, RandomHexHasRequestedLengthAndVaries) {
  std::string a = randomHex(16);
  std::string b = randomHex(16);
  EXPECT_EQ(a.size(), 32U);
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace tasklease
