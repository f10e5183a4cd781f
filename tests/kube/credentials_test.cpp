#include "kube/credentials.h"

#include <gtest/gtest.h>

#include "tests/kube/test_util.h"
#include "tests/mocks/fake_clock.h"

namespace tasklease::kube {
namespace {

using testing::TempDir;

TEST(TokenFileCredentialsTest, RereadsTheFileAfterAMinute) {
  TempDir dir;
  const std::string file = dir.write("token", "first\n");
  FakeClock clock;
  RestConfig cfg;
  cfg.bearerTokenFile = file;
  auto provider = makeCredentialProvider(cfg, clock);
  ASSERT_EQ(provider->current()->bearerToken, "first");
  dir.write("token", "second");
  clock.advance(std::chrono::seconds(30));
  EXPECT_EQ(provider->current()->bearerToken, "first");
  clock.advance(std::chrono::seconds(31));
  EXPECT_EQ(provider->current()->bearerToken, "second");
}

TEST(TokenFileCredentialsTest, RereadsTheFileAfterUnauthorized) {
  TempDir dir;
  const std::string file = dir.write("token", "old");
  FakeClock clock;
  RestConfig cfg;
  cfg.bearerTokenFile = file;
  auto provider = makeCredentialProvider(cfg, clock);
  const Credentials rejected = *provider->current();
  EXPECT_FALSE(provider->refreshAfterUnauthorized(rejected));  // unchanged: retrying is futile
  dir.write("token", "rotated");
  EXPECT_TRUE(provider->refreshAfterUnauthorized(rejected));
  EXPECT_EQ(provider->current()->bearerToken, "rotated");
}

TEST(TokenFileCredentialsTest, KeepsLastGoodTokenWhenTheFileDisappears) {
  TempDir dir;
  const std::string file = dir.write("token", "good");
  FakeClock clock;
  RestConfig cfg;
  cfg.bearerTokenFile = file;
  auto provider = makeCredentialProvider(cfg, clock);
  ASSERT_EQ(provider->current()->bearerToken, "good");
  std::remove(file.c_str());
  clock.advance(std::chrono::minutes(2));
  auto creds = provider->current();
  ASSERT_TRUE(creds.ok()) << creds.status().toString();
  EXPECT_EQ(creds->bearerToken, "good");
}

TEST(TokenFileCredentialsTest, UnreadableFileWithoutFallbackIsUnauthenticated) {
  FakeClock clock;
  RestConfig cfg;
  cfg.bearerTokenFile = "/no/such/token";
  auto provider = makeCredentialProvider(cfg, clock);
  auto creds = provider->current();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(creds.status().message().find("/no/such/token"), std::string::npos);
}

TEST(StaticCredentialsTest, ReturnsTheConfiguredTokenAndNeverRefreshes) {
  RestConfig cfg;
  cfg.bearerToken = "static";
  auto provider = makeCredentialProvider(cfg);
  EXPECT_EQ(provider->current()->bearerToken, "static");
  EXPECT_FALSE(provider->refreshAfterUnauthorized(*provider->current()));
}

// ---- exec plugins ----

class ExecPluginTest : public ::testing::Test {
 protected:
  // A plugin that counts its runs in a file and prints `status` as the ExecCredential status.
  ExecConfig plugin(const std::string& statusJson,
                    const std::string& apiVersion = "client.authentication.k8s.io/v1") {
    const std::string script =
        "#!/bin/sh\n"
        "echo run >> \"" +
        dir_.path() +
        "/runs\"\n"
        "printf '%s' \"$KUBERNETES_EXEC_INFO\" > \"" +
        dir_.path() +
        "/info\"\n"
        "echo \"$PLUGIN_ENV\" > \"" +
        dir_.path() +
        "/env\"\n"
        "cat <<'JSON'\n"
        "{\"apiVersion\":\"" +
        apiVersion + "\",\"kind\":\"ExecCredential\",\"status\":" + statusJson + "}\nJSON\n";
    ExecConfig exec;
    exec.command = dir_.write("plugin.sh", script, /*executable=*/true);
    exec.apiVersion = "client.authentication.k8s.io/v1";
    exec.interactiveMode = "Never";
    exec.env = {{"PLUGIN_ENV", "from-kubeconfig"}};
    return exec;
  }
  int runs() const {
    const std::string text = testing::readFileOrEmpty(dir_.path() + "/runs");
    return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
  }
  TempDir dir_;
};

TEST_F(ExecPluginTest, ReturnsTokenAndPassesExecInfoAndEnv) {
  RestConfig cfg;
  cfg.server = "https://h:1";
  cfg.exec = plugin(R"({"token":"exec-token"})");
  cfg.exec->provideClusterInfo = true;
  auto provider = makeCredentialProvider(cfg);
  auto creds = provider->current();
  ASSERT_TRUE(creds.ok()) << creds.status().toString();
  EXPECT_EQ(creds->bearerToken, "exec-token");
  const Json info = Json::parse(testing::readFileOrEmpty(dir_.path() + "/info"));
  EXPECT_EQ(info["kind"], "ExecCredential");
  EXPECT_EQ(info["apiVersion"], "client.authentication.k8s.io/v1");
  EXPECT_EQ(info["spec"]["interactive"], false);
  EXPECT_EQ(info["spec"]["cluster"]["server"], "https://h:1");
  EXPECT_EQ(testing::readFileOrEmpty(dir_.path() + "/env"), "from-kubeconfig\n");
}

TEST_F(ExecPluginTest, CachesUntilExpiration) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"token":"t","expirationTimestamp":"2200-01-01T00:00:00Z"})");
  auto provider = makeCredentialProvider(cfg);
  ASSERT_TRUE(provider->current().ok());
  ASSERT_TRUE(provider->current().ok());
  EXPECT_EQ(runs(), 1);
}

