#include "operator/app.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>

#include "common/crypto.h"
#include "common/evidence.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/metrics.h"
#include "kube/api_client_impl.h"
#include "kube/backoff.h"
#include "kube/chain_head_store.h"
#include "kube/clock.h"
#include "kube/config.h"
#include "kube/event_recorder.h"
#include "kube/leader_election.h"
#include "operator/async_events.h"
#include "operator/ca_store.h"
#include "operator/cluster_view.h"
#include "operator/controller.h"
#include "operator/crl.h"
#include "operator/delegation.h"
#include "operator/issuer.h"
#include "operator/metrics.h"
#include "operator/reconciler.h"
#include "operator/revoker.h"
#include "operator/sweeper.h"

namespace tasklease::op {
namespace {

using std::chrono::duration_cast;
using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr char kComponent[] = "tasklease-operator";

bool isDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

bool isDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    if (!isDnsLabel(s.substr(start, dot - start))) return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

bool isTrustDomain(const std::string& s) {
  if (s.empty() || s.size() > 255) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_')) {
      return false;
    }
  }
  return true;
}

std::string defaultIdentity() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "tasklease-operator") + "_" + randomHex(4);
}

// Calls `attempt` until it succeeds or `stop` fires, with backoff, logging each failure.
Status retryUntil(const std::stop_token& stop, const std::string& what,
                  const std::function<Status()>& attempt) {
  kube::Backoff backoff({milliseconds(200), 2.0, 0.2, seconds(10)});
  while (true) {
    Status s = attempt();
    if (s.ok()) return s;
    logWarn(what + " failed; will try again", {{"error", s.toString()}});
    if (!kube::sleepFor(backoff.next(), stop)) return cancelled(what + ": stopped");
  }
}

}  // namespace

Status validateOptions(const OperatorOptions& o) {
  if (o.ns.empty()) {
    return invalidArgument(
        "--namespace is required: the namespace the operator runs in, where "
        "it keeps its CA Secret, CRL, Lease and evidence chain head");
  }
  if (!isDnsLabel(o.ns)) {
    return invalidArgument("--namespace \"" + o.ns + "\": must be a namespace name (a DNS label)");
  }
  if (!o.watchNamespace.empty() && !isDnsLabel(o.watchNamespace)) {
    return invalidArgument("--watch-namespace \"" + o.watchNamespace +
                           "\": must be a namespace name, or omitted for every namespace");
  }
  for (const auto& [flag, value] :
       {std::pair{"--leader-elect-lease", &o.leaseName}, std::pair{"--ca-secret", &o.caSecret},
        std::pair{"--crl-configmap", &o.crlConfigMap},
        std::pair{"--evidence-configmap", &o.evidenceConfigMap},
        std::pair{"--delegation-keys-configmap", &o.delegationKeysConfigMap}}) {
    if (!isDnsSubdomain(*value)) {
      return invalidArgument(std::string(flag) + " \"" + *value +
                             "\": must be an object name (lower-case letters, digits, '-', '.')");
    }
  }
  if (!o.delegationKeysNamespace.empty() && !isDnsLabel(o.delegationKeysNamespace)) {
    return invalidArgument("--delegation-keys-namespace \"" + o.delegationKeysNamespace +
                           "\": must be a namespace name, or omitted for --namespace");
  }
  if (o.metricsPort < 0 || o.metricsPort > 65535) {
    return invalidArgument("--metrics-port " + std::to_string(o.metricsPort) +
                           ": must be between 0 and 65535 (0 picks a free port)");
  }
  if (o.workers < 1 || o.workers > 64) {
    return invalidArgument("--workers " + std::to_string(o.workers) + ": must be between 1 and 64");
  }
  if (o.sweepInterval < seconds(1)) {
    return invalidArgument("--sweep-interval: must be at least 1s");
  }
  if (o.resyncPeriod < std::chrono::nanoseconds(0)) {
    return invalidArgument("--resync-period: must not be negative (0 turns resync off)");
  }
  if (!isTrustDomain(o.trustDomain)) {
    return invalidArgument("--trust-domain \"" + o.trustDomain +
                           "\": a SPIFFE trust domain is lower-case letters, digits, '.', '-' "
                           "and '_', e.g. example.org");
  }
  if (o.caRotateBefore <= hours(24)) {
    return invalidArgument(
        "--ca-rotate-before: must be longer than 24h, the longest task TTL, so "
        "that every certificate expires before the CA that signed it");
  }
  if (o.caValidity <= o.caRotateBefore) {
    return invalidArgument(
        "--ca-validity: must be longer than --ca-rotate-before, or every start "
        "would rotate the CA");
  }
  if (o.crlValidity < std::chrono::minutes(1)) {
    return invalidArgument("--crl-validity: must be at least 1m");
  }
  if (o.qps <= 0 || o.burst < 1) {
    return invalidArgument("--kube-api-qps must be positive and --kube-api-burst at least 1");
  }
  if (o.clockSkew > hours(24) || o.clockSkew < -hours(24)) {
    return invalidArgument("--clock-skew: must be within 24h either way (it is for tests only)");
  }
  return {};
}

