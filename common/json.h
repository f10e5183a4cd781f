#pragma once
// The JSON value type of the project's APIs. Kubernetes objects are JSON documents and every
// part passes them around, so this one third-party type is the project's vocabulary type, like
// std::string (docs/decisions.md, "JSON in public headers"). Everything else third-party
// (libcurl, Beast, yaml-cpp, OpenSSL) stays inside .cpp files.

#include <nlohmann/json.hpp>

namespace tasklease {
using Json = nlohmann::json;
}  // namespace tasklease
