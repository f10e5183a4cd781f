#pragma once
// Command-line flags in the style of kubectl and Kubernetes components: --name value,
// --name=value, boolean --name or --name=false, repeatable list flags, short aliases (-f), and
// "--" to end flags. Errors name the flag and say what it expects.
//
//   FlagSet flags("tasklease-webhook");
//   std::string cert;
//   int64_t port = 8443;
//   flags.addString("tls-cert-file", &cert, "PEM certificate chain to serve");
//   flags.addInt("port", &port, "HTTPS port");
//   StatusOr<std::vector<std::string>> rest = flags.parse(args);   // positional arguments

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace tasklease {

class FlagSet {
 public:
  explicit FlagSet(std::string program) : program_(std::move(program)) {}

  void addString(const std::string& name, std::string* target, std::string help);
  void addInt(const std::string& name, int64_t* target, std::string help);
  void addBool(const std::string& name, bool* target, std::string help);
  // Go duration syntax: "30s", "1h30m" (common/duration.h).
  void addDuration(const std::string& name, std::chrono::nanoseconds* target, std::string help);
  // Repeatable; each occurrence appends (the default is replaced by the first occurrence).
  void addStrings(const std::string& name, std::vector<std::string>* target, std::string help);
  // -c as another spelling of --name.
  void addShort(char c, const std::string& name);

  // The positional arguments, in order. "-" is positional (stdin, by convention).
  StatusOr<std::vector<std::string>> parse(const std::vector<std::string>& args);
  // Whether the flag was given on the command line (after parse()).
  bool wasSet(const std::string& name) const;
  // "Flags:" followed by one line per flag with its default.
  std::string usage() const;

 private:
  struct Flag {
    std::string help;
    std::string defaultText;
    bool isBool = false;
    std::function<Status(const std::string& value)> set;
  };
  void add(const std::string& name, Flag flag);

  std::string program_;
  std::map<std::string, Flag> flags_;
  std::map<char, std::string> shorts_;
  std::map<std::string, bool> set_;
};

}  // namespace tasklease
