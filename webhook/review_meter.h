#pragma once
// The cost of the review being judged on this thread, and its time budget. The detectors and
// rules charge the bytes and steps they examine, which is linear in the review's input
// (docs/rules.md, "Cost of a review"); every few thousand units the meter reads the clock, and
// once the deadline has passed charge() returns false and the rules stop where they are. The
// review is then refused with a message saying what was too costly (AdmissionEndpoint) instead
// of being left to the API server's timeout.
//
//   ReviewMeter meter(ReviewMeter::SteadyClock::now() + budget);
//   {
//     ReviewMeter::Scope metered(meter);   // reviews on this thread charge `meter`
//     outcome = reviewAdmission(...);
//   }
//   if (meter.spent()) refuse(meter.spentAt());
//
// Without a Scope (the offline check, most tests) nothing is metered and nothing is stopped.
// work() is also what the tests count to show that a detector is linear: they compare the work
// of an input with that of an input twice as long, never a duration.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "webhook/json_view.h"

namespace tasklease::webhook {

class ReviewMeter {
 public:
  using SteadyClock = std::chrono::steady_clock;
  using SteadyNow = std::function<SteadyClock::time_point()>;  // tests move time by hand
  // The clock is read at most once per this many units of work (bytes examined, mostly).
  static constexpr uint64_t kUnitsPerClockRead = 16 * 1024;

  explicit ReviewMeter(SteadyClock::time_point deadline = SteadyClock::time_point::max(),
                       SteadyNow now = nullptr);

  // Adds work. False once the budget is spent: the caller stops what it is doing.
  bool charge(uint64_t units);
  bool spent() const { return spent_; }
  uint64_t work() const { return work_; }

  // What the review was doing when its budget ran out, for the refusal ("the literal-secret
  // detectors on spec.containers[0].env[3]"); the first note is kept.
  void noteSpentAt(std::string what);
  const std::string& spentAt() const { return spentAt_; }

  // While a Pause lives the budget does not run: waits on the API server (an AgentTask's
  // SubjectAccessReviews, which have their own deadline) are not the review's cost.
  class Pause {
   public:
    explicit Pause(ReviewMeter* meter);  // null: nothing to pause
    ~Pause();
    Pause(const Pause&) = delete;
    Pause& operator=(const Pause&) = delete;

   private:
    ReviewMeter* meter_;
    SteadyClock::time_point started_;
  };

  // Makes `meter` this thread's current meter for its lifetime (scopes nest).
  class Scope {
   public:
    explicit Scope(ReviewMeter& meter);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ReviewMeter* previous_;
  };

  // This thread's meter, or null.
  static ReviewMeter* current();

 private:
  SteadyClock::time_point now() const;

  SteadyClock::time_point deadline_;
  SteadyNow now_;
  uint64_t work_ = 0;
  uint64_t nextClockRead_ = 0;  // read the clock when work_ reaches this
  bool spent_ = false;
  std::string spentAt_;
};

// Charges this thread's review, if any. False when its budget is spent.
inline bool chargeReview(uint64_t units) {
  ReviewMeter* m = ReviewMeter::current();
  return m == nullptr || m->charge(units);
}

// True when this thread's review has spent its budget.
inline bool reviewSpent() {
  const ReviewMeter* m = ReviewMeter::current();
  return m != nullptr && m->spent();
}

// When this thread's review has spent its budget and nothing has said where yet, records
// where(); the text is built only then.
void noteIfReviewSpent(FunctionRef<std::string()> where);

}  // namespace tasklease::webhook
