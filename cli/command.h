#pragma once
// kubectl-tasklease's subcommands. Each is a Command with a name, a one-line summary and a run
// function over its own arguments and streams; groups ("evidence verify") are commands that
// dispatch to their children. main.cpp only calls runCli(), so tests run every command
// in-process.
//
//   CliIo io{std::cin, std::cout, std::cerr};
//   return runCli({"check", "-f", "deploy/"}, io);
//
// Exit codes (docs/cli.md): 0 success, 1 the command found problems (violations, a broken
// evidence chain, sources that disagree), 2 usage or input errors, 3 the cluster could not
// answer (no such task, kubeconfig, network, permissions, a refused change).

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace tasklease::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFindings = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCluster = 3;

struct CliIo {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

class Command {
 public:
  virtual ~Command() = default;
  virtual std::string name() const = 0;
  virtual std::string summary() const = 0;
  // args are what follows the command's name.
  virtual int run(const std::vector<std::string>& args, CliIo& io) = 0;
};
using CommandPtr = std::unique_ptr<Command>;

// A command made of subcommands: `evidence verify ...`.
class CommandGroup : public Command {
 public:
  CommandGroup(std::string name, std::string summary, std::vector<CommandPtr> children);
  std::string name() const override { return name_; }
  std::string summary() const override { return summary_; }
  int run(const std::vector<std::string>& args, CliIo& io) override;
  // "Usage: ..." and one line per child.
  std::string usage(const std::string& prefix) const;

 private:
  std::string name_;
  std::string summary_;
  std::vector<CommandPtr> children_;
};

// The plugin's commands: check, explain, complete, evidence verify.
std::vector<CommandPtr> builtinCommands();

// Runs `kubectl-tasklease ARGS...` (args without the program name).
int runCli(const std::vector<std::string>& args, CliIo& io);

}  // namespace tasklease::cli
