#include "webhook/cert_manager.h"

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <thread>

#include "common/base64.h"
#include "common/x509.h"
#include "tests/common/tls_test_pki.h"
#include "tests/mocks/fake_api_client.h"

namespace tasklease::webhook {
namespace {

namespace fs = std::filesystem;
using kube::resources::kMutatingWebhookConfigurations;
using kube::resources::kSecrets;
using kube::resources::kValidatingWebhookConfigurations;
using std::chrono::hours;

constexpr char kHost[] = "tasklease-webhook.tasklease-system.svc";

// Forwards to the fake, running `before` ahead of the first matching call outside the fake's
// lock: the other replica's move in a race.
class RacingClient final : public kube::ApiClient {
 public:
  RacingClient(kube::FakeApiClient& fake, std::string verb, std::function<void()> before)
      : fake_(fake), verb_(std::move(verb)), before_(std::move(before)) {}

  StatusOr<Json> get(const kube::ResourceRef& r, const kube::ObjectKey& k,
                     const kube::CallOptions& c) override {
    return fake_.get(r, k, c);
  }
  StatusOr<Json> list(const kube::ResourceRef& r, const std::string& ns, const kube::ListOptions& o,
                      const kube::CallOptions& c) override {
    return fake_.list(r, ns, o, c);
  }
  StatusOr<Json> create(const kube::ResourceRef& r, const Json& obj, const kube::WriteOptions& o,
                        const kube::CallOptions& c) override {
    race("create", r);
    return fake_.create(r, obj, o, c);
  }
  StatusOr<Json> update(const kube::ResourceRef& r, const Json& obj, const kube::WriteOptions& o,
                        const kube::CallOptions& c) override {
    race("update", r);
    return fake_.update(r, obj, o, c);
  }
  StatusOr<Json> updateStatus(const kube::ResourceRef& r, const Json& obj,
                              const kube::WriteOptions& o, const kube::CallOptions& c) override {
    return fake_.updateStatus(r, obj, o, c);
  }
  StatusOr<Json> patch(const kube::ResourceRef& r, const kube::ObjectKey& k, const Json& p,
                       const kube::PatchOptions& o, const kube::CallOptions& c) override {
    return fake_.patch(r, k, p, o, c);
  }
  Status remove(const kube::ResourceRef& r, const kube::ObjectKey& k, const kube::DeleteOptions& o,
                const kube::CallOptions& c) override {
    return fake_.remove(r, k, o, c);
  }
  StatusOr<Json> removeCollection(const kube::ResourceRef& r, const std::string& ns,
                                  const kube::ListOptions& selection, const kube::DeleteOptions& o,
                                  const kube::CallOptions& c) override {
    return fake_.removeCollection(r, ns, selection, o, c);
  }
  StatusOr<Json> createSubresource(const kube::ResourceRef& r, const kube::ObjectKey& k,
                                   const std::string& sub, const Json& body,
                                   const kube::CallOptions& c) override {
    return fake_.createSubresource(r, k, sub, body, c);
  }
  Status watch(const kube::ResourceRef& r, const std::string& ns, const kube::WatchOptions& o,
               const kube::WatchHandler& h, const kube::CallOptions& c) override {
    return fake_.watch(r, ns, o, h, c);
  }

 private:
  void race(const std::string& verb, const kube::ResourceRef& r) {
    if (verb != verb_ || r.resource != "secrets" || !before_) return;
    auto before = std::move(before_);
    before_ = nullptr;
    before();
  }

