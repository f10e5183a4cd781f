#include "common/flags.h"

#include <cerrno>
#include <cstdlib>

#include "common/duration.h"

namespace tasklease {
namespace {

Status badValue(const std::string& name, const std::string& value, const std::string& want) {
  return invalidArgument("flag --" + name + ": \"" + value + "\" is not " + want);
}

}  // namespace

void FlagSet::add(const std::string& name, Flag flag) {
  flags_[name] = std::move(flag);
}

void FlagSet::addString(const std::string& name, std::string* target, std::string help) {
  add(name, {std::move(help), *target, false, [target](const std::string& v) {
               *target = v;
               return Status();
             }});
}

void FlagSet::addInt(const std::string& name, int64_t* target, std::string help) {
  add(name, {std::move(help), std::to_string(*target), false, [target, name](const std::string& v) {
               char* end = nullptr;
               errno = 0;
               long long n = std::strtoll(v.c_str(), &end, 10);
               if (v.empty() || *end != '\0' || errno == ERANGE) {
                 return badValue(name, v, "an integer");
               }
               *target = n;
               return Status();
             }});
}

void FlagSet::addBool(const std::string& name, bool* target, std::string help) {
  add(name,
      {std::move(help), *target ? "true" : "false", true, [target, name](const std::string& v) {
         if (v == "true" || v == "1") {
           *target = true;
         } else if (v == "false" || v == "0") {
           *target = false;
         } else {
           return badValue(name, v, "true or false");
         }
         return Status();
       }});
}

void FlagSet::addDuration(const std::string& name, std::chrono::nanoseconds* target,
                          std::string help) {
  add(name,
      {std::move(help), formatDuration(std::chrono::duration_cast<std::chrono::seconds>(*target)),
       false, [target, name](const std::string& v) {
         StatusOr<std::chrono::nanoseconds> d = parseDuration(v);
         if (!d.ok()) return badValue(name, v, "a duration such as 30s or 1h");
         *target = *d;
         return Status();
       }});
}

void FlagSet::addStrings(const std::string& name, std::vector<std::string>* target,
                         std::string help) {
  std::string defaults;
  for (const auto& v : *target) defaults += (defaults.empty() ? "" : ",") + v;
  add(name, {std::move(help), defaults, false, [this, target, name](const std::string& v) {
               if (!set_[name]) target->clear();
               target->push_back(v);
               return Status();
             }});
}

void FlagSet::addShort(char c, const std::string& name) {
  shorts_[c] = name;
}

StatusOr<std::vector<std::string>> FlagSet::parse(const std::vector<std::string>& args) {
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") {
      positional.insert(positional.end(), args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    }
    if (a.size() < 2 || a[0] != '-') {
      positional.push_back(a);
      continue;
    }
    std::string name;
    std::string value;
    bool hasValue = false;
    if (a[1] == '-') {
      name = a.substr(2);
      size_t eq = name.find('=');
      if (eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        hasValue = true;
      }
    } else {
      auto s = shorts_.find(a[1]);
      if (s == shorts_.end()) {
        return invalidArgument(program_ + ": unknown flag " + a + "\n" + usage());
      }
      name = s->second;
      if (a.size() > 2) {
        value = a.substr(a[2] == '=' ? 3 : 2);
        hasValue = true;
      }
    }
    auto f = flags_.find(name);
    if (f == flags_.end()) {
      return invalidArgument(program_ + ": unknown flag --" + name + "\n" + usage());
    }
    if (!hasValue) {
      if (f->second.isBool) {
        value = "true";
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return invalidArgument(program_ + ": flag --" + name + " needs a value");
      }
    }
    Status s = f->second.set(value);
    if (!s.ok()) return s;
    set_[name] = true;
  }
  return positional;
}

bool FlagSet::wasSet(const std::string& name) const {
  auto it = set_.find(name);
  return it != set_.end() && it->second;
}

std::string FlagSet::usage() const {
  std::string out = "Flags:\n";
  for (const auto& [name, f] : flags_) {
    std::string shortName;
    for (const auto& [c, n] : shorts_) {
      if (n == name) shortName = std::string("-") + c + ", ";
    }
    out.append("  ").append(shortName).append("--").append(name).append("  ").append(f.help);
    if (!f.defaultText.empty()) out += " (default " + f.defaultText + ")";
    out += "\n";
  }
  return out;
}

}  // namespace tasklease
