#pragma once
// The operator's certificate authority for X509SVID credentials, kept in a Secret in the
// operator's namespace (tasklease-ca). The first start creates it; later starts load it. It is
// rotated before it expires: when the current CA has less than `rotateBefore` left, a new CA
// takes over signing and the old one stays in the Secret as `previous` until it expires, so
// that certificates it signed still verify (against the ca.crt bundle) and can still be put on
// its CRL. docs/operator.md describes the Secret and manual rotation.
//
//   CaStore store(client, {.secret = {"tasklease-system", "tasklease-ca"}}, now);
//   auto cas = store.ensure();                  // on start and on every sweep
//   cas.value()->issueSvid("spiffe://example.org/ns/team-a/task/t1", "t1", from, deadline);

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/x509.h"
#include "kube/api_client.h"

namespace tasklease::op {

struct CaOptions {
  kube::ObjectKey secret{"tasklease-system", "tasklease-ca"};
  std::string trustDomain = "cluster.local";
  std::chrono::seconds validity{std::chrono::hours(24 * 365)};
  // Longer than the longest task (24 h), so every certificate expires before its CA does.
  std::chrono::seconds rotateBefore{std::chrono::hours(24 * 30)};
};

// The CAs in use: `current` signs; `previous` (after a rotation, until it expires) verifies.
struct CaSet {
  X509Authority current;
  std::optional<X509Authority> previous;

  // An X509-SVID signed by `current`: a new EC P-256 key, the SPIFFE ID as its only name (a URI
  // SAN), serverAuth and clientAuth.
  StatusOr<IssuedCertificate> issueSvid(const std::string& spiffeId, const std::string& commonName,
                                        TimePoint notBefore, TimePoint notAfter) const;

  // The trust bundle: current, then previous.
  std::string bundlePem() const;
  // The CA whose key signed the certificate, or null.
  const X509Authority* issuerOf(std::string_view leafPem) const;
  // The CA with this certificate fingerprint, or null.
  const X509Authority* byFingerprint(const std::string& fingerprint) const;
};

class CaStore {
 public:
  CaStore(kube::ApiClient& client, CaOptions options, std::function<TimePoint()> now);

  // Loads the Secret, creating it when absent and rotating or pruning as above; caches and
  // returns the result. Safe to call again and from several threads.
  StatusOr<std::shared_ptr<const CaSet>> ensure();
  // The set ensure() last returned; null before the first success.
  std::shared_ptr<const CaSet> current() const;

  const CaOptions& options() const { return options_; }

 private:
  StatusOr<std::shared_ptr<const CaSet>> ensureOnce();

  kube::ApiClient& client_;
  const CaOptions options_;
  const std::function<TimePoint()> now_;
  std::mutex ensureMu_;  // one ensure() at a time: two would race to create or rotate
  mutable std::mutex mu_;
  std::shared_ptr<const CaSet> current_;  // guarded by mu_
};

}  // namespace tasklease::op
