#include "common/delegation_stamp.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <algorithm>

#include "common/base64.h"
#include "common/crypto.h"
#include "common/evidence.h"

namespace tasklease {

struct KeyHandle {
  explicit KeyHandle(EVP_PKEY* k) : pkey(k) {}
  ~KeyHandle() { EVP_PKEY_free(pkey); }
  KeyHandle(const KeyHandle&) = delete;
  KeyHandle& operator=(const KeyHandle&) = delete;
  EVP_PKEY* pkey;
};

namespace {

constexpr char kPayloadType[] = "tasklease.io/requested-by/v1";
constexpr int kSignatureVersion = 1;

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
using MdCtxPtr = std::unique_ptr<EVP_MD_CTX, MdCtxDeleter>;

BioPtr memBio(std::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : std::string();
}

bool isEd25519(EVP_PKEY* key) {
  return EVP_PKEY_is_a(key, "ED25519") == 1;
}

// The first 16 hex digits of sha256(DER SubjectPublicKeyInfo).
std::string keyIdOf(EVP_PKEY* key) {
  unsigned char* der = nullptr;
  const int len = i2d_PUBKEY(key, &der);
  if (len <= 0) return {};
  std::string id =
      sha256Hex(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)))
          .substr(0, 16);
  OPENSSL_free(der);
  return id;
}

StatusOr<std::shared_ptr<const KeyHandle>> readPublicKey(std::string_view pem) {
  BioPtr bio = memBio(pem);
  EVP_PKEY* key = bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) {
    return invalidArgument("not a PEM public key (\"-----BEGIN PUBLIC KEY-----\")");
  }
  auto handle = std::make_shared<const KeyHandle>(key);
  if (!isEd25519(key)) return invalidArgument("the public key is not an Ed25519 key");
  return handle;
}

StampCheck notVerified(StampCheck check, StampResult result, std::string message) {
  check.result = result;
  check.message = std::move(message);
  return check;
}

std::string stringMemberOf(const Json& object, const char* key) {
  if (!object.is_object()) return {};
  const auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const Json& objectMemberOf(const Json& object, const char* key) {
  static const Json kEmpty = Json::object();
  if (!object.is_object()) return kEmpty;
  const auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

}  // namespace

std::string requestedByValue(const Requester& r) {
  const Json value = {{"username", r.username}, {"uid", r.uid}, {"groups", r.groups}};
  // User names and groups come from the API server's authenticators: valid UTF-8, no
  // fractions, so the canonical form cannot fail; replace is a guard, not a path.
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

StatusOr<Requester> parseRequestedBy(std::string_view value) {
  const Json parsed = Json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!parsed.is_object()) {
    return invalidArgument(std::string(kRequestedByAnnotation) +
                           ": must be a JSON object {\"username\", \"uid\", \"groups\"}");
  }
  Requester r;
  const auto username = parsed.find("username");
  if (username == parsed.end() || !username->is_string() ||
      username->get_ref<const std::string&>().empty()) {
    return invalidArgument(std::string(kRequestedByAnnotation) +
                           ": username: required, a non-empty string");
  }
  r.username = username->get<std::string>();
  r.uid = stringMemberOf(parsed, "uid");
  if (const auto groups = parsed.find("groups"); groups != parsed.end() && !groups->is_null()) {
    if (!groups->is_array()) {
      return invalidArgument(std::string(kRequestedByAnnotation) +
                             ": groups: must be a list of strings");
    }
    for (const Json& g : *groups) {
      if (!g.is_string()) {
        return invalidArgument(std::string(kRequestedByAnnotation) +
                               ": groups: must be a list of strings");
      }
      r.groups.push_back(g.get<std::string>());
    }
  }
  return r;
}

StatusOr<std::string> stampSpecDigest(const Json& spec) {
  Json copy = spec.is_object() ? spec : Json::object();
  copy.erase("completed");  // the one field that may change after creation
  try {
    return "sha256:" + sha256Hex(copy.dump(-1, ' ', false, Json::error_handler_t::strict));
  } catch (const Json::exception& e) {
    return invalidArgument(std::string("spec is not valid UTF-8 JSON: ") + e.what());
  }
}

// ---- keys ----

StatusOr<SigningKey> SigningKey::generate() {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return internalError("generating an Ed25519 key failed");
  SigningKey out;
  out.key_ = std::make_shared<const KeyHandle>(key);
  out.keyId_ = keyIdOf(key);
  return out;
}

StatusOr<SigningKey> SigningKey::fromPem(std::string_view privatePem) {
  BioPtr bio = memBio(privatePem);
  EVP_PKEY* key = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (key == nullptr) {
    return invalidArgument("not a PEM private key (\"-----BEGIN PRIVATE KEY-----\")");
  }
  SigningKey out;
  out.key_ = std::make_shared<const KeyHandle>(key);
  if (!isEd25519(key)) return invalidArgument("the private key is not an Ed25519 key");
  out.keyId_ = keyIdOf(key);
  return out;
}

std::string SigningKey::privatePem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_->pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return {};
  }
  return bioText(bio.get());
}

