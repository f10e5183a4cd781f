#pragma once
// ConfigMapChainHeadStore: keeps the evidence chain's head ({"seq", "hash"}) in a ConfigMap, so
// that a restarted operator, or the replica that takes over the lead, continues the chain
// (docs/evidence.md, "Restarts"). The head is written with a merge patch (the chain is
// serialised by its writer, so the last write is the newest head) and created when absent.
//
//   ConfigMapChainHeadStore head(client, {"tasklease-system", "tasklease-operator-evidence"});
//   auto chain = EvidenceChain::open(std::move(sinks), &head);

#include "common/evidence.h"
#include "kube/api_client.h"

namespace tasklease::op {

class ConfigMapChainHeadStore final : public ChainHeadStore {
 public:
  ConfigMapChainHeadStore(kube::ApiClient& client, kube::ObjectKey configMap);
  StatusOr<std::optional<ChainHead>> load() override;
  Status save(const ChainHead& head) override;

 private:
  kube::ApiClient& client_;
  const kube::ObjectKey key_;
};

}  // namespace tasklease::op
