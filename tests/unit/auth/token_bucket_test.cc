// The token bucket behind limits.publish_rate and listeners.*.connect_rate.
#include "broker/core/token_bucket.h"

#include <gtest/gtest.h>

namespace meshmq::core {
namespace {

using std::chrono::milliseconds;

TEST(TokenBucket, BurstThenRate) {
  const auto t0 = TokenBucket::Clock::time_point{} + std::chrono::hours(1);
  TokenBucket b(10, 3, t0);  // 10/s, burst 3
  struct Step {
    int at_ms;
    bool taken;
  };
  const Step steps[] = {
      {0, true},    {0, true},    {0, true},  // the burst
      {0, false},   {50, false},              // half a token
      {100, true},  {100, false},             // one token per 100 ms
      {250, true},  {250, false},             // 1.5 tokens accrued, one left over half
      {300, true},  {2000, true},             // long idle: refills to the burst, no more
      {2000, true}, {2000, true}, {2000, false},
  };
  for (const Step& s : steps) {
    EXPECT_EQ(b.take(t0 + milliseconds(s.at_ms)), s.taken) << "at " << s.at_ms << " ms";
  }
}

TEST(TokenBucket, WaitIsTimeToNextToken) {
  const auto t0 = TokenBucket::Clock::time_point{} + std::chrono::hours(1);
  TokenBucket b(4, 1, t0);  // one token every 250 ms
  EXPECT_EQ(b.wait(t0), TokenBucket::Clock::duration::zero());
  EXPECT_TRUE(b.take(t0));
  const auto w = b.wait(t0 + milliseconds(100));
  EXPECT_GE(w, milliseconds(150));
  EXPECT_LE(w, milliseconds(151));
  EXPECT_FALSE(b.take(t0 + milliseconds(249)));
  EXPECT_TRUE(b.take(t0 + milliseconds(251)));
}

TEST(TokenBucket, ClockGoingBackwardsAddsNothing) {
  const auto t0 = TokenBucket::Clock::time_point{} + std::chrono::hours(1);
  TokenBucket b(1, 1, t0);
  EXPECT_TRUE(b.take(t0));
  EXPECT_FALSE(b.take(t0 - milliseconds(5000)));
  EXPECT_FALSE(b.take(t0 + milliseconds(500)));
}

}  // namespace
}  // namespace meshmq::core
