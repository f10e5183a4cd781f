// tasklease-operator: the AgentTask reconciler (DESIGN.md §5, §8). Flags only; the work is in
// the tasklease_operator library (operator/app.h).

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "common/flags.h"
#include "common/log.h"
#include "operator/app.h"

int main(int argc, char** argv) {
  using namespace tasklease;  // NOLINT: a main file
  // Signals are blocked before any thread exists, so only the waiter below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  op::OperatorOptions o;
  std::string logLevel = "info";
  bool help = false;
  FlagSet flags("tasklease-operator");
  flags.addString("kubeconfig", &o.kubeconfig,
                  "kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  flags.addString("context", &o.context, "kubeconfig context (default: the current one)");
  flags.addString("namespace", &o.ns,
                  "required: the operator's own namespace (CA Secret, CRL, Lease, evidence head)");
  flags.addString("watch-namespace", &o.watchNamespace,
                  "reconcile AgentTasks of this namespace only (default: every namespace)");
  flags.addBool("leader-elect", &o.leaderElect,
                "lead through a coordination.k8s.io Lease, so that one of several replicas works");
  flags.addString("leader-elect-lease", &o.leaseName, "name of the Lease in --namespace");
  flags.addString("leader-elect-identity", &o.identity,
                  "this replica's name in the Lease (default: $POD_NAME, else hostname_random)");
  flags.addString("evidence-file", &o.evidenceFile, "append evidence records to this file");
  flags.addBool("evidence-stdout", &o.evidenceStdout, "write evidence records to stdout");
  flags.addString("evidence-configmap", &o.evidenceConfigMap,
                  "ConfigMap in --namespace that keeps the evidence chain head across restarts");
  flags.addString("bind-address", &o.bindAddress, "address of the metrics and health server");
  flags.addInt("metrics-port", &o.metricsPort,
               "port of /metrics, /healthz and /readyz (0: a free port, logged)");
  flags.addString("trust-domain", &o.trustDomain,
                  "SPIFFE trust domain of X509SVID credentials: spiffe://<domain>/ns/N/task/T");
  flags.addString("ca-secret", &o.caSecret,
                  "Secret in --namespace holding the X509SVID CA (created on first start)");
  flags.addDuration("ca-validity", &o.caValidity, "lifetime of a newly created CA");
  flags.addDuration("ca-rotate-before", &o.caRotateBefore,
                    "rotate the CA when it has less than this left (more than 24h)");
  flags.addString("crl-configmap", &o.crlConfigMap,
                  "ConfigMap in --namespace where the CRL of X509SVID credentials is published");
  flags.addString("delegation-keys-configmap", &o.delegationKeysConfigMap,
                  "ConfigMap where the webhook publishes the public keys that verify the "
                  "delegation stamp of AgentTasks");
  flags.addString("delegation-keys-namespace", &o.delegationKeysNamespace,
                  "namespace of --delegation-keys-configmap (default: --namespace)");
  flags.addDuration("crl-validity", &o.crlValidity,
                    "CRL nextUpdate - thisUpdate; it is re-signed after half of it");
  flags.addInt("workers", &o.workers, "AgentTasks reconciled in parallel (1-64)");
  flags.addDuration("sweep-interval", &o.sweepInterval,
                    "how often leftover credential objects are looked for and revoked");
  flags.addDuration("resync-period", &o.resyncPeriod,
                    "how often every cached AgentTask is reconciled again (0: never)");
  flags.addInt("kube-api-qps", &o.qps, "client-side limit of API requests per second");
  flags.addInt("kube-api-burst", &o.burst, "client-side burst of API requests");
  flags.addDuration("clock-skew", &o.clockSkew,
                    "TEST ONLY: run the operator's clock this far ahead (expiry tests)");
  flags.addString("log-level", &logLevel, "debug, info, warn or error");
  flags.addBool("help", &help, "print this help");
  flags.addShort('h', "help");

  auto parsed = flags.parse(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.ok()) {
    std::cerr << "tasklease-operator: " << parsed.status().message()
              << "\nRun tasklease-operator --help for the flags.\n";
    return 2;
  }
  if (help) {
    std::cout
        << "Usage: tasklease-operator --namespace NS [--kubeconfig F] [--leader-elect]\n"
           "         [--evidence-file F] [--metrics-port N] [flags]\n\n"
           "Reconciles AgentTasks: evaluates AgentPolicies, issues a just-in-time credential\n"
           "per task and revokes it when the task ends. See docs/operator.md.\n\n"
        << flags.usage();
    return 0;
  }
  if (!parsed->empty()) {
    std::cerr << "tasklease-operator: unexpected argument \"" << parsed->front()
              << "\"; every option is a --flag\n";
    return 2;
  }
  LogLevel level = LogLevel::kInfo;
  if (!parseLogLevel(logLevel, &level)) {
    std::cerr << "tasklease-operator: flag --log-level: \"" << logLevel
              << "\" is not debug, info, warn or error\n";
    return 2;
  }
  if (Status s = op::validateOptions(o); !s.ok()) {
    std::cerr << "tasklease-operator: " << s.message() << "\n";
    return 2;
  }
  initLogging("tasklease-operator", level);

  std::stop_source stop;
  std::atomic<bool> ended{false};
  std::jthread waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    if (!ended) logInfo("shutting down", {{"signal", received}});
    stop.request_stop();
  });
  Status result = op::runOperator(o, stop.get_token());
  if (!stop.stop_requested()) {
    // Ended on its own (a start failure, a lost lease): the waiter takes this one and ends.
    ended = true;
    kill(getpid(), SIGTERM);
  }
  if (!result.ok()) {
    logError("tasklease-operator stopped", {{"error", result.toString()}});
    return 1;
  }
  logInfo("stopped");
  return 0;
}
