#include "kube/informer.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/mocks/fake_api_client.h"

namespace tasklease::kube {
namespace {

using std::chrono::milliseconds;

Json configMap(const std::string& ns, const std::string& name, const std::string& value,
               Json labels = Json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"namespace", ns}, {"name", name}, {"labels", labels}}},
          {"data", {{"v", value}}}};
}

// Records handler calls as "add:ns/name:rv" strings, thread-safely.
class Recorder {
 public:
  ResourceEventHandler handler() {
    return {[this](const Json& o) { push("add", o); },
            [this](const Json&, const Json& n) { push("update", n); },
            [this](const Json& o) { push("delete", o); }};
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  // Waits (bounded) until at least n events arrived.
  bool waitFor(size_t n) const {
    for (int i = 0; i < 500; ++i) {
      if (events().size() >= n) return true;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return false;
  }

 private:
  void push(const std::string& what, const Json& o) {
    std::lock_guard lock(mu_);
    events_.push_back(what + ":" + objectKeyOf(o).toString());
  }
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

class InformerTest : public ::testing::Test {
 protected:
  FakeApiClient fake_;
};

TEST_F(InformerTest, InitialListFillsCacheAndCallsOnAdd) {
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "one", "1")).ok());
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("b", "two", "2")).ok());
  Informer informer(fake_, resources::kConfigMaps, InformerOptions{});
  Recorder rec;
  informer.addEventHandler(rec.handler());
  EXPECT_FALSE(informer.hasSynced());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  EXPECT_EQ(informer.cache().size(), 2u);
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"add:a/one", "add:b/two"}));
  informer.stop();
}

TEST_F(InformerTest, WatchEventsUpdateCacheAndHandlersInOrder) {
  Informer informer(fake_, resources::kConfigMaps, InformerOptions{});
  Recorder rec;
  informer.addEventHandler(rec.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  auto created = fake_.create(resources::kConfigMaps, configMap("a", "x", "1"));
  ASSERT_TRUE(created.ok());
  Json changed = *created;
  changed["data"]["v"] = "2";
  ASSERT_TRUE(fake_.update(resources::kConfigMaps, changed).ok());
  ASSERT_TRUE(fake_.remove(resources::kConfigMaps, {"a", "x"}).ok());
  ASSERT_TRUE(rec.waitFor(3));
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"add:a/x", "update:a/x", "delete:a/x"}));
  EXPECT_EQ(informer.cache().size(), 0u);
  informer.stop();
}

TEST_F(InformerTest, ResumesAfterTheWatchIsClosedWithoutRelisting) {
  Informer informer(fake_, resources::kConfigMaps, InformerOptions{});
  Recorder rec;
  informer.addEventHandler(rec.handler());
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "x", "1")).ok());
  ASSERT_TRUE(rec.waitFor(1));
  fake_.closeWatches();
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "y", "1")).ok());
  ASSERT_TRUE(rec.waitFor(2));
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"add:a/x", "add:a/y"}));
  EXPECT_EQ(informer.listCount(), 1);
  EXPECT_GE(informer.watchCount(), 2);
  informer.stop();
}

