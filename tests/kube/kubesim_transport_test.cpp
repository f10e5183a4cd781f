// The transport against kubesim: proxy-url, and connections kept and reused between calls.

#include <thread>

#include "tests/kube/connect_proxy.h"
#include "tests/kube/kubesim_fixture.h"

namespace tasklease::kube::testing {
namespace {

using TransportKubesimTest = KubesimTest;

TEST_F(TransportKubesimTest, ProxyUrlTunnelsThroughTheProxy) {
  ConnectProxy proxy;
  RestConfig cfg = sim_.adminConfig();
  cfg.proxyUrl = proxy.url();
  auto client = makeApiClient(cfg);
  ASSERT_TRUE(client.ok()) << client.status().toString();
  auto listed = (*client)->list(resources::kNamespaces, "");
  ASSERT_TRUE(listed.ok()) << listed.status().toString();
  ASSERT_GE(proxy.tunnels(), 1);
  const std::string port = sim_.url().substr(sim_.url().rfind(':') + 1);
  EXPECT_EQ(proxy.targets()[0], "127.0.0.1:" + port);
}

TEST_F(TransportKubesimTest, SequentialCallsReuseOneConnection) {
  ConnectProxy proxy;  // counts the connections the client opens
  RestConfig cfg = sim_.adminConfig();
  cfg.proxyUrl = proxy.url();
  auto client = makeApiClient(cfg);
  ASSERT_TRUE(client.ok()) << client.status().toString();
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE((*client)->get(resources::kNamespaces, {"", "default"}).ok());
  }
  EXPECT_EQ(proxy.tunnels(), 1);
}

TEST_F(TransportKubesimTest, ConcurrentCallersShareAFewConnections) {
  ConnectProxy proxy;
  RestConfig cfg = sim_.adminConfig();
  cfg.proxyUrl = proxy.url();
  auto client = makeApiClient(cfg);
  ASSERT_TRUE(client.ok()) << client.status().toString();
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  threads.reserve(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!(*client)->get(resources::kNamespaces, {"", "default"}).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  // At most one connection per concurrent caller, not one per call.
  EXPECT_LE(proxy.tunnels(), 4);
}

}  // namespace
}  // namespace tasklease::kube::testing