  kube::FakeApiClient& fake_;
  std::string verb_;
  std::function<void()> before_;
};

Json webhookConfiguration(const std::string& kind, const std::string& name, int hooks) {
  Json webhooks = Json::array();
  for (int i = 0; i < hooks; ++i) {
    webhooks.push_back(
        {{"name", "h" + std::to_string(i) + ".tasklease.io"},
         {"clientConfig",
          {{"service",
            {{"name", "tasklease-webhook"}, {"namespace", "tasklease-system"}, {"path", "/x"}}}}},
         {"admissionReviewVersions", {"v1"}},
         {"sideEffects", "None"}});
  }
  return {{"apiVersion", "admissionregistration.k8s.io/v1"},
          {"kind", kind},
          {"metadata", {{"name", name}}},
          {"webhooks", webhooks}};
}

std::string readText(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class CertManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() /
          ("cert-manager-test-" + std::to_string(::getpid()) + "-" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir / "a");
    fs::create_directories(dir / "b");
    ASSERT_TRUE(fake.create(kValidatingWebhookConfigurations,
                            webhookConfiguration("ValidatingWebhookConfiguration", "tasklease", 2))
                    .ok());
    ASSERT_TRUE(fake.create(kMutatingWebhookConfigurations,
                            webhookConfiguration("MutatingWebhookConfiguration", "tasklease", 1))
                    .ok());
  }
  void TearDown() override { fs::remove_all(dir); }

  CertManagerOptions options(const std::string& replica) {
    CertManagerOptions o;
    o.validatingConfigurations = {"tasklease"};
    o.mutatingConfigurations = {"tasklease"};
    o.certDir = (dir / replica).string();
    o.caValidity = hours(24 * 360);
    o.certValidity = hours(24 * 30);
    o.caOverlap = hours(24);
    return o;
  }
  std::unique_ptr<CertManager> manager(const std::string& replica,
                                       kube::ApiClient* client = nullptr) {
    return std::make_unique<CertManager>(client ? *client : fake, options(replica),
                                         [this] { return now; });
  }

  // Every caBundle of both configurations, decoded; they must all be equal.
  std::string publishedBundle() {
    std::string bundle;
    for (const auto* ref : {&kValidatingWebhookConfigurations, &kMutatingWebhookConfigurations}) {
      auto config = fake.object(*ref, {"", "tasklease"});
      for (const Json& hook : (*config)["webhooks"]) {
        auto decoded = base64Decode(hook["clientConfig"].value("caBundle", ""));
        EXPECT_TRUE(decoded.has_value());
        if (bundle.empty()) bundle = decoded.value_or("");
        EXPECT_EQ(decoded.value_or(""), bundle) << "caBundles differ";
      }
    }
    return bundle;
  }
  std::string servedCert(const std::string& replica) { return readText(dir / replica / "tls.crt"); }
  std::string servedKey(const std::string& replica) { return readText(dir / replica / "tls.key"); }
  int verifyServed(const std::string& replica) {
    return testing::verifyServerCertificate(servedCert(replica), publishedBundle(), kHost,
                                            std::chrono::system_clock::to_time_t(now));
  }
  std::string secretField(const std::string& key) {
    auto secret = fake.object(kSecrets, {"tasklease-system", "tasklease-webhook-tls"});
    if (!secret) return {};
    return base64Decode((*secret)["data"].value(key, "")).value_or("");
  }
  size_t secretWrites() {
    size_t n = 0;
    for (const auto& a : fake.actions()) {
      if (a.resource == "secrets" && (a.verb == "create" || a.verb == "update")) ++n;
    }
    return n;
  }

