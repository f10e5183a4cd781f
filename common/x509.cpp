#include "common/x509.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <mutex>
#include <utility>

#include "common/crypto.h"

namespace tasklease {
namespace {

template <typename T, void (*Free)(T*)>
struct OsslFree {
  void operator()(T* p) const { Free(p); }
};
using X509Ptr = std::unique_ptr<X509, OsslFree<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, OsslFree<EVP_PKEY, EVP_PKEY_free>>;
using BioPtr = std::unique_ptr<BIO, OsslFree<BIO, BIO_free_all>>;
using BnPtr = std::unique_ptr<BIGNUM, OsslFree<BIGNUM, BN_free>>;
using AsnIntPtr = std::unique_ptr<ASN1_INTEGER, OsslFree<ASN1_INTEGER, ASN1_INTEGER_free>>;
using AsnTimePtr = std::unique_ptr<ASN1_TIME, OsslFree<ASN1_TIME, ASN1_TIME_free>>;
using CrlPtr = std::unique_ptr<X509_CRL, OsslFree<X509_CRL, X509_CRL_free>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, OsslFree<X509_EXTENSION, X509_EXTENSION_free>>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, OsslFree<GENERAL_NAMES, GENERAL_NAMES_free>>;

// The OpenSSL error queue as text, emptied, after `what`.
Status sslError(const std::string& what) {
  std::string detail;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    detail += (detail.empty() ? "" : "; ") + std::string(buf);
  }
  return internalError(what + (detail.empty() ? "" : ": " + detail));
}

std::time_t toTimeT(TimePoint t) {
  return std::chrono::system_clock::to_time_t(t);
}

BioPtr memBio(std::string_view text) {
  return BioPtr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::string bioText(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

StatusOr<X509Ptr> parseCert(std::string_view pem) {
  BioPtr bio = memBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!cert) return invalidArgument("not a PEM certificate");
  return cert;
}

StatusOr<KeyPtr> parseKey(std::string_view pem) {
  BioPtr bio = memBio(pem);
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  ERR_clear_error();
  if (!key) return invalidArgument("not a PEM private key");
  return key;
}

StatusOr<std::string> certToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509(bio.get(), cert) != 1) return sslError("encoding a certificate");
  return bioText(bio.get());
}

StatusOr<std::string> keyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return sslError("encoding a private key");
  }
  return bioText(bio.get());
}

StatusOr<KeyPtr> newP256Key() {
  KeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return sslError("generating an EC P-256 key");
  return key;
}

StatusOr<AsnIntPtr> serialFromHex(const std::string& hex) {
  BIGNUM* raw = nullptr;
  if (hex.empty() || BN_hex2bn(&raw, hex.c_str()) == 0) {
    return invalidArgument("serial \"" + hex + "\" is not hexadecimal");
  }
  BnPtr bn(raw);
  AsnIntPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return sslError("encoding a serial");
  return out;
}

StatusOr<AsnIntPtr> randomSerial() {
  BnPtr bn(BN_new());
  // 127 bits keeps the DER integer positive in 16 bytes; a zero serial is re-drawn.
  do {
    if (BN_rand(bn.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return sslError("drawing a serial");
    }
  } while (BN_is_zero(bn.get()));
  AsnIntPtr out(BN_to_ASN1_INTEGER(bn.get(), nullptr));
  if (!out) return sslError("encoding a serial");
  return out;
}

std::string serialHexOf(const ASN1_INTEGER* serial) {
  BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (!bn) return {};
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "";
  OPENSSL_free(hex);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  const size_t first = out.find_first_not_of('0');
  return first == std::string::npos ? "0" : out.substr(first);
}

TimePoint timeOf(const ASN1_TIME* t) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return TimePoint{};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

std::string asn1Text(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<size_t>(ASN1_STRING_length(s))};
}

// Extensions given as OpenSSL config text: only for fixed values, never for names, which are
// added as GENERAL_NAMEs (a comma in a name would otherwise start a second one).
Status addExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
    return sslError(std::string("adding the extension ") + OBJ_nid2sn(nid) + " = " + value);
  }
  return {};
}

// A name goes into a certificate as it is; refuse what no verifier would match.
Status checkName(std::string_view kind, const std::string& name) {
  const bool printable =
      std::all_of(name.begin(), name.end(), [](unsigned char c) { return c > 0x20 && c < 0x7f; });
  if (name.empty() || !printable) {
    return invalidArgument(std::string(kind) + " name \"" + name +
                           "\" must be non-empty printable ASCII without spaces");
  }
  return {};
}

