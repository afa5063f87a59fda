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

}  // namespace
}  // namespace meshmq::testing
