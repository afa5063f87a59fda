// The core's side of the cluster seam, with a fake ClusterLink: route announcements, SUBACK
// ordering, forwarding once per node, publisher acks waiting (in order) for remote nodes, and
// inbound messages reaching local subscribers only.
#include <gtest/gtest.h>

#include "tests/unit/core/fakes.h"

namespace meshmq::testing {
namespace {

using codec::QoS;

struct FakeCluster final : core::ClusterLink {
  std::vector<std::string> added, removed;
  std::vector<std::function<void()>> route_dones;
  std::vector<core::RemoteForward> forwards;
  std::vector<std::string> retained;
  void local_route_added(const std::string& f, std::function<void()> done) override {
    added.push_back(f);
    route_dones.push_back(std::move(done));
  }
  void local_route_removed(const std::string& f) override { removed.push_back(f); }
  void forward(std::vector<core::RemoteForward>&& batch) override {
    for (auto& f : batch) forwards.push_back(std::move(f));
  }
  void retained_changed(const core::MessagePtr& m) override {
    retained.push_back(std::string(m->topic));
  }
  // What the other nodes answer to a CONNECT's claim (default: nobody holds the id).
  core::SessionClaim answer;
  std::vector<std::string> claims;
  void claim_session(const std::string& id, bool,
                     std::function<void(core::SessionClaim)> done) override {
    claims.push_back(id);
    done(answer);
  }
};

struct ClusterFixture : BrokerFixture {
  ClusterFixture() { broker.set_cluster(&cluster); }
  void route(const std::string& filter, core::NodeId node, bool add = true) {
    broker.apply_remote_routes({{filter, node, add}}, nullptr);
    executor.drain();
  }
  void acknowledge_routes() {
    for (auto& d : std::exchange(cluster.route_dones, {})) d();
    executor.drain();
  }
  // A persistent session subscribed to `filter`, its client gone (parked here).
  void park(const std::string& id, const std::string& filter);
  FakeCluster cluster;
};

codec::Publish publish(std::string topic, QoS qos, std::uint16_t id = 0, bool retain = false) {
  codec::Publish p;
  p.topic = std::move(topic);
  p.payload = "x";
  p.qos = qos;
  p.packet_id = id;
  p.retain = retain;
  return p;
}

codec::Subscribe subscribe(std::uint16_t id, std::string filter) {
  codec::Subscribe s;
  s.packet_id = id;
  s.topics.push_back({std::move(filter), QoS::kAtLeastOnce});
  return s;
}

TEST(ClusterLink, SubackWaitsForThePeersToHaveTheRoute) {
  ClusterFixture f;
  auto sub = f.connect("sub", true, 0);
  sub->sent();
  sub->receive(subscribe(1, "a/#"));
  EXPECT_EQ(f.cluster.added, std::vector<std::string>{"a/#"});
  EXPECT_TRUE(sub->sent_of<codec::Suback>().empty());  // local replicas done, peers not yet
  f.acknowledge_routes();
  EXPECT_EQ(sub->sent_of<codec::Suback>().size(), 1u);
}

TEST(ClusterLink, EverySessionChangeIsReportedAndResubscribingIsNot) {
  ClusterFixture f;
  auto a = f.connect("a", true, 0);
  auto b = f.connect("b", true, 1);
  a->receive(subscribe(1, "t/+"));
  f.acknowledge_routes();
  b->receive(subscribe(1, "t/+"));
  f.acknowledge_routes();
  a->receive(subscribe(2, "t/+"));  // the same filter again: a QoS change, no new route
  EXPECT_EQ(f.cluster.added, (std::vector<std::string>{"t/+", "t/+"}));
  a->receive(codec::Disconnect{});
  EXPECT_EQ(f.cluster.removed, std::vector<std::string>{"t/+"});
}

TEST(ClusterLink, PublishIsForwardedOncePerMatchingNode) {
  ClusterFixture f;
  f.route("a/#", 5);
  f.route("a/+", 5);
  f.route("a/b", 6);
  f.route("z", 7);
  auto pub = f.connect("pub", true, 1);
  pub->receive(publish("a/b", QoS::kAtMostOnce));
  ASSERT_EQ(f.cluster.forwards.size(), 1u);
  EXPECT_EQ(f.cluster.forwards[0].nodes, (std::vector<core::NodeId>{5, 6}));
  EXPECT_FALSE(f.cluster.forwards[0].done);  // QoS 0: nothing waits
  f.route("a/#", 5, false);
  f.route("a/+", 5, false);
  pub->receive(publish("a/b", QoS::kAtMostOnce));
  EXPECT_EQ(f.cluster.forwards.at(1).nodes, (std::vector<core::NodeId>{6}));
}

TEST(ClusterLink, PublisherAcksWaitForRemoteNodesAndKeepTheirOrder) {
  ClusterFixture f;
  f.route("remote/#", 3);
  auto pub = f.connect("pub", true, 0);
  pub->sent();
  pub->receive(publish("remote/1", QoS::kAtLeastOnce, 1));
  pub->receive(publish("local/1", QoS::kAtLeastOnce, 2));  // no remote target
  pub->receive(publish("remote/2", QoS::kExactlyOnce, 3));
  EXPECT_TRUE(pub->sent().empty());  // 2 must not overtake 1
  ASSERT_EQ(f.cluster.forwards.size(), 2u);
  f.cluster.forwards[1].done();  // the nodes accept the second forward first
  f.executor.drain();
  EXPECT_TRUE(pub->sent().empty());
  f.cluster.forwards[0].done();
  f.executor.drain();
  auto acks = pub->sent();
  ASSERT_EQ(acks.size(), 3u);
  EXPECT_EQ(std::get<codec::Puback>(acks[0]).packet_id, 1);
  EXPECT_EQ(std::get<codec::Puback>(acks[1]).packet_id, 2);
  EXPECT_EQ(std::get<codec::Pubrec>(acks[2]).packet_id, 3);
}

TEST(ClusterLink, RemoteMessagesReachLocalSubscribersOnlyAndAreNotForwardedAgain) {
  ClusterFixture f;
  f.route("a/#", 9);
  auto sub = f.connect("sub", true, 1);
  sub->receive(subscribe(1, "a/#"));
  f.acknowledge_routes();
  sub->sent();
  f.broker.deliver_remote(core::make_message("a/b", "from afar", QoS::kAtLeastOnce, false), 9);
  f.executor.drain();
  auto got = sub->sent_of<codec::Publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].payload, "from afar");
  EXPECT_TRUE(f.cluster.forwards.empty());
}

