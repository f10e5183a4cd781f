#include "webhook/cert_manager.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>

#include "common/base64.h"
#include "common/log.h"
#include "common/x509.h"
#include "kube/clock.h"
#include "kube/resource.h"
#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

namespace fs = std::filesystem;
using kube::resources::kMutatingWebhookConfigurations;
using kube::resources::kSecrets;
using kube::resources::kValidatingWebhookConfigurations;

constexpr char kManagedByLabel[] = "app.kubernetes.io/managed-by";
constexpr char kManagedBy[] = "tasklease-webhook";
constexpr char kNextSinceAnnotation[] = "tasklease.io/next-ca-since";
constexpr char kCertKey[] = "tls.crt";
constexpr char kKeyKey[] = "tls.key";
constexpr char kBundleKey[] = "ca.crt";
constexpr char kSigningCertKey[] = "signing-ca.crt";
constexpr char kSigningKeyKey[] = "signing-ca.key";
constexpr char kNextCertKey[] = "next-ca.crt";
constexpr char kNextKeyKey[] = "next-ca.key";
constexpr char kCaCommonName[] = "tasklease-webhook CA";
// Certificates start an hour in the past: API servers' clocks may lag the webhook's.
constexpr auto kBackdate = std::chrono::hours(1);
constexpr int kWriteAttempts = 5;

// What the Secret holds, parsed. A piece that does not parse is absent and made again.
struct Material {
  std::optional<X509Authority> signing;  // signs the serving certificate
  std::optional<X509Authority> next;     // in the bundle; signs once it has been there caOverlap
  TimePoint nextSince{};
  std::vector<std::string> retired;  // earlier CAs' certificates, in the bundle until they expire
  std::string certPem;
  std::string keyPem;
};

std::string dataField(const Json& secret, const char* key) {
  auto decoded = base64Decode(stringMember(objectMember(secret, "data"), key));
  return decoded ? *decoded : std::string();
}

std::optional<X509Authority> loadCa(const Json& secret, const char* certKey, const char* keyKey,
                                    std::vector<std::string>* problems) {
  const std::string cert = dataField(secret, certKey);
  const std::string key = dataField(secret, keyKey);
  if (cert.empty() && key.empty()) return std::nullopt;
  auto ca = X509Authority::load(cert, key);
  if (!ca.ok()) {
    problems->push_back(std::string(certKey) + ": " + ca.status().message());
    return std::nullopt;
  }
  return std::move(*ca);
}

Material parse(const Json& secret, TimePoint now, std::vector<std::string>* problems) {
  Material m;
  m.signing = loadCa(secret, kSigningCertKey, kSigningKeyKey, problems);
  m.next = loadCa(secret, kNextCertKey, kNextKeyKey, problems);
  if (m.next) {
    auto since = parseRfc3339(annotationOf(objectMember(secret, "metadata"), kNextSinceAnnotation));
    if (since.ok()) {
      m.nextSince = *since;
    } else {
      // Counting from now only delays the next CA's first signature: the safe direction.
      problems->push_back(std::string("annotation ") + kNextSinceAnnotation + ": " +
                          since.status().message());
      m.nextSince = now;
    }
  }
  for (const std::string& pem : splitCertificates(dataField(secret, kBundleKey))) {
    auto summary = inspectCertificate(pem);
    if (!summary.ok()) continue;
    const bool inUse = (m.signing && m.signing->summary().fingerprint == summary->fingerprint) ||
                       (m.next && m.next->summary().fingerprint == summary->fingerprint);
    if (!inUse) m.retired.push_back(pem);
  }
  m.certPem = dataField(secret, kCertKey);
  m.keyPem = dataField(secret, kKeyKey);
  return m;
}

