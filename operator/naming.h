#pragma once
// The names and labels of what the operator creates for a task. Names are deterministic (the
// task's name and a short hash of its uid), so that a restart finds what an earlier run created
// and a task re-created under the same name never adopts its predecessor's objects.
//
//   TaskNames n = taskNames(task.name, task.uid);   // n.serviceAccount == "tl-refactor-3f2a9c1e"
//   Json labels = taskLabels(task);

#include <string>
#include <string_view>

#include "common/json.h"
#include "operator/task.h"

namespace tasklease::op {

struct TaskNames {
  // One name for the ServiceAccount, Role, RoleBinding, credential Secret and Job: they are of
  // different kinds, and one name lets `kubectl get sa,role,rolebinding,secret,job NAME` show
  // the whole credential.
  std::string base;
  const std::string& serviceAccount() const { return base; }
  const std::string& role() const { return base; }
  const std::string& roleBinding() const { return base; }
  const std::string& secret() const { return base; }
  const std::string& job() const { return base; }
};

// "tl-<task name, cut to fit>-<first 8 hex of sha256(uid)>": at most 63 characters, a DNS
// label when the task name is one (a Job's name must fit in a label value).
TaskNames taskNames(std::string_view taskName, std::string_view uid);

// app.kubernetes.io/managed-by: tasklease, tasklease.io/task: <name>, tasklease.io/task-uid.
Json taskLabels(const TaskRef& task);

// An ownerReference to the task (controller: true), so that garbage collection removes what a
// sweep might miss.
Json taskOwnerReference(const TaskRef& task);

// The SPIFFE ID of a task: spiffe://<trust domain>/ns/<namespace>/task/<name>/uid/<uid>. The uid
// keeps two tasks of one name apart (one deleted, the next created under its name), so a relying
// party that allowed the first never mistakes the second for it (docs/decisions.md); authorize a
// task name whatever its incarnation by the prefix up to "/uid/".
std::string spiffeIdOf(std::string_view trustDomain, const TaskRef& task);

}  // namespace tasklease::op
