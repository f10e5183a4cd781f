#include "cli/complete.h"

#include <ostream>

#include "common/flags.h"

namespace tasklease::cli {

namespace {
constexpr char kCommand[] = "kubectl tasklease complete";
}  // namespace

int CompleteCommand::run(const std::vector<std::string>& args, CliIo& io) {
  int code = kExitOk;
  auto line = parseTaskCommandLine(kCommand, "TASK [-n NAMESPACE] [-o json]", summary() + ".", args,
                                   io, &code);
  if (!line) return code;
  const std::string& name = line->task;
  ClusterAccess cluster;
  Json task;
  code = fetchTask(kCommand, connector_, line->kube, name, io, cluster, task);
  if (code != kExitOk) return code;

  const Json& spec = task.contains("spec") ? task["spec"] : Json::object();
  const bool already = spec.is_object() && spec.value("completed", false) == true;
  if (!already) {
    auto patched = cluster.client->patch(kAgentTaskResource, {cluster.ns, name},
                                         Json{{"spec", {{"completed", true}}}});
    if (!patched.ok()) {
      io.err << kCommand << ": setting spec.completed of AgentTask " << cluster.ns << "/" << name
             << ": " << patched.status().message() << "\n";
      return kExitCluster;
    }
    task = std::move(*patched);
  }
  const Json& status = task.contains("status") ? task["status"] : Json::object();
  const std::string phase = status.is_object() ? status.value("phase", std::string()) : "";
  if (line->output == "json") {
    const Json& metadata = task["metadata"];
    io.out << Json{{"namespace", cluster.ns},
                   {"name", name},
                   {"uid", metadata.value("uid", std::string())},
                   {"completed", true},
                   {"changed", !already},
                   {"phase", phase}}
                  .dump(2)
           << "\n";
  } else {
    io.out << "agenttask.tasklease.io/" << name << (already ? " already completed" : " completed")
           << (phase.empty() ? "" : " (phase " + phase + ")") << "\n";
  }
  return kExitOk;
}

}  // namespace tasklease::cli
