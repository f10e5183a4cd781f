#pragma once
// The tasklease-operator process: options (one per flag, docs/operator.md), their checks, and
// runOperator(), which connects to the cluster, serves /metrics, /healthz and /readyz, takes
// the lead (with --leader-elect) and reconciles AgentTasks until stopped. main.cpp only parses
// flags into OperatorOptions.
//
//   OperatorOptions o;
//   o.ns = "tasklease-system";
//   if (Status s = validateOptions(o); !s.ok()) ...
//   Status s = runOperator(o, stopSource.get_token());

#include <chrono>
#include <stop_token>
#include <string>

#include "common/status.h"

namespace tasklease::op {

struct OperatorOptions {
  std::string kubeconfig;
  std::string context;
  std::string ns;              // the operator's own namespace: CA, CRL, Lease, evidence head
  std::string watchNamespace;  // "" : AgentTasks of every namespace
  bool leaderElect = false;
  std::string leaseName = "tasklease-operator";
  std::string identity;  // "" : $POD_NAME, else hostname_<random>
  std::string evidenceFile;
  bool evidenceStdout = true;
  std::string evidenceConfigMap = "tasklease-operator-evidence";
  std::string bindAddress = "0.0.0.0";
  int64_t metricsPort = 8080;
  std::string trustDomain = "cluster.local";
  std::string caSecret = "tasklease-ca";
  std::chrono::nanoseconds caValidity = std::chrono::hours(24 * 365);
  std::chrono::nanoseconds caRotateBefore = std::chrono::hours(24 * 30);
  std::string crlConfigMap = "tasklease-crl";
  // Where the webhook publishes the public keys of the delegation stamp (docs/delegation.md).
  std::string delegationKeysConfigMap = "tasklease-delegation-keys";
  std::string delegationKeysNamespace;  // "" : --namespace (the chart installs both there)
  std::chrono::nanoseconds crlValidity = std::chrono::hours(24);
  int64_t workers = 4;
  std::chrono::nanoseconds sweepInterval = std::chrono::seconds(60);
  std::chrono::nanoseconds resyncPeriod = std::chrono::minutes(10);
  int64_t qps = 100;
  int64_t burst = 200;
  // Test only: the operator's clock runs this far ahead of the system's (expiry tests).
  std::chrono::nanoseconds clockSkew{0};
};

// Checks every option; errors name the flag and say what it accepts.
Status validateOptions(const OperatorOptions& options);

// Runs until `stop` (OK) or until leadership is lost or the start fails (an error).
Status runOperator(const OperatorOptions& options, const std::stop_token& stop);

}  // namespace tasklease::op
