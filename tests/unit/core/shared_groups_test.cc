// Shared subscriptions: $share/$queue parsing, the strategies, and the broker's use of them
// (one member per message, 0x80 for bad syntax, the node choice handed to the cluster layer).
#include "broker/core/shared_groups.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/unit/core/fakes.h"

namespace meshmq::testing {
namespace {

using codec::QoS;
using core::ShareKind;
using core::ShareStrategy;

struct ParseCase {
  std::string full;
  ShareKind kind;
  std::string group;
  std::string filter;
};

TEST(SharedParse, SplitsGroupAndFilter) {
  const std::vector<ParseCase> cases = {
      {"a/b", ShareKind::kNotShared, "", ""},
      {"$SYS/#", ShareKind::kNotShared, "", ""},
      {"$sharex/g/t", ShareKind::kNotShared, "", ""},
      {"$share", ShareKind::kNotShared, "", ""},
      {"$share/g/t", ShareKind::kShared, "g", "t"},
      {"$share/g/a/+/#", ShareKind::kShared, "g", "a/+/#"},
      {"$share/g/#", ShareKind::kShared, "g", "#"},
      {"$share/g//", ShareKind::kShared, "g", "/"},
      {"$share/$queue/t", ShareKind::kShared, "$queue", "t"},
      {"$queue/t/u", ShareKind::kShared, "$queue", "t/u"},
      {"$queue/#", ShareKind::kShared, "$queue", "#"},
      {"$share//t", ShareKind::kInvalid, "", ""},     // empty group
      {"$share/+/t", ShareKind::kInvalid, "", ""},    // wildcard group
      {"$share/#", ShareKind::kInvalid, "", ""},      // wildcard group, no filter
      {"$share/g+x/t", ShareKind::kInvalid, "", ""},  // '+' inside the group
      {"$share/g", ShareKind::kInvalid, "", ""},      // no filter
      {"$share/g/", ShareKind::kInvalid, "", ""},     // empty filter
      {"$share/", ShareKind::kInvalid, "", ""},
      {"$queue/", ShareKind::kInvalid, "", ""},
  };
  for (const ParseCase& c : cases) {
    core::ShareSpec spec;
    EXPECT_EQ(core::parse_share(c.full, spec), c.kind) << c.full;
    if (c.kind == ShareKind::kShared) {
      EXPECT_EQ(spec.group, c.group) << c.full;
      EXPECT_EQ(spec.filter, c.filter) << c.full;
    }
    EXPECT_EQ(core::is_share(c.full), c.kind != ShareKind::kNotShared && c.full != "$share")
        << c.full;
  }
}

TEST(SharedParse, Strategies) {
  const std::vector<std::pair<std::string, std::optional<ShareStrategy>>> cases = {
      {"random", ShareStrategy::kRandom}, {"round_robin", ShareStrategy::kRoundRobin},
      {"sticky", ShareStrategy::kSticky}, {"local_first", ShareStrategy::kLocalFirst},
      {"roundrobin", std::nullopt},       {"", std::nullopt},
  };
  for (const auto& [name, want] : cases) EXPECT_EQ(core::parse_strategy(name), want) << name;
}

// A sequence of picks over candidate lists that change between calls.
struct PickCase {
  std::string name;
  ShareStrategy strategy;
  std::vector<std::vector<std::uintptr_t>> rounds;  // candidate ids per call
  std::vector<std::uintptr_t> want;                 // chosen id per call (0: any)
};

TEST(SharedPicker, StrategiesChooseAsDocumented) {
  const std::vector<PickCase> cases = {
      {"round robin rotates",
       ShareStrategy::kRoundRobin,
       {{1, 2, 3}, {1, 2, 3}, {1, 2, 3}, {1, 2, 3}},
       {1, 2, 3, 1}},
      {"round robin survives a shrinking set",
       ShareStrategy::kRoundRobin,
       {{1, 2, 3}, {1, 2, 3}, {1, 3}, {1, 3}},
       {1, 2, 1, 3}},
      {"local_first rotates among what it is given",
       ShareStrategy::kLocalFirst,
       {{5, 6}, {5, 6}, {5, 6}},
       {5, 6, 5}},
  };
  for (const PickCase& c : cases) {
    core::Picker picker;
    std::mt19937_64 rng(7);
    for (std::size_t i = 0; i < c.rounds.size(); ++i) {
      const std::size_t idx = picker.pick(c.strategy, c.rounds[i], rng);
      ASSERT_LT(idx, c.rounds[i].size()) << c.name;
      if (c.want[i] != 0) EXPECT_EQ(c.rounds[i][idx], c.want[i]) << c.name << " call " << i;
    }
  }
}

TEST(SharedPicker, StickyKeepsItsChoiceUntilItLeaves) {
  core::Picker picker;
  std::mt19937_64 rng(1);
  std::vector<std::uintptr_t> ids = {10, 20, 30};
  const std::uintptr_t first = ids[picker.pick(ShareStrategy::kSticky, ids, rng)];
  for (int i = 0; i < 20; ++i) EXPECT_EQ(ids[picker.pick(ShareStrategy::kSticky, ids, rng)], first);
  std::erase(ids, first);
  const std::uintptr_t second = ids[picker.pick(ShareStrategy::kSticky, ids, rng)];
  EXPECT_NE(second, first);
  ids.push_back(first);  // the old choice coming back does not move it
  for (int i = 0; i < 20; ++i)
    EXPECT_EQ(ids[picker.pick(ShareStrategy::kSticky, ids, rng)], second);
}

TEST(SharedPicker, RandomReachesEveryCandidate) {
  core::Picker picker;
  std::mt19937_64 rng(3);
  const std::vector<std::uintptr_t> ids = {1, 2, 3, 4};
  std::set<std::size_t> seen;
  for (int i = 0; i < 400; ++i) seen.insert(picker.pick(ShareStrategy::kRandom, ids, rng));
  EXPECT_EQ(seen.size(), 4u);
}

// --- through the broker ---

struct FakeCluster final : core::ClusterLink {
  std::vector<std::string> added;
  std::vector<core::RemoteForward> forwards;
  void local_route_added(const std::string& f, std::function<void()> done) override {
    added.push_back(f);
    done();
  }
  void local_route_removed(const std::string&) override {}
  void forward(std::vector<core::RemoteForward>&& batch) override {
    for (auto& f : batch) forwards.push_back(std::move(f));
  }
  void retained_changed(const core::MessagePtr&) override {}
};

core::MqttOptions with_strategy(std::string s) {
  core::MqttOptions o;
  o.shared_strategy = std::move(s);
  return o;
}

TEST(SharedBroker, EachMessageGoesToOneMemberInRotation) {
  BrokerFixture f(2);
  std::vector<std::shared_ptr<FakeConnection>> members;
  for (int i = 0; i < 3; ++i) {
    members.push_back(f.connect("m" + std::to_string(i), true, i % 2));
    members.back()->receive(subscribe(1, {{"$share/g/t/+", QoS::kAtLeastOnce}}));
    f.executor.drain();
    EXPECT_EQ(members.back()->sent_of<codec::Suback>().at(0).return_codes,
              std::vector<std::uint8_t>{1});
  }
  auto pub = f.connect("pub", true, 0);
  for (int i = 0; i < 9; ++i) pub->receive(publish("t/x", std::to_string(i), QoS::kAtMostOnce));
  f.executor.drain();
  std::multiset<std::string> all;
  for (auto& m : members) {
    auto got = m->sent_of<codec::Publish>();
    EXPECT_EQ(got.size(), 3u);
    for (auto& p : got) {
      all.insert(p.payload);
      EXPECT_EQ(p.qos, QoS::kAtMostOnce);  // min(publish, subscription)
    }
  }
  EXPECT_EQ(all, (std::multiset<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8"}));
}

TEST(SharedBroker, BadSyntaxGets0x80AndRetainedAreNotSent) {
  BrokerFixture f(1);
  auto pub = f.connect("pub", true, 0);
  codec::Publish r = publish("t", "kept", QoS::kAtMostOnce);
  r.retain = true;
  pub->receive(r);
  auto c = f.connect("c", true, 0);
  c->receive(subscribe(1, {{"$share//t", QoS::kAtLeastOnce},
                           {"$share/g", QoS::kAtLeastOnce},
                           {"$share/g/t", QoS::kAtLeastOnce},
                           {"$queue/", QoS::kAtMostOnce},
                           {"t", QoS::kAtMostOnce}}));
  f.executor.drain();
  auto sent = c->sent();
  ASSERT_EQ(sent.size(), 3u);  // CONNACK, SUBACK, the retained message for "t" only
  EXPECT_EQ(std::get<codec::Suback>(sent[1]).return_codes,
            (std::vector<std::uint8_t>{0x80, 0x80, 1, 0x80, 0}));
  EXPECT_EQ(std::get<codec::Publish>(sent[2]).topic, "t");
}

TEST(SharedBroker, UnsubscribeWithTheFullStringLeavesTheGroup) {
  BrokerFixture f(1);
  auto a = f.connect("a", true, 0);
  auto b = f.connect("b", true, 0);
  a->receive(subscribe(1, {{"$queue/t", QoS::kAtMostOnce}}));
  b->receive(subscribe(1, {{"$queue/t", QoS::kAtMostOnce}}));
  codec::Unsubscribe u;
  u.packet_id = 2;
  u.filters = {"$queue/t"};
  a->receive(u);
  f.executor.drain();
  a->sent();
  b->sent();
  auto pub = f.connect("pub", true, 0);
  for (int i = 0; i < 4; ++i) pub->receive(publish("t", "x", QoS::kAtMostOnce));
  f.executor.drain();
  EXPECT_EQ(a->sent_of<codec::Publish>().size(), 0u);
  EXPECT_EQ(b->sent_of<codec::Publish>().size(), 4u);
}

struct NodePickCase {
  std::string strategy;
  bool local_member;
  std::vector<std::vector<core::NodeId>> want;  // per publish: nodes forwarded to (0 = local)
};

TEST(SharedBroker, PublishingNodeChoosesOneNodePerMessage) {
  const std::vector<NodePickCase> cases = {
      {"round_robin", true, {{0}, {7}, {9}, {0}}},
      {"round_robin", false, {{7}, {9}, {7}}},
      {"local_first", true, {{0}, {0}, {0}}},
      {"local_first", false, {{7}, {9}, {7}}},
      {"sticky", true, {{}, {}, {}}},  // checked below: always the same
  };
  for (const NodePickCase& c : cases) {
    SCOPED_TRACE(c.strategy + (c.local_member ? " with a local member" : " remote only"));
    BrokerFixture f(1, with_strategy(c.strategy));
    FakeCluster cluster;
    f.broker.set_cluster(&cluster);
    std::shared_ptr<FakeConnection> local;
    if (c.local_member) {
      local = f.connect("local", true, 0);
      local->receive(subscribe(1, {{"$share/g/t", QoS::kAtLeastOnce}}));
      local->sent();
    }
    EXPECT_EQ(cluster.added,
              c.local_member ? std::vector<std::string>{"$share/g/t"} : std::vector<std::string>{});
    f.broker.apply_remote_routes({{"$share/g/t", 7, true}, {"$share/g/t", 9, true}}, nullptr);
    f.executor.drain();
    auto pub = f.connect("pub", true, 0);
    std::vector<core::NodeId> chosen;
    for (std::size_t i = 0; i < c.want.size(); ++i) {
      cluster.forwards.clear();
      pub->receive(publish("t", std::to_string(i), QoS::kAtMostOnce));
      f.executor.drain();
      const std::size_t here = c.local_member ? local->sent_of<codec::Publish>().size() : 0;
      ASSERT_EQ(cluster.forwards.size() + here, 1u) << "message " << i;
      if (here == 1) {
        chosen.push_back(0);
      } else {
        const core::RemoteForward& fw = cluster.forwards[0];
        ASSERT_EQ(fw.nodes.size(), 1u);
        ASSERT_EQ(fw.shared.size(), 1u);
        EXPECT_EQ(fw.shared[0].group, "$share/g/t");
        EXPECT_TRUE(fw.shared[0].only);  // no ordinary route on that node
        EXPECT_EQ(fw.shared[0].node, fw.nodes[0]);
        chosen.push_back(fw.nodes[0]);
      }
    }
    if (c.strategy == "sticky") {
      EXPECT_EQ(std::set<core::NodeId>(chosen.begin(), chosen.end()).size(), 1u);
    } else {
      std::vector<core::NodeId> want;
      for (auto& w : c.want) want.push_back(w[0]);
      EXPECT_EQ(chosen, want);
    }
  }
}

TEST(SharedBroker, NodesMarkedDownArePickedOnlyAsALastResort) {
  BrokerFixture f(1);
  FakeCluster cluster;
  f.broker.set_cluster(&cluster);
  f.broker.apply_remote_routes({{"$share/g/t", 7, true}, {"$share/g/t", 9, true}}, nullptr);
  f.broker.set_node_up(7, false);
  f.executor.drain();
  auto pub = f.connect("pub", true, 0);
  auto nodes_of = [&](int n) {
    std::multiset<core::NodeId> out;
    cluster.forwards.clear();
    for (int i = 0; i < n; ++i) pub->receive(publish("t", "x", QoS::kAtMostOnce));
    f.executor.drain();
    for (auto& fw : cluster.forwards) out.insert(fw.nodes.begin(), fw.nodes.end());
    return out;
  };
  EXPECT_EQ(nodes_of(3), (std::multiset<core::NodeId>{9, 9, 9}));
  f.broker.set_node_up(9, false);  // every node down: they still get (and keep) the messages
  f.executor.drain();
  EXPECT_EQ(nodes_of(4), (std::multiset<core::NodeId>{7, 7, 9, 9}));
  f.broker.set_node_up(7, true);
  f.executor.drain();
  EXPECT_EQ(nodes_of(2), (std::multiset<core::NodeId>{7, 7}));
}

TEST(SharedBroker, ForwardedMessageServesTheNamedGroupsOnly) {
  BrokerFixture f(2);
  FakeCluster cluster;
  f.broker.set_cluster(&cluster);
  auto plain = f.connect("plain", true, 0);
  plain->receive(subscribe(1, {{"t", QoS::kAtLeastOnce}}));
  std::vector<std::shared_ptr<FakeConnection>> members;
  for (int i = 0; i < 2; ++i) {
    members.push_back(f.connect("m" + std::to_string(i), true, i));
    members.back()->receive(subscribe(1, {{"$share/g/t", QoS::kAtLeastOnce}}));
  }
  f.executor.drain();
  plain->sent();
  for (auto& m : members) m->sent();
  // Picked for the group only: the plain subscriber got its copy through another node's forward.
  f.broker.deliver_remote(core::make_message("t", "a", QoS::kAtLeastOnce, false), 1, {"$share/g/t"},
                          true);
  // An ordinary forward: plain subscribers only; the group was served elsewhere.
  f.broker.deliver_remote(core::make_message("t", "b", QoS::kAtLeastOnce, false), 1);
  // Both.
  f.broker.deliver_remote(core::make_message("t", "c", QoS::kAtLeastOnce, false), 1, {"$share/g/t"},
                          false);
  f.executor.drain();
  std::vector<std::string> got_plain;
  for (auto& p : plain->sent_of<codec::Publish>()) got_plain.push_back(p.payload);
  EXPECT_EQ(got_plain, (std::vector<std::string>{"b", "c"}));
  std::multiset<std::string> got_members;
  for (auto& m : members) {
    for (auto& p : m->sent_of<codec::Publish>()) got_members.insert(p.payload);
  }
  EXPECT_EQ(got_members, (std::multiset<std::string>{"a", "c"}));
  EXPECT_TRUE(cluster.forwards.empty());  // a forwarded message is never forwarded again
}

TEST(SharedBroker, OfflinePersistentMemberIsSkippedWhileAnotherIsOnline) {
  BrokerFixture f(1);
  auto p = f.connect("p", false, 0);
  p->receive(subscribe(1, {{"$share/g/t", QoS::kAtLeastOnce}}));
  p->receive(codec::Disconnect{});
  f.executor.drain();
  auto o = f.connect("o", true, 0);
  o->receive(subscribe(1, {{"$share/g/t", QoS::kAtLeastOnce}}));
  o->sent();
  auto pub = f.connect("pub", true, 0);
  for (int i = 0; i < 4; ++i) pub->receive(publish("t", "x", QoS::kAtLeastOnce, i + 1));
  f.executor.drain();
  EXPECT_EQ(o->sent_of<codec::Publish>().size(), 4u);
}

// A clean-session member leaves with messages it had not acknowledged: the group's other member
// gets them, on another worker of this node or (only candidate left) on another node, where the
// forward names the group only (that node's plain subscribers had theirs).
TEST(SharedBroker, UnacknowledgedMessagesOfALeavingMemberGoToAnotherMember) {
  for (const bool remote : {false, true}) {
    SCOPED_TRACE(remote ? "other member on node 7" : "other member on this node");
    BrokerFixture f(2);
    FakeCluster cluster;
    f.broker.set_cluster(&cluster);
    auto silent = f.connect("silent", true, 0);
    silent->receive(subscribe(1, {{"$share/g/t", QoS::kAtLeastOnce}}));
    auto pub = f.connect("pub", true, 0);
    for (int i = 0; i < 3; ++i) {
      pub->receive(publish("t", std::to_string(i), QoS::kAtLeastOnce, i + 1));
    }
    f.executor.drain();
    ASSERT_EQ(silent->sent_of<codec::Publish>().size(), 3u);  // never acknowledged
    std::shared_ptr<FakeConnection> other;
    if (remote) {
      f.broker.apply_remote_routes({{"$share/g/t", 7, true}}, nullptr);
    } else {
      other = f.connect("other", true, 1);
      other->receive(subscribe(1, {{"$share/g/t", QoS::kAtLeastOnce}}));
    }
    f.executor.drain();
    cluster.forwards.clear();
    silent->receive(codec::Disconnect{});
    f.executor.drain();
    std::vector<std::string> got;
    if (remote) {
      for (auto& fw : cluster.forwards) {
        got.emplace_back(fw.message->payload);
        EXPECT_EQ(fw.nodes, std::vector<core::NodeId>{7});
        ASSERT_EQ(fw.shared.size(), 1u);
        EXPECT_EQ(fw.shared[0].group, "$share/g/t");
        EXPECT_TRUE(fw.shared[0].only);
      }
    } else {
      for (auto& p : other->sent_of<codec::Publish>()) got.push_back(p.payload);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"0", "1", "2"}));
  }
}

}  // namespace
}  // namespace meshmq::testing
