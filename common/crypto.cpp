#include "common/crypto.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace tasklease {
namespace {

std::string toHex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xF]);
  }
  return out;
}

}  // namespace

std::string sha256Hex(std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  // EVP_Digest fails only when OpenSSL cannot allocate: an invariant, not an input error.
  if (EVP_Digest(data.data(), data.size(), md.data(), &len, EVP_sha256(), nullptr) != 1) {
    std::fputs("fatal: EVP_Digest(sha256) failed\n", stderr);
    std::abort();
  }
  return toHex(md.data(), len);
}

std::string fingerprint(std::string_view secret) {
  return "sha256:" + sha256Hex(secret);
}

std::string randomHex(size_t bytes) {
  std::vector<unsigned char> buf(bytes);
  if (RAND_bytes(buf.data(), static_cast<int>(buf.size())) != 1) {
    std::fputs("fatal: RAND_bytes failed: no entropy\n", stderr);
    std::abort();
  }
  return toHex(buf.data(), buf.size());
}

}  // namespace tasklease
