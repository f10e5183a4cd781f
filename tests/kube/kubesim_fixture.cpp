#include "tests/kube/kubesim_fixture.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

extern char** environ;  // NOLINT: POSIX

namespace tasklease::kube::testing {

Kubesim::~Kubesim() {
  stop();
}

Status Kubesim::start(const std::string& tokenFile) {
  kubeconfig_ = dir_.path() + "/kubeconfig";
  std::vector<std::string> args = {"/usr/bin/python3", "-m",        "kubesim",    "--port", "0",
                                   "--kubeconfig-out", kubeconfig_, "--cert-dir", certDir()};
  if (!tokenFile.empty()) {
    args.push_back("--token-file");
    args.push_back(dir_.write("tokens.csv", tokenFile));
  }
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return internalError("pipe2 failed");
  const std::string logFile = dir_.path() + "/kubesim.log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addchdir_np(&actions, TASKLEASE_SOURCE_DIR "/e2e");
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, logFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    pid_ = -1;
    return internalError("cannot start kubesim: " + std::string(std::strerror(rc)));
  }

  // Wait for "ready https://127.0.0.1:PORT" (python startup and key generation take a second).
  std::string buffer;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd pfd{out[0], POLLIN, 0};
    if (::poll(&pfd, 1, 200) <= 0) continue;
    char chunk[512];
    const ssize_t n = ::read(out[0], chunk, sizeof chunk);
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    const auto pos = buffer.find("ready ");
    const auto nl = buffer.find('\n', pos == std::string::npos ? 0 : pos);
    if (pos != std::string::npos && nl != std::string::npos) {
      url_ = buffer.substr(pos + 6, nl - pos - 6);
      break;
    }
  }
  ::close(out[0]);
  if (url_.empty()) {
    stop();
    return unavailable("kubesim did not become ready; its log:\n" + readFileOrEmpty(logFile));
  }
  return {};
}

void Kubesim::stop() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

RestConfig Kubesim::adminConfig() const {
  auto cfg = loadKubeconfig({{kubeconfig_}, ""});
  RestConfig out = cfg.ok() ? *cfg : RestConfig{};
  out.qps = 0;
  out.retry.maxAttempts = 10;
  out.retry.backoff = {std::chrono::milliseconds(20), 2.0, 0.5, std::chrono::milliseconds(1000)};
  out.requestTimeout = std::chrono::seconds(20);
  return out;
}

std::unique_ptr<ApiClientImpl> Kubesim::adminClient() const {
  auto client = makeApiClient(adminConfig());
  return client.ok() ? std::move(*client) : nullptr;
}

Status Kubesim::setFaults(const Json& faults) const {
  auto client = adminClient();
  if (!client) return internalError("no admin client");
  return client->request("PUT", "/kubesim/faults", &faults, true, {}).status();
}

Status Kubesim::clearFaults() const {
  auto client = adminClient();
  if (!client) return internalError("no admin client");
  return client->request("DELETE", "/kubesim/faults", nullptr, true, {}).status();
}

Status Kubesim::compact() const {
  auto client = adminClient();
  if (!client) return internalError("no admin client");
  const Json empty = Json::object();
  return client->request("POST", "/kubesim/compact", &empty, true, {}).status();
}

StatusOr<Json> Kubesim::faultCounts() const {
  auto client = adminClient();
  if (!client) return internalError("no admin client");
  return client->request("GET", "/kubesim/faults", nullptr, true, {});
}

}  // namespace tasklease::kube::testing
