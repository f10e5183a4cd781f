#pragma once
// TL004's detectors: does a literal environment value look like a secret? Provider key formats
// (AWS, GitHub, GitLab, Slack, Stripe, Google, OpenAI, Anthropic), PEM private keys, JWTs,
// passwords inside URLs, and high-entropy values under secret-like names; a base64-wrapped value
// is decoded once and checked again. docs/rules.md lists each detector, its thresholds and what
// it deliberately does not flag (documentation placeholders, references, paths, names).
//
//   if (auto hit = detectLiteralSecret("GITHUB_TOKEN", value)) report(hit->detector);
//
// A match never carries the value or any part of it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tasklease::webhook {

struct SecretMatch {
  std::string detector;     // stable id: "github-token", "high-entropy-secret", ...
  std::string description;  // "a GitHub personal access token"
  bool base64Wrapped = false;
};

// The first detector that matches, or nullopt. envName may be empty (a value outside env).
std::optional<SecretMatch> detectLiteralSecret(std::string_view envName, std::string_view value);

// Ids of every detector, in the order they are tried.
const std::vector<std::string>& secretDetectorIds();

// The prefixes and markers the format detectors look for ("ghp_", "sk-", "-----BEGIN ", ...):
// what the cost tests and the time fuzzer build hostile values from.
const std::vector<std::string>& secretDetectorAnchors();

// Exposed for tests and docs: the thresholds of the generic detector.
struct EntropyThresholds {
  size_t minLength = 16;           // shorter values are never called high-entropy
  double minBitsPerChar = 3.5;     // Shannon entropy over the value's characters
  size_t minHexLength = 32;        // hex-only values must be at least this long ...
  double minHexBitsPerChar = 3.0;  // ... and reach this entropy
};
const EntropyThresholds& entropyThresholds();

// Shannon entropy in bits per character of the bytes of text.
double shannonEntropy(std::string_view text);

// True when the variable name says it holds a secret (DB_PASSWORD, githubToken, API_KEY) and
// not something about a secret (TOKEN_URL, PASSWORD_FILE, SECRET_NAME).
bool isSecretLikeName(std::string_view envName);

}  // namespace tasklease::webhook