  kube::FakeApiClient fake;
  fs::path dir;
  TimePoint now =
      std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
};

TEST_F(CertManagerTest, TheFirstSyncCreatesTheSecretPublishesItsCaAndWritesTheFiles) {
  auto result = manager("a")->syncOnce();
  ASSERT_TRUE(result.ok()) << result.status().toString();

  auto secret = fake.object(kSecrets, {"tasklease-system", "tasklease-webhook-tls"});
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ((*secret)["type"], "kubernetes.io/tls");
  EXPECT_EQ((*secret)["metadata"]["labels"]["app.kubernetes.io/managed-by"], "tasklease-webhook");
  const Json& owner = (*secret)["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["kind"], "ValidatingWebhookConfiguration");
  EXPECT_EQ(owner["uid"],
            kube::uidOf(*fake.object(kValidatingWebhookConfigurations, {"", "tasklease"})));

  EXPECT_EQ(servedCert("a"), secretField("tls.crt"));
  EXPECT_EQ(servedKey("a"), secretField("tls.key"));
  EXPECT_EQ(fs::status(dir / "a" / "tls.key").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_EQ(publishedBundle(), secretField("ca.crt"));
  EXPECT_EQ(splitCertificates(publishedBundle()).size(), 1U);
  EXPECT_EQ(result->patchedConfigurations,
            (std::vector<std::string>{"ValidatingWebhookConfiguration/tasklease",
                                      "MutatingWebhookConfiguration/tasklease"}));

  EXPECT_EQ(verifyServed("a"), X509_V_OK);
  for (const char* name : {"tasklease-webhook", "tasklease-webhook.tasklease-system",
                           "tasklease-webhook.tasklease-system.svc.cluster.local"}) {
    EXPECT_EQ(testing::verifyServerCertificate(servedCert("a"), publishedBundle(), name,
                                               std::chrono::system_clock::to_time_t(now)),
              X509_V_OK)
        << name;
  }
  EXPECT_EQ(testing::verifyServerCertificate(servedCert("a"), publishedBundle(),
                                             "tasklease-webhook.default.svc",
                                             std::chrono::system_clock::to_time_t(now)),
            X509_V_ERR_HOSTNAME_MISMATCH);
}

TEST_F(CertManagerTest, ASecondPassChangesNothing) {
  auto certs = manager("a");
  ASSERT_TRUE(certs->syncOnce().ok());
  fake.clearActions();
  auto again = certs->syncOnce();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->changes.empty());
  EXPECT_TRUE(again->patchedConfigurations.empty());
  EXPECT_FALSE(again->filesWritten);
  EXPECT_EQ(secretWrites(), 0U);
}

TEST_F(CertManagerTest, TwoReplicasServeTheSameCertificateFromTheSecret) {
  ASSERT_TRUE(manager("a")->syncOnce().ok());
  auto b = manager("b")->syncOnce();
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->changes.empty());
  EXPECT_EQ(servedCert("a"), servedCert("b"));
  EXPECT_EQ(servedKey("a"), servedKey("b"));
  EXPECT_EQ(secretWrites(), 1U);
}

TEST_F(CertManagerTest, AReplicaThatLosesTheCreateRaceServesTheWinnersCertificate) {
  auto b = manager("b");
  RacingClient racing(fake, "create", [&] { ASSERT_TRUE(b->syncOnce().ok()); });
  auto a = manager("a", &racing)->syncOnce();
  ASSERT_TRUE(a.ok()) << a.status().toString();
  EXPECT_TRUE(a->changes.empty());  // a's own certificate was never stored
  EXPECT_EQ(servedCert("a"), secretField("tls.crt"));
  EXPECT_EQ(servedCert("a"), servedCert("b"));
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, AReplicaThatLosesARotationRaceKeepsTheWinnersRotation) {
  ASSERT_TRUE(manager("a")->syncOnce().ok());
  now += hours(24 * 21);  // past 2/3 of the serving certificate's 30 days
  auto b = manager("b");
  RacingClient racing(fake, "update", [&] { ASSERT_TRUE(b->syncOnce().ok()); });
  const size_t writesBefore = secretWrites();
  auto a = manager("a", &racing)->syncOnce();
  ASSERT_TRUE(a.ok()) << a.status().toString();
  EXPECT_EQ(secretWrites() - writesBefore, 2U);  // b's update, then a's refused one
  EXPECT_TRUE(a->changes.empty());
  EXPECT_EQ(servedCert("a"), servedCert("b"));
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, TheServingCertificateIsRenewedAtTwoThirdsOfItsLifeUnderTheSameCa) {
  auto certs = manager("a");
  ASSERT_TRUE(certs->syncOnce().ok());
  const std::string first = servedCert("a");
  const std::string bundle = publishedBundle();
  const auto issued = inspectCertificate(first);
  ASSERT_TRUE(issued.ok());
  // Issued an hour back for 30 days: 2/3 of 30 days and one hour from the notBefore.
  const TimePoint due = issued->notBefore + (issued->notAfter - issued->notBefore) * 2 / 3;

  now = due - std::chrono::seconds(1);
  auto before = certs->syncOnce();
  ASSERT_TRUE(before.ok());
  EXPECT_TRUE(before->changes.empty());
  EXPECT_EQ(servedCert("a"), first);

  now = due;
  auto renewed = certs->syncOnce();
  ASSERT_TRUE(renewed.ok());
  EXPECT_EQ(renewed->changes,
            std::vector<std::string>{"serving certificate issued: 2/3 of its life has passed"});
  EXPECT_NE(servedCert("a"), first);
  EXPECT_TRUE(renewed->filesWritten);
  EXPECT_TRUE(renewed->patchedConfigurations.empty());
  EXPECT_EQ(publishedBundle(), bundle);
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, ANewCaIsTrustedForTheOverlapBeforeItSignsAndTheOldStaysUntilItExpires) {
  auto certs = manager("a");
  ASSERT_TRUE(certs->syncOnce().ok());
  const auto oldCa = inspectCertificate(secretField("signing-ca.crt"));
  ASSERT_TRUE(oldCa.ok());
  const TimePoint due = oldCa->notBefore + (oldCa->notAfter - oldCa->notBefore) * 2 / 3;

  now = due;
  auto staged = certs->syncOnce();
  ASSERT_TRUE(staged.ok());
  ASSERT_FALSE(staged->changes.empty());
  EXPECT_EQ(staged->changes[0], "next CA staged: trusted now, signs after the overlap");
  EXPECT_EQ(splitCertificates(publishedBundle()).size(), 2U);
  const std::string nextCa = secretField("next-ca.crt");
  ASSERT_FALSE(nextCa.empty());
  auto signing = X509Authority::load(secretField("signing-ca.crt"), secretField("signing-ca.key"));
  ASSERT_TRUE(signing.ok());
  EXPECT_EQ(signing->summary().fingerprint, oldCa->fingerprint);
  EXPECT_TRUE(signing->signedByThis(servedCert("a")));

  now = due + hours(24) - std::chrono::seconds(1);
  ASSERT_TRUE(certs->syncOnce().ok());
  EXPECT_EQ(secretField("next-ca.crt"), nextCa);

  now = due + hours(24);
  auto promoted = certs->syncOnce();
  ASSERT_TRUE(promoted.ok());
  EXPECT_EQ(promoted->changes[0],
            "next CA promoted: it signs from now on, the previous one stays trusted");
  EXPECT_EQ(secretField("signing-ca.crt"), nextCa);
  EXPECT_TRUE(secretField("next-ca.crt").empty());
  auto newSigning =
      X509Authority::load(secretField("signing-ca.crt"), secretField("signing-ca.key"));
  ASSERT_TRUE(newSigning.ok());
  EXPECT_TRUE(newSigning->signedByThis(servedCert("a")));
  EXPECT_EQ(splitCertificates(publishedBundle()).size(), 2U);
  EXPECT_EQ(verifyServed("a"), X509_V_OK);

  now = oldCa->notAfter;
  auto dropped = certs->syncOnce();
  ASSERT_TRUE(dropped.ok());
  EXPECT_NE(
      std::find(dropped->changes.begin(), dropped->changes.end(), "expired CA left the bundle"),
      dropped->changes.end());
  EXPECT_EQ(splitCertificates(publishedBundle()), std::vector<std::string>{nextCa});
}

TEST_F(CertManagerTest, OverTwoYearsEveryServedCertificateVerifiesAgainstThePublishedBundle) {
  auto a = manager("a");
  auto b = manager("b");
  ASSERT_TRUE(a->syncOnce().ok());
  ASSERT_TRUE(b->syncOnce().ok());
  std::set<std::string> cas;
  for (int day = 0; day < 730; day += 2) {
    now += hours(48);
    ASSERT_TRUE(a->syncOnce().ok()) << "day " << day;
    ASSERT_EQ(verifyServed("a"), X509_V_OK) << "day " << day;
    // b runs every other step: its certificate is up to four days older than the Secret's.
    if (day % 4 == 0) {
      ASSERT_TRUE(b->syncOnce().ok());
    }
    ASSERT_EQ(verifyServed("b"), X509_V_OK) << "day " << day;
    cas.insert(secretField("signing-ca.crt"));
  }
  EXPECT_GE(cas.size(), 3U);  // the CA of 360 days was rotated at least twice
}

TEST_F(CertManagerTest, ACaBundleResetByAnUpgradeIsRestored) {
  auto certs = manager("a");
  ASSERT_TRUE(certs->syncOnce().ok());
  auto config = *fake.object(kValidatingWebhookConfigurations, {"", "tasklease"});
  config["webhooks"][1]["clientConfig"].erase("caBundle");
  ASSERT_TRUE(fake.update(kValidatingWebhookConfigurations, config).ok());
  auto restored = certs->syncOnce();
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(restored->patchedConfigurations,
            std::vector<std::string>{"ValidatingWebhookConfiguration/tasklease"});
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, AConfigurationCreatedLaterGetsTheBundleOnTheNextPass) {
  ASSERT_TRUE(fake.remove(kMutatingWebhookConfigurations, {"", "tasklease"}).ok());
  auto certs = manager("a");
  auto first = certs->syncOnce();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->missingConfigurations,
            std::vector<std::string>{"MutatingWebhookConfiguration/tasklease"});
  ASSERT_TRUE(fake.create(kMutatingWebhookConfigurations,
                          webhookConfiguration("MutatingWebhookConfiguration", "tasklease", 1))
                  .ok());
  auto second = certs->syncOnce();
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->patchedConfigurations,
            std::vector<std::string>{"MutatingWebhookConfiguration/tasklease"});
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, ASecretThatIsNotTheWebhooksIsNeverTouched) {
  const Json foreign = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", {{"name", "tasklease-webhook-tls"}, {"namespace", "tasklease-system"}}},
      {"data", {{"password", base64Encode("hunter2")}}}};
  ASSERT_TRUE(fake.create(kSecrets, foreign).ok());
  auto result = manager("a")->syncOnce();
  EXPECT_EQ(result.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(result.status().message().find("not labelled app.kubernetes.io/managed-by="
                                           "tasklease-webhook"),
            std::string::npos);
  EXPECT_EQ(secretField("password"), "hunter2");
  EXPECT_FALSE(fs::exists(dir / "a" / "tls.crt"));
}

