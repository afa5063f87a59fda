#include "broker/net/pacer.h"

#include <algorithm>

namespace meshmq::net {

void Pacer::pass_started(Clock::time_point now, std::uint64_t packets) {
  busy_ = last_start_ != Clock::time_point{} && now - last_start_ < 2 * window_;
  last_start_ = now;
  start_packets_ = packets;
}

Pacer::Clock::duration Pacer::pause_after(Clock::time_point now, std::uint64_t packets,
                                          std::uint64_t backlog_waits) {
  if (window_.count() == 0) return {};
  if (paused_) {
    // One quiet window says little (clients send in bursts): judge pauses by a moving average
    // of what they gathered, in quarters of a packet.
    paused_ = false;
    const std::uint64_t got = std::min<std::uint64_t>(packets - start_packets_, kGatherCap);
    gathered_q_ = gathered_q_ - gathered_q_ / 4 + got;
    if (gathered_q_ < 4 * kMinPackets) {
      cool_until_ = now + kCooldown;
      gathered_q_ = kFreshGather;
    }
  }
  if (backlog_waits != backlog_waits_) {
    backlog_waits_ = backlog_waits;
    cool_until_ = std::max(cool_until_, now + kHurry);
  }
  if (!busy_ || now < cool_until_) return {};
  const Clock::time_point next_poll = last_start_ + window_;
  if (next_poll <= now) return {};  // the pass itself took a window: poll at once
  paused_ = true;
  return next_poll - now;
}

}  // namespace meshmq::net
