#include "kube/api_client_impl.h"

#include <gtest/gtest.h>

#include "kube/errors.h"
#include "tests/mocks/fake_http_transport.h"

namespace tasklease::kube {
namespace {

std::string statusBody(int code, const std::string& reason) {
  return Json{{"kind", "Status"}, {"code", code}, {"reason", reason}, {"message", reason}}.dump();
}

// Counts refreshes; the token changes on each one.
class CountingCredentials final : public CredentialProvider {
 public:
  StatusOr<Credentials> current() override {
    return Credentials{"token-" + std::to_string(generation_), {}, {}};
  }
  bool refreshAfterUnauthorized(const Credentials&) override {
    ++generation_;
    return true;
  }
  int generation_ = 0;
};

class ApiClientImplTest : public ::testing::Test {
 protected:
  ApiClientImplTest() {
    auto transport = std::make_unique<ScriptedHttpTransport>();
    transport_ = transport.get();
    auto creds = std::make_unique<CountingCredentials>();
    creds_ = creds.get();
    RestConfig cfg;
    cfg.server = "https://test";
    cfg.qps = 0;  // no client-side limit in unit tests
    cfg.retry.maxAttempts = 4;
    cfg.retry.backoff = {std::chrono::milliseconds(1), 2.0, 0.0, std::chrono::milliseconds(4)};
    client_ = std::make_unique<ApiClientImpl>(cfg, std::move(transport), std::move(creds));
  }

