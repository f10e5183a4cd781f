#include "kube/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/base64.h"
#include "tests/kube/test_util.h"

namespace tasklease::kube {
namespace {

using testing::TempDir;

const char* const kCaPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

std::string tokenKubeconfig(const std::string& server = "https://127.0.0.1:6443") {
  return R"(apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: )" +
         server + R"(
    certificate-authority-data: )" +
         base64Encode(kCaPem) + R"(
    tls-server-name: kubernetes.default
users:
- name: u1
  user:
    token: secret-token
contexts:
- name: ctx1
  context: {cluster: c1, user: u1, namespace: team-a}
current-context: ctx1
)";
}

TEST(KubeconfigTest, ParsesTokenUserClusterAndContextNamespace) {
  auto cfg = parseKubeconfig(tokenKubeconfig(), "/tmp/kc");
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://127.0.0.1:6443");
  EXPECT_EQ(cfg->caPem, kCaPem);
  EXPECT_EQ(cfg->bearerToken, "secret-token");
  EXPECT_EQ(cfg->tlsServerName, "kubernetes.default");
  EXPECT_EQ(cfg->ns, "team-a");
  EXPECT_FALSE(cfg->exec.has_value());
}

TEST(KubeconfigTest, StripsTrailingSlashFromServer) {
  auto cfg = parseKubeconfig(tokenKubeconfig("https://example.com:443/"), "/tmp/kc");
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://example.com:443");
}

TEST(KubeconfigTest, ContextOverrideSelectsAnotherContext) {
  const std::string yaml = R"(clusters:
- name: a
  cluster: {server: "https://a:1"}
- name: b
  cluster: {server: "https://b:2"}
contexts:
- name: ca
  context: {cluster: a}
- name: cb
  context: {cluster: b}
current-context: ca
)";
  auto def = parseKubeconfig(yaml, "/k");
  ASSERT_TRUE(def.ok()) << def.status().toString();
  EXPECT_EQ(def->server, "https://a:1");
  EXPECT_EQ(def->ns, "default");
  auto other = parseKubeconfig(yaml, "/k", "cb");
  ASSERT_TRUE(other.ok()) << other.status().toString();
  EXPECT_EQ(other->server, "https://b:2");
}

TEST(KubeconfigTest, ReadsFilesRelativeToTheKubeconfig) {
  TempDir dir;
  dir.write("pki/ca.crt", kCaPem);
  dir.write("pki/client.crt", "CERT");
  dir.write("pki/client.key", "KEY");
  dir.write("token", "file-token\n");
  const std::string path = dir.write("config", R"(clusters:
- name: c
  cluster: {server: "https://h:6443", certificate-authority: pki/ca.crt}
users:
- name: u
  user: {client-certificate: pki/client.crt, client-key: pki/client.key, tokenFile: token}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)");
  auto cfg = loadKubeconfig({{path}, ""});
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->caPem, kCaPem);
  EXPECT_EQ(cfg->clientCertPem, "CERT");
  EXPECT_EQ(cfg->clientKeyPem, "KEY");
  EXPECT_EQ(cfg->bearerTokenFile, dir.path() + "/token");
}

TEST(KubeconfigTest, MergesFilesWithFirstDefinitionWinning) {
  TempDir dir;
  const std::string first = dir.write("first", R"(clusters:
- name: shared
  cluster: {server: "https://first:1"}
current-context: from-first
)");
  const std::string second = dir.write("second", R"(clusters:
- name: shared
  cluster: {server: "https://second:2"}
users:
- name: u
  user: {token: t2}
contexts:
- name: from-first
  context: {cluster: shared, user: u}
current-context: from-second
)");
  auto cfg = loadKubeconfig({{first, second}, ""});
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://first:1");
  EXPECT_EQ(cfg->bearerToken, "t2");
}

TEST(KubeconfigTest, KubeconfigEnvironmentListSkipsMissingFiles) {
  TempDir dir;
  const std::string real = dir.write("real", tokenKubeconfig());
  const char* old = std::getenv("KUBECONFIG");  // NOLINT(concurrency-mt-unsafe)
  const std::string saved = old != nullptr ? old : "";
  const std::string list = dir.path() + "/missing:" + real;
  ::setenv("KUBECONFIG", list.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  auto cfg = loadKubeconfig({});
  if (old != nullptr) {
    ::setenv("KUBECONFIG", saved.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  } else {
    ::unsetenv("KUBECONFIG");  // NOLINT(concurrency-mt-unsafe)
  }
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->bearerToken, "secret-token");
}

TEST(KubeconfigTest, ExplicitMissingFileIsAnError) {
  auto cfg = loadKubeconfig({{"/nonexistent/kubeconfig"}, ""});
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("/nonexistent/kubeconfig"), std::string::npos);
}