TEST(ClusterLink, RetainedChangesAreReplicated) {
  ClusterFixture f;
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("r/1", QoS::kAtMostOnce, 0, true));
  pub->receive(publish("r/2", QoS::kAtMostOnce, 0, false));
  EXPECT_EQ(f.cluster.retained, std::vector<std::string>{"r/1"});
}

core::Session::Snapshot remote_session(const std::string& id) {
  core::Session::Snapshot s;
  s.client_id = id;
  s.expires_at = core::Clock::now() + std::chrono::hours(1);
  s.subscriptions.emplace("s/#", QoS::kAtLeastOnce);
  for (std::uint64_t i = 1; i <= 2; ++i) {
    s.queue.push_back({i,
                       {core::make_message("s/" + std::to_string(i), "q", QoS::kAtLeastOnce, false),
                        QoS::kAtLeastOnce, false}});
  }
  return s;
}

TEST(ClusterSessions, HandedOverSessionIsStoredRoutedThenConnectedWithItsQueue) {
  ClusterFixture f;
  f.cluster.answer.handed_over = remote_session("x");
  f.cluster.answer.from = "node2";
  auto x = f.connect("x", false, 1);
  EXPECT_EQ(f.cluster.claims, std::vector<std::string>{"x"});
  EXPECT_EQ(f.cluster.added, std::vector<std::string>{"s/#"});
  EXPECT_TRUE(x->sent_of<codec::Connack>().empty());  // waits for the route, like a SUBACK
  f.acknowledge_routes();
  std::vector<codec::Connack> connack;
  std::vector<codec::Publish> got;
  for (auto& p : x->sent()) {  // sent() hands each packet out once
    if (auto* c = std::get_if<codec::Connack>(&p)) connack.push_back(*c);
    if (auto* m = std::get_if<codec::Publish>(&p)) got.push_back(*m);
  }
  ASSERT_EQ(connack.size(), 1u);
  EXPECT_TRUE(connack[0].session_present);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "s/1");
  EXPECT_EQ(got[1].topic, "s/2");
  // The adopted subscription routes locally published messages too.
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("s/3", QoS::kAtLeastOnce, 1));
  f.executor.drain();
  EXPECT_EQ(x->sent_of<codec::Publish>().size(), 1u);
}

