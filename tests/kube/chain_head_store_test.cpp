#include "kube/chain_head_store.h"

#include <gtest/gtest.h>

#include "tests/mocks/fake_api_client.h"

namespace tasklease::kube {
namespace {

TEST(ChainHeadStoreTest, TheHeadIsKeptInAConfigMapAcrossRestarts) {
  FakeApiClient fake;
  ConfigMapChainHeadStore store(fake, {"tasklease-system", "evidence"});
  auto empty = store.load();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  ASSERT_TRUE(store.save({3, std::string(64, 'a')}).ok());
  ASSERT_TRUE(store.save({4, std::string(64, 'b')}).ok());
  ASSERT_TRUE(store.flush(std::chrono::seconds(5)).ok());
  auto loaded = ConfigMapChainHeadStore(fake, {"tasklease-system", "evidence"}).load();
  ASSERT_TRUE(loaded.ok());
  ASSERT_TRUE(loaded->has_value());
  EXPECT_EQ(**loaded, (ChainHead{4, std::string(64, 'b')}));
}

TEST(ChainHeadStoreTest, AFailedSaveIsRetriedUntilTheHeadIsStored) {
  FakeApiClient fake;
  fake.failNext("patch", "configmaps", Status(StatusCode::kInternal, "injected"), 1);
  ConfigMapChainHeadStore store(fake, {"tasklease-system", "evidence"});
  ASSERT_TRUE(store.save({1, std::string(64, 'c')}).ok());  // never waits for the API
  ASSERT_TRUE(store.flush(std::chrono::seconds(10)).ok());
  auto loaded = store.load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->seq, 1u);
}

}  // namespace
}  // namespace tasklease::kube
