#pragma once
// The Secrets and ConfigMaps a pod spec reads, wherever it names them: TL003 judges the Secrets
// its volumes mount, and AgentTask admission asks whether the requester may read every Secret and
// ConfigMap a workload template reads (docs/delegation.md).
//
//   forEachVolumeReference(spec.member("volumes"), [&](const VolumeReference& r) { ... });
//   for (const PodReference& r : podReferences(spec, "spec.workload.template.spec")) ...
//
// Volumes: secret, configMap, projected sources (secret, configMap), csi.nodePublishSecretRef,
// the secretRef of cephfs, cinder, flexVolume, iscsi, rbd, scaleIO and storageos, and
// azureFile.secretName. Containers (containers, initContainers, ephemeralContainers):
// env[].valueFrom.secretKeyRef / configMapKeyRef and envFrom[].secretRef / configMapRef. The pod:
// imagePullSecrets. forEachVolumeReference reports a reference whose name is empty or missing
// (the API server refuses those, so TL003 may as well); podReferences leaves them out.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "webhook/json_view.h"

namespace tasklease::webhook {

enum class ReferencedKind { kSecret, kConfigMap };

// One Secret or ConfigMap named by volumes[volume] (by its projected.sources[source] when set).
struct VolumeReference {
  ReferencedKind kind;
  std::string_view name;  // may be empty
  size_t volume = 0;
  std::optional<size_t> source;
  // Where in the volume (or source) the name is: "" for a secret or configMap volume (and
  // source), else ".csi.nodePublishSecretRef", ".azureFile.secretName", ...
  std::string_view field;
  JsonView volumeNode;  // volumes[volume] itself

  // "spec.volumes[2].csi.nodePublishSecretRef" under specPath "spec".
  std::string path(std::string_view specPath) const;
};

// The volume sources forEachVolumeReference reads: "secret", "configMap", "projected", "csi", ...
const std::vector<std::string_view>& volumeSourcesNamingObjects();

// f(reference) for each Secret and ConfigMap the volumes name, in order.
void forEachVolumeReference(const JsonView& volumes, FunctionRef<void(const VolumeReference&)> f);

struct PodReference {
  ReferencedKind kind;
  std::string name;
  std::string path;        // the field that names it, under specPath
  std::string volumeName;  // the volume's name for a volume's reference, else ""
};

// Every Secret and ConfigMap the pod spec at specPath reads, in the order of the spec.
std::vector<PodReference> podReferences(const JsonView& spec, const std::string& specPath);

}  // namespace tasklease::webhook
