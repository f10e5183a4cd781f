#pragma once
// Prometheus metrics in the text exposition format (version 0.0.4): counters, gauges and
// histograms with labels, registered once and rendered by the /metrics endpoint.
//
//   MetricsRegistry registry;
//   auto& reviews = registry.counter("tasklease_webhook_reviews_total", "Reviews answered.",
//                                    {"kind", "decision"});
//   reviews.labels({"Pod", "allowed"}).inc();
//   std::string text = registry.render();
//
// labels() returns a reference that stays valid for the registry's life; hot paths keep it.
// Every operation is thread-safe.

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tasklease {

class Counter {
 public:
  void inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void set(double v) { value_.store(v, std::memory_order_relaxed); }
  void inc(double by = 1) { value_.fetch_add(by, std::memory_order_relaxed); }
  void dec(double by = 1) { value_.fetch_sub(by, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void observe(double v);
  // Cumulative counts per bound (the last is +Inf), the sum and the count.
  std::vector<uint64_t> cumulativeCounts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::atomic<uint64_t>> buckets_;  // bounds_.size() + 1, the last is +Inf
  std::atomic<double> sum_{0};
  std::atomic<uint64_t> count_{0};
};

// Seconds buckets from 0.5 ms to 10 s, for request latencies.
std::vector<double> defaultLatencyBuckets();

class MetricFamily {
 public:
  MetricFamily(std::string name, std::string help, std::vector<std::string> labelNames)
      : name_(std::move(name)), help_(std::move(help)), labelNames_(std::move(labelNames)) {}
  virtual ~MetricFamily() = default;
  virtual void render(std::string& out) const = 0;
  const std::string& name() const { return name_; }

 protected:
  // {a="x",b="y"} with values escaped; extra is appended last (the histogram's le).
  std::string labelText(const std::vector<std::string>& values,
                        const std::string& extra = "") const;
  void header(std::string& out, const char* type) const;
  // The number of values must equal the number of label names: a mismatch is a bug in the
  // caller and aborts with the metric's name.
  void checkArity(const std::vector<std::string>& values) const;

  std::string name_;
  std::string help_;
  std::vector<std::string> labelNames_;
};

template <typename Child>
class Family : public MetricFamily {
 public:
  using MetricFamily::MetricFamily;
  Child& labels(const std::vector<std::string>& values) {
    checkArity(values);
    std::lock_guard<std::mutex> lock(mu_);
    auto& slot = children_[values];
    if (!slot) slot = makeChild();
    return *slot;
  }

 protected:
  virtual std::unique_ptr<Child> makeChild() const = 0;
  mutable std::mutex mu_;
  std::map<std::vector<std::string>, std::unique_ptr<Child>> children_;  // guarded by mu_
};

class CounterFamily : public Family<Counter> {
 public:
  using Family::Family;
  void render(std::string& out) const override;

 protected:
  std::unique_ptr<Counter> makeChild() const override { return std::make_unique<Counter>(); }
};

class GaugeFamily : public Family<Gauge> {
 public:
  using Family::Family;
  void render(std::string& out) const override;

 protected:
  std::unique_ptr<Gauge> makeChild() const override { return std::make_unique<Gauge>(); }
};

class HistogramFamily : public Family<Histogram> {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> labelNames,
                  std::vector<double> bounds)
      : Family(std::move(name), std::move(help), std::move(labelNames)),
        bounds_(std::move(bounds)) {}
  void render(std::string& out) const override;

 protected:
  std::unique_ptr<Histogram> makeChild() const override {
    return std::make_unique<Histogram>(bounds_);
  }

 private:
  std::vector<double> bounds_;
};

class MetricsRegistry {
 public:
  // Registering a name twice returns the first family (same type expected).
  CounterFamily& counter(const std::string& name, const std::string& help,
                         std::vector<std::string> labelNames = {});
  GaugeFamily& gauge(const std::string& name, const std::string& help,
                     std::vector<std::string> labelNames = {});
  HistogramFamily& histogram(const std::string& name, const std::string& help,
                             std::vector<std::string> labelNames = {},
                             std::vector<double> bounds = defaultLatencyBuckets());
  // The whole exposition, families in registration order.
  std::string render() const;

 private:
  template <typename F, typename... Args>
  F& add(const std::string& name, Args&&... args);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_;  // guarded by mu_
};

// Formats a sample value as Prometheus does: integers without a fraction, +Inf, NaN.
std::string formatMetricValue(double v);

}  // namespace tasklease
