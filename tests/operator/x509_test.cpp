#include "operator/x509.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "common/base64.h"
#include "operator/ca_store.h"
#include "operator/crl.h"
#include "operator/objects.h"
#include "tests/mocks/fake_api_client.h"

namespace tasklease::op {
namespace {

using std::chrono::hours;

// Independent checks with OpenSSL directly, not through the code under test.
struct Pem {
  static std::unique_ptr<X509, decltype(&X509_free)> cert(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    return {PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free};
  }
  static std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(const std::string& pem) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
    return {PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr), &X509_CRL_free};
  }
};

class X509Test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto generated =
        CertificateAuthority::generate("example.org", now - hours(1), now + hours(24 * 365));
    ASSERT_TRUE(generated.ok()) << generated.status().toString();
    ca = std::make_unique<CertificateAuthority>(std::move(*generated));
  }
  TimePoint now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::unique_ptr<CertificateAuthority> ca;
};

TEST_F(X509Test, TheCaIsACaForItsTrustDomainAndLoadsBackFromPem) {
  EXPECT_TRUE(ca->info().isCa);
  EXPECT_EQ(ca->info().uris, std::vector<std::string>{"spiffe://example.org"});
  auto loaded = CertificateAuthority::load(ca->certPem(), ca->keyPem());
  ASSERT_TRUE(loaded.ok()) << loaded.status().toString();
  EXPECT_EQ(loaded->info().fingerprint, ca->info().fingerprint);
  auto other = CertificateAuthority::generate("example.org", now, now + hours(48));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(CertificateAuthority::load(ca->certPem(), other->keyPem()).status().message(),
            "CA key: does not belong to the CA certificate");
}

TEST_F(X509Test, AnSvidVerifiesAgainstItsCaAndCarriesOnlyTheSpiffeIdUntilNotAfter) {
  const TimePoint notAfter = now + hours(1);
  auto leaf = ca->issueSvid("spiffe://example.org/ns/team-a/task/t1", "t1", now, notAfter);
  ASSERT_TRUE(leaf.ok()) << leaf.status().toString();
  EXPECT_EQ(leaf->info.uris, std::vector<std::string>{"spiffe://example.org/ns/team-a/task/t1"});
  EXPECT_EQ(leaf->info.notAfter, notAfter);
  EXPECT_FALSE(leaf->info.isCa);
  EXPECT_TRUE(ca->signedByThis(leaf->certPem));

  auto cert = Pem::cert(leaf->certPem);
  auto caCert = Pem::cert(ca->certPem());
  ASSERT_TRUE(cert && caCert);
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(caCert.get())), 1);
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  ASSERT_NE(key, nullptr);
  EXPECT_EQ(EVP_PKEY_get_base_id(key), EVP_PKEY_EC);
  char group[64] = {};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
  EXPECT_STREQ(group, "prime256v1");
  // The key in the PEM belongs to the certificate.
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(leaf->keyPem.data(), static_cast<int>(leaf->keyPem.size())), &BIO_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> priv(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  EXPECT_EQ(X509_check_private_key(cert.get(), priv.get()), 1);
}

TEST_F(X509Test, AnotherCaDidNotSignIt) {
  auto leaf = ca->issueSvid("spiffe://example.org/ns/a/task/b", "b", now, now + hours(1));
  auto other = CertificateAuthority::generate("example.org", now, now + hours(48));
  ASSERT_TRUE(leaf.ok() && other.ok());
  EXPECT_FALSE(other->signedByThis(leaf->certPem));
}

TEST_F(X509Test, NoCertificateOutlivesItsCa) {
  auto leaf = ca->issueSvid("spiffe://example.org/ns/a/task/b", "b", now, now + hours(24 * 400));
  EXPECT_EQ(leaf.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(leaf.status().message().find("rotate the CA"), std::string::npos);
}

TEST_F(X509Test, TheCrlIsSignedByTheCaAndListsTheSerials) {
  auto leaf = ca->issueSvid("spiffe://example.org/ns/a/task/b", "b", now, now + hours(1));
  ASSERT_TRUE(leaf.ok());
  auto pem = ca->signCrl({{leaf->info.serialHex, now}}, now, now + hours(24), 7);
  ASSERT_TRUE(pem.ok()) << pem.status().toString();
  auto crl = Pem::crl(*pem);
  auto caCert = Pem::cert(ca->certPem());
  ASSERT_TRUE(crl && caCert);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(caCert.get())), 1);
  X509_REVOKED* found = nullptr;
  auto cert = Pem::cert(leaf->certPem);
  EXPECT_EQ(X509_CRL_get0_by_cert(crl.get(), &found, cert.get()), 1);
  std::unique_ptr<ASN1_INTEGER, decltype(&ASN1_INTEGER_free)> number(
      static_cast<ASN1_INTEGER*>(X509_CRL_get_ext_d2i(crl.get(), NID_crl_number, nullptr, nullptr)),
      &ASN1_INTEGER_free);
  ASSERT_TRUE(number);
  EXPECT_EQ(ASN1_INTEGER_get(number.get()), 7);
}

// ---- the CA Secret and the CRL ConfigMap ----

class CaStoreTest : public ::testing::Test {
 protected:
  CaOptions options() {
    return {{"tasklease-system", "tasklease-ca"}, "example.org", hours(24 * 60), hours(24 * 30)};
  }
  kube::FakeApiClient fake;
  TimePoint now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::function<TimePoint()> clock = [this] { return now; };
};