TEST(KubeconfigTest, ParsesExecPlugin) {
  auto cfg = parseKubeconfig(R"(clusters:
- name: c
  cluster: {server: "https://h:1"}
users:
- name: u
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/plugin
      args: [get-token, --fast]
      env: [{name: REGION, value: eu}]
      interactiveMode: Never
      provideClusterInfo: true
      installHint: install the plugin
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)",
                             "/etc/kube/config");
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  ASSERT_TRUE(cfg->exec.has_value());
  EXPECT_EQ(cfg->exec->command, "/etc/kube/./bin/plugin");
  EXPECT_EQ(cfg->exec->args, (std::vector<std::string>{"get-token", "--fast"}));
  ASSERT_EQ(cfg->exec->env.size(), 1u);
  EXPECT_EQ(cfg->exec->env[0].first, "REGION");
  EXPECT_TRUE(cfg->exec->provideClusterInfo);
  EXPECT_EQ(cfg->exec->interactiveMode, "Never");
}

// ---- malformed input: each error names the file and the field ----

struct MalformedCase {
  const char* name;
  std::string yaml;
  std::vector<std::string> mustMention;
};

class MalformedKubeconfigTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedKubeconfigTest, ErrorNamesFileAndField) {
  auto cfg = parseKubeconfig(GetParam().yaml, "/home/me/.kube/config");
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument) << cfg.status().toString();
  const std::string msg = cfg.status().message();
  EXPECT_NE(msg.find("/home/me/.kube/config"), std::string::npos) << msg;
  for (const auto& part : GetParam().mustMention) {
    EXPECT_NE(msg.find(part), std::string::npos) << "missing \"" << part << "\" in: " << msg;
  }
}

const std::string kCtx = R"(contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
)";

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedKubeconfigTest,
    ::testing::Values(
        MalformedCase{"NotYaml", "clusters: [\n  - {name: c", {"line", "not valid YAML"}},
        MalformedCase{"TopLevelList", "- a\n- b\n", {"must be a YAML map"}},
        MalformedCase{"ClustersNotList", "clusters: {a: 1}\n", {"clusters", "must be a list"}},
        MalformedCase{"ClusterWithoutName",
                      "clusters:\n- cluster: {server: \"https://h\"}\n",
                      {"clusters[0].name", "required"}},
        MalformedCase{"ServerNotString",
                      "clusters:\n- name: c\n  cluster: {server: [1, 2]}\n",
                      {"clusters[0] (\"c\").cluster.server", "must be a string", "line 3"}},
        MalformedCase{"BadBase64",
                      "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
                      "    certificate-authority-data: '%%%'\n",
                      {"certificate-authority-data", "base64"}},
        MalformedCase{"InsecureNotBool",
                      "clusters:\n- name: c\n  cluster: {server: https://h, "
                      "insecure-skip-tls-verify: maybe}\n",
                      {"insecure-skip-tls-verify", "true or false"}},
        MalformedCase{"NoCurrentContext",
                      "clusters:\n- name: c\n  cluster: {server: https://h}\n",
                      {"current-context is not set"}},
        MalformedCase{"UnknownContext",
                      "clusters:\n- name: c\n  cluster: {server: https://h}\n"
                      "current-context: nope\n",
                      {"context \"nope\" not found"}},
        MalformedCase{"ContextNamesMissingCluster",
                      "users:\n- name: u\n  user: {token: t}\n" + kCtx,
                      {"contexts[0] (\"x\").context.cluster", "cluster \"c\" is not defined"}},
        MalformedCase{"ContextNamesMissingUser",
                      "clusters:\n- name: c\n  cluster: {server: https://h}\n" + kCtx,
                      {"context.user", "user \"u\" is not defined"}},
        MalformedCase{"ServerMissing",
                      "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: true}\n"
                      "users:\n- name: u\n  user: {token: t}\n" +
                          kCtx,
                      {"cluster.server", "required"}},
        MalformedCase{"ServerNotUrl",
                      "clusters:\n- name: c\n  cluster: {server: h:6443}\n"
                      "users:\n- name: u\n  user: {token: t}\n" +
                          kCtx,
                      {"cluster.server", "https://"}},
        MalformedCase{"CertWithoutKey",
                      "clusters:\n- name: c\n  cluster: {server: https://h}\n"
                      "users:\n- name: u\n  user: {client-certificate-data: Q0VSVA==}\n" +
                          kCtx,
                      {"users[0] (\"u\").user", "client-key"}},
        MalformedCase{"MissingCaFile",
                      "clusters:\n- name: c\n  cluster: {server: https://h, "
                      "certificate-authority: /no/such/ca.crt}\n"
                      "users:\n- name: u\n  user: {token: t}\n" +
                          kCtx,
                      {"certificate-authority", "/no/such/ca.crt"}},
        MalformedCase{"ExecV1WithoutInteractiveMode",
                      "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1\n      command: p\n",
                      {"users[0] (\"u\").user.exec.interactiveMode", "required"}},
        MalformedCase{"ExecUnknownApiVersion",
                      "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1alpha1\n      command: p\n",
                      {"exec.apiVersion", "not supported"}},
        MalformedCase{"ExecWithoutCommand",
                      "users:\n- name: u\n  user:\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1\n      interactiveMode: Never\n",
                      {"exec.command", "required"}},
        MalformedCase{"AuthProviderUnsupported",
                      "users:\n- name: u\n  user:\n    auth-provider: {name: gcp}\n",
                      {"auth-provider", "not supported"}},
        MalformedCase{"TokenAndExec",
                      "clusters:\n- name: c\n  cluster: {server: https://h}\n"
                      "users:\n- name: u\n  user:\n    token: t\n    exec:\n      apiVersion: "
                      "client.authentication.k8s.io/v1\n      command: p\n"
                      "      interactiveMode: Never\n" +
                          kCtx,
                      {"only one of exec and token"}},
        MalformedCase{"MissingTokenFile",
                      "clusters:\n- name: c\n  cluster: {server: https://h}\n"
                      "users:\n- name: u\n  user: {tokenFile: /no/such/token}\n" +
                          kCtx,
                      {"tokenFile", "/no/such/token"}}),
    [](const ::testing::TestParamInfo<MalformedCase>& p) { return p.param.name; });