TEST_F(CertManagerTest, AnUnreadablePartOfItsOwnSecretIsMadeAgain) {
  ASSERT_TRUE(manager("a")->syncOnce().ok());
  auto secret = *fake.object(kSecrets, {"tasklease-system", "tasklease-webhook-tls"});
  secret["data"]["signing-ca.key"] = base64Encode("not a key");
  ASSERT_TRUE(fake.update(kSecrets, secret).ok());
  auto repaired = manager("a")->syncOnce();
  ASSERT_TRUE(repaired.ok()) << repaired.status().toString();
  EXPECT_EQ(repaired->changes[0], "CA created: no usable signing CA");
  EXPECT_TRUE(
      X509Authority::load(secretField("signing-ca.crt"), secretField("signing-ca.key")).ok());
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, ACaThatExpiredWhileTheWebhookWasDownIsReplacedAtOnce) {
  ASSERT_TRUE(manager("a")->syncOnce().ok());
  now += hours(24 * 400);
  auto result = manager("a")->syncOnce();
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->changes[0], "CA created: the signing CA expired");
  EXPECT_EQ(splitCertificates(publishedBundle()).size(), 1U);
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, ARenamedServiceGetsACertificateForItsNewNames) {
  ASSERT_TRUE(manager("a")->syncOnce().ok());
  auto o = options("a");
  o.service = "tl-webhook";
  CertManager renamed(fake, o, [this] { return now; });
  auto result = renamed.syncOnce();
  ASSERT_TRUE(result.ok());
  ASSERT_EQ(result->changes.size(), 1U);
  EXPECT_EQ(result->changes[0].rfind("serving certificate issued: its names", 0), 0U);
  EXPECT_EQ(testing::verifyServerCertificate(servedCert("a"), publishedBundle(),
                                             "tl-webhook.tasklease-system.svc",
                                             std::chrono::system_clock::to_time_t(now)),
            X509_V_OK);
}

