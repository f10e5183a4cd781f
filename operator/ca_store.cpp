#include "operator/ca_store.h"

#include "common/base64.h"
#include "common/log.h"
#include "operator/objects.h"

namespace tasklease::op {
namespace {

constexpr char kCert[] = "tls.crt";
constexpr char kKey[] = "tls.key";
constexpr char kPreviousCert[] = "previous.crt";
constexpr char kPreviousKey[] = "previous.key";
constexpr char kBundle[] = "ca.crt";
constexpr int kAttempts = 3;

Json caSecretObject(const kube::ObjectKey& key, const CaSet& set) {
  Json data = {{kCert, base64Encode(set.current.certPem())},
               {kKey, base64Encode(set.current.keyPem())},
               {kBundle, base64Encode(set.bundlePem())}};
  if (set.previous) {
    data[kPreviousCert] = base64Encode(set.previous->certPem());
    data[kPreviousKey] = base64Encode(set.previous->keyPem());
  }
  // Not labelled managed-by: the orphan sweep must never take the CA for a task's leftover.
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"type", "kubernetes.io/tls"},
          {"metadata",
           {{"name", key.name},
            {"namespace", key.ns},
            {"labels",
             {{"app.kubernetes.io/name", "tasklease"},
              {"app.kubernetes.io/component", "certificate-authority"}}}}},
          {"data", data}};
}

StatusOr<X509Authority> loadPair(const Json& secret, const char* certKey, const char* keyKey,
                                 const std::string& where) {
  const auto cert = secretValue(secret, certKey);
  const auto key = secretValue(secret, keyKey);
  if (!cert || !key) {
    return invalidArgument(where + ": data." + certKey + " and data." + keyKey +
                           " must both be present and base64; fix or delete the Secret (see "
                           "docs/operator.md, CA rotation)");
  }
  auto ca = X509Authority::load(*cert, *key);
  if (!ca.ok()) return invalidArgument(where + ": " + ca.status().message());
  return ca;
}

StatusOr<CaSet> parseCaSecret(const Json& secret, const std::string& where) {
  auto current = loadPair(secret, kCert, kKey, where);
  if (!current.ok()) return current.status();
  CaSet set{std::move(*current), std::nullopt};
  if (secretValue(secret, kPreviousCert)) {
    auto previous = loadPair(secret, kPreviousCert, kPreviousKey, where);
    if (!previous.ok()) return previous.status();
    set.previous = std::move(*previous);
  }
  return set;
}

}  // namespace

std::string CaSet::bundlePem() const {
  return current.certPem() + (previous ? previous->certPem() : std::string());
}

StatusOr<IssuedCertificate> CaSet::issueSvid(const std::string& spiffeId,
                                             const std::string& commonName, TimePoint notBefore,
                                             TimePoint notAfter) const {
  LeafRequest request;
  request.commonName = commonName;
  request.uris = {spiffeId};
  request.notBefore = notBefore;
  request.notAfter = notAfter;
  request.serverAuth = true;
  request.clientAuth = true;
  return current.issue(request);
}

const X509Authority* CaSet::issuerOf(std::string_view leafPem) const {
  if (current.signedByThis(leafPem)) return &current;
  if (previous && previous->signedByThis(leafPem)) return &*previous;
  return nullptr;
}

const X509Authority* CaSet::byFingerprint(const std::string& fingerprint) const {
  if (current.summary().fingerprint == fingerprint) return &current;
  if (previous && previous->summary().fingerprint == fingerprint) return &*previous;
  return nullptr;
}

CaStore::CaStore(kube::ApiClient& client, CaOptions options, std::function<TimePoint()> now)
    : client_(client), options_(std::move(options)), now_(std::move(now)) {}

std::shared_ptr<const CaSet> CaStore::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

StatusOr<std::shared_ptr<const CaSet>> CaStore::ensure() {
  std::lock_guard lock(ensureMu_);
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    auto set = ensureOnce();
    if (set.ok()) {
      std::lock_guard stateLock(mu_);
      current_ = *set;
      return set;
    }
    last = set.status();
    // Another writer got there first: read what it wrote.
    if (!last.isAlreadyExists() && !last.isConflict()) break;
  }
  return last;
}

StatusOr<std::shared_ptr<const CaSet>> CaStore::ensureOnce() {
  const TimePoint now = now_();
  const std::string where = "CA Secret " + options_.secret.toString();
  const auto fresh = [&]() {
    // Valid from an hour ago: clocks of relying parties may lag ours.
    CaRequest request;
    request.commonName = "tasklease CA " + options_.trustDomain;
    request.uris = {"spiffe://" + options_.trustDomain};
    request.notBefore = now - std::chrono::hours(1);
    request.notAfter = now + options_.validity;
    return X509Authority::generate(request);
  };
  auto stored = client_.get(kube::resources::kSecrets, options_.secret);
  if (!stored.ok() && !stored.status().isNotFound()) return stored.status().annotate(where);
  if (!stored.ok()) {
    auto ca = fresh();
    if (!ca.ok()) return ca.status();
    auto set = std::make_shared<CaSet>(CaSet{std::move(*ca), std::nullopt});
    auto created = client_.create(kube::resources::kSecrets, caSecretObject(options_.secret, *set));
    if (!created.ok()) return created.status().annotate("creating " + where);
    logInfo("created the X509SVID certificate authority",
            {{"secret", options_.secret.toString()},
             {"fingerprint", set->current.summary().fingerprint},
             {"notAfter", formatRfc3339(set->current.summary().notAfter)}});
    return std::shared_ptr<const CaSet>(std::move(set));
  }
  auto parsed = parseCaSecret(*stored, where);
  if (!parsed.ok()) return parsed.status();
  auto set = std::make_shared<CaSet>(std::move(*parsed));
  bool changed = false;
  if (set->previous && set->previous->summary().notAfter <= now) {
    logInfo("dropping the expired previous CA",
            {{"fingerprint", set->previous->summary().fingerprint}});
    set->previous.reset();
    changed = true;
  }
  if (set->current.summary().notAfter - now < options_.rotateBefore) {
    auto ca = fresh();
    if (!ca.ok()) return ca.status();
    logInfo("rotating the X509SVID certificate authority",
            {{"old", set->current.summary().fingerprint},
             {"oldNotAfter", formatRfc3339(set->current.summary().notAfter)},
             {"new", ca->summary().fingerprint}});
    set->previous = std::move(set->current);
    set->current = std::move(*ca);
    changed = true;
  }
  if (changed) {
    Json next = caSecretObject(options_.secret, *set);
    next["metadata"]["resourceVersion"] = kube::resourceVersionOf(*stored);
    auto updated = client_.update(kube::resources::kSecrets, next);
    if (!updated.ok()) return updated.status().annotate("updating " + where);
  }
  return std::shared_ptr<const CaSet>(std::move(set));
}

}  // namespace tasklease::op
