// The per-review CPU cost of tasklease-webhook without TLS and HTTP: decoding the
// AdmissionReview, the rules, encoding the answer, and the whole endpoint (metrics, evidence
// and logging included), each timed over many iterations of the same review on one thread.
// bench/webhook_bench.py runs it on the review it sends with wrk; figures in docs/webhook.md.
//
//   webhook_review_micro REVIEW.json STATE.yaml [ITERATIONS]

#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>

#include "common/file.h"
#include "common/metrics.h"
#include "webhook/admission.h"
#include "webhook/endpoint.h"
#include "webhook/manifests.h"
#include "webhook/review.h"

using namespace tasklease;
using namespace tasklease::webhook;

namespace {

// Microseconds per call of f, the best of five rounds of `iterations` calls.
double timePerCall(int iterations, const std::function<void()>& f) {
  double best = 1e18;
  for (int round = 0; round < 5; ++round) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < iterations; ++i) f();
    std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / iterations);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: webhook_review_micro REVIEW.json STATE.yaml [ITERATIONS]\n";
    return 2;
  }
  const auto read = readFile(argv[1], "REVIEW.json");
  if (!read.ok()) {
    std::cerr << read.status().message() << "\n";
    return 2;
  }
  const std::string& body = *read;
  const int iterations = argc > 3 ? std::stoi(argv[3]) : 20000;

  auto manifests = loadManifests({argv[2]}, std::cin);
  if (!manifests.ok()) {
    std::cerr << manifests.status().message() << "\n";
    return 1;
  }
  ObjectSetClusterState state;
  for (const auto& m : *manifests) state.add(m.object);
  const ReviewConfig config;
  const TimePoint now = std::chrono::system_clock::now();

  auto decoded = decodeAdmissionReview(body);
  if (!decoded.ok()) {
    std::cerr << decoded.status().message() << "\n";
    return 1;
  }
  ReviewOutcome outcome = reviewAdmission(*decoded, state, config, now);
  const std::string answer = encodeAdmissionReview(outcome.response);

  MetricsRegistry registry;
  AdmissionEndpoint endpoint(state, config, nullptr, registry);
  HttpRequest request;
  request.method = "POST";
  request.path = "/validate";
  request.body = body;

  volatile size_t sink = 0;
  double decode = timePerCall(iterations, [&] {
    auto r = decodeAdmissionReview(body);
    sink = sink + r->uid.size();
  });
  double review = timePerCall(iterations, [&] {
    ReviewOutcome o = reviewAdmission(*decoded, state, config, now);
    sink = sink + o.response.warnings.size();
  });
  double encode = timePerCall(
      iterations, [&] { sink = sink + encodeAdmissionReview(outcome.response).size(); });
  double whole = timePerCall(iterations, [&] {
    HttpResponse r = endpoint.validate(request);
    sink = sink + r.body.size();
  });
  std::printf(
      "review of %zu bytes, decision %s: decode %.2f us, rules %.2f us, encode %.2f us; "
      "endpoint (all of it, with metrics) %.2f us\n",
      body.size(), decisionName(outcome.decision), decode, review, encode, whole);
  std::printf("answer: %s\n", answer.c_str());
  return 0;
}
