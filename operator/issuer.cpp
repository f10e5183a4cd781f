#include "operator/issuer.h"

#include <algorithm>

#include "common/base64.h"
#include "common/crypto.h"
#include "common/log.h"
#include "operator/objects.h"

namespace tasklease::op {
namespace {

using std::chrono::seconds;

std::optional<std::string> base64UrlDecode(std::string_view text) {
  std::string standard(text);
  std::replace(standard.begin(), standard.end(), '-', '+');
  std::replace(standard.begin(), standard.end(), '_', '/');
  while (standard.size() % 4 != 0) standard.push_back('=');
  return base64Decode(standard);
}

TimePoint fromUnix(int64_t secondsSinceEpoch) {
  return TimePoint(seconds(secondsSinceEpoch));
}

// The Secret for a credential, before any material is in it.
Json credentialSecret(const TaskRef& task, const TaskNames& names, CredentialType type,
                      const char* secretType) {
  Json meta = issuedObjectMeta(task, names.secret());
  meta["annotations"] = {{kCredentialTypeAnnotation, credentialTypeName(type)}};
  return {{"apiVersion", "v1"},
          {"kind", "Secret"},
          {"type", secretType},
          {"metadata", meta},
          {"data", Json::object()}};
}

// A Secret of the same name that another task's run created is never used or changed.
Status checkOwner(const Json& secret, const TaskRef& task) {
  const std::string uid = stringAt(secret, {"metadata", "labels", kTaskUidLabel});
  if (uid == task.uid) return {};
  return failedPrecondition("Secret " + task.ns + "/" + stringAt(secret, {"metadata", "name"}) +
                            " exists but is not labelled " + kTaskUidLabel + "=" + task.uid +
                            "; it was not created for this task, so it is left alone");
}

}  // namespace

StatusOr<Json> jwtClaims(std::string_view token) {
  const size_t first = token.find('.');
  const size_t second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos)
    return invalidArgument("token: not a JWT (header.claims.signature)");
  const auto decoded = base64UrlDecode(token.substr(first + 1, second - first - 1));
  if (!decoded) return invalidArgument("token: the claims are not base64url");
  Json claims = Json::parse(*decoded, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object()) return invalidArgument("token: the claims are not a JSON object");
  return claims;
}

// ---- ServiceAccountToken ----

ServiceAccountTokenIssuer::ServiceAccountTokenIssuer(kube::ApiClient& client,
                                                     std::string apiServerCaPem)
    : client_(client), apiServerCaPem_(std::move(apiServerCaPem)) {}