  const Json kConfigMap = {{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata", {{"namespace", "ns"}, {"name", "cm"}}},
                           {"data", {{"k", "v"}}}};

  ScriptedHttpTransport* transport_;
  CountingCredentials* creds_;
  std::unique_ptr<ApiClientImpl> client_;
};

TEST_F(ApiClientImplTest, GetSendsPathAcceptAndBearerToken) {
  transport_->respond(200, kConfigMap.dump());
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"});
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ((*got)["data"]["k"], "v");
  const auto reqs = transport_->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0].method, "GET");
  EXPECT_EQ(reqs[0].path, "/api/v1/namespaces/ns/configmaps/cm");
  bool auth = false;
  for (const auto& [k, v] : reqs[0].headers)
    auth = auth || (k == "Authorization" && v == "Bearer token-0");
  EXPECT_TRUE(auth);
}

TEST_F(ApiClientImplTest, NotFoundIsMappedAndNotRetried) {
  transport_->respond(404, statusBody(404, "NotFound"));
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"});
  ASSERT_FALSE(got.ok());
  EXPECT_TRUE(got.status().isNotFound());
  EXPECT_EQ(got.status().httpCode(), 404);
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(ApiClientImplTest, GetIsRetriedAfterServerErrorsAndConnectionLoss) {
  transport_->respond(500, statusBody(500, "InternalError"));
  Status lost(StatusCode::kUnavailable, "reset");
  lost.withReason(std::string(kReasonConnectionLost));
  transport_->fail(lost);
  transport_->respond(503, statusBody(503, "ServiceUnavailable"));
  transport_->respond(200, kConfigMap.dump());
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"});
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ(transport_->requests().size(), 4u);
}

TEST_F(ApiClientImplTest, GivesUpAfterMaxAttempts) {
  for (int i = 0; i < 6; ++i) transport_->respond(504, statusBody(504, "Timeout"));
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(transport_->requests().size(), 4u);
}

TEST_F(ApiClientImplTest, RetryAfterLongerThanTheCallDeadlineEndsTheCall) {
  transport_->respond(429, statusBody(429, "TooManyRequests"), {{"retry-after", "30"}});
  transport_->respond(200, kConfigMap.dump());
  CallOptions call;
  call.timeout = std::chrono::milliseconds(500);
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"}, call);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(got.status().retryAfter(), std::chrono::seconds(30));
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(ApiClientImplTest, TooManyRequestsIsRetriedAfterRetryAfter) {
  transport_->respond(429, statusBody(429, "TooManyRequests"), {{"retry-after", "0"}});
  transport_->respond(200, kConfigMap.dump());
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"});
  ASSERT_TRUE(got.ok()) << got.status().toString();
  EXPECT_EQ(transport_->requests().size(), 2u);
}

TEST_F(ApiClientImplTest, NamedCreateAfterAmbiguousFailureResolvesOwnAlreadyExists) {
  transport_->respond(500, statusBody(500, "InternalError"));
  transport_->respond(409, statusBody(409, "AlreadyExists"));
  Json stored = kConfigMap;
  stored["metadata"]["uid"] = "u1";
  stored["metadata"]["resourceVersion"] = "7";
  stored["metadata"]["creationTimestamp"] = "2024-01-01T00:00:00Z";
  transport_->respond(200, stored.dump());
  auto created = client_->create(resources::kConfigMaps, kConfigMap);
  ASSERT_TRUE(created.ok()) << created.status().toString();
  EXPECT_EQ((*created)["metadata"]["uid"], "u1");
  const auto reqs = transport_->requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].method, "GET");
}

TEST_F(ApiClientImplTest, NamedCreateAfterAmbiguousFailureKeepsSomeoneElsesAlreadyExists) {
  transport_->respond(503, statusBody(503, "ServiceUnavailable"));
  transport_->respond(409, statusBody(409, "AlreadyExists"));
  Json other = kConfigMap;
  other["data"]["k"] = "different";
  transport_->respond(200, other.dump());
  auto created = client_->create(resources::kConfigMaps, kConfigMap);
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(created.status().isAlreadyExists());
}

TEST_F(ApiClientImplTest, AlreadyExistsOnFirstAttemptIsReturnedAsIs) {
  transport_->respond(409, statusBody(409, "AlreadyExists"));
  auto created = client_->create(resources::kConfigMaps, kConfigMap);
  ASSERT_FALSE(created.ok());
  EXPECT_TRUE(created.status().isAlreadyExists());
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(ApiClientImplTest, GenerateNameCreateIsNotRepeatedAfterAmbiguousFailure) {
  Json obj = kConfigMap;
  obj["metadata"].erase("name");
  obj["metadata"]["generateName"] = "cm-";
  transport_->respond(500, statusBody(500, "InternalError"));
  transport_->respond(200, obj.dump());
  auto created = client_->create(resources::kConfigMaps, obj);
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.status().code(), StatusCode::kInternal);
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(ApiClientImplTest, GenerateNameCreateIsRepeatedWhenNotProcessed) {
  Json obj = kConfigMap;
  obj["metadata"].erase("name");
  obj["metadata"]["generateName"] = "cm-";
  transport_->respond(429, statusBody(429, "TooManyRequests"), {{"retry-after", "0"}});
  Status refused(StatusCode::kUnavailable, "refused");
  refused.withReason(std::string(kReasonConnectFailed));
  transport_->fail(refused);
  transport_->respond(201, obj.dump());
  auto created = client_->create(resources::kConfigMaps, obj);
  ASSERT_TRUE(created.ok()) << created.status().toString();
  EXPECT_EQ(transport_->requests().size(), 3u);
}

TEST_F(ApiClientImplTest, DeleteAfterAmbiguousFailureTreatsNotFoundAsDone) {
  transport_->respond(500, statusBody(500, "InternalError"));
  transport_->respond(404, statusBody(404, "NotFound"));
  Status s = client_->remove(resources::kConfigMaps, {"ns", "cm"},
                             DeleteOptions{PropagationPolicy::kBackground, "uid-1", "", {}});
  EXPECT_TRUE(s.ok()) << s.toString();
  const auto reqs = transport_->requests();
  ASSERT_EQ(reqs.size(), 2u);
  const Json body = Json::parse(reqs[0].body);
  EXPECT_EQ(body["propagationPolicy"], "Background");
  EXPECT_EQ(body["preconditions"]["uid"], "uid-1");
}

TEST_F(ApiClientImplTest, DeleteNotFoundOnFirstAttemptIsNotFound) {
  transport_->respond(404, statusBody(404, "NotFound"));
  EXPECT_TRUE(client_->remove(resources::kConfigMaps, {"ns", "cm"}).isNotFound());
}

TEST_F(ApiClientImplTest, UpdateWithoutResourceVersionIsNotRepeatedAfterServerError) {
  transport_->respond(500, statusBody(500, "InternalError"));
  auto updated = client_->update(resources::kConfigMaps, kConfigMap);
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(transport_->requests().size(), 1u);
}

TEST_F(ApiClientImplTest, UpdateWithResourceVersionResolvesConflictWithItself) {
  Json obj = kConfigMap;
  obj["metadata"]["resourceVersion"] = "5";
  transport_->respond(504, statusBody(504, "Timeout"));
  transport_->respond(409, statusBody(409, "Conflict"));
  Json stored = kConfigMap;
  stored["metadata"]["resourceVersion"] = "6";
  transport_->respond(200, stored.dump());
  auto updated = client_->update(resources::kConfigMaps, obj);
  ASSERT_TRUE(updated.ok()) << updated.status().toString();
  EXPECT_EQ((*updated)["metadata"]["resourceVersion"], "6");
}

TEST_F(ApiClientImplTest, UpdateConflictWithoutEarlierFailureIsConflict) {
  Json obj = kConfigMap;
  obj["metadata"]["resourceVersion"] = "5";
  transport_->respond(409, statusBody(409, "Conflict"));
  auto updated = client_->update(resources::kConfigMaps, obj);
  ASSERT_FALSE(updated.ok());
  EXPECT_TRUE(updated.status().isConflict());
}

TEST_F(ApiClientImplTest, PatchesUseTheirContentTypesAndJsonPatchIsNotRepeated) {
  transport_->respond(500, statusBody(500, "InternalError"));
  transport_->respond(200, kConfigMap.dump());
  auto merged = client_->patch(resources::kConfigMaps, {"ns", "cm"}, Json{{"data", {{"k", "w"}}}});
  ASSERT_TRUE(merged.ok()) << merged.status().toString();
  transport_->respond(500, statusBody(500, "InternalError"));
  auto jsonPatched = client_->patch(resources::kConfigMaps, {"ns", "cm"},
                                    Json::parse(R"([{"op":"add","path":"/data/x","value":"1"}])"),
                                    PatchOptions{PatchType::kJson, "", false, ""});
  ASSERT_FALSE(jsonPatched.ok());
  const auto reqs = transport_->requests();
  ASSERT_EQ(reqs.size(), 3u);
  const auto contentType = [](const HttpRequest& r) {
    for (const auto& [k, v] : r.headers) {
      if (k == "Content-Type") return v;
    }
    return std::string();
  };
  EXPECT_EQ(contentType(reqs[0]), "application/merge-patch+json");
  EXPECT_EQ(contentType(reqs[2]), "application/json-patch+json");
}

TEST_F(ApiClientImplTest, UnauthorizedRefreshesCredentialsOnce) {
  transport_->respond(401, statusBody(401, "Unauthorized"));
  transport_->respond(200, kConfigMap.dump());
  ASSERT_TRUE(client_->get(resources::kConfigMaps, {"ns", "cm"}).ok());
  EXPECT_EQ(creds_->generation_, 1);
  transport_->respond(401, statusBody(401, "Unauthorized"));
  transport_->respond(401, statusBody(401, "Unauthorized"));
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"});
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(transport_->requests().size(), 4u);
}

TEST_F(ApiClientImplTest, ListSendsSelectorsAndPagination) {
  transport_->respond(200,
                      R"({"kind":"ConfigMapList","metadata":{"resourceVersion":"9"},"items":[]})");
  ListOptions opts;
  opts.labelSelector = "app in (a,b)";
  opts.limit = 50;
  opts.continueToken = "tok";
  ASSERT_TRUE(client_->list(resources::kConfigMaps, "ns", opts).ok());
  EXPECT_EQ(transport_->requests()[0].path,
            "/api/v1/namespaces/ns/configmaps?labelSelector=app%20in%20%28a%2Cb%29&limit=50"
            "&continue=tok");
}

TEST_F(ApiClientImplTest, ListAllFollowsContinueTokensAndRestoresKinds) {
  transport_->respond(200, R"({"metadata":{"resourceVersion":"9","continue":"c1"},
                               "items":[{"metadata":{"name":"a"}}]})");
  transport_->respond(200, R"({"metadata":{"resourceVersion":"9"},
                               "items":[{"metadata":{"name":"b"}}]})");
  auto all = listAll(*client_, resources::kConfigMaps, "ns", ListOptions{"", "", 1, "", ""});
  ASSERT_TRUE(all.ok()) << all.status().toString();
  ASSERT_EQ(all->items.size(), 2u);
  EXPECT_EQ(all->items[1]["kind"], "ConfigMap");
  EXPECT_EQ(all->items[1]["apiVersion"], "v1");
  EXPECT_EQ(all->resourceVersion, "9");
}

