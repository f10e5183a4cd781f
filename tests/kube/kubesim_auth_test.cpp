// Each way a kubeconfig can authenticate, against kubesim: static token, tokenFile, client
// certificate (files and -data), exec plugins (token and client certificate), tls-server-name.

#include <fstream>

#include "common/base64.h"
#include "kube/errors.h"
#include "tests/kube/kubesim_fixture.h"
#include "tests/kube/test_pki.h"

namespace tasklease::kube::testing {
namespace {

const ResourceRef kSelfSubjectReviews{"authentication.k8s.io", "v1", "selfsubjectreviews",
                                      "SelfSubjectReview", false};

class AuthTest : public KubesimTest {
 protected:
  std::string tokenFile() const override {
    return "alice-token,alice,uid-alice,\"system:masters,devs\"\n";
  }

  // The kubeconfig for kubesim's server and CA with the given user body (YAML flow map).
  std::string kubeconfig(const std::string& user, const std::string& clusterExtra = "") const {
    const std::string ca = readFileOrEmpty(sim_.certDir() + "/ca.crt");
    return "clusters:\n- name: sim\n  cluster:\n    server: " + sim_.url() +
           "\n    certificate-authority-data: " + base64Encode(ca) + "\n" + clusterExtra +
           "users:\n- name: u\n  user: " + user +
           "\ncontexts:\n- name: c\n  context: {cluster: sim, user: u}\ncurrent-context: c\n";
  }

  // Who the server says we are, through a client built from `kubeconfigYaml`.
  StatusOr<std::string> whoAmI(const std::string& kubeconfigYaml) const {
    const std::string path = sim_.dir().write("kc-" + std::to_string(++counter_), kubeconfigYaml);
    auto cfg = loadKubeconfig({{path}, ""});
    if (!cfg.ok()) return cfg.status();
    cfg->retry.maxAttempts = 2;  // a rejected handshake looks like a reset connection
    auto client = makeApiClient(*cfg);
    if (!client.ok()) return client.status();
    const Json review = {{"apiVersion", "authentication.k8s.io/v1"},
                         {"kind", "SelfSubjectReview"},
                         {"metadata", Json::object()}};
    auto answer = (*client)->create(kSelfSubjectReviews, review);
    if (!answer.ok()) return answer.status();
    return (*answer)["status"]["userInfo"].value("username", std::string());
  }

  KeyPair clusterCa() const {
    return {readFileOrEmpty(sim_.certDir() + "/ca.crt"),
            readFileOrEmpty(sim_.certDir() + "/ca.key")};
  }

