#pragma once
// AgentTask admission with its two outside calls (docs/delegation.md): the stamp's signature
// is checked against the published keys, and every permission the task asks for is checked
// against the requesting user's own with SubjectAccessReviews, so a delegation can never exceed
// the delegator's authority. These reviews call the API server, unlike pod reviews: AgentTasks
// are created rarely and each check must be current. The calls are bounded by a deadline, and
// when an answer is missing the task is refused (fail closed).
//
//   SarAccessReviewer access(apiClient);
//   kube::ConfigMapKeyring stamps(apiClient, {ns, "tasklease-delegation-keys"});
//   AgentTaskReviewer tasks(signingKey, stamps, access, {});
//   ReviewOutcome m = tasks.mutate(request, now);    // POST /mutate
//   ReviewOutcome v = tasks.validate(request, now);  // POST /validate

#include <chrono>
#include <string>
#include <vector>

#include "kube/api_client.h"
#include "kube/delegation_keys.h"
#include "webhook/agenttask.h"
#include "webhook/review.h"
#include "webhook/rules.h"

namespace tasklease::webhook {

// The answer to one PermissionCheck.
struct AccessAnswer {
  bool answered = false;
  bool allowed = false;
  std::string error;  // why there is no answer
};

class AccessReviewer {
 public:
  virtual ~AccessReviewer() = default;
  // One answer per check, in order; checks not answered within `deadline` say so.
  virtual std::vector<AccessAnswer> review(const UserInfo& user, const std::string& ns,
                                           const std::vector<PermissionCheck>& checks,
                                           std::chrono::milliseconds deadline) = 0;
};

// One SubjectAccessReview per check (user, uid, groups and extra of the request), a few at a
// time in parallel.
class SarAccessReviewer final : public AccessReviewer {
 public:
  explicit SarAccessReviewer(kube::ApiClient& client, int parallelism = 4)
      : client_(client), parallelism_(parallelism) {}
  std::vector<AccessAnswer> review(const UserInfo& user, const std::string& ns,
                                   const std::vector<PermissionCheck>& checks,
                                   std::chrono::milliseconds deadline) override;

 private:
  kube::ApiClient& client_;
  int parallelism_;
};

struct AgentTaskReviewConfig {
  // Bound on all of one task's SubjectAccessReviews together (the webhook registration's
  // timeoutSeconds must leave room for it).
  std::chrono::milliseconds accessDeadline{3000};
  // More checks than this are refused: a task asking for that much is a mistake or an attack
  // on the API server.
  size_t maxPermissionChecks = 256;
  // The pod rules a workload template is judged by (TL007's limit).
  RuleConfig rules;
};

class AgentTaskReviewer {
 public:
  // All three must outlive the reviewer.
  AgentTaskReviewer(const SigningKey& signer, kube::StampVerifier& stamps, AccessReviewer& access,
                    AgentTaskReviewConfig config = {});

  // /mutate: stamps an AgentTask CREATE; anything else passes unchanged.
  ReviewOutcome mutate(const AdmissionRequest& request, TimePoint now) const;
  // /validate for AgentTasks (isAgentTaskRequest): CREATE checks the spec, the stamp, the
  // workload template against the pod rules (whatever the namespace's enforcement mode) and the
  // requester's permissions, the workload's included; UPDATE checks that the spec (but
  // completed) and the stamp did not change. Records `delegated` for an admitted CREATE and
  // `rejected` for each denial.
  ReviewOutcome validate(const AdmissionRequest& request, TimePoint now) const;

 private:
  ReviewOutcome validateCreate(const AdmissionRequest& request, ReviewOutcome out,
                               TimePoint now) const;
  // The violations of spec.workload.template, judged as the operator will render it.
  std::vector<Violation> judgeWorkloadTemplate(const AdmissionRequest& request, const Json& spec,
                                               TimePoint now) const;

  const SigningKey& signer_;
  kube::StampVerifier& stamps_;
  AccessReviewer& access_;
  const AgentTaskReviewConfig config_;
};

}  // namespace tasklease::webhook
