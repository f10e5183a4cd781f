#include "webhook/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/crypto.h"
#include "common/log.h"
#include "tests/common/http_test_client.h"
#include "tests/common/tls_test_pki.h"
#include "tests/webhook/fixtures.h"

namespace tasklease::webhook {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // NOLINT: the fixtures
using tasklease::testing::TestClient;
using tasklease::testing::TestClientOptions;

// A state whose caches can be declared unsynced, as before the informers' first list.
class SwitchableState : public ObjectSetClusterState {
 public:
  SwitchableState() : ObjectSetClusterState(standardState()) {}
  bool synced() const override { return synced_; }
  bool synced_ = true;
};

Json review(const Json& object, bool dryRun = false) {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "0f3c9d2e-uid"},
            {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
            {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
            {"name", "web"},
            {"namespace", "team-a"},
            {"operation", "CREATE"},
            {"userInfo", {{"username", "alice"}}},
            {"object", object},
            {"dryRun", dryRun}}}};
}

class WebhookServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) / ("webhook-" + randomHex(6));
    fs::create_directories(dir_);
    ca_ = tasklease::testing::makeTestCa("webhook-ca");
    auto leaf = tasklease::testing::issueTestServerCert(
        ca_, "tasklease-webhook.tasklease.svc",
        {"IP:127.0.0.1", "DNS:tasklease-webhook.tasklease.svc"});
    tasklease::testing::writeFile((dir_ / "tls.crt").string(), leaf.certPem);
    tasklease::testing::writeFile((dir_ / "tls.key").string(), leaf.keyPem);
    evidenceFile_ = (dir_ / "evidence.jsonl").string();
    std::vector<EvidenceSinkPtr> sinks;
    sinks.push_back(std::make_unique<FileEvidenceSink>(evidenceFile_));
    chain_ = std::move(*EvidenceChain::open(std::move(sinks), nullptr));
    WebhookServerOptions options;
    options.https.address = "127.0.0.1";
    options.https.port = 0;
    options.https.tls = TlsFiles{(dir_ / "tls.crt").string(), (dir_ / "tls.key").string()};
    options.metricsAddress = "127.0.0.1";
    options.metricsPort = 0;
    auto s = WebhookServer::start(options, state_, chain_.get(), [] { return testNow(); });
    ASSERT_TRUE(s.ok()) << s.status().toString();
    server_ = std::move(*s);
  }

  void TearDown() override {
    server_->shutdown(std::chrono::seconds(1));
    fs::remove_all(dir_);
  }

  std::unique_ptr<TestClient> client() {
    TestClientOptions o;
    o.caPem = ca_.certPem;
    std::string error;
    auto c = TestClient::connect(server_->port(), o, &error);
    EXPECT_NE(c, nullptr) << error;
    return c;
  }

  std::string evidenceText() {
    std::ifstream in(evidenceFile_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  fs::path dir_;
  tasklease::testing::TestCert ca_;
  std::string evidenceFile_;
  SwitchableState state_;
  EvidenceChainPtr chain_;
  std::unique_ptr<WebhookServer> server_;
};

TEST_F(WebhookServerTest, AnswersAReviewOverTlsEchoingTheUid) {
  auto r = client()->request("POST", "/validate", review(pod(cleanSpec())).dump());
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 200);
  Json j = Json::parse(r.body);
  EXPECT_EQ(j["kind"], "AdmissionReview");
  EXPECT_EQ(j["response"]["uid"], "0f3c9d2e-uid");
  EXPECT_EQ(j["response"]["allowed"], true);
}

TEST_F(WebhookServerTest, DeniesWith403AndRecordsVerifiableEvidence) {
  Json spec = cleanSpec();
  Json init = container("init");
  init["env"] = {envSecretRef("DB_PASSWORD", "db")};
  spec["initContainers"] = {init};
  auto r = client()->request("POST", "/validate", review(pod(spec)).dump());
  Json j = Json::parse(r.body);
  EXPECT_EQ(j["response"]["allowed"], false);
  EXPECT_EQ(j["response"]["status"]["code"], 403);
  EXPECT_THAT(j["response"]["status"]["message"].get<std::string>(),
              HasSubstr("[TL001] spec.initContainers[0].env[0]"));
  std::stringstream evidence(evidenceText());
  VerifyResult v = verifyEvidence(evidence);
  EXPECT_TRUE(v.ok()) << v.message;
  EXPECT_EQ(v.records, 1U);
  EXPECT_THAT(evidenceText(), HasSubstr("\"kind\":\"rejected\""));
}

TEST_F(WebhookServerTest, DryRunLeavesNoEvidence) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "shared";
  auto r = client()->request("POST", "/validate", review(pod(spec), /*dryRun=*/true).dump());
  EXPECT_EQ(Json::parse(r.body)["response"]["allowed"], false);
  EXPECT_EQ(evidenceText(), "");
}

