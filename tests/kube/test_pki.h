#pragma once
// Test certificates made with OpenSSL: a self-signed CA and certificates it signs, for TLS and
// client-certificate tests. EC P-256, valid for a day.

#include <string>
#include <vector>

namespace tasklease::kube::testing {

struct KeyPair {
  std::string certPem;
  std::string keyPem;
};

KeyPair makeCa(const std::string& commonName);
// A client certificate (CN=user, O=groups) signed by `ca`.
KeyPair issueClientCert(const KeyPair& ca, const std::string& user,
                        const std::vector<std::string>& groups);

}  // namespace tasklease::kube::testing
