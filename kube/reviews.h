#pragma once
// TokenReview and SubjectAccessReview as function calls, for the webhook (is this delegation
// within the delegator's rights?) and the operator (who is calling?).
//
//   auto who = reviewToken(client, bearer, {"https://kubernetes.default.svc"});
//   auto may = reviewAccess(client, {.user = "alice", .groups = {"dev"}, .ns = "team-a",
//                                    .verb = "get", .resource = "configmaps"});
//   if (may.ok() && may->allowed) ...

#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"

namespace tasklease::kube {

struct TokenReviewResult {
  bool authenticated = false;
  std::string username;
  std::string uid;
  std::vector<std::string> groups;
  Json extra = Json::object();
  std::vector<std::string> audiences;
  std::string error;  // why the token was not authenticated, as the server said
};

// POST authentication.k8s.io/v1 TokenReview. The token is sent, never logged or returned.
StatusOr<TokenReviewResult> reviewToken(ApiClient& client, std::string_view token,
                                        const std::vector<std::string>& audiences,
                                        const CallOptions& call = {});

struct AccessReviewRequest {
  std::string user;
  std::string uid;
  std::vector<std::string> groups;
  Json extra = Json::object();
  // resourceAttributes
  std::string ns;
  std::string verb;
  std::string group;
  std::string version;
  std::string resource;
  std::string subresource;
  std::string name;
};

struct AccessReviewResult {
  bool allowed = false;
  bool denied = false;  // an explicit deny, as opposed to "no opinion"
  std::string reason;
  std::string evaluationError;
};

// POST authorization.k8s.io/v1 SubjectAccessReview for one verb on one resource.
StatusOr<AccessReviewResult> reviewAccess(ApiClient& client, const AccessReviewRequest& request,
                                          const CallOptions& call = {});

}  // namespace tasklease::kube
