#include "common/metrics.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tasklease {
namespace {

std::string escapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string formatMetricValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  // The shortest form that reads back as the same double, as Go's strconv does.
  char buf[32];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), buckets_(bounds.size() + 1) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulativeCounts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    out[i] = running;
  }
  return out;
}

std::vector<double> defaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::string MetricFamily::labelText(const std::vector<std::string>& values,
                                    const std::string& extra) const {
  if (labelNames_.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labelNames_.size(); ++i) {
    if (i > 0) out += ',';
    out += labelNames_[i] + "=\"" + escapeLabelValue(values[i]) + "\"";
  }
  if (!extra.empty()) {
    if (!labelNames_.empty()) out += ',';
    out += extra;
  }
  return out + "}";
}

void MetricFamily::header(std::string& out, const char* type) const {
  out += "# HELP " + name_ + " " + escapeHelp(help_) + "\n";
  out += "# TYPE " + name_ + " " + type + "\n";
}

void MetricFamily::checkArity(const std::vector<std::string>& values) const {
  if (values.size() != labelNames_.size()) {
    std::fprintf(stderr, "fatal: metric %s takes %zu label values, got %zu\n", name_.c_str(),
                 labelNames_.size(), values.size());
    std::abort();
  }
}

void CounterFamily::render(std::string& out) const {
  header(out, "counter");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, c] : children_) {
    out += name_ + labelText(values) + " " + formatMetricValue(c->value()) + "\n";
  }
}

void GaugeFamily::render(std::string& out) const {
  header(out, "gauge");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, g] : children_) {
    out += name_ + labelText(values) + " " + formatMetricValue(g->value()) + "\n";
  }
}

void HistogramFamily::render(std::string& out) const {
  header(out, "histogram");
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [values, h] : children_) {
    std::vector<uint64_t> counts = h->cumulativeCounts();
    const auto& bounds = h->bounds();
    for (size_t i = 0; i <= bounds.size(); ++i) {
      std::string le = i < bounds.size() ? formatMetricValue(bounds[i]) : "+Inf";
      out += name_ + "_bucket" + labelText(values, "le=\"" + le + "\"") + " " +
             std::to_string(counts[i]) + "\n";
    }
    out += name_ + "_sum" + labelText(values) + " " + formatMetricValue(h->sum()) + "\n";
    out += name_ + "_count" + labelText(values) + " " + std::to_string(h->count()) + "\n";
  }
}

template <typename F, typename... Args>
F& MetricsRegistry::add(const std::string& name, Args&&... args) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : families_) {
    if (f->name() == name) {
      auto* typed = dynamic_cast<F*>(f.get());
      if (typed == nullptr) {
        std::fprintf(stderr, "fatal: metric %s registered twice with different types\n",
                     name.c_str());
        std::abort();
      }
      return *typed;
    }
  }
  auto family = std::make_unique<F>(name, std::forward<Args>(args)...);
  F& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

CounterFamily& MetricsRegistry::counter(const std::string& name, const std::string& help,
                                        std::vector<std::string> labelNames) {
  return add<CounterFamily>(name, help, std::move(labelNames));
}

GaugeFamily& MetricsRegistry::gauge(const std::string& name, const std::string& help,
                                    std::vector<std::string> labelNames) {
  return add<GaugeFamily>(name, help, std::move(labelNames));
}

HistogramFamily& MetricsRegistry::histogram(const std::string& name, const std::string& help,
                                            std::vector<std::string> labelNames,
                                            std::vector<double> bounds) {
  return add<HistogramFamily>(name, help, std::move(labelNames), std::move(bounds));
}

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const auto& f : families_) f->render(out);
  return out;
}

}  // namespace tasklease