bool renewalDue(const CertificateSummary& s, TimePoint now) {
  return now >= s.notBefore + (s.notAfter - s.notBefore) * 2 / 3;
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// Why the serving certificate must be issued again, or "" when it may stay.
std::string servingProblem(const Material& m, TimePoint now, std::vector<std::string> names) {
  if (m.certPem.empty() || m.keyPem.empty()) return "there was none";
  auto summary = inspectCertificate(m.certPem);
  if (!summary.ok()) return "the stored one is unreadable";
  if (!keyMatchesCertificate(m.certPem, m.keyPem)) return "the stored key does not match it";
  if (!m.signing->signedByThis(m.certPem)) return "the signing CA did not sign it";
  std::vector<std::string> have = summary->dnsNames;
  std::sort(have.begin(), have.end());
  std::sort(names.begin(), names.end());
  if (have != names) return "its names (" + joined(have) + ") are not " + joined(names);
  if (renewalDue(*summary, now)) return "2/3 of its life has passed";
  return {};
}

StatusOr<X509Authority> newCa(const CertManagerOptions& o, TimePoint now) {
  return X509Authority::generate({kCaCommonName, {}, now - kBackdate, now + o.caValidity});
}

// Moves the material to what it should be at `now`; says what it changed in `changes`.
Status advance(Material& m, TimePoint now, const CertManagerOptions& o,
               const std::vector<std::string>& names, std::vector<std::string>* changes) {
  if (!m.signing || now >= m.signing->summary().notAfter) {
    // Nothing signs (a new Secret, an unreadable CA, a webhook that was down past the CA's
    // end): a staged CA takes over at once, else a new one. An expired CA verifies nothing.
    const char* why = !m.signing ? "no usable signing CA" : "the signing CA expired";
    if (m.next) {
      m.signing = std::move(m.next);
      m.next.reset();
      changes->push_back(std::string("next CA signs early: ") + why);
    } else {
      auto ca = newCa(o, now);
      if (!ca.ok()) return ca.status();
      m.signing = std::move(*ca);
      changes->push_back(std::string("CA created: ") + why);
    }
  } else if (m.next && now >= m.nextSince + o.caOverlap) {
    m.retired.push_back(m.signing->certPem());
    m.signing = std::move(m.next);
    m.next.reset();
    changes->push_back("next CA promoted: it signs from now on, the previous one stays trusted");
  } else if (!m.next && renewalDue(m.signing->summary(), now)) {
    auto ca = newCa(o, now);
    if (!ca.ok()) return ca.status();
    m.next = std::move(*ca);
    m.nextSince = now;
    changes->push_back("next CA staged: trusted now, signs after the overlap");
  }

  std::vector<std::string> kept, seen;
  for (const std::string& pem : m.retired) {
    auto s = inspectCertificate(pem);
    if (!s.ok() || now >= s->notAfter ||
        std::find(seen.begin(), seen.end(), s->fingerprint) != seen.end()) {
      if (s.ok() && now >= s->notAfter) changes->push_back("expired CA left the bundle");
      continue;
    }
    seen.push_back(s->fingerprint);
    kept.push_back(pem);
  }
  m.retired = std::move(kept);

  const std::string why = servingProblem(m, now, names);
  if (!why.empty()) {
    const TimePoint notAfter =
        std::min<TimePoint>(now + o.certValidity, m.signing->summary().notAfter);
    auto leaf = m.signing->issue({.commonName = names[2],
                                  .dnsNames = names,
                                  .uris = {},
                                  .notBefore = now - kBackdate,
                                  .notAfter = notAfter,
                                  .serverAuth = true,
                                  .clientAuth = false});
    if (!leaf.ok()) return leaf.status().annotate("issuing the serving certificate");
    m.certPem = std::move(leaf->certPem);
    m.keyPem = std::move(leaf->keyPem);
    changes->push_back("serving certificate issued: " + why);
  }
  return {};
}

std::string bundleOf(const Material& m) {
  std::string out = m.signing->certPem();
  if (m.next) out += m.next->certPem();
  for (const auto& pem : m.retired) out += pem;
  return out;
}

// The Secret as it should be, from what is stored (or a new skeleton).
Json render(const Material& m, Json secret, const CertManagerOptions& o,
            const std::optional<Json>& owner) {
  if (secret.is_null()) {
    secret = {{"apiVersion", "v1"},
              {"kind", "Secret"},
              {"type", "kubernetes.io/tls"},
              {"metadata", {{"name", o.secret.name}, {"namespace", o.secret.ns}}}};
  }
  Json& meta = secret["metadata"];
  for (const char* map : {"labels", "annotations"}) {
    if (!meta[map].is_object()) meta[map] = Json::object();
  }
  meta["labels"][kManagedByLabel] = kManagedBy;
  if (m.next) {
    meta["annotations"][kNextSinceAnnotation] = formatRfc3339(m.nextSince);
  } else {
    meta["annotations"].erase(kNextSinceAnnotation);
  }
  Json data = {{kCertKey, base64Encode(m.certPem)},
               {kKeyKey, base64Encode(m.keyPem)},
               {kBundleKey, base64Encode(bundleOf(m))},
               {kSigningCertKey, base64Encode(m.signing->certPem())},
               {kSigningKeyKey, base64Encode(m.signing->keyPem())}};
  if (m.next) {
    data[kNextCertKey] = base64Encode(m.next->certPem());
    data[kNextKeyKey] = base64Encode(m.next->keyPem());
  }
  secret["data"] = std::move(data);
  if (owner) {
    Json refs = Json::array();
    for (const Json& ref : arrayMember(meta, "ownerReferences")) {
      if (stringMember(ref, "kind") == stringMember(*owner, "kind") &&
          stringMember(ref, "name") == stringMember(*owner, "name")) {
        continue;
      }
      refs.push_back(ref);
    }
    refs.push_back(*owner);
    meta["ownerReferences"] = std::move(refs);
  }
  return secret;
}

bool sameStored(const Json& a, const Json& b) {
  const Json& am = objectMember(a, "metadata");
  const Json& bm = objectMember(b, "metadata");
  return objectMember(a, "data") == objectMember(b, "data") &&
         objectMember(am, "labels") == objectMember(bm, "labels") &&
         objectMember(am, "annotations") == objectMember(bm, "annotations") &&
         arrayMember(am, "ownerReferences") == arrayMember(bm, "ownerReferences");
}

StatusOr<std::string> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return notFound(path.string() + ": cannot be read");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Replaces the file in one rename, so a reader sees the old or the new content, never half.
// Returns whether it changed.
StatusOr<bool> writeFileIfChanged(const fs::path& path, const std::string& content) {
  auto current = readFile(path);
  if (current.ok() && *current == content) return false;
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) return unavailable(tmp.string() + ": cannot be written");
    out << content;
    if (!out.flush()) return unavailable(tmp.string() + ": write failed");
  }
  std::error_code ec;
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_write, ec);
  if (!ec) fs::rename(tmp, path, ec);
  if (ec) return unavailable(path.string() + ": " + ec.message());
  return true;
}

