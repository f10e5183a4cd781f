#include "kube/reviews.h"

namespace tasklease::kube {
namespace {

std::vector<std::string> stringList(const Json& value) {
  std::vector<std::string> out;
  if (!value.is_array()) return out;
  for (const auto& v : value) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

}  // namespace

StatusOr<TokenReviewResult> reviewToken(ApiClient& client, std::string_view token,
                                        const std::vector<std::string>& audiences,
                                        const CallOptions& call) {
  Json review = {{"apiVersion", "authentication.k8s.io/v1"},
                 {"kind", "TokenReview"},
                 {"spec", {{"token", std::string(token)}}}};
  if (!audiences.empty()) review["spec"]["audiences"] = audiences;
  auto answer = client.create(resources::kTokenReviews, review, WriteOptions{}, call);
  if (!answer.ok()) return answer.status().annotate("TokenReview");
  const Json status = answer->value("status", Json::object());
  TokenReviewResult result;
  result.authenticated = status.value("authenticated", false);
  result.error = status.value("error", std::string());
  result.audiences = stringList(status.value("audiences", Json::array()));
  const Json user = status.value("user", Json::object());
  result.username = user.value("username", std::string());
  result.uid = user.value("uid", std::string());
  result.groups = stringList(user.value("groups", Json::array()));
  result.extra = user.value("extra", Json::object());
  return result;
}

StatusOr<AccessReviewResult> reviewAccess(ApiClient& client, const AccessReviewRequest& request,
                                          const CallOptions& call) {
  Json attrs = {{"verb", request.verb}, {"resource", request.resource}};
  if (!request.ns.empty()) attrs["namespace"] = request.ns;
  attrs["group"] = request.group;
  if (!request.version.empty()) attrs["version"] = request.version;
  if (!request.subresource.empty()) attrs["subresource"] = request.subresource;
  if (!request.name.empty()) attrs["name"] = request.name;
  Json spec = {{"user", request.user}, {"resourceAttributes", attrs}};
  if (!request.uid.empty()) spec["uid"] = request.uid;
  if (!request.groups.empty()) spec["groups"] = request.groups;
  if (request.extra.is_object() && !request.extra.empty()) spec["extra"] = request.extra;
  const Json review = {
      {"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
  auto answer = client.create(resources::kSubjectAccessReviews, review, WriteOptions{}, call);
  if (!answer.ok()) return answer.status().annotate("SubjectAccessReview");
  const Json status = answer->value("status", Json::object());
  AccessReviewResult result;
  result.allowed = status.value("allowed", false);
  result.denied = status.value("denied", false);
  result.reason = status.value("reason", std::string());
  result.evaluationError = status.value("evaluationError", std::string());
  return result;
}

}  // namespace tasklease::kube
