#pragma once
// Who delegated a task, and whether that is proven (docs/delegation.md). The mutating webhook
// stamps tasklease.io/requested-by on CREATE and signs it; a DelegationSource turns a task into
// a Delegation whose `verified` is true only when that signature verifies against the keys the
// webhook publishes. Policies with requireVerifiedDelegation (the default) allow only verified
// delegations.
//
//   kube::ConfigMapKeyring keys(client, {"tasklease-system", "tasklease-delegation-keys"});
//   VerifyingDelegationSource source(keys);
//   StatusOr<Delegation> who = source.delegationOf(task);   // error: keys unreadable, retry

#include <string_view>

#include "common/json.h"
#include "common/status.h"
#include "kube/delegation_keys.h"
#include "operator/policy.h"

namespace tasklease::op {

class DelegationSource {
 public:
  virtual ~DelegationSource() = default;
  // An error only when it cannot be known now whether the stamp verifies (the published keys
  // could not be read): the task is not decided on a guess, the reconcile is retried.
  virtual StatusOr<Delegation> delegationOf(const Json& task) const = 0;
};

// Verifies the stamp with a StampVerifier (in the operator: the ConfigMap of published keys).
// A stamp that is present but does not verify (unsigned, signed by an unknown key, altered,
// copied from another task) is a Delegation with verified = false and the reason.
class VerifyingDelegationSource final : public DelegationSource {
 public:
  // stamps must outlive the source.
  explicit VerifyingDelegationSource(kube::StampVerifier& stamps) : stamps_(stamps) {}
  StatusOr<Delegation> delegationOf(const Json& task) const override;

 private:
  kube::StampVerifier& stamps_;
};

// The stamp's value as a Delegation, never verified: a JSON object {"username", "uid",
// "groups"} or, from older writers, a bare username (present = true unless the value is empty).
Delegation parseRequestedBy(std::string_view value);

}  // namespace tasklease::op