double unixSeconds(TimePoint t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

}  // namespace

Status checkCertManagerOptions(const CertManagerOptions& o) {
  using std::chrono::seconds;
  if (o.secret.ns.empty() || o.secret.name.empty()) {
    return invalidArgument("the certificate Secret needs a namespace and a name");
  }
  if (o.service.empty()) return invalidArgument("the webhook Service's name is required");
  if (o.validatingConfigurations.empty() && o.mutatingConfigurations.empty()) {
    return invalidArgument(
        "name at least one webhook configuration whose caBundle the webhook keeps current");
  }
  if (o.certValidity < seconds(600)) {
    return invalidArgument("the serving certificate's validity must be at least 10m");
  }
  if (o.caValidity <= o.certValidity) {
    return invalidArgument("the CA's validity must exceed the serving certificate's");
  }
  // The next CA is staged at 2/3 of the signing CA's life and must sign before that ends.
  if (o.caOverlap <= seconds(0) || o.caOverlap * 3 >= o.caValidity) {
    return invalidArgument(
        "the CA overlap must be positive and less than a third of the CA's "
        "validity");
  }
  return {};
}

std::vector<std::string> servingDnsNames(const CertManagerOptions& o) {
  const std::string inNs = o.service + "." + o.secret.ns;
  return {o.service, inNs, inNs + ".svc", inNs + ".svc." + o.clusterDomain};
}

struct CertManager::Metrics {
  Gauge* servingNotAfter;
  Gauge* caNotAfter;
  Gauge* lastSuccess;
  Counter* errors;
  Counter* secretWrites;
  Counter* bundlePatches;
};

CertManager::CertManager(kube::ApiClient& client, CertManagerOptions options,
                         std::function<TimePoint()> now)
    : client_(client),
      options_(std::move(options)),
      now_(now ? std::move(now) : [] { return std::chrono::system_clock::now(); }) {}

CertManager::~CertManager() {
  stop();
}

