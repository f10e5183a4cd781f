#pragma once
// Helpers for the kube tests: a temporary directory removed at the end of the test, and small
// file helpers.

#include <string>

namespace tasklease::kube::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name (mode 0600, or 0700 with executable) and returns the path.
  std::string write(const std::string& name, const std::string& content,
                    bool executable = false) const;

 private:
  std::string path_;
};

std::string readFileOrEmpty(const std::string& path);

}  // namespace tasklease::kube::testing
