#include "webhook/server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/crypto.h"
#include "common/log.h"
#include "tests/common/eventually.h"
#include "tests/common/http_test_client.h"
#include "tests/common/tls_test_pki.h"
#include "tests/mocks/fake_stamp_verifier.h"
#include "tests/webhook/fixtures.h"
#include "webhook/agenttask.h"
#include "webhook/agenttask_review.h"

namespace tasklease::webhook {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // NOLINT: the fixtures
using tasklease::testing::eventually;
using tasklease::testing::TestClient;
using tasklease::testing::TestClientOptions;

// Opens the gate once, however often asked.
class Gate {
 public:
  void wait() const { opened_.wait(); }
  void open() {
    std::call_once(once_, [this] { promise_.set_value(); });
  }

 private:
  std::promise<void> promise_;
  std::shared_future<void> opened_ = promise_.get_future().share();
  std::once_flag once_;
};

// A state whose caches can be declared unsynced, as before the informers' first list; and in
// whose namespace "slow" a review is judged until the test opens the gate: a review as slow as
// a test wants.
class SwitchableState : public ObjectSetClusterState {
 public:
  SwitchableState() : ObjectSetClusterState(standardState()) {
    add(testing::namespaceObject("slow", "enforce"));
  }
  bool synced() const override { return synced_; }
  Lookup namespaceObject(std::string_view name) const override {
    if (name == "slow") {
      ++slowReviews;
      slowGate.wait();
    }
    return ObjectSetClusterState::namespaceObject(name);
  }
  bool synced_ = true;
  mutable std::atomic<int> slowReviews{0};
  Gate slowGate;
};

class WebhookServerTest : public ::testing::Test {
 public:
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
    startServer();
  }

  void startServer(const AgentTaskReviewer* agentTasks = nullptr) {
    if (server_) server_->shutdown(std::chrono::seconds(1));
    WebhookServerOptions options;
    options.https.address = "127.0.0.1";
    options.https.port = 0;
    options.https.tls = TlsFiles{(dir_ / "tls.crt").string(), (dir_ / "tls.key").string()};
    options.metricsAddress = "127.0.0.1";
    options.metricsPort = 0;
    auto s = WebhookServer::start(
        options, state_, chain_.get(), [] { return testNow(); }, agentTasks);
    ASSERT_TRUE(s.ok()) << s.status().toString();
    server_ = std::move(*s);
  }