TEST(ClusterSessions, LostClaimIsRefusedWithServerUnavailable) {
  ClusterFixture f;
  f.cluster.answer.lost = true;
  auto x = f.connect("x", false, 1);
  f.executor.drain();
  auto connack = x->sent_of<codec::Connack>();
  ASSERT_EQ(connack.size(), 1u);
  EXPECT_EQ(connack[0].code, codec::ConnectReturnCode::kServerUnavailable);
  EXPECT_TRUE(x->closed());
}

struct HandOverCase {
  const char* name;
  bool persistent;    // the session here
  bool connected;     // its client is connected
  bool clean_claim;   // the other node's CONNECT has clean session 1
  bool state_handed;  // done() gets the session's state
};

class HandOver : public ::testing::TestWithParam<HandOverCase> {};

// A handed-over session leaves the registry at once but keeps its routes, as a ghost, until the
// new node confirms it has the session and its routes everywhere: a message published in between
// (here locally; from a peer it is the same) is not lost but comes out in the tail for the new
// node. Without the ghost the route went with the snapshot and that message reached no one.
TEST_P(HandOver, ClosesTheClientAndKeepsTheRoutesUntilTheNewNodeConfirms) {
  const HandOverCase& c = GetParam();
  ClusterFixture f;
  auto watcher = f.connect("watcher", true, 0);
  watcher->receive(subscribe(1, "will/x"));
  f.acknowledge_routes();
  auto x =
      f.connect("x", !c.persistent, 1, codec::Will{"will/x", "gone", QoS::kAtLeastOnce, false});
  x->receive(subscribe(1, "h/#"));
  f.acknowledge_routes();
  if (!c.connected) x->receive(codec::Disconnect{});  // no will: the client said goodbye
  f.executor.drain();
  watcher->sent();
  std::optional<core::Session::Snapshot> state;
  std::uint64_t ghost = 0;
  bool called = false;
  f.executor.on(0, [&] {
    f.broker.hand_over("x", c.clean_claim, "node2", [&](auto s, std::uint64_t g) {
      called = true;
      state = std::move(s);
      ghost = g;
    });
  });
  f.executor.drain();
  ASSERT_TRUE(called);
  EXPECT_EQ(state.has_value(), c.state_handed);
  EXPECT_EQ(ghost != 0, c.state_handed);
  if (state) {
    EXPECT_EQ(state->subscriptions.count("h/#"), 1u);
  }
  EXPECT_TRUE(x->closed());
  // As a takeover on one node: a connection closed without DISCONNECT publishes its will.
  EXPECT_EQ(watcher->sent_of<codec::Publish>().size(), c.connected ? 1u : 0u);
  EXPECT_TRUE(f.broker.client_ids() == std::vector<std::string>{"watcher"});
  if (!c.state_handed) {
    EXPECT_EQ(f.cluster.removed, std::vector<std::string>{"h/#"});
    return;
  }
  EXPECT_TRUE(f.cluster.removed.empty());
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("h/window", QoS::kAtLeastOnce, 1));
  f.executor.drain();
  std::optional<core::Session::Snapshot> tail;
  f.executor.on(
      0, [&] { f.broker.finish_handover(ghost, true, [&](auto t) { tail = std::move(t); }); });
  f.executor.drain();
  EXPECT_EQ(f.cluster.removed, std::vector<std::string>{"h/#"});
  ASSERT_TRUE(tail.has_value());
  ASSERT_EQ(tail->queue.size(), 1u);  // only what came after the snapshot
  EXPECT_EQ(tail->queue[0].out.message->topic, "h/window");
  EXPECT_TRUE(tail->subscriptions.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HandOver,
    ::testing::Values(HandOverCase{"persistent_online", true, true, false, true},
                      HandOverCase{"persistent_offline", true, false, false, true},
                      HandOverCase{"persistent_clean_claim", true, true, true, false},
                      HandOverCase{"clean_session_online", false, true, false, false}),
    [](const auto& info) { return std::string(info.param.name); });

