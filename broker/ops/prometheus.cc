#include "broker/ops/prometheus.h"

#include <charconv>
#include <cmath>

namespace meshmq::ops {

namespace {

// HELP text escapes backslash and newline; label values also escape the double quote.
void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

void append_labels(std::string& out, const core::Labels& labels, std::string_view extra_key = {},
                   std::string_view extra_value = {}) {
  if (labels.empty() && extra_key.empty()) return;
  out += '{';
  bool first = true;
  auto one = [&](std::string_view k, std::string_view v) {
    if (!first) out += ',';
    first = false;
    out += k;
    out += "=\"";
    append_escaped(out, v, true);
    out += '"';
  };
  for (const auto& [k, v] : labels) one(k, v);
  if (!extra_key.empty()) one(extra_key, extra_value);
  out += '}';
}

const char* type_name(core::MetricType t) {
  switch (t) {
    case core::MetricType::kCounter:
      return "counter";
    case core::MetricType::kGauge:
      return "gauge";
    case core::MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {  // 2^53: exact as an integer
    return std::to_string(static_cast<long long>(v));
  }
  char buf[32];
  // Shortest round-trip digits; plain decimals for everyday magnitudes (le="0.0001", not "1e-04").
  const double mag = std::fabs(v);
  const auto fmt =
      mag >= 1e-6 && mag < 1e15 ? std::chars_format::fixed : std::chars_format::scientific;
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, fmt);
  return std::string(buf, end);
}

std::string render_prometheus(const core::Snapshot& snapshot) {
  std::string out;
  out.reserve(snapshot.size() * 160);
  for (const core::Family& f : snapshot) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    append_escaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    out += ' ';
    out += type_name(f.type);
    out += '\n';
    if (f.type == core::MetricType::kHistogram) {
      const core::Histogram& h = f.histogram;
      for (std::size_t i = 0; i < h.cumulative.size(); ++i) {
        out += f.name;
        out += "_bucket";
        const std::string le = i < h.bounds.size() ? format_value(h.bounds[i]) : "+Inf";
        append_labels(out, {}, "le", le);
        out += ' ';
        out += std::to_string(h.cumulative[i]);
        out += '\n';
      }
      out += f.name + "_sum " + format_value(h.sum) + '\n';
      out += f.name + "_count " + std::to_string(h.cumulative.empty() ? 0 : h.cumulative.back()) +
             '\n';
      continue;
    }
    for (const core::Sample& s : f.samples) {
      out += f.name;
      append_labels(out, s.labels);
      out += ' ';
      out += format_value(s.value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace meshmq::ops
