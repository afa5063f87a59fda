// Broker behaviour over fake connections and a manual executor: QoS, sessions, takeover, retained.
#include <gtest/gtest.h>

#include "tests/unit/core/fakes.h"

namespace meshmq::testing {
namespace {

using codec::QoS;

TEST(BrokerConnect, FreshSessionGetsConnackWithoutSessionPresent) {
  BrokerFixture f;
  auto c = f.connect("a", true, 0);
  auto acks = c->sent_of<codec::Connack>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].code, codec::ConnectReturnCode::kAccepted);
  EXPECT_FALSE(acks[0].session_present);
}

TEST(BrokerConnect, EmptyIdWithoutCleanSessionIsRejected) {
  BrokerFixture f;
  auto c = f.connect("", false, 0);
  auto acks = c->sent_of<codec::Connack>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].code, codec::ConnectReturnCode::kIdentifierRejected);
  EXPECT_TRUE(c->transport_closed);
}

TEST(BrokerConnect, EmptyIdWithCleanSessionGetsAnAssignedId) {
  BrokerFixture f;
  auto c = f.connect("", true, 0);
  EXPECT_EQ(c->sent_of<codec::Connack>().at(0).code, codec::ConnectReturnCode::kAccepted);
  EXPECT_FALSE(c->client_id().empty());
}

TEST(BrokerConnect, FirstPacketMustBeConnect) {
  BrokerFixture f;
  auto c = std::make_shared<FakeConnection>(f.broker, f.executor, 0);
  c->receive(codec::Pingreq{});
  EXPECT_TRUE(c->transport_closed);
}

TEST(BrokerConnect, SecondConnectClosesTheConnection) {
  BrokerFixture f;
  auto c = f.connect("a", true, 0);
  c->receive(codec::Connect{});
  EXPECT_TRUE(c->transport_closed);
}

// All nine (publish QoS, subscription QoS) pairs deliver at the minimum of the two (MQTT-3.8.4-6).
struct QosCase {
  QoS pub;
  QoS sub;
  QoS expected;
};

class QosMatrix : public ::testing::TestWithParam<QosCase> {};

TEST_P(QosMatrix, DeliversAtMinimumQos) {
  const QosCase& q = GetParam();
  for (std::size_t sub_worker : {0u, 1u}) {  // same worker and cross-worker delivery
    BrokerFixture f;
    auto sub = f.connect("sub", true, sub_worker);
    auto pub = f.connect("pub", true, 0);
    sub->receive(subscribe(1, {{"t/x", q.sub}}));
    auto subacks = sub->sent_of<codec::Suback>();
    ASSERT_EQ(subacks.size(), 1u);
    EXPECT_EQ(subacks[0].return_codes, std::vector<std::uint8_t>{static_cast<std::uint8_t>(q.sub)});
    pub->receive(publish("t/x", "hello", q.pub, 7));
    auto got = sub->sent_of<codec::Publish>();
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].qos, q.expected);
    EXPECT_EQ(got[0].payload, "hello");
    EXPECT_FALSE(got[0].retain);
  }
}

INSTANTIATE_TEST_SUITE_P(
    All, QosMatrix,
    ::testing::Values(QosCase{QoS::kAtMostOnce, QoS::kAtMostOnce, QoS::kAtMostOnce},
                      QosCase{QoS::kAtMostOnce, QoS::kAtLeastOnce, QoS::kAtMostOnce},
                      QosCase{QoS::kAtMostOnce, QoS::kExactlyOnce, QoS::kAtMostOnce},
                      QosCase{QoS::kAtLeastOnce, QoS::kAtMostOnce, QoS::kAtMostOnce},
                      QosCase{QoS::kAtLeastOnce, QoS::kAtLeastOnce, QoS::kAtLeastOnce},
                      QosCase{QoS::kAtLeastOnce, QoS::kExactlyOnce, QoS::kAtLeastOnce},
                      QosCase{QoS::kExactlyOnce, QoS::kAtMostOnce, QoS::kAtMostOnce},
                      QosCase{QoS::kExactlyOnce, QoS::kAtLeastOnce, QoS::kAtLeastOnce},
                      QosCase{QoS::kExactlyOnce, QoS::kExactlyOnce, QoS::kExactlyOnce}));

TEST(BrokerRouting, OverlappingSubscriptionsDeliverOneCopyAtHighestQos) {
  BrokerFixture f;
  auto sub = f.connect("sub", true, 1);
  auto pub = f.connect("pub", true, 0);
  sub->receive(subscribe(
      1, {{"a/+", QoS::kAtMostOnce}, {"a/#", QoS::kExactlyOnce}, {"#", QoS::kAtLeastOnce}}));
  sub->sent();
  pub->receive(publish("a/b", "x", QoS::kExactlyOnce, 1));
  auto got = sub->sent_of<codec::Publish>();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].qos, QoS::kExactlyOnce);
}