void ClusterFixture::park(const std::string& id, const std::string& filter) {
  auto c = connect(id, false, 1);
  c->receive(subscribe(1, filter));
  acknowledge_routes();
  c->receive(codec::Disconnect{});
  executor.drain();
}

TEST(ClusterSessions, UnconfirmedHandoverKeepsTheSessionHere) {
  ClusterFixture f;
  f.park("x", "k/#");
  std::uint64_t ghost = 0;
  f.executor.on(0, [&] {
    f.broker.hand_over("x", false, "node2", [&](auto, std::uint64_t g) { ghost = g; });
  });
  f.executor.drain();
  ASSERT_NE(ghost, 0u);
  bool done = false;
  f.executor.on(0, [&] { f.broker.finish_handover(ghost, false, [&](auto) { done = true; }); });
  f.executor.drain();
  ASSERT_TRUE(done);
  EXPECT_TRUE(f.cluster.removed.empty());
  auto back = f.connect("x", false, 0);
  f.executor.drain();
  auto connack = back->sent_of<codec::Connack>();
  ASSERT_EQ(connack.size(), 1u);
  EXPECT_TRUE(connack[0].session_present);
}

// What a handover that arrives after its claim timed out (or a stopping node's parked session,
// or a ghost's tail) turns into: merged into the session the id has here, or parked.
TEST(ClusterSessions, AbsorbedStateJoinsTheSessionTheClientHasNow) {
  ClusterFixture f;
  auto x = f.connect("x", false, 1);  // connected here while the old node's answer was late
  x->receive(subscribe(1, "own/#"));
  f.acknowledge_routes();
  x->sent();
  bool installed = false;
  f.broker.absorb(remote_session("x"), "node2", [&] { installed = true; });
  f.executor.drain();
  EXPECT_EQ(f.cluster.added, (std::vector<std::string>{"own/#", "s/#"}));
  EXPECT_FALSE(installed);  // waits for the route, like a SUBACK
  f.acknowledge_routes();
  EXPECT_TRUE(installed);
  auto got = x->sent_of<codec::Publish>();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].topic, "s/1");
  EXPECT_EQ(got[1].topic, "s/2");
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("s/3", QoS::kAtLeastOnce, 1));
  pub->receive(publish("own/1", QoS::kAtLeastOnce, 2));
  f.executor.drain();
  EXPECT_EQ(x->sent_of<codec::Publish>().size(), 2u);
}

// A claim's handover that finds a session for the id here already (parked by a stopping node,
// or left by a claim that timed out) joins it instead of being dropped.
TEST(ClusterSessions, HandedOverSessionJoinsTheOneTheIdHasHere) {
  ClusterFixture f;
  f.park("x", "own/#");
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("own/1", QoS::kAtLeastOnce, 1));
  f.executor.drain();
  f.cluster.answer.handed_over = remote_session("x");
  f.cluster.answer.from = "node2";
  auto again = f.connect("x", false, 1);
  f.acknowledge_routes();
  std::vector<std::string> topics;
  bool present = false;
  for (auto& p : again->sent()) {
    if (auto* c = std::get_if<codec::Connack>(&p)) present = c->session_present;
    if (auto* m = std::get_if<codec::Publish>(&p)) topics.push_back(m->topic);
  }
  EXPECT_TRUE(present);
  EXPECT_EQ(topics, (std::vector<std::string>{"own/1", "s/1", "s/2"}));
}

TEST(ClusterSessions, AbsorbedStateWithoutASessionHereIsParkedForTheClient) {
  ClusterFixture f;
  bool installed = false;
  f.broker.absorb(remote_session("p"), "node2", [&] { installed = true; });
  f.executor.drain();
  f.acknowledge_routes();
  EXPECT_TRUE(installed);
  EXPECT_EQ(f.broker.client_ids(), std::vector<std::string>{"p"});
  auto p = f.connect("p", false, 1);
  f.executor.drain();
  std::vector<codec::Connack> connack;
  std::size_t messages = 0;
  for (auto& packet : p->sent()) {
    if (auto* c = std::get_if<codec::Connack>(&packet)) connack.push_back(*c);
    messages += std::holds_alternative<codec::Publish>(packet);
  }
  ASSERT_EQ(connack.size(), 1u);
  EXPECT_TRUE(connack[0].session_present);
  EXPECT_EQ(messages, 2u);
}

}  // namespace
}  // namespace meshmq::testing
