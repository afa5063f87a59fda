#include "broker/ops/process_metrics.h"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace meshmq::ops {

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

double boot_time() {
  std::istringstream in(read_file("/proc/stat"));
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(1 << 20, '\n');
  }
  return 0;
}

std::uint64_t count_fds() {
  std::error_code ec;
  std::uint64_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return n > 0 ? n - 1 : 0;  // the directory iterator's own descriptor
}

}  // namespace

std::optional<ProcessStat> parse_proc_stat(std::string_view stat, double boot_time_seconds,
                                           long ticks_per_second, long page_size) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so fields start after the
  // last ')'. Field 3 (state) is then the first.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<std::string_view> fields;
  std::string_view rest = stat.substr(close + 1);
  while (!rest.empty()) {
    const auto start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const auto end = rest.find_first_of(" \n");
    fields.push_back(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  }
  auto field = [&](std::size_t number) -> std::optional<std::uint64_t> {  // proc(5) numbering
    const std::size_t i = number - 3;
    if (i >= fields.size()) return std::nullopt;
    std::uint64_t v = 0;
    auto [p, ec] = std::from_chars(fields[i].data(), fields[i].data() + fields[i].size(), v);
    if (ec != std::errc() || p != fields[i].data() + fields[i].size()) return std::nullopt;
    return v;
  };
  auto utime = field(14), stime = field(15), threads = field(20), start = field(22),
       vsize = field(23), rss = field(24);
  if (!utime || !stime || !threads || !start || !vsize || !rss) return std::nullopt;
  ProcessStat s;
  const auto ticks = static_cast<double>(ticks_per_second);
  s.cpu_seconds = static_cast<double>(*utime + *stime) / ticks;
  s.start_time_seconds = boot_time_seconds + static_cast<double>(*start) / ticks;
  s.resident_bytes = *rss * static_cast<std::uint64_t>(page_size);
  s.virtual_bytes = *vsize;
  s.threads = *threads;
  return s;
}

void add_process_metrics(core::MetricsRegistry& registry) {
  const double btime = boot_time();
  const long ticks = sysconf(_SC_CLK_TCK);
  const long page = sysconf(_SC_PAGESIZE);
  registry.add_collector([btime, ticks, page](core::Snapshot& out) {
    using core::Family;
    if (auto s = parse_proc_stat(read_file("/proc/self/stat"), btime, ticks, page)) {
      out.push_back(Family::counter("meshmq_process_cpu_seconds_total",
                                    "User and system CPU time of the broker process",
                                    {core::Sample{{}, s->cpu_seconds}}));
      out.push_back(Family::gauge("meshmq_process_resident_memory_bytes", "Resident memory (RSS)",
                                  static_cast<double>(s->resident_bytes)));
      out.push_back(Family::gauge("meshmq_process_virtual_memory_bytes", "Virtual memory size",
                                  static_cast<double>(s->virtual_bytes)));
      out.push_back(Family::gauge("meshmq_process_threads", "Threads of the broker process",
                                  static_cast<double>(s->threads)));
      out.push_back(Family::gauge("meshmq_process_start_time_seconds",
                                  "Start time of the process since the Unix epoch",
                                  s->start_time_seconds));
    }
    out.push_back(Family::gauge("meshmq_process_open_fds", "Open file descriptors",
                                static_cast<double>(count_fds())));
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
      out.push_back(Family::gauge("meshmq_process_max_fds", "Limit of open file descriptors",
                                  static_cast<double>(lim.rlim_cur)));
    }
  });
}

}  // namespace meshmq::ops
