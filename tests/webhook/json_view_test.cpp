#include "webhook/json_view.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "webhook/admission.h"

namespace tasklease::webhook {
namespace {

// Everything a rule can read of a view, as one line: the same for a parsed element and for the
// Json tree of the same text.
std::string describe(const JsonView& v) {
  std::string out = v.present() ? "present" : "absent";
  out += v.isObject() ? " object" : "";
  out += v.isArray() ? " array" : "";
  out += v.isString() ? " string=" + std::string(v.string()) : "";
  if (auto i = v.integer()) out += " integer=" + std::to_string(*i);
  if (auto b = v.boolean()) out += *b ? " true" : " false";
  const auto [a, b] = v.members<2>({"a", "b"});
  out += " a=" + a.toJson().dump() + " b=" + b.toJson().dump();
  out += " a.string=" + std::string(v.member("a").string());
  v.forEach([&](size_t i, const JsonView& item) {
    out += " [" + std::to_string(i) + "]=" + item.toJson().dump();
  });
  out += " json=" + v.toJson().dump();
  return out;
}

// The value of "x" in a Pod's object, decoded as the webhook decodes a review: read in place.
JsonView parsed(const std::string& text, AdmissionRequest* holder) {
  const std::string body =
      R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u",)"
      R"("kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE","object":{"x":)" +
      text + "}}}";
  auto r = decodeAdmissionReview(body);
  EXPECT_TRUE(r.ok()) << r.status().toString();
  *holder = std::move(*r);
  EXPECT_NE(holder->document, nullptr);  // in place, not converted
  return holder->objectView().member("x");
}

TEST(JsonViewTest, ParsedElementsReadAsTheirJsonTrees) {
  for (const std::string text :
       {R"({"a":"x","b":1})", R"({"a":"x","a":"y"})", R"([1,"s",null,true,{"a":"z"}])", R"("str")",
        "42", "-7", "18446744073709551615", "1.5", "true", "false", "null",
        R"({"a":{"b":[1,2]},"b":null})", "[]", "{}"}) {
    AdmissionRequest holder;
    const JsonView inPlace = parsed(text, &holder);
    const Json tree = Json::parse(text);
    EXPECT_EQ(describe(inPlace), describe(JsonView(tree))) << text;
  }
}

TEST(JsonViewTest, ReadsAreTotal) {
  const Json tree = Json::parse(R"({"s":"x","n":3,"a":[1],"o":{"k":"v"},"z":null,"a":[2]})");
  const JsonView v(tree);
  EXPECT_EQ(v.member("s").member("k").present(), false);  // a member of a string
  EXPECT_EQ(v.member("missing").string(), "");
  EXPECT_EQ(v.member("n").string(), "");  // a number is not a string
  EXPECT_FALSE(v.member("s").integer().has_value());
  EXPECT_FALSE(v.member("s").boolean().has_value());
  EXPECT_TRUE(v.member("z").present());  // null is there, as null
  EXPECT_TRUE(v.member("z").toJson().is_null());
  EXPECT_EQ(v.member("a").toJson(), Json::array({2}));  // the last of a repeated key
  int calls = 0;
  v.member("o").forEach([&](size_t, const JsonView&) { ++calls; });  // not an array
  v.member("a").forEachMember([&](std::string_view, const JsonView&) { ++calls; });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(JsonView().toJson(), Json());
  EXPECT_FALSE(JsonView::of(nullptr).present());
  const Json huge = Json::parse("18446744073709551615");
  EXPECT_EQ(JsonView(huge).integer(), std::numeric_limits<int64_t>::max());
}

}  // namespace
}  // namespace tasklease::webhook
