#pragma once
// metav1.MicroTime ("2024-05-01T12:00:00.123456Z"), the timestamp of Lease renewTime and
// acquireTime: the API server parses it with exactly six fraction digits. Other timestamps
// use common/rfc3339.h.

#include <chrono>
#include <string>

namespace tasklease::kube {

std::string formatMicroTime(std::chrono::system_clock::time_point t);

}  // namespace tasklease::kube
