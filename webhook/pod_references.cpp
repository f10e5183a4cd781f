#include "webhook/pod_references.h"

#include <array>

#include "webhook/json_access.h"

namespace tasklease::webhook {
namespace {

// Volume sources that name a Secret in a member of their own: volume.<source>.<member>.name, or
// volume.<source>.<member> itself when that is a string (azureFile.secretName).
struct SecretField {
  std::string_view source;
  std::string_view member;
  std::string_view field;  // the path suffix
};

constexpr std::array<SecretField, 9> kSecretFields = {{
    {"csi", "nodePublishSecretRef", ".csi.nodePublishSecretRef"},
    {"cephfs", "secretRef", ".cephfs.secretRef"},
    {"cinder", "secretRef", ".cinder.secretRef"},
    {"flexVolume", "secretRef", ".flexVolume.secretRef"},
    {"iscsi", "secretRef", ".iscsi.secretRef"},
    {"rbd", "secretRef", ".rbd.secretRef"},
    {"scaleIO", "secretRef", ".scaleIO.secretRef"},
    {"storageos", "secretRef", ".storageos.secretRef"},
    {"azureFile", "secretName", ".azureFile.secretName"},
}};

void emit(ReferencedKind kind, std::string_view name, size_t volume, std::optional<size_t> source,
          std::string_view field, const JsonView& node,
          FunctionRef<void(const VolumeReference&)> f) {
  f(VolumeReference{kind, name, volume, source, field, node});
}

}  // namespace

const std::vector<std::string_view>& volumeSourcesNamingObjects() {
  static const std::vector<std::string_view> kSources = [] {
    std::vector<std::string_view> out = {"secret", "configMap", "projected"};
    for (const SecretField& s : kSecretFields) out.push_back(s.source);
    return out;
  }();
  return kSources;
}

std::string VolumeReference::path(std::string_view specPath) const {
  std::string out = indexPath(std::string(specPath) + ".volumes", volume);
  if (source) out = indexPath(out + ".projected.sources", *source);
  return out + std::string(field);
}

void forEachVolumeReference(const JsonView& volumes, FunctionRef<void(const VolumeReference&)> f) {
  // One pass over each volume's members (a volume has two or three) instead of a lookup per
  // source type: the rules run on every review. The last of a repeated key counts, as member()
  // reads it.
  constexpr size_t kSecret = kSecretFields.size(), kConfigMap = kSecret + 1,
                   kProjected = kSecret + 2;
  volumes.forEach([&](size_t k, const JsonView& v) {
    std::array<JsonView, kProjected + 1> sources;
    v.forEachMember([&](std::string_view key, const JsonView& value) {
      if (key == "secret") {
        sources[kSecret] = value;
      } else if (key == "configMap") {
        sources[kConfigMap] = value;
      } else if (key == "projected") {
        sources[kProjected] = value;
      } else {
        for (size_t i = 0; i < kSecretFields.size(); ++i) {
          if (key == kSecretFields[i].source) sources[i] = value;
        }
      }
    });
    if (sources[kSecret].present()) {
      emit(ReferencedKind::kSecret, sources[kSecret].member("secretName").string(), k, std::nullopt,
           "", v, f);
    }
    if (sources[kConfigMap].present()) {
      emit(ReferencedKind::kConfigMap, sources[kConfigMap].member("name").string(), k, std::nullopt,
           "", v, f);
    }
    for (size_t i = 0; i < kSecretFields.size(); ++i) {
      if (!sources[i].present()) continue;
      JsonView ref = sources[i].member(kSecretFields[i].member);
      if (!ref.present()) continue;
      // azureFile names the Secret directly; the others through a LocalObjectReference.
      std::string_view name = ref.isString() ? ref.string() : ref.member("name").string();
      emit(ReferencedKind::kSecret, name, k, std::nullopt, kSecretFields[i].field, v, f);
    }
    sources[kProjected].member("sources").forEach([&](size_t m, const JsonView& source) {
      if (JsonView secret = source.member("secret"); secret.present()) {
        emit(ReferencedKind::kSecret, secret.member("name").string(), k, m, "", v, f);
      }
      if (JsonView cm = source.member("configMap"); cm.present()) {
        emit(ReferencedKind::kConfigMap, cm.member("name").string(), k, m, "", v, f);
      }
    });
  });
}

std::vector<PodReference> podReferences(const JsonView& spec, const std::string& specPath) {
  std::vector<PodReference> out;
  auto add = [&](ReferencedKind kind, std::string_view name, std::string path,
                 std::string_view volumeName = {}) {
    if (!name.empty()) {
      out.push_back({kind, std::string(name), std::move(path), std::string(volumeName)});
    }
  };
  forEachVolumeReference(spec.member("volumes"), [&](const VolumeReference& r) {
    add(r.kind, r.name, r.path(specPath), r.volumeNode.member("name").string());
  });
  for (std::string_view list : {"initContainers", "containers", "ephemeralContainers"}) {
    const std::string listPath = specPath + "." + std::string(list);
    spec.member(list).forEach([&](size_t i, const JsonView& c) {
      const std::string cpath = indexPath(listPath, i);
      c.member("env").forEach([&](size_t j, const JsonView& e) {
        const JsonView from = e.member("valueFrom");
        const std::string epath = indexPath(cpath + ".env", j);
        add(ReferencedKind::kSecret, from.member("secretKeyRef").member("name").string(), epath);
        add(ReferencedKind::kConfigMap, from.member("configMapKeyRef").member("name").string(),
            epath);
      });
      c.member("envFrom").forEach([&](size_t j, const JsonView& from) {
        const std::string fpath = indexPath(cpath + ".envFrom", j);
        add(ReferencedKind::kSecret, from.member("secretRef").member("name").string(), fpath);
        add(ReferencedKind::kConfigMap, from.member("configMapRef").member("name").string(), fpath);
      });
    });
  }
  spec.member("imagePullSecrets").forEach([&](size_t i, const JsonView& s) {
    add(ReferencedKind::kSecret, s.member("name").string(),
        indexPath(specPath + ".imagePullSecrets", i));
  });
  return out;
}

}  // namespace tasklease::webhook
