#include "common/x509.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <memory>

#include "tests/common/tls_test_pki.h"

namespace tasklease {
namespace {

using std::chrono::hours;

// Independent checks with OpenSSL directly, not through the code under test.
std::unique_ptr<X509, decltype(&X509_free)> parsePem(const std::string& pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  return {PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free};
}

int verifyForHost(const std::string& leafPem, const std::string& caPem, const std::string& host,
                  TimePoint at) {
  return testing::verifyServerCertificate(leafPem, caPem, host,
                                          std::chrono::system_clock::to_time_t(at));
}

class X509AuthorityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto generated = X509Authority::generate({.commonName = "test CA",
                                              .uris = {},
                                              .notBefore = now - hours(1),
                                              .notAfter = now + hours(24 * 365)});
    ASSERT_TRUE(generated.ok()) << generated.status().toString();
    ca = std::make_unique<X509Authority>(std::move(*generated));
  }
  LeafRequest serving(std::vector<std::string> names, TimePoint notAfter) {
    return {.commonName = names.empty() ? "" : names.front(),
            .dnsNames = std::move(names),
            .uris = {},
            .notBefore = now - hours(1),
            .notAfter = notAfter};
  }
  TimePoint now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
  std::unique_ptr<X509Authority> ca;
};

TEST_F(X509AuthorityTest, AServingCertificateVerifiesForItsDnsNamesOnlyUntilNotAfter) {
  const TimePoint notAfter = now + hours(24);
  auto leaf = ca->issue(serving({"svc.ns.svc", "svc.ns.svc.cluster.local"}, notAfter));
  ASSERT_TRUE(leaf.ok()) << leaf.status().toString();
  EXPECT_EQ(leaf->summary.dnsNames,
            (std::vector<std::string>{"svc.ns.svc", "svc.ns.svc.cluster.local"}));
  EXPECT_EQ(leaf->summary.notAfter, notAfter);
  EXPECT_FALSE(leaf->summary.isCa);
  EXPECT_TRUE(ca->signedByThis(leaf->certPem));
  EXPECT_TRUE(keyMatchesCertificate(leaf->certPem, leaf->keyPem));

  EXPECT_EQ(verifyForHost(leaf->certPem, ca->certPem(), "svc.ns.svc", now), X509_V_OK);
  EXPECT_EQ(verifyForHost(leaf->certPem, ca->certPem(), "svc.ns.svc.cluster.local", now),
            X509_V_OK);
  EXPECT_EQ(verifyForHost(leaf->certPem, ca->certPem(), "other.ns.svc", now),
            X509_V_ERR_HOSTNAME_MISMATCH);
  EXPECT_EQ(verifyForHost(leaf->certPem, ca->certPem(), "svc.ns.svc", notAfter + hours(1)),
            X509_V_ERR_CERT_HAS_EXPIRED);
}

TEST_F(X509AuthorityTest, AnotherCaDidNotSignItAndItsKeyDoesNotMatch) {
  auto leaf = ca->issue(serving({"a.example"}, now + hours(1)));
  auto other = X509Authority::generate({"other CA", {}, now, now + hours(48)});
  ASSERT_TRUE(leaf.ok() && other.ok());
  EXPECT_FALSE(other->signedByThis(leaf->certPem));
  EXPECT_FALSE(keyMatchesCertificate(leaf->certPem, other->keyPem()));
  EXPECT_NE(verifyForHost(leaf->certPem, other->certPem(), "a.example", now), X509_V_OK);
}

TEST_F(X509AuthorityTest, ACaLoadsBackFromPemAndRefusesAKeyThatIsNotItsOwn) {
  EXPECT_TRUE(ca->summary().isCa);
  auto loaded = X509Authority::load(ca->certPem(), ca->keyPem());
  ASSERT_TRUE(loaded.ok()) << loaded.status().toString();
  EXPECT_EQ(loaded->summary().fingerprint, ca->summary().fingerprint);
  auto other = X509Authority::generate({"other CA", {}, now, now + hours(48)});
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(X509Authority::load(ca->certPem(), other->keyPem()).status().message(),
            "CA key: does not belong to the CA certificate");
  auto leaf = ca->issue(serving({"a.example"}, now + hours(1)));
  ASSERT_TRUE(leaf.ok());
  EXPECT_EQ(X509Authority::load(leaf->certPem, leaf->keyPem).status().message(),
            "CA certificate: is not a CA (basicConstraints CA:FALSE)");
  EXPECT_EQ(X509Authority::load("junk", ca->keyPem()).status().message(),
            "CA certificate: not a PEM certificate");
}

