#pragma once
// Standard base64 (RFC 4648 with padding), as Kubernetes uses for Secret data, kubeconfig
// *-data fields and caBundles.

#include <optional>
#include <string>
#include <string_view>

namespace tasklease {

std::string base64Encode(std::string_view data);

// Strict: the standard alphabet, correct padding, no whitespace. nullopt on anything else.
std::optional<std::string> base64Decode(std::string_view text);

}  // namespace tasklease
