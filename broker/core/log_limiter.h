// Rate-limited warnings for events a client can trigger at will (a denied publish, a limit that
// bites): an attacker must not be able to flood the log. Each kind of event gets one LogLimiter;
// at most `per_interval` lines per interval are written, and the next line written says how many
// were suppressed. The counters in WorkerCounters still count every event.
//
// Thread-safe; touched only when an event happens, never on the normal publish path.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace meshmq::core {

class LogLimiter {
 public:
  explicit LogLimiter(std::uint32_t per_interval = 10,
                      std::chrono::seconds interval = std::chrono::seconds(10))
      : per_interval_(per_interval), interval_ms_(interval.count() * 1000) {}

  // True if this event may be logged; `suppressed` is then the number of events dropped from the
  // log since the last line that was written.
  bool allow(std::uint64_t& suppressed) {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    std::int64_t start = window_start_.load(std::memory_order_relaxed);
    if (now - start >= interval_ms_ &&
        window_start_.compare_exchange_strong(start, now, std::memory_order_relaxed)) {
      in_window_.store(0, std::memory_order_relaxed);
    }
    if (in_window_.fetch_add(1, std::memory_order_relaxed) < per_interval_) {
      suppressed = suppressed_.exchange(0, std::memory_order_relaxed);
      return true;
    }
    suppressed_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

 private:
  const std::uint32_t per_interval_;
  const std::int64_t interval_ms_;
  std::atomic<std::int64_t> window_start_{INT64_MIN / 2};
  std::atomic<std::uint32_t> in_window_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace meshmq::core

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <string>
#include <utility>

namespace meshmq::core {

// spdlog::warn through `limiter`.
template <class... Args>
void warn_limited(LogLimiter& limiter, fmt::format_string<Args...> format, Args&&... args) {
  std::uint64_t suppressed = 0;
  if (!limiter.allow(suppressed)) return;
  std::string line = fmt::format(format, std::forward<Args>(args)...);
  if (suppressed != 0) line += fmt::format(" ({} similar lines suppressed)", suppressed);
  spdlog::warn("{}", line);
}

}  // namespace meshmq::core
