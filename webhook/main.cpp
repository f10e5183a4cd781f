// tasklease-webhook: the validating admission webhook (DESIGN.md §4, §8). Flags only; the
// work is in the tasklease_webhook library.

#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/evidence.h"
#include "common/flags.h"
#include "common/log.h"
#include "kube/api_client_impl.h"
#include "kube/config.h"
#include "kube/delegation_keys.h"
#include "webhook/agenttask_review.h"
#include "webhook/cert_manager.h"
#include "webhook/informer_state.h"
#include "webhook/manifests.h"
#include "webhook/server.h"

namespace {

using namespace tasklease;           // NOLINT: a main file
using namespace tasklease::webhook;  // NOLINT

int fail(const std::string& message) {
  logError("tasklease-webhook cannot start", {{"error", message}});
  return 1;
}

// The webhook's own namespace: the flag, else $POD_NAMESPACE (the chart sets it).
std::string ownNamespace(const std::string& flag) {
  if (!flag.empty()) return flag;
  const char* env = std::getenv("POD_NAMESPACE");
  return env != nullptr ? env : "";
}

}  // namespace

int main(int argc, char** argv) {
  // Signals are blocked before any thread exists, so only sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::string certFile, keyFile, bindAddress = "0.0.0.0", kubeconfig, kubeContext;
  std::string clusterStateFile, evidenceFile, evidenceHeadFile, logLevel = "info";
  int64_t port = 8443, metricsPort = 8080, threads = 2;
  bool evidenceStdout = true;
  std::chrono::nanoseconds maxTokenExpiration = std::chrono::hours(1);
  std::chrono::nanoseconds certReload = std::chrono::seconds(10);
  std::chrono::nanoseconds shutdownGrace = std::chrono::seconds(15);
  std::chrono::nanoseconds missWait = std::chrono::seconds(1);
  std::vector<std::string> exempt = {"kube-system"};
  bool manageCerts = false;
  std::string ownNs, certDir, certSecret = "tasklease-webhook-tls",
                              serviceName = "tasklease-webhook";
  std::string clusterDomain = "cluster.local";
  std::vector<std::string> validatingConfigs = {"tasklease"}, mutatingConfigs = {"tasklease"};
  CertManagerOptions certDefaults;
  std::chrono::nanoseconds caValidity = certDefaults.caValidity;
  std::chrono::nanoseconds certValidity = certDefaults.certValidity;
  std::chrono::nanoseconds caOverlap = certDefaults.caOverlap;
  std::chrono::nanoseconds certSync = std::chrono::seconds(30);
  std::string signingKeySecret = "tasklease-delegation-signing-key";
  std::string delegationKeysConfigMap = "tasklease-delegation-keys";
  std::chrono::nanoseconds accessDeadline = std::chrono::seconds(3);
  std::vector<std::string> jobControllerUsernames = RuleConfig{}.jobControllerUsernames;
  std::vector<std::string> operatorUsernames;

  FlagSet flags("tasklease-webhook");
  flags.addString("tls-cert-file", &certFile,
                  "PEM certificate chain to serve (re-read when it changes)");
  flags.addString("tls-private-key-file", &keyFile, "PEM private key of the certificate");
  flags.addInt("port", &port, "HTTPS port for /validate, /mutate, /healthz, /readyz");
  flags.addInt("metrics-port", &metricsPort, "plain HTTP port for /metrics");
  flags.addString("bind-address", &bindAddress, "address to listen on");
  flags.addString("kubeconfig", &kubeconfig,
                  "kubeconfig file (default: in-cluster, $KUBECONFIG, ~/.kube/config)");
  flags.addString("context", &kubeContext, "kubeconfig context");
  flags.addString("cluster-state-file", &clusterStateFile,
                  "read Namespaces, ServiceAccounts, AgentTasks and IdentityExceptions from this "
                  "manifest file or directory instead of a cluster (local runs and benchmarks)");
  flags.addString("evidence-file", &evidenceFile, "append evidence records to this file");
  flags.addBool("evidence-stdout", &evidenceStdout, "write evidence records to stdout");
  flags.addString("evidence-head-file", &evidenceHeadFile,
                  "keep the evidence chain head in this file so a restart continues the chain");
  flags.addDuration("max-token-expiration", &maxTokenExpiration,
                    "TL007: longest projected ServiceAccount token lifetime allowed");
  flags.addStrings("exempt-namespace", &exempt, "namespace never evaluated (repeatable)");
  flags.addStrings("job-controller-username", &jobControllerUsernames,
                   "TL008: the user the Job controller creates pods as; pods of a task's workload "
                   "Job are admitted under the task's ServiceAccount only from it (repeatable)");
  flags.addStrings("operator-username", &operatorUsernames,
                   "TL008: the user the tasklease operator acts as; a task's workload Job is "
                   "admitted under the task's ServiceAccount only from it (repeatable; default "
                   "system:serviceaccount:<--namespace>:tasklease-operator)");
  flags.addDuration("cert-reload-interval", &certReload,
                    "how often to check the certificate files");
  flags.addDuration("shutdown-grace", &shutdownGrace, "how long to let reviews in flight finish");
  flags.addDuration("cache-miss-wait", &missWait,
                    "how long a lookup that misses the cache waits for the informer");
  flags.addInt("threads", &threads, "HTTPS server threads");
  flags.addString("namespace", &ownNs, "the webhook's own namespace (default: $POD_NAMESPACE)");
  flags.addBool("manage-certs", &manageCerts,
                "create and rotate the serving certificate and its CA in --cert-secret, keep the "
                "caBundle of the webhook configurations current, serve from --cert-dir (when "
                "cert-manager is not used)");
  flags.addString("cert-dir", &certDir,
                  "with --manage-certs: directory where tls.crt and tls.key are written");
  flags.addString("cert-secret", &certSecret,
                  "with --manage-certs: Secret in --namespace holding the CA and certificate");
  flags.addString("service-name", &serviceName,
                  "with --manage-certs: the webhook's Service in --namespace (the certificate's "
                  "DNS names)");
  flags.addString("cluster-domain", &clusterDomain,
                  "with --manage-certs: the cluster's DNS domain");
  flags.addStrings("validating-webhook-configuration", &validatingConfigs,
                   "with --manage-certs: ValidatingWebhookConfiguration whose caBundle is kept "
                   "current (repeatable)");
  flags.addStrings("mutating-webhook-configuration", &mutatingConfigs,
                   "with --manage-certs: MutatingWebhookConfiguration whose caBundle is kept "
                   "current (repeatable)");
  flags.addDuration("ca-validity", &caValidity, "with --manage-certs: lifetime of a new CA");
  flags.addDuration("cert-validity", &certValidity,
                    "with --manage-certs: lifetime of a serving certificate (renewed at 2/3)");
  flags.addDuration("ca-overlap", &caOverlap,
                    "with --manage-certs: how long a new CA is trusted before it signs");
  flags.addDuration("cert-sync-interval", &certSync,
                    "with --manage-certs: how often the Secret and caBundles are checked");
  flags.addString("signing-key-secret", &signingKeySecret,
                  "Secret in --namespace holding the Ed25519 key that signs the delegation stamp "
                  "of AgentTasks (created on first start)");
  flags.addString("delegation-keys-configmap", &delegationKeysConfigMap,
                  "ConfigMap in --namespace where the stamp's public keys are published for the "
                  "operator");
  flags.addDuration(
      "access-review-deadline", &accessDeadline,
      "bound on the SubjectAccessReviews of one AgentTask; unanswered ones refuse it");
  flags.addString("log-level", &logLevel, "debug, info, warn or error");
  bool help = false;
  flags.addBool("help", &help, "print this help");
  flags.addShort('h', "help");

  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = flags.parse(args);
  if (!parsed.ok()) {
    std::cerr << parsed.status().message() << "\n";
    return 2;
  }
  if (help) {
    std::cout << "Usage: tasklease-webhook --tls-cert-file F --tls-private-key-file F [flags]\n\n"
              << flags.usage();
    return 0;
  }
  LogLevel level = LogLevel::kInfo;
  if (!parseLogLevel(logLevel, &level)) {
    std::cerr << "flag --log-level: \"" << logLevel << "\" is not debug, info, warn or error\n";
    return 2;
  }
  initLogging("tasklease-webhook", level);
  // An empty value ("--operator-username=") leaves the list empty.
  for (auto* names : {&jobControllerUsernames, &operatorUsernames}) {
    names->erase(std::remove(names->begin(), names->end(), ""), names->end());
  }
  if (!flags.wasSet("operator-username") && !ownNamespace(ownNs).empty()) {
    operatorUsernames = {"system:serviceaccount:" + ownNamespace(ownNs) + ":tasklease-operator"};
  }
  CertManagerOptions certOptions;
  if (manageCerts) {
    if (!certFile.empty() || !keyFile.empty()) {
      std::cerr << "tasklease-webhook: --manage-certs serves from --cert-dir; do not also give "
                   "--tls-cert-file or --tls-private-key-file\n";
      return 2;
    }
    ownNs = ownNamespace(ownNs);
    if (ownNs.empty() || certDir.empty()) {
      std::cerr << "tasklease-webhook: --manage-certs needs --namespace (or $POD_NAMESPACE) and "
                   "--cert-dir\n";
      return 2;
    }
    certOptions.secret = {ownNs, certSecret};
    certOptions.service = serviceName;
    certOptions.clusterDomain = clusterDomain;
    // An empty name ("--mutating-webhook-configuration=") leaves that kind out.
    for (auto* names : {&validatingConfigs, &mutatingConfigs}) {
      names->erase(std::remove(names->begin(), names->end(), ""), names->end());
    }
    certOptions.validatingConfigurations = validatingConfigs;
    certOptions.mutatingConfigurations = mutatingConfigs;
    certOptions.certDir = certDir;
    certOptions.caValidity = std::chrono::duration_cast<std::chrono::seconds>(caValidity);
    certOptions.certValidity = std::chrono::duration_cast<std::chrono::seconds>(certValidity);
    certOptions.caOverlap = std::chrono::duration_cast<std::chrono::seconds>(caOverlap);
    if (Status s = checkCertManagerOptions(certOptions); !s.ok()) {
      std::cerr << "tasklease-webhook: --manage-certs: " << s.message()
                << " (--ca-validity, --cert-validity, --ca-overlap)\n";
      return 2;
    }
    certFile = certDir + "/tls.crt";
    keyFile = certDir + "/tls.key";
  }
  if (certFile.empty() || keyFile.empty()) {
    std::cerr << "tasklease-webhook: --tls-cert-file and --tls-private-key-file are required "
                 "(or --manage-certs)\n";
    return 2;
  }
  if (port <= 0 || port > 65535 || metricsPort < 0 || metricsPort > 65535) {
    std::cerr << "tasklease-webhook: --port and --metrics-port must be between 1 and 65535\n";
    return 2;
  }

  // Cluster state: informer caches, or a fixed set of manifests.
  std::unique_ptr<kube::ApiClientImpl> client;
  if (clusterStateFile.empty() || manageCerts) {
    auto config = kube::loadConfig(kubeconfig, kubeContext);
    if (!config.ok()) return fail(config.status().message());
    config->userAgent = "tasklease-webhook";
    auto made = kube::makeApiClient(*config);
    if (!made.ok()) return fail(made.status().message());
    client = std::move(*made);
  }

  // The serving certificate must be on disk before the server starts: the first sync is
  // retried until it succeeds or the process is told to stop.
  std::unique_ptr<CertManager> certs;
  if (manageCerts) {
    certs = std::make_unique<CertManager>(*client, certOptions);
    for (std::chrono::seconds wait(1);; wait = std::min(wait * 2, std::chrono::seconds(30))) {
      auto synced = certs->syncOnce();
      if (synced.ok()) break;
      logError("webhook certificate not ready; retrying",
               {{"error", synced.status().message()}, {"retryInSeconds", wait.count()}});
      const timespec timeout{static_cast<time_t>(wait.count()), 0};
      if (sigtimedwait(&signals, nullptr, &timeout) > 0) return 0;
    }
  }

  // AgentTask admission needs the signing key, kept in the webhook's own namespace; like the
  // certificate, it must be there before the server answers. Without a cluster or a namespace
  // there is no key, and AgentTasks are refused (fail closed).
  std::unique_ptr<SigningKey> signingKey;
  std::unique_ptr<kube::ConfigMapKeyring> stampKeys;
  std::unique_ptr<SarAccessReviewer> accessReviewer;
  std::unique_ptr<AgentTaskReviewer> agentTasks;
  const std::string keyNs = ownNamespace(ownNs);
  if (clusterStateFile.empty() && keyNs.empty()) {
    logWarn(
        "no --namespace (or $POD_NAMESPACE): no delegation signing key, AgentTasks are refused");
  } else if (clusterStateFile.empty()) {
    const kube::ObjectKey secretKey{keyNs, signingKeySecret};
    const kube::ObjectKey configMapKey{keyNs, delegationKeysConfigMap};
    for (std::chrono::seconds wait(1);; wait = std::min(wait * 2, std::chrono::seconds(30))) {
      auto key = kube::ensureSigningKey(*client, secretKey);
      Status published =
          key.ok() ? kube::publishPublicKey(*client, configMapKey, *key) : key.status();
      if (published.ok()) {
        signingKey = std::make_unique<SigningKey>(std::move(*key));
        break;
      }
      logError("delegation signing key not ready; retrying",
               {{"error", published.message()}, {"retryInSeconds", wait.count()}});
      const timespec timeout{static_cast<time_t>(wait.count()), 0};
      if (sigtimedwait(&signals, nullptr, &timeout) > 0) return 0;
    }
    kube::ConfigMapKeyringOptions keyringOptions;
    keyringOptions.pinnedPublicPems = {signingKey->publicPem()};
    stampKeys = std::make_unique<kube::ConfigMapKeyring>(*client, configMapKey, keyringOptions);
    accessReviewer = std::make_unique<SarAccessReviewer>(*client);
    AgentTaskReviewConfig taskConfig;
    taskConfig.accessDeadline =
        std::chrono::duration_cast<std::chrono::milliseconds>(accessDeadline);
    taskConfig.rules.maxTokenExpirationSeconds =
        std::chrono::duration_cast<std::chrono::seconds>(maxTokenExpiration).count();
    agentTasks =
        std::make_unique<AgentTaskReviewer>(*signingKey, *stampKeys, *accessReviewer, taskConfig);
    logInfo("delegation stamps signed", {{"keyId", signingKey->keyId()},
                                         {"secret", keyNs + "/" + signingKeySecret},
                                         {"publicKeys", keyNs + "/" + delegationKeysConfigMap}});
  }

  std::unique_ptr<ClusterState> state;
  InformerClusterState* informers = nullptr;
  if (!clusterStateFile.empty()) {
    auto docs = loadManifests({clusterStateFile}, std::cin);
    if (!docs.ok()) return fail(docs.status().message());
    auto fixed = std::make_unique<ObjectSetClusterState>(LookupState::kAbsent);
    for (const auto& m : *docs) fixed->add(m.object);
    state = std::move(fixed);
  } else {
    InformerClusterStateOptions informerOptions;
    informerOptions.missWait = std::chrono::duration_cast<std::chrono::milliseconds>(missWait);
    auto live = std::make_unique<InformerClusterState>(*client, informerOptions);
    informers = live.get();
    live->start();
    state = std::move(live);
  }

  // Evidence: this process's own chain.
  std::vector<EvidenceSinkPtr> sinks;
  if (evidenceStdout) sinks.push_back(std::make_unique<StreamEvidenceSink>(std::cout));
  if (!evidenceFile.empty()) sinks.push_back(std::make_unique<FileEvidenceSink>(evidenceFile));
  std::unique_ptr<FileChainHeadStore> headStore;
  if (!evidenceHeadFile.empty()) headStore = std::make_unique<FileChainHeadStore>(evidenceHeadFile);
  EvidenceChainPtr chain;
  if (!sinks.empty()) {
    auto opened = EvidenceChain::open(std::move(sinks), headStore.get());
    if (!opened.ok()) return fail(opened.status().message());
    chain = std::move(*opened);
  }

  WebhookServerOptions options;
  options.https.address = bindAddress;
  options.https.port = static_cast<uint16_t>(port);
  options.https.tls = TlsFiles{certFile, keyFile};
  options.https.threads = static_cast<int>(threads);
  options.https.certReloadInterval =
      std::chrono::duration_cast<std::chrono::milliseconds>(certReload);
  options.metricsAddress = bindAddress;
  options.metricsPort = static_cast<uint16_t>(metricsPort);
  options.review.rules.maxTokenExpirationSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(maxTokenExpiration).count();
  options.review.exemptNamespaces = exempt;
  options.review.rules.jobControllerUsernames = jobControllerUsernames;
  options.review.rules.operatorUsernames = operatorUsernames;
  auto server = WebhookServer::start(options, *state, chain.get(), nullptr, agentTasks.get());
  if (!server.ok()) return fail(server.status().message());
  if (certs) {
    certs->exportMetrics((*server)->metrics());
    certs->start(std::chrono::duration_cast<std::chrono::milliseconds>(certSync));
  }
  logInfo("serving", {{"port", (*server)->port()},
                      {"metricsPort", (*server)->metricsPort()},
                      {"clusterState", clusterStateFile.empty() ? "informers" : clusterStateFile},
                      {"evidenceHead", chain ? chain->head().seq : 0}});

  int received = 0;
  sigwait(&signals, &received);
  logInfo("shutting down", {{"signal", received}});
  (*server)->shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(shutdownGrace));
  if (certs) certs->stop();
  if (informers != nullptr) informers->stop();
  logInfo("stopped");
  return 0;
}
