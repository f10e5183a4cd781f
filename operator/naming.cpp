#include "operator/naming.h"

#include "common/crypto.h"

namespace tasklease::op {

TaskNames taskNames(std::string_view taskName, std::string_view uid) {
  constexpr size_t kMax = 63;
  const std::string hash = sha256Hex(uid).substr(0, 8);
  const size_t room = kMax - std::string_view("tl-").size() - 1 - hash.size();
  std::string stem(taskName.substr(0, room));
  // A cut name may end in '-' or '.', which a DNS label may not.
  while (!stem.empty() && (stem.back() == '-' || stem.back() == '.')) stem.pop_back();
  return TaskNames{"tl-" + stem + "-" + hash};
}

Json taskLabels(const TaskRef& task) {
  return {{kManagedByLabel, kManagedByValue}, {kTaskLabel, task.name}, {kTaskUidLabel, task.uid}};
}

Json taskOwnerReference(const TaskRef& task) {
  return {{"apiVersion", kAgentTasks.apiVersion()},
          {"kind", kAgentTasks.kind},
          {"name", task.name},
          {"uid", task.uid},
          {"controller", true}};
}

std::string spiffeIdOf(std::string_view trustDomain, const TaskRef& task) {
  return "spiffe://" + std::string(trustDomain) + "/ns/" + task.ns + "/task/" + task.name +
         "/uid/" + task.uid;
}

}  // namespace tasklease::op
