#pragma once
// Test certificates made with OpenSSL at test time: a self-signed CA and server certificates
// it signs (EC P-256, valid for a day), for the TLS server tests. Nothing is checked in.

#include <string>
#include <vector>

namespace tasklease::testing {

struct TestCert {
  std::string certPem;
  std::string keyPem;
};

TestCert makeTestCa(const std::string& commonName);

// A serving certificate for `commonName` with these subjectAltNames ("DNS:localhost",
// "IP:127.0.0.1"), signed by `ca`.
TestCert issueTestServerCert(const TestCert& ca, const std::string& commonName,
                             const std::vector<std::string>& altNames);

// The subject CN of a PEM certificate, or of an X509* (as void*, to keep OpenSSL out of here).
std::string commonNameOf(const void* x509);

void writeFile(const std::string& path, const std::string& content);

// What a TLS client does with a server's certificate: the chain to any certificate of the PEM
// `caBundle`, the host name and the serverAuth purpose, at `unixTime`. Returns OpenSSL's
// X509_V_* verdict (X509_V_OK, X509_V_ERR_HOSTNAME_MISMATCH, ...).
int verifyServerCertificate(const std::string& leafPem, const std::string& caBundle,
                            const std::string& host, long long unixTime);

}  // namespace tasklease::testing
