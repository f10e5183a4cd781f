#pragma once
// `kubectl tasklease check -f FILE...`: the webhook's rules, offline, over manifests. Workloads
// are checked in enforce mode whatever their namespace says. The cluster-state rules (TL003's
// task credential, TL006, TL008) use the ServiceAccounts, AgentTasks and IdentityExceptions
// found in the same files; when the object they need is not there, the rule is skipped with a
// note instead of guessing. IdentityExceptions in the files are validated like the webhook
// does, and the valid ones apply.
//
//   CheckReport r = checkManifests(manifests, CheckOptions{});
//   out << (json ? r.toJson().dump(2) : r.toText());
//   return r.failed() ? 1 : 0;

#include <string>
#include <vector>

#include "cli/command.h"
#include "common/json.h"
#include "common/rfc3339.h"
#include "webhook/manifests.h"
#include "webhook/policy.h"

namespace tasklease::cli {

struct CheckOptions {
  std::string defaultNamespace = "default";  // for objects without metadata.namespace
  webhook::RuleConfig rules;
  TimePoint now = std::chrono::system_clock::now();
};

struct ObjectReport {
  std::string source;
  std::string kind;
  std::string ns;
  std::string name;
  std::vector<webhook::Violation> violations;
  std::vector<webhook::ExceptionUse> excepted;
  std::vector<webhook::Note> notes;
  std::vector<std::string> errors;  // unreadable object, invalid IdentityException

  bool failed() const { return !violations.empty() || !errors.empty(); }
};

struct CheckReport {
  std::vector<ObjectReport> objects;  // every object checked, clean ones included
  size_t ignored = 0;                 // objects of kinds the rules do not apply to

  bool failed() const;
  Json toJson() const;
  std::string toText() const;
};

CheckReport checkManifests(const std::vector<webhook::Manifest>& manifests,
                           const CheckOptions& options);

class CheckCommand : public Command {
 public:
  std::string name() const override { return "check"; }
  std::string summary() const override {
    return "check manifests against the webhook's rules, offline";
  }
  int run(const std::vector<std::string>& args, CliIo& io) override;
};

}  // namespace tasklease::cli
