#include "operator/revoker.h"

namespace tasklease::op {
namespace {

bool ownedBy(const Json& object, const TaskRef& task) {
  return stringAt(object, {"metadata", "labels", kTaskUidLabel}) == task.uid;
}

}  // namespace

Revoker::Revoker(kube::ApiClient& client, const IssuerSet& issuers)
    : client_(client), issuers_(issuers) {}

Status Revoker::deleteVerified(const kube::ResourceRef& resource, const RevocationTarget& target,
                               const std::string& name, RevocationReport& report,
                               const StatusOr<Json>* known) {
  const kube::ObjectKey key{target.task.ns, name};
  const std::string what = resource.kind + " " + key.toString();
  const StatusOr<Json> current = known != nullptr ? *known : client_.get(resource, key);
  if (!current.ok()) {
    return current.status().isNotFound() ? Status() : current.status().annotate("reading " + what);
  }
  if (!ownedBy(*current, target.task)) return {};
  kube::DeleteOptions options;
  options.propagation = kube::PropagationPolicy::kBackground;
  options.preconditionUid = kube::uidOf(*current);
  Status removed = client_.remove(resource, key, options);
  if (!removed.ok() && !removed.isNotFound()) return removed.annotate("deleting " + what);
  auto after = client_.get(resource, key);
  if (after.ok() && kube::uidOf(*after) == kube::uidOf(*current)) {
    const Json finalizers = objectAt(*after, {"metadata"}).value("finalizers", Json::array());
    return unavailable(what + " is still present after its deletion (finalizers: " +
                       finalizers.dump() + "); will check again");
  }
  if (!after.ok() && !after.status().isNotFound()) {
    return after.status().annotate("verifying the deletion of " + what);
  }
  report.deleted.push_back(resource.kind + "/" + name);
  return {};
}

StatusOr<RevocationReport> Revoker::revoke(const RevocationTarget& target, TimePoint now) {
  RevocationReport report;
  Status s =
      deleteVerified(kube::resources::kRoleBindings, target, target.names.roleBinding(), report);
  if (!s.ok()) return s;

  // What must outlive the Secret (a CRL entry) is recorded from it before it goes.
  const kube::ObjectKey secretKey{target.task.ns, target.names.secret()};
  auto secret = client_.get(kube::resources::kSecrets, secretKey);
  if (!secret.ok() && !secret.status().isNotFound()) {
    return secret.status().annotate("reading Secret " + secretKey.toString());
  }
  const bool ours = secret.ok() && ownedBy(*secret, target.task);
  std::optional<CredentialType> type = target.type;
  if (!type && ours) {
    type = parseCredentialType(
        stringAt(*secret, {"metadata", "annotations", kCredentialTypeAnnotation}));
  }
  if (type) {
    const auto issuer = issuers_.find(*type);
    if (issuer != issuers_.end()) {
      RevokeContext ctx{target.task, ours ? std::optional<Json>(*secret) : std::nullopt,
                        target.statusCredential, now};
      s = issuer->second->beforeRevoke(ctx);
      if (!s.ok())
        return s.annotate("revoking the credential of " + target.task.ns + "/" + target.task.name);
    }
  }
  s = deleteVerified(kube::resources::kSecrets, target, target.names.secret(), report, &secret);
  if (!s.ok()) return s;
  s = deleteVerified(kube::resources::kServiceAccounts, target, target.names.serviceAccount(),
                     report);
  if (!s.ok()) return s;
  s = deleteVerified(kube::resources::kRoles, target, target.names.role(), report);
  if (!s.ok()) return s;
  return report;
}

}  // namespace tasklease::op
