#pragma once
// ConnectProxy: a minimal HTTP CONNECT proxy on 127.0.0.1 for tests of proxy-url and of
// connection reuse: it relays bytes and counts the tunnels it opened.

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tasklease::kube::testing {

class ConnectProxy {
 public:
  ConnectProxy();  // listens at once on an ephemeral port
  ~ConnectProxy();
  ConnectProxy(const ConnectProxy&) = delete;
  ConnectProxy& operator=(const ConnectProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int tunnels() const { return tunnels_.load(); }
  // The "host:port" of each CONNECT, in order.
  std::vector<std::string> targets() const;

 private:
  void acceptLoop();
  void serve(int client);

  int listenFd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> tunnels_{0};
  mutable std::mutex mu_;
  std::vector<std::string> targets_;  // guarded by mu_
  std::vector<std::thread> workers_;  // guarded by mu_
  std::thread acceptor_;
};

}  // namespace tasklease::kube::testing
