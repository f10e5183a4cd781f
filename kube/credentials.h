#pragma once
// CredentialProvider: what the client presents on each request: a bearer token and, from an
// exec plugin, a client certificate. Static tokens never change; a token file is re-read every
// minute and after a 401; an exec plugin's result is cached until its expirationTimestamp and
// re-fetched after a 401. makeApiClient() builds the right one from a RestConfig.

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kube/clock.h"
#include "kube/config.h"

namespace tasklease::kube {

struct Credentials {
  std::string bearerToken;    // empty: no Authorization header
  std::string clientCertPem;  // from an exec plugin; empty: the RestConfig's certificate
  std::string clientKeyPem;
};

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  // The credentials to send now. May read a file or run a plugin; thread-safe.
  virtual StatusOr<Credentials> current() = 0;
  // The server answered 401 to `rejected`: drop what is cached. True when fresh credentials
  // may differ, so one more attempt is worthwhile.
  virtual bool refreshAfterUnauthorized(const Credentials& rejected) = 0;
};

using CredentialProviderPtr = std::unique_ptr<CredentialProvider>;

// The provider for a config: exec plugin, token file, static token, or none, in that order.
CredentialProviderPtr makeCredentialProvider(const RestConfig& config,
                                             Clock& clock = steadyClock());

// Runs an exec credential plugin once and parses its ExecCredential. `clusterInfo` is the
// spec.cluster object sent when provideClusterInfo is set. The error never contains the
// plugin's output, which may hold secrets.
struct ExecCredentialResult {
  Credentials credentials;
  std::optional<std::chrono::system_clock::time_point> expiration;
};
StatusOr<ExecCredentialResult> runExecPlugin(const ExecConfig& exec, const Json& clusterInfo,
                                             std::chrono::milliseconds timeout);

}  // namespace tasklease::kube