Status addNames(X509* cert, const std::vector<std::string>& dnsNames,
                const std::vector<std::string>& uris) {
  if (dnsNames.empty() && uris.empty()) return {};
  NamesPtr names(GENERAL_NAMES_new());
  const auto push = [&](int type, const std::string& value) -> Status {
    ASN1_IA5STRING* text = ASN1_IA5STRING_new();
    GENERAL_NAME* name = GENERAL_NAME_new();
    if (text == nullptr || name == nullptr ||
        ASN1_STRING_set(text, value.data(), static_cast<int>(value.size())) != 1) {
      ASN1_IA5STRING_free(text);
      GENERAL_NAME_free(name);
      return sslError("encoding the name " + value);
    }
    GENERAL_NAME_set0_value(name, type, text);
    if (sk_GENERAL_NAME_push(names.get(), name) == 0) {
      GENERAL_NAME_free(name);
      return sslError("adding the name " + value);
    }
    return {};
  };
  for (const auto& dns : dnsNames) {
    if (Status s = checkName("DNS", dns); !s.ok()) return s;
    if (Status s = push(GEN_DNS, dns); !s.ok()) return s;
  }
  for (const auto& uri : uris) {
    if (Status s = checkName("URI", uri); !s.ok()) return s;
    if (Status s = push(GEN_URI, uri); !s.ok()) return s;
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return sslError("adding subjectAltName");
  }
  return {};
}

CertificateSummary summaryOf(X509* cert) {
  CertificateSummary info;
  info.serialHex = serialHexOf(X509_get0_serialNumber(cert));
  info.notBefore = timeOf(X509_get0_notBefore(cert));
  info.notAfter = timeOf(X509_get0_notAfter(cert));
  info.isCa = X509_check_ca(cert) > 0;
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr)));
  if (names) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
      const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
      if (n->type == GEN_URI) info.uris.push_back(asn1Text(n->d.uniformResourceIdentifier));
      if (n->type == GEN_DNS) info.dnsNames.push_back(asn1Text(n->d.dNSName));
    }
  }
  const X509_NAME* subject = X509_get_subject_name(cert);
  const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (idx >= 0)
    info.commonName = asn1Text(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
  unsigned char* der = nullptr;
  const int len = i2d_X509(cert, &der);
  if (len > 0) {
    info.fingerprint =
        fingerprint(std::string_view(reinterpret_cast<const char*>(der), static_cast<size_t>(len)));
  }
  OPENSSL_free(der);
  ERR_clear_error();
  return info;
}

// Sets version, serial, validity, subject and public key: what every certificate here shares.
Status prepare(X509* cert, EVP_PKEY* subjectKey, TimePoint notBefore, TimePoint notAfter,
               std::string_view commonName) {
  if (notAfter <= notBefore) {
    return invalidArgument("notAfter " + formatRfc3339(notAfter) + " is not after notBefore " +
                           formatRfc3339(notBefore));
  }
  auto serial = randomSerial();
  if (!serial.ok()) return serial.status();
  X509_NAME* name = X509_get_subject_name(cert);
  const std::string cn(commonName.substr(0, 64));  // the X.520 upper bound
  if (X509_set_version(cert, 2) != 1 || X509_set_serialNumber(cert, serial->get()) != 1 ||
      ASN1_TIME_set(X509_getm_notBefore(cert), toTimeT(notBefore)) == nullptr ||
      ASN1_TIME_set(X509_getm_notAfter(cert), toTimeT(notAfter)) == nullptr ||
      X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>("tasklease"), -1, -1,
                                 0) != 1 ||
      (!cn.empty() && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                                 reinterpret_cast<const unsigned char*>(cn.c_str()),
                                                 -1, -1, 0) != 1) ||
      X509_set_pubkey(cert, subjectKey) != 1) {
    return sslError("preparing a certificate");
  }
  return {};
}

}  // namespace

struct X509Authority::Keys {
  X509Ptr cert;
  KeyPtr key;
  std::mutex signMu;  // serialises use of `key` by concurrent issuers
};

