#pragma once
// ScriptedHttpTransport: an HttpTransport that answers from a script, for unit tests of
// ApiClientImpl's error mapping, retries and watch parsing without a server. Each request
// takes the next scripted answer and is recorded.
//
//   auto transport = std::make_unique<ScriptedHttpTransport>();
//   transport->respond(500, R"({"kind":"Status","code":500,"reason":"InternalError"})");
//   transport->respond(200, R"({"kind":"ConfigMap"})");

#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "kube/errors.h"
#include "kube/http.h"

namespace tasklease::kube {

class ScriptedHttpTransport final : public HttpTransport {
 public:
  struct Answer {
    Status failure;  // not OK: a transport failure instead of a response
    HttpResponse response;
    std::vector<std::string> lines;  // for stream(): delivered before the response returns
  };

  void respond(int code, std::string body, std::map<std::string, std::string> headers = {}) {
    std::lock_guard lock(mu_);
    answers_.push_back({Status(), HttpResponse{code, std::move(headers), std::move(body)}, {}});
  }
  void fail(Status failure) {
    std::lock_guard lock(mu_);
    answers_.push_back({std::move(failure), {}, {}});
  }
  void streamLines(std::vector<std::string> lines, int code = 200) {
    std::lock_guard lock(mu_);
    answers_.push_back({Status(), HttpResponse{code, {}, {}}, std::move(lines)});
  }

  std::vector<HttpRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t remaining() const {
    std::lock_guard lock(mu_);
    return answers_.size();
  }

  StatusOr<HttpResponse> send(const HttpRequest& request, const std::stop_token& stop) override {
    return stream(request, nullptr, stop);
  }

  StatusOr<HttpResponse> stream(const HttpRequest& request, const LineHandler& onLine,
                                const std::stop_token& stop) override {
    Answer answer;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request);
      if (stop.stop_requested()) return cancelled("stopped");
      if (answers_.empty()) {
        Status s(StatusCode::kUnavailable, "script exhausted");
        s.withReason(std::string(kReasonConnectFailed));
        return s;
      }
      answer = std::move(answers_.front());
      answers_.pop_front();
    }
    if (!answer.failure.ok()) return answer.failure;
    if (onLine) {
      for (const auto& line : answer.lines) {
        if (!onLine(line)) break;
      }
    }
    return answer.response;
  }

 private:
  mutable std::mutex mu_;
  std::deque<Answer> answers_;         // guarded by mu_
  std::vector<HttpRequest> requests_;  // guarded by mu_
};

}  // namespace tasklease::kube
