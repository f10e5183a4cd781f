#include "common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace tasklease {
namespace {

TEST(MetricsTest, CounterRendersHelpTypeAndLabelledSamples) {
  MetricsRegistry r;
  auto& c = r.counter("reviews_total", "Reviews answered.", {"kind", "decision"});
  c.labels({"Pod", "allowed"}).inc();
  c.labels({"Pod", "allowed"}).inc(2);
  c.labels({"Deployment", "denied"}).inc();
  EXPECT_EQ(r.render(),
            "# HELP reviews_total Reviews answered.\n"
            "# TYPE reviews_total counter\n"
            "reviews_total{kind=\"Deployment\",decision=\"denied\"} 1\n"
            "reviews_total{kind=\"Pod\",decision=\"allowed\"} 3\n");
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  MetricsRegistry r;
  r.gauge("g", "help with \\ and\nnewline", {"v"}).labels({"a\"b\\c\nd"}).set(1.5);
  EXPECT_EQ(r.render(),
            "# HELP g help with \\\\ and\\nnewline\n"
            "# TYPE g gauge\n"
            "g{v=\"a\\\"b\\\\c\\nd\"} 1.5\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  MetricsRegistry r;
  auto& h = r.histogram("lat_seconds", "Latency.", {}, {0.1, 1});
  h.labels({}).observe(0.05);
  h.labels({}).observe(0.5);
  h.labels({}).observe(0.5);
  h.labels({}).observe(3);
  EXPECT_EQ(r.render(),
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 1\n"
            "lat_seconds_bucket{le=\"1\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 4.05\n"
            "lat_seconds_count 4\n");
}

TEST(MetricsTest, RegisteringTheSameNameTwiceReturnsTheSameFamily) {
  MetricsRegistry r;
  auto& a = r.counter("x_total", "X.");
  auto& b = r.counter("x_total", "X.");
  EXPECT_EQ(&a, &b);
}

TEST(MetricsTest, ConcurrentIncrementsAreAllCounted) {
  MetricsRegistry r;
  auto& c = r.counter("n_total", "N.", {"t"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) c.labels({"same"}).inc();
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.labels({"same"}).value(), 40000);
}

TEST(MetricsTest, ValuesFormatLikePrometheus) {
  EXPECT_EQ(formatMetricValue(3), "3");
  EXPECT_EQ(formatMetricValue(0.25), "0.25");
  EXPECT_EQ(formatMetricValue(1.0 / 0.0), "+Inf");
}

}  // namespace
}  // namespace tasklease
