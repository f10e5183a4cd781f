#include "kube/internal/io.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tasklease::kube::internal {

StatusOr<std::string> readFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    Status s(err == ENOENT ? StatusCode::kNotFound : StatusCode::kInvalidArgument,
             what + ": cannot read " + path + ": " + std::strerror(err));
    return s;
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  if (in.bad()) return invalidArgument(what + ": error reading " + path);
  return buf.str();
}

std::string resolvePath(const std::string& path, const std::string& baseDir) {
  if (path.empty() || path.front() == '/' || baseDir.empty()) return path;
  return baseDir + "/" + path;
}

std::string dirName(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace tasklease::kube::internal