StatusOr<IssuedCredential> ServiceAccountTokenIssuer::issue(const IssueContext& ctx) {
  const kube::ObjectKey key{ctx.task.ns, ctx.names.secret()};
  const std::string where = "credential Secret " + key.toString();
  auto secret = client_.get(kube::resources::kSecrets, key);
  if (!secret.ok()) {
    if (!secret.status().isNotFound()) return secret.status().annotate(where);
    // The Secret comes first, empty: the token is bound to it, so that deleting it is what
    // revokes the token, whatever happens to this process after the TokenRequest.
    secret = client_.create(kube::resources::kSecrets,
                            credentialSecret(ctx.task, ctx.names, type(), "Opaque"));
    if (!secret.ok()) return secret.status().annotate("creating " + where);
  } else if (Status owner = checkOwner(*secret, ctx.task); !owner.ok()) {
    return owner;
  }
  const std::string secretUid = kube::uidOf(*secret);

  const auto describe = [&](const std::string& token, const Json& claims, bool adopted) {
    IssuedCredential out;
    out.fingerprint = fingerprint(token);
    out.tokenId = claims.value("jti", std::string());
    out.issuedAt = claims.contains("iat") && claims["iat"].is_number_integer()
                       ? fromUnix(claims["iat"].get<int64_t>())
                       : ctx.now;
    const TimePoint exp = claims.contains("exp") && claims["exp"].is_number_integer()
                              ? fromUnix(claims["exp"].get<int64_t>())
                              : ctx.deadline;
    out.expiresAt = std::min(exp, ctx.deadline);
    out.adopted = adopted;
    return out;
  };

  if (const auto stored = secretValue(*secret, "token")) {
    auto claims = jwtClaims(*stored);
    if (claims.ok()) {
      const Json& k8s = objectAt(*claims, {"kubernetes.io"});
      const bool boundHere = stringAt(k8s, {"secret", "uid"}) == secretUid &&
                             stringAt(k8s, {"serviceaccount", "uid"}) == ctx.serviceAccountUid;
      const int64_t exp = claims->value("exp", int64_t{0});
      if (boundHere && fromUnix(exp) > ctx.now) return describe(*stored, *claims, true);
    }
  }

  const auto remaining = std::chrono::duration_cast<seconds>(ctx.deadline - ctx.now);
  // Below the API's minimum the token is asked for the minimum; it still stops at the
  // deadline, when revocation deletes the Secret it is bound to.
  const int64_t lifetime = std::max(kMinTokenLifetime, remaining).count();
  Json spec = {{"expirationSeconds", lifetime},
               {"boundObjectRef",
                {{"apiVersion", "v1"},
                 {"kind", "Secret"},
                 {"name", ctx.names.secret()},
                 {"uid", secretUid}}}};
  if (!ctx.spec.audiences.empty()) spec["audiences"] = ctx.spec.audiences;
  const Json request = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  auto answer =
      client_.createSubresource(kube::resources::kServiceAccounts,
                                {ctx.task.ns, ctx.names.serviceAccount()}, "token", request);
  if (!answer.ok()) {
    return answer.status().annotate("TokenRequest for ServiceAccount " + ctx.task.ns + "/" +
                                    ctx.names.serviceAccount());
  }
  const std::string token = stringAt(*answer, {"status", "token"});
  if (token.empty()) return internalError("TokenRequest: the answer has no status.token");

  Json next = *secret;
  next["data"]["token"] = base64Encode(token);
  next["data"]["namespace"] = base64Encode(ctx.task.ns);
  if (!apiServerCaPem_.empty()) next["data"]["ca.crt"] = base64Encode(apiServerCaPem_);
  auto stored = client_.update(kube::resources::kSecrets, next);
  if (!stored.ok()) {
    // The token minted above is lost, and harmless: it is bound to this Secret.
    return stored.status().annotate("storing the token in " + where);
  }
  auto claims = jwtClaims(token);
  if (!claims.ok()) {
    logWarn("the issued token is not a JWT: its jti is unknown",
            {{"task", ctx.task.ns + "/" + ctx.task.name}, {"fingerprint", fingerprint(token)}});
  }
  return describe(token, claims.ok() ? *claims : Json::object(), false);
}

Status ServiceAccountTokenIssuer::beforeRevoke(const std::vector<RevokeContext>& /*contexts*/) {
  return {};
}

// ---- X509SVID ----

X509SvidIssuer::X509SvidIssuer(kube::ApiClient& client, CaStore& cas, CrlPublisher& crl,
                               std::string trustDomain)
    : client_(client), cas_(cas), crl_(crl), trustDomain_(std::move(trustDomain)) {}

