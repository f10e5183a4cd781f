#include "cli/cluster.h"

#include <ostream>

#include "kube/api_client_impl.h"
#include "kube/config.h"

namespace tasklease::cli {

void KubeFlags::add(FlagSet& flags) {
  flags.addString("kubeconfig", &kubeconfig,
                  "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)");
  flags.addString("context", &context, "kubeconfig context (default: the current context)");
  flags.addString("namespace", &ns, "the task's namespace (default: the context's namespace)");
  flags.addShort('n', "namespace");
}

ClusterConnector kubeconfigConnector() {
  return [](const KubeFlags& flags) -> StatusOr<ClusterAccess> {
    auto config = kube::loadConfig(flags.kubeconfig, flags.context);
    if (!config.ok()) return config.status();
    kube::RestConfig rest = *config;
    rest.userAgent = "kubectl-tasklease";
    // One person waiting at a terminal: fail within seconds rather than retry for a minute.
    rest.retry.maxAttempts = 3;
    rest.requestTimeout = std::chrono::milliseconds(15000);
    auto client = kube::makeApiClient(rest);
    if (!client.ok()) return client.status();
    ClusterAccess access;
    access.client = std::shared_ptr<kube::ApiClient>(std::move(*client));
    access.ns = flags.ns.empty() ? (rest.ns.empty() ? std::string("default") : rest.ns) : flags.ns;
    return access;
  };
}

int fetchTask(const std::string& command, const ClusterConnector& connector, const KubeFlags& flags,
              const std::string& name, CliIo& io, ClusterAccess& cluster, Json& task) {
  auto access = connector(flags);
  if (!access.ok()) {
    io.err << command << ": " << access.status().message() << "\n";
    return kExitCluster;
  }
  cluster = std::move(*access);
  auto got = cluster.client->get(kAgentTaskResource, {cluster.ns, name});
  if (!got.ok()) {
    if (got.status().isNotFound()) {
      io.err << command << ": AgentTask \"" << name << "\" not found in namespace \"" << cluster.ns
             << "\"\n";
    } else {
      io.err << command << ": reading AgentTask " << cluster.ns << "/" << name << ": "
             << got.status().message() << "\n";
    }
    return kExitCluster;
  }
  task = std::move(*got);
  return kExitOk;
}

std::optional<TaskCommandLine> parseTaskCommandLine(
    const std::string& command, const std::string& usage, const std::string& description,
    const std::vector<std::string>& args, CliIo& io, int* exitCode,
    const std::function<void(FlagSet&)>& extraFlags) {
  TaskCommandLine line;
  bool help = false;
  FlagSet flags(command);
  line.kube.add(flags);
  if (extraFlags) extraFlags(flags);
  flags.addString("output", &line.output, "text or json");
  flags.addShort('o', "output");
  flags.addBool("help", &help, "print this help");
  flags.addShort('h', "help");
  auto rest = flags.parse(args);
  *exitCode = kExitUsage;
  if (!rest.ok()) {
    io.err << rest.status().message() << "\n";
    return std::nullopt;
  }
  if (help) {
    io.out << "Usage: " << command << " " << usage << "\n\n"
           << description << "\n\n"
           << flags.usage();
    *exitCode = kExitOk;
    return std::nullopt;
  }
  if (rest->size() != 1) {
    io.err << "Usage: " << command << " " << usage << "\n";
    return std::nullopt;
  }
  if (line.output != "text" && line.output != "json") {
    io.err << command << ": --output must be text or json, not \"" << line.output << "\"\n";
    return std::nullopt;
  }
  line.task = (*rest)[0];
  *exitCode = kExitOk;
  return line;
}

}  // namespace tasklease::cli
