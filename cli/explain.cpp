#include "cli/explain.h"

#include <ostream>

#include "cli/timeline.h"
#include "common/flags.h"

namespace tasklease::cli {

namespace {
constexpr char kCommand[] = "kubectl tasklease explain";
}  // namespace

int ExplainCommand::run(const std::vector<std::string>& args, CliIo& io) {
  std::vector<std::string> evidenceFiles;
  int code = kExitOk;
  auto line = parseTaskCommandLine(
      kCommand, "TASK [-n NAMESPACE] [--evidence FILE]... [-o json]",
      summary() +
          ".\nSteps come from the task's status, its Events and the evidence records "
          "about it, in time order.",
      args, io, &code, [&](FlagSet& flags) {
        flags.addStrings("evidence", &evidenceFiles,
                         "evidence file (JSON lines) of the operator or the webhook (repeatable)");
      });
  if (!line) return code;
  // Local input first: a typo in a file name should not wait for the network.
  std::vector<EvidenceSource> evidence;
  for (const std::string& file : evidenceFiles) {
    auto source = readEvidenceFile(file);
    if (!source.ok()) {
      io.err << kCommand << ": " << source.status().message() << "\n";
      return kExitUsage;
    }
    evidence.push_back(std::move(*source));
  }
  const std::string& name = line->task;
  ClusterAccess cluster;
  Json task;
  code = fetchTask(kCommand, connector_, line->kube, name, io, cluster, task);
  if (code != kExitOk) return code;

  // The namespace's Events, filtered here by involvedObject (buildTimeline): field selectors on
  // involvedObject are an API server feature that not every client-side double has.
  auto events = kube::listAll(*cluster.client, kube::resources::kEvents, cluster.ns);
  if (!events.ok()) {
    // Events are a convenience next to the status and the evidence; say so and go on.
    io.err << kCommand << ": warning: Events of " << cluster.ns << "/" << name
           << " not read: " << events.status().message() << "\n";
  }
  TaskTimeline timeline =
      buildTimeline(task, events.ok() ? events->items : std::vector<Json>{}, evidence);
  if (line->output == "json") {
    io.out << timeline.toJson().dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    io.out << timeline.toText();
  }
  return timeline.problems.empty() ? kExitOk : kExitFindings;
}

}  // namespace tasklease::cli