void CertManager::exportMetrics(MetricsRegistry& registry) {
  auto& expiry = registry.gauge(
      "tasklease_webhook_certificate_expiration_timestamp_seconds",
      "When the served certificate and its signing CA expire (Unix time).", {"certificate"});
  auto m = std::make_unique<Metrics>();
  m->servingNotAfter = &expiry.labels({"serving"});
  m->caNotAfter = &expiry.labels({"ca"});
  m->lastSuccess =
      &registry
           .gauge("tasklease_webhook_certificate_last_sync_timestamp_seconds",
                  "When the certificate Secret, caBundles and files were last in sync.")
           .labels({});
  m->errors = &registry
                   .counter("tasklease_webhook_certificate_sync_errors_total",
                            "Certificate syncs that failed (retried with backoff).")
                   .labels({});
  m->secretWrites =
      &registry
           .counter("tasklease_webhook_certificate_secret_writes_total",
                    "Creations and rotations of the certificate Secret by this replica.")
           .labels({});
  m->bundlePatches = &registry
                          .counter("tasklease_webhook_certificate_cabundle_updates_total",
                                   "caBundle updates of webhook configurations by this replica.")
                          .labels({});
  std::lock_guard lock(metricsMu_);
  metrics_ = std::move(m);
}

void CertManager::record(const StatusOr<CertSyncResult>& result) {
  std::lock_guard lock(metricsMu_);
  if (!metrics_) return;
  if (!result.ok()) {
    metrics_->errors->inc();
    return;
  }
  metrics_->servingNotAfter->set(unixSeconds(result->servingNotAfter));
  metrics_->caNotAfter->set(unixSeconds(result->signingCaNotAfter));
  metrics_->lastSuccess->set(unixSeconds(now_()));
  if (!result->changes.empty()) metrics_->secretWrites->inc();
  metrics_->bundlePatches->inc(static_cast<double>(result->patchedConfigurations.size()));
}

StatusOr<CertSyncResult> CertManager::syncOnce() {
  std::lock_guard lock(syncMu_);
  auto result = syncLocked();
  record(result);
  return result;
}