TEST_F(X509AuthorityTest, NoCertificateOutlivesItsCaOrNamesNothing) {
  auto tooLong = ca->issue(serving({"a.example"}, now + hours(24 * 400)));
  EXPECT_EQ(tooLong.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(tooLong.status().message().find("rotate the CA"), std::string::npos);
  auto nameless = ca->issue(serving({}, now + hours(1)));
  EXPECT_EQ(nameless.status().code(), StatusCode::kInvalidArgument);
  auto spaced = ca->issue(serving({"a b.example"}, now + hours(1)));
  EXPECT_EQ(spaced.status().message(),
            "DNS name \"a b.example\" must be non-empty printable ASCII without spaces");
  auto backwards = ca->issue({"x", {"a.example"}, {}, now, now - hours(1)});
  EXPECT_EQ(backwards.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(X509AuthorityTest, AUriWithACommaStaysOneName) {
  auto leaf = ca->issue({.commonName = "t",
                         .dnsNames = {},
                         .uris = {"spiffe://example.org/a,DNS:evil.example"},
                         .notBefore = now,
                         .notAfter = now + hours(1),
                         .serverAuth = true,
                         .clientAuth = true});
  ASSERT_TRUE(leaf.ok()) << leaf.status().toString();
  EXPECT_EQ(leaf->summary.uris,
            std::vector<std::string>{"spiffe://example.org/a,DNS:evil.example"});
  EXPECT_TRUE(leaf->summary.dnsNames.empty());
}

TEST_F(X509AuthorityTest, TheCrlIsSignedByTheCaAndListsTheSerials) {
  auto leaf = ca->issue(serving({"a.example"}, now + hours(1)));
  ASSERT_TRUE(leaf.ok());
  auto pem = ca->signCrl({{leaf->summary.serialHex, now}}, now, now + hours(24), 7);
  ASSERT_TRUE(pem.ok()) << pem.status().toString();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size())), &BIO_free);
  std::unique_ptr<X509_CRL, decltype(&X509_CRL_free)> crl(
      PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr), &X509_CRL_free);
  auto caCert = parsePem(ca->certPem());
  ASSERT_TRUE(crl && caCert);
  EXPECT_EQ(X509_CRL_verify(crl.get(), X509_get0_pubkey(caCert.get())), 1);
  X509_REVOKED* found = nullptr;
  auto cert = parsePem(leaf->certPem);
  EXPECT_EQ(X509_CRL_get0_by_cert(crl.get(), &found, cert.get()), 1);
  EXPECT_EQ(ca->signCrl({{"xyz", now}}, now, now + hours(1), 1).status().message(),
            "serial \"xyz\" is not hexadecimal");
}

TEST(X509BundleTest, SplitCertificatesKeepsEachBlockInOrder) {
  const TimePoint now = std::chrono::system_clock::now();
  auto a = X509Authority::generate({"a", {}, now, now + hours(1)});
  auto b = X509Authority::generate({"b", {}, now, now + hours(1)});
  ASSERT_TRUE(a.ok() && b.ok());
  const std::string bundle = "# comment\n" + a->certPem() + "\n\n" + b->certPem();
  auto parts = splitCertificates(bundle);
  ASSERT_EQ(parts.size(), 2U);
  EXPECT_EQ(parts[0], a->certPem());
  EXPECT_EQ(parts[1], b->certPem());
  EXPECT_TRUE(splitCertificates("no certificates here").empty());
  EXPECT_EQ(inspectCertificate(parts[1])->commonName, "b");
}

}  // namespace
}  // namespace tasklease
