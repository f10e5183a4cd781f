#pragma once
// Where the delegation stamp's keys live in a cluster (docs/delegation.md): the webhook's
// Ed25519 private key in a Secret of its own namespace (created on first start), and the public
// keys of every webhook key in use in a ConfigMap that the operator (and every webhook replica)
// reads. The Secret is readable only by the webhook; the ConfigMap holds nothing secret.
//
//   // webhook, at start
//   StatusOr<SigningKey> key = ensureSigningKey(client, {"tasklease-system", "...-signing-key"});
//   Status s = publishPublicKey(client, {"tasklease-system", "tasklease-delegation-keys"}, *key);
//   // operator (or the validating webhook)
//   ConfigMapKeyring keys(client, {"tasklease-system", "tasklease-delegation-keys"});
//   StatusOr<StampCheck> check = keys.verify(task);

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/delegation_stamp.h"
#include "kube/api_client.h"

namespace tasklease::kube {

// The Secret's data key holding the PKCS#8 PEM private key.
inline constexpr char kSigningKeyDataKey[] = "key.pem";

// Reads the Ed25519 key from the Secret, or generates one and creates the Secret when it does
// not exist (two replicas starting at once both end up with the one that was created first).
// A Secret that exists but holds no readable key is an error, never overwritten.
StatusOr<SigningKey> ensureSigningKey(ApiClient& client, const ObjectKey& secret);

// Adds the key's public half to the ConfigMap (data "<keyId>.pem"), creating the ConfigMap if
// needed. Other entries are kept: they are the keys of other replicas or of earlier rotations.
Status publishPublicKey(ApiClient& client, const ObjectKey& configMap, const SigningKey& key);

// Something that can say whether a task's stamp is the webhook's: the seam for the operator's
// delegation source and the validating webhook.
class StampVerifier {
 public:
  virtual ~StampVerifier() = default;
  // An error only when the keys could not be read (try again later); a stamp that does not
  // verify is a StampCheck with its reason.
  virtual StatusOr<StampCheck> verify(const Json& task) = 0;
};

struct ConfigMapKeyringOptions {
  // Keys are read again after this long, so a key removed from the ConfigMap stops verifying.
  std::chrono::milliseconds maxAge{std::chrono::seconds(60)};
  // A stamp from an unknown key makes the ConfigMap be read again at once (a key published a
  // moment ago), but not more often than this.
  std::chrono::milliseconds minRefetch{std::chrono::seconds(1)};
  // Public keys trusted whatever the ConfigMap says (the webhook's own).
  std::vector<std::string> pinnedPublicPems;
  std::chrono::seconds maxSkew = kStampMaxSkew;
};

// The public keys in the ConfigMap, read on demand and cached. Thread-safe.
class ConfigMapKeyring final : public StampVerifier {
 public:
  ConfigMapKeyring(ApiClient& client, ObjectKey configMap, ConfigMapKeyringOptions options = {});

  StatusOr<StampCheck> verify(const Json& task) override;
  // Reads the ConfigMap now (a missing ConfigMap is an empty keyring).
  Status refresh();
  const ObjectKey& configMap() const { return key_; }

 private:
  ApiClient& client_;
  const ObjectKey key_;
  const ConfigMapKeyringOptions options_;
  std::mutex mu_;
  Keyring keys_;                                                    // guarded by mu_
  std::optional<std::chrono::steady_clock::time_point> fetchedAt_;  // guarded by mu_
};

}  // namespace tasklease::kube
