#include "webhook/cluster_state.h"

#include "webhook/json_access.h"

namespace tasklease::webhook {

const Json& Lookup::get() const {
  static const Json kEmpty = Json::object();
  return object ? *object : kEmpty;
}

void ObjectSetClusterState::add(const Json& object) {
  std::string_view kind = stringMember(object, "kind");
  const Json& meta = objectMember(object, "metadata");
  auto stored = std::make_shared<const Json>(object);
  for (ObjectRef& existing : objects_) {
    const Json& m = objectMember(*existing, "metadata");
    if (stringMember(*existing, "kind") == kind &&
        stringMember(m, "namespace") == stringMember(meta, "namespace") &&
        stringMember(m, "name") == stringMember(meta, "name")) {
      existing = std::move(stored);
      return;
    }
  }
  objects_.push_back(std::move(stored));
}

Lookup ObjectSetClusterState::find(std::string_view kind, std::string_view ns,
                                   std::string_view name) const {
  for (const ObjectRef& o : objects_) {
    const Json& m = objectMember(*o, "metadata");
    if (stringMember(*o, "kind") == kind && stringMember(m, "namespace") == ns &&
        stringMember(m, "name") == name) {
      return {LookupState::kFound, o};
    }
  }
  return {missing_, nullptr};
}

Lookup ObjectSetClusterState::namespaceObject(std::string_view name) const {
  return find("Namespace", "", name);
}

Lookup ObjectSetClusterState::serviceAccount(std::string_view ns, std::string_view name) const {
  return find("ServiceAccount", ns, name);
}

Lookup ObjectSetClusterState::agentTask(std::string_view ns, std::string_view name) const {
  return find("AgentTask", ns, name);
}

std::vector<ObjectRef> ObjectSetClusterState::identityExceptions(std::string_view ns) const {
  std::vector<ObjectRef> out;
  for (const ObjectRef& o : objects_) {
    if (stringMember(*o, "kind") == "IdentityException" &&
        stringMember(objectMember(*o, "metadata"), "namespace") == ns) {
      out.push_back(o);
    }
  }
  return out;
}

}  // namespace tasklease::webhook
