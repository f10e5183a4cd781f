// tasklease-webhook: the validating admission webhook (DESIGN.md §4, §8). Flags only; the
// work is in the tasklease_webhook library.

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common/evidence.h"
#include "common/flags.h"
#include "common/log.h"
#include "kube/api_client_impl.h"
#include "kube/config.h"
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

  FlagSet flags("tasklease-webhook");
  flags.addString("tls-cert-file", &certFile,
                  "PEM certificate chain to serve (re-read when it changes)");
  flags.addString("tls-private-key-file", &keyFile, "PEM private key of the certificate");
  flags.addInt("port", &port, "HTTPS port for /validate, /healthz, /readyz");
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
  flags.addDuration("cert-reload-interval", &certReload,
                    "how often to check the certificate files");
  flags.addDuration("shutdown-grace", &shutdownGrace, "how long to let reviews in flight finish");
  flags.addDuration("cache-miss-wait", &missWait,
                    "how long a lookup that misses the cache waits for the informer");
  flags.addInt("threads", &threads, "HTTPS server threads");
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
  if (certFile.empty() || keyFile.empty()) {
    std::cerr << "tasklease-webhook: --tls-cert-file and --tls-private-key-file are required\n";
    return 2;
  }
  if (port <= 0 || port > 65535 || metricsPort < 0 || metricsPort > 65535) {
    std::cerr << "tasklease-webhook: --port and --metrics-port must be between 1 and 65535\n";
    return 2;
  }

  // Cluster state: informer caches, or a fixed set of manifests.
  std::unique_ptr<kube::ApiClientImpl> client;
  std::unique_ptr<ClusterState> state;
  InformerClusterState* informers = nullptr;
  if (!clusterStateFile.empty()) {
    auto docs = loadManifests({clusterStateFile}, std::cin);
    if (!docs.ok()) return fail(docs.status().message());
    auto fixed = std::make_unique<ObjectSetClusterState>(LookupState::kAbsent);
    for (const auto& m : *docs) fixed->add(m.object);
    state = std::move(fixed);
  } else {
    auto config = kube::loadConfig(kubeconfig, kubeContext);
    if (!config.ok()) return fail(config.status().message());
    config->userAgent = "tasklease-webhook";
    auto made = kube::makeApiClient(*config);
    if (!made.ok()) return fail(made.status().message());
    client = std::move(*made);
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
  auto server = WebhookServer::start(options, *state, chain.get());
  if (!server.ok()) return fail(server.status().message());
  logInfo("serving", {{"port", (*server)->port()},
                      {"metricsPort", (*server)->metricsPort()},
                      {"clusterState", clusterStateFile.empty() ? "informers" : clusterStateFile},
                      {"evidenceHead", chain ? chain->head().seq : 0}});

  int received = 0;
  sigwait(&signals, &received);
  logInfo("shutting down", {{"signal", received}});
  (*server)->shutdown(std::chrono::duration_cast<std::chrono::milliseconds>(shutdownGrace));
  if (informers != nullptr) informers->stop();
  logInfo("stopped");
  return 0;
}
