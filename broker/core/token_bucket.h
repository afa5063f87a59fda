// A token bucket: `rate` tokens per second, holding at most `burst`. Used for per-client publish
// rates and per-listener connection rates. Not thread-safe: each bucket belongs to one thread.
#pragma once

#include <algorithm>
#include <chrono>

namespace meshmq::core {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate, double burst, Clock::time_point now)
      : rate_(rate), burst_(std::max(burst, 1.0)), tokens_(burst_), last_(now) {}

  // Takes one token if there is one.
  bool take(Clock::time_point now) {
    refill(now);
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Time until take() can succeed (zero if it can now).
  Clock::duration wait(Clock::time_point now) {
    refill(now);
    if (tokens_ >= 1.0) return Clock::duration::zero();
    const double seconds = (1.0 - tokens_) / rate_;
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)) +
           Clock::duration(1);
  }

 private:
  void refill(Clock::time_point now) {
    if (now <= last_) return;
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  Clock::time_point last_;
};

}  // namespace meshmq::core
