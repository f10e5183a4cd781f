#pragma once
// Hashes and random values for fingerprints, evidence chains and names.

#include <string>
#include <string_view>

namespace tasklease {

// Lower-case hex SHA-256 of the bytes.
std::string sha256Hex(std::string_view data);

// The fingerprint under which a secret (a token, a key) may be logged or stored:
// "sha256:" followed by the hex digest. Never log the secret itself.
std::string fingerprint(std::string_view secret);

// Cryptographically random bytes as lower-case hex, 2*bytes characters.
std::string randomHex(size_t bytes);

}  // namespace tasklease