TEST_F(InformerTest, RelistAfterExpiryReportsOnlyTheDifferences) {
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "same", "1")).ok());
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "changes", "1")).ok());
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "goes", "1")).ok());
  InformerOptions opts;
  opts.backoff = {milliseconds(1), 2.0, 0.0, milliseconds(5)};
  Informer informer(fake_, resources::kConfigMaps, opts);
  Recorder rec;
  informer.addEventHandler(rec.handler());
  // While `expire` is set every watch gets 410, so the informer learns about changes only by
  // listing again.
  std::atomic<bool> expire{false};
  fake_.prependReactor("watch", "configmaps",
                       [&](const FakeApiClient::Action&) -> std::optional<StatusOr<Json>> {
                         if (!expire) return std::nullopt;
                         Status gone(StatusCode::kGone, "too old resource version");
                         gone.withReason("Expired").withHttpCode(410);
                         return StatusOr<Json>(gone);
                       });
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  ASSERT_EQ(rec.events().size(), 3u);
  expire = true;
  const int listsAtSync = informer.listCount();
  fake_.closeWatches();
  // Once the informer has listed again, its old stream is gone and every new one expires.
  for (int i = 0; i < 500 && informer.listCount() == listsAtSync; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  const int listsBefore = informer.listCount();
  ASSERT_GT(listsBefore, listsAtSync);
  auto changes = fake_.get(resources::kConfigMaps, {"a", "changes"});
  ASSERT_TRUE(changes.ok());
  (*changes)["data"]["v"] = "2";
  ASSERT_TRUE(fake_.update(resources::kConfigMaps, *changes).ok());
  ASSERT_TRUE(fake_.remove(resources::kConfigMaps, {"a", "goes"}).ok());
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "new", "1")).ok());
  ASSERT_TRUE(rec.waitFor(6));
  EXPECT_GT(informer.listCount(), listsBefore);
  expire = false;
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "after", "1")).ok());
  ASSERT_TRUE(rec.waitFor(7));
  const auto events = rec.events();
  ASSERT_EQ(events.size(), 7u);
  // Each change was reported once; the unchanged object was not reported again.
  EXPECT_EQ(std::count(events.begin(), events.end(), "add:a/same"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "update:a/changes"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "delete:a/goes"), 1);
  EXPECT_EQ(std::count(events.begin(), events.end(), "add:a/new"), 1);
  EXPECT_EQ(events.back(), "add:a/after");
  std::vector<std::string> keys = informer.cache().keys();
  EXPECT_EQ(keys, (std::vector<std::string>{"a/after", "a/changes", "a/new", "a/same"}));
  informer.stop();
}

TEST_F(InformerTest, AnExpiredWatchIsRelistedAtOnceWhateverTheBackoff) {
  // Backoff pauses of an hour: only a relist without a pause can happen within the test. After
  // a healthy stream the next watch expires at once (the server compacted while the informer
  // was away, or its watches failed for a while): the informer lists again without waiting.
  InformerOptions opts;
  opts.backoff = {std::chrono::hours(1), 2.0, 0.0, std::chrono::hours(1)};
  Informer informer(fake_, resources::kConfigMaps, opts);
  Recorder rec;
  informer.addEventHandler(rec.handler());
  std::atomic<int> watches{0};
  fake_.prependReactor("watch", "configmaps",
                       [&](const FakeApiClient::Action&) -> std::optional<StatusOr<Json>> {
                         // The first watch is served (and closed below); the second expires.
                         if (++watches != 2) return std::nullopt;
                         Status gone(StatusCode::kGone, "too old resource version");
                         gone.withReason("Expired").withHttpCode(410);
                         return StatusOr<Json>(gone);
                       });
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "x", "1")).ok());
  ASSERT_TRUE(rec.waitFor(1));  // the first stream delivered an event: it was healthy
  fake_.closeWatches();
  for (int i = 0; i < 500 && informer.listCount() < 2; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(informer.listCount(), 2);
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "y", "1")).ok());
  EXPECT_TRUE(rec.waitFor(2));  // and it watches again from the new list
  informer.stop();
}

