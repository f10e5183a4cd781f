// Runs a client.authentication.k8s.io exec plugin: the command gets KUBERNETES_EXEC_INFO in its
// environment, stdin from /dev/null and our stderr; its stdout is an ExecCredential.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <vector>

#include "common/rfc3339.h"
#include "kube/credentials.h"

extern char** environ;  // NOLINT: POSIX

namespace tasklease::kube {
namespace {

constexpr size_t kMaxOutput = 1 << 20;

// Closes a file descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_;
};

std::string describeCommand(const ExecConfig& exec) {
  return "exec plugin \"" + exec.command + "\"";
}

Status withHint(const ExecConfig& exec, const std::string& message) {
  std::string m = describeCommand(exec) + ": " + message;
  if (!exec.installHint.empty()) m += "\n" + exec.installHint;
  return Status(StatusCode::kUnauthenticated, m);
}

struct ProcessOutput {
  std::string stdoutText;
  int exitStatus = 0;
};

StatusOr<ProcessOutput> runProcess(const ExecConfig& exec, const std::string& execInfo,
                                   std::chrono::milliseconds timeout) {
  int pipeFds[2];
  if (::pipe2(pipeFds, O_CLOEXEC) != 0) {
    return withHint(exec, std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  Fd readEnd(pipeFds[0]);
  Fd writeEnd(pipeFds[1]);

  // The environment: ours, then the kubeconfig's env entries, then KUBERNETES_EXEC_INFO.
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    const auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  for (const auto& [k, v] : exec.env) env[k] = v;
  env["KUBERNETES_EXEC_INFO"] = execInfo;
  std::vector<std::string> envStrings;
  envStrings.reserve(env.size());
  for (const auto& [k, v] : env) envStrings.push_back(std::string(k).append("=").append(v));
  std::vector<char*> envp;
  envp.reserve(envStrings.size() + 1);
  for (auto& s : envStrings) envp.push_back(s.data());
  envp.push_back(nullptr);

  std::vector<std::string> argStrings{exec.command};
  argStrings.insert(argStrings.end(), exec.args.begin(), exec.args.end());
  std::vector<char*> argv;
  argv.reserve(argStrings.size() + 1);
  for (auto& s : argStrings) argv.push_back(s.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, writeEnd.get(), 1);
  pid_t pid = 0;
  const int rc =
      ::posix_spawnp(&pid, exec.command.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return withHint(exec, std::string("cannot be run: ") + std::strerror(rc));
  writeEnd.reset();

  ProcessOutput out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timedOut = false;
  bool tooLarge = false;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd pfd{readEnd.get(), POLLIN, 0};
    const int pr = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) {
      timedOut = pr == 0;
      break;
    }
    const ssize_t n = ::read(readEnd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.stdoutText.append(buf, static_cast<size_t>(n));
    if (out.stdoutText.size() > kMaxOutput) {
      tooLarge = true;
      break;
    }
  }
  if (timedOut || tooLarge) ::kill(pid, SIGKILL);
  int wstatus = 0;
  while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (timedOut) {
    return withHint(exec, "did not finish within " + std::to_string(timeout.count()) + "ms");
  }
  if (tooLarge) return withHint(exec, "wrote more than 1 MiB to stdout");
  if (WIFSIGNALED(wstatus)) {
    return withHint(exec, "was killed by signal " + std::to_string(WTERMSIG(wstatus)));
  }
  out.exitStatus = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
  return out;
}

}  // namespace

StatusOr<ExecCredentialResult> runExecPlugin(const ExecConfig& exec, const Json& clusterInfo,
                                             std::chrono::milliseconds timeout) {
  if (exec.interactiveMode == "Always") {
    return withHint(exec,
                    "needs an interactive terminal (interactiveMode: Always), which tasklease "
                    "never provides; use interactiveMode: Never or IfAvailable");
  }
  Json spec = {{"interactive", false}};
  if (exec.provideClusterInfo && !clusterInfo.is_null()) spec["cluster"] = clusterInfo;
  const Json info = {{"apiVersion", exec.apiVersion}, {"kind", "ExecCredential"}, {"spec", spec}};
  auto run = runProcess(exec, info.dump(), timeout);
  if (!run.ok()) return run.status();
  if (run->exitStatus != 0) {
    return withHint(exec, "exited with status " + std::to_string(run->exitStatus));
  }
  const Json cred = Json::parse(run->stdoutText, nullptr, /*allow_exceptions=*/false);
  const std::string what = describeCommand(exec) + " printed an ExecCredential with ";
  if (!cred.is_object()) {
    return Status(StatusCode::kUnauthenticated,
                  describeCommand(exec) + ": stdout is not a JSON ExecCredential");
  }
  if (cred.value("kind", "") != "ExecCredential") {
    return Status(StatusCode::kUnauthenticated, what + "kind other than ExecCredential");
  }
  if (cred.value("apiVersion", "") != exec.apiVersion) {
    return Status(
        StatusCode::kUnauthenticated,
        what + "apiVersion \"" + cred.value("apiVersion", "") + "\"; expected " + exec.apiVersion);
  }
  const auto status = cred.find("status");
  if (status == cred.end() || !status->is_object()) {
    return Status(StatusCode::kUnauthenticated, what + "no status");
  }
  ExecCredentialResult result;
  const auto str = [&](const char* key) {
    const auto it = status->find(key);
    return it != status->end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  result.credentials.bearerToken = str("token");
  result.credentials.clientCertPem = str("clientCertificateData");
  result.credentials.clientKeyPem = str("clientKeyData");
  if (result.credentials.clientCertPem.empty() != result.credentials.clientKeyPem.empty()) {
    return Status(StatusCode::kUnauthenticated,
                  what + "only one of status.clientCertificateData and status.clientKeyData");
  }
  if (result.credentials.bearerToken.empty() && result.credentials.clientCertPem.empty()) {
    return Status(StatusCode::kUnauthenticated,
                  what + "neither status.token nor status.clientCertificateData");
  }
  if (const std::string exp = str("expirationTimestamp"); !exp.empty()) {
    auto t = parseRfc3339(exp);
    if (!t.ok()) {
      return Status(StatusCode::kUnauthenticated,
                    what + "a bad status.expirationTimestamp: " + t.status().message());
    }
    result.expiration = *t;
  }
  return result;
}

}  // namespace tasklease::kube
