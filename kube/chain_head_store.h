#pragma once
// ConfigMapChainHeadStore: keeps the evidence chain's head ({"seq", "hash"}) in a ConfigMap, so
// that a restarted operator or webhook, or the replica that takes over the lead, continues the
// chain (docs/evidence.md, "Restarts").
//
// save() only records the newest head; a writer thread puts it in the ConfigMap (a merge patch,
// or a create the first time). A burst of records thus costs one write, and a slow or failing
// API server never holds up the chain, which appends under its own lock. The price: a crash in
// the few milliseconds before the write may leave the stored head a record or two behind. With
// --evidence-file that costs nothing, as the chain resumes from the file's last record; with
// stdout alone the records after the stored head would be numbered again (docs/operator.md).
//
//   ConfigMapChainHeadStore head(client, {"tasklease-system", "tasklease-operator-evidence"});
//   auto chain = EvidenceChain::open(std::move(sinks), &head);
//   ...
//   head.flush(std::chrono::seconds(2));   // before exiting

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "common/evidence.h"
#include "kube/api_client.h"

namespace tasklease::kube {

class ConfigMapChainHeadStore final : public ChainHeadStore {
 public:
  ConfigMapChainHeadStore(ApiClient& client, ObjectKey configMap);
  // Tries to save what is pending for up to a second, then stops the writer.
  ~ConfigMapChainHeadStore() override;
  ConfigMapChainHeadStore(const ConfigMapChainHeadStore&) = delete;
  ConfigMapChainHeadStore& operator=(const ConfigMapChainHeadStore&) = delete;

  StatusOr<std::optional<ChainHead>> load() override;
  // Records the head for the writer and returns; never fails.
  Status save(const ChainHead& head) override;
  // Waits until the newest head is in the ConfigMap, or `timeout`; the last write error if not.
  Status flush(std::chrono::milliseconds timeout);

 private:
  // One synchronous write of the head.
  Status write(const ChainHead& head);
  void run(const std::stop_token& stop);

  ApiClient& client_;
  const ObjectKey key_;
  std::mutex mu_;
  std::condition_variable_any cv_;    // pending_ set, or a write finished
  std::optional<ChainHead> pending_;  // guarded by mu_: newer than what is stored
  bool writing_ = false;              // guarded by mu_
  Status lastError_;                  // guarded by mu_
  std::jthread writer_;               // last: it uses everything above
};

}  // namespace tasklease::kube
