// Prometheus text exposition: exact output for each kind of family, escaping and number format.
#include "broker/ops/prometheus.h"

#include <gtest/gtest.h>

namespace meshmq::ops {
namespace {

using core::Family;
using core::Sample;

struct ValueCase {
  double value;
  const char* text;
};

class FormatValue : public ::testing::TestWithParam<ValueCase> {};

TEST_P(FormatValue, WritesTheFormatsNumberSyntax) {
  EXPECT_EQ(format_value(GetParam().value), GetParam().text);
}

INSTANTIATE_TEST_SUITE_P(
    Numbers, FormatValue,
    ::testing::Values(ValueCase{0, "0"}, ValueCase{42, "42"}, ValueCase{-3, "-3"},
                      ValueCase{0.0001, "0.0001"}, ValueCase{2.5, "2.5"}, ValueCase{1e20, "1e+20"},
                      ValueCase{18446744073709551615.0, "1.8446744073709552e+19"},
                      ValueCase{std::numeric_limits<double>::infinity(), "+Inf"},
                      ValueCase{-std::numeric_limits<double>::infinity(), "-Inf"},
                      ValueCase{std::numeric_limits<double>::quiet_NaN(), "NaN"}));

struct RenderCase {
  const char* name;
  core::Snapshot snapshot;
  const char* text;
};

class Render : public ::testing::TestWithParam<RenderCase> {};

TEST_P(Render, ProducesExactExposition) {
  EXPECT_EQ(render_prometheus(GetParam().snapshot), GetParam().text);
}

Family histogram() {
  Family f;
  f.name = "meshmq_latency_seconds";
  f.help = "Latency";
  f.type = core::MetricType::kHistogram;
  f.histogram.bounds = {0.001, 0.5};
  f.histogram.cumulative = {1, 3, 4};
  f.histogram.sum = 1.25;
  return f;
}

INSTANTIATE_TEST_SUITE_P(
    Families, Render,
    ::testing::Values(
        RenderCase{"gauge",
                   {Family::gauge("meshmq_sessions", "Sessions", 7)},
                   "# HELP meshmq_sessions Sessions\n# TYPE meshmq_sessions gauge\n"
                   "meshmq_sessions 7\n"},
        RenderCase{
            "labelled_counter",
            {Family::counter("meshmq_x_total", "X by qos",
                             {Sample{{{"qos", "0"}}, 1}, Sample{{{"qos", "1"}, {"a", "b"}}, 2}})},
            "# HELP meshmq_x_total X by qos\n# TYPE meshmq_x_total counter\n"
            "meshmq_x_total{qos=\"0\"} 1\nmeshmq_x_total{qos=\"1\",a=\"b\"} 2\n"},
        RenderCase{"escaping",
                   {Family::gauge("meshmq_e", "back\\slash\nnew \"quoted\"",
                                  {Sample{{{"v", "a\"b\\c\nd"}}, 1}})},
                   "# HELP meshmq_e back\\\\slash\\nnew \"quoted\"\n# TYPE meshmq_e gauge\n"
                   "meshmq_e{v=\"a\\\"b\\\\c\\nd\"} 1\n"},
        RenderCase{"histogram",
                   {histogram()},
                   "# HELP meshmq_latency_seconds Latency\n"
                   "# TYPE meshmq_latency_seconds histogram\n"
                   "meshmq_latency_seconds_bucket{le=\"0.001\"} 1\n"
                   "meshmq_latency_seconds_bucket{le=\"0.5\"} 3\n"
                   "meshmq_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                   "meshmq_latency_seconds_sum 1.25\n"
                   "meshmq_latency_seconds_count 4\n"},
        RenderCase{"empty", {}, ""}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace meshmq::ops
