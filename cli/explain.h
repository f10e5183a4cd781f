#pragma once
// `kubectl tasklease explain TASK [-n NS] [--evidence FILE...] [-o json]`: one AgentTask's path
// from request to revocation (cli/timeline.h), from its status, its Events and the evidence
// files given. Exits 0, or 1 when the sources disagree or an evidence chain is broken, 2 on
// usage and input errors (an unreadable evidence file), 3 when the cluster cannot answer (the
// task does not exist, kubeconfig, network, permissions).

#include "cli/cluster.h"
#include "cli/command.h"

namespace tasklease::cli {

class ExplainCommand : public Command {
 public:
  explicit ExplainCommand(ClusterConnector connector = kubeconfigConnector())
      : connector_(std::move(connector)) {}
  std::string name() const override { return "explain"; }
  std::string summary() const override {
    return "show a task's path: request, decision, credential, pods, ending, revocation";
  }
  int run(const std::vector<std::string>& args, CliIo& io) override;

 private:
  ClusterConnector connector_;
};

}  // namespace tasklease::cli
