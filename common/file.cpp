#include "common/file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tasklease {

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

}  // namespace tasklease
