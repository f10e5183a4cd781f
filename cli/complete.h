#pragma once
// `kubectl tasklease complete TASK [-n NS] [-o json]`: marks an AgentTask done (spec.completed
// = true, a merge patch), so the operator revokes its credential. Completing a completed task
// changes nothing and succeeds. Exits 0, 2 on usage errors, 3 when the cluster refuses or the
// task does not exist.

#include "cli/cluster.h"
#include "cli/command.h"

namespace tasklease::cli {

class CompleteCommand : public Command {
 public:
  explicit CompleteCommand(ClusterConnector connector = kubeconfigConnector())
      : connector_(std::move(connector)) {}
  std::string name() const override { return "complete"; }
  std::string summary() const override {
    return "mark a task completed (spec.completed=true); its credential is revoked";
  }
  int run(const std::vector<std::string>& args, CliIo& io) override;

 private:
  ClusterConnector connector_;
};

}  // namespace tasklease::cli
