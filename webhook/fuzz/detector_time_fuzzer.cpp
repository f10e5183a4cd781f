// libFuzzer target for time: the TL004 detectors must cost work linear in the value they judge
// (docs/rules.md, "Cost of a review"). Each input describes a hostile value built from the
// detectors' own prefixes and markers, repeated to tens of kilobytes; the work the detectors
// charge to a ReviewMeter (bytes and steps examined) must stay within a fixed number of units per
// byte, or the target traps. Work is counted, not timed, so a finding reproduces on any machine.
// Built only with -DTASKLEASE_FUZZ=ON and clang (docs/webhook.md, "Fuzzing").
//
//   ./webhook_time_fuzzer -max_total_time=60 webhook/fuzz/time_corpus
//
// Input: byte 0 picks the length (8 to 128 KiB); each further byte is either an anchor
// ("sk-", "ghp_", "-----BEGIN ", ...: values below twice the number of anchors) or one character
// of a small alphabet of body characters and separators. The unit they spell is repeated to the
// length, judged under a secret-like name and another, and its base64 judged too.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/base64.h"
#include "webhook/review_meter.h"
#include "webhook/secret_detectors.h"

namespace {

using namespace tasklease;           // NOLINT: a fuzz entry point
using namespace tasklease::webhook;  // NOLINT

// A quadratic detector spends thousands of units per byte at these lengths; every linear one
// stays far below this (the cost test pins single prefixes at 64).
constexpr uint64_t kMaxUnitsPerByte = 512;
constexpr uint64_t kFixedUnits = 4096;

constexpr std::string_view kAlphabet =
    "aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0zC-_./:@=+$<>{}()# \nPRIVATE KEY";

uint64_t workOf(std::string_view name, std::string_view value) {
  ReviewMeter meter;
  ReviewMeter::Scope metered(meter);
  detectLiteralSecret(name, value);
  return meter.work();
}

void expectLinear(std::string_view name, std::string_view value) {
  if (workOf(name, value) > kMaxUnitsPerByte * value.size() + kFixedUnits) {
    __builtin_trap();  // a detector rescans: its cost grows faster than its input
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const auto& anchors = secretDetectorAnchors();
  const size_t length = (size_t{8} << (data[0] % 5)) * 1024;  // 8, 16, 32, 64 or 128 KiB
  std::string unit;
  for (size_t i = 1; i < size && unit.size() < 256; ++i) {
    const size_t b = data[i];
    if (b < 2 * anchors.size()) {
      unit += anchors[b % anchors.size()];
    } else {
      unit += kAlphabet[b % kAlphabet.size()];
    }
  }
  if (unit.empty()) return 0;
  std::string value;
  value.reserve(length + unit.size());
  while (value.size() < length) value += unit;
  value.resize(length);
  expectLinear("API_TOKEN", value);
  expectLinear("LOG_LEVEL", value);
  expectLinear("X", base64Encode(value));
  return 0;
}