TEST_F(InformerTest, CacheIndexesByNamespaceAndLabel) {
  ASSERT_TRUE(
      fake_
          .create(resources::kConfigMaps, configMap("a", "one", "1", {{"tasklease.io/task", "t1"}}))
          .ok());
  ASSERT_TRUE(
      fake_
          .create(resources::kConfigMaps, configMap("b", "two", "1", {{"tasklease.io/task", "t1"}}))
          .ok());
  ASSERT_TRUE(fake_
                  .create(resources::kConfigMaps,
                          configMap("b", "three", "1", {{"tasklease.io/task", "t2"}}))
                  .ok());
  Informer informer(fake_, resources::kConfigMaps, InformerOptions{});
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  EXPECT_EQ(informer.cache().listNamespace("b").size(), 2u);
  EXPECT_EQ(informer.cache().listByLabel("tasklease.io/task", "t1").size(), 2u);
  auto sel = LabelSelector::parse("tasklease.io/task=t1");
  ASSERT_TRUE(sel.ok());
  EXPECT_EQ(informer.cache().select("b", *sel).size(), 1u);
  ASSERT_NE(informer.cache().get("b/three"), nullptr);
  EXPECT_EQ(informer.cache().get("b/missing"), nullptr);
  // Relabelling moves the object between label index entries.
  Json three = *fake_.get(resources::kConfigMaps, {"b", "three"});
  three["metadata"]["labels"]["tasklease.io/task"] = "t1";
  ASSERT_TRUE(fake_.update(resources::kConfigMaps, three).ok());
  for (int i = 0; i < 500 && informer.cache().listByLabel("tasklease.io/task", "t1").size() < 3;
       ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  EXPECT_EQ(informer.cache().listByLabel("tasklease.io/task", "t1").size(), 3u);
  EXPECT_TRUE(informer.cache().listByLabel("tasklease.io/task", "t2").empty());
  informer.stop();
}

TEST_F(InformerTest, NamespaceAndSelectorLimitWhatIsCached) {
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "in", "1", {{"app", "x"}})).ok());
  ASSERT_TRUE(
      fake_.create(resources::kConfigMaps, configMap("a", "out", "1", {{"app", "y"}})).ok());
  ASSERT_TRUE(
      fake_.create(resources::kConfigMaps, configMap("b", "other", "1", {{"app", "x"}})).ok());
  InformerOptions opts;
  opts.ns = "a";
  opts.labelSelector = "app=x";
  Informer informer(fake_, resources::kConfigMaps, opts);
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  EXPECT_EQ(informer.cache().keys(), (std::vector<std::string>{"a/in"}));
  informer.stop();
}

TEST_F(InformerTest, ResyncCallsOnUpdateWithTheSameObject) {
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "x", "1")).ok());
  InformerOptions opts;
  opts.resyncPeriod = milliseconds(20);
  Informer informer(fake_, resources::kConfigMaps, opts);
  std::atomic<int> resyncs{0};
  informer.addEventHandler({nullptr,
                            [&](const Json& o, const Json& n) {
                              if (o == n) ++resyncs;
                            },
                            nullptr});
  informer.start();
  for (int i = 0; i < 500 && resyncs.load() < 2; ++i) std::this_thread::sleep_for(milliseconds(10));
  EXPECT_GE(resyncs.load(), 2);
  informer.stop();
}

TEST_F(InformerTest, HandlerAddedLateGetsTheCachedObjects) {
  ASSERT_TRUE(fake_.create(resources::kConfigMaps, configMap("a", "x", "1")).ok());
  Informer informer(fake_, resources::kConfigMaps, InformerOptions{});
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  Recorder rec;
  informer.addEventHandler(rec.handler());
  EXPECT_EQ(rec.events(), (std::vector<std::string>{"add:a/x"}));
  informer.stop();
}

TEST_F(InformerTest, StopInterruptsABlockedWatch) {
  Informer informer(fake_, resources::kConfigMaps, InformerOptions{});
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  for (int i = 0; i < 500 && fake_.openWatches() == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_EQ(fake_.openWatches(), 1u);
  informer.stop();  // returns only once the run thread has exited
  EXPECT_EQ(fake_.openWatches(), 0u);
}

TEST_F(InformerTest, KeepsRetryingAFailingListUntilItSucceeds) {
  Status unavailable(StatusCode::kUnavailable, "down");
  unavailable.withHttpCode(503);
  fake_.failNext("list", "configmaps", unavailable, 2);
  InformerOptions opts;
  opts.backoff = {milliseconds(1), 2.0, 0.0, milliseconds(5)};
  Informer informer(fake_, resources::kConfigMaps, opts);
  informer.start();
  ASSERT_TRUE(informer.waitForSync(std::chrono::seconds(5)));
  EXPECT_EQ(informer.listCount(), 3);
  informer.stop();
}

}  // namespace
}  // namespace tasklease::kube
