#include "kube/backoff.h"

#include <gtest/gtest.h>

#include "kube/rate_limiter.h"
#include "tests/mocks/fake_clock.h"

namespace tasklease::kube {
namespace {

using std::chrono::milliseconds;

TEST(BackoffTest, GrowsExponentiallyWithinJitterBounds) {
  Backoff b(BackoffPolicy{milliseconds(100), 2.0, 0.5, milliseconds(100000)}, 42);
  int64_t base = 100;
  for (int i = 0; i < 8; ++i) {
    const auto d = b.next().count();
    EXPECT_GE(d, base) << "step " << i;
    EXPECT_LT(d, base + base / 2 + 1) << "step " << i;
    base *= 2;
  }
  EXPECT_EQ(b.steps(), 8);
}

TEST(BackoffTest, CapsAtMaxPlusJitter) {
  Backoff b(BackoffPolicy{milliseconds(100), 2.0, 0.2, milliseconds(1000)}, 1);
  for (int i = 0; i < 200; ++i) b.next();
  const auto d = b.next().count();
  EXPECT_GE(d, 1000);
  EXPECT_LE(d, 1200);
}

TEST(BackoffTest, WithoutJitterIsExact) {
  Backoff b(BackoffPolicy{milliseconds(5), 2.0, 0.0, milliseconds(40)}, 1);
  EXPECT_EQ(b.next(), milliseconds(5));
  EXPECT_EQ(b.next(), milliseconds(10));
  EXPECT_EQ(b.next(), milliseconds(20));
  EXPECT_EQ(b.next(), milliseconds(40));
  EXPECT_EQ(b.next(), milliseconds(40));
}

TEST(BackoffTest, ResetStartsOver) {
  Backoff b(BackoffPolicy{milliseconds(10), 3.0, 0.0, milliseconds(1000)}, 1);
  b.next();
  b.next();
  b.reset();
  EXPECT_EQ(b.next(), milliseconds(10));
}

TEST(BackoffTest, JitterDiffersAcrossSeeds) {
  const BackoffPolicy p{milliseconds(1000), 2.0, 1.0, milliseconds(100000)};
  Backoff a(p, 1);
  Backoff b(p, 2);
  bool differs = false;
  for (int i = 0; i < 5; ++i) differs = differs || a.next() != b.next();
  EXPECT_TRUE(differs);
}

TEST(TokenBucketTest, AllowsBurstThenSpacesByQps) {
  FakeClock clock;
  TokenBucket bucket(10.0, 3, clock);
  EXPECT_EQ(bucket.reserve().count(), 0);
  EXPECT_EQ(bucket.reserve().count(), 0);
  EXPECT_EQ(bucket.reserve().count(), 0);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(bucket.reserve()), milliseconds(100));
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(bucket.reserve()), milliseconds(200));
}

TEST(TokenBucketTest, RefillsOverTimeUpToBurst) {
  FakeClock clock;
  TokenBucket bucket(10.0, 2, clock);
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_FALSE(bucket.tryAccept());
  clock.advance(milliseconds(100));
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_FALSE(bucket.tryAccept());
  clock.advance(std::chrono::seconds(10));  // refills to the burst only
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_TRUE(bucket.tryAccept());
  EXPECT_FALSE(bucket.tryAccept());
}

TEST(TokenBucketTest, ZeroQpsMeansUnlimited) {
  FakeClock clock;
  TokenBucket bucket(0, 1, clock);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(bucket.reserve().count(), 0);
}

TEST(TokenBucketTest, WaitReturnsFalseWhenStopped) {
  FakeClock clock;
  TokenBucket bucket(0.001, 1, clock);
  bucket.reserve();  // the next token is ~1000 s away
  std::stop_source stop;
  stop.request_stop();
  EXPECT_FALSE(bucket.wait(stop.get_token()));
}

}  // namespace
}  // namespace tasklease::kube
