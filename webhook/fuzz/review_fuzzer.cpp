// libFuzzer target over what the webhook takes from outside: the AdmissionReview decoder, the
// review (every rule, exceptions, enforcement modes) and the response encoder, plus the TL004
// detectors on raw bytes. Built only with -DTASKLEASE_FUZZ=ON and clang (docs/webhook.md).
//
//   ./webhook_review_fuzzer -max_total_time=60 webhook/fuzz/corpus

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "webhook/admission.h"
#include "webhook/review.h"
#include "webhook/secret_detectors.h"

namespace {

using namespace tasklease;           // NOLINT: a fuzz entry point
using namespace tasklease::webhook;  // NOLINT

// team-a enforces and has every kind of ServiceAccount and task the rules look at.
const ObjectSetClusterState& state() {
  static const ObjectSetClusterState s = [] {
    ObjectSetClusterState st(LookupState::kAbsent);
    st.add(Json::parse(
        R"({"kind":"Namespace","metadata":{"name":"team-a","labels":{"tasklease.io/enforcement":"enforce"}}})"));
    st.add(Json::parse(
        R"({"kind":"Namespace","metadata":{"name":"team-w","labels":{"tasklease.io/enforcement":"warn"}}})"));
    st.add(Json::parse(
        R"({"kind":"ServiceAccount","metadata":{"name":"web","namespace":"team-a","annotations":{"tasklease.io/dedicated-to":"Deployment/web"}}})"));
    st.add(Json::parse(
        R"({"kind":"ServiceAccount","metadata":{"name":"tl-build","namespace":"team-a","labels":{"tasklease.io/task":"build","tasklease.io/task-uid":"u1","app.kubernetes.io/managed-by":"tasklease"}}})"));
    st.add(Json::parse(
        R"({"kind":"AgentTask","metadata":{"name":"build","namespace":"team-a","uid":"u1"},"status":{"phase":"Active","credential":{"serviceAccountName":"tl-build","secretName":"tl-build-cred","expiresAt":"2030-01-01T00:00:00Z"}}})"));
    st.add(Json::parse(
        R"({"apiVersion":"tasklease.io/v1alpha1","kind":"IdentityException","metadata":{"name":"x","namespace":"team-a"},"spec":{"reason":"r","approvedBy":"a","expiresAt":"2030-01-01T00:00:00Z","rules":["TL001","TL003"],"podSelector":{"matchExpressions":[{"key":"app","operator":"In","values":["web"]}]}}})"));
    return st;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  StatusOr<AdmissionRequest> request = decodeAdmissionReview(body);
  if (request.ok()) {
    ReviewOutcome out =
        reviewAdmission(*request, state(), ReviewConfig{}, *parseRfc3339("2029-06-01T00:00:00Z"));
    std::string encoded = encodeAdmissionReview(out.response);
    if (encoded.find(request->uid.empty() ? "\"uid\"" : "\"response\"") == std::string::npos) {
      __builtin_trap();  // every answer must be an AdmissionReview response
    }
  }
  size_t half = size / 2;
  detectLiteralSecret(body.substr(0, half > 64 ? 64 : half), body.substr(half));
  return 0;
}
