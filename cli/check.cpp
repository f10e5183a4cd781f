#include "cli/check.h"

#include <iostream>

#include "common/flags.h"
#include "webhook/identity_exception.h"
#include "webhook/json_access.h"
#include "webhook/workload.h"

namespace tasklease::cli {
namespace {

using webhook::objectMember;
using webhook::stringMember;

std::string_view groupOf(std::string_view apiVersion) {
  size_t slash = apiVersion.find('/');
  return slash == std::string_view::npos ? std::string_view() : apiVersion.substr(0, slash);
}

bool isIdentityException(const Json& o) {
  return stringMember(o, "kind") == webhook::kIdentityExceptionKind &&
         groupOf(stringMember(o, "apiVersion")) == webhook::kTaskleaseGroup;
}

// The same group check as the webhook: a custom resource named "Deployment" is not one.
bool isWorkload(const Json& o) {
  std::string_view kind = stringMember(o, "kind");
  if (!webhook::isPodBearingKind(kind)) return false;
  std::string_view group = groupOf(stringMember(o, "apiVersion"));
  if (kind == "Pod" || kind == "ReplicationController") return group.empty();
  if (kind == "Job" || kind == "CronJob") return group == "batch";
  return group == "apps";
}

Json violationJson(const webhook::Violation& v) {
  const auto& info = webhook::ruleInfo(v.rule);
  return {{"rule", info.code}, {"name", info.name}, {"path", v.path}, {"message", v.message}};
}

ObjectReport reportFor(std::string source, std::string kind, std::string ns, std::string name) {
  ObjectReport r;
  r.source = std::move(source);
  r.kind = std::move(kind);
  r.ns = std::move(ns);
  r.name = std::move(name);
  return r;
}

}  // namespace

CheckReport checkManifests(const std::vector<webhook::Manifest>& manifests,
                           const CheckOptions& options) {
  CheckReport report;
  // What the files say about the cluster; anything else is unknown, not absent.
  webhook::ObjectSetClusterState state(webhook::LookupState::kUnknown);
  std::vector<ObjectReport> exceptionReports;
  for (const auto& m : manifests) {
    Json object = m.object;
    Json& meta = object["metadata"];
    if (!meta.is_object()) meta = Json::object();
    if (stringMember(meta, "namespace").empty() && stringMember(object, "kind") != "Namespace") {
      meta["namespace"] = options.defaultNamespace;
    }
    if (isIdentityException(object)) {
      ObjectReport r = reportFor(m.source, std::string(stringMember(object, "kind")),
                                 std::string(stringMember(meta, "namespace")),
                                 std::string(stringMember(meta, "name")));
      TimePoint created = options.now;
      if (auto c = parseRfc3339(stringMember(meta, "creationTimestamp")); c.ok()) created = *c;
      for (const auto& p : webhook::validateIdentityException(object, options.now, created)) {
        r.errors.push_back(p.field + ": " + p.message);
      }
      if (r.errors.empty()) state.add(object);
      exceptionReports.push_back(std::move(r));
      continue;
    }
    std::string_view kind = stringMember(object, "kind");
    if (kind == "Namespace" || kind == "ServiceAccount" || kind == "AgentTask") state.add(object);
  }
  size_t nextException = 0;
  for (const auto& m : manifests) {
    if (isIdentityException(m.object)) {
      report.objects.push_back(std::move(exceptionReports[nextException++]));
      continue;
    }
    if (!isWorkload(m.object)) {
      ++report.ignored;
      continue;
    }
    const Json& meta = objectMember(m.object, "metadata");
    std::string ns(stringMember(meta, "namespace"));
    if (ns.empty()) ns = options.defaultNamespace;
    ObjectReport r = reportFor(m.source, std::string(stringMember(m.object, "kind")), ns,
                               std::string(stringMember(meta, "name")));
    if (r.name.empty()) r.name = std::string(stringMember(meta, "generateName")) + "*";
    StatusOr<webhook::Workload> w = webhook::workloadOf(m.object, r.kind, ns);
    if (!w.ok()) {
      r.errors.push_back(w.status().message());
    } else {
      webhook::WorkloadEvaluation e =
          webhook::evaluateWorkload(*w, state, options.rules, options.now);
      r.violations = std::move(e.violations);
      r.excepted = std::move(e.excepted);
      r.notes = std::move(e.notes);
    }
    report.objects.push_back(std::move(r));
  }
  return report;
}

bool CheckReport::failed() const {
  for (const auto& o : objects) {
    if (o.failed()) return true;
  }
  return false;
}

Json CheckReport::toJson() const {
  Json objs = Json::array();
  size_t violations = 0, notes = 0, excepted = 0, errors = 0;
  for (const auto& o : objects) {
    Json j = {{"source", o.source},          {"kind", o.kind},
              {"namespace", o.ns},           {"name", o.name},
              {"violations", Json::array()}, {"excepted", Json::array()},
              {"notes", Json::array()},      {"errors", o.errors}};
    for (const auto& v : o.violations) j["violations"].push_back(violationJson(v));
    for (const auto& u : o.excepted) {
      Json x = violationJson(u.violation);
      x["exception"] = u.exception;
      x["approvedBy"] = u.approvedBy;
      x["expiresAt"] = u.expiresAt;
      j["excepted"].push_back(std::move(x));
    }
    for (const auto& n : o.notes) {
      j["notes"].push_back(
          {{"rule", webhook::ruleCode(n.rule)}, {"path", n.path}, {"message", n.message}});
    }
    violations += o.violations.size();
    notes += o.notes.size();
    excepted += o.excepted.size();
    errors += o.errors.size();
    objs.push_back(std::move(j));
  }
  return {{"objects", std::move(objs)},
          {"summary",
           {{"checked", objects.size()},
            {"ignored", ignored},
            {"violations", violations},
            {"excepted", excepted},
            {"notes", notes},
            {"errors", errors},
            {"passed", !failed()}}}};
}

std::string CheckReport::toText() const {
  std::string out;
  size_t violations = 0, failedObjects = 0, notes = 0;
  for (const auto& o : objects) {
    if (o.violations.empty() && o.excepted.empty() && o.notes.empty() && o.errors.empty()) continue;
    out += o.source + ": " + o.kind + " " + o.ns + "/" + o.name + "\n";
    for (const auto& e : o.errors) out += "  error: " + e + "\n";
    for (const auto& v : o.violations) {
      out += "  " + std::string(webhook::ruleCode(v.rule)) + " " + v.path + ": " + v.message + "\n";
    }
    for (const auto& u : o.excepted) {
      out += "  allowed by IdentityException \"" + u.exception + "\" (approved by " + u.approvedBy +
             ", expires " + u.expiresAt + "): " + std::string(webhook::ruleCode(u.violation.rule)) +
             " " + u.violation.path + "\n";
    }
    for (const auto& n : o.notes) {
      out += "  note: " + std::string(webhook::ruleCode(n.rule)) + " not evaluated: " + n.message +
             "\n";
    }
    violations += o.violations.size();
    notes += o.notes.size();
    if (o.failed()) ++failedObjects;
  }
  out += "checked " + std::to_string(objects.size()) + " object" + (objects.size() == 1 ? "" : "s");
  if (ignored > 0) out += " (" + std::to_string(ignored) + " of other kinds ignored)";
  out += ": " + std::to_string(violations) + " violation" + (violations == 1 ? "" : "s") + " in " +
         std::to_string(failedObjects) + " object" + (failedObjects == 1 ? "" : "s");
  if (notes > 0)
    out += ", " + std::to_string(notes) + " rule" + (notes == 1 ? "" : "s") + " not evaluated";
  return out + "\n";
}

int CheckCommand::run(const std::vector<std::string>& args, CliIo& io) {
  std::vector<std::string> files;
  std::string output = "text";
  std::string ns = "default";
  std::string now;
  std::chrono::nanoseconds maxToken = std::chrono::hours(1);
  bool help = false;
  FlagSet flags("kubectl tasklease check");
  flags.addStrings("filename", &files, "manifest file or directory, or - for stdin (repeatable)");
  flags.addShort('f', "filename");
  flags.addString("output", &output, "text or json");
  flags.addShort('o', "output");
  flags.addString("namespace", &ns, "namespace of objects that name none");
  flags.addShort('n', "namespace");
  flags.addDuration("max-token-expiration", &maxToken,
                    "TL007: longest projected ServiceAccount token lifetime allowed");
  flags.addString("now", &now, "check as of this RFC 3339 time (IdentityException expiry)");
  flags.addBool("help", &help, "print this help");
  flags.addShort('h', "help");
  auto rest = flags.parse(args);
  if (!rest.ok()) {
    io.err << rest.status().message() << "\n";
    return kExitUsage;
  }
  if (help) {
    io.out << "Usage: kubectl tasklease check -f FILE... [-o json]\n\n"
           << summary() << "; exits 1 "
           << "when any rule is violated.\n\n"
           << flags.usage();
    return kExitOk;
  }
  files.insert(files.end(), rest->begin(), rest->end());
  if (files.empty()) {
    io.err << "kubectl tasklease check: give manifests with -f FILE (a file, a directory, or - "
              "for stdin)\n";
    return kExitUsage;
  }
  if (output != "text" && output != "json") {
    io.err << "kubectl tasklease check: --output must be text or json, not \"" << output << "\"\n";
    return kExitUsage;
  }
  CheckOptions options;
  options.defaultNamespace = ns;
  options.rules.maxTokenExpirationSeconds =
      std::chrono::duration_cast<std::chrono::seconds>(maxToken).count();
  if (!now.empty()) {
    auto t = parseRfc3339(now);
    if (!t.ok()) {
      io.err << "kubectl tasklease check: --now: " << t.status().message() << "\n";
      return kExitUsage;
    }
    options.now = *t;
  }
  auto manifests = webhook::loadManifests(files, io.in);
  if (!manifests.ok()) {
    io.err << "kubectl tasklease check: " << manifests.status().message() << "\n";
    return kExitUsage;
  }
  CheckReport report = checkManifests(*manifests, options);
  if (output == "json") {
    io.out << report.toJson().dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
  } else {
    io.out << report.toText();
  }
  return report.failed() ? kExitFindings : kExitOk;
}

}  // namespace tasklease::cli
