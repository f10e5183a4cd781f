#pragma once
// What the cluster-state rules read: namespaces (their enforcement label), ServiceAccounts
// (task labels, the dedicated-to annotation), AgentTasks (phase, credential) and
// IdentityExceptions. The webhook reads informer caches (never an API call per review), the
// offline check reads the objects in the given files, tests read a fixed set of objects.
//
//   Lookup sa = state.serviceAccount("team-a", "builder");
//   if (sa.state == LookupState::kUnknown) note("not evaluated");

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace tasklease::webhook {

enum class LookupState {
  kFound,
  kAbsent,   // the source is authoritative and the object does not exist
  kUnknown,  // the source cannot tell (offline check without that object)
};

struct Lookup {
  LookupState state = LookupState::kUnknown;
  Json object;  // the whole object when found

  bool found() const { return state == LookupState::kFound; }
};

class ClusterState {
 public:
  virtual ~ClusterState() = default;
  virtual Lookup namespaceObject(std::string_view name) const = 0;
  virtual Lookup serviceAccount(std::string_view ns, std::string_view name) const = 0;
  virtual Lookup agentTask(std::string_view ns, std::string_view name) const = 0;
  // Every IdentityException in the namespace (none when the source has none).
  virtual std::vector<Json> identityExceptions(std::string_view ns) const = 0;
};
using ClusterStatePtr = std::unique_ptr<ClusterState>;

// A ClusterState over a fixed set of objects (Namespaces, ServiceAccounts, AgentTasks,
// IdentityExceptions; others are ignored). What is not in the set is kAbsent or kUnknown as
// chosen: unit tests use kAbsent, the offline check kUnknown.
class ObjectSetClusterState : public ClusterState {
 public:
  explicit ObjectSetClusterState(LookupState missing = LookupState::kAbsent) : missing_(missing) {}

  // Adds or replaces an object by kind, namespace and name.
  void add(const Json& object);

  Lookup namespaceObject(std::string_view name) const override;
  Lookup serviceAccount(std::string_view ns, std::string_view name) const override;
  Lookup agentTask(std::string_view ns, std::string_view name) const override;
  std::vector<Json> identityExceptions(std::string_view ns) const override;

 private:
  Lookup find(std::string_view kind, std::string_view ns, std::string_view name) const;

  LookupState missing_;
  std::vector<Json> objects_;
};

}  // namespace tasklease::webhook
