#include "broker/net/deadline_wheel.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

namespace meshmq::net {
namespace {

using Clock = DeadlineWheel::Clock;
using std::chrono::milliseconds;
using std::chrono::seconds;

struct Probe final : DeadlineWheel::Entry {
  int fired = 0;
  std::function<void()> then;
  void on_deadline() override {
    ++fired;
    if (then) then();
  }
};

TEST(DeadlineWheel, FiresOnlyOnceTheDeadlinePassed) {
  DeadlineWheel wheel;
  Probe p;
  const auto t0 = Clock::now();
  wheel.schedule(p, t0 + milliseconds(350));
  wheel.advance(t0 + milliseconds(300));
  EXPECT_EQ(p.fired, 0);
  wheel.advance(t0 + milliseconds(450));
  EXPECT_EQ(p.fired, 1);
  EXPECT_FALSE(p.scheduled());
  wheel.advance(t0 + seconds(2));
  EXPECT_EQ(p.fired, 1);
}

TEST(DeadlineWheel, CancelledAndDestroyedEntriesNeverFire) {
  DeadlineWheel wheel;
  Probe cancelled;
  auto destroyed = std::make_unique<Probe>();
  const auto t0 = Clock::now();
  wheel.schedule(cancelled, t0 + milliseconds(100));
  wheel.schedule(*destroyed, t0 + milliseconds(100));
  wheel.cancel(cancelled);
  destroyed.reset();
  wheel.advance(t0 + seconds(1));
  EXPECT_EQ(cancelled.fired, 0);
}

TEST(DeadlineWheel, DeadlinesBeyondOneTurnWaitForTheirTurn) {
  DeadlineWheel wheel;
  Probe p;
  const auto t0 = Clock::now();
  wheel.schedule(p, t0 + seconds(120));  // more than two turns of 51.2 s
  for (int ms = 0; ms < 119'000; ms += 100) wheel.advance(t0 + milliseconds(ms));
  EXPECT_EQ(p.fired, 0);
  wheel.advance(t0 + milliseconds(120'100));
  EXPECT_EQ(p.fired, 1);
}

TEST(DeadlineWheel, RescheduleFromInsideTheCallback) {
  DeadlineWheel wheel;
  Probe p;
  const auto t0 = Clock::now();
  p.then = [&] {
    if (p.fired < 3) wheel.schedule(p, t0 + milliseconds(100 * (p.fired + 1) * 2));
  };
  wheel.schedule(p, t0 + milliseconds(100));
  for (int ms = 0; ms <= 2000; ms += 100) wheel.advance(t0 + milliseconds(ms));
  EXPECT_EQ(p.fired, 3);
}

TEST(DeadlineWheel, ADeadlineInThePastFiresOnTheNextAdvance) {
  DeadlineWheel wheel;
  Probe p;
  const auto t0 = Clock::now();
  wheel.advance(t0 + seconds(5));
  wheel.schedule(p, t0);
  wheel.advance(t0 + seconds(5) + milliseconds(100));
  EXPECT_EQ(p.fired, 1);
}

}  // namespace
}  // namespace meshmq::net