TEST_F(ApiClientImplTest, ListAllFallsBackToAFullListWhenTheContinueTokenExpires) {
  transport_->respond(200, R"({"metadata":{"resourceVersion":"9","continue":"c1"},
                               "items":[{"metadata":{"name":"a"}}]})");
  transport_->respond(410, statusBody(410, "Expired"));
  transport_->respond(200, R"({"metadata":{"resourceVersion":"12"},
                               "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"}}]})");
  auto all = listAll(*client_, resources::kConfigMaps, "ns", ListOptions{"", "", 1, "", ""});
  ASSERT_TRUE(all.ok()) << all.status().toString();
  EXPECT_EQ(all->items.size(), 2u);
  EXPECT_EQ(all->resourceVersion, "12");
  EXPECT_EQ(transport_->requests()[2].path, "/api/v1/namespaces/ns/configmaps");
}

TEST_F(ApiClientImplTest, WatchParsesEventsAndBookmarks) {
  transport_->streamLines(
      {R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"1"}}})",
       R"({"type":"MODIFIED","object":{"metadata":{"name":"a","resourceVersion":"2"}}})",
       R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"3"}}})",
       R"({"type":"DELETED","object":{"metadata":{"name":"a","resourceVersion":"4"}}})"});
  std::vector<std::string> seen;
  Status s = client_->watch(
      resources::kConfigMaps, "ns", WatchOptions{"", "", "0", true, 60},
      [&](WatchEvent&& e) {
        seen.push_back(std::string(watchEventTypeName(e.type)) + ":" + resourceVersionOf(e.object));
        return true;
      },
      {});
  EXPECT_TRUE(s.ok()) << s.toString();
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED:1", "MODIFIED:2", "BOOKMARK:3", "DELETED:4"}));
  EXPECT_EQ(transport_->requests()[0].path,
            "/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=0"
            "&allowWatchBookmarks=true&timeoutSeconds=60");
}

