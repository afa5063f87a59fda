#include "broker/net/pacer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace meshmq::net {
namespace {

using std::chrono::microseconds;

// One pass: when it starts and ends (us after t0), the worker's packet total at its start and
// end, the backlog-wait total at its end, and the pause expected after it (us).
struct Pass {
  long start_us;
  long end_us;
  std::uint64_t packets_before;
  std::uint64_t packets_after;
  std::uint64_t backlog_waits;
  long pause_us;
};

struct Case {
  std::string name;
  long window_us;
  std::vector<Pass> passes;
};

class PacerCase : public ::testing::TestWithParam<Case> {};

TEST_P(PacerCase, PausesAsExpected) {
  const Case& c = GetParam();
  Pacer pacer{microseconds(c.window_us)};
  const auto t0 = Pacer::Clock::now();
  for (std::size_t i = 0; i < c.passes.size(); ++i) {
    const Pass& p = c.passes[i];
    pacer.pass_started(t0 + microseconds(p.start_us), p.packets_before);
    const auto pause =
        pacer.pause_after(t0 + microseconds(p.end_us), p.packets_after, p.backlog_waits);
    EXPECT_EQ(std::chrono::duration_cast<microseconds>(pause).count(), p.pause_us) << "pass " << i;
  }
}

constexpr long kMs = 1000;

INSTANTIATE_TEST_SUITE_P(
    Pacer, PacerCase,
    ::testing::Values(
        Case{"ZeroWindowNeverPauses", 0, {{0, 10, 0, 5, 0, 0}, {20, 30, 5, 10, 0, 0}}},
        Case{"QuietWorkerReadsAtOnce",
             200,
             // More than two windows apart: each packet is read as soon as it comes.
             {{0, 10, 0, 1, 0, 0}, {500, 510, 1, 2, 0, 0}, {1100, 1110, 2, 3, 0, 0}}},
        Case{"BusyWorkerPollsOncePerWindow",
             200,
             {{0, 10, 0, 1, 0, 0},
              // 50 us after the previous pass: pause until one window after this one's start.
              {50, 70, 1, 3, 0, 180},
              // The pause gathered 6 packets: keep pausing.
              {250, 300, 3, 9, 0, 150},
              {450, 480, 9, 15, 0, 170}}},
        Case{"PassLongerThanAWindowPollsAtOnce",
             200,
             {{0, 10, 0, 1, 0, 0}, {100, 350, 1, 40, 0, 0}, {350, 400, 40, 60, 0, 150}}},
        Case{"SparsePausesCoolDown",
             200,
             {{0, 10, 0, 1, 0, 0},
              {100, 110, 1, 2, 0, 190},
              // Each pause gathers 1 packet: the moving average falls below 3 after two.
              {300, 310, 2, 3, 0, 190},
              {500, 510, 3, 4, 0, 0},
              // Cooling down (kCooldown, 1 s): no pauses however busy.
              {600, 610, 4, 5, 0, 0},
              {500 * kMs, 500 * kMs + 10, 5, 6, 0, 0},
              {500 * kMs + 100, 500 * kMs + 110, 6, 7, 0, 0},
              // Cooled down: busy again, pauses again.
              {1100 * kMs, 1100 * kMs + 10, 7, 8, 0, 0},
              {1100 * kMs + 100, 1100 * kMs + 110, 8, 9, 0, 190}}},
        Case{"OneQuietWindowDoesNotStopPausing",
             200,
             {{0, 10, 0, 1, 0, 0},
              {100, 110, 1, 2, 0, 190},
              // Bursts: pauses gather 10, 0, 10, 0, ... packets; 5 on average.
              {300, 310, 2, 12, 0, 190},
              {500, 510, 12, 12, 0, 190},
              {700, 710, 12, 22, 0, 190},
              {900, 910, 22, 22, 0, 190},
              {1100, 1110, 22, 32, 0, 190},
              {1300, 1310, 32, 32, 0, 190}}},
        Case{"BacklogWaitsReadAcknowledgementsAtOnce",
             200,
             {{0, 10, 0, 1, 0, 0},
              {100, 110, 1, 5, 0, 190},
              // A message queued behind a window-deep backlog: no pauses for kHurry (10 ms).
              {300, 310, 5, 12, 1, 0},
              {400, 410, 12, 20, 1, 0},
              {5 * kMs, 5 * kMs + 10, 20, 30, 2, 0},
              {14 * kMs, 14 * kMs + 10, 30, 40, 2, 0},
              // 10 ms after the last backlog wait: pausing again.
              {16 * kMs, 16 * kMs + 10, 40, 50, 2, 0},
              {16 * kMs + 100, 16 * kMs + 110, 50, 60, 2, 190}}}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace meshmq::net