std::string SigningKey::publicPem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key_->pkey) != 1) return {};
  return bioText(bio.get());
}

StatusOr<std::string> SigningKey::sign(std::string_view data) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  std::string sig(64, '\0');
  size_t len = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    return internalError("Ed25519 signing failed");
  }
  sig.resize(len);
  return sig;
}

StatusOr<std::string> Keyring::add(std::string_view publicPem) {
  auto key = readPublicKey(publicPem);
  if (!key.ok()) return key.status();
  std::string id = keyIdOf((*key)->pkey);
  keys_[id] = *key;
  return id;
}

Keyring Keyring::fromConfigMapData(const Json& data, std::vector<std::string>* problems) {
  Keyring out;
  if (!data.is_object()) return out;
  for (const auto& [name, value] : data.items()) {
    if (name.size() <= 4 || name.compare(name.size() - 4, 4, ".pem") != 0) continue;
    auto added = value.is_string() ? out.add(value.get_ref<const std::string&>())
                                   : StatusOr<std::string>(invalidArgument("not a string"));
    if (!added.ok() && problems != nullptr) {
      problems->push_back("data." + name + ": " + added.status().message());
    }
  }
  return out;
}

bool Keyring::contains(std::string_view keyId) const {
  return keys_.find(keyId) != keys_.end();
}

std::vector<std::string> Keyring::keyIds() const {
  std::vector<std::string> out;
  for (const auto& [id, key] : keys_) out.push_back(id);
  return out;
}

Status Keyring::verify(std::string_view keyId, std::string_view data,
                       std::string_view signature) const {
  const auto it = keys_.find(keyId);
  if (it == keys_.end()) return notFound("no public key with ID " + std::string(keyId));
  MdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, it->second->pkey) != 1) {
    return internalError("Ed25519 verification could not start");
  }
  const int ok = EVP_DigestVerify(
      ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
      reinterpret_cast<const unsigned char*>(data.data()), data.size());
  if (ok != 1) return invalidArgument("the signature does not match");
  return {};
}

// ---- stamps ----

StatusOr<std::string> stampPayload(std::string_view keyId, const StampSubject& subject,
                                   std::string_view requestedBy, std::string_view issuedAt) {
  auto digest = stampSpecDigest(subject.spec);
  if (!digest.ok()) return digest.status();
  const Json payload = {{"type", kPayloadType},
                        {"keyId", keyId},
                        {"namespace", subject.ns},
                        {"name", subject.name},
                        {"generateName", subject.generateName},
                        {"requestedBy", requestedBy},
                        {"spec", *digest},
                        {"issuedAt", issuedAt}};
  return canonicalJson(payload);
}

StatusOr<std::string> signStamp(const SigningKey& key, const StampSubject& subject,
                                std::string_view requestedBy, TimePoint issuedAt) {
  const std::string at = formatRfc3339(issuedAt, /*millis=*/true);
  auto payload = stampPayload(key.keyId(), subject, requestedBy, at);
  if (!payload.ok()) return payload.status();
  auto sig = key.sign(*payload);
  if (!sig.ok()) return sig.status();
  const Json value = {{"v", kSignatureVersion},
                      {"keyId", key.keyId()},
                      {"name", subject.name},
                      {"issuedAt", at},
                      {"signature", base64Encode(*sig)}};
  return canonicalJson(value);
}

const char* stampResultName(StampResult result) {
  switch (result) {
    case StampResult::kVerified:
      return "verified";
    case StampResult::kAbsent:
      return "absent";
    case StampResult::kUnsigned:
      return "unsigned";
    case StampResult::kMalformed:
      return "malformed";
    case StampResult::kUnknownKey:
      return "unknown-key";
    case StampResult::kBadSignature:
      return "bad-signature";
    case StampResult::kMismatch:
      return "mismatch";
  }
  return "malformed";
}

