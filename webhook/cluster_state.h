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

using ObjectRef = std::shared_ptr<const Json>;

struct Lookup {
  LookupState state = LookupState::kUnknown;
  ObjectRef object;  // the whole object when found; shared with the cache, never copied

  bool found() const { return state == LookupState::kFound && object != nullptr; }
  // The object, or an empty object when not found.
  const Json& get() const;
};

class ClusterState {
 public:
  virtual ~ClusterState() = default;
  virtual Lookup namespaceObject(std::string_view name) const = 0;
  virtual Lookup serviceAccount(std::string_view ns, std::string_view name) const = 0;
  virtual Lookup agentTask(std::string_view ns, std::string_view name) const = 0;
  // Every IdentityException in the namespace (none when the source has none).
  virtual std::vector<ObjectRef> identityExceptions(std::string_view ns) const = 0;
  // Whether the state is complete enough to answer reviews (informer caches synced).
  virtual bool synced() const { return true; }
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
  std::vector<ObjectRef> identityExceptions(std::string_view ns) const override;

 private:
  Lookup find(std::string_view kind, std::string_view ns, std::string_view name) const;

  LookupState missing_;
  std::vector<ObjectRef> objects_;
};

}  // namespace tasklease::webhook
