#pragma once
// Small path helpers for the config loaders (internal to kube/); reading a file is
// tasklease::readFile (common/file.h).

#include <string>

namespace tasklease::kube::internal {

// `path` if absolute, else joined to `baseDir`.
std::string resolvePath(const std::string& path, const std::string& baseDir);

// The directory part of a path ("." when there is none).
std::string dirName(const std::string& path);

}  // namespace tasklease::kube::internal
