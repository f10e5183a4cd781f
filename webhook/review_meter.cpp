#include "webhook/review_meter.h"

namespace tasklease::webhook {
namespace {

thread_local ReviewMeter* tCurrent = nullptr;

}  // namespace

ReviewMeter::ReviewMeter(SteadyClock::time_point deadline, SteadyNow now)
    : deadline_(deadline), now_(std::move(now)) {}

ReviewMeter::SteadyClock::time_point ReviewMeter::now() const {
  return now_ ? now_() : SteadyClock::now();
}

bool ReviewMeter::charge(uint64_t units) {
  work_ += units;
  if (spent_) return false;
  if (work_ >= nextClockRead_) {
    nextClockRead_ = work_ + kUnitsPerClockRead;
    if (deadline_ != SteadyClock::time_point::max() && now() >= deadline_) spent_ = true;
  }
  return !spent_;
}

void ReviewMeter::noteSpentAt(std::string what) {
  if (spentAt_.empty()) spentAt_ = std::move(what);
}

ReviewMeter::Pause::Pause(ReviewMeter* meter)
    : meter_(meter), started_(meter != nullptr ? meter->now() : SteadyClock::time_point()) {}

ReviewMeter::Pause::~Pause() {
  if (meter_ == nullptr || meter_->deadline_ == SteadyClock::time_point::max()) return;
  meter_->deadline_ += meter_->now() - started_;
}

ReviewMeter::Scope::Scope(ReviewMeter& meter) : previous_(tCurrent) {
  tCurrent = &meter;
}

ReviewMeter::Scope::~Scope() {
  tCurrent = previous_;
}

ReviewMeter* ReviewMeter::current() {
  return tCurrent;
}

void noteIfReviewSpent(FunctionRef<std::string()> where) {
  ReviewMeter* m = ReviewMeter::current();
  if (m != nullptr && m->spent() && m->spentAt().empty()) m->noteSpentAt(where());
}

}  // namespace tasklease::webhook
