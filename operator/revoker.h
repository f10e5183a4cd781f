#pragma once
// Revoker: takes a task's credential away, in the order of DESIGN.md §5: RoleBinding first (the
// permissions go at once), then the credential Secret (a bound token stops authenticating; an
// X.509 serial goes on the CRL just before), then the ServiceAccount, then the Role. Each
// deletion is verified by reading the object back; an object that is still there (a foreign
// finalizer) is an error, so the caller retries and never reports a revocation that did not
// happen. Objects not labelled with the task's uid are never touched.
//
//   Revoker revoker(client, issuers);
//   auto report = revoker.revoke({.task = ref, .names = names, .statusCredential = cred}, now);
//   if (!report.ok()) return report.status();        // retry with backoff

#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "operator/issuer.h"
#include "operator/naming.h"
#include "operator/task.h"

namespace tasklease::op {

struct RevocationTarget {
  TaskRef task;
  TaskNames names;
  // The task's type; nullopt when the task is gone (then read from the Secret's annotation).
  std::optional<CredentialType> type;
  Json statusCredential = Json::object();
};

struct RevocationReport {
  std::vector<std::string> deleted;  // "RoleBinding/tl-x-1a2b3c4d", in the order deleted
  bool anything() const { return !deleted.empty(); }
};

class Revoker {
 public:
  Revoker(kube::ApiClient& client, const IssuerSet& issuers);
  StatusOr<RevocationReport> revoke(const RevocationTarget& target, TimePoint now);

 private:
  // Deletes one object of the task and reads it back; adds it to the report when it existed.
  // `current` is the object as just read, when the caller has it (else it is read here).
  Status deleteVerified(const kube::ResourceRef& resource, const RevocationTarget& target,
                        const std::string& name, RevocationReport& report,
                        const StatusOr<Json>* current = nullptr);

  kube::ApiClient& client_;
  const IssuerSet& issuers_;
};

}  // namespace tasklease::op
