// Process figures from /proc/self (Linux): CPU time, resident and virtual memory, open and
// maximum file descriptors, threads, start time.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "broker/core/metrics.h"

namespace meshmq::ops {

struct ProcessStat {
  double cpu_seconds = 0;         // utime + stime
  double start_time_seconds = 0;  // since the epoch
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  std::uint64_t threads = 0;
};

// Parses the contents of /proc/<pid>/stat; nullopt if malformed. `boot_time` is /proc/stat btime.
std::optional<ProcessStat> parse_proc_stat(std::string_view stat, double boot_time_seconds,
                                           long ticks_per_second, long page_size);

void add_process_metrics(core::MetricsRegistry& registry);

}  // namespace meshmq::ops
