#pragma once
// X.509 for the X509SVID credential: the operator's certificate authority (EC P-256), the
// SPIFFE leaf certificates it signs, and the certificate revocation lists it publishes.
// OpenSSL stays inside x509.cpp; certificates and keys cross this interface as PEM text.
//
//   auto ca = CertificateAuthority::generate("example.org", now - 1h, now + 365 * 24h);
//   auto leaf = ca->issueSvid("spiffe://example.org/ns/team-a/task/t1", "t1", now, deadline);
//   auto crl = ca->signCrl({{leaf->info.serialHex, now}}, now, now + 24h, 7);
//
// Key material never leaves this module except as the PEM the caller stores in a Secret; log
// CertificateInfo::fingerprint instead.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/rfc3339.h"
#include "common/status.h"

namespace tasklease::op {

struct CertificateInfo {
  std::string serialHex;  // lower-case hex without leading zeros
  TimePoint notBefore;
  TimePoint notAfter;
  std::vector<std::string> uris;  // URI subjectAltNames
  std::string commonName;
  std::string fingerprint;  // "sha256:" + hex of the DER encoding
  bool isCa = false;
};

// Reads the first certificate of a PEM text.
StatusOr<CertificateInfo> inspectCertificate(std::string_view pem);

struct IssuedLeaf {
  std::string certPem;
  std::string keyPem;  // PKCS#8, unencrypted: it goes only into the task's Secret
  CertificateInfo info;
};

struct CrlEntry {
  std::string serialHex;
  TimePoint revokedAt;
};

class CertificateAuthority {
 public:
  // A new self-signed CA: EC P-256, CA:TRUE with pathlen 0, keyCertSign and cRLSign, the URI
  // SAN spiffe://<trustDomain> (the SPIFFE trust domain it speaks for).
  static StatusOr<CertificateAuthority> generate(std::string_view trustDomain, TimePoint notBefore,
                                                 TimePoint notAfter);
  // From stored PEM; checks that the key belongs to the certificate and that it is a CA.
  static StatusOr<CertificateAuthority> load(std::string_view certPem, std::string_view keyPem);

  const std::string& certPem() const { return certPem_; }
  const std::string& keyPem() const { return keyPem_; }
  const CertificateInfo& info() const { return info_; }

  // An X509-SVID: EC P-256 key, exactly one URI SAN (the SPIFFE ID), CA:FALSE, digitalSignature,
  // serverAuth and clientAuth, a random 127-bit serial.
  StatusOr<IssuedLeaf> issueSvid(std::string_view spiffeId, std::string_view commonName,
                                 TimePoint notBefore, TimePoint notAfter) const;
  // Whether this CA's key signed `leafPem`.
  bool signedByThis(std::string_view leafPem) const;
  // A v2 CRL with a CRL number and the authority key identifier, as PEM.
  StatusOr<std::string> signCrl(const std::vector<CrlEntry>& entries, TimePoint thisUpdate,
                                TimePoint nextUpdate, uint64_t number) const;

 private:
  struct Keys;
  CertificateAuthority(std::shared_ptr<Keys> keys, std::string certPem, std::string keyPem,
                       CertificateInfo info);

  std::shared_ptr<Keys> keys_;
  std::string certPem_;
  std::string keyPem_;
  CertificateInfo info_;
};

}  // namespace tasklease::op
