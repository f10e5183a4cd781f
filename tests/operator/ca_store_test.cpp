#include "operator/ca_store.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/base64.h"
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

TEST_F(CaStoreTest, AnSvidNamesOnlyItsSpiffeIdOnAP256KeyAndServesBothEnds) {
  CaStore store(fake, options(), clock);
  auto cas = store.ensure();
  ASSERT_TRUE(cas.ok()) << cas.status().toString();
  EXPECT_EQ((*cas)->current.summary().uris, std::vector<std::string>{"spiffe://example.org"});
  const TimePoint notAfter = now + hours(1);
  auto leaf = (*cas)->issueSvid("spiffe://example.org/ns/team-a/task/t1", "t1", now, notAfter);
  ASSERT_TRUE(leaf.ok()) << leaf.status().toString();
  EXPECT_EQ(leaf->summary.uris, std::vector<std::string>{"spiffe://example.org/ns/team-a/task/t1"});
  EXPECT_TRUE(leaf->summary.dnsNames.empty());
  EXPECT_EQ(leaf->summary.notAfter, notAfter);
  EXPECT_FALSE(leaf->summary.isCa);
  EXPECT_EQ((*cas)->issuerOf(leaf->certPem), &(*cas)->current);
  // Checked with OpenSSL directly, not through the code under test.
  auto cert = Pem::cert(leaf->certPem);
  ASSERT_TRUE(cert);
  EVP_PKEY* key = X509_get0_pubkey(cert.get());
  ASSERT_NE(key, nullptr);
  char group[64] = {};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_get_group_name(key, group, sizeof group, &len), 1);
  EXPECT_STREQ(group, "prime256v1");
  const uint32_t usage = X509_get_extended_key_usage(cert.get());
  EXPECT_TRUE(usage & XKU_SSL_CLIENT);
  EXPECT_TRUE(usage & XKU_SSL_SERVER);
  auto caCert = Pem::cert((*cas)->current.certPem());
  EXPECT_EQ(X509_verify(cert.get(), X509_get0_pubkey(caCert.get())), 1);
}

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
  EXPECT_EQ((*loaded)->current.summary().fingerprint, (*created)->current.summary().fingerprint);
}

TEST_F(CaStoreTest, ACaNearItsEndIsRotatedAndTheOldOneKeptUntilItExpires) {
  CaStore store(fake, options(), clock);
  auto first = store.ensure();
  ASSERT_TRUE(first.ok());
  const std::string oldPrint = (*first)->current.summary().fingerprint;
  now += hours(24 * 31);  // 29 days left: under rotateBefore
  auto rotated = store.ensure();
  ASSERT_TRUE(rotated.ok()) << rotated.status().toString();
  EXPECT_NE((*rotated)->current.summary().fingerprint, oldPrint);
  ASSERT_TRUE((*rotated)->previous.has_value());
  EXPECT_EQ((*rotated)->previous->summary().fingerprint, oldPrint);
  EXPECT_NE((*rotated)->bundlePem().find((*rotated)->previous->certPem()), std::string::npos);
  now += hours(24 * 30);  // the old CA has expired
  auto pruned = store.ensure();
  ASSERT_TRUE(pruned.ok());
  EXPECT_FALSE((*pruned)->previous.has_value());
  EXPECT_EQ((*pruned)->current.summary().fingerprint, (*rotated)->current.summary().fingerprint);
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
  auto leaf = (*cas)->issueSvid("spiffe://example.org/ns/a/task/b", "b", now, now + hours(1));
  ASSERT_TRUE(leaf.ok());
  const RevokedCertificate entry{leaf->summary.serialHex, (*cas)->current.summary().fingerprint,
                                 now, leaf->summary.notAfter, "a/b"};
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
