// An informer against kubesim while kubesim keeps dropping its watch, forcing 410s, and the
// store is compacted: the cache must end equal to the server, and handlers must see every
// object's states in order, each once.

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "kube/informer.h"
#include "tests/kube/kubesim_fixture.h"

namespace tasklease::kube::testing {
namespace {

// Checks, per object, that handlers see a consistent history: add only when absent, update
// and delete only when present, resourceVersions increasing, and an update's old object equal
// to the state last delivered.
class HistoryChecker {
 public:
  ResourceEventHandler handler() {
    return {[this](const Json& o) { onAdd(o); },
            [this](const Json& o, const Json& n) { onUpdate(o, n); },
            [this](const Json& o) { onDelete(o); }};
  }
  std::vector<std::string> violations() const {
    std::lock_guard lock(mu_);
    return violations_;
  }
  int events() const {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  struct State {
    bool present = false;
    int64_t rv = 0;
  };
  static int64_t rvOf(const Json& o) { return std::stoll(resourceVersionOf(o)); }

  void onAdd(const Json& o) {
    std::lock_guard lock(mu_);
    ++events_;
    State& s = states_[objectKeyOf(o).toString()];
    if (s.present) fail("add of a present object", o);
    if (rvOf(o) <= s.rv) fail("add with an old resourceVersion", o);
    s = {true, rvOf(o)};
  }
  void onUpdate(const Json& old, const Json& next) {
    std::lock_guard lock(mu_);
    ++events_;
    State& s = states_[objectKeyOf(next).toString()];
    if (!s.present) fail("update of an absent object", next);
    if (rvOf(old) != s.rv) fail("update whose old state is not the last one seen", next);
    if (rvOf(next) <= s.rv) fail("update to a state seen before or older", next);
    s = {true, rvOf(next)};
  }
  void onDelete(const Json& o) {
    std::lock_guard lock(mu_);
    ++events_;
    State& s = states_[objectKeyOf(o).toString()];
    if (!s.present) fail("delete of an absent object", o);
    if (rvOf(o) < s.rv) fail("delete with an older state", o);
    s = {false, std::max(s.rv, rvOf(o))};
  }
  void fail(const std::string& what, const Json& o) {
    violations_.push_back(what + ": " + objectKeyOf(o).toString() + " rv " + resourceVersionOf(o));
  }

  mutable std::mutex mu_;
  std::map<std::string, State> states_;  // guarded by mu_
  std::vector<std::string> violations_;  // guarded by mu_
  int events_ = 0;                       // guarded by mu_
};

std::map<std::string, std::string> versions(const std::vector<ObjectPtr>& objects) {
  std::map<std::string, std::string> out;
  for (const auto& o : objects) out[objectKeyOf(*o).toString()] = resourceVersionOf(*o);
  return out;
}

std::map<std::string, std::string> versions(const std::vector<Json>& objects) {
  std::map<std::string, std::string> out;
  for (const auto& o : objects) out[objectKeyOf(o).toString()] = resourceVersionOf(o);
  return out;
}

using InformerKubesimTest = KubesimTest;

TEST_F(InformerKubesimTest, StaysExactWhileWatchesDropAndExpire) {
  const Status faults = sim_.setFaults(
      {{"seed", 11},
       {"watchDrop", {{"resources", {"configmaps"}}, {"afterSeconds", 1.0}, {"abrupt", true}}},
       {"watchExpire", {{"resources", {"configmaps"}}, {"rate", 0.4}}}});
  ASSERT_TRUE(faults.ok()) << faults.toString();

  InformerOptions opts;
  opts.ns = "default";
  opts.pageSize = 25;
  opts.backoff = {std::chrono::milliseconds(20), 2.0, 0.5, std::chrono::milliseconds(500)};
  Informer informer(*client_, resources::kConfigMaps, opts);
  HistoryChecker checker;
  informer.addEventHandler(checker.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(10)));

  // Writers churn 60 objects for a few seconds: create, update, delete at random.
  std::atomic<bool> done{false};
  std::atomic<int> writes{0};
  std::vector<std::thread> writers;
  writers.reserve(3);
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      std::mt19937 rng(static_cast<unsigned>(w) + 1);
      while (!done) {
        const std::string name = "churn-" + std::to_string(rng() % 60);
        const int op = static_cast<int>(rng() % 3);
        if (op == 0) {
          const Json cm = {{"apiVersion", "v1"},
                           {"kind", "ConfigMap"},
                           {"metadata", {{"namespace", "default"}, {"name", name}}},
                           {"data", {{"v", "0"}}}};
          if (client_->create(resources::kConfigMaps, cm).ok()) ++writes;
        } else if (op == 1) {
          if (client_
                  ->patch(resources::kConfigMaps, {"default", name},
                          Json{{"data", {{"v", std::to_string(rng())}}}})
                  .ok()) {
            ++writes;
          }
        } else if (client_->remove(resources::kConfigMaps, {"default", name}).ok()) {
          ++writes;
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  ASSERT_TRUE(sim_.compact().ok());  // every resourceVersion the informer holds is now too old
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  done = true;
  for (auto& t : writers) t.join();
  auto counts = sim_.faultCounts();
  ASSERT_TRUE(sim_.clearFaults().ok());

  auto server = listAll(*client_, resources::kConfigMaps, "default");
  ASSERT_TRUE(server.ok()) << server.status().toString();
  const auto want = versions(server->items);
  bool converged = false;
  for (int i = 0; i < 300 && !converged; ++i) {
    converged = versions(informer.cache().list()) == want;
    if (!converged) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  informer.stop();

  EXPECT_TRUE(converged) << "cache has " << informer.cache().size() << " objects, server "
                         << want.size();
  EXPECT_EQ(checker.violations(), std::vector<std::string>{});
  EXPECT_GT(writes.load(), 100);
  EXPECT_GE(informer.listCount(), 2);   // relisted after a 410
  EXPECT_GE(informer.watchCount(), 3);  // resumed after drops
  std::printf("informer: %d writes, %d handler events, %d lists, %d watches, faults %s\n",
              writes.load(), checker.events(), informer.listCount(), informer.watchCount(),
              counts.ok() ? (*counts)["injected"].dump().c_str() : "?");
}

}  // namespace
}  // namespace tasklease::kube::testing
