#include "operator/chain_head_store.h"

namespace tasklease::op {
namespace {

constexpr char kHeadKey[] = "head";

}  // namespace

ConfigMapChainHeadStore::ConfigMapChainHeadStore(kube::ApiClient& client, kube::ObjectKey configMap)
    : client_(client), key_(std::move(configMap)) {}

StatusOr<std::optional<ChainHead>> ConfigMapChainHeadStore::load() {
  const std::string where = "evidence chain head ConfigMap " + key_.toString();
  auto cm = client_.get(kube::resources::kConfigMaps, key_);
  if (!cm.ok()) {
    if (cm.status().isNotFound()) return std::optional<ChainHead>();
    return cm.status().annotate(where);
  }
  const Json data = cm->value("data", Json::object());
  if (!data.contains(kHeadKey) || !data[kHeadKey].is_string()) return std::optional<ChainHead>();
  const Json parsed = Json::parse(data[kHeadKey].get<std::string>(), nullptr, false);
  auto head = chainHeadFromJson(parsed);
  if (!head.ok()) return invalidArgument(where + ": data.head: " + head.status().message());
  return std::optional<ChainHead>(*head);
}

Status ConfigMapChainHeadStore::save(const ChainHead& head) {
  const std::string value = chainHeadToJson(head).dump();
  const Json patch = {{"data", {{kHeadKey, value}}}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto patched = client_.patch(kube::resources::kConfigMaps, key_, patch);
    if (patched.ok()) return {};
    if (!patched.status().isNotFound()) return patched.status();
    const Json cm = {{"apiVersion", "v1"},
                     {"kind", "ConfigMap"},
                     {"metadata",
                      {{"name", key_.name},
                       {"namespace", key_.ns},
                       {"labels",
                        {{"app.kubernetes.io/name", "tasklease"},
                         {"app.kubernetes.io/component", "evidence"}}}}},
                     {"data", {{kHeadKey, value}}}};
    auto created = client_.create(kube::resources::kConfigMaps, cm);
    if (created.ok()) return {};
    // Created by someone else between our patch and create: patch it.
    if (!created.status().isAlreadyExists()) return created.status();
  }
  return unavailable("evidence chain head ConfigMap " + key_.toString() +
                     ": created and deleted concurrently; will save with the next record");
}

}  // namespace tasklease::op
