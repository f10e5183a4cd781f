#pragma once
// Durations in Go's time.ParseDuration syntax ("30m", "1h30m", "1.5h", "90s"), as Kubernetes
// users write them in specs, and formatting back in the same shape.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tasklease {

// Parses "300ms", "-1.5h", "2h45m". Units: ns, us (or µs), ms, s, m, h. A bare "0" is zero.
// Errors name the input and say what is accepted.
StatusOr<std::chrono::nanoseconds> parseDuration(std::string_view text);

// Formats like Go's Duration.String() for whole seconds and up: "1h30m0s", "10m0s", "45s".
std::string formatDuration(std::chrono::seconds d);

}  // namespace tasklease
