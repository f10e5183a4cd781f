#pragma once
// Smallest objects for the webhook tests: a namespace with an enforcement mode, a dedicated
// ServiceAccount, a task's ServiceAccount and its AgentTask, and pods or workloads around a
// pod spec.

#include <string>

#include "common/delegation_stamp.h"
#include "common/json.h"
#include "common/rfc3339.h"
#include "webhook/cluster_state.h"

namespace tasklease::webhook::testing {

inline TimePoint testNow() {
  return *parseRfc3339("2026-03-01T12:00:00Z");
}

inline Json namespaceObject(const std::string& name, const std::string& mode) {
  Json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  if (!mode.empty()) ns["metadata"]["labels"] = {{"tasklease.io/enforcement", mode}};
  return ns;
}

inline Json serviceAccount(const std::string& name, const std::string& dedicatedTo = "",
                           const std::string& ns = "team-a") {
  Json sa = {{"apiVersion", "v1"},
             {"kind", "ServiceAccount"},
             {"metadata", {{"name", name}, {"namespace", ns}}}};
  if (!dedicatedTo.empty()) {
    sa["metadata"]["annotations"] = {{"tasklease.io/dedicated-to", dedicatedTo}};
  }
  return sa;
}

// The ServiceAccount the operator issues for task `task` (uid "uid-<task>").
inline Json taskServiceAccount(const std::string& name, const std::string& task) {
  Json sa = serviceAccount(name);
  sa["metadata"]["labels"] = {{"tasklease.io/task", task},
                              {"tasklease.io/task-uid", "uid-" + task},
                              {"app.kubernetes.io/managed-by", "tasklease"}};
  return sa;
}

// The user every test request comes from, who also delegated every fixture task.
inline Requester alice() {
  return {"alice", "u-1", {"devs"}};
}

// AgentTask `name` (uid "uid-<name>"), delegated by alice(), its credential ServiceAccount
// "tl-<name>" (the operator's Job for it has the same name).
inline Json agentTask(const std::string& name, const std::string& phase,
                      const std::string& expiresAt = "2026-03-01T13:00:00Z") {
  return {{"apiVersion", "tasklease.io/v1alpha1"},
          {"kind", "AgentTask"},
          {"metadata",
           {{"name", name},
            {"namespace", "team-a"},
            {"uid", "uid-" + name},
            {"annotations", {{kRequestedByAnnotation, requestedByValue(alice())}}}}},
          {"status",
           {{"phase", phase},
            {"credential",
             {{"type", "ServiceAccountToken"},
              {"serviceAccountName", "tl-" + name},
              {"secretName", "tl-" + name + "-credential"},
              {"expiresAt", expiresAt}}}}}};
}

inline Json container(const std::string& name = "app") {
  return {{"name", name}, {"image", "registry.example/app:1"}};
}

inline Json envSecretRef(const std::string& var, const std::string& secret) {
  return {{"name", var}, {"valueFrom", {{"secretKeyRef", {{"name", secret}, {"key", "k"}}}}}};
}

inline Json envValue(const std::string& var, const std::string& value) {
  return {{"name", var}, {"value", value}};
}

// A pod spec that breaks no rule under ServiceAccount "web" (dedicated to Pod/web).
inline Json cleanSpec() {
  return {{"serviceAccountName", "web"}, {"containers", Json::array({container()})}};
}

inline Json pod(const Json& spec, const Json& labels = Json::object(),
                const std::string& name = "web") {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "team-a"}, {"labels", labels}}},
          {"spec", spec}};
}

// `kind` wrapping the pod spec at its template path, named "web".
inline Json workload(const std::string& kind, const Json& spec,
                     const Json& labels = Json::object()) {
  Json tmpl = {{"metadata", {{"labels", labels}}}, {"spec", spec}};
  std::string apiVersion = kind == "ReplicationController"      ? "v1"
                           : kind == "Job" || kind == "CronJob" ? "batch/v1"
                                                                : "apps/v1";
  Json obj = {{"apiVersion", apiVersion},
              {"kind", kind},
              {"metadata", {{"name", "web"}, {"namespace", "team-a"}}}};
  if (kind == "Pod") return pod(spec, labels);
  if (kind == "CronJob") {
    obj["spec"] = {{"schedule", "*/5 * * * *"}, {"jobTemplate", {{"spec", {{"template", tmpl}}}}}};
  } else {
    obj["spec"] = {{"template", tmpl}};
  }
  return obj;
}

// team-a in `mode`, ServiceAccounts web (Pod/web), deploy-sa (Deployment/web), shared (no
// annotation), tl-build (task "build", Active) and tl-old (task "old", Expired).
inline ObjectSetClusterState standardState(const std::string& mode = "enforce") {
  ObjectSetClusterState s(LookupState::kAbsent);
  s.add(namespaceObject("team-a", mode));
  s.add(namespaceObject("kube-system", "enforce"));
  s.add(namespaceObject("plain", ""));
  s.add(serviceAccount("web", "Pod/web"));
  s.add(serviceAccount("shared"));
  s.add(taskServiceAccount("tl-build", "build"));
  s.add(agentTask("build", "Active"));
  s.add(taskServiceAccount("tl-old", "old"));
  s.add(agentTask("old", "Expired"));
  return s;
}

}  // namespace tasklease::webhook::testing
