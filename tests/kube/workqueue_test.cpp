#include "kube/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "tests/mocks/fake_clock.h"

namespace tasklease::kube {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// A limiter that never delays, so queue semantics are tested without time.
class NoDelay final : public WorkQueueRateLimiter {
 public:
  nanoseconds when(const std::string&) override { return nanoseconds(0); }
  void forget(const std::string&) override {}
  int numRequeues(const std::string&) override { return 0; }
};

std::unique_ptr<WorkQueueRateLimiter> noDelay() {
  return std::make_unique<NoDelay>();
}

TEST(ItemExponentialRateLimiterTest, DoublesFrom5msAndCapsAt1000s) {
  ItemExponentialRateLimiter limiter(milliseconds(5), std::chrono::seconds(1000));
  EXPECT_EQ(limiter.when("a"), milliseconds(5));
  EXPECT_EQ(limiter.when("a"), milliseconds(10));
  EXPECT_EQ(limiter.when("a"), milliseconds(20));
  EXPECT_EQ(limiter.when("b"), milliseconds(5));  // per item
  EXPECT_EQ(limiter.numRequeues("a"), 3);
  for (int i = 0; i < 30; ++i) limiter.when("a");
  EXPECT_EQ(limiter.when("a"), std::chrono::seconds(1000));
  limiter.forget("a");
  EXPECT_EQ(limiter.numRequeues("a"), 0);
  EXPECT_EQ(limiter.when("a"), milliseconds(5));
}

TEST(ItemExponentialRateLimiterTest, ReachesAbout16MinutesAfterEighteenFailures) {
  ItemExponentialRateLimiter limiter(milliseconds(5), std::chrono::seconds(1000));
  nanoseconds last{0};
  for (int i = 0; i < 18; ++i) last = limiter.when("k");
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(last), milliseconds(5 * (1 << 17)));
}

TEST(BucketRateLimiterTest, SpreadsABurstOverTime) {
  FakeClock clock;
  BucketRateLimiter limiter(10.0, 2, clock);
  EXPECT_EQ(limiter.when("a"), nanoseconds(0));
  EXPECT_EQ(limiter.when("b"), nanoseconds(0));
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(limiter.when("c")), milliseconds(100));
}

TEST(MaxOfRateLimiterTest, DefaultControllerLimiterTakesTheLongerDelay) {
  FakeClock clock;
  auto limiter = defaultControllerRateLimiter(clock);
  EXPECT_EQ(limiter->when("a"), milliseconds(5));
  EXPECT_EQ(limiter->when("a"), milliseconds(10));
  for (int i = 0; i < 98; ++i) limiter->when("other-" + std::to_string(i));
  // The bucket (10 qps, burst 100) is now empty: its delay exceeds 5 ms for a new item.
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(limiter->when("fresh")), milliseconds(100));
  EXPECT_EQ(limiter->numRequeues("a"), 2);
}

TEST(WorkQueueTest, DeduplicatesQueuedKeys) {
  WorkQueue q(noDelay());
  q.add("a");
  q.add("b");
  q.add("a");
  EXPECT_EQ(q.len(), 2u);
  EXPECT_EQ(q.get(), "a");
  EXPECT_EQ(q.get(), "b");
}

TEST(WorkQueueTest, KeyAddedWhileProcessingIsHandedOutAgainOnlyAfterDone) {
  WorkQueue q(noDelay());
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  q.add("a");
  q.add("a");
  EXPECT_EQ(q.len(), 0u);  // not handed to a second worker while the first holds it
  q.done("a");
  EXPECT_EQ(q.len(), 1u);
  EXPECT_EQ(q.get(), "a");
  q.done("a");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueueTest, AddAfterWaitsAndEarlierTimeWins) {
  WorkQueue q(noDelay());
  q.addAfter("later", std::chrono::hours(1));
  EXPECT_EQ(q.len(), 0u);
  EXPECT_EQ(q.delayedLen(), 1u);
  q.addAfter("later", milliseconds(1));  // earlier: replaces the hour
  EXPECT_EQ(q.delayedLen(), 1u);
  EXPECT_EQ(q.get(), "later");  // blocks until due
  q.done("later");
  EXPECT_EQ(q.delayedLen(), 0u);
}

