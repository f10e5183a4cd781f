#pragma once
// Reading a whole file, with an error that names it.

#include <string>

#include "common/status.h"

namespace tasklease {

// The whole file; the error names the file and says why it could not be read (NotFound when it
// does not exist). `what` says which setting pointed at it ("users[0].user.client-key").
StatusOr<std::string> readFile(const std::string& path, const std::string& what);

}  // namespace tasklease