  void TearDown() override {
    state_.slowGate.open();
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
  auto r = client()->request("POST", "/validate", admissionReview(pod(cleanSpec())).dump());
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
  auto r = client()->request("POST", "/validate", admissionReview(pod(spec)).dump());
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
  auto r =
      client()->request("POST", "/validate", admissionReview(pod(spec), /*dryRun=*/true).dump());
  EXPECT_EQ(Json::parse(r.body)["response"]["allowed"], false);
  EXPECT_EQ(evidenceText(), "");
}

TEST_F(WebhookServerTest, MalformedReviewsGet400WithWhatIsWrong) {
  auto c = client();
  auto notJson = c->request("POST", "/validate", "{\"apiVersion\":");
  EXPECT_EQ(notJson.status, 400);
  EXPECT_THAT(Json::parse(notJson.body)["message"].get<std::string>(), HasSubstr("not valid JSON"));
  Json wrong = admissionReview(pod(cleanSpec()));
  wrong["apiVersion"] = "admission.k8s.io/v1beta1";
  auto old = c->request("POST", "/validate", wrong.dump());
  EXPECT_EQ(old.status, 400);
  EXPECT_THAT(Json::parse(old.body)["message"].get<std::string>(),
              HasSubstr("admission.k8s.io/v1"));
  // The connection survives a bad review.
  EXPECT_EQ(c->request("POST", "/validate", admissionReview(pod(cleanSpec())).dump()).status, 200);
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
  EXPECT_EQ(c->request("POST", "/validate", admissionReview(pod(cleanSpec())).dump()).status, 503);
  state_.synced_ = true;
  EXPECT_EQ(c->request("GET", "/readyz").status, 200);
}

TEST_F(WebhookServerTest, MetricsOnTheirOwnPortCountReviewsRulesAndLatency) {
  Json spec = cleanSpec();
  spec["serviceAccountName"] = "shared";
  client()->request("POST", "/validate", admissionReview(pod(spec)).dump());
  client()->request("POST", "/validate", "nonsense");
  Json configMap =
      admissionReview({{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", "c"}}}});
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
  auto r = client()->request("POST", "/validate", admissionReview(pod(spec)).dump());
  std::string logs = ::testing::internal::GetCapturedStderr();
  initLogging("test", LogLevel::kInfo);
  EXPECT_THAT(r.body, HasSubstr("TL004"));
  const std::string secretPart = token.substr(4, 12);
  EXPECT_THAT(r.body, Not(HasSubstr(secretPart)));
  EXPECT_THAT(evidenceText(), Not(HasSubstr(secretPart)));
  EXPECT_THAT(logs, HasSubstr("TL004"));
  EXPECT_THAT(logs, Not(HasSubstr(secretPart)));
}

// Starts `n` requests, each on a connection of its own, and returns their answers to come.
struct InFlight {
  std::vector<std::unique_ptr<TestClient>> clients;
  std::vector<std::future<tasklease::testing::TestResponse>> answers;
  bool noneAnswered() {
    return std::all_of(answers.begin(), answers.end(), [](auto& f) {
      return f.wait_for(std::chrono::seconds(0)) == std::future_status::timeout;
    });
  }
};

// POSTs body to /validate n times at once, each on a connection of its own.
InFlight validateOnNewConnections(WebhookServerTest& test, int n, const std::string& body) {
  InFlight out;
  for (int i = 0; i < n; ++i) {
    out.clients.push_back(test.client());
    TestClient* c = out.clients.back().get();
    out.answers.push_back(std::async(std::launch::async,
                                     [c, body] { return c->request("POST", "/validate", body); }));
  }
  return out;
}

TEST_F(WebhookServerTest, HealthAndPodReviewsAreAnsweredWhileTheSlowestReviewsAreJudged) {
  // Reviews of Pods in namespace "slow" are judged until the gate opens, and their bodies are
  // as large as those of hostile values (over 256 KiB). Three of them are more than the HTTPS
  // server has I/O threads: each used to hold one, and /healthz and every other review waited.
  Json spec = cleanSpec();
  spec["containers"][0]["env"] = {envValue("PADDING", std::string(300 * 1024, 'a'))};
  Json slowPod = pod(spec);
  slowPod["metadata"]["namespace"] = "slow";
  InFlight slow = validateOnNewConnections(*this, 3, admissionReview(slowPod).dump());
  ASSERT_TRUE(eventually([&] { return state_.slowReviews.load() >= 1; }));

  auto c = client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  EXPECT_EQ(c->request("GET", "/readyz").status, 200);
  auto ordinary = c->request("POST", "/validate", admissionReview(pod(cleanSpec())).dump());
  ASSERT_TRUE(ordinary.ok) << ordinary.error;
  EXPECT_EQ(Json::parse(ordinary.body)["response"]["allowed"], true);
  EXPECT_TRUE(slow.noneAnswered());  // all this while the slow ones were still being judged

  state_.slowGate.open();
  for (auto& answer : slow.answers) {
    auto r = answer.get();
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
  }
}

// An AccessReviewer that answers "allowed" to everything once the gate opens: the API server's
// SubjectAccessReviews, as slow as a test wants.
class GatedAccessReviewer final : public AccessReviewer {
 public:
  std::vector<AccessAnswer> review(const UserInfo&, const std::string&,
                                   const std::vector<PermissionCheck>& checks,
                                   std::chrono::milliseconds) override {
    ++waiting;
    gate.wait();
    return std::vector<AccessAnswer>(checks.size(), AccessAnswer{true, true, ""});
  }
  std::atomic<int> waiting{0};
  Gate gate;
};

TEST_F(WebhookServerTest, PodReviewsAndHealthAreAnsweredWhileAgentTaskReviewsWaitOnTheApiServer) {
  auto key = SigningKey::generate();
  ASSERT_TRUE(key.ok());
  kube::FakeStampVerifier stamps;
  ASSERT_TRUE(stamps.keys.add(key->publicPem()).ok());
  GatedAccessReviewer access;
  AgentTaskReviewer agentTasks(*key, stamps, access);
  startServer(&agentTasks);

  // A stamped AgentTask CREATE, as the validating webhook sees it.
  Json task = {
      {"apiVersion", "tasklease.io/v1alpha1"},
      {"kind", "AgentTask"},
      {"metadata", {{"name", "t1"}, {"namespace", "team-a"}}},
      {"spec",
       {{"agent", "refactor-bot"},
        {"purpose", "Refactor billing"},
        {"context", {{"tool", "git"}, {"dataSensitivity", "internal"}, {"environment", "dev"}}},
        {"ttl", "30m"},
        {"scope",
         {{"rules", {{{"apiGroups", {""}}, {"resources", {"configmaps"}}, {"verbs", {"get"}}}}}}},
        {"completed", false}}}};
  Json body = admissionReview(task);
  body["request"]["kind"] = {
      {"group", "tasklease.io"}, {"version", "v1alpha1"}, {"kind", "AgentTask"}};
  body["request"]["resource"] = {
      {"group", "tasklease.io"}, {"version", "v1alpha1"}, {"resource", "agenttasks"}};
  body["request"]["name"] = "t1";
  body["request"]["userInfo"] = {{"username", "alice"}, {"uid", "uid-alice"}, {"groups", {"dev"}}};
  const StatusOr<AdmissionRequest> create = decodeAdmissionReview(body.dump());
  ASSERT_TRUE(create.ok()) << create.status().toString();
  const AdmissionResponse stamped = stampAgentTask(*create, *key, testNow());
  ASSERT_TRUE(stamped.allowed) << stamped.message;
  // As the API server stores it: patched, and created when it was stamped.
  Json& stored = body["request"]["object"];
  stored = stored.patch(Json::parse(stamped.patch));
  stored["metadata"]["creationTimestamp"] = formatRfc3339(testNow());
  // Six, more than the HTTPS server has I/O threads and the pod reviews have workers.
  InFlight tasks = validateOnNewConnections(*this, 6, body.dump());
  ASSERT_TRUE(eventually([&] { return access.waiting.load() >= 2; }));

  auto c = client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->request("GET", "/healthz").status, 200);
  for (int i = 0; i < 3; ++i) {
    auto r = c->request("POST", "/validate", admissionReview(pod(cleanSpec())).dump());
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(Json::parse(r.body)["response"]["allowed"], true);
  }
  EXPECT_TRUE(tasks.noneAnswered());

  access.gate.open();
  for (auto& answer : tasks.answers) {
    auto r = answer.get();
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(Json::parse(r.body)["response"]["allowed"], true) << r.body;
  }
  server_->shutdown(std::chrono::seconds(1));  // before agentTasks goes
}

TEST_F(WebhookServerTest, TheConnectionLimitIsReachedBeforeTheProcessRunsOutOfFiles) {
  // A flood of connections that ran the process out of open files would leave accept failing,
  // with no connection to close for the new one: the server's own limit, where it makes room,
  // must come first, leaving files for the rest of the process.
  struct rlimit files {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &files), 0);
  const rlim_t lowered = std::min<rlim_t>(files.rlim_max, 1024);
  files.rlim_cur = files.rlim_max = lowered;  // the hard limit too: the server raises the soft one
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &files), 0);
  startServer();
  EXPECT_EQ(server_->connectionLimit(), static_cast<size_t>(lowered) - 256);
}

}  // namespace
}  // namespace tasklease::webhook
