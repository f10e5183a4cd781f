#pragma once
// Who delegated a task: the seam between the operator and the webhook's stamp (issue 6). The
// mutating webhook writes the requesting user into the annotation tasklease.io/requested-by on
// CREATE; a DelegationSource turns a task into a Delegation and says whether the stamp can be
// trusted. Policies with requireVerifiedDelegation allow only verified delegations.
//
//   StampedDelegationSource source;        // verified is always false, see below
//   Delegation who = source.delegationOf(task);

#include <string_view>

#include "common/json.h"
#include "operator/policy.h"

namespace tasklease::op {

class DelegationSource {
 public:
  virtual ~DelegationSource() = default;
  virtual Delegation delegationOf(const Json& task) const = 0;
};

// Reads the stamp as the webhook writes it: a JSON object {"username", "uid", "groups"}, or a
// bare username. Never marks it verified: the annotation alone does not prove that the webhook
// wrote it (a client without the webhook in the path can set it), so verification is left to
// the source that issue 6 brings.
class StampedDelegationSource final : public DelegationSource {
 public:
  Delegation delegationOf(const Json& task) const override;
};

// The stamp's value as a Delegation (present = true unless the value is empty).
Delegation parseRequestedBy(std::string_view value);

}  // namespace tasklease::op