X509Authority::X509Authority(std::shared_ptr<Keys> keys, std::string certPem, std::string keyPem,
                             CertificateSummary summary)
    : keys_(std::move(keys)),
      certPem_(std::move(certPem)),
      keyPem_(std::move(keyPem)),
      summary_(std::move(summary)) {}

StatusOr<CertificateSummary> inspectCertificate(std::string_view pem) {
  auto cert = parseCert(pem);
  if (!cert.ok()) return cert.status();
  return summaryOf(cert->get());
}

std::vector<std::string> splitCertificates(std::string_view bundle) {
  static constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
  static constexpr std::string_view kEnd = "-----END CERTIFICATE-----";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t begin = bundle.find(kBegin, pos);
    if (begin == std::string_view::npos) break;
    const size_t end = bundle.find(kEnd, begin);
    if (end == std::string_view::npos) break;
    out.emplace_back(bundle.substr(begin, end + kEnd.size() - begin));
    out.back() += '\n';
    pos = end + kEnd.size();
  }
  return out;
}

bool keyMatchesCertificate(std::string_view certPem, std::string_view keyPem) {
  auto cert = parseCert(certPem);
  auto key = parseKey(keyPem);
  if (!cert.ok() || !key.ok()) return false;
  const bool ok = X509_check_private_key(cert->get(), key->get()) == 1;
  ERR_clear_error();
  return ok;
}

StatusOr<X509Authority> X509Authority::generate(const CaRequest& request) {
  auto key = newP256Key();
  if (!key.ok()) return key.status();
  X509Ptr cert(X509_new());
  Status s =
      prepare(cert.get(), key->get(), request.notBefore, request.notAfter, request.commonName);
  if (!s.ok()) return s;
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return sslError("setting the CA's issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : std::vector<std::pair<int, std::string>>{
           {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
           {NID_key_usage, "critical,keyCertSign,cRLSign"},
           {NID_subject_key_identifier, "hash"},
           {NID_authority_key_identifier, "keyid:always"}}) {
    s = addExtension(cert.get(), &ctx, nid, value);
    if (!s.ok()) return s;
  }
  s = addNames(cert.get(), {}, request.uris);
  if (!s.ok()) return s;
  if (X509_sign(cert.get(), key->get(), EVP_sha256()) == 0) return sslError("signing the CA");
  auto certPem = certToPem(cert.get());
  if (!certPem.ok()) return certPem.status();
  auto keyPem = keyToPem(key->get());
  if (!keyPem.ok()) return keyPem.status();
  CertificateSummary summary = summaryOf(cert.get());
  auto keys = std::make_shared<Keys>();
  keys->cert = std::move(cert);
  keys->key = std::move(*key);
  return X509Authority(std::move(keys), std::move(*certPem), std::move(*keyPem),
                       std::move(summary));
}

StatusOr<X509Authority> X509Authority::load(std::string_view certPem, std::string_view keyPem) {
  auto cert = parseCert(certPem);
  if (!cert.ok()) return invalidArgument("CA certificate: " + cert.status().message());
  auto key = parseKey(keyPem);
  if (!key.ok()) return invalidArgument("CA key: " + key.status().message());
  if (X509_check_private_key(cert->get(), key->get()) != 1) {
    ERR_clear_error();
    return invalidArgument("CA key: does not belong to the CA certificate");
  }
  CertificateSummary summary = summaryOf(cert->get());
  if (!summary.isCa) {
    return invalidArgument("CA certificate: is not a CA (basicConstraints CA:FALSE)");
  }
  auto keys = std::make_shared<Keys>();
  keys->cert = std::move(*cert);
  keys->key = std::move(*key);
  auto canonical = certToPem(keys->cert.get());
  if (!canonical.ok()) return canonical.status();
  return X509Authority(std::move(keys), std::move(*canonical), std::string(keyPem),
                       std::move(summary));
}