TEST(BrokerRouting, PublisherAcksFollowQos) {
  BrokerFixture f;
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("t", "x", QoS::kAtLeastOnce, 5));
  EXPECT_EQ(pub->sent_of<codec::Puback>().at(0).packet_id, 5);
  pub->receive(publish("t", "x", QoS::kExactlyOnce, 6));
  EXPECT_EQ(pub->sent_of<codec::Pubrec>().at(0).packet_id, 6);
  pub->receive(codec::Pubrel{6});
  EXPECT_EQ(pub->sent_of<codec::Pubcomp>().at(0).packet_id, 6);
}

TEST(BrokerRouting, InboundQos2ResentBeforePubrelIsRoutedOnce) {
  BrokerFixture f;
  auto sub = f.connect("sub", true, 0);
  auto pub = f.connect("pub", true, 1);
  sub->receive(subscribe(1, {{"t", QoS::kAtMostOnce}}));
  sub->sent();
  auto p = publish("t", "once", QoS::kExactlyOnce, 9);
  pub->receive(p);
  p.dup = true;
  pub->receive(p);
  EXPECT_EQ(pub->sent_of<codec::Pubrec>().size(), 2u);
  EXPECT_EQ(sub->sent_of<codec::Publish>().size(), 1u);
  pub->receive(codec::Pubrel{9});
  pub->receive(publish("t", "again", QoS::kExactlyOnce, 9));  // the id is free again
  EXPECT_EQ(sub->sent_of<codec::Publish>().size(), 1u);
}

TEST(BrokerRouting, UnsubscribeStopsDelivery) {
  BrokerFixture f;
  auto sub = f.connect("sub", true, 1);
  auto pub = f.connect("pub", true, 0);
  sub->receive(subscribe(1, {{"t/#", QoS::kAtMostOnce}}));
  codec::Unsubscribe u;
  u.packet_id = 2;
  u.filters = {"t/#"};
  sub->receive(u);
  EXPECT_EQ(sub->sent_of<codec::Unsuback>().at(0).packet_id, 2);
  pub->receive(publish("t/1", "x", QoS::kAtMostOnce));
  EXPECT_TRUE(sub->sent_of<codec::Publish>().empty());
  EXPECT_EQ(f.broker.stats().subscriptions, 0u);
}

TEST(BrokerFlow, InflightWindowHoldsTheRestInOrder) {
  core::MqttOptions o;
  o.max_inflight = 2;
  BrokerFixture f(2, o);
  auto sub = f.connect("sub", true, 1);
  auto pub = f.connect("pub", true, 0);
  sub->receive(subscribe(1, {{"t", QoS::kAtLeastOnce}}));
  sub->sent();
  for (int i = 0; i < 5; ++i)
    pub->receive(publish("t", std::to_string(i), QoS::kAtLeastOnce, i + 1));
  auto first = sub->sent_of<codec::Publish>();
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].payload, "0");
  EXPECT_EQ(first[1].payload, "1");
  sub->receive(codec::Puback{first[0].packet_id});
  auto next = sub->sent_of<codec::Publish>();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].payload, "2");
}

TEST(BrokerSessions, PersistentSessionQueuesWhileOfflineAndResumesWithDup) {
  BrokerFixture f;
  auto sub = f.connect("sub", false, 1);
  auto pub = f.connect("pub", true, 0);
  sub->receive(subscribe(1, {{"t", QoS::kExactlyOnce}}));
  sub->sent();
  pub->receive(publish("t", "unacked", QoS::kAtLeastOnce, 1));
  ASSERT_EQ(sub->sent_of<codec::Publish>().size(), 1u);  // never acknowledged
  sub->receive(codec::Disconnect{});
  pub->receive(publish("t", "q1", QoS::kAtLeastOnce, 2));
  pub->receive(publish("t", "q0", QoS::kAtMostOnce));  // not queued by default
  pub->receive(publish("t", "q2", QoS::kExactlyOnce, 3));

  auto again = f.connect("sub", false, 0);  // back on another worker
  auto packets = again->sent();
  ASSERT_GE(packets.size(), 4u);
  auto& ack = std::get<codec::Connack>(packets[0]);
  EXPECT_TRUE(ack.session_present);
  auto& resent = std::get<codec::Publish>(packets[1]);
  EXPECT_EQ(resent.payload, "unacked");
  EXPECT_TRUE(resent.dup);
  EXPECT_EQ(std::get<codec::Publish>(packets[2]).payload, "q1");
  EXPECT_EQ(std::get<codec::Publish>(packets[3]).payload, "q2");
  EXPECT_EQ(packets.size(), 4u);
}

