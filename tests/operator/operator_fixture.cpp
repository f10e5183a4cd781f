#include "tests/operator/operator_fixture.h"

#include <algorithm>

#include "common/base64.h"
#include "common/log.h"
#include "common/rfc3339.h"
#include "operator/naming.h"

namespace tasklease::op::testing {
namespace {

std::string base64Url(std::string_view data) {
  std::string out = base64Encode(data);
  std::replace(out.begin(), out.end(), '+', '-');
  std::replace(out.begin(), out.end(), '/', '_');
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

kube::ObjectPtr shared(std::optional<Json> object) {
  return object ? std::make_shared<const Json>(std::move(*object)) : nullptr;
}

}  // namespace

// ---- TestApi ----

void TestApi::crashAt(int n, bool performed) {
  writes_ = 0;
  crashed_ = false;
  performCrashing_ = performed;
  crashAt_ = n;
}

void TestApi::recover() {
  crashAt_ = 0;
  crashed_ = false;
}

std::optional<Status> TestApi::failIfDead() {
  if (crashed_) return unavailable("TestApi: the process crashed");
  return std::nullopt;
}

template <typename T>
StatusOr<T> TestApi::write(const std::function<StatusOr<T>()>& perform) {
  if (auto dead = failIfDead()) return *dead;
  const int n = ++writes_;
  if (crashAt_ != 0 && n >= crashAt_) {
    crashed_ = true;
    if (performCrashing_) perform();
    return unavailable("TestApi: crashed at write " + std::to_string(n));
  }
  return perform();
}

StatusOr<Json> TestApi::get(const kube::ResourceRef& r, const kube::ObjectKey& k,
                            const kube::CallOptions& c) {
  if (auto dead = failIfDead()) return *dead;
  return fake_.get(r, k, c);
}

StatusOr<Json> TestApi::list(const kube::ResourceRef& r, const std::string& ns,
                             const kube::ListOptions& o, const kube::CallOptions& c) {
  if (auto dead = failIfDead()) return *dead;
  return fake_.list(r, ns, o, c);
}

StatusOr<Json> TestApi::create(const kube::ResourceRef& r, const Json& obj,
                               const kube::WriteOptions& o, const kube::CallOptions& c) {
  return write<Json>([&] { return fake_.create(r, obj, o, c); });
}

StatusOr<Json> TestApi::update(const kube::ResourceRef& r, const Json& obj,
                               const kube::WriteOptions& o, const kube::CallOptions& c) {
  return write<Json>([&] { return fake_.update(r, obj, o, c); });
}

StatusOr<Json> TestApi::updateStatus(const kube::ResourceRef& r, const Json& obj,
                                     const kube::WriteOptions& o, const kube::CallOptions& c) {
  return write<Json>([&] { return fake_.updateStatus(r, obj, o, c); });
}

StatusOr<Json> TestApi::patch(const kube::ResourceRef& r, const kube::ObjectKey& k, const Json& p,
                              const kube::PatchOptions& o, const kube::CallOptions& c) {
  return write<Json>([&] { return fake_.patch(r, k, p, o, c); });
}

Status TestApi::remove(const kube::ResourceRef& r, const kube::ObjectKey& k,
                       const kube::DeleteOptions& o, const kube::CallOptions& c) {
  auto result = write<Json>([&]() -> StatusOr<Json> {
    Status s = fake_.remove(r, k, o, c);
    if (!s.ok()) return s;
    return Json::object();
  });
  return result.ok() ? Status() : result.status();
}

StatusOr<Json> TestApi::removeCollection(const kube::ResourceRef& r, const std::string& ns,
                                         const kube::ListOptions& selection,
                                         const kube::DeleteOptions& o, const kube::CallOptions& c) {
  return write<Json>([&] { return fake_.removeCollection(r, ns, selection, o, c); });
}

StatusOr<Json> TestApi::createSubresource(const kube::ResourceRef& r, const kube::ObjectKey& k,
                                          const std::string& sub, const Json& body,
                                          const kube::CallOptions& c) {
  if (!(r.resource == "serviceaccounts" && sub == "token")) {
    return write<Json>([&] { return fake_.createSubresource(r, k, sub, body, c); });
  }
  return write<Json>([&]() -> StatusOr<Json> {
    auto sa = fake_.object(r, k);
    if (!sa) return Status(StatusCode::kNotFound, "serviceaccounts \"" + k.name + "\" not found");
    const Json spec = body.value("spec", Json::object());
    const int64_t seconds = spec.value("expirationSeconds", int64_t{3600});
    if (seconds < 600) return invalidArgument("spec.expirationSeconds: less than 10 minutes");
    Json claims = {
        {"sub", "system:serviceaccount:" + k.ns + ":" + k.name},
        {"kubernetes.io",
         {{"namespace", k.ns}, {"serviceaccount", {{"name", k.name}, {"uid", kube::uidOf(*sa)}}}}}};
    const Json bound = spec.value("boundObjectRef", Json::object());
    if (!bound.empty()) {
      const std::string name = bound.value("name", std::string());
      auto secret = fake_.object(kube::resources::kSecrets, {k.ns, name});
      if (!secret) return Status(StatusCode::kNotFound, "secrets \"" + name + "\" not found");
      if (bound.value("uid", std::string()) != kube::uidOf(*secret)) {
        return Status(StatusCode::kConflict, "the bound object's uid does not match");
      }
      claims["kubernetes.io"]["secret"] = {{"name", name}, {"uid", kube::uidOf(*secret)}};
    }
    const int64_t now =
        std::chrono::duration_cast<std::chrono::seconds>(clock_().time_since_epoch()).count();
    claims["iat"] = now;
    claims["exp"] = now + seconds;
    std::lock_guard lock(mu_);
    claims["jti"] = "jti-" + std::to_string(++jti_);
    const std::string token =
        base64Url(R"({"alg":"RS256"})") + "." + base64Url(claims.dump()) + ".c2lnbmF0dXJl";
    tokens_.push_back(token);
    tokenRequests_.push_back(body);
    return Json{
        {"apiVersion", "authentication.k8s.io/v1"},
        {"kind", "TokenRequest"},
        {"spec", spec},
        {"status",
         {{"token", token},
          {"expirationTimestamp", formatRfc3339(TimePoint(std::chrono::seconds(now + seconds)))}}}};
  });
}

Status TestApi::watch(const kube::ResourceRef& r, const std::string& ns,
                      const kube::WatchOptions& o, const kube::WatchHandler& h,
                      const kube::CallOptions& c) {
  return fake_.watch(r, ns, o, h, c);
}

std::vector<std::string> TestApi::tokens() const {
  std::lock_guard lock(mu_);
  return tokens_;
}

std::vector<Json> TestApi::tokenRequests() const {
  std::lock_guard lock(mu_);
  return tokenRequests_;
}

// ---- FakeClusterView ----

kube::ObjectPtr FakeClusterView::task(const kube::ObjectKey& key) const {
  return shared(fake_.object(kAgentTasks, key));
}

std::vector<kube::ObjectPtr> FakeClusterView::tasks() const {
  std::vector<kube::ObjectPtr> out;
  for (auto& t : fake_.objects(kAgentTasks)) out.push_back(shared(std::move(t)));
  return out;
}

std::vector<Json> FakeClusterView::policies() const {
  if (lagging) return *lagging;
  return fake_.objects(kAgentPolicies);
}

kube::ObjectPtr FakeClusterView::job(const kube::ObjectKey& key) const {
  return shared(fake_.object(kube::resources::kJobs, key));
}

Status MemoryEvidenceSink::write(std::string_view line) {
  records_->push_back(Json::parse(line));
  return {};
}

// ---- OperatorHarness ----

OperatorHarness::OperatorHarness()
    : cas(api,
          CaOptions{{"tasklease-system", "tasklease-ca"},
                    "example.org",
                    std::chrono::hours(24 * 365),
                    std::chrono::hours(24 * 30)},
          [this] { return now_; }),
      crl(api, cas, CrlOptions{{"tasklease-system", "tasklease-crl"}, std::chrono::hours(24)},
          [this] { return now_; }),
      tokens(api, "-----BEGIN CERTIFICATE-----\ncluster-ca\n-----END CERTIFICATE-----\n"),
      svids(api, cas, crl, "example.org"),
      issuers{{CredentialType::kServiceAccountToken, &tokens}, {CredentialType::kX509Svid, &svids}},
      revoker(api, issuers),
      sweeper(api, view, revoker, "", [this] { return now_; }),
      // Events are named after their time: the real clock keeps the names apart.
      events(api, "tasklease-operator", "test"),
      now_(std::chrono::system_clock::now()) {
  initLogging("operator_test", LogLevel::kWarn);
  api.setClock([this] { return now_; });
  // Creation timestamps on the same clock: a task's ttl is counted from its creation.
  fake.setClock([this] { return now_; });
  std::vector<EvidenceSinkPtr> sinks;
  sinks.push_back(std::make_unique<MemoryEvidenceSink>(evidence));
  chain = std::move(*EvidenceChain::open(std::move(sinks), nullptr, [this] { return now_; }));
  auto loaded = cas.ensure();
  if (!loaded.ok()) throw std::runtime_error(loaded.status().toString());
  restart();
}

void OperatorHarness::restart() {
  reconciler = std::make_unique<Reconciler>(ReconcilerDeps{.client = api,
                                                           .view = view,
                                                           .issuers = issuers,
                                                           .revoker = revoker,
                                                           .sweeper = sweeper,
                                                           .delegation = delegation,
                                                           .events = events,
                                                           .evidence = chain.get(),
                                                           .metrics = &metrics,
                                                           .now = [this] { return now_; }});
}

Json OperatorHarness::taskSpec() {
  return {
      {"agent", "refactor-bot"},
      {"purpose", "Refactor billing"},
      {"context", {{"tool", "git"}, {"dataSensitivity", "internal"}, {"environment", "staging"}}},
      {"ttl", "30m"},
      {"scope",
       {{"rules", Json::array({{{"apiGroups", {""}},
                                {"resources", {"configmaps"}},
                                {"resourceNames", {"billing-config"}},
                                {"verbs", {"get", "update"}}}})}}},
      {"credential", {{"type", "ServiceAccountToken"}}},
      {"completed", false}};
}

std::string OperatorHarness::createTask(const std::string& name, const Json& spec,
                                        const Json& annotations) {
  Json task = {{"apiVersion", "tasklease.io/v1alpha1"},
               {"kind", "AgentTask"},
               {"metadata", {{"name", name}, {"namespace", "team-a"}}},
               {"spec", spec}};
  if (!annotations.empty()) task["metadata"]["annotations"] = annotations;
  auto created = fake.create(kAgentTasks, task);
  if (!created.ok()) throw std::runtime_error(created.status().toString());
  return "team-a/" + name;
}

void OperatorHarness::addPolicy(const std::string& name, const Json& specPatch) {
  Json spec = {{"match", {{"agents", {"refactor-*"}}}},
               {"allow",
                {{"maxTTL", "1h"},
                 {"credentialTypes", {"ServiceAccountToken", "X509SVID"}},
                 {"rules", Json::array({{{"apiGroups", {""}},
                                         {"resources", {"configmaps"}},
                                         {"verbs", {"get", "update", "list"}}}})},
                 {"workload", {{"podSecurity", "baseline"}}}}},
               {"requireVerifiedDelegation", false}};
  spec.merge_patch(specPatch);
  auto created = fake.create(kAgentPolicies, {{"apiVersion", "tasklease.io/v1alpha1"},
                                              {"kind", "AgentPolicy"},
                                              {"metadata", {{"name", name}}},
                                              {"spec", spec}});
  if (!created.ok()) throw std::runtime_error(created.status().toString());
}

Status OperatorHarness::setFinalizers(const kube::ResourceRef& kind, const std::string& name,
                                      Json finalizers) {
  return fake.patch(kind, {"team-a", name}, {{"metadata", {{"finalizers", std::move(finalizers)}}}})
      .status();
}

StatusOr<ReconcileResult> OperatorHarness::reconcileUntilStable(const std::string& key) {
  StatusOr<ReconcileResult> last = ReconcileResult{};
  for (int pass = 0; pass < 20; ++pass) {
    const int64_t before = fake.resourceVersion();
    last = reconciler->reconcile(key);
    if (!last.ok() || fake.resourceVersion() == before) return last;
  }
  return last;
}

Json OperatorHarness::task(const std::string& key) const {
  return fake.object(kAgentTasks, kube::ObjectKey::parse(key)).value_or(Json());
}

std::string OperatorHarness::phase(const std::string& key) const {
  return stringAt(task(key), {"status", "phase"});
}

bool OperatorHarness::exists(const kube::ResourceRef& resource, const std::string& ns,
                             const std::string& name) const {
  return fake.object(resource, {ns, name}).has_value();
}

std::vector<std::string> OperatorHarness::writeLog() const {
  std::vector<std::string> out;
  for (const auto& a : fake.actions()) {
    if (a.verb == "get" || a.verb == "list" || a.verb == "watch") continue;
    if (a.resource == "events") continue;
    out.push_back(a.verb + " " + a.resource + (a.subresource.empty() ? "" : "/" + a.subresource) +
                  " " + a.key.name);
  }
  return out;
}

std::vector<std::string> OperatorHarness::eventReasons() const {
  std::vector<std::string> out;
  for (const auto& e : fake.objects(kube::resources::kEvents)) {
    out.push_back(e.value("reason", std::string()));
  }
  return out;
}

std::vector<std::string> OperatorHarness::evidenceKinds() const {
  std::vector<std::string> out;
  for (const auto& r : *evidence) out.push_back(r.value("kind", std::string()));
  return out;
}

TaskNames OperatorHarness::names(const std::string& key) const {
  const Json t = task(key);
  return taskNames(stringAt(t, {"metadata", "name"}), stringAt(t, {"metadata", "uid"}));
}

}  // namespace tasklease::op::testing