StatusOr<IssuedCertificate> X509Authority::issue(const LeafRequest& request) const {
  if (request.dnsNames.empty() && request.uris.empty()) {
    return invalidArgument("a certificate needs at least one DNS name or URI");
  }
  if (request.notAfter > summary_.notAfter) {
    return failedPrecondition("the CA expires at " + formatRfc3339(summary_.notAfter) +
                              ", before the certificate would (" + formatRfc3339(request.notAfter) +
                              "): rotate the CA");
  }
  auto key = newP256Key();
  if (!key.ok()) return key.status();
  X509Ptr cert(X509_new());
  Status s =
      prepare(cert.get(), key->get(), request.notBefore, request.notAfter, request.commonName);
  if (!s.ok()) return s;
  s = addNames(cert.get(), request.dnsNames, request.uris);
  if (!s.ok()) return s;
  std::string extendedUsage;
  if (request.serverAuth) extendedUsage = "serverAuth";
  if (request.clientAuth) extendedUsage += extendedUsage.empty() ? "clientAuth" : ",clientAuth";
  std::lock_guard lock(keys_->signMu);
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(keys_->cert.get())) != 1) {
    return sslError("setting the issuer");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, keys_->cert.get(), cert.get(), nullptr, nullptr, 0);
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyAgreement"},
      {NID_subject_key_identifier, "hash"},
      {NID_authority_key_identifier, "keyid:always"}};
  if (!extendedUsage.empty()) extensions.emplace_back(NID_ext_key_usage, extendedUsage);
  for (const auto& [nid, value] : extensions) {
    s = addExtension(cert.get(), &ctx, nid, value);
    if (!s.ok()) return s;
  }
  if (X509_sign(cert.get(), keys_->key.get(), EVP_sha256()) == 0) {
    return sslError("signing a certificate");
  }
  auto certPem = certToPem(cert.get());
  if (!certPem.ok()) return certPem.status();
  auto keyPem = keyToPem(key->get());
  if (!keyPem.ok()) return keyPem.status();
  return IssuedCertificate{std::move(*certPem), std::move(*keyPem), summaryOf(cert.get())};
}

bool X509Authority::signedByThis(std::string_view leafPem) const {
  auto leaf = parseCert(leafPem);
  if (!leaf.ok()) return false;
  std::lock_guard lock(keys_->signMu);
  const bool ok = X509_verify(leaf->get(), keys_->key.get()) == 1 &&
                  X509_check_issued(keys_->cert.get(), leaf->get()) == X509_V_OK;
  ERR_clear_error();
  return ok;
}

StatusOr<std::string> X509Authority::signCrl(const std::vector<RevokedSerial>& entries,
                                             TimePoint thisUpdate, TimePoint nextUpdate,
                                             uint64_t number) const {
  CrlPtr crl(X509_CRL_new());
  AsnTimePtr last(ASN1_TIME_set(nullptr, toTimeT(thisUpdate)));
  AsnTimePtr next(ASN1_TIME_set(nullptr, toTimeT(nextUpdate)));
  std::lock_guard lock(keys_->signMu);
  if (X509_CRL_set_version(crl.get(), 1) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(keys_->cert.get())) != 1 || !last ||
      !next || X509_CRL_set1_lastUpdate(crl.get(), last.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next.get()) != 1) {
    return sslError("preparing a CRL");
  }
  for (const RevokedSerial& e : entries) {
    auto serial = serialFromHex(e.serialHex);
    if (!serial.ok()) return serial.status();
    X509_REVOKED* revoked = X509_REVOKED_new();
    AsnTimePtr when(ASN1_TIME_set(nullptr, toTimeT(e.revokedAt)));
    if (revoked == nullptr || !when || X509_REVOKED_set_serialNumber(revoked, serial->get()) != 1 ||
        X509_REVOKED_set_revocationDate(revoked, when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), revoked) != 1) {
      X509_REVOKED_free(revoked);
      return sslError("adding serial " + e.serialHex + " to a CRL");
    }
  }
  X509_CRL_sort(crl.get());
  BnPtr numberBn(BN_new());
  if (!numberBn || BN_set_word(numberBn.get(), number) != 1) return sslError("CRL number");
  AsnIntPtr crlNumber(BN_to_ASN1_INTEGER(numberBn.get(), nullptr));
  if (!crlNumber || X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, crlNumber.get(), 0, 0) != 1) {
    return sslError("adding the CRL number");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, keys_->cert.get(), nullptr, nullptr, crl.get(), 0);
  ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1) {
    return sslError("adding the CRL's authority key identifier");
  }
  if (X509_CRL_sign(crl.get(), keys_->key.get(), EVP_sha256()) == 0) {
    return sslError("signing a CRL");
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (PEM_write_bio_X509_CRL(bio.get(), crl.get()) != 1) return sslError("encoding a CRL");
  return bioText(bio.get());
}

}  // namespace tasklease
