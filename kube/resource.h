#pragma once
// Which API resource a call is about, and which object: ResourceRef names a group, version and
// plural resource (the GVR) plus its kind and scope; ObjectKey names one object in it. Built-in
// resources the project uses are listed below; custom resources are described the same way:
//
//   const ResourceRef kAgentTasks{"tasklease.io", "v1alpha1", "agenttasks", "AgentTask", true};
//   client.get(kAgentTasks, {"team-a", "refactor"}, {});

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"

namespace tasklease::kube {

struct ResourceRef {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural, lower case: "configmaps"
  std::string kind;      // "ConfigMap"
  bool namespaced = true;

  // "v1" or "apps/v1": the apiVersion of the objects.
  std::string apiVersion() const;
  // "configmaps" or "leases.coordination.k8s.io", as kubectl and error messages write it.
  std::string groupResource() const;

  // "/api/v1/namespaces/NS/configmaps"; an empty ns on a namespaced resource means all
  // namespaces. Namespace and name are percent-encoded.
  std::string collectionPath(std::string_view ns) const;
  // "/api/v1/namespaces/NS/configmaps/NAME[/SUBRESOURCE]".
  std::string objectPath(std::string_view ns, std::string_view name,
                         std::string_view subresource = {}) const;

  friend bool operator==(const ResourceRef&, const ResourceRef&) = default;
};

// One object: namespace (empty for cluster-scoped objects) and name.
struct ObjectKey {
  std::string ns;
  std::string name;

  // "ns/name", or "name" when cluster-scoped: the key of caches and work queues.
  std::string toString() const;
  // Parses toString()'s output.
  static ObjectKey parse(std::string_view key);

  friend bool operator==(const ObjectKey&, const ObjectKey&) = default;
};

// The key of an object from its metadata.
ObjectKey objectKeyOf(const Json& object);
// metadata.resourceVersion, metadata.uid, metadata.labels, or empty.
std::string resourceVersionOf(const Json& object);
std::string uidOf(const Json& object);
// metadata.labels, or a null Json when the object has none.
const Json& labelsOf(const Json& object);

// Percent-encodes everything outside RFC 3986's unreserved set, for paths and query values.
std::string urlEncode(std::string_view text);

namespace resources {
inline const ResourceRef kNamespaces{"", "v1", "namespaces", "Namespace", false};
inline const ResourceRef kPods{"", "v1", "pods", "Pod", true};
inline const ResourceRef kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
inline const ResourceRef kSecrets{"", "v1", "secrets", "Secret", true};
inline const ResourceRef kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
inline const ResourceRef kServices{"", "v1", "services", "Service", true};
inline const ResourceRef kEndpoints{"", "v1", "endpoints", "Endpoints", true};
inline const ResourceRef kEvents{"", "v1", "events", "Event", true};
inline const ResourceRef kReplicationControllers{"", "v1", "replicationcontrollers",
                                                 "ReplicationController", true};
inline const ResourceRef kDeployments{"apps", "v1", "deployments", "Deployment", true};
inline const ResourceRef kReplicaSets{"apps", "v1", "replicasets", "ReplicaSet", true};
inline const ResourceRef kStatefulSets{"apps", "v1", "statefulsets", "StatefulSet", true};
inline const ResourceRef kDaemonSets{"apps", "v1", "daemonsets", "DaemonSet", true};
inline const ResourceRef kJobs{"batch", "v1", "jobs", "Job", true};
inline const ResourceRef kCronJobs{"batch", "v1", "cronjobs", "CronJob", true};
inline const ResourceRef kRoles{"rbac.authorization.k8s.io", "v1", "roles", "Role", true};
inline const ResourceRef kRoleBindings{"rbac.authorization.k8s.io", "v1", "rolebindings",
                                       "RoleBinding", true};
inline const ResourceRef kClusterRoles{"rbac.authorization.k8s.io", "v1", "clusterroles",
                                       "ClusterRole", false};
inline const ResourceRef kClusterRoleBindings{"rbac.authorization.k8s.io", "v1",
                                              "clusterrolebindings", "ClusterRoleBinding", false};
inline const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
inline const ResourceRef kTokenReviews{"authentication.k8s.io", "v1", "tokenreviews", "TokenReview",
                                       false};
inline const ResourceRef kSubjectAccessReviews{"authorization.k8s.io", "v1", "subjectaccessreviews",
                                               "SubjectAccessReview", false};
inline const ResourceRef kCustomResourceDefinitions{
    "apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition", false};
inline const ResourceRef kValidatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                          "validatingwebhookconfigurations",
                                                          "ValidatingWebhookConfiguration", false};
inline const ResourceRef kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                        "mutatingwebhookconfigurations",
                                                        "MutatingWebhookConfiguration", false};

// Every resource above.
const std::vector<ResourceRef>& builtin();

// The built-in resource whose objects have this apiVersion and kind ("apps/v1", "Deployment").
std::optional<ResourceRef> findByKind(std::string_view apiVersion, std::string_view kind);
}  // namespace resources

}  // namespace tasklease::kube
