// tasklease's HTTPS server (common/http_server.h) answering every POST /validate with a canned
// AdmissionReview, as the nginx of bench/webhook_bench.py does: the server's own cost per
// request (TLS, HTTP, the event loop), without the review. bench/webhook_bench.py runs it as a
// third server beside nginx and the webhook.
//
//   http_canned CERT KEY PORT THREADS ANSWER_FILE

#include <csignal>
#include <cstdio>
#include <iostream>
#include <string>

#include "common/file.h"
#include "common/http_server.h"

using namespace tasklease;

int main(int argc, char** argv) {
  if (argc != 6) {
    std::cerr << "usage: http_canned CERT KEY PORT THREADS ANSWER_FILE\n";
    return 2;
  }
  const auto read = readFile(argv[5], "ANSWER_FILE");
  if (!read.ok()) {
    std::cerr << read.status().message() << "\n";
    return 2;
  }
  const std::string& answer = *read;
  HttpServerOptions options;
  options.address = "127.0.0.1";
  options.port = static_cast<uint16_t>(std::stoi(argv[3]));
  options.threads = std::stoi(argv[4]);
  options.tls = TlsFiles{argv[1], argv[2]};
  HttpRoutes routes;
  routes.add("POST", "/validate", [&](const HttpRequest&) {
    HttpResponse r;
    r.body = answer;
    return r;
  });
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // the server's threads inherit the mask
  auto server = HttpServer::start(options, std::move(routes));
  if (!server.ok()) {
    std::cerr << server.status().message() << "\n";
    return 1;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  (*server)->shutdown(std::chrono::seconds(1));
  return 0;
}
