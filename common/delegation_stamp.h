#pragma once
// The delegation stamp (docs/delegation.md): who asked for an AgentTask. The mutating webhook
// writes the requesting user into the annotation tasklease.io/requested-by and signs it, with
// an Ed25519 key only the webhook holds, into tasklease.io/requested-by-signature. The
// signature binds the stamp to the task's namespace, its name (or generateName), its spec
// (`completed` aside) and the time of the request, so a stamp copied onto another task, or a
// task whose spec changed, does not verify. The operator verifies with the public keys the
// webhook publishes; it never holds a private key, so it cannot forge a delegation either.
//
//   // webhook, mutating admission of a CREATE
//   StatusOr<SigningKey> key = SigningKey::generate();
//   std::string who = requestedByValue({"alice", "uid-1", {"dev"}});
//   StatusOr<std::string> sig = signStamp(*key, {ns, name, generateName, spec}, who, now);
//   // operator
//   Keyring keys;
//   keys.add(key->publicPem());
//   StampCheck check = verifyStamp(task, keys);
//   if (check.result == StampResult::kVerified) use(check.requester);

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "common/status.h"

namespace tasklease {

inline constexpr char kRequestedByAnnotation[] = "tasklease.io/requested-by";
inline constexpr char kRequestedBySignatureAnnotation[] = "tasklease.io/requested-by-signature";

// How far the signed time may be from the task's creationTimestamp. The webhook signs while
// the API server admits the CREATE, moments before it stores the object; the margin covers
// clock skew between the webhook's node and the API server.
inline constexpr std::chrono::seconds kStampMaxSkew{120};

// The user an AdmissionReview names (request.userInfo), as the stamp records it.
struct Requester {
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  friend bool operator==(const Requester&, const Requester&) = default;
};

// The annotation's value: {"groups":[...],"uid":"...","username":"..."} in canonical JSON
// (docs/evidence.md), so the same user always gives the same bytes.
std::string requestedByValue(const Requester& requester);
// Reads the annotation's value; errors say what is wrong.
StatusOr<Requester> parseRequestedBy(std::string_view value);

// "sha256:<hex>" of the spec without `completed`, serialized with sorted keys and no
// whitespace (numbers with fractions in their shortest round-trip form).
StatusOr<std::string> stampSpecDigest(const Json& spec);

struct KeyHandle;  // an OpenSSL key, inside the .cpp

// The webhook's Ed25519 signing key.
class SigningKey {
 public:
  static StatusOr<SigningKey> generate();
  // A PKCS#8 PEM private key ("-----BEGIN PRIVATE KEY-----"); only Ed25519 is accepted.
  static StatusOr<SigningKey> fromPem(std::string_view privatePem);

  // Secret material: store it in a Secret, never log it.
  std::string privatePem() const;
  std::string publicPem() const;
  // The first 16 hex digits of the SHA-256 of the public key (DER SubjectPublicKeyInfo).
  const std::string& keyId() const { return keyId_; }
  // The 64-byte Ed25519 signature of data.
  StatusOr<std::string> sign(std::string_view data) const;

 private:
  SigningKey() = default;
  std::shared_ptr<const KeyHandle> key_;
  std::string keyId_;
};

// Public keys by key ID: what a verifier trusts. A list, so keys can be rotated: a new key
// is added before it signs, an old one removed once nothing it signed needs verifying.
class Keyring {
 public:
  // Adds a PEM public key (SubjectPublicKeyInfo, Ed25519); returns its key ID.
  StatusOr<std::string> add(std::string_view publicPem);
  // Every data entry named "<anything>.pem" of a ConfigMap's data; entries that are not
  // Ed25519 public keys are skipped and reported in *problems (when given).
  static Keyring fromConfigMapData(const Json& data, std::vector<std::string>* problems = nullptr);

  bool contains(std::string_view keyId) const;
  std::vector<std::string> keyIds() const;
  size_t size() const { return keys_.size(); }
  // OK when signature is keyId's signature of data.
  Status verify(std::string_view keyId, std::string_view data, std::string_view signature) const;

 private:
  std::map<std::string, std::shared_ptr<const KeyHandle>, std::less<>> keys_;
};

// What the mutating webhook knows about the task it stamps. In kube-apiserver, mutating
// admission runs before the name of a generateName object is chosen (and before its uid
// exists), so the stamp binds the generateName then, and never the uid.
struct StampSubject {
  std::string ns;
  std::string name;  // empty when the client asked for generateName
  std::string generateName;
  Json spec;
};

// The value of the signature annotation:
// {"issuedAt":"...","keyId":"...","name":"...","signature":"<base64>","v":1}.
StatusOr<std::string> signStamp(const SigningKey& key, const StampSubject& subject,
                                std::string_view requestedBy, TimePoint issuedAt);

enum class StampResult {
  kVerified,
  kAbsent,        // no tasklease.io/requested-by
  kUnsigned,      // requested-by without a signature
  kMalformed,     // an annotation that cannot be read
  kUnknownKey,    // signed by a key the keyring does not hold (rotated out, or never ours)
  kBadSignature,  // the signature does not match: the stamp, namespace, name or spec changed
  kMismatch,      // signed for another task name, or at a time far from the task's creation
};
const char* stampResultName(StampResult result);

struct StampCheck {
  StampResult result = StampResult::kAbsent;
  std::string keyId;
  Requester requester;  // parsed from requested-by whenever it could be read
  std::string message;  // why it is not verified, for status and evidence
  bool verified() const { return result == StampResult::kVerified; }
};

// Checks the stamp on an AgentTask object (metadata and spec, as stored).
StampCheck verifyStamp(const Json& task, const Keyring& keys,
                       std::chrono::seconds maxSkew = kStampMaxSkew);

// The bytes that are signed (exposed for docs/delegation.md's worked example and tests).
StatusOr<std::string> stampPayload(std::string_view keyId, const StampSubject& subject,
                                   std::string_view requestedBy, std::string_view issuedAt);

}  // namespace tasklease