StatusOr<IssuedCredential> X509SvidIssuer::issue(const IssueContext& ctx) {
  const auto cas = cas_.current();
  if (!cas) return failedPrecondition("the X509SVID certificate authority is not loaded");
  const kube::ObjectKey key{ctx.task.ns, ctx.names.secret()};
  const std::string where = "credential Secret " + key.toString();
  const std::string spiffeId = spiffeIdOf(trustDomain_, ctx.task);

  auto existing = client_.get(kube::resources::kSecrets, key);
  if (!existing.ok() && !existing.status().isNotFound()) return existing.status().annotate(where);
  if (existing.ok()) {
    if (Status owner = checkOwner(*existing, ctx.task); !owner.ok()) return owner;
    if (const auto pem = secretValue(*existing, "tls.crt")) {
      auto info = inspectCertificate(*pem);
      const bool good = info.ok() && info->uris == std::vector<std::string>{spiffeId} &&
                        cas->issuerOf(*pem) != nullptr && info->notAfter == ctx.deadline &&
                        info->notAfter > ctx.now;
      if (good) {
        return IssuedCredential{info->fingerprint, "",  info->serialHex, spiffeId, info->notBefore,
                                info->notAfter,    true};
      }
    }
  }

  // Valid from a minute before the task began (clock skew of relying parties), never later.
  const TimePoint notBefore = std::min(ctx.created, ctx.now) - std::chrono::minutes(1);
  auto leaf = cas->issueSvid(spiffeId, ctx.task.name, notBefore, ctx.deadline);
  if (!leaf.ok()) return leaf.status().annotate("issuing the X509-SVID " + spiffeId);
  Json secret = credentialSecret(ctx.task, ctx.names, type(), "kubernetes.io/tls");
  secret["metadata"]["annotations"][kSerialAnnotation] = leaf->summary.serialHex;
  secret["metadata"]["annotations"][kIssuerAnnotation] = cas->current.summary().fingerprint;
  secret["metadata"]["annotations"][kNotAfterAnnotation] = formatRfc3339(leaf->summary.notAfter);
  secret["data"] = {{"tls.crt", base64Encode(leaf->certPem)},
                    {"tls.key", base64Encode(leaf->keyPem)},
                    {"ca.crt", base64Encode(cas->bundlePem())}};
  if (existing.ok()) secret["metadata"]["resourceVersion"] = kube::resourceVersionOf(*existing);
  auto written = existing.ok() ? client_.update(kube::resources::kSecrets, secret)
                               : client_.create(kube::resources::kSecrets, secret);
  if (!written.ok()) {
    // Not stored, the key is gone with this call: the certificate can never be used.
    return written.status().annotate("storing the certificate in " + where);
  }
  return IssuedCredential{
      leaf->summary.fingerprint, "",   leaf->summary.serialHex, spiffeId, ctx.now,
      leaf->summary.notAfter,    false};
}

Status X509SvidIssuer::beforeRevoke(const std::vector<RevokeContext>& contexts) {
  std::vector<RevokedCertificate> entries;
  for (const RevokeContext& ctx : contexts) {
    RevokedCertificate entry = revokedEntry(ctx);
    if (!entry.serialHex.empty()) entries.push_back(std::move(entry));
  }
  if (entries.empty()) return {};
  return crl_.revoke(entries);
}

RevokedCertificate X509SvidIssuer::revokedEntry(const RevokeContext& ctx) const {
  RevokedCertificate entry;
  entry.task = ctx.task.ns + "/" + ctx.task.name;
  entry.revokedAt = ctx.now;
  if (ctx.secret) {
    entry.serialHex = stringAt(*ctx.secret, {"metadata", "annotations", kSerialAnnotation});
    entry.issuer = stringAt(*ctx.secret, {"metadata", "annotations", kIssuerAnnotation});
    auto notAfter =
        parseRfc3339(stringAt(*ctx.secret, {"metadata", "annotations", kNotAfterAnnotation}));
    if (notAfter.ok()) entry.notAfter = *notAfter;
    // Annotations can be edited; the certificate itself cannot.
    if (const auto pem = secretValue(*ctx.secret, "tls.crt")) {
      auto info = inspectCertificate(*pem);
      const auto cas = cas_.current();
      if (info.ok()) {
        entry.serialHex = info->serialHex;
        entry.notAfter = info->notAfter;
        const X509Authority* issuer = cas ? cas->issuerOf(*pem) : nullptr;
        entry.issuer = issuer != nullptr ? issuer->summary().fingerprint : std::string();
      }
    }
  }
  if (entry.serialHex.empty()) {
    // The Secret is gone (or never held a certificate): the status may still name the serial.
    entry.serialHex = stringAt(ctx.statusCredential, {"serial"});
    auto expires = parseRfc3339(stringAt(ctx.statusCredential, {"expiresAt"}));
    entry.notAfter = expires.ok() ? *expires : ctx.now + std::chrono::hours(24);
  }
  return entry;
}

}  // namespace tasklease::op