TEST(WorkQueueTest, LaterAddAfterDoesNotPostponeAnEarlierOne) {
  WorkQueue q(noDelay());
  q.addAfter("k", milliseconds(1));
  q.addAfter("k", std::chrono::hours(1));
  EXPECT_EQ(q.get(), "k");
}

TEST(WorkQueueTest, AddRateLimitedUsesTheLimitersDelayAndForgetResets) {
  WorkQueue q(std::make_unique<ItemExponentialRateLimiter>(milliseconds(1), milliseconds(4)));
  q.addRateLimited("k");
  EXPECT_EQ(q.numRequeues("k"), 1);
  EXPECT_EQ(q.get(), "k");
  q.done("k");
  q.addRateLimited("k");
  EXPECT_EQ(q.numRequeues("k"), 2);
  q.forget("k");
  EXPECT_EQ(q.numRequeues("k"), 0);
}

TEST(WorkQueueTest, ShutDownWakesBlockedGetAndDropsDelayed) {
  WorkQueue q(noDelay());
  q.addAfter("x", std::chrono::hours(1));
  std::optional<std::string> got = "unset";
  std::thread worker([&] { got = q.get(); });
  q.shutDown();
  worker.join();
  EXPECT_FALSE(got.has_value());
  EXPECT_EQ(q.delayedLen(), 0u);
  q.add("ignored");
  EXPECT_EQ(q.len(), 0u);
}

TEST(WorkQueueTest, ShutDownStillHandsOutQueuedKeys) {
  WorkQueue q(noDelay());
  q.add("a");
  q.shutDown();
  EXPECT_EQ(q.get(), "a");
  EXPECT_FALSE(q.get().has_value());
}

TEST(WorkQueueTest, ShutDownWithDrainWaitsForKeysInProcess) {
  WorkQueue q(noDelay());
  q.add("a");
  ASSERT_EQ(q.get(), "a");
  std::atomic<bool> drained{false};
  std::thread closer([&] {
    q.shutDownWithDrain();
    drained = true;
  });
  // The drain cannot finish before done("a"); done() is what releases it.
  while (!q.shuttingDown()) std::this_thread::yield();
  EXPECT_FALSE(drained.load());
  q.done("a");
  closer.join();
  EXPECT_TRUE(drained.load());
}

TEST(WorkQueueTest, NeverHandsOneKeyToTwoWorkersAtOnce) {
  WorkQueue q(noDelay());
  std::mutex mu;
  std::set<std::string> inFlight;
  std::atomic<int> overlaps{0};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  workers.reserve(4);
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.get()) {
        {
          std::lock_guard lock(mu);
          if (!inFlight.insert(*key).second) ++overlaps;
        }
        std::this_thread::yield();
        {
          std::lock_guard lock(mu);
          inFlight.erase(*key);
        }
        ++processed;
        q.done(*key);
      }
    });
  }
  for (int i = 0; i < 5000; ++i) q.add("key-" + std::to_string(i % 3));
  q.shutDownWithDrain();
  for (auto& t : workers) t.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GE(processed.load(), 3);
}

// get() sleeps until the earliest delayed key; keys added meanwhile grow the delay heap. The
// waiting get() must not hold a reference into that heap (under ASan this was a
// heap-use-after-free), and every delayed key must still come out.
TEST(WorkQueueTest, DelayedKeysAddedWhileGetWaitsAllArriveIntact) {
  WorkQueue q(noDelay());
  constexpr int kKeys = 2000;
  std::set<std::string> got;
  std::thread worker([&] {
    while (auto key = q.get()) {
      got.insert(*key);
      q.done(*key);
      if (got.size() == kKeys) break;
    }
  });
  // The first key is far out, so get() is waiting on it while the heap grows beneath it.
  q.addAfter("key-0", milliseconds(300));
  for (int i = 1; i < kKeys; ++i) q.addAfter("key-" + std::to_string(i), milliseconds(1 + i % 50));
  worker.join();
  q.shutDown();
  EXPECT_EQ(got.size(), static_cast<size_t>(kKeys));
  EXPECT_EQ(got.count("key-0"), 1U);
  EXPECT_EQ(got.count("key-" + std::to_string(kKeys - 1)), 1U);
}

}  // namespace
}  // namespace tasklease::kube
