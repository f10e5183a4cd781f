#include "operator/pod_security.h"

#include <algorithm>
#include <initializer_list>

namespace tasklease::op {
namespace {

constexpr const char* kContainerLists[] = {"containers", "initContainers", "ephemeralContainers"};

const std::vector<std::string> kBaselineCapabilities = {
    "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",      "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT"};
const std::vector<std::string> kRestrictedCapabilities = {"NET_BIND_SERVICE"};

const std::vector<std::string> kSafeSysctls = {"kernel.shm_rmid_forced",
                                               "net.ipv4.ip_local_port_range",
                                               "net.ipv4.ip_unprivileged_port_start",
                                               "net.ipv4.tcp_syncookies",
                                               "net.ipv4.ping_group_range",
                                               "net.ipv4.ip_local_reserved_ports",
                                               "net.ipv4.tcp_keepalive_time",
                                               "net.ipv4.tcp_fin_timeout",
                                               "net.ipv4.tcp_keepalive_intvl",
                                               "net.ipv4.tcp_keepalive_probes"};

const std::vector<std::string> kSeLinuxTypes = {"", "container_t", "container_init_t",
                                                "container_kvm_t", "container_engine_t"};

const std::vector<std::string> kRestrictedVolumeTypes = {
    "configMap", "csi",   "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret"};

constexpr char kAppArmorAnnotationPrefix[] = "container.apparmor.security.beta.kubernetes.io/";

bool contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out.empty() ? "none" : out;
}

// The member at `path`, or null when a step is missing or null.
const Json* at(const Json& object, std::initializer_list<const char*> path) {
  const Json* cur = &object;
  for (const char* step : path) {
    if (!cur->is_object()) return nullptr;
    const auto it = cur->find(step);
    if (it == cur->end() || it->is_null()) return nullptr;
    cur = &*it;
  }
  return cur;
}

bool isString(const Json* v, std::string_view s) {
  return v != nullptr && v->is_string() && v->get<std::string>() == s;
}

// One container of the template, with its path.
struct Container {
  const Json& object;
  std::string path;  // "<prefix>.spec.containers[0]"
};

class Checker {
 public:
  Checker(const Json& podTemplate, const WorkloadBound& bound, const std::string& prefix)
      : meta_(objectOr(at(podTemplate, {"metadata"}))),
        spec_(objectOr(at(podTemplate, {"spec"}))),
        bound_(bound),
        specPath_(prefix + ".spec"),
        metaPath_(prefix + ".metadata") {
    for (const char* list : kContainerLists) {
      const Json* items = at(spec_, {list});
      if (items == nullptr || !items->is_array()) continue;
      for (size_t i = 0; i < items->size(); ++i) {
        containers_.push_back(
            {(*items)[i], specPath_ + "." + list + "[" + std::to_string(i) + "]"});
      }
    }
    // The standard relaxes these three Restricted controls for Windows pods only.
    windows_ = isString(at(spec_, {"os", "name"}), "windows");
  }

  std::vector<WorkloadViolation> run() {
    baseline();
    if (bound_.level == PodSecurityLevel::kRestricted) restricted();
    return std::move(out_);
  }

 private:
  static const Json& objectOr(const Json* v) {
    static const Json kEmpty = Json::object();
    return v != nullptr && v->is_object() ? *v : kEmpty;
  }

  void add(const std::string& path, const std::string& problem, const char* level,
           const char* control) {
    out_.push_back({path, problem, std::string(level) + ": " + control});
  }

  // A field whose only allowed values are unset and false.
  void unsetOrFalse(const Json& object, const std::string& path,
                    std::initializer_list<const char*> field, const char* control) {
    const Json* v = at(object, field);
    if (v == nullptr || (v->is_boolean() && !v->get<bool>())) return;
    std::string where = path;
    for (const char* f : field) where.append(".").append(f);
    add(where, v->dump() + "; allowed: unset or false", "baseline", control);
  }

  // The pod's security context and every container's, with their paths.
  template <typename F>
  void eachSecurityContext(F&& f) {
    f(at(spec_, {"securityContext"}), specPath_ + ".securityContext");
    for (const Container& c : containers_)
      f(at(c.object, {"securityContext"}), c.path + ".securityContext");
  }

