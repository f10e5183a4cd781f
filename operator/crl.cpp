#include "operator/crl.h"

#include <algorithm>

#include "operator/task.h"

namespace tasklease::op {
namespace {

constexpr int kAttempts = 5;
// Entries outlive their certificate by this much: relying parties' clocks may lag ours, and a
// certificate revoked at its very deadline is still valid to them for a moment.
constexpr std::chrono::hours kGrace{1};
constexpr char kStateKey[] = "revoked.json";

Json entryToJson(const RevokedCertificate& e) {
  return {{"serial", e.serialHex},
          {"issuer", e.issuer},
          {"revokedAt", formatRfc3339(e.revokedAt)},
          {"notAfter", formatRfc3339(e.notAfter)},
          {"task", e.task}};
}

std::vector<RevokedCertificate> entriesFrom(const Json& state) {
  std::vector<RevokedCertificate> out;
  const auto list = state.find("entries");
  if (list == state.end() || !list->is_array()) return out;
  for (const Json& e : *list) {
    if (!e.is_object()) continue;
    auto revoked = parseRfc3339(e.value("revokedAt", std::string()));
    auto notAfter = parseRfc3339(e.value("notAfter", std::string()));
    const std::string serial = e.value("serial", std::string());
    if (serial.empty() || !revoked.ok() || !notAfter.ok()) continue;
    out.push_back({serial, e.value("issuer", std::string()), *revoked, *notAfter,
                   e.value("task", std::string())});
  }
  return out;
}

std::vector<std::string> caFingerprints(const CaSet& set) {
  std::vector<std::string> out = {set.current.summary().fingerprint};
  if (set.previous) out.push_back(set.previous->summary().fingerprint);
  return out;
}

}  // namespace

CrlPublisher::CrlPublisher(kube::ApiClient& client, CaStore& cas, CrlOptions options,
                           std::function<TimePoint()> now)
    : client_(client), cas_(cas), options_(std::move(options)), now_(std::move(now)) {}

Status CrlPublisher::revoke(const std::vector<RevokedCertificate>& certificates) {
  return update([&](std::vector<RevokedCertificate>& entries, const Json&) {
    bool added = false;
    for (const RevokedCertificate& certificate : certificates) {
      const bool listed = std::any_of(entries.begin(), entries.end(), [&](const auto& e) {
        return e.serialHex == certificate.serialHex;
      });
      if (!listed) entries.push_back(certificate);
      added = added || !listed;
    }
    return added;
  });
}

Status CrlPublisher::refresh() {
  return update([&](std::vector<RevokedCertificate>&, const Json& state) {
    auto thisUpdate = parseRfc3339(state.value("thisUpdate", std::string()));
    if (!thisUpdate.ok() || *thisUpdate + options_.validity / 2 <= now_()) return true;
    const auto cas = cas_.current();
    return state.value("cas", Json::array()) != Json(caFingerprints(*cas));
  });
}

Status CrlPublisher::update(
    const std::function<bool(std::vector<RevokedCertificate>&, const Json&)>& change) {
  std::lock_guard lock(mu_);
  const std::string where = "CRL ConfigMap " + options_.configMap.toString();
  Status last;
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const auto cas = cas_.current();
    if (!cas) return failedPrecondition(where + ": the CA is not loaded yet");
    auto got = client_.get(kube::resources::kConfigMaps, options_.configMap);
    if (!got.ok() && !got.status().isNotFound()) return got.status().annotate(where);
    const bool exists = got.ok();
    Json state = Json::object();
    if (exists) {
      const std::string text = stringAt(*got, {"data", kStateKey});
      state = Json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!state.is_object()) state = Json::object();
    }
    std::vector<RevokedCertificate> entries = entriesFrom(state);
    bool write = change(entries, state) || !exists;

    const TimePoint now = now_();
    const auto fingerprints = caFingerprints(*cas);
    const size_t before = entries.size();
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [&](const RevokedCertificate& e) {
                                   const bool knownCa =
                                       e.issuer.empty() ||
                                       std::find(fingerprints.begin(), fingerprints.end(),
                                                 e.issuer) != fingerprints.end();
                                   return e.notAfter + kGrace <= now || !knownCa;
                                 }),
                  entries.end());
    write = write || entries.size() != before;
    if (!write) return {};

    const uint64_t number = state.value("crlNumber", uint64_t{0}) + 1;
    std::string crlPem;
    for (const X509Authority* ca : {&cas->current, cas->previous ? &*cas->previous : nullptr}) {
      if (ca == nullptr) continue;
      std::vector<RevokedSerial> listed;
      for (const auto& e : entries) {
        if (e.issuer.empty() || e.issuer == ca->summary().fingerprint) {
          listed.push_back({e.serialHex, e.revokedAt});
        }
      }
      auto signedCrl = ca->signCrl(listed, now, now + options_.validity, number);
      if (!signedCrl.ok()) return signedCrl.status().annotate(where);
      crlPem += *signedCrl;
    }
    Json list = Json::array();
    for (const auto& e : entries) list.push_back(entryToJson(e));
    const Json newState = {{"crlNumber", number},
                           {"thisUpdate", formatRfc3339(now)},
                           {"nextUpdate", formatRfc3339(now + options_.validity)},
                           {"cas", fingerprints},
                           {"entries", list}};
    Json cm = {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata",
         {{"name", options_.configMap.name},
          {"namespace", options_.configMap.ns},
          {"labels",
           {{"app.kubernetes.io/name", "tasklease"}, {"app.kubernetes.io/component", "crl"}}}}},
        {"data",
         {{"crl.pem", crlPem}, {"ca.crt", cas->bundlePem()}, {kStateKey, newState.dump(1)}}}};
    if (exists) cm["metadata"]["resourceVersion"] = kube::resourceVersionOf(*got);
    auto written = exists ? client_.update(kube::resources::kConfigMaps, cm)
                          : client_.create(kube::resources::kConfigMaps, cm);
    if (written.ok()) return {};
    last = written.status();
    if (!last.isConflict() && !last.isAlreadyExists()) return last.annotate("writing " + where);
  }
  return last.annotate("writing " + where);
}

}  // namespace tasklease::op
