#pragma once
// FakeStampVerifier: a kube::StampVerifier over an in-memory Keyring, for tests of the
// webhook's AgentTask review and the operator's delegation source without a ConfigMap. It can
// be told to fail as if the keys could not be read.
//
//   FakeStampVerifier stamps;
//   stamps.keys.add(signingKey.publicPem());
//   stamps.failure = unavailable("configmaps is forbidden");   // every verify() fails

#include <optional>

#include "common/delegation_stamp.h"
#include "kube/delegation_keys.h"

namespace tasklease::kube {

class FakeStampVerifier final : public StampVerifier {
 public:
  StatusOr<StampCheck> verify(const Json& task) override {
    ++calls;
    if (failure) return *failure;
    return verifyStamp(task, keys);
  }

  Keyring keys;
  std::optional<Status> failure;
  int calls = 0;
};

}  // namespace tasklease::kube
