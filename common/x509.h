#pragma once
// X.509 for tasklease's own certificate authorities: an EC P-256 CA that signs leaf
// certificates (serving certificates with DNS names, SPIFFE IDs as URI names) and CRLs.
// OpenSSL stays inside x509.cpp; certificates and keys cross this interface as PEM text.
//
//   auto ca = X509Authority::generate({.commonName = "tasklease-webhook CA",
//                                      .notBefore = now - 1h, .notAfter = now + 8760h});
//   auto leaf = ca->issue({.commonName = "tasklease-webhook.tasklease-system.svc",
//                          .dnsNames = {"tasklease-webhook.tasklease-system.svc"},
//                          .notBefore = now - 1h, .notAfter = now + 2160h});
//   bool mine = ca->signedByThis(leaf->certPem);
//
// Key material leaves this module only as the PEM the caller stores in a Secret or a file that
// only its process reads; log CertificateSummary::fingerprint instead.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/rfc3339.h"
#include "common/status.h"

namespace tasklease {

struct CertificateSummary {
  std::string serialHex;  // lower-case hex without leading zeros
  TimePoint notBefore;
  TimePoint notAfter;
  std::string commonName;
  std::vector<std::string> dnsNames;  // DNS subjectAltNames
  std::vector<std::string> uris;      // URI subjectAltNames
  std::string fingerprint;            // "sha256:" + hex of the DER encoding
  bool isCa = false;
};

// The first certificate of a PEM text.
StatusOr<CertificateSummary> inspectCertificate(std::string_view pem);

// Each "-----BEGIN CERTIFICATE-----" block of a bundle, in order, as PEM text ending in a
// newline. Text between blocks is dropped.
std::vector<std::string> splitCertificates(std::string_view bundle);

// Whether `keyPem` is the private key of the first certificate in `certPem`.
bool keyMatchesCertificate(std::string_view certPem, std::string_view keyPem);

struct CaRequest {
  std::string commonName;
  std::vector<std::string> uris;  // e.g. the SPIFFE trust domain "spiffe://example.org"
  TimePoint notBefore;
  TimePoint notAfter;
};

struct LeafRequest {
  std::string commonName;
  std::vector<std::string> dnsNames;
  std::vector<std::string> uris;
  TimePoint notBefore;
  TimePoint notAfter;
  bool serverAuth = true;
  bool clientAuth = false;
};

struct IssuedCertificate {
  std::string certPem;
  std::string keyPem;  // PKCS#8, unencrypted
  CertificateSummary summary;
};

struct RevokedSerial {
  std::string serialHex;
  TimePoint revokedAt;
};

class X509Authority {
 public:
  // A new self-signed CA: EC P-256, CA:TRUE with pathlen 0, keyCertSign and cRLSign.
  static StatusOr<X509Authority> generate(const CaRequest& request);
  // From stored PEM; checks that the key belongs to the certificate and that it is a CA.
  static StatusOr<X509Authority> load(std::string_view certPem, std::string_view keyPem);

  const std::string& certPem() const { return certPem_; }
  const std::string& keyPem() const { return keyPem_; }
  const CertificateSummary& summary() const { return summary_; }

  // A leaf with a new EC P-256 key: CA:FALSE, digitalSignature and keyAgreement, the requested
  // extended key usages and names, a random 127-bit serial. Refused when it would outlive the
  // CA (a verifier would reject it from then on) or when it names nothing.
  StatusOr<IssuedCertificate> issue(const LeafRequest& request) const;
  // Whether this CA's key signed `leafPem`.
  bool signedByThis(std::string_view leafPem) const;
  // A v2 CRL with a CRL number and the authority key identifier, as PEM.
  StatusOr<std::string> signCrl(const std::vector<RevokedSerial>& entries, TimePoint thisUpdate,
                                TimePoint nextUpdate, uint64_t number) const;

 private:
  struct Keys;
  X509Authority(std::shared_ptr<Keys> keys, std::string certPem, std::string keyPem,
                CertificateSummary summary);

  std::shared_ptr<Keys> keys_;
  std::string certPem_;
  std::string keyPem_;
  CertificateSummary summary_;
};

}  // namespace tasklease
