#pragma once
// Small file helpers for the config loaders (internal to kube/).

#include <string>

#include "common/status.h"

namespace tasklease::kube::internal {

// The whole file; the error names the file and says why it could not be read. `what` says
// which field pointed at it ("users[0].user.client-key").
StatusOr<std::string> readFile(const std::string& path, const std::string& what);

// `path` if absolute, else joined to `baseDir`.
std::string resolvePath(const std::string& path, const std::string& baseDir);

// The directory part of a path ("." when there is none).
std::string dirName(const std::string& path);

}  // namespace tasklease::kube::internal
