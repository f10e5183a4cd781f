#pragma once
// Kubesim: starts the local API emulator (e2e/kubesim) for one test and stops it afterwards.
// It waits for kubesim's "ready" line, so a test can use it at once.
//
//   Kubesim sim;                       // in a fixture's SetUp: ASSERT_TRUE(sim.start().ok())
//   auto client = sim.adminClient();
//   sim.setFaults({{"watchDrop", {{"afterSeconds", 2}}}});

#include <sys/types.h>

#include <memory>
#include <string>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client_impl.h"
#include "kube/config.h"
#include "tests/kube/test_util.h"

namespace tasklease::kube::testing {

class Kubesim {
 public:
  Kubesim() = default;
  ~Kubesim();
  Kubesim(const Kubesim&) = delete;
  Kubesim& operator=(const Kubesim&) = delete;

  // `tokenFile`: lines of kube-apiserver's static token CSV (token,user,uid,"groups").
  Status start(const std::string& tokenFile = "");
  void stop();

  const std::string& url() const { return url_; }
  const std::string& kubeconfigPath() const { return kubeconfig_; }
  std::string certDir() const { return dir_.path() + "/certs"; }
  const TempDir& dir() const { return dir_; }

  // The admin kubeconfig (system:masters), with test-friendly client settings: no client-side
  // rate limit and quick retries.
  RestConfig adminConfig() const;
  std::unique_ptr<ApiClientImpl> adminClient() const;

  // PUT /kubesim/faults with `faults`; DELETE /kubesim/faults; POST /kubesim/compact;
  // GET /kubesim/faults (the configuration and counts of injected faults).
  Status setFaults(const Json& faults) const;
  Status clearFaults() const;
  Status compact() const;
  StatusOr<Json> faultCounts() const;

 private:
  TempDir dir_;
  pid_t pid_ = -1;
  std::string url_;
  std::string kubeconfig_;
};

}  // namespace tasklease::kube::testing

#include <gtest/gtest.h>

namespace tasklease::kube::testing {

// A test that starts its own kubesim and holds an admin client.
class KubesimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const Status started = sim_.start(tokenFile());
    ASSERT_TRUE(started.ok()) << started.toString();
    client_ = sim_.adminClient();
    ASSERT_NE(client_, nullptr);
  }
  virtual std::string tokenFile() const { return ""; }

  Kubesim sim_;
  std::unique_ptr<ApiClientImpl> client_;
};

}  // namespace tasklease::kube::testing
