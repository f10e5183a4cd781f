#pragma once
// Kubernetes manifests from files, as `kubectl apply -f` reads them: YAML with several
// documents, or JSON; `kind: List` (and other *List kinds) expanded into their items;
// directories read recursively (*.yaml, *.yml, *.json, in name order); "-" for stdin. Used by
// `kubectl-tasklease check` and the webhook's --cluster-state-file.
//
//   StatusOr<std::vector<Manifest>> docs = loadManifests({"deploy/", "-"}, std::cin);

#include <istream>
#include <string>
#include <string_view>
#include <vector>

#include "common/json.h"
#include "common/status.h"

namespace tasklease::webhook {

struct Manifest {
  std::string source;  // "deploy/app.yaml" plus " (document 2)" or " (item 3)" when needed
  Json object;
};

// Errors name the file and, for YAML, the line and column.
StatusOr<std::vector<Manifest>> parseManifests(std::string_view text, const std::string& source);
StatusOr<std::vector<Manifest>> loadManifests(const std::vector<std::string>& paths,
                                              std::istream& stdinStream);

}  // namespace tasklease::webhook