// ---- in-cluster ----

class InClusterTest : public ::testing::Test {
 protected:
  InClusterOptions options(const std::map<std::string, std::string>& env) {
    InClusterOptions o;
    o.root = dir_.path();
    o.getenv = [env](const std::string& name) -> std::optional<std::string> {
      const auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    return o;
  }
  void writeMount(const std::string& token = "pod-token\n", const std::string& ns = "team-b\n") {
    dir_.write("ca.crt", kCaPem);
    dir_.write("token", token);
    dir_.write("namespace", ns);
  }
  TempDir dir_;
};

TEST_F(InClusterTest, BuildsConfigFromEnvironmentAndMount) {
  writeMount();
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://10.0.0.1:443");
  EXPECT_EQ(cfg->caPem, kCaPem);
  EXPECT_EQ(cfg->bearerTokenFile, dir_.path() + "/token");
  EXPECT_EQ(cfg->ns, "team-b");
}

TEST_F(InClusterTest, BracketsIpv6Host) {
  writeMount();
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "fd00::1"}, {"KUBERNETES_SERVICE_PORT", "6443"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->server, "https://[fd00::1]:6443");
}

TEST_F(InClusterTest, MissingEnvironmentSaysNotInCluster) {
  writeMount();
  auto cfg = loadInClusterConfig(options({{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("KUBERNETES_SERVICE_PORT"), std::string::npos);
}

TEST_F(InClusterTest, NonNumericPortIsRejected) {
  writeMount();
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "https"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("KUBERNETES_SERVICE_PORT"), std::string::npos);
}

TEST_F(InClusterTest, MissingTokenFileIsNamed) {
  dir_.write("ca.crt", kCaPem);
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find(dir_.path() + "/token"), std::string::npos);
}

TEST_F(InClusterTest, EmptyTokenIsRejected) {
  writeMount("  \n");
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("empty"), std::string::npos);
}

TEST_F(InClusterTest, CaWithoutCertificateIsRejected) {
  writeMount();
  dir_.write("ca.crt", "garbage");
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_FALSE(cfg.ok());
  EXPECT_NE(cfg.status().message().find("ca.crt"), std::string::npos);
}

TEST_F(InClusterTest, MissingNamespaceFileMeansDefault) {
  dir_.write("ca.crt", kCaPem);
  dir_.write("token", "t");
  auto cfg = loadInClusterConfig(
      options({{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  ASSERT_TRUE(cfg.ok()) << cfg.status().toString();
  EXPECT_EQ(cfg->ns, "default");
}

}  // namespace
}  // namespace tasklease::kube
