#include "webhook/manifests.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "common/crypto.h"
#include "tests/common/tls_test_pki.h"

namespace tasklease::webhook {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(ManifestsTest, MultiDocumentYamlWithCoreSchemaScalars) {
  auto docs = parseManifests(R"(---
apiVersion: v1
kind: Pod
metadata: {name: a}
spec:
  containers:
  - name: c
    env:
    - {name: QUOTED, value: "true"}
    - {name: PLAIN_NUMBER, value: '0123'}
---
# empty document above is skipped
---
kind: ServiceAccount
metadata:
  name: sa
  annotations:
    n: 3
    b: false
    z: ~
)",
                             "f.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status().toString();
  ASSERT_EQ(docs->size(), 2U);
  EXPECT_EQ((*docs)[0].source, "f.yaml (document 1)");
  EXPECT_EQ((*docs)[0].object["spec"]["containers"][0]["env"][0]["value"], "true");
  EXPECT_EQ((*docs)[0].object["spec"]["containers"][0]["env"][1]["value"], "0123");
  const Json& ann = (*docs)[1].object["metadata"]["annotations"];
  EXPECT_EQ(ann["n"], 3);
  EXPECT_EQ(ann["b"], false);
  EXPECT_TRUE(ann["z"].is_null());
}

TEST(ManifestsTest, JsonAndListsAreExpanded) {
  auto docs = parseManifests(
      R"({"apiVersion":"v1","kind":"List","items":[{"kind":"Pod","metadata":{"name":"a"}},{"kind":"Pod","metadata":{"name":"b"}}]})",
      "l.json");
  ASSERT_TRUE(docs.ok());
  ASSERT_EQ(docs->size(), 2U);
  EXPECT_EQ((*docs)[1].object["metadata"]["name"], "b");
  EXPECT_EQ((*docs)[1].source, "l.json (item 2)");
}

TEST(ManifestsTest, YamlErrorsNameTheLine) {
  auto docs = parseManifests("kind: Pod\nmetadata:\n  name: [unclosed\n", "bad.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(docs.status().message(), HasSubstr("bad.yaml: line"));
  auto scalar = parseManifests("just a string\n", "s.yaml");
  ASSERT_FALSE(scalar.ok());
  EXPECT_THAT(scalar.status().message(), HasSubstr("not an object"));
}

TEST(ManifestsTest, AliasBombIsRefused) {
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'k'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) bomb += std::string(i ? ", " : "") + "*" + prev;
    bomb += "]\n";
    prev = c;
  }
  auto docs = parseManifests(bomb, "bomb.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_THAT(docs.status().message(), HasSubstr("too large"));
}

TEST(ManifestsTest, DirectoriesAreReadRecursivelyInNameOrderAndStdinWithDash) {
  fs::path dir = fs::path(::testing::TempDir()) / ("manifests-" + randomHex(4));
  fs::create_directories(dir / "sub");
  tasklease::testing::writeFile((dir / "b.yaml").string(), "kind: Pod\nmetadata: {name: b}\n");
  tasklease::testing::writeFile((dir / "sub" / "a.json").string(),
                                R"({"kind":"Pod","metadata":{"name":"a"}})");
  tasklease::testing::writeFile((dir / "notes.txt").string(), "not a manifest");
  std::istringstream in("kind: Pod\nmetadata: {name: stdin}\n");
  auto docs = loadManifests({dir.string(), "-"}, in);
  ASSERT_TRUE(docs.ok()) << docs.status().toString();
  ASSERT_EQ(docs->size(), 3U);
  EXPECT_EQ((*docs)[0].object["metadata"]["name"], "b");
  EXPECT_EQ((*docs)[1].object["metadata"]["name"], "a");
  EXPECT_EQ((*docs)[2].source, "<stdin>");
  auto missing = loadManifests({(dir / "nope.yaml").string()}, in);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope.yaml"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tasklease::webhook
