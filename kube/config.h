#pragma once
// RestConfig: where the API server is and how to authenticate to it, loaded from kubeconfig
// files or from a pod's service-account mount, plus the client's own behaviour (rate limit,
// timeouts, retries). Pass it to makeApiClient() (kube/api_client_impl.h).
//
//   StatusOr<RestConfig> cfg = loadConfig(flagKubeconfig, flagContext);
//   if (!cfg.ok()) { std::cerr << cfg.status().toString(); return 1; }
//
// Key material (caPem, clientKeyPem, bearerToken) lives only in memory; nothing here logs it.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "kube/backoff.h"

namespace tasklease::kube {

// A credential plugin per client.authentication.k8s.io (kubeconfig users[].user.exec).
struct ExecConfig {
  std::string command;  // resolved: a relative path with a '/' is taken from the kubeconfig's dir
  std::vector<std::string> args;
  std::vector<std::pair<std::string, std::string>> env;
  std::string apiVersion;   // client.authentication.k8s.io/v1 or v1beta1
  std::string installHint;  // shown when the command cannot be run
  bool provideClusterInfo = false;
  std::string interactiveMode;  // Never | IfAvailable | Always; this client is never interactive
};

// When and how a failed call is attempted again (see docs/kube-client.md).
struct RetryPolicy {
  int maxAttempts = 8;  // total attempts, the first included; 1 disables retries
  BackoffPolicy backoff{std::chrono::milliseconds(100), 2.0, 0.2, std::chrono::milliseconds(5000)};
};

struct RestConfig {
  std::string server;  // "https://host:port", no trailing slash
  std::string source;  // where it was loaded from, for messages: "kubeconfig F, context C"

  // TLS. With caPem set only that CA is trusted; otherwise the system's trust store.
  std::string caPem;
  std::string clientCertPem;
  std::string clientKeyPem;
  bool insecureSkipTlsVerify = false;
  std::string tlsServerName;  // SNI and the name the serving certificate must carry

  // Authentication, in this order of precedence: exec, bearerTokenFile, bearerToken; a client
  // certificate may accompany any of them.
  std::optional<ExecConfig> exec;
  std::string bearerTokenFile;  // re-read every minute and after a 401
  std::string bearerToken;

  std::string proxyUrl;        // empty: HTTPS_PROXY / NO_PROXY from the environment
  std::string ns = "default";  // the context's namespace, or the pod's own

  // Client behaviour.
  std::string userAgent = "tasklease";
  double qps = 50;  // client-side rate limit; <= 0 disables it
  int burst = 100;
  std::chrono::milliseconds connectTimeout{10000};
  std::chrono::milliseconds requestTimeout{30000};  // per attempt, except watch streams
  RetryPolicy retry;
};

struct KubeconfigOptions {
  // Files to merge, first definition of a name winning. Empty: $KUBECONFIG (a ':'-separated
  // list; missing files are skipped) or else ~/.kube/config.
  std::vector<std::string> paths;
  std::string context;  // empty: the merged current-context
};

// Loads and merges kubeconfig files and resolves one context into a RestConfig. Errors name
// the file, the field (users[0].user.client-key-data) and what to do.
StatusOr<RestConfig> loadKubeconfig(const KubeconfigOptions& options);

// Parses one kubeconfig held in memory; `path` names it in errors and is the base of relative
// file references.
StatusOr<RestConfig> parseKubeconfig(std::string_view yaml, const std::string& path,
                                     const std::string& context = {});

struct InClusterOptions {
  // Where the service-account token, ca.crt and namespace are mounted.
  std::string root = "/var/run/secrets/kubernetes.io/serviceaccount";
  // Environment lookup, replaceable in tests; the default reads the process environment.
  std::function<std::optional<std::string>(const std::string&)> getenv;
};

// The config of a pod: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, the mounted CA,
// the mounted token (as bearerTokenFile, so rotation is picked up) and the pod's namespace.
StatusOr<RestConfig> loadInClusterConfig(const InClusterOptions& options = {});

// The usual order: an explicit kubeconfig path; else $KUBECONFIG; else in-cluster when
// KUBERNETES_SERVICE_HOST is set; else ~/.kube/config.
StatusOr<RestConfig> loadConfig(const std::string& kubeconfigPath, const std::string& context);

}  // namespace tasklease::kube