TEST(BrokerSessions, OfflineQueueIsBoundedAndDropsAreCounted) {
  core::MqttOptions o;
  o.max_queued_messages = 3;
  BrokerFixture f(1, o);
  auto sub = f.connect("sub", false, 0);
  sub->receive(subscribe(1, {{"t", QoS::kAtLeastOnce}}));
  sub->receive(codec::Disconnect{});
  auto pub = f.connect("pub", true, 0);
  for (int i = 0; i < 10; ++i)
    pub->receive(publish("t", std::to_string(i), QoS::kAtLeastOnce, i + 1));
  EXPECT_EQ(f.broker.counters(0).dropped_queue_full.get(), 7u);
  auto again = f.connect("sub", false, 0);
  EXPECT_EQ(again->sent_of<codec::Publish>().size(), 3u);
}

TEST(BrokerSessions, CleanSessionDiscardsStateAndSubscriptions) {
  BrokerFixture f;
  auto sub = f.connect("sub", true, 1);
  sub->receive(subscribe(1, {{"t", QoS::kAtLeastOnce}}));
  sub->receive(codec::Disconnect{});
  EXPECT_EQ(f.broker.stats().subscriptions, 0u);
  EXPECT_EQ(f.broker.stats().sessions, 0u);
  auto again = f.connect("sub", false, 1);
  EXPECT_FALSE(again->sent_of<codec::Connack>().at(0).session_present);
}

TEST(BrokerSessions, TakeoverClosesTheOldConnectionAndPublishesItsWill) {
  BrokerFixture f;
  auto watcher = f.connect("watcher", true, 0);
  watcher->receive(subscribe(1, {{"will/#", QoS::kAtMostOnce}}));
  watcher->sent();
  codec::Will will{"will/a", "gone", QoS::kAtMostOnce, false};
  auto first = f.connect("a", false, 1, will);
  first->receive(subscribe(2, {{"t", QoS::kAtLeastOnce}}));
  auto second = f.connect("a", false, 0);
  EXPECT_TRUE(first->transport_closed);
  EXPECT_TRUE(second->sent_of<codec::Connack>().at(0).session_present);
  EXPECT_EQ(watcher->sent_of<codec::Publish>().at(0).payload, "gone");
  // The inherited subscription now delivers to the new connection.
  auto pub = f.connect("pub", true, 1);
  pub->receive(publish("t", "x", QoS::kAtLeastOnce, 1));
  EXPECT_EQ(second->sent_of<codec::Publish>().size(), 1u);
  EXPECT_TRUE(first->sent_of<codec::Publish>().empty());
}

TEST(BrokerSessions, NoWillAfterDisconnect) {
  BrokerFixture f;
  auto watcher = f.connect("watcher", true, 0);
  watcher->receive(subscribe(1, {{"will/#", QoS::kAtMostOnce}}));
  watcher->sent();
  auto c = f.connect("a", true, 1, codec::Will{"will/a", "gone", QoS::kAtMostOnce, false});
  c->receive(codec::Disconnect{});
  EXPECT_TRUE(watcher->sent_of<codec::Publish>().empty());
  auto d = f.connect("b", true, 1, codec::Will{"will/b", "dropped", QoS::kAtMostOnce, false});
  f.executor.on(1, [&] { d->on_transport_closed("reset"); });
  f.executor.drain();
  EXPECT_EQ(watcher->sent_of<codec::Publish>().at(0).payload, "dropped");
}

TEST(BrokerRetained, DeliveredOnSubscribeWithRetainFlagAndClearedByEmptyPayload) {
  BrokerFixture f;
  auto pub = f.connect("pub", true, 0);
  pub->receive(publish("r/1", "kept", QoS::kAtLeastOnce, 1, true));
  auto sub = f.connect("sub", true, 1);
  sub->sent();
  sub->receive(subscribe(1, {{"r/+", QoS::kExactlyOnce}}));
  auto packets = sub->sent();
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<codec::Suback>(packets[0]));  // SUBACK first
  auto& p = std::get<codec::Publish>(packets[1]);
  EXPECT_TRUE(p.retain);
  EXPECT_EQ(p.qos, QoS::kAtLeastOnce);
  // Normal forwarding of a retained publish to an existing subscriber has retain 0.
  pub->receive(publish("r/1", "new", QoS::kAtMostOnce, 0, true));
  EXPECT_FALSE(sub->sent_of<codec::Publish>().at(0).retain);
  pub->receive(publish("r/1", "", QoS::kAtMostOnce, 0, true));
  EXPECT_EQ(f.retained.size(), 0u);
}

}  // namespace
}  // namespace meshmq::testing
