#include "tests/kube/connect_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace tasklease::kube::testing {

ConnectProxy::ConnectProxy() {
  listenFd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listenFd_, 16) != 0) {
    throw std::runtime_error("ConnectProxy: cannot listen");
  }
  socklen_t len = sizeof addr;
  ::getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

ConnectProxy::~ConnectProxy() {
  stopping_ = true;
  ::shutdown(listenFd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listenFd_);
  std::vector<std::thread> workers;
  {
    std::lock_guard lock(mu_);
    workers.swap(workers_);
  }
  for (auto& t : workers) t.join();
}

std::vector<std::string> ConnectProxy::targets() const {
  std::lock_guard lock(mu_);
  return targets_;
}

void ConnectProxy::acceptLoop() {
  while (!stopping_) {
    const int client = ::accept4(listenFd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, client] { serve(client); });
  }
}

void ConnectProxy::serve(int client) {
  std::string head;
  char buf[16384];
  while (head.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::read(client, buf, sizeof buf);
    if (n <= 0) {
      ::close(client);
      return;
    }
    head.append(buf, static_cast<size_t>(n));
  }
  // "CONNECT 127.0.0.1:PORT HTTP/1.1"
  const auto sp1 = head.find(' ');
  const auto sp2 = head.find(' ', sp1 + 1);
  const std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
  const auto colon = target.rfind(':');
  const int port = std::stoi(target.substr(colon + 1));
  const int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (head.rfind("CONNECT ", 0) != 0 ||
      ::connect(upstream, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    const char refusal[] = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
    (void)!::write(client, refusal, sizeof refusal - 1);
    ::close(upstream);
    ::close(client);
    return;
  }
  {
    std::lock_guard lock(mu_);
    targets_.push_back(target);
  }
  ++tunnels_;
  const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
  (void)!::write(client, ok, sizeof ok - 1);
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  while (!stopping_) {
    if (::poll(fds, 2, 200) <= 0) continue;
    bool closed = false;
    for (int i = 0; i < 2 && !closed; ++i) {
      if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        closed = true;
        break;
      }
      const int to = fds[1 - i].fd;
      ssize_t off = 0;
      while (off < n) {
        const ssize_t w = ::write(to, buf + off, static_cast<size_t>(n - off));
        if (w <= 0) {
          closed = true;
          break;
        }
        off += w;
      }
    }
    if (closed) break;
  }
  ::close(upstream);
  ::close(client);
}

}  // namespace tasklease::kube::testing
