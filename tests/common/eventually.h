#pragma once
// Waits for a condition in tests that drive threads or servers: polls cond until it holds or
// `limit` has passed. The limit is a bound on waiting, never a measurement (tests do not assert
// durations).
//
//   ASSERT_TRUE(eventually([&] { return server->openConnections() == 4; }));

#include <chrono>
#include <functional>
#include <thread>

namespace tasklease::testing {

inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

}  // namespace tasklease::testing
