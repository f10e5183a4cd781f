// Kubeconfig loading: parse each file with yaml-cpp, merge the named clusters, users and
// contexts (first definition wins, as kubectl does), then resolve one context.

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <map>

#include "common/base64.h"
#include "common/file.h"
#include "kube/config.h"
#include "kube/internal/io.h"

namespace tasklease::kube {
namespace {

// Where a value came from, to name it in errors: file, field path and line.
struct Origin {
  std::string file;
  std::string field;
  int line = 0;

  Status error(const std::string& problem) const {
    std::string where = "kubeconfig " + file;
    if (line > 0) where += " line " + std::to_string(line);
    return invalidArgument(where + ": " + field + ": " + problem);
  }
  Origin child(const std::string& name, const YAML::Node& node) const {
    const int at = node.IsDefined() && node.Mark().line >= 0 ? node.Mark().line + 1 : line;
    return {file, field.empty() ? name : field + "." + name, at};
  }
};

struct Cluster {
  Origin origin;
  std::string baseDir;
  std::string server;
  std::string caFile;
  std::string caData;
  bool insecure = false;
  std::string tlsServerName;
  std::string proxyUrl;
};

struct User {
  Origin origin;
  std::string baseDir;
  std::string certFile, certData, keyFile, keyData;
  std::string token, tokenFile;
  std::optional<ExecConfig> exec;
};

struct Context {
  Origin origin;
  std::string cluster, user, ns;
};

struct Merged {
  std::map<std::string, Cluster> clusters;
  std::map<std::string, User> users;
  std::map<std::string, Context> contexts;
  std::string currentContext;
  std::vector<std::string> files;
};

// Reads an optional string field; absent or null gives "".
Status getString(const YAML::Node& parent, const char* key, const Origin& o, std::string& out) {
  const YAML::Node n = parent[key];
  if (!n.IsDefined() || n.IsNull()) return {};
  if (!n.IsScalar()) return o.child(key, n).error("must be a string");
  out = n.Scalar();
  return {};
}

Status getBool(const YAML::Node& parent, const char* key, const Origin& o, bool& out) {
  const YAML::Node n = parent[key];
  if (!n.IsDefined() || n.IsNull()) return {};
  bool v = false;
  if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
    return o.child(key, n).error("must be true or false");
  }
  out = v;
  return {};
}

Status getBase64(const YAML::Node& parent, const char* key, const Origin& o, std::string& out) {
  std::string encoded;
  if (Status s = getString(parent, key, o, encoded); !s.ok()) return s;
  if (encoded.empty()) return {};
  auto decoded = base64Decode(encoded);
  if (!decoded) {
    return o.child(key, parent[key]).error("is not valid base64 (standard alphabet, padded)");
  }
  out = std::move(*decoded);
  return {};
}

Status parseExec(const YAML::Node& n, const Origin& o, const std::string& baseDir,
                 ExecConfig& exec) {
  if (!n.IsMap()) return o.error("must be a map");
  if (Status s = getString(n, "command", o, exec.command); !s.ok()) return s;
  if (exec.command.empty()) return o.child("command", n["command"]).error("required");
  if (exec.command.find('/') != std::string::npos) {
    exec.command = internal::resolvePath(exec.command, baseDir);
  }
  if (Status s = getString(n, "apiVersion", o, exec.apiVersion); !s.ok()) return s;
  if (exec.apiVersion != "client.authentication.k8s.io/v1" &&
      exec.apiVersion != "client.authentication.k8s.io/v1beta1") {
    return o.child("apiVersion", n["apiVersion"])
        .error("\"" + exec.apiVersion +
               "\" is not supported; use client.authentication.k8s.io/v1 (or v1beta1)");
  }
  if (const YAML::Node args = n["args"]; args.IsDefined() && !args.IsNull()) {
    if (!args.IsSequence()) return o.child("args", args).error("must be a list of strings");
    for (const auto& a : args) {
      if (!a.IsScalar()) return o.child("args", a).error("must be a list of strings");
      exec.args.push_back(a.Scalar());
    }
  }
  if (const YAML::Node env = n["env"]; env.IsDefined() && !env.IsNull()) {
    if (!env.IsSequence()) return o.child("env", env).error("must be a list of {name, value}");
    for (size_t i = 0; i < env.size(); ++i) {
      const Origin eo = o.child("env[" + std::to_string(i) + "]", env[i]);
      if (!env[i].IsMap()) return eo.error("must be a map with name and value");
      std::string name, value;
      if (Status s = getString(env[i], "name", eo, name); !s.ok()) return s;
      if (Status s = getString(env[i], "value", eo, value); !s.ok()) return s;
      if (name.empty()) return eo.child("name", env[i]["name"]).error("required");
      exec.env.emplace_back(name, value);
    }
  }
  if (Status s = getString(n, "installHint", o, exec.installHint); !s.ok()) return s;
  if (Status s = getBool(n, "provideClusterInfo", o, exec.provideClusterInfo); !s.ok()) return s;
  if (Status s = getString(n, "interactiveMode", o, exec.interactiveMode); !s.ok()) return s;
  if (exec.interactiveMode.empty()) {
    if (exec.apiVersion == "client.authentication.k8s.io/v1") {
      return o.child("interactiveMode", n["interactiveMode"])
          .error("required for client.authentication.k8s.io/v1; use Never or IfAvailable");
    }
    exec.interactiveMode = "IfAvailable";
  }
  if (exec.interactiveMode != "Never" && exec.interactiveMode != "IfAvailable" &&
      exec.interactiveMode != "Always") {
    return o.child("interactiveMode", n["interactiveMode"])
        .error("\"" + exec.interactiveMode + "\" is not one of Never, IfAvailable, Always");
  }
  return {};
}

// Walks `key` (a list of {name, <inner>: map}) and calls fn(name, innerNode, origin).
template <typename Fn>
Status forEachNamed(const YAML::Node& root, const char* key, const char* inner,
                    const std::string& file, Fn&& fn) {
  const YAML::Node list = root[key];
  if (!list.IsDefined() || list.IsNull()) return {};
  const Origin lo{file, key, list.Mark().line + 1};
  if (!list.IsSequence()) return lo.error("must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node entry = list[i];
    Origin eo{file, std::string(key) + "[" + std::to_string(i) + "]", entry.Mark().line + 1};
    if (!entry.IsMap()) return eo.error("must be a map with name and " + std::string(inner));
    std::string name;
    if (Status s = getString(entry, "name", eo, name); !s.ok()) return s;
    if (name.empty()) return eo.child("name", entry["name"]).error("required");
    eo.field += " (\"" + name + "\")";
    const YAML::Node body = entry[inner];
    if (!body.IsDefined() || body.IsNull()) return eo.child(inner, body).error("required");
    const Origin bo = eo.child(inner, body);
    if (!body.IsMap()) return bo.error("must be a map");
    if (Status s = fn(name, body, bo); !s.ok()) return s;
  }
  return {};
}

Status mergeFile(std::string_view yaml, const std::string& file, Merged& merged) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return invalidArgument("kubeconfig " + file + " line " + std::to_string(e.mark.line + 1) +
                           ": not valid YAML: " + e.msg);
  }
  merged.files.push_back(file);
  if (root.IsNull()) return {};  // an empty file contributes nothing, as with kubectl
  if (!root.IsMap()) return invalidArgument("kubeconfig " + file + ": must be a YAML map");
  const std::string baseDir = internal::dirName(file);
  const Origin top{file, "", 0};
  try {
    Status s =
        forEachNamed(root, "clusters", "cluster", file,
                     [&](const std::string& name, const YAML::Node& n, const Origin& o) {
                       if (merged.clusters.count(name) != 0) return Status();
                       Cluster c{o, baseDir, {}, {}, {}, false, {}, {}};
                       Status st;
                       if (!(st = getString(n, "server", o, c.server)).ok() ||
                           !(st = getString(n, "certificate-authority", o, c.caFile)).ok() ||
                           !(st = getBase64(n, "certificate-authority-data", o, c.caData)).ok() ||
                           !(st = getBool(n, "insecure-skip-tls-verify", o, c.insecure)).ok() ||
                           !(st = getString(n, "tls-server-name", o, c.tlsServerName)).ok() ||
                           !(st = getString(n, "proxy-url", o, c.proxyUrl)).ok()) {
                         return st;
                       }
                       merged.clusters.emplace(name, std::move(c));
                       return Status();
                     });
    if (!s.ok()) return s;
    s = forEachNamed(
        root, "users", "user", file,
        [&](const std::string& name, const YAML::Node& n, const Origin& o) {
          if (merged.users.count(name) != 0) return Status();
          User u{o, baseDir, {}, {}, {}, {}, {}, {}, std::nullopt};
          Status st;
          if (!(st = getString(n, "client-certificate", o, u.certFile)).ok() ||
              !(st = getBase64(n, "client-certificate-data", o, u.certData)).ok() ||
              !(st = getString(n, "client-key", o, u.keyFile)).ok() ||
              !(st = getBase64(n, "client-key-data", o, u.keyData)).ok() ||
              !(st = getString(n, "token", o, u.token)).ok() ||
              !(st = getString(n, "tokenFile", o, u.tokenFile)).ok()) {
            return st;
          }
          for (const char* unsupported : {"auth-provider", "username", "password", "as", "as-uid",
                                          "as-groups", "as-user-extra"}) {
            if (n[unsupported].IsDefined() && !n[unsupported].IsNull()) {
              return o.child(unsupported, n[unsupported])
                  .error(
                      "is not supported by tasklease; use a token, a client certificate or an "
                      "exec plugin");
            }
          }
          if (const YAML::Node e = n["exec"]; e.IsDefined() && !e.IsNull()) {
            ExecConfig exec;
            if (!(st = parseExec(e, o.child("exec", e), baseDir, exec)).ok()) return st;
            u.exec = std::move(exec);
          }
          merged.users.emplace(name, std::move(u));
          return Status();
        });
    if (!s.ok()) return s;
    s = forEachNamed(root, "contexts", "context", file,
                     [&](const std::string& name, const YAML::Node& n, const Origin& o) {
                       if (merged.contexts.count(name) != 0) return Status();
                       Context c{o, {}, {}, {}};
                       Status st;
                       if (!(st = getString(n, "cluster", o, c.cluster)).ok() ||
                           !(st = getString(n, "user", o, c.user)).ok() ||
                           !(st = getString(n, "namespace", o, c.ns)).ok()) {
                         return st;
                       }
                       merged.contexts.emplace(name, std::move(c));
                       return Status();
                     });
    if (!s.ok()) return s;
    if (merged.currentContext.empty()) {
      if (Status cs = getString(root, "current-context", top, merged.currentContext); !cs.ok()) {
        return cs;
      }
    }
  } catch (const YAML::Exception& e) {
    return invalidArgument("kubeconfig " + file + " line " + std::to_string(e.mark.line + 1) +
                           ": " + e.msg);
  }
  return {};
}

