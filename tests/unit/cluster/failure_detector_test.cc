// Membership state machine on a fake clock, and the forward dedup window.
#include "broker/cluster/failure_detector.h"

#include <gtest/gtest.h>

namespace meshmq::cluster {
namespace {

using namespace std::chrono_literals;
using T = FailureDetector::Clock::time_point;

TEST(FailureDetector, SilentNodeGoesDownThenIsWithdrawnAfterGrace) {
  FailureDetector d(5s, 30s);
  const T t0{};
  EXPECT_TRUE(d.heard("b", t0));  // first contact
  EXPECT_TRUE(d.tick(t0 + 4s).down.empty());
  d.heard("b", t0 + 4s);
  EXPECT_TRUE(d.tick(t0 + 8s).down.empty());  // 4 s since last heard
  auto c = d.tick(t0 + 9s);
  EXPECT_EQ(c.down, std::vector<std::string>{"b"});
  EXPECT_EQ(d.state("b"), PeerState::kDown);
  EXPECT_TRUE(d.tick(t0 + 38s).withdrawn.empty());
  EXPECT_EQ(d.tick(t0 + 39s).withdrawn, std::vector<std::string>{"b"});
  EXPECT_EQ(d.state("b"), PeerState::kWithdrawn);
  EXPECT_TRUE(d.tick(t0 + 100s).withdrawn.empty());  // reported once
}

TEST(FailureDetector, ReturningNodeComesBackUpAndNeedsASync) {
  FailureDetector d(5s, 30s);
  const T t0{};
  d.heard("b", t0);
  d.tick(t0 + 5s);
  EXPECT_TRUE(d.heard("b", t0 + 6s));  // back within the grace time
  EXPECT_EQ(d.state("b"), PeerState::kUp);
  EXPECT_FALSE(d.heard("b", t0 + 7s));  // already up
  d.tick(t0 + 12s);
  d.tick(t0 + 50s);
  EXPECT_EQ(d.state("b"), PeerState::kWithdrawn);
  EXPECT_TRUE(d.heard("b", t0 + 60s));  // rejoin after withdrawal
}

TEST(FailureDetector, ZeroGraceWithdrawsOnTheSameTick) {
  FailureDetector d(1s, 0s);
  d.heard("b", T{});
  auto c = d.tick(T{} + 1s);
  EXPECT_EQ(c.down, std::vector<std::string>{"b"});
  EXPECT_EQ(c.withdrawn, std::vector<std::string>{"b"});
}

TEST(FailureDetector, NodesAreIndependent) {
  FailureDetector d(5s, 30s);
  d.heard("b", T{});
  d.heard("c", T{} + 3s);
  EXPECT_EQ(d.tick(T{} + 6s).down, std::vector<std::string>{"b"});
  EXPECT_EQ(d.state("c"), PeerState::kUp);
  EXPECT_EQ(d.state("unknown"), PeerState::kWithdrawn);
}

TEST(FailureDetector, LeftNodeIsNeitherUpNorFailedUntilItRestarts) {
  FailureDetector d(5s, 30s);
  const T t0{};
  d.heard("b", t0);
  d.heard("c", t0);
  d.left("b", t0 + 1s);
  EXPECT_EQ(d.state("b"), PeerState::kLeft);
  EXPECT_FALSE(d.heard("b", t0 + 2s));  // its last frames while it finishes
  EXPECT_EQ(d.state("b"), PeerState::kLeft);
  d.heard("c", t0 + 100s);
  auto c = d.tick(t0 + 100s);  // long silent: still not reported down or withdrawn
  EXPECT_TRUE(c.down.empty());
  EXPECT_TRUE(c.withdrawn.empty());
  const auto counts = d.counts();
  EXPECT_EQ(counts.up, 1u);
  EXPECT_EQ(counts.down, 0u);
  EXPECT_EQ(counts.left, 1u);
  EXPECT_FALSE(d.rejoined("c", t0 + 101s));  // only a left node rejoins
  EXPECT_TRUE(d.rejoined("b", t0 + 101s));   // a new process under the same name
  EXPECT_EQ(d.state("b"), PeerState::kUp);
  d.heard("c", t0 + 106s);
  EXPECT_EQ(d.tick(t0 + 106s).down, std::vector<std::string>{"b"});  // failure detection again
}

struct DedupCase {
  const char* name;
  std::vector<std::tuple<std::string, std::uint64_t, std::uint64_t>> in;  // origin, inc, id
  std::vector<bool> accepted;
};

class DedupCases : public ::testing::TestWithParam<DedupCase> {};

TEST_P(DedupCases, RetriedForwardsAreDeliveredOnce) {
  const DedupCase& c = GetParam();
  DedupWindow w;
  for (std::size_t i = 0; i < c.in.size(); ++i) {
    auto& [origin, inc, id] = c.in[i];
    EXPECT_EQ(w.accept(origin, inc, id), c.accepted[i]) << c.name << " #" << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Table, DedupCases,
    ::testing::Values(
        DedupCase{"in order", {{"a", 1, 1}, {"a", 1, 2}, {"a", 1, 3}}, {true, true, true}},
        DedupCase{"resend after reconnect",
                  {{"a", 1, 1}, {"a", 1, 2}, {"a", 1, 1}, {"a", 1, 2}, {"a", 1, 3}},
                  {true, true, false, false, true}},
        DedupCase{"origin restarted: new sequence",
                  {{"a", 1, 1}, {"a", 1, 2}, {"a", 2, 1}, {"a", 2, 2}},
                  {true, true, true, true}},
        DedupCase{"origins are independent",
                  {{"a", 1, 5}, {"b", 1, 1}, {"a", 1, 5}},
                  {true, true, false}}));

}  // namespace
}  // namespace meshmq::cluster
