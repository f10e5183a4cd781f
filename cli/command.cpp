#include "cli/command.h"

#include <ostream>

#include "cli/check.h"
#include "cli/complete.h"
#include "cli/evidence_verify.h"
#include "cli/explain.h"

namespace tasklease::cli {

CommandGroup::CommandGroup(std::string name, std::string summary, std::vector<CommandPtr> children)
    : name_(std::move(name)), summary_(std::move(summary)), children_(std::move(children)) {}

std::string CommandGroup::usage(const std::string& prefix) const {
  std::string out = "Usage: " + prefix + " COMMAND [flags]\n\nCommands:\n";
  for (const auto& c : children_)
    out += "  " + c->name() + std::string(12 - std::min<size_t>(11, c->name().size()), ' ') +
           c->summary() + "\n";
  out += "\nRun '" + prefix + " COMMAND --help' for a command's flags.\n";
  return out;
}

int CommandGroup::run(const std::vector<std::string>& args, CliIo& io) {
  const std::string prefix = "kubectl tasklease" + (name_.empty() ? "" : " " + name_);
  if (args.empty() || args[0] == "help" || args[0] == "--help" || args[0] == "-h") {
    (args.empty() ? io.err : io.out) << usage(prefix);
    return args.empty() ? kExitUsage : kExitOk;
  }
  for (const auto& c : children_) {
    if (c->name() == args[0]) return c->run({args.begin() + 1, args.end()}, io);
  }
  io.err << prefix << ": unknown command \"" << args[0] << "\"\n\n" << usage(prefix);
  return kExitUsage;
}

std::vector<CommandPtr> builtinCommands() {
  std::vector<CommandPtr> commands;
  commands.push_back(std::make_unique<CheckCommand>());
  commands.push_back(std::make_unique<ExplainCommand>());
  commands.push_back(std::make_unique<CompleteCommand>());
  std::vector<CommandPtr> evidence;
  evidence.push_back(std::make_unique<EvidenceVerifyCommand>());
  commands.push_back(
      std::make_unique<CommandGroup>("evidence", "work with evidence logs", std::move(evidence)));
  return commands;
}

int runCli(const std::vector<std::string>& args, CliIo& io) {
  CommandGroup root("", "", builtinCommands());
  return root.run(args, io);
}

}  // namespace tasklease::cli
