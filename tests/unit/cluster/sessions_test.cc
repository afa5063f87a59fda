// Arbitration of one client id claimed on several nodes (broker/cluster/sessions.h): the verdict
// table for an incoming claim, and simulated simultaneous CONNECTs on two and three nodes with
// every message delivery order a seeded shuffle produces: exactly one claim wins, and the session
// a third node held ends with the winner.
#include "broker/cluster/sessions.h"

#include <gtest/gtest.h>

#include <deque>
#include <map>
#include <random>

namespace meshmq::cluster {
namespace {

using Verdict = SessionClaims::Verdict;
using Clock = SessionClaims::Clock;
const Clock::time_point kNow{};
const Clock::time_point kLater = kNow + std::chrono::seconds(3);

struct VerdictCase {
  const char* name;
  std::uint64_t own_pending;  // 0 = none; else our claim's wall clock (its version counter)
  std::uint64_t own_won;      // 0 = none; a claim of ours that won earlier (settled)
  std::uint64_t served;       // 0 = none; a remote claim we handed over to earlier ("x")
  std::uint64_t incoming;     // the incoming claim's counter, from node "b"
  Verdict expected;
  bool pending_lost;
};

class VerdictTable : public ::testing::TestWithParam<VerdictCase> {};

TEST_P(VerdictTable, IncomingClaim) {
  const VerdictCase& c = GetParam();
  SessionClaims a("a");
  if (c.own_won != 0) {
    a.begin("id", false, {}, kLater, c.own_won);
    auto f = a.take_finished(kNow);
    ASSERT_EQ(f.size(), 1u);
    a.settle(f[0].id);
  }
  if (c.served != 0) {
    ASSERT_EQ(a.on_remote_claim("id", {c.served, "x"}).verdict, Verdict::kHandOver);
  }
  std::uint64_t pending = 0;
  if (c.own_pending != 0) pending = a.begin("id", false, {"b"}, kLater, c.own_pending);
  const auto v = a.on_remote_claim("id", {c.incoming, "b"});
  EXPECT_EQ(v.verdict, c.expected);
  if (pending != 0) {
    a.on_answer(pending, "b", false, {0, "b"}, std::nullopt);
    auto f = a.take_finished(kNow);
    ASSERT_EQ(f.size(), 1u);
    EXPECT_EQ(f[0].lost, c.pending_lost);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, VerdictTable,
    ::testing::Values(
        VerdictCase{"nothing_here", 0, 0, 0, 100, Verdict::kHandOver, false},
        VerdictCase{"our_pending_claim_is_higher", 200, 0, 0, 100, Verdict::kConflict, false},
        VerdictCase{"our_pending_claim_is_lower", 100, 0, 0, 200, Verdict::kDefer, true},
        VerdictCase{"same_counter_higher_name_wins", 100, 0, 0, 100, Verdict::kDefer, true},
        VerdictCase{"our_won_claim_is_newer", 0, 300, 0, 200, Verdict::kConflict, false},
        VerdictCase{"our_won_claim_is_older", 0, 100, 0, 200, Verdict::kHandOver, false},
        VerdictCase{"served_a_newer_claim", 0, 0, 300, 200, Verdict::kConflict, false},
        VerdictCase{"served_an_older_claim", 0, 0, 100, 200, Verdict::kHandOver, false}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(SessionClaims, ClockPassesEveryVersionSeen) {
  SessionClaims a("a");
  a.observe({5000, "b"});
  const auto id = a.begin("id", false, {}, kLater, 10);
  EXPECT_EQ(a.version(id), (ClaimVersion{5001, "a"}));
  const auto id2 = a.begin("id2", false, {}, kLater, 9000);  // the wall clock is ahead
  EXPECT_EQ(a.version(id2), (ClaimVersion{9000, "a"}));
}

TEST(SessionClaims, SilentPeerTimesOutAndFinishingClaimDefersOthersUntilSettled) {
  SessionClaims a("a");
  const auto id = a.begin("id", false, {"b", "c"}, kLater, 100);
  a.on_answer(id, "b", false, {0, "b"}, std::nullopt);
  EXPECT_TRUE(a.take_finished(kNow).empty());
  auto f = a.take_finished(kLater);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].silent, std::vector<std::string>{"c"});
  EXPECT_FALSE(f[0].lost);
  // Not settled yet (the core is registering the session): a higher claim waits, and does not
  // turn the finished claim into a lost one.
  EXPECT_EQ(a.on_remote_claim("id", {500, "b"}).verdict, Verdict::kDefer);
  a.settle(id);
  EXPECT_FALSE(a.busy("id"));
  EXPECT_EQ(a.on_remote_claim("id", {500, "b"}).verdict, Verdict::kHandOver);
  EXPECT_FALSE(a.on_answer(id, "c", false, {0, "c"}, std::nullopt));  // late
}

TEST(SessionClaims, PartitionDuplicatesKeepTheHigherVersion) {
  SessionClaims a("a"), b("b");
  EXPECT_EQ(a.held_version("restored"), (ClaimVersion{0, "a"}));
  const auto ia = a.begin("id", false, {}, kLater, 100);
  a.take_finished(kNow);
  a.settle(ia);
  const auto ib = b.begin("id", false, {}, kLater, 200);
  b.take_finished(kNow);
  b.settle(ib);
  EXPECT_TRUE(SessionClaims::loses(a.held_version("id"), b.held_version("id")));
  EXPECT_FALSE(SessionClaims::loses(b.held_version("id"), a.held_version("id")));
  // Restored on both sides (no claim): the node name decides, the same way on both.
  EXPECT_TRUE(SessionClaims::loses(a.held_version("r"), b.held_version("r")));
  EXPECT_FALSE(SessionClaims::loses(b.held_version("r"), a.held_version("r")));
}

// --- simulated network: claims and answers between nodes, delivered in a seeded random order ---

struct Msg {
  std::string from, to;
  bool is_claim;
  std::uint64_t id;  // the claimer's claim id
  ClaimVersion version;
  bool conflict = false;
  bool carries_session = false;
};

struct Sim {
  std::map<std::string, SessionClaims> nodes;
  std::map<std::string, std::uint64_t> claim_of;    // node -> its claim id
  std::map<std::string, bool> holds;                // node -> holds the session
  std::map<std::string, std::vector<Msg>> waiting;  // deferred incoming claims per node
  std::map<std::string, bool> carried;              // a lost claim got the session
  std::map<std::string, bool> result_lost;
  std::deque<Msg> net;

  void answer_claim(const std::string& at, const Msg& m) {
    auto& n = nodes.at(at);
    const auto v = n.on_remote_claim("id", m.version);
    if (v.verdict == Verdict::kDefer) {
      waiting[at].push_back(m);
      return;
    }
    Msg a{at, m.from, false, m.id, v.ours};
    if (v.verdict == Verdict::kConflict) {
      a.conflict = true;
    } else {
      a.version = m.version;
      a.carries_session = holds[at] || carried[at];
      holds[at] = carried[at] = false;
    }
    net.push_back(a);
  }
  void finish(const std::string& at) {
    auto& n = nodes.at(at);
    for (auto& f : n.take_finished(kNow)) {
      result_lost[at] = f.lost;
      if (f.lost) {
        carried[at] = carried[at] || f.session.has_value();
      } else {
        holds[at] = true;
      }
      n.settle(f.id);
      auto w = std::move(waiting[at]);
      waiting[at].clear();
      std::sort(w.begin(), w.end(),
                [](const Msg& x, const Msg& y) { return y.version < x.version; });
      for (const Msg& m : w) answer_claim(at, m);
    }
  }
  void run(std::uint32_t seed) {
    std::mt19937 rng(seed);
    while (!net.empty()) {
      std::uniform_int_distribution<std::size_t> pick(0, net.size() - 1);
      const std::size_t i = pick(rng);
      Msg m = net[i];
      net.erase(net.begin() + static_cast<std::ptrdiff_t>(i));
      if (m.is_claim) {
        answer_claim(m.to, m);
      } else {
        std::optional<SessionClaims::Snapshot> s;
        if (m.carries_session) {
          s.emplace();
          s->client_id = "id";
        }
        nodes.at(m.to).on_answer(m.id, m.from, m.conflict, m.version, std::move(s));
        finish(m.to);
      }
    }
  }
};

struct SimCase {
  const char* name;
  std::vector<std::string> claimers;  // simultaneous CONNECTs (same wall clock unless `clocks`)
  std::vector<std::uint64_t> clocks;
  std::string holder;  // node that holds the session before ("" = none)
};

class Simultaneous : public ::testing::TestWithParam<SimCase> {};

TEST_P(Simultaneous, ExactlyOneClaimWinsAndGetsTheSession) {
  const SimCase& c = GetParam();
  for (std::uint32_t seed = 0; seed < 300; ++seed) {
    Sim sim;
    const std::vector<std::string> all{"a", "b", "c"};
    for (const auto& n : all) sim.nodes.emplace(n, SessionClaims(n));
    if (!c.holder.empty()) sim.holds[c.holder] = true;
    for (std::size_t i = 0; i < c.claimers.size(); ++i) {
      const std::string& n = c.claimers[i];
      std::vector<std::string> peers;
      for (const auto& p : all) {
        if (p != n) peers.push_back(p);
      }
      const auto id = sim.nodes.at(n).begin("id", false, peers, kLater, c.clocks[i]);
      sim.claim_of[n] = id;
      for (const auto& p : peers) {
        sim.net.push_back({n, p, true, id, sim.nodes.at(n).version(id)});
      }
    }
    sim.run(seed);
    int winners = 0, holders = 0;
    for (const auto& n : c.claimers) {
      ASSERT_TRUE(sim.result_lost.contains(n))
          << "claim of " << n << " never finished, seed " << seed;
      if (!sim.result_lost[n]) ++winners;
    }
    for (const auto& n : all) {
      if (sim.holds[n]) ++holders;
      EXPECT_FALSE(sim.carried[n]) << n << " kept a session for a lost claim, seed " << seed;
    }
    EXPECT_EQ(winners, 1) << "seed " << seed;
    EXPECT_EQ(holders, 1) << "seed " << seed;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, Simultaneous,
    ::testing::Values(SimCase{"two_nodes_same_clock", {"a", "b"}, {100, 100}, ""},
                      SimCase{"two_nodes_holder_is_one_of_them", {"a", "b"}, {100, 100}, "a"},
                      SimCase{"two_nodes_different_clocks", {"a", "b"}, {200, 100}, "b"},
                      SimCase{"third_node_holds_it", {"a", "b"}, {100, 100}, "c"},
                      SimCase{"three_claimers", {"a", "b", "c"}, {100, 100, 100}, "c"}),
    [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace meshmq::cluster