  void baseline() {
    // HostProcess
    unsetOrFalse(spec_, specPath_, {"securityContext", "windowsOptions", "hostProcess"},
                 "HostProcess");
    for (const Container& c : containers_) {
      unsetOrFalse(c.object, c.path, {"securityContext", "windowsOptions", "hostProcess"},
                   "HostProcess");
    }
    // Host Namespaces
    for (const char* field : {"hostNetwork", "hostPID", "hostIPC"}) {
      unsetOrFalse(spec_, specPath_, {field}, "Host Namespaces");
    }
    // Privileged Containers
    for (const Container& c : containers_) {
      unsetOrFalse(c.object, c.path, {"securityContext", "privileged"}, "Privileged Containers");
    }
    capabilitiesAdded();
    // HostPath Volumes
    const Json* volumes = at(spec_, {"volumes"});
    if (volumes != nullptr && volumes->is_array()) {
      for (size_t i = 0; i < volumes->size(); ++i) {
        if (at((*volumes)[i], {"hostPath"}) != nullptr) {
          add(specPath_ + ".volumes[" + std::to_string(i) + "].hostPath",
              "a hostPath volume; allowed: none", "baseline", "HostPath Volumes");
        }
      }
    }
    // Host Ports
    for (const Container& c : containers_) {
      const Json* ports = at(c.object, {"ports"});
      if (ports == nullptr || !ports->is_array()) continue;
      for (size_t i = 0; i < ports->size(); ++i) {
        const Json* hostPort = at((*ports)[i], {"hostPort"});
        if (hostPort == nullptr || (hostPort->is_number_integer() && hostPort->get<int64_t>() == 0))
          continue;
        add(c.path + ".ports[" + std::to_string(i) + "].hostPort",
            hostPort->dump() + "; allowed: unset or 0", "baseline", "Host Ports");
      }
    }
    hostProbes();
    appArmor();
    seLinux();
    // /proc Mount Type
    for (const Container& c : containers_) {
      const Json* procMount = at(c.object, {"securityContext", "procMount"});
      if (procMount == nullptr || isString(procMount, "Default")) continue;
      add(c.path + ".securityContext.procMount",
          procMount->dump() + "; allowed: unset or \"Default\"", "baseline", "/proc Mount Type");
    }
    // Seccomp: never Unconfined (Restricted also requires one to be set, below).
    profileTypes("seccompProfile", "Seccomp");
    // Sysctls
    const Json* sysctls = at(spec_, {"securityContext", "sysctls"});
    if (sysctls != nullptr && sysctls->is_array()) {
      for (size_t i = 0; i < sysctls->size(); ++i) {
        const Json* name = at((*sysctls)[i], {"name"});
        if (name != nullptr && name->is_string() &&
            contains(kSafeSysctls, name->get<std::string>()))
          continue;
        add(specPath_ + ".securityContext.sysctls[" + std::to_string(i) + "].name",
            (name != nullptr ? name->dump() : std::string("unset")) +
                "; allowed: the safe sysctls (" + joined(kSafeSysctls) + ")",
            "baseline", "Sysctls");
      }
    }
  }

  void capabilitiesAdded() {
    const bool restricted = bound_.level == PodSecurityLevel::kRestricted && !windows_;
    const std::vector<std::string>& levelAllows =
        restricted ? kRestrictedCapabilities : kBaselineCapabilities;
    const char* level = restricted ? "restricted" : "baseline";
    for (const Container& c : containers_) {
      const Json* added = at(c.object, {"securityContext", "capabilities", "add"});
      if (added == nullptr || !added->is_array()) continue;
      for (size_t i = 0; i < added->size(); ++i) {
        const Json& cap = (*added)[i];
        const std::string path =
            c.path + ".securityContext.capabilities.add[" + std::to_string(i) + "]";
        const std::string name = cap.is_string() ? cap.get<std::string>() : std::string();
        if (!contains(levelAllows, name)) {
          add(path, cap.dump() + "; allowed: " + joined(levelAllows), level, "Capabilities");
        } else if (!contains(bound_.allowedCapabilities, name)) {
          add(path,
              cap.dump() + " is not in the policy's allow.workload.allowedCapabilities (" +
                  joined(bound_.allowedCapabilities) + ")",
              "policy", "allowedCapabilities");
        }
      }
    }
  }