TEST_F(WebhookServerTest, MalformedReviewsGet400WithWhatIsWrong) {
  auto c = client();
  auto notJson = c->request("POST", "/validate", "{\"apiVersion\":");
  EXPECT_EQ(notJson.status, 400);
  EXPECT_THAT(Json::parse(notJson.body)["message"].get<std::string>(), HasSubstr("not valid JSON"));
  Json wrong = review(pod(cleanSpec()));
  wrong["apiVersion"] = "admission.k8s.io/v1beta1";
  auto old = c->request("POST", "/validate", wrong.dump());
  EXPECT_EQ(old.status, 400);
  EXPECT_THAT(Json::parse(old.body)["message"].get<std::string>(),
              HasSubstr("admission.k8s.io/v1"));
  // The connection survives a bad review.
  EXPECT_EQ(c->request("POST", "/validate", review(pod(cleanSpec())).dump()).status, 200);
}

TEST_F(WebhookServerTest, BodyOverThreeMebibytesGets413) {
  auto r = client()->request("POST", "/validate", std::string(3 * 1024 * 1024 + 1, ' '));
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.status, 413);
}

TEST_F(WebhookServerTest, NotReadyUntilCachesSync) {
  state_.synced_ = false;
  auto c = client();
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  EXPECT_EQ(c->request("GET", "/readyz").status, 503);
  EXPECT_EQ(c->request("POST", "/validate", review(pod(cleanSpec())).dump()).status, 503);
  state_.synced_ = true;
  EXPECT_EQ(c->request("GET", "/readyz").status, 200);
}

TEST_F(WebhookServerTest, MetricsOnTheirOwnPortCountReviewsRulesAndLatency) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "shared";
  client()->request("POST", "/validate", review(pod(spec)).dump());
  client()->request("POST", "/validate", "nonsense");
  Json configMap =
      review({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}});
  configMap["request"]["kind"]["kind"] = "ConfigMap";
  client()->request("POST", "/validate", configMap.dump());
  client()->request("POST", "/validate", configMap.dump());
  TestClientOptions plain;
  auto m = TestClient::connect(server_->metricsPort(), plain);
  ASSERT_NE(m, nullptr);
  auto r = m->request("GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.headers["content-type"], HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(
      r.body,
      HasSubstr(
          "tasklease_webhook_reviews_total{kind=\"Pod\",decision=\"denied\",mode=\"enforce\"} 1"));
  EXPECT_THAT(r.body, HasSubstr("tasklease_webhook_violations_total{kind=\"Pod\",rule=\"TL006\","
                                "decision=\"denied\",mode=\"enforce\"} 1"));
  // Kinds the webhook does not judge share one label value.
  EXPECT_THAT(
      r.body,
      HasSubstr(
          "tasklease_webhook_reviews_total{kind=\"other\",decision=\"skipped\",mode=\"none\"} 2"));
  EXPECT_THAT(r.body, Not(HasSubstr("kind=\"ConfigMap\"")));
  EXPECT_THAT(r.body, HasSubstr("tasklease_webhook_review_duration_seconds_count 3"));
  EXPECT_THAT(r.body, HasSubstr("tasklease_webhook_errors_total{type=\"bad_review\"} 1"));
  EXPECT_THAT(r.body, HasSubstr("tasklease_webhook_cache_synced 1"));
  EXPECT_THAT(r.body, HasSubstr("tasklease_webhook_evidence_records_total{kind=\"rejected\"} 1"));
}

TEST_F(WebhookServerTest, SecretValuesAppearInNoResponseEvidenceOrLog) {
  const std::string token = std::string("ghp_") + "Zq8Lw3Xb7Nm2Pr5Ts9Uv1Wx4Yz6Ab0Cd3Ef7G";
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("GITHUB_TOKEN", token)};
  initLogging("test", LogLevel::kDebug);
  ::testing::internal::CaptureStderr();
  auto r = client()->request("POST", "/validate", review(pod(spec)).dump());
  std::string logs = ::testing::internal::GetCapturedStderr();
  initLogging("test", LogLevel::kInfo);
  EXPECT_THAT(r.body, HasSubstr("TL004"));
  const std::string secretPart = token.substr(4, 12);
  EXPECT_THAT(r.body, Not(HasSubstr(secretPart)));
  EXPECT_THAT(evidenceText(), Not(HasSubstr(secretPart)));
  EXPECT_THAT(logs, HasSubstr("TL004"));
  EXPECT_THAT(logs, Not(HasSubstr(secretPart)));
}

}  // namespace
}  // namespace tasklease::webhook