TEST_F(CaStoreTest, TheFirstStartCreatesTheSecretAndLaterStartsLoadIt) {
  CaStore first(fake, options(), clock);
  auto created = first.ensure();
  ASSERT_TRUE(created.ok()) << created.status().toString();
  auto secret = fake.object(kube::resources::kSecrets, {"tasklease-system", "tasklease-ca"});
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ((*secret)["type"], "kubernetes.io/tls");
  EXPECT_FALSE((*secret)["metadata"]["labels"].contains("app.kubernetes.io/managed-by"));
  CaStore second(fake, options(), clock);
  auto loaded = second.ensure();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->current.info().fingerprint, (*created)->current.info().fingerprint);
}

TEST_F(CaStoreTest, ACaNearItsEndIsRotatedAndTheOldOneKeptUntilItExpires) {
  CaStore store(fake, options(), clock);
  auto first = store.ensure();
  ASSERT_TRUE(first.ok());
  const std::string oldPrint = (*first)->current.info().fingerprint;
  now += hours(24 * 31);  // 29 days left: under rotateBefore
  auto rotated = store.ensure();
  ASSERT_TRUE(rotated.ok()) << rotated.status().toString();
  EXPECT_NE((*rotated)->current.info().fingerprint, oldPrint);
  ASSERT_TRUE((*rotated)->previous.has_value());
  EXPECT_EQ((*rotated)->previous->info().fingerprint, oldPrint);
  EXPECT_NE((*rotated)->bundlePem().find((*rotated)->previous->certPem()), std::string::npos);
  now += hours(24 * 30);  // the old CA has expired
  auto pruned = store.ensure();
  ASSERT_TRUE(pruned.ok());
  EXPECT_FALSE((*pruned)->previous.has_value());
  EXPECT_EQ((*pruned)->current.info().fingerprint, (*rotated)->current.info().fingerprint);
}

TEST_F(CaStoreTest, ABrokenSecretIsReportedNotReplaced) {
  ASSERT_TRUE(
      fake.create(kube::resources::kSecrets,
                  {{"metadata", {{"name", "tasklease-ca"}, {"namespace", "tasklease-system"}}},
                   {"data", {{"tls.crt", base64Encode("not a cert")}}}})
          .ok());
  CaStore store(fake, options(), clock);
  auto result = store.ensure();
  EXPECT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("data.tls.crt and data.tls.key"), std::string::npos)
      << result.status().message();
  EXPECT_EQ(fake.object(kube::resources::kSecrets, {"tasklease-system", "tasklease-ca"})
                ->value("data", Json::object())
                .size(),
            1u);
}

TEST_F(CaStoreTest, RevokedSerialsAreOnTheCrlUntilTheirCertificateExpires) {
  CaStore store(fake, options(), clock);
  auto cas = store.ensure();
  ASSERT_TRUE(cas.ok());
  CrlPublisher crl(fake, store, {{"tasklease-system", "tasklease-crl"}, hours(24)}, clock);
  auto leaf =
      (*cas)->current.issueSvid("spiffe://example.org/ns/a/task/b", "b", now, now + hours(1));
  ASSERT_TRUE(leaf.ok());
  const RevokedCertificate entry{leaf->info.serialHex, (*cas)->current.info().fingerprint, now,
                                 leaf->info.notAfter, "a/b"};
  ASSERT_TRUE(crl.revoke(entry).ok());
  const auto published = [&] {
    auto cm = fake.object(kube::resources::kConfigMaps, {"tasklease-system", "tasklease-crl"});
    return cm ? (*cm)["data"]["crl.pem"].get<std::string>() : std::string();
  };
  auto listed = Pem::crl(published());
  auto cert = Pem::cert(leaf->certPem);
  X509_REVOKED* found = nullptr;
  ASSERT_TRUE(listed);
  EXPECT_EQ(X509_CRL_get0_by_cert(listed.get(), &found, cert.get()), 1);

  // Revoking again changes nothing.
  const int64_t version = fake.resourceVersion();
  ASSERT_TRUE(crl.revoke(entry).ok());
  EXPECT_EQ(fake.resourceVersion(), version);

  // Once the certificate has expired, the entry goes.
  now += hours(2);
  ASSERT_TRUE(crl.refresh().ok());
  auto later = Pem::crl(published());
  ASSERT_TRUE(later);
  EXPECT_EQ(X509_CRL_get0_by_cert(later.get(), &found, cert.get()), 0);
}

TEST_F(CaStoreTest, RefreshPublishesAnEmptyCrlOnFirstUseAndReSignsAfterHalfItsValidity) {
  CaStore store(fake, options(), clock);
  ASSERT_TRUE(store.ensure().ok());
  CrlPublisher crl(fake, store, {{"tasklease-system", "tasklease-crl"}, hours(24)}, clock);
  ASSERT_TRUE(crl.refresh().ok());
  ASSERT_TRUE(fake.object(kube::resources::kConfigMaps, {"tasklease-system", "tasklease-crl"}));
  const int64_t version = fake.resourceVersion();
  ASSERT_TRUE(crl.refresh().ok());
  EXPECT_EQ(fake.resourceVersion(), version);
  now += hours(13);
  ASSERT_TRUE(crl.refresh().ok());
  EXPECT_GT(fake.resourceVersion(), version);
}

}  // namespace
}  // namespace tasklease::op
