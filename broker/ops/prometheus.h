// Prometheus text exposition format 0.0.4 of a metrics snapshot: the body of GET /metrics.
#pragma once

#include <string>

#include "broker/core/metrics.h"

namespace meshmq::ops {

inline constexpr const char* kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string render_prometheus(const core::Snapshot& snapshot);

// A sample value as the format writes it: integers without a fraction, NaN, +Inf, -Inf.
std::string format_value(double v);

}  // namespace meshmq::ops
