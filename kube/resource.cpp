#include "kube/resource.h"

namespace tasklease::kube {
namespace {

std::string metadataString(const Json& object, const char* field) {
  if (!object.is_object()) return {};
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return {};
  const auto value = meta->find(field);
  if (value == meta->end() || !value->is_string()) return {};
  return value->get<std::string>();
}

}  // namespace

std::string ResourceRef::apiVersion() const {
  return group.empty() ? version : group + "/" + version;
}

std::string ResourceRef::groupResource() const {
  return group.empty() ? resource : resource + "." + group;
}

std::string ResourceRef::collectionPath(std::string_view ns) const {
  std::string path = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) path += "/namespaces/" + urlEncode(ns);
  path += "/" + resource;
  return path;
}

std::string ResourceRef::objectPath(std::string_view ns, std::string_view name,
                                    std::string_view subresource) const {
  std::string path = collectionPath(ns) + "/" + urlEncode(name);
  if (!subresource.empty()) path += "/" + std::string(subresource);
  return path;
}

std::string ObjectKey::toString() const {
  return ns.empty() ? name : ns + "/" + name;
}

ObjectKey ObjectKey::parse(std::string_view key) {
  const auto slash = key.find('/');
  if (slash == std::string_view::npos) return {"", std::string(key)};
  return {std::string(key.substr(0, slash)), std::string(key.substr(slash + 1))};
}

ObjectKey objectKeyOf(const Json& object) {
  return {metadataString(object, "namespace"), metadataString(object, "name")};
}

std::string resourceVersionOf(const Json& object) {
  return metadataString(object, "resourceVersion");
}

std::string uidOf(const Json& object) {
  return metadataString(object, "uid");
}

const Json& labelsOf(const Json& object) {
  static const Json kNone;
  if (!object.is_object()) return kNone;
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return kNone;
  const auto labels = meta->find("labels");
  return labels == meta->end() ? kNone : *labels;
}

std::string urlEncode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xF]);
    }
  }
  return out;
}

namespace resources {

const std::vector<ResourceRef>& builtin() {
  static const std::vector<ResourceRef> all = {kNamespaces,
                                               kPods,
                                               kConfigMaps,
                                               kSecrets,
                                               kServiceAccounts,
                                               kServices,
                                               kEndpoints,
                                               kEvents,
                                               kReplicationControllers,
                                               kDeployments,
                                               kReplicaSets,
                                               kStatefulSets,
                                               kDaemonSets,
                                               kJobs,
                                               kCronJobs,
                                               kRoles,
                                               kRoleBindings,
                                               kClusterRoles,
                                               kClusterRoleBindings,
                                               kLeases,
                                               kTokenReviews,
                                               kSubjectAccessReviews,
                                               kCustomResourceDefinitions,
                                               kValidatingWebhookConfigurations,
                                               kMutatingWebhookConfigurations};
  return all;
}

std::optional<ResourceRef> findByKind(std::string_view apiVersion, std::string_view kind) {
  for (const auto& r : builtin()) {
    if (r.kind == kind && r.apiVersion() == apiVersion) return r;
  }
  return std::nullopt;
}

}  // namespace resources
}  // namespace tasklease::kube
