#include "cli/evidence_verify.h"

#include <fstream>
#include <istream>
#include <ostream>

#include "common/evidence.h"
#include "common/flags.h"

namespace tasklease::cli {

int EvidenceVerifyCommand::run(const std::vector<std::string>& args, CliIo& io) {
  std::string output = "text";
  std::string headFile;
  bool midChain = false;
  bool help = false;
  FlagSet flags("kubectl tasklease evidence verify");
  flags.addString("output", &output, "text or json");
  flags.addShort('o', "output");
  flags.addString("head-file", &headFile,
                  "the chain head the writer persisted ({\"seq\":N,\"hash\":\"...\"}): records "
                  "missing at the end are found too");
  flags.addBool("mid-chain", &midChain, "the file may start after seq 1 (a rotated log)");
  flags.addBool("help", &help, "print this help");
  flags.addShort('h', "help");
  auto files = flags.parse(args);
  if (!files.ok()) {
    io.err << files.status().message() << "\n";
    return kExitUsage;
  }
  if (help) {
    io.out << "Usage: kubectl tasklease evidence verify FILE... [-o json]\n\n"
           << summary() << "; - reads stdin.\n\n"
           << flags.usage();
    return kExitOk;
  }
  if (files->empty() || (output != "text" && output != "json")) {
    io.err << "Usage: kubectl tasklease evidence verify FILE... [-o text|json]\n";
    return kExitUsage;
  }
  VerifyOptions options;
  options.requireGenesis = !midChain;
  if (!headFile.empty()) {
    FileChainHeadStore store(headFile);
    auto head = store.load();
    if (!head.ok() || !head->has_value()) {
      io.err << "kubectl tasklease evidence verify: --head-file " << headFile << ": "
             << (head.ok() ? "no head saved" : head.status().message()) << "\n";
      return kExitUsage;
    }
    options.expectedHead = **head;
  }
  bool allOk = true;
  Json results = Json::array();
  for (const auto& file : *files) {
    VerifyResult r;
    if (file == "-") {
      r = verifyEvidence(io.in, options);
    } else {
      std::ifstream in(file);
      if (!in) {
        io.err << "kubectl tasklease evidence verify: cannot read " << file << "\n";
        return kExitUsage;
      }
      r = verifyEvidence(in, options);
    }
    allOk = allOk && r.ok();
    if (output == "json") {
      Json j = {{"file", file},
                {"ok", r.ok()},
                {"records", r.records},
                {"head", chainHeadToJson(r.head)},
                {"message", r.message}};
      if (!r.ok()) {
        j["problem"] = evidenceProblemName(r.problem);
        j["seq"] = r.seq;
        j["line"] = r.line;
      }
      results.push_back(std::move(j));
    } else if (r.ok()) {
      io.out << file << ": ok, " << r.records << " records, head seq " << r.head.seq << " hash "
             << r.head.hash << "\n";
    } else {
      io.out << file << ": " << evidenceProblemName(r.problem) << " at seq " << r.seq << ": "
             << r.message << "\n";
    }
  }
  if (output == "json") io.out << results.dump(2) << "\n";
  return allOk ? kExitOk : kExitFindings;
}

}  // namespace tasklease::cli