  mutable int counter_ = 0;
};

TEST_F(AuthTest, StaticTokenAuthenticates) {
  auto who = whoAmI(kubeconfig("{token: alice-token}"));
  ASSERT_TRUE(who.ok()) << who.status().toString();
  EXPECT_EQ(*who, "alice");
}

TEST_F(AuthTest, WrongTokenIsUnauthenticated) {
  auto who = whoAmI(kubeconfig("{token: wrong}"));
  ASSERT_FALSE(who.ok());
  EXPECT_EQ(who.status().code(), StatusCode::kUnauthenticated) << who.status().toString();
  EXPECT_EQ(who.status().httpCode(), 401);
}

TEST_F(AuthTest, TokenFileAuthenticates) {
  const std::string file = sim_.dir().write("alice.token", "alice-token\n");
  auto who = whoAmI(kubeconfig("{tokenFile: " + file + "}"));
  ASSERT_TRUE(who.ok()) << who.status().toString();
  EXPECT_EQ(*who, "alice");
}

TEST_F(AuthTest, ClientCertificateFilesAuthenticate) {
  const KeyPair client = issueClientCert(clusterCa(), "carol", {"system:masters"});
  const std::string cert = sim_.dir().write("carol.crt", client.certPem);
  const std::string key = sim_.dir().write("carol.key", client.keyPem);
  auto who = whoAmI(kubeconfig("{client-certificate: " + cert + ", client-key: " + key + "}"));
  ASSERT_TRUE(who.ok()) << who.status().toString();
  EXPECT_EQ(*who, "carol");
}

TEST_F(AuthTest, ClientCertificateDataAuthenticates) {
  const KeyPair client = issueClientCert(clusterCa(), "dave", {"system:masters"});
  auto who = whoAmI(kubeconfig("{client-certificate-data: " + base64Encode(client.certPem) +
                               ", client-key-data: " + base64Encode(client.keyPem) + "}"));
  ASSERT_TRUE(who.ok()) << who.status().toString();
  EXPECT_EQ(*who, "dave");
}

TEST_F(AuthTest, CertificateFromAnotherCaIsNotTrusted) {
  const KeyPair otherCa = makeCa("other");
  const KeyPair client = issueClientCert(otherCa, "mallory", {"system:masters"});
  auto who = whoAmI(kubeconfig("{client-certificate-data: " + base64Encode(client.certPem) +
                               ", client-key-data: " + base64Encode(client.keyPem) + "}"));
  // kubesim resets the connection; a real API server sends a TLS alert. Either way the
  // request fails and nothing authenticates as mallory.
  ASSERT_FALSE(who.ok());
  EXPECT_EQ(who.status().code(), StatusCode::kUnavailable) << who.status().toString();
}

TEST_F(AuthTest, ExecPluginTokenAuthenticates) {
  const std::string plugin = sim_.dir().write(
      "token-plugin.sh",
      "#!/bin/sh\n"
      "echo '{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\","
      "\"status\":{\"token\":\"alice-token\",\"expirationTimestamp\":\"2200-01-01T00:00:00Z\"}}'\n",
      true);
  auto who =
      whoAmI(kubeconfig("\n    exec:\n      apiVersion: client.authentication.k8s.io/v1"
                        "\n      command: " +
                        plugin + "\n      interactiveMode: Never\n"));
  ASSERT_TRUE(who.ok()) << who.status().toString();
  EXPECT_EQ(*who, "alice");
}

TEST_F(AuthTest, ExecPluginClientCertificateAuthenticates) {
  const KeyPair client = issueClientCert(clusterCa(), "erin", {"system:masters"});
  const Json credential = {
      {"apiVersion", "client.authentication.k8s.io/v1"},
      {"kind", "ExecCredential"},
      {"status", {{"clientCertificateData", client.certPem}, {"clientKeyData", client.keyPem}}}};
  const std::string json = sim_.dir().write("cred.json", credential.dump());
  const std::string plugin =
      sim_.dir().write("cert-plugin.sh", "#!/bin/sh\ncat " + json + "\n", true);
  auto who =
      whoAmI(kubeconfig("\n    exec:\n      apiVersion: client.authentication.k8s.io/v1"
                        "\n      command: " +
                        plugin + "\n      interactiveMode: Never\n"));
  ASSERT_TRUE(who.ok()) << who.status().toString();
  EXPECT_EQ(*who, "erin");
}

TEST_F(AuthTest, TlsServerNameIsUsedForVerification) {
  // The serving certificate names localhost and 127.0.0.1; connecting by IP while expecting
  // "localhost" must verify, expecting another name must not.
  auto good = whoAmI(kubeconfig("{token: alice-token}", "    tls-server-name: localhost\n"));
  ASSERT_TRUE(good.ok()) << good.status().toString();
  auto bad = whoAmI(kubeconfig("{token: alice-token}", "    tls-server-name: evil.example\n"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().reason(), "TLSVerificationFailed") << bad.status().toString();
}

TEST_F(AuthTest, UntrustedServerCertificateFailsWithoutRetrying) {
  const KeyPair otherCa = makeCa("other");
  std::string yaml = kubeconfig("{token: alice-token}");
  const std::string ours = base64Encode(readFileOrEmpty(sim_.certDir() + "/ca.crt"));
  yaml.replace(yaml.find(ours), ours.size(), base64Encode(otherCa.certPem));
  auto who = whoAmI(yaml);
  ASSERT_FALSE(who.ok());
  EXPECT_EQ(who.status().reason(), "TLSVerificationFailed") << who.status().toString();
  EXPECT_FALSE(isRetryable(who.status()));
}

TEST_F(AuthTest, MismatchedClientKeyIsReportedBeforeAnyRequest) {
  const KeyPair a = issueClientCert(clusterCa(), "a", {});
  const KeyPair b = issueClientCert(clusterCa(), "b", {});
  auto who = whoAmI(kubeconfig("{client-certificate-data: " + base64Encode(a.certPem) +
                               ", client-key-data: " + base64Encode(b.keyPem) + "}"));
  ASSERT_FALSE(who.ok());
  EXPECT_NE(who.status().message().find("do not match"), std::string::npos)
      << who.status().toString();
}

}  // namespace
}  // namespace tasklease::kube::testing
