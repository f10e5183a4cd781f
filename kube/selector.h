#pragma once
// Label selectors: parsed from the string form of `?labelSelector=` ("app=web,tier in (a,b),!x")
// or from a metav1.LabelSelector object (matchLabels, matchExpressions), and matched against an
// object's labels. Used by the informer cache, the fake API client and the webhook's selectors.
//
//   auto sel = LabelSelector::parse("app=web,env!=prod");
//   if (sel.ok() && sel->matches(object["metadata"]["labels"])) ...

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace tasklease::kube {

class LabelSelector {
 public:
  enum class Operator { kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Operator op = Operator::kExists;
    std::vector<std::string> values;  // sorted; one value for "=" and "!="
  };

  // The empty selector: matches everything.
  LabelSelector() = default;

  // Errors name the selector and the position of the problem.
  static StatusOr<LabelSelector> parse(std::string_view text);
  // From a metav1.LabelSelector; a JSON null or {} gives the empty selector. Errors name the
  // field (matchExpressions[1].operator).
  static StatusOr<LabelSelector> fromJson(const Json& selector);

  // `labels` is metadata.labels (an object of strings), or null when the object has none.
  bool matches(const Json& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

  // The canonical string form, accepted by parse() and by the API server.
  std::string toString() const;

 private:
  std::vector<Requirement> requirements_;
};

// Field selectors as the API server supports them for every resource: metadata.name and
// metadata.namespace with "=", "==" and "!=". `object` is the whole object.
StatusOr<bool> matchesFieldSelector(std::string_view selector, const Json& object);

}  // namespace tasklease::kube