TEST_F(ApiClientImplTest, WatchErrorEventEndsTheWatchAsGone) {
  transport_->streamLines(
      {R"({"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}})",
       R"({"type":"ADDED","object":{"metadata":{"name":"late"}}})"});
  int events = 0;
  Status s = client_->watch(resources::kConfigMaps, "", WatchOptions{},
                            [&](WatchEvent&&) {
                              ++events;
                              return true;
                            },
                            {});
  EXPECT_TRUE(s.isGone()) << s.toString();
  EXPECT_EQ(events, 1);
}

TEST_F(ApiClientImplTest, WatchHttpGoneIsGone) {
  transport_->respond(410, statusBody(410, "Expired"));
  Status s = client_->watch(resources::kConfigMaps, "", WatchOptions{},
                            [](WatchEvent&&) { return true; }, {});
  EXPECT_TRUE(s.isGone()) << s.toString();
}

TEST_F(ApiClientImplTest, WatchMalformedLineIsAnError) {
  transport_->streamLines({"not json"});
  Status s = client_->watch(resources::kConfigMaps, "", WatchOptions{},
                            [](WatchEvent&&) { return true; }, {});
  EXPECT_EQ(s.code(), StatusCode::kInternal);
}

TEST_F(ApiClientImplTest, StoppedCallIsCancelledWithoutARequest) {
  std::stop_source stop;
  stop.request_stop();
  transport_->respond(200, kConfigMap.dump());
  CallOptions call;
  call.stop = stop.get_token();
  auto got = client_->get(resources::kConfigMaps, {"ns", "cm"}, call);
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kCancelled);
  EXPECT_TRUE(transport_->requests().empty());
}

TEST_F(ApiClientImplTest, CreateRequiresNamespaceForNamespacedResources) {
  Json obj = kConfigMap;
  obj["metadata"].erase("namespace");
  auto created = client_->create(resources::kConfigMaps, obj);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.status().message().find("metadata.namespace"), std::string::npos);
  EXPECT_TRUE(transport_->requests().empty());
}

}  // namespace
}  // namespace tasklease::kube