  void hostProbes() {
    for (const Container& c : containers_) {
      for (const char* probe : {"livenessProbe", "readinessProbe", "startupProbe"}) {
        for (const char* handler : {"httpGet", "tcpSocket"}) {
          hostField(c, {probe, handler, "host"});
        }
      }
      for (const char* hook : {"postStart", "preStop"}) {
        for (const char* handler : {"httpGet", "tcpSocket"}) {
          hostField(c, {"lifecycle", hook, handler, "host"});
        }
      }
    }
  }

  // `<profile>.type` of the pod's and every container's security context: unset, RuntimeDefault
  // or Localhost (seccomp and AppArmor alike).
  void profileTypes(const char* profile, const char* control) {
    eachSecurityContext([&](const Json* sc, const std::string& path) {
      const Json* type = sc != nullptr ? at(*sc, {profile, "type"}) : nullptr;
      if (type == nullptr || isString(type, "RuntimeDefault") || isString(type, "Localhost")) {
        return;
      }
      add(path + "." + profile + ".type",
          type->dump() + "; allowed: unset, \"RuntimeDefault\" or \"Localhost\"", "baseline",
          control);
    });
  }

  void hostField(const Container& c, std::initializer_list<const char*> field) {
    const Json* host = at(c.object, field);
    if (host == nullptr || isString(host, "")) return;
    std::string path = c.path;
    for (const char* f : field) path.append(".").append(f);
    add(path, host->dump() + "; allowed: unset or \"\"", "baseline",
        "Host Probes / Lifecycle Hooks");
  }

  void appArmor() {
    profileTypes("appArmorProfile", "AppArmor");
    const Json* annotations = at(meta_, {"annotations"});
    if (annotations == nullptr || !annotations->is_object()) return;
    for (const auto& [key, value] : annotations->items()) {
      if (key.rfind(kAppArmorAnnotationPrefix, 0) != 0) continue;
      const std::string profile = value.is_string() ? value.get<std::string>() : value.dump();
      if (profile == "runtime/default" || profile.rfind("localhost/", 0) == 0) continue;
      add(metaPath_ + ".annotations[" + key + "]",
          value.dump() + "; allowed: unset, \"runtime/default\" or \"localhost/*\"", "baseline",
          "AppArmor");
    }
  }

  void seLinux() {
    eachSecurityContext([&](const Json* sc, const std::string& path) {
      const Json* options = sc != nullptr ? at(*sc, {"seLinuxOptions"}) : nullptr;
      if (options == nullptr) return;
      const Json* type = at(*options, {"type"});
      if (type != nullptr &&
          !(type->is_string() && contains(kSeLinuxTypes, type->get<std::string>()))) {
        add(path + ".seLinuxOptions.type",
            type->dump() + "; allowed: unset, \"\", " +
                joined({kSeLinuxTypes.begin() + 1, kSeLinuxTypes.end()}),
            "baseline", "SELinux");
      }
      for (const char* field : {"user", "role"}) {
        const Json* v = at(*options, {field});
        if (v == nullptr || isString(v, "")) continue;
        add(path + ".seLinuxOptions." + field, v->dump() + "; allowed: unset or \"\"", "baseline",
            "SELinux");
      }
    });
  }

