// stall-watch: tells whether a core stopped running anything at all, independently of what runs
// on it. One thread per watched core sleeps a short interval again and again; a wakeup that comes
// far later than asked (20 ms by default against an interval of 2 ms) means no task could run on
// that core meanwhile. A busy broker cannot cause that: the watcher is an ordinary task, which
// the scheduler lets run within a few milliseconds, so such a gap is the machine's (on the
// benchmark VM, the host not running a virtual CPU for ~100 ms; README "Rounds").
//
// compare.sh runs it beside each latency run on the broker's and the tool's cores, and counts a
// run as having a stall of the VM when it reports a gap, whatever the broker's latency was.
//
//   stall-watch --cpus 1,0 [--interval-us 2000] [--gap-ms 20] [-d SECONDS]
// Runs until SIGTERM or SIGINT (or for SECONDS), then prints one JSON line (start_ns and at_ns
// on CLOCK_MONOTONIC, the clock of meshmq-bench's send times; at_s from the start):
//   {"cpus":[1,0],"interval_us":2000,"gap_ms":20,"start_ns":81234567890,"watched_s":13.52,
//    "gaps":[{"cpu":1,"at_s":5.310,"at_ns":81239877890,"ms":101.0}]}
#include <pthread.h>
#include <signal.h>
#include <time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "tools/bench/cores.h"
#include "tools/bench/payload.h"

namespace {

using meshmq::bench::now_ns;

struct Gap {
  int cpu;
  std::uint64_t from_ns;  // the last on-time wakeup before it
  std::uint64_t length_ns;
};

std::vector<Gap> watch(int cpu, std::uint64_t interval_ns, std::uint64_t gap_ns,
                       const std::atomic<bool>& stop) {
  meshmq::bench::pin_to_core(cpu);
  std::vector<Gap> gaps;
  const timespec nap{0, static_cast<long>(interval_ns)};
  std::uint64_t last = now_ns();
  while (!stop.load(std::memory_order_relaxed)) {
    ::clock_nanosleep(CLOCK_MONOTONIC, 0, &nap, nullptr);
    const std::uint64_t t = now_ns();
    if (t - last >= gap_ns) gaps.push_back({cpu, last, t - last});
    last = t;
  }
  return gaps;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> cpus;
  std::uint64_t interval_us = 2000;
  double gap_ms = 20;
  double seconds = 0;
  CLI::App app{
      "Reports when a core ran nothing at all for a while (a stall of the machine), by sleeping "
      "a short interval on each watched core"};
  app.add_option("--cpus", cpus, "cores to watch")->required()->delimiter(',');
  app.add_option("--interval-us", interval_us, "sleep between clock reads")
      ->check(CLI::Range(100, 999'999));
  app.add_option("--gap-ms", gap_ms, "report wakeups this much apart or more")
      ->check(CLI::PositiveNumber);
  app.add_option("-d,--duration", seconds, "stop after SECONDS (default: at SIGTERM/SIGINT)")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);

  // Blocked in every thread: only sigtimedwait below takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::uint64_t start = now_ns();
  std::atomic<bool> stop{false};
  std::vector<std::vector<Gap>> found(cpus.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < cpus.size(); ++i) {
    threads.emplace_back([&, i] {
      found[i] = watch(cpus[i], interval_us * 1000, static_cast<std::uint64_t>(gap_ms * 1e6), stop);
    });
  }
  if (seconds > 0) {
    const auto ns = static_cast<std::uint64_t>(seconds * 1e9);
    const timespec limit{static_cast<time_t>(ns / 1'000'000'000),
                         static_cast<long>(ns % 1'000'000'000)};
    while (sigtimedwait(&stop_signals, nullptr, &limit) < 0 && errno == EINTR) {
    }
  } else {
    int sig = 0;
    sigwait(&stop_signals, &sig);
  }
  stop = true;
  for (auto& t : threads) t.join();
  const double watched_s = static_cast<double>(now_ns() - start) / 1e9;

  std::vector<Gap> gaps;
  for (auto& f : found) gaps.insert(gaps.end(), f.begin(), f.end());
  std::sort(gaps.begin(), gaps.end(),
            [](const Gap& a, const Gap& b) { return a.from_ns < b.from_ns; });
  std::printf("{\"cpus\":[");
  for (std::size_t i = 0; i < cpus.size(); ++i) std::printf("%s%d", i ? "," : "", cpus[i]);
  std::printf(
      "],\"interval_us\":%llu,\"gap_ms\":%g,\"start_ns\":%llu,\"watched_s\":%.2f,\"gaps\":[",
      static_cast<unsigned long long>(interval_us), gap_ms, static_cast<unsigned long long>(start),
      watched_s);
  for (std::size_t i = 0; i < gaps.size(); ++i) {
    std::printf("%s{\"cpu\":%d,\"at_s\":%.3f,\"at_ns\":%llu,\"ms\":%.1f}", i ? "," : "",
                gaps[i].cpu, static_cast<double>(gaps[i].from_ns - start) / 1e9,
                static_cast<unsigned long long>(gaps[i].from_ns),
                static_cast<double>(gaps[i].length_ns) / 1e6);
  }
  std::printf("]}\n");
  return 0;
}