// Inline data wins over a file, as in client-go.
Status loadPem(const std::string& data, const std::string& file, const Origin& o,
               const std::string& baseDir, const char* fileField, std::string& out) {
  if (!data.empty()) {
    out = data;
    return {};
  }
  if (file.empty()) return {};
  auto content = readFile(internal::resolvePath(file, baseDir), fileField);
  if (!content.ok()) return o.error(content.status().message());
  out = std::move(*content);
  return {};
}

StatusOr<RestConfig> resolve(const Merged& merged, const std::string& contextOverride) {
  std::string files;
  for (const auto& f : merged.files) files += (files.empty() ? "" : ":") + f;
  const std::string contextName = contextOverride.empty() ? merged.currentContext : contextOverride;
  if (contextName.empty()) {
    return invalidArgument("kubeconfig " + files +
                           ": current-context is not set; choose one with --context or "
                           "`kubectl config use-context NAME`");
  }
  const auto ctxIt = merged.contexts.find(contextName);
  if (ctxIt == merged.contexts.end()) {
    std::string known;
    for (const auto& [name, ctx] : merged.contexts) known += (known.empty() ? "" : ", ") + name;
    return invalidArgument("kubeconfig " + files + ": context \"" + contextName +
                           "\" not found (known contexts: " + (known.empty() ? "none" : known) +
                           ")");
  }
  const Context& ctx = ctxIt->second;
  const auto clusterIt = merged.clusters.find(ctx.cluster);
  if (ctx.cluster.empty()) return ctx.origin.child("cluster", YAML::Node()).error("required");
  if (clusterIt == merged.clusters.end()) {
    return ctx.origin.child("cluster", YAML::Node())
        .error("cluster \"" + ctx.cluster + "\" is not defined in clusters");
  }
  const Cluster& cluster = clusterIt->second;

  RestConfig cfg;
  cfg.source = "kubeconfig " + files + ", context " + contextName;
  cfg.server = cluster.server;
  if (cfg.server.empty()) return cluster.origin.child("server", YAML::Node()).error("required");
  if (cfg.server.rfind("https://", 0) != 0 && cfg.server.rfind("http://", 0) != 0) {
    return cluster.origin.child("server", YAML::Node())
        .error("\"" + cfg.server + "\" must be a URL starting with https://");
  }
  while (cfg.server.size() > 8 && cfg.server.back() == '/') cfg.server.pop_back();
  if (Status s = loadPem(cluster.caData, cluster.caFile, cluster.origin, cluster.baseDir,
                         "certificate-authority", cfg.caPem);
      !s.ok()) {
    return s;
  }
  cfg.insecureSkipTlsVerify = cluster.insecure;
  if (cfg.insecureSkipTlsVerify && !cfg.caPem.empty()) {
    return cluster.origin.child("insecure-skip-tls-verify", YAML::Node())
        .error("cannot be combined with a certificate authority; remove one of them");
  }
  cfg.tlsServerName = cluster.tlsServerName;
  cfg.proxyUrl = cluster.proxyUrl;
  cfg.ns = ctx.ns.empty() ? "default" : ctx.ns;

  if (!ctx.user.empty()) {
    const auto userIt = merged.users.find(ctx.user);
    if (userIt == merged.users.end()) {
      return ctx.origin.child("user", YAML::Node())
          .error("user \"" + ctx.user + "\" is not defined in users");
    }
    const User& user = userIt->second;
    if (Status s = loadPem(user.certData, user.certFile, user.origin, user.baseDir,
                           "client-certificate", cfg.clientCertPem);
        !s.ok()) {
      return s;
    }
    if (Status s = loadPem(user.keyData, user.keyFile, user.origin, user.baseDir, "client-key",
                           cfg.clientKeyPem);
        !s.ok()) {
      return s;
    }
    if (cfg.clientCertPem.empty() != cfg.clientKeyPem.empty()) {
      return user.origin.error(
          "client-certificate and client-key must be given together (or their -data forms)");
    }
    if (user.exec && (!user.token.empty() || !user.tokenFile.empty())) {
      return user.origin.error("set only one of exec and token/tokenFile");
    }
    cfg.exec = user.exec;
    cfg.bearerToken = user.token;
    if (!user.tokenFile.empty()) {
      cfg.bearerTokenFile = internal::resolvePath(user.tokenFile, user.baseDir);
      // Fail at load time rather than on the first request when the file is not there.
      auto token = readFile(cfg.bearerTokenFile, "tokenFile");
      if (!token.ok()) return user.origin.error(token.status().message());
    }
  }
  return cfg;
}

