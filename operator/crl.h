#pragma once
// The certificate revocation list of X509SVID credentials, published in the ConfigMap
// tasklease-crl in the operator's namespace: `crl.pem` holds one CRL per CA in use (signed by
// that CA), `ca.crt` the trust bundle, and `revoked.json` the entries the CRLs are rebuilt
// from. An entry stays until an hour after the certificate it revokes would have expired anyway
// (relying parties' clocks may lag the operator's).
//
//   CrlPublisher crl(client, caStore, {.configMap = {"tasklease-system", "tasklease-crl"}}, now);
//   crl.revoke({.serialHex = "1f...", .issuer = caFingerprint, .revokedAt = now,
//               .notAfter = deadline, .task = "team-a/t1"});
//   crl.refresh();   // on a timer: prunes, and re-signs before nextUpdate

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "operator/ca_store.h"

namespace tasklease::op {

struct CrlOptions {
  kube::ObjectKey configMap{"tasklease-system", "tasklease-crl"};
  // nextUpdate = thisUpdate + validity; refresh() re-signs after half of it.
  std::chrono::seconds validity{std::chrono::hours(24)};
};

struct RevokedCertificate {
  std::string serialHex;
  std::string issuer;  // fingerprint of the signing CA; empty: unknown, listed on every CRL
  TimePoint revokedAt;
  TimePoint notAfter;
  std::string task;  // "namespace/name", for people reading the ConfigMap
};

class CrlPublisher {
 public:
  CrlPublisher(kube::ApiClient& client, CaStore& cas, CrlOptions options,
               std::function<TimePoint()> now);

  // Adds the certificates and republishes, in one write. Adding a serial already listed
  // changes nothing.
  Status revoke(const std::vector<RevokedCertificate>& certificates);
  Status revoke(const RevokedCertificate& certificate) {
    return revoke(std::vector<RevokedCertificate>{certificate});
  }
  // Drops expired entries and entries of CAs no longer in use, and re-signs when the CRLs
  // are past half their validity or the CAs changed. Publishes an empty CRL on first use.
  Status refresh();

 private:
  // Read, change, write, again on a conflict. `change` returns whether to write.
  Status update(const std::function<bool(std::vector<RevokedCertificate>& entries,
                                         const Json& state)>& change);

  kube::ApiClient& client_;
  CaStore& cas_;
  const CrlOptions options_;
  const std::function<TimePoint()> now_;
  std::mutex mu_;  // one read-modify-write at a time within the process
};

}  // namespace tasklease::op
