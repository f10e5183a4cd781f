#include "kube/credentials.h"

#include <mutex>

#include "common/base64.h"
#include "common/crypto.h"
#include "common/file.h"
#include "common/log.h"

namespace tasklease::kube {
namespace {

std::string trimToken(std::string s) {
  const auto end = s.find_last_not_of(" \t\r\n");
  s.erase(end == std::string::npos ? 0 : end + 1);
  const auto begin = s.find_first_not_of(" \t\r\n");
  return begin == std::string::npos ? std::string() : s.substr(begin);
}

class StaticCredentialProvider final : public CredentialProvider {
 public:
  explicit StaticCredentialProvider(std::string token) { creds_.bearerToken = std::move(token); }
  StatusOr<Credentials> current() override { return creds_; }
  bool refreshAfterUnauthorized(const Credentials& /*rejected*/) override { return false; }

 private:
  Credentials creds_;
};

// A projected service-account token is rotated by the kubelet; re-reading the file every
// minute and after a 401 picks up the new one (client-go's cachingTokenSource does the same).
class TokenFileCredentialProvider final : public CredentialProvider {
 public:
  TokenFileCredentialProvider(std::string path, std::string fallback, Clock& clock)
      : path_(std::move(path)), fallback_(std::move(fallback)), clock_(clock) {}

  StatusOr<Credentials> current() override {
    std::lock_guard lock(mu_);
    const auto now = clock_.now();
    if (!readOnce_ || now - readAt_ >= kRereadInterval) {
      if (Status s = rereadLocked(now); !s.ok()) return s;
    }
    return Credentials{token_, {}, {}};
  }

  bool refreshAfterUnauthorized(const Credentials& rejected) override {
    std::lock_guard lock(mu_);
    if (rejected.bearerToken != token_) return true;  // already replaced by another caller
    const std::string before = token_;
    if (!rereadLocked(clock_.now()).ok()) return false;
    return token_ != before;
  }

 private:
  static constexpr std::chrono::minutes kRereadInterval{1};

  Status rereadLocked(Clock::TimePoint now) {
    auto content = readFile(path_, "tokenFile");
    std::string token = content.ok() ? trimToken(*content) : std::string();
    if (token.empty()) {
      // Keep the last good token (or the kubeconfig's static one) through a failed rotation.
      const std::string why = content.ok() ? "the file is empty" : content.status().message();
      if (!readOnce_ && fallback_.empty()) {
        return Status(StatusCode::kUnauthenticated, "token file " + path_ + ": " + why);
      }
      if (!readOnce_) token_ = fallback_;
      logWarn("kube: token file unreadable, keeping the previous token",
              {{"file", path_}, {"error", why}});
    } else if (token != token_) {
      token_ = std::move(token);
      logDebug("kube: token file read", {{"file", path_}, {"token", fingerprint(token_)}});
    }
    readOnce_ = true;
    readAt_ = now;
    return {};
  }

  const std::string path_;
  const std::string fallback_;
  Clock& clock_;
  std::mutex mu_;
  std::string token_;        // guarded by mu_
  bool readOnce_ = false;    // guarded by mu_
  Clock::TimePoint readAt_;  // guarded by mu_
};

// Runs the plugin on first use, then again when the credential has expired or was rejected.
// One caller runs the plugin while the others wait for its result.
class ExecCredentialProvider final : public CredentialProvider {
 public:
  ExecCredentialProvider(ExecConfig exec, Json clusterInfo)
      : exec_(std::move(exec)), clusterInfo_(std::move(clusterInfo)) {}

  StatusOr<Credentials> current() override {
    std::lock_guard lock(mu_);
    const bool expired =
        cached_ && cached_->expiration && std::chrono::system_clock::now() >= *cached_->expiration;
    if (!cached_ || expired) {
      auto result = runExecPlugin(exec_, clusterInfo_, kPluginTimeout);
      if (!result.ok()) return result.status();
      cached_ = std::move(*result);
    }
    return cached_->credentials;
  }

  bool refreshAfterUnauthorized(const Credentials& rejected) override {
    std::lock_guard lock(mu_);
    if (cached_ && (cached_->credentials.bearerToken != rejected.bearerToken ||
                    cached_->credentials.clientCertPem != rejected.clientCertPem)) {
      return true;  // another caller already fetched new credentials
    }
    cached_.reset();
    return true;
  }

 private:
  static constexpr std::chrono::seconds kPluginTimeout{60};

  const ExecConfig exec_;
  const Json clusterInfo_;
  std::mutex mu_;
  std::optional<ExecCredentialResult> cached_;  // guarded by mu_
};

Json clusterInfoFor(const RestConfig& config) {
  Json cluster = {{"server", config.server}};
  if (!config.caPem.empty()) cluster["certificate-authority-data"] = base64Encode(config.caPem);
  if (config.insecureSkipTlsVerify) cluster["insecure-skip-tls-verify"] = true;
  if (!config.tlsServerName.empty()) cluster["tls-server-name"] = config.tlsServerName;
  if (!config.proxyUrl.empty()) cluster["proxy-url"] = config.proxyUrl;
  return cluster;
}

}  // namespace

CredentialProviderPtr makeCredentialProvider(const RestConfig& config, Clock& clock) {
  if (config.exec) {
    return std::make_unique<ExecCredentialProvider>(
        *config.exec, config.exec->provideClusterInfo ? clusterInfoFor(config) : Json());
  }
  if (!config.bearerTokenFile.empty()) {
    return std::make_unique<TokenFileCredentialProvider>(config.bearerTokenFile, config.bearerToken,
                                                         clock);
  }
  return std::make_unique<StaticCredentialProvider>(config.bearerToken);
}

}  // namespace tasklease::kube
