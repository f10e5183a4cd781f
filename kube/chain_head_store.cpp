#include "kube/chain_head_store.h"

#include "common/log.h"
#include "kube/backoff.h"
#include "kube/clock.h"

namespace tasklease::kube {
namespace {

constexpr char kHeadKey[] = "head";

}  // namespace

ConfigMapChainHeadStore::ConfigMapChainHeadStore(ApiClient& client, ObjectKey configMap)
    : client_(client),
      key_(std::move(configMap)),
      writer_([this](const std::stop_token& stop) { run(stop); }) {}

ConfigMapChainHeadStore::~ConfigMapChainHeadStore() {
  (void)flush(std::chrono::seconds(1));
  writer_.request_stop();
  cv_.notify_all();
}

StatusOr<std::optional<ChainHead>> ConfigMapChainHeadStore::load() {
  const std::string where = "evidence chain head ConfigMap " + key_.toString();
  auto cm = client_.get(resources::kConfigMaps, key_);
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
  {
    std::lock_guard lock(mu_);
    if (!pending_ || pending_->seq < head.seq) pending_ = head;
  }
  cv_.notify_all();
  return {};
}

Status ConfigMapChainHeadStore::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const bool done = cv_.wait_for(lock, timeout, [&] { return !pending_ && !writing_; });
  if (done) return {};
  return lastError_.ok() ? unavailable("evidence chain head not saved yet") : lastError_;
}

void ConfigMapChainHeadStore::run(const std::stop_token& stop) {
  Backoff backoff({std::chrono::milliseconds(100), 2.0, 0.2, std::chrono::seconds(5)});
  while (true) {
    ChainHead head;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [&] { return pending_.has_value(); });
      if (!pending_) return;  // stopped with nothing to save
      head = *pending_;
      pending_.reset();
      writing_ = true;
    }
    Status s = write(head);
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      lastError_ = s;
      // A newer head may have arrived meanwhile; a failed write is retried unless it did.
      if (!s.ok() && !pending_) pending_ = head;
    }
    cv_.notify_all();
    if (s.ok()) {
      backoff.reset();
      continue;
    }
    logWarn("saving the evidence chain head failed; will try again",
            {{"configMap", key_.toString()}, {"seq", head.seq}, {"error", s.toString()}});
    if (!sleepFor(backoff.next(), stop)) return;
  }
}

Status ConfigMapChainHeadStore::write(const ChainHead& head) {
  const std::string value = chainHeadToJson(head).dump();
  const Json patch = {{"data", {{kHeadKey, value}}}};
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto patched = client_.patch(resources::kConfigMaps, key_, patch);
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
    auto created = client_.create(resources::kConfigMaps, cm);
    if (created.ok()) return {};
    // Created by someone else between our patch and create: patch it.
    if (!created.status().isAlreadyExists()) return created.status();
  }
  return unavailable("evidence chain head ConfigMap " + key_.toString() +
                     ": created and deleted concurrently");
}

}  // namespace tasklease::kube
