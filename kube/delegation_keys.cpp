#include "kube/delegation_keys.h"

#include "common/base64.h"

namespace tasklease::kube {
namespace {

const Json kLabels = {{"app.kubernetes.io/name", "tasklease"},
                      {"app.kubernetes.io/component", "delegation"}};

StatusOr<SigningKey> keyFromSecret(const Json& secret, const ObjectKey& key) {
  const std::string where = "signing key Secret " + key.toString() + " data." + kSigningKeyDataKey;
  const Json data = secret.value("data", Json::object());
  const auto it = data.find(kSigningKeyDataKey);
  if (it == data.end() || !it->is_string()) {
    return failedPrecondition(where +
                              ": missing. Delete the Secret to have a new key made, or "
                              "put a PKCS#8 PEM Ed25519 private key there");
  }
  const auto pem = base64Decode(it->get<std::string>());
  if (!pem) return failedPrecondition(where + ": not valid base64");
  auto signing = SigningKey::fromPem(*pem);
  if (!signing.ok()) return failedPrecondition(where + ": " + signing.status().message());
  return signing;
}

}  // namespace

StatusOr<SigningKey> ensureSigningKey(ApiClient& client, const ObjectKey& secret) {
  auto existing = client.get(resources::kSecrets, secret);
  if (existing.ok()) return keyFromSecret(*existing, secret);
  if (!existing.status().isNotFound()) {
    return existing.status().annotate("reading the signing key Secret " + secret.toString());
  }
  auto generated = SigningKey::generate();
  if (!generated.ok()) return generated.status();
  const Json object = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", {{"name", secret.name}, {"namespace", secret.ns}, {"labels", kLabels}}},
      {"type", "Opaque"},
      {"data", {{kSigningKeyDataKey, base64Encode(generated->privatePem())}}}};
  auto created = client.create(resources::kSecrets, object);
  if (created.ok()) return keyFromSecret(*created, secret);
  if (!created.status().isAlreadyExists()) {
    return created.status().annotate("creating the signing key Secret " + secret.toString());
  }
  // Another replica created it first: use that key, so that every replica signs alike.
  auto theirs = client.get(resources::kSecrets, secret);
  if (!theirs.ok()) {
    return theirs.status().annotate("reading the signing key Secret " + secret.toString());
  }
  return keyFromSecret(*theirs, secret);
}

Status publishPublicKey(ApiClient& client, const ObjectKey& configMap, const SigningKey& key) {
  const std::string entry = key.keyId() + ".pem";
  const std::string where = "publishing the public key in ConfigMap " + configMap.toString();
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto cm = client.get(resources::kConfigMaps, configMap);
    if (cm.ok()) {
      const Json data = cm->value("data", Json::object());
      if (data.contains(entry) && data[entry] == key.publicPem()) return {};
      // A merge patch adds this entry and leaves the others alone, whoever writes at once.
      auto patched =
          client.patch(resources::kConfigMaps, configMap, {{"data", {{entry, key.publicPem()}}}});
      if (patched.ok()) return {};
      if (!patched.status().isNotFound()) return patched.status().annotate(where);
      continue;
    }
    if (!cm.status().isNotFound()) return cm.status().annotate(where);
    const Json object = {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata", {{"name", configMap.name}, {"namespace", configMap.ns}, {"labels", kLabels}}},
        {"data", {{entry, key.publicPem()}}}};
    auto created = client.create(resources::kConfigMaps, object);
    if (created.ok()) return {};
    if (!created.status().isAlreadyExists()) return created.status().annotate(where);
  }
  return unavailable(where + ": created and deleted concurrently; try again");
}

ConfigMapKeyring::ConfigMapKeyring(ApiClient& client, ObjectKey configMap,
                                   ConfigMapKeyringOptions options)
    : client_(client), key_(std::move(configMap)), options_(std::move(options)) {}

Status ConfigMapKeyring::refresh() {
  auto cm = client_.get(resources::kConfigMaps, key_);
  if (!cm.ok() && !cm.status().isNotFound()) {
    return cm.status().annotate("reading the delegation keys ConfigMap " + key_.toString());
  }
  Keyring keys =
      cm.ok() ? Keyring::fromConfigMapData(cm->value("data", Json::object())) : Keyring();
  for (const std::string& pem : options_.pinnedPublicPems) {
    if (auto added = keys.add(pem); !added.ok()) {
      return added.status().annotate("a pinned delegation public key");
    }
  }
  std::lock_guard lock(mu_);
  keys_ = std::move(keys);
  fetchedAt_ = std::chrono::steady_clock::now();
  return {};
}

StatusOr<StampCheck> ConfigMapKeyring::verify(const Json& task) {
  const auto now = std::chrono::steady_clock::now();
  bool stale = false;
  {
    std::lock_guard lock(mu_);
    stale = !fetchedAt_ || now - *fetchedAt_ > options_.maxAge;
  }
  if (stale) {
    if (Status s = refresh(); !s.ok()) return s;
  }
  StampCheck check;
  bool refetch = false;
  {
    std::lock_guard lock(mu_);
    check = verifyStamp(task, keys_, options_.maxSkew);
    refetch = check.result == StampResult::kUnknownKey && !stale &&
              now - *fetchedAt_ >= options_.minRefetch;
  }
  if (refetch) {
    if (Status s = refresh(); !s.ok()) return s;
    std::lock_guard lock(mu_);
    check = verifyStamp(task, keys_, options_.maxSkew);
  }
  if (check.result == StampResult::kUnknownKey) {
    check.message += " (ConfigMap " + key_.toString() + ")";
  }
  return check;
}

}  // namespace tasklease::kube