StampCheck verifyStamp(const Json& task, const Keyring& keys, std::chrono::seconds maxSkew) {
  StampCheck check;
  const Json& meta = objectMemberOf(task, "metadata");
  const Json& annotations = objectMemberOf(meta, "annotations");
  if (!annotations.contains(kRequestedByAnnotation)) {
    return notVerified(check, StampResult::kAbsent,
                       std::string("the task has no ") + kRequestedByAnnotation + " stamp");
  }
  const std::string requestedBy = stringMemberOf(annotations, kRequestedByAnnotation);
  auto requester = parseRequestedBy(requestedBy);
  if (!requester.ok()) {
    return notVerified(check, StampResult::kMalformed, requester.status().message());
  }
  check.requester = *requester;
  if (!annotations.contains(kRequestedBySignatureAnnotation)) {
    return notVerified(check, StampResult::kUnsigned,
                       std::string("the stamp carries no ") + kRequestedBySignatureAnnotation +
                           ": it was not written by the tasklease webhook");
  }
  const Json sig = Json::parse(stringMemberOf(annotations, kRequestedBySignatureAnnotation),
                               nullptr, /*allow_exceptions=*/false);
  const std::string keyId = stringMemberOf(sig, "keyId");
  const std::string signedName = stringMemberOf(sig, "name");
  const std::string issuedAt = stringMemberOf(sig, "issuedAt");
  const auto raw = base64Decode(stringMemberOf(sig, "signature"));
  const bool version = sig.is_object() && sig.contains("v") && sig["v"].is_number_integer() &&
                       sig["v"].get<int64_t>() == kSignatureVersion;
  if (!version || keyId.empty() || issuedAt.empty() || !raw) {
    return notVerified(check, StampResult::kMalformed,
                       std::string(kRequestedBySignatureAnnotation) +
                           ": not a version 1 signature {\"v\", \"keyId\", \"name\", "
                           "\"issuedAt\", \"signature\"}");
  }
  check.keyId = keyId;
  if (!keys.contains(keyId)) {
    return notVerified(check, StampResult::kUnknownKey,
                       "signed with key " + keyId +
                           ", which is not among the webhook's "
                           "published keys");
  }
  const StampSubject subject{stringMemberOf(meta, "namespace"), signedName,
                             stringMemberOf(meta, "generateName"),
                             task.is_object() && task.contains("spec") ? task["spec"] : Json()};
  auto payload = stampPayload(keyId, subject, requestedBy, issuedAt);
  if (!payload.ok()) return notVerified(check, StampResult::kMalformed, payload.status().message());
  if (!keys.verify(keyId, *payload, *raw).ok()) {
    return notVerified(check, StampResult::kBadSignature,
                       "the signature does not match the stamp, namespace, name and spec: "
                       "something changed after the webhook signed it");
  }
  const std::string name = stringMemberOf(meta, "name");
  const bool nameMatches =
      signedName.empty() ? !subject.generateName.empty() && name.rfind(subject.generateName, 0) == 0
                         : signedName == name;
  if (!nameMatches) {
    return notVerified(check, StampResult::kMismatch,
                       "the stamp was signed for the task \"" +
                           (signedName.empty() ? subject.generateName + "*" : signedName) +
                           "\", not \"" + name + "\"");
  }
  auto signedAt = parseRfc3339(issuedAt);
  auto created = parseRfc3339(stringMemberOf(meta, "creationTimestamp"));
  if (!signedAt.ok() || !created.ok()) {
    return notVerified(check, StampResult::kMalformed,
                       "issuedAt or metadata.creationTimestamp is not an RFC 3339 time");
  }
  // creationTimestamp has whole seconds; the stamp was signed moments before it was set.
  const auto skew = *created > *signedAt ? *created - *signedAt : *signedAt - *created;
  if (skew > maxSkew + std::chrono::seconds(1)) {
    return notVerified(check, StampResult::kMismatch,
                       "the stamp was signed at " + issuedAt + " but the task was created at " +
                           stringMemberOf(meta, "creationTimestamp") +
                           ": it belongs to another request");
  }
  check.result = StampResult::kVerified;
  return check;
}

}  // namespace tasklease
