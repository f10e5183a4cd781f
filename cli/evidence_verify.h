#pragma once
// `kubectl tasklease evidence verify FILE...`: checks each file as one evidence chain
// (docs/evidence.md) and reports the first altered, missing or reordered record by seq.
// Exits 1 when any file fails.

#include "cli/command.h"

namespace tasklease::cli {

class EvidenceVerifyCommand : public Command {
 public:
  std::string name() const override { return "verify"; }
  std::string summary() const override {
    return "verify evidence files: the first altered, missing or reordered record";
  }
  int run(const std::vector<std::string>& args, CliIo& io) override;
};

}  // namespace tasklease::cli
