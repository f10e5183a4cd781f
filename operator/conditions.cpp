#include "operator/conditions.h"

namespace tasklease::op {
namespace {

// The CRD's bound on condition messages.
constexpr size_t kMaxMessage = 32768;

}  // namespace

const Json* findCondition(const Json& status, const std::string& type) {
  const auto list = status.find("conditions");
  if (list == status.end() || !list->is_array()) return nullptr;
  for (const Json& c : *list) {
    if (c.is_object() && c.value("type", std::string()) == type) return &c;
  }
  return nullptr;
}

void setCondition(Json& status, const std::string& type, bool value, const std::string& reason,
                  const std::string& message, int64_t generation, TimePoint now) {
  Json& list = status["conditions"];
  if (!list.is_array()) list = Json::array();
  const std::string text = value ? "True" : "False";
  Json next = {{"type", type},
               {"status", text},
               {"reason", reason},
               {"message", message.substr(0, kMaxMessage)},
               {"observedGeneration", generation},
               {"lastTransitionTime", formatRfc3339(now)}};
  for (Json& c : list) {
    if (!c.is_object() || c.value("type", std::string()) != type) continue;
    if (c.value("status", std::string()) == text && c.contains("lastTransitionTime")) {
      next["lastTransitionTime"] = c["lastTransitionTime"];
    }
    c = std::move(next);
    return;
  }
  list.push_back(std::move(next));
}

}  // namespace tasklease::op