std::vector<std::string> splitList(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t colon = list.find(':', start);
    std::string item =
        list.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (!item.empty()) out.push_back(std::move(item));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return out;
}

std::optional<std::string> processEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());  // NOLINT(concurrency-mt-unsafe): read-only use
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

}  // namespace

StatusOr<RestConfig> parseKubeconfig(std::string_view yaml, const std::string& path,
                                     const std::string& context) {
  Merged merged;
  if (Status s = mergeFile(yaml, path, merged); !s.ok()) return s;
  return resolve(merged, context);
}

StatusOr<RestConfig> loadKubeconfig(const KubeconfigOptions& options) {
  std::vector<std::string> paths = options.paths;
  bool skipMissing = false;
  if (paths.empty()) {
    const auto env = processEnv("KUBECONFIG");
    if (env && !env->empty()) {
      paths = splitList(*env);
      skipMissing = true;  // kubectl ignores entries of $KUBECONFIG that do not exist
    } else {
      const auto home = processEnv("HOME");
      if (!home) return invalidArgument("no kubeconfig: KUBECONFIG and HOME are both unset");
      paths.push_back(*home + "/.kube/config");
    }
  }
  Merged merged;
  for (const auto& path : paths) {
    auto content = readFile(path, "kubeconfig");
    if (!content.ok()) {
      if (skipMissing && content.status().isNotFound()) continue;
      return content.status();
    }
    if (Status s = mergeFile(*content, path, merged); !s.ok()) return s;
  }
  if (merged.files.empty()) {
    return invalidArgument("no kubeconfig: none of the files in KUBECONFIG exists");
  }
  return resolve(merged, options.context);
}