TEST_F(CertManagerTest, AFailedWriteIsReportedAndTheNextPassFinishesTheWork) {
  fake.failNext("update", "validatingwebhookconfigurations",
                Status(StatusCode::kInternal, "etcd unavailable"));
  auto certs = manager("a");
  auto failed = certs->syncOnce();
  EXPECT_FALSE(failed.ok());
  EXPECT_NE(failed.status().message().find("etcd unavailable"), std::string::npos);
  auto recovered = certs->syncOnce();
  ASSERT_TRUE(recovered.ok()) << recovered.status().toString();
  EXPECT_EQ(recovered->patchedConfigurations,
            std::vector<std::string>{"ValidatingWebhookConfiguration/tasklease"});
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST_F(CertManagerTest, MetricsShowExpiryAndErrors) {
  MetricsRegistry registry;
  auto certs = manager("a");
  certs->exportMetrics(registry);
  fake.failNext("get", "secrets", Status(StatusCode::kUnavailable, "down"));
  EXPECT_FALSE(certs->syncOnce().ok());
  ASSERT_TRUE(certs->syncOnce().ok());
  const std::string text = registry.render();
  const auto serving = inspectCertificate(servedCert("a"));
  ASSERT_TRUE(serving.ok());
  const std::string expiry = formatMetricValue(
      static_cast<double>(std::chrono::system_clock::to_time_t(serving->notAfter)));
  EXPECT_NE(text.find("tasklease_webhook_certificate_expiration_timestamp_seconds{certificate="
                      "\"serving\"} " +
                      expiry),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tasklease_webhook_certificate_sync_errors_total 1"), std::string::npos);
  EXPECT_NE(text.find("tasklease_webhook_certificate_secret_writes_total 1"), std::string::npos);
  EXPECT_NE(text.find("tasklease_webhook_certificate_cabundle_updates_total 2"), std::string::npos);
}

TEST_F(CertManagerTest, TheTimerRestoresAResetCaBundle) {
  auto certs = manager("a");
  ASSERT_TRUE(certs->syncOnce().ok());
  auto config = *fake.object(kMutatingWebhookConfigurations, {"", "tasklease"});
  config["webhooks"][0]["clientConfig"]["caBundle"] = "";
  ASSERT_TRUE(fake.update(kMutatingWebhookConfigurations, config).ok());
  certs->start(std::chrono::milliseconds(20));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    auto current = fake.object(kMutatingWebhookConfigurations, {"", "tasklease"});
    if ((*current)["webhooks"][0]["clientConfig"].value("caBundle", "") != "") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  certs->stop();
  EXPECT_EQ(verifyServed("a"), X509_V_OK);
}

TEST(CertManagerOptionsTest, OptionsThatCouldNotRotateSafelyAreRefused) {
  CertManagerOptions o;
  o.validatingConfigurations = {"tasklease"};
  EXPECT_TRUE(checkCertManagerOptions(o).ok());
  auto overlap = o;
  overlap.caOverlap = hours(24 * 130);
  EXPECT_EQ(checkCertManagerOptions(overlap).message(),
            "the CA overlap must be positive and less than a third of the CA's validity");
  auto inverted = o;
  inverted.certValidity = o.caValidity;
  EXPECT_EQ(checkCertManagerOptions(inverted).message(),
            "the CA's validity must exceed the serving certificate's");
  auto nowhere = o;
  nowhere.validatingConfigurations.clear();
  EXPECT_FALSE(checkCertManagerOptions(nowhere).ok());
  EXPECT_EQ(servingDnsNames(o),
            (std::vector<std::string>{"tasklease-webhook", "tasklease-webhook.tasklease-system",
                                      "tasklease-webhook.tasklease-system.svc",
                                      "tasklease-webhook.tasklease-system.svc.cluster.local"}));
}

}  // namespace
}  // namespace tasklease::webhook
