// The end-of-run summary: what the JSON on stdout (or --json FILE) holds.
#pragma once

#include <cstdint>
#include <string>

#include "tools/bench/options.h"

namespace meshmq::bench {

struct LatencySummary {
  std::uint64_t count = 0;
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0, mean_us = 0;
};

struct Summary {
  std::string transport;
  double duration_s = 0;  // publishing (or holding) time, from the first publish to the stop
  std::uint64_t connections_target = 0;
  std::uint64_t connections_ready = 0;
  std::uint64_t connect_errors = 0;
  std::uint64_t subscribe_errors = 0;
  std::uint64_t connections_lost = 0;
  double connect_phase_s = 0;
  LatencySummary connect_time;

  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  std::uint64_t sent_qos = 0;
  std::uint64_t received = 0;
  std::uint64_t expected = 0;
  double sent_rate = 0;      // msg/s over duration_s
  double received_rate = 0;  // msg/s over duration_s (deliveries drained afterwards not included)

  LatencySummary latency;
  std::uint64_t lost = 0;
  std::string lost_basis;  // "expected", "gaps" or "none"
  std::uint64_t duplicated = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t foreign = 0;
};

std::string to_json(const Options& options, const Plan& plan, const Summary& summary);

}  // namespace meshmq::bench
