#pragma once
// How the commands that talk to a cluster (explain, complete) reach it: the kubectl flags
// --kubeconfig, --context and -n/--namespace, resolved as kubectl resolves them ($KUBECONFIG,
// else ~/.kube/config; the namespace from the flag, else the context's, else "default").
// Commands take a ClusterConnector so that tests hand them an in-memory API server.
//
//   KubeFlags kube;
//   kube.add(flags);                               // before flags.parse()
//   StatusOr<ClusterAccess> cluster = connector(kube);
//   cluster->client->get(kAgentTaskResource, {cluster->ns, name});

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/command.h"
#include "common/flags.h"
#include "common/json.h"
#include "common/status.h"
#include "kube/api_client.h"
#include "kube/resource.h"

namespace tasklease::cli {

inline const kube::ResourceRef kAgentTaskResource{"tasklease.io", "v1alpha1", "agenttasks",
                                                  "AgentTask", true};

struct KubeFlags {
  std::string kubeconfig;
  std::string context;
  std::string ns;  // empty: the context's namespace

  void add(FlagSet& flags);
};

struct ClusterAccess {
  std::shared_ptr<kube::ApiClient> client;
  std::string ns;  // the namespace the command works in, resolved
};

using ClusterConnector = std::function<StatusOr<ClusterAccess>(const KubeFlags&)>;

// Loads kubeconfig (kube::loadConfig) and builds a client over HTTPS.
ClusterConnector kubeconfigConnector();

// Connects and reads the AgentTask `name`. On failure prints "<command>: why" to io.err (a
// missing task names its namespace) and returns the exit code; kExitOk otherwise.
int fetchTask(const std::string& command, const ClusterConnector& connector, const KubeFlags& flags,
              const std::string& name, CliIo& io, ClusterAccess& cluster, Json& task);

// The command line of a command about one task: `COMMAND TASK` with the kube flags, -o/--output
// (text or json), -h/--help, and whatever `extraFlags` adds. Returns nullopt when the command
// should stop, with *exitCode set: kExitOk after printing the help, kExitUsage after printing
// what is wrong.
struct TaskCommandLine {
  KubeFlags kube;
  std::string output = "text";
  std::string task;
};
std::optional<TaskCommandLine> parseTaskCommandLine(
    const std::string& command, const std::string& usage, const std::string& description,
    const std::vector<std::string>& args, CliIo& io, int* exitCode,
    const std::function<void(FlagSet&)>& extraFlags = {});

}  // namespace tasklease::cli