TEST_F(ExecPluginTest, RerunsWhenExpired) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"token":"t","expirationTimestamp":"2000-01-01T00:00:00Z"})");
  auto provider = makeCredentialProvider(cfg);
  ASSERT_TRUE(provider->current().ok());
  ASSERT_TRUE(provider->current().ok());
  EXPECT_EQ(runs(), 2);
}

TEST_F(ExecPluginTest, RerunsAfterUnauthorized) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"token":"t"})");
  auto provider = makeCredentialProvider(cfg);
  auto creds = provider->current();
  ASSERT_TRUE(creds.ok());
  EXPECT_TRUE(provider->refreshAfterUnauthorized(*creds));
  ASSERT_TRUE(provider->current().ok());
  EXPECT_EQ(runs(), 2);
}

TEST_F(ExecPluginTest, ReturnsClientCertificate) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"clientCertificateData":"CERT","clientKeyData":"KEY"})");
  auto creds = makeCredentialProvider(cfg)->current();
  ASSERT_TRUE(creds.ok()) << creds.status().toString();
  EXPECT_EQ(creds->clientCertPem, "CERT");
  EXPECT_EQ(creds->clientKeyPem, "KEY");
  EXPECT_TRUE(creds->bearerToken.empty());
}

TEST_F(ExecPluginTest, RejectsCertificateWithoutKey) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"clientCertificateData":"CERT"})");
  auto creds = makeCredentialProvider(cfg)->current();
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("clientKeyData"), std::string::npos);
}

TEST_F(ExecPluginTest, RejectsEmptyStatus) {
  RestConfig cfg;
  cfg.exec = plugin("{}");
  auto creds = makeCredentialProvider(cfg)->current();
  ASSERT_FALSE(creds.ok());
  EXPECT_EQ(creds.status().code(), StatusCode::kUnauthenticated);
}

TEST_F(ExecPluginTest, RejectsWrongApiVersion) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"token":"t"})", "client.authentication.k8s.io/v1beta1");
  auto creds = makeCredentialProvider(cfg)->current();
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("apiVersion"), std::string::npos);
}

TEST_F(ExecPluginTest, RejectsBadExpiration) {
  RestConfig cfg;
  cfg.exec = plugin(R"({"token":"t","expirationTimestamp":"tomorrow"})");
  auto creds = makeCredentialProvider(cfg)->current();
  ASSERT_FALSE(creds.ok());
  EXPECT_NE(creds.status().message().find("expirationTimestamp"), std::string::npos);
}

TEST_F(ExecPluginTest, ReportsExitStatusWithInstallHintAndWithoutOutput) {
  ExecConfig exec;
  exec.command = dir_.write("fail.sh", "#!/bin/sh\necho secret-output\nexit 3\n", true);
  exec.apiVersion = "client.authentication.k8s.io/v1";
  exec.interactiveMode = "Never";
  exec.installHint = "install it from example.com";
  auto result = runExecPlugin(exec, Json(), std::chrono::seconds(10));
  ASSERT_FALSE(result.ok());
  const std::string msg = result.status().message();
  EXPECT_NE(msg.find("status 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("install it from example.com"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("secret-output"), std::string::npos) << msg;
}

TEST_F(ExecPluginTest, ReportsMissingCommand) {
  ExecConfig exec;
  exec.command = dir_.path() + "/not-there";
  exec.apiVersion = "client.authentication.k8s.io/v1";
  exec.interactiveMode = "Never";
  auto result = runExecPlugin(exec, Json(), std::chrono::seconds(10));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("cannot be run"), std::string::npos);
}

TEST_F(ExecPluginTest, KillsAPluginThatHangs) {
  ExecConfig exec;
  exec.command = dir_.write("hang.sh", "#!/bin/sh\nexec sleep 30\n", true);
  exec.apiVersion = "client.authentication.k8s.io/v1";
  exec.interactiveMode = "Never";
  auto result = runExecPlugin(exec, Json(), std::chrono::milliseconds(200));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("did not finish"), std::string::npos);
}

TEST_F(ExecPluginTest, RefusesInteractiveModeAlways) {
  ExecConfig exec = plugin(R"({"token":"t"})");
  exec.interactiveMode = "Always";
  auto result = runExecPlugin(exec, Json(), std::chrono::seconds(10));
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("interactive"), std::string::npos);
  EXPECT_EQ(runs(), 0);
}

}  // namespace
}  // namespace tasklease::kube