  void restricted() {
    // Volume Types (hostPath is Baseline's, reported above)
    const Json* volumes = at(spec_, {"volumes"});
    if (volumes != nullptr && volumes->is_array()) {
      for (size_t i = 0; i < volumes->size(); ++i) {
        if (!(*volumes)[i].is_object()) continue;
        for (const auto& [key, source] : (*volumes)[i].items()) {
          if (key == "name" || key == "hostPath" || source.is_null() ||
              contains(kRestrictedVolumeTypes, key)) {
            continue;
          }
          add(specPath_ + ".volumes[" + std::to_string(i) + "]." + key,
              "a " + key + " volume; allowed: " + joined(kRestrictedVolumeTypes), "restricted",
              "Volume Types");
        }
      }
    }
    // Privilege Escalation (Linux only)
    if (!windows_) {
      for (const Container& c : containers_) {
        const Json* ape = at(c.object, {"securityContext", "allowPrivilegeEscalation"});
        if (ape != nullptr && ape->is_boolean() && !ape->get<bool>()) continue;
        add(c.path + ".securityContext.allowPrivilegeEscalation",
            (ape != nullptr ? ape->dump() : std::string("unset")) + "; must be false", "restricted",
            "Privilege Escalation");
      }
    }
    // Running as Non-root: the pod's true covers containers that say nothing.
    const Json* podNonRoot = at(spec_, {"securityContext", "runAsNonRoot"});
    const bool podSaysNonRoot = podNonRoot != nullptr && *podNonRoot == true;
    if (podNonRoot != nullptr && !podSaysNonRoot) {
      add(specPath_ + ".securityContext.runAsNonRoot", podNonRoot->dump() + "; must be true",
          "restricted", "Running as Non-root");
    }
    for (const Container& c : containers_) {
      const Json* nonRoot = at(c.object, {"securityContext", "runAsNonRoot"});
      if (nonRoot != nullptr ? *nonRoot == true : podSaysNonRoot) continue;
      add(c.path + ".securityContext.runAsNonRoot",
          nonRoot != nullptr ? nonRoot->dump() + "; must be true"
                             : "unset, and so is the pod's " + specPath_ +
                                   ".securityContext.runAsNonRoot; set either to true",
          "restricted", "Running as Non-root");
    }
    // Running as Non-root user
    eachSecurityContext([&](const Json* sc, const std::string& path) {
      const Json* user = sc != nullptr ? at(*sc, {"runAsUser"}) : nullptr;
      if (user == nullptr || !(user->is_number() && *user == 0)) return;
      add(path + ".runAsUser", "0; allowed: unset or a non-zero user", "restricted",
          "Running as Non-root user");
    });
    if (windows_) return;
    // Seccomp: set, at the pod or on every container (bad values are Baseline's, above).
    const Json* podSeccomp = at(spec_, {"securityContext", "seccompProfile", "type"});
    const bool podSeccompSet = podSeccomp != nullptr && (isString(podSeccomp, "RuntimeDefault") ||
                                                         isString(podSeccomp, "Localhost"));
    for (const Container& c : containers_) {
      if (podSeccompSet || at(c.object, {"securityContext", "seccompProfile", "type"}) != nullptr)
        continue;
      add(c.path + ".securityContext.seccompProfile.type",
          "unset, and the pod's " + specPath_ +
              ".securityContext.seccompProfile.type is not RuntimeDefault or Localhost either; "
              "set one to RuntimeDefault or Localhost",
          "restricted", "Seccomp");
    }
    // Capabilities: drop ALL (what may be added back is checked above)
    for (const Container& c : containers_) {
      const Json* drop = at(c.object, {"securityContext", "capabilities", "drop"});
      const bool dropsAll =
          drop != nullptr && drop->is_array() &&
          std::any_of(drop->begin(), drop->end(), [](const Json& d) { return d == "ALL"; });
      if (dropsAll) continue;
      add(c.path + ".securityContext.capabilities.drop",
          (drop != nullptr ? drop->dump() : std::string("unset")) + "; must include \"ALL\"",
          "restricted", "Capabilities");
    }
  }

  const Json& meta_;
  const Json& spec_;
  const WorkloadBound& bound_;
  const std::string specPath_;
  const std::string metaPath_;
  std::vector<Container> containers_;
  bool windows_ = false;
  std::vector<WorkloadViolation> out_;
};

}  // namespace

const char* podSecurityLevelName(PodSecurityLevel level) {
  return level == PodSecurityLevel::kBaseline ? "baseline" : "restricted";
}

std::optional<PodSecurityLevel> parsePodSecurityLevel(std::string_view name) {
  if (name == "baseline") return PodSecurityLevel::kBaseline;
  if (name == "restricted") return PodSecurityLevel::kRestricted;
  return std::nullopt;
}

const std::vector<std::string>& addableCapabilities(PodSecurityLevel level) {
  return level == PodSecurityLevel::kBaseline ? kBaselineCapabilities : kRestrictedCapabilities;
}

std::vector<WorkloadViolation> checkWorkload(const Json& podTemplate, const WorkloadBound& bound,
                                             const std::string& prefix) {
  return Checker(podTemplate, bound, prefix).run();
}

}  // namespace tasklease::op
