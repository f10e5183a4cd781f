#include "tests/kube/test_pki.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <stdexcept>

namespace tasklease::kube::testing {
namespace {

std::string bioString(BIO* bio) {
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(len));
  BIO_free(bio);
  return out;
}

EVP_PKEY* newKey() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (key == nullptr) throw std::runtime_error("EVP_EC_gen failed");
  return key;
}

EVP_PKEY* readKey(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (key == nullptr) throw std::runtime_error("bad key PEM");
  return key;
}

X509* readCert(const std::string& pem) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) throw std::runtime_error("bad certificate PEM");
  return cert;
}

void addExtension(X509* cert, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

KeyPair finish(X509* cert, EVP_PKEY* key, EVP_PKEY* signer) {
  X509_sign(cert, signer, EVP_sha256());
  BIO* certBio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(certBio, cert);
  BIO* keyBio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(keyBio, key, nullptr, nullptr, 0, nullptr, nullptr);
  return {bioString(certBio), bioString(keyBio)};
}

X509* newCert(EVP_PKEY* key, const std::string& cn, const std::vector<std::string>& orgs,
              long serial) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  for (const auto& o : orgs) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                               reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

}  // namespace

KeyPair makeCa(const std::string& commonName) {
  EVP_PKEY* key = newKey();
  X509* cert = newCert(key, commonName, {}, 1);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  addExtension(cert, cert, NID_basic_constraints, "critical,CA:TRUE");
  addExtension(cert, cert, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature");
  KeyPair out = finish(cert, key, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

KeyPair issueClientCert(const KeyPair& ca, const std::string& user,
                        const std::vector<std::string>& groups) {
  EVP_PKEY* caKey = readKey(ca.keyPem);
  X509* caCert = readCert(ca.certPem);
  EVP_PKEY* key = newKey();
  static long serial = 100;
  X509* cert = newCert(key, user, groups, ++serial);
  X509_set_issuer_name(cert, X509_get_subject_name(caCert));
  addExtension(cert, caCert, NID_basic_constraints, "critical,CA:FALSE");
  addExtension(cert, caCert, NID_key_usage, "critical,digitalSignature,keyEncipherment");
  addExtension(cert, caCert, NID_ext_key_usage, "clientAuth");
  KeyPair out = finish(cert, key, caKey);
  X509_free(cert);
  EVP_PKEY_free(key);
  X509_free(caCert);
  EVP_PKEY_free(caKey);
  return out;
}

}  // namespace tasklease::kube::testing
