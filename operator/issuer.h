#pragma once
// CredentialIssuer: how a task's credential is minted into its Secret and what must happen
// before that Secret is deleted. The reconciler creates the ServiceAccount, Role and RoleBinding
// and then asks the issuer for the credential type the task names:
//
//   ServiceAccountTokenIssuer: a TokenRequest for the task's ServiceAccount, bound to the
//     credential Secret (so deleting the Secret invalidates the token), stored only there.
//   X509SvidIssuer: an X509-SVID signed by the operator's CA, in a kubernetes.io/tls Secret;
//     revocation puts its serial on the CRL.
//
// issue() is idempotent: a Secret that already holds a good credential of this task (written
// by a run that crashed before recording it) is adopted, not minted again.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "operator/ca_store.h"
#include "operator/crl.h"
#include "operator/naming.h"
#include "operator/task.h"

namespace tasklease::op {

struct IssueContext {
  TaskRef task;
  const TaskSpec& spec;
  TaskNames names;
  std::string serviceAccountUid;  // the token must be for this incarnation of the account
  TimePoint created;              // the task's creationTimestamp
  TimePoint now;
  TimePoint deadline;
};

struct IssuedCredential {
  std::string fingerprint;  // sha256: of the token or of the certificate's DER
  std::string tokenId;      // the token's jti (ServiceAccountToken)
  std::string serial;       // lower-case hex (X509SVID)
  std::string spiffeId;     // the certificate's URI SAN (X509SVID)
  TimePoint issuedAt;
  TimePoint expiresAt;   // when it stops working: the deadline at the latest
  bool adopted = false;  // found in the Secret, written by an earlier run
};

struct RevokeContext {
  TaskRef task;
  std::optional<Json> secret;  // the credential Secret, when it still exists
  Json statusCredential;       // the task's status.credential, when the task is known
  TimePoint now;
};

class CredentialIssuer {
 public:
  virtual ~CredentialIssuer() = default;
  virtual CredentialType type() const = 0;
  // Creates or adopts the credential Secret (names.secret()) holding a fresh credential.
  virtual StatusOr<IssuedCredential> issue(const IssueContext& context) = 0;
  // Runs before the Secrets of these tasks (one revocation batch) are deleted; records what
  // must outlive them, all at once.
  virtual Status beforeRevoke(const std::vector<RevokeContext>& contexts) = 0;
};

// The issuers by type; not owning.
using IssuerSet = std::map<CredentialType, CredentialIssuer*>;

// The API server rejects TokenRequests for less than this.
inline constexpr std::chrono::seconds kMinTokenLifetime{600};

class ServiceAccountTokenIssuer final : public CredentialIssuer {
 public:
  // `apiServerCaPem` (may be empty) goes into the Secret as ca.crt, for clients of the token.
  ServiceAccountTokenIssuer(kube::ApiClient& client, std::string apiServerCaPem);
  CredentialType type() const override { return CredentialType::kServiceAccountToken; }
  StatusOr<IssuedCredential> issue(const IssueContext& context) override;
  // Nothing: the token dies with the Secret it is bound to.
  Status beforeRevoke(const std::vector<RevokeContext>& contexts) override;

 private:
  kube::ApiClient& client_;
  const std::string apiServerCaPem_;
};

class X509SvidIssuer final : public CredentialIssuer {
 public:
  X509SvidIssuer(kube::ApiClient& client, CaStore& cas, CrlPublisher& crl, std::string trustDomain);
  CredentialType type() const override { return CredentialType::kX509Svid; }
  StatusOr<IssuedCredential> issue(const IssueContext& context) override;
  // Puts the certificates' serials on their CAs' CRLs, in one write of the CRL ConfigMap.
  Status beforeRevoke(const std::vector<RevokeContext>& contexts) override;

 private:
  // What goes on the CRL for one task; serialHex empty when there is nothing to revoke.
  RevokedCertificate revokedEntry(const RevokeContext& context) const;

  kube::ApiClient& client_;
  CaStore& cas_;
  CrlPublisher& crl_;
  const std::string trustDomain_;
};

// The claims of a JWT (its middle part), without checking the signature: for reading back a
// token the API server just issued. Errors say which part is malformed.
StatusOr<Json> jwtClaims(std::string_view token);

}  // namespace tasklease::op