StatusOr<CertSyncResult> CertManager::syncLocked() {
  CertSyncResult result;
  const TimePoint now = now_();
  const std::vector<std::string> names = servingDnsNames(options_);
  const std::string secretName = options_.secret.toString();

  // The first ValidatingWebhookConfiguration owns the Secret, so uninstalling removes both.
  std::optional<Json> owner;
  if (!options_.validatingConfigurations.empty()) {
    const std::string& name = options_.validatingConfigurations.front();
    auto config = client_.get(kValidatingWebhookConfigurations, {"", name});
    if (config.ok()) {
      owner = Json{{"apiVersion", "admissionregistration.k8s.io/v1"},
                   {"kind", "ValidatingWebhookConfiguration"},
                   {"name", name},
                   {"uid", kube::uidOf(*config)}};
    } else if (!config.status().isNotFound()) {
      return config.status().annotate("reading ValidatingWebhookConfiguration " + name);
    }
  }

  Material material;
  for (int attempt = 0;; ++attempt) {
    if (attempt == kWriteAttempts) {
      return unavailable("Secret " + secretName + ": " + std::to_string(kWriteAttempts) +
                         " writes in a row met another writer's; trying again later");
    }
    auto stored = client_.get(kSecrets, options_.secret);
    if (!stored.ok() && !stored.status().isNotFound()) {
      return stored.status().annotate("reading Secret " + secretName);
    }
    std::vector<std::string> problems, changes;
    Json base;
    if (stored.ok()) {
      if (labelOf(objectMember(*stored, "metadata"), kManagedByLabel) != kManagedBy) {
        return failedPrecondition("Secret " + secretName + " exists but is not labelled " +
                                  kManagedByLabel + "=" + kManagedBy +
                                  ": it is not the webhook's to manage; delete it or give the "
                                  "webhook another --cert-secret");
      }
      material = parse(*stored, now, &problems);
      base = *stored;
    } else {
      material = Material{};
    }
    Status advanced = advance(material, now, options_, names, &changes);
    if (!advanced.ok()) return advanced.annotate("Secret " + secretName);
    Json desired = render(material, base, options_, owner);
    if (stored.ok() && sameStored(desired, *stored)) break;

    auto written =
        stored.ok() ? client_.update(kSecrets, desired) : client_.create(kSecrets, desired);
    if (written.status().isConflict() || written.status().isAlreadyExists()) {
      continue;  // another replica wrote first: read what it wrote and start from that
    }
    if (!written.ok()) return written.status().annotate("writing Secret " + secretName);
    for (const auto& p : problems) {
      logWarn("certificate Secret had an unreadable part; it was made again",
              {{"secret", secretName}, {"problem", p}});
    }
    if (changes.empty()) changes.push_back("Secret brought up to date");
    result.changes = std::move(changes);
    break;
  }

  const std::string bundle = bundleOf(material);
  const std::string encoded = base64Encode(bundle);
  Status firstError;
  const auto keepCurrent = [&](const kube::ResourceRef& ref, const std::string& name) -> Status {
    for (int attempt = 0; attempt < kWriteAttempts; ++attempt) {
      auto config = client_.get(ref, {"", name});
      if (config.status().isNotFound()) {
        result.missingConfigurations.push_back(ref.kind + "/" + name);
        return {};
      }
      if (!config.ok()) return config.status().annotate("reading " + ref.kind + " " + name);
      Json object = std::move(*config);
      bool changed = false;
      if (object.contains("webhooks") && object["webhooks"].is_array()) {
        for (Json& hook : object["webhooks"]) {
          if (!hook.is_object()) continue;
          Json& clientConfig = hook["clientConfig"];
          if (!clientConfig.is_object()) clientConfig = Json::object();
          if (stringMember(clientConfig, "caBundle") != encoded) {
            clientConfig["caBundle"] = encoded;
            changed = true;
          }
        }
      }
      if (!changed) return {};
      auto updated = client_.update(ref, object);
      if (updated.status().isConflict()) continue;
      if (!updated.ok()) return updated.status().annotate("updating " + ref.kind + " " + name);
      result.patchedConfigurations.push_back(ref.kind + "/" + name);
      return {};
    }
    return unavailable(ref.kind + " " + name + ": changed under every update; trying again later");
  };
  for (const auto& name : options_.validatingConfigurations) {
    Status s = keepCurrent(kValidatingWebhookConfigurations, name);
    if (!s.ok() && firstError.ok()) firstError = s;
  }
  for (const auto& name : options_.mutatingConfigurations) {
    Status s = keepCurrent(kMutatingWebhookConfigurations, name);
    if (!s.ok() && firstError.ok()) firstError = s;
  }

  if (!options_.certDir.empty()) {
    // The key first: a server that reloads between the two renames sees a pair that does not
    // match, keeps its current one, and loads the new pair when the certificate lands.
    const fs::path dir(options_.certDir);
    for (const auto& [file, content] :
         {std::pair{kKeyKey, &material.keyPem}, std::pair{kCertKey, &material.certPem}}) {
      auto wrote = writeFileIfChanged(dir / file, *content);
      if (!wrote.ok()) return wrote.status().annotate("writing the serving certificate");
      result.filesWritten = result.filesWritten || *wrote;
    }
  }

  auto serving = inspectCertificate(material.certPem);
  if (serving.ok()) {
    result.servingFingerprint = serving->fingerprint;
    result.servingNotAfter = serving->notAfter;
  }
  result.signingCaNotAfter = material.signing->summary().notAfter;
  result.bundlePem = bundle;
  if (!result.changes.empty() || !result.patchedConfigurations.empty() || result.filesWritten) {
    logInfo("webhook certificate synced",
            {{"secret", secretName},
             {"changes", result.changes},
             {"caBundleUpdated", result.patchedConfigurations},
             {"filesWritten", result.filesWritten},
             {"servingFingerprint", result.servingFingerprint},
             {"servingNotAfter", formatRfc3339(result.servingNotAfter)},
             {"caNotAfter", formatRfc3339(result.signingCaNotAfter)}});
  }
  if (!result.missingConfigurations.empty()) {
    logWarn("webhook configurations not found; their caBundle will be set once they exist",
            {{"missing", result.missingConfigurations}});
  }
  if (!firstError.ok()) return firstError;
  return result;
}

void CertManager::start(std::chrono::milliseconds interval) {
  stop();
  loop_ = std::jthread([this, interval](const std::stop_token& stop) {
    std::chrono::milliseconds wait = interval;
    std::chrono::milliseconds backoff(1000);
    while (kube::sleepFor(wait, stop)) {
      auto result = syncOnce();
      if (result.ok()) {
        wait = interval;
        backoff = std::chrono::milliseconds(1000);
        continue;
      }
      wait = std::min(backoff, interval);
      backoff = std::min(backoff * 2, interval);
      logWarn("webhook certificate sync failed; retrying",
              {{"error", result.status().message()}, {"retryInMs", wait.count()}});
    }
  });
}

void CertManager::stop() {
  if (loop_.joinable()) {
    loop_.request_stop();
    loop_.join();
  }
}

}  // namespace tasklease::webhook
