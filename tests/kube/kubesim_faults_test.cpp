// 500 creates and 500 deletes while kubesim fails 10% of them with 500 (half before acting,
// half after, when the client cannot know) and 5% of all requests with 429: every call must
// end in the intended state, with nothing lost and nothing created twice.

#include <atomic>
#include <set>
#include <thread>

#include "tests/kube/kubesim_fixture.h"

namespace tasklease::kube::testing {
namespace {

using FaultsKubesimTest = KubesimTest;

TEST_F(FaultsKubesimTest, CreatesAndDeletesConvergeUnderInjectedErrors) {
  const Json faults = {{"seed", 42},
                       {"errors",
                        {{{"verbs", {"create", "delete"}},
                          {"resources", {"configmaps"}},
                          {"rate", 0.05},
                          {"code", 500},
                          {"when", "before"}},
                         {{"verbs", {"create", "delete"}},
                          {"resources", {"configmaps"}},
                          {"rate", 0.0527},
                          {"code", 500},
                          {"when", "after"}},
                         {{"rate", 0.05}, {"code", 429}, {"retryAfterSeconds", 1}}}}};
  ASSERT_TRUE(sim_.setFaults(faults).ok());

  constexpr int kObjects = 500;
  constexpr int kWorkers = 20;
  std::mutex mu;
  std::map<std::string, std::string> uidByName;  // guarded by mu
  std::vector<std::string> failures;             // guarded by mu
  const auto runAll = [&](const std::function<Status(int)>& op) {
    std::vector<std::thread> workers;
    workers.reserve(kWorkers);
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&, w] {
        for (int i = w; i < kObjects; i += kWorkers) {
          const Status s = op(i);
          if (!s.ok()) {
            std::lock_guard lock(mu);
            failures.push_back(s.toString());
          }
        }
      });
    }
    for (auto& t : workers) t.join();
  };

  runAll([&](int i) -> Status {
    const std::string name = "faulty-" + std::to_string(i);
    const Json cm = {
        {"apiVersion", "v1"},
        {"kind", "ConfigMap"},
        {"metadata", {{"namespace", "default"}, {"name", name}, {"labels", {{"run", "faults"}}}}},
        {"data", {{"index", std::to_string(i)}}}};
    auto created = client_->create(resources::kConfigMaps, cm);
    if (!created.ok()) return created.status();
    std::lock_guard lock(mu);
    uidByName[name] = uidOf(*created);
    return {};
  });
  ASSERT_EQ(failures, std::vector<std::string>{});

  ListOptions mine;
  mine.labelSelector = "run=faults";
  auto listed = listAll(*client_, resources::kConfigMaps, "default", mine);
  ASSERT_TRUE(listed.ok()) << listed.status().toString();
  ASSERT_EQ(listed->items.size(), static_cast<size_t>(kObjects));
  for (const auto& item : listed->items) {
    const std::string name = objectKeyOf(item).name;
    // The object each create reported is the one on the server: no second incarnation.
    EXPECT_EQ(uidByName[name], uidOf(item)) << name;
    EXPECT_EQ(item["data"]["index"], name.substr(std::string("faulty-").size()));
  }

  runAll([&](int i) {
    return client_->remove(resources::kConfigMaps, {"default", "faulty-" + std::to_string(i)});
  });
  ASSERT_EQ(failures, std::vector<std::string>{});
  auto after = listAll(*client_, resources::kConfigMaps, "default", mine);
  ASSERT_TRUE(after.ok()) << after.status().toString();
  EXPECT_TRUE(after->items.empty());

  auto counts = sim_.faultCounts();
  ASSERT_TRUE(counts.ok());
  EXPECT_GT((*counts)["injected"].value("errors", 0), 50);
  std::printf("faults: %s injected over %d creates and %d deletes\n",
              (*counts)["injected"].dump().c_str(), kObjects, kObjects);
}

}  // namespace
}  // namespace tasklease::kube::testing