StatusOr<RestConfig> loadInClusterConfig(const InClusterOptions& options) {
  const auto getenv = options.getenv ? options.getenv : processEnv;
  const auto host = getenv("KUBERNETES_SERVICE_HOST");
  const auto port = getenv("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    return failedPrecondition(
        "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be "
        "set; outside a pod pass --kubeconfig");
  }
  if (port->find_first_not_of("0123456789") != std::string::npos) {
    return invalidArgument("KUBERNETES_SERVICE_PORT: \"" + *port + "\" is not a port number");
  }
  RestConfig cfg;
  const bool ipv6 = host->find(':') != std::string::npos;
  cfg.server = "https://" + (ipv6 ? "[" + *host + "]" : *host) + ":" + *port;
  cfg.source = "in-cluster (" + options.root + ")";
  auto ca = readFile(options.root + "/ca.crt", "in-cluster CA");
  if (!ca.ok()) return ca.status();
  if (ca->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return invalidArgument("in-cluster CA " + options.root + "/ca.crt: holds no PEM certificate");
  }
  cfg.caPem = std::move(*ca);
  cfg.bearerTokenFile = options.root + "/token";
  auto token = readFile(cfg.bearerTokenFile, "in-cluster token");
  if (!token.ok()) return token.status();
  if (token->find_first_not_of(" \t\r\n") == std::string::npos) {
    return invalidArgument("in-cluster token " + cfg.bearerTokenFile + ": is empty");
  }
  auto ns = readFile(options.root + "/namespace", "in-cluster namespace");
  if (ns.ok()) {
    std::string trimmed = *ns;
    while (!trimmed.empty() && (trimmed.back() == '\n' || trimmed.back() == ' ')) {
      trimmed.pop_back();
    }
    if (!trimmed.empty()) cfg.ns = trimmed;
  } else if (!ns.status().isNotFound()) {
    return ns.status();
  }
  return cfg;
}

StatusOr<RestConfig> loadConfig(const std::string& kubeconfigPath, const std::string& context) {
  if (!kubeconfigPath.empty()) return loadKubeconfig({{kubeconfigPath}, context});
  const auto env = processEnv("KUBECONFIG");
  if (env && !env->empty()) return loadKubeconfig({{}, context});
  const auto host = processEnv("KUBERNETES_SERVICE_HOST");
  if (host && !host->empty() && context.empty()) return loadInClusterConfig();
  return loadKubeconfig({{}, context});
}

}  // namespace tasklease::kube