Status runOperator(const OperatorOptions& o, const std::stop_token& stop) {
  if (Status s = validateOptions(o); !s.ok()) return s;
  auto config = kube::loadConfig(o.kubeconfig, o.context);
  if (!config.ok()) return config.status().annotate("loading the cluster configuration");
  config->userAgent = kComponent;
  config->qps = static_cast<double>(o.qps);
  config->burst = static_cast<int>(o.burst);
  auto made = kube::makeApiClient(*config);
  if (!made.ok()) return made.status();
  kube::ApiClient& api = **made;

  const auto skew = duration_cast<std::chrono::system_clock::duration>(o.clockSkew);
  const std::function<TimePoint()> now = [skew] { return std::chrono::system_clock::now() + skew; };
  if (o.clockSkew.count() != 0) {
    logWarn("the operator's clock is skewed (--clock-skew, for tests only)",
            {{"skewSeconds", duration_cast<seconds>(o.clockSkew).count()}});
  }
  const std::string identity = o.identity.empty() ? defaultIdentity() : o.identity;

  MetricsRegistry registry;
  OperatorMetrics metrics(registry);
  std::mutex controllerMu;
  Controller* running = nullptr;  // guarded by controllerMu
  std::atomic<bool> standby{false};

  HttpRoutes routes;
  routes.add("GET", "/metrics", [&](const HttpRequest&) {
    {
      std::lock_guard lock(controllerMu);
      if (running != nullptr) running->updateGauges();
    }
    return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", registry.render(), {}};
  });
  routes.add("GET", "/healthz", [](const HttpRequest&) {
    return HttpResponse{200, "text/plain", "ok\n", {}};
  });
  routes.add("GET", "/readyz", [&](const HttpRequest&) {
    std::lock_guard lock(controllerMu);
    const bool ready = standby.load() || (running != nullptr && running->synced());
    return ready ? HttpResponse{200, "text/plain", "ok\n", {}}
                 : HttpResponse{503, "text/plain", "caches not synced\n", {}};
  });
  HttpServerOptions serverOptions;
  serverOptions.address = o.bindAddress;
  serverOptions.port = static_cast<uint16_t>(o.metricsPort);
  serverOptions.threads = 1;
  auto server = HttpServer::start(serverOptions, std::move(routes));
  if (!server.ok()) return server.status().annotate("serving --metrics-port");
  logInfo("serving /metrics, /healthz and /readyz",
          {{"port", (*server)->port()}, {"identity", identity}, {"server", config->server}});

  // Everything below is built when this process starts leading, from the cluster's state.
  const auto lead = [&](const std::stop_token& leading) -> Status {
    standby = false;
    CaStore cas(api,
                {{o.ns, o.caSecret},
                 o.trustDomain,
                 duration_cast<seconds>(o.caValidity),
                 duration_cast<seconds>(o.caRotateBefore)},
                now);
    Status s = retryUntil(leading, "loading the CA Secret", [&] { return cas.ensure().status(); });
    if (!s.ok()) return {};
    CrlPublisher crl(api, cas, {{o.ns, o.crlConfigMap}, duration_cast<seconds>(o.crlValidity)},
                     now);
    s = retryUntil(leading, "publishing the CRL", [&] { return crl.refresh(); });
    if (!s.ok()) return {};

    kube::ConfigMapChainHeadStore head(api, {o.ns, o.evidenceConfigMap});
    EvidenceChainPtr chain;
    if (o.evidenceStdout || !o.evidenceFile.empty()) {
      s = retryUntil(leading, "opening the evidence chain", [&]() -> Status {
        std::vector<EvidenceSinkPtr> sinks;
        if (o.evidenceStdout) sinks.push_back(std::make_unique<StreamEvidenceSink>(std::cout));
        if (!o.evidenceFile.empty()) {
          sinks.push_back(std::make_unique<FileEvidenceSink>(o.evidenceFile));
        }
        auto opened = EvidenceChain::open(std::move(sinks), &head);
        if (!opened.ok()) return opened.status();
        chain = std::move(*opened);
        return {};
      });
      if (!s.ok()) return {};
      logInfo("evidence chain open", {{"seq", chain->head().seq}, {"file", o.evidenceFile}});
    } else {
      logWarn("no evidence is written: --evidence-stdout=false and no --evidence-file");
    }

    kube::EventRecorderImpl directEvents(api, kComponent, identity);
    AsyncEventRecorder recorder(directEvents);
    InformerClusterView view(api, {o.watchNamespace, duration_cast<milliseconds>(o.resyncPeriod)});
    ServiceAccountTokenIssuer tokens(api, config->caPem);
    X509SvidIssuer svids(api, cas, crl, o.trustDomain);
    const IssuerSet issuers{{CredentialType::kServiceAccountToken, &tokens},
                            {CredentialType::kX509Svid, &svids}};
    Revoker revoker(api, issuers);
    RevocationBatcher batcher(revoker, now);
    Sweeper sweeper(api, view, revoker, o.watchNamespace, now);
    kube::ConfigMapKeyring stampKeys(
        api, {o.delegationKeysNamespace.empty() ? o.ns : o.delegationKeysNamespace,
              o.delegationKeysConfigMap});
    VerifyingDelegationSource delegation(stampKeys);
    Reconciler reconciler({.client = api,
                           .view = view,
                           .issuers = issuers,
                           .revoker = revoker,
                           .batcher = &batcher,
                           .sweeper = sweeper,
                           .delegation = delegation,
                           .events = recorder,
                           .evidence = chain.get(),
                           .metrics = &metrics,
                           .now = now});
    ControllerOptions controllerOptions;
    controllerOptions.workers = static_cast<int>(o.workers);
    controllerOptions.sweepInterval = duration_cast<milliseconds>(o.sweepInterval);
    controllerOptions.now = now;
    controllerOptions.upkeep = [&]() -> Status {
      auto ensured = cas.ensure();
      if (!ensured.ok()) return ensured.status();
      return crl.refresh();
    };
    Controller controller(view, reconciler, sweeper, &metrics, controllerOptions);
    {
      std::lock_guard lock(controllerMu);
      running = &controller;
    }
    s = controller.run(leading);
    {
      std::lock_guard lock(controllerMu);
      running = nullptr;
    }
    return s.code() == StatusCode::kCancelled ? Status() : s;
  };

  Status result;
  if (o.leaderElect) {
    kube::LeaderElectionConfig election;
    election.lease = {o.ns, o.leaseName};
    election.identity = identity;
    election.onStartedLeading = [&](const std::stop_token& leading) {
      logInfo("leading", {{"lease", o.ns + "/" + o.leaseName}});
      metrics.leader.labels({}).set(1);
      result = lead(leading);
      metrics.leader.labels({}).set(0);
    };
    election.onStoppedLeading = [] { logInfo("stopped leading"); };
    auto elector = kube::LeaderElector::create(api, election);
    if (!elector.ok()) return elector.status();
    standby = true;
    (*elector)->run(stop);
    if (result.ok() && !stop.stop_requested()) {
      result = unavailable("lost the lead of Lease " + o.ns + "/" + o.leaseName +
                           "; exiting so that a restart competes again");
    }
  } else {
    metrics.leader.labels({}).set(1);
    result = lead(stop);
  }
  (*server)->shutdown(seconds(2));
  return result;
}

}  // namespace tasklease::op
