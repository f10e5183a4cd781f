#include "operator/controller.h"

#include <map>
#include <set>
#include <thread>
#include <vector>

#include "common/log.h"
#include "kube/clock.h"

namespace tasklease::op {
namespace {

std::string keyOf(const Json& object) {
  return kube::objectKeyOf(object).toString();
}

// A Job's task: its namespace and the task label.
std::string taskKeyOfJob(const Json& job) {
  const std::string task = stringAt(job, {"metadata", "labels", kTaskLabel});
  return task.empty() ? std::string() : stringAt(job, {"metadata", "namespace"}) + "/" + task;
}

std::unique_ptr<kube::WorkQueueRateLimiter> retryLimiter(const ControllerOptions& options) {
  std::vector<std::unique_ptr<kube::WorkQueueRateLimiter>> limiters;
  limiters.push_back(std::make_unique<kube::ItemExponentialRateLimiter>(options.retryBaseDelay,
                                                                        options.retryMaxDelay));
  limiters.push_back(std::make_unique<kube::BucketRateLimiter>(
      options.retryQps, options.retryBurst,
      options.retryClock != nullptr ? *options.retryClock : kube::steadyClock()));
  return std::make_unique<kube::MaxOfRateLimiter>(std::move(limiters));
}

}  // namespace

RequeuePolicy::RequeuePolicy(const ControllerOptions& options)
    : now_(options.now), retries_(retryLimiter(options)) {}

std::optional<std::chrono::nanoseconds> RequeuePolicy::after(
    const std::string& key, const StatusOr<ReconcileResult>& result, const Json* task) {
  if (result.ok()) {
    if (result->waiting) return std::nullopt;
    retries_->forget(key);
    if (!result->requeueAfter) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(*result->requeueAfter);
  }
  std::chrono::nanoseconds delay = retries_->when(key);
  if (task == nullptr || !deadlineMatters(parsePhase(stringAt(*task, {"status", "phase"})))) {
    return delay;
  }
  // A task whose every pass fails is still looked at on its deadline, however long its backoff
  // has grown: the earlier of the two.
  auto deadline = parseRfc3339(stringAt(*task, {"status", "expiresAt"}));
  if (!deadline.ok()) return delay;
  return std::min(
      delay, std::max(std::chrono::nanoseconds(0),
                      std::chrono::duration_cast<std::chrono::nanoseconds>(*deadline - now_())));
}

Controller::Controller(InformerClusterView& view, Reconciler& reconciler, Sweeper& sweeper,
                       OperatorMetrics* metrics, ControllerOptions options)
    : view_(view),
      reconciler_(reconciler),
      sweeper_(sweeper),
      metrics_(metrics),
      options_(std::move(options)),
      requeue_(options_) {}

void Controller::addHandlers() {
  kube::ResourceEventHandler tasks;
  tasks.onAdd = [this](const Json& o) {
    reconciler_.observe(o);
    queue_.add(keyOf(o));
  };
  tasks.onUpdate = [this](const Json&, const Json& o) {
    reconciler_.observe(o);
    queue_.add(keyOf(o));
  };
  tasks.onDelete = [this](const Json& o) { queue_.add(keyOf(o)); };
  view_.taskInformer().addEventHandler(std::move(tasks));

  kube::ResourceEventHandler jobs;
  jobs.onAdd = [this](const Json& o) { addJobsTask(o); };
  jobs.onUpdate = [this](const Json&, const Json& o) { addJobsTask(o); };
  jobs.onDelete = [this](const Json& o) { addJobsTask(o); };
  view_.jobInformer().addEventHandler(std::move(jobs));

  // A policy written after a task was created may decide it: re-queue the undecided ones.
  kube::ResourceEventHandler policies;
  policies.onAdd = [this](const Json&) { addUndecidedTasks(); };
  policies.onUpdate = [this](const Json&, const Json&) { addUndecidedTasks(); };
  view_.policyInformer().addEventHandler(std::move(policies));

  // A task whose revocation was batched comes back once the batch has run.
  reconciler_.onRevocationDone([this](const std::string& key) { queue_.add(key); });
}

void Controller::addJobsTask(const Json& job) {
  const std::string key = taskKeyOfJob(job);
  if (!key.empty()) queue_.add(key);
}

void Controller::addUndecidedTasks() {
  for (const auto& task : view_.tasks()) {
    if (stringAt(*task, {"status", "policy", "decision"}).empty()) queue_.add(keyOf(*task));
  }
}

Status Controller::run(const std::stop_token& stop) {
  addHandlers();
  view_.start();
  if (!view_.waitForSync(options_.syncTimeout, stop)) {
    view_.stop();
    if (stop.stop_requested()) return cancelled("stopped before the caches synced");
    return unavailable("the AgentTask, AgentPolicy and Job caches did not sync within " +
                       std::to_string(options_.syncTimeout.count() / 1000) +
                       " s: are the CRDs installed and may the operator list and watch them?");
  }
  synced_ = true;
  logInfo("caches synced; reconciling", {{"tasks", view_.tasks().size()},
                                         {"policies", view_.policies().size()},
                                         {"workers", options_.workers}});
  std::vector<std::jthread> threads;
  threads.reserve(static_cast<size_t>(options_.workers) + 1);
  for (int i = 0; i < options_.workers; ++i) {
    threads.emplace_back([this, stop] { work(stop); });
  }
  threads.emplace_back([this, stop] { sweepLoop(stop); });
  {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
  }
  queue_.shutDown();
  threads.clear();  // joins: workers finish the key in hand, the sweep its pass
  reconciler_.onRevocationDone(nullptr);
  view_.stop();
  synced_ = false;
  return {};
}

void Controller::work(const std::stop_token& stop) {
  while (auto key = queue_.get()) {
    if (stop.stop_requested()) {
      queue_.done(*key);
      continue;
    }
    const auto started = std::chrono::steady_clock::now();
    auto result = reconciler_.reconcile(*key);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (metrics_ != nullptr) metrics_->reconcileTime.labels({}).observe(seconds);
    const kube::ObjectPtr task = view_.task(kube::ObjectKey::parse(*key));
    if (auto after = requeue_.after(*key, result, task.get())) queue_.addAfter(*key, *after);
    if (!result.ok()) {
      if (metrics_ != nullptr) {
        metrics_->reconciles.labels({"error"}).inc();
        metrics_->reconcileErrors.labels({}).inc();
        metrics_->retries.labels({}).inc();
      }
      const Status& s = result.status();
      // Conflicts are the normal cost of a cache a step behind; they are retried at once.
      const auto level = s.isConflict() ? LogLevel::kDebug : LogLevel::kWarn;
      logAt(level, "reconcile failed; will retry",
            {{"task", *key}, {"error", s.toString()}, {"retries", requeue_.failures(*key)}});
    } else if (metrics_ != nullptr) {
      metrics_->reconciles.labels({result->requeueAfter ? "requeue" : "success"}).inc();
    }
    queue_.done(*key);
  }
}

void Controller::sweepOnce() {
  if (options_.upkeep) {
    Status s = options_.upkeep();
    if (!s.ok()) {
      if (metrics_ != nullptr) metrics_->sweepErrors.labels({}).inc();
      logWarn("upkeep failed; will try again", {{"error", s.toString()}});
    }
  }
  auto report = sweeper_.sweepAll();
  if (!report.ok()) {
    if (metrics_ != nullptr) metrics_->sweepErrors.labels({}).inc();
    logWarn("orphan sweep failed; will try again", {{"error", report.status().toString()}});
    return;
  }
  if (metrics_ != nullptr) {
    metrics_->sweptObjects.labels({}).inc(static_cast<double>(report->deleted.size()));
    if (!report->errors.empty()) {
      metrics_->sweepErrors.labels({}).inc(static_cast<double>(report->errors.size()));
    }
  }
  for (const auto& e : report->errors) logWarn("orphan sweep: a task group failed", {{"error", e}});
}

void Controller::sweepLoop(const std::stop_token& stop) {
  sweepOnce();  // what a crash left behind goes first
  while (kube::sleepFor(options_.sweepInterval, stop)) sweepOnce();
}

void Controller::updateGauges() {
  if (metrics_ == nullptr) return;
  std::map<std::string, int> byPhase;
  for (Phase p : {Phase::kPending, Phase::kDenied, Phase::kActive, Phase::kRevoking,
                  Phase::kSucceeded, Phase::kFailed, Phase::kExpired}) {
    byPhase[phaseName(p)] = 0;
  }
  // Every kind a revocation deletes has a series, 0 when nothing holds one (alerts need it).
  std::map<std::string, int> heldByKind = {
      {"RoleBinding", 0}, {"Secret", 0}, {"ServiceAccount", 0}, {"Role", 0}};
  for (const auto& task : view_.tasks()) {
    const std::string phase = stringAt(*task, {"status", "phase"});
    ++byPhase[phase.empty() ? std::string("Pending") : phase];
    if (parsePhase(phase) != Phase::kRevoking) continue;
    std::set<std::string> kinds;  // a task counts once per kind
    for (const Json& held :
         objectAt(*task, {"status", "revocation"}).value("held", Json::array())) {
      if (held.is_object()) kinds.insert(held.value("kind", std::string()));
    }
    for (const std::string& kind : kinds) ++heldByKind[kind];
  }
  for (const auto& [phase, n] : byPhase) metrics_->tasks.labels({phase}).set(n);
  for (const auto& [kind, n] : heldByKind) metrics_->revocationsHeld.labels({kind}).set(n);
  metrics_->queueDepth.labels({}).set(static_cast<double>(queue_.len()));
  metrics_->queueDelayed.labels({}).set(static_cast<double>(queue_.delayedLen()));
}

}  // namespace tasklease::op
