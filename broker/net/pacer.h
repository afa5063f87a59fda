// When a busy worker polls again. perf on the benchmark VM shows where the broker's CPU goes at
// moderate rates: the sleep in epoll_wait and the switch back (finish_task_switch) and one recv,
// with the TCP ACK it sends, per packet. A worker that polls as soon as its pass is over sleeps
// and wakes once per packet or two; each wakeup costs more than the broker's own work for a
// message. So while events keep coming (a pass starts less than two windows after the previous
// one), the worker pauses after the pass until one window (broker.batch_window_us) after its
// start, and the next poll takes everything that arrived meanwhile: one wakeup, and several
// packets per recv.
//
// A pause delays reading by at most one window, never writing: the pass has flushed its output
// before it. Two things switch it off, because waiting would cost more than it saves:
//  - pauses after which the pass read fewer than kMinPackets packets on average (a moving average
//    over the last few pauses: traffic too sparse to gather): no pauses for kCooldown;
//  - a message that had to queue for a connected client behind a queue already one inflight
//    window deep (core counts them in WorkerCounters::backlog_waits): more is waiting than one
//    round trip of acknowledgements carries, so they are what limits throughput and are read at
//    once, for kHurry. A window that is merely full says nothing of the kind: at a high rate
//    every window fills between passes, and the next round trip empties it whether or not the
//    worker paused first (reacting to those cost fan-in QoS 1 most of its pauses in perf).
// A quiet worker never pauses: the first packet after a silence is read as soon as it arrives.
//
// Pure logic with the clock passed in, so it is tested without sleeping.
#pragma once

#include <chrono>
#include <cstdint>

namespace meshmq::net {

class Pacer {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::uint64_t kMinPackets = 3;
  static constexpr Clock::duration kCooldown = std::chrono::seconds(1);
  static constexpr Clock::duration kHurry = std::chrono::milliseconds(10);

  explicit Pacer(std::chrono::microseconds window = {}) : window_(window) {}

  // A pass that dispatches events starts; `packets` is the worker's running total of packets read
  // from clients.
  void pass_started(Clock::time_point now, std::uint64_t packets);
  // The pass is over: how long to pause before the next poll, zero for none. `backlog_waits` is
  // the worker's running total of WorkerCounters::backlog_waits.
  Clock::duration pause_after(Clock::time_point now, std::uint64_t packets,
                              std::uint64_t backlog_waits);

 private:
  std::chrono::microseconds window_;
  Clock::time_point last_start_{};  // of the previous pass with events
  Clock::time_point cool_until_{};
  std::uint64_t start_packets_ = 0;
  std::uint64_t backlog_waits_ = 0;
  // Packets the recent pauses gathered, times 4 (the moving average gains 1/4 per pause). It
  // starts just above the threshold: sparse traffic cools down after two pauses (each delays a
  // message or two, which shows in a p99), while one quiet window in a busy stream does not.
  static constexpr std::uint64_t kFreshGather = 4 * kMinPackets + 3;
  static constexpr std::uint64_t kGatherCap = 64;  // one burst does not buy many quiet pauses
  std::uint64_t gathered_q_ = kFreshGather;
  bool busy_ = false;    // this pass started less than two windows after the previous one
  bool paused_ = false;  // a pause came before this pass
};

}  // namespace meshmq::net
