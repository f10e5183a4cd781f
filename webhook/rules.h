#pragma once
// The pod rules TL001–TL008 (DESIGN.md §4, docs/rules.md) as pure functions: a pod spec and
// what the cluster knows in, violations out. Admission, enforcement modes, exceptions and HTTP
// are layered on top (policy.h, admission.h); the rules never see them.
//
//   PodFindings f = checkPod(pod, clusterState, RuleConfig{}, now);
//   for (const Violation& v : f.violations) ...  // v.rule, v.path, v.message

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/rfc3339.h"
#include "webhook/cluster_state.h"
#include "webhook/json_view.h"

namespace tasklease::webhook {

// Labels and annotations shared with the operator and the chart.
inline constexpr std::string_view kEnforcementLabel = "tasklease.io/enforcement";
inline constexpr std::string_view kTaskLabel = "tasklease.io/task";
inline constexpr std::string_view kTaskUidLabel = "tasklease.io/task-uid";
inline constexpr std::string_view kManagedByLabel = "app.kubernetes.io/managed-by";
inline constexpr std::string_view kManagedByValue = "tasklease";
inline constexpr std::string_view kDedicatedToAnnotation = "tasklease.io/dedicated-to";

enum class RuleId { kTL001, kTL002, kTL003, kTL004, kTL005, kTL006, kTL007, kTL008 };

struct RuleInfo {
  RuleId id;
  std::string_view code;     // "TL001"
  std::string_view name;     // "secret-env"
  std::string_view rejects;  // one line, for docs and `explain`
};

const std::vector<RuleInfo>& allRules();
const RuleInfo& ruleInfo(RuleId id);
std::string_view ruleCode(RuleId id);
std::optional<RuleId> parseRuleId(std::string_view code);

struct Violation {
  RuleId rule;
  std::string path;     // "spec.template.spec.initContainers[0].env[2]"
  std::string message;  // what is wrong and what to do instead; never a secret's value
};

// A rule that could not be evaluated, and why (the offline check without cluster state).
struct Note {
  RuleId rule;
  std::string path;
  std::string message;
};

struct RuleConfig {
  // TL007: the longest projected serviceAccountToken lifetime allowed.
  int64_t maxTokenExpirationSeconds = 3600;
};

// One pod spec inside an admitted object.
struct PodUnderReview {
  std::string ns;
  std::string specPath;    // where the PodSpec is: "spec", "spec.template.spec", ...
  std::string labelsPath;  // where its labels are: "metadata.labels", ...
  JsonView spec;           // the PodSpec (absent, or not an object: read as empty)
  JsonView labels;         // the pod's labels (likewise)
  // What tasklease.io/dedicated-to may name for this pod: "Deployment/web", "Pod/x", ...
  std::vector<std::string> identities;
  // pods/ephemeralcontainers: only these ephemeral containers are checked, and only by the
  // container rules (TL001, TL002, TL004); the rest of the pod was judged at its creation.
  std::optional<std::vector<std::string>> onlyEphemeralContainers;
};

// The task whose ServiceAccount the pod runs under.
struct TaskBinding {
  std::string name;
  std::string uid;
};

struct PodFindings {
  std::vector<Violation> violations;
  std::vector<Note> notes;
  std::string serviceAccountName;  // as the pod will run ("default" when unset)
  std::optional<TaskBinding> task;
};

PodFindings checkPod(const PodUnderReview& pod, const ClusterState& state, const RuleConfig& config,
                     TimePoint now);

// The parts of a pod spec the rules read, as Json: two specs with equal results are judged
// alike (an UPDATE that changes nothing here is not judged again).
Json podSpecAsRulesRead(const JsonView& spec);

}  // namespace tasklease::webhook
