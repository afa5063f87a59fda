// The persistence seam: which changes reach the SessionStore, in what order, and that QoS 1/2
// acknowledgements wait for the store's commit.
#include <gtest/gtest.h>

#include "tests/unit/core/fakes.h"

namespace meshmq::testing {
namespace {

using codec::QoS;

class RecordingStore final : public core::SessionStore {
 public:
  std::vector<std::string> log;
  bool defer = false;
  std::vector<std::function<void()>> commits;

  void session_created(const core::Session& s) override { add("created", s); }
  void session_offline(const core::Session& s) override { add("offline", s); }
  void session_online(const core::Session& s) override { add("online", s); }
  void session_ended(const core::Session& s) override { add("ended", s); }
  void subscription_set(const core::Session& s, std::string_view f, QoS q) override {
    add("sub " + std::string(f) + " " + std::to_string(int(q)), s);
  }
  void subscription_removed(const core::Session& s, std::string_view f) override {
    add("unsub " + std::string(f), s);
  }
  void message_queued(const core::Session& s, std::uint64_t seq,
                      const core::Session::Outbound& m) override {
    add("queued " + std::to_string(seq) + " " + std::string(m.message->payload), s);
  }
  void message_dequeued(const core::Session& s, std::uint64_t seq) override {
    add("dequeued " + std::to_string(seq), s);
  }
  void inflight_sent(const core::Session& s, std::uint16_t id,
                     const core::Session::Outbound& m) override {
    add("inflight " + std::to_string(id) + " " + std::string(m.message->payload), s);
  }
  void inflight_pubrec(const core::Session& s, std::uint16_t id) override {
    add("pubrec " + std::to_string(id), s);
  }
  void inflight_done(const core::Session& s, std::uint16_t id) override {
    add("done " + std::to_string(id), s);
  }
  void inbound_qos2_held(const core::Session& s, std::uint16_t id) override {
    add("held " + std::to_string(id), s);
  }
  void inbound_qos2_released(const core::Session& s, std::uint16_t id) override {
    add("released " + std::to_string(id), s);
  }
  bool pending() const override { return defer; }
  void commit(std::function<void()> done) override { commits.push_back(std::move(done)); }

 private:
  void add(const std::string& what, const core::Session& s) {
    log.push_back(s.client_id() + ": " + what);
  }
};

codec::Publish publish(std::string topic, std::string payload, QoS qos, std::uint16_t id) {
  codec::Publish p;
  p.topic = std::move(topic);
  p.payload = std::move(payload);
  p.qos = qos;
  p.packet_id = id;
  return p;
}

TEST(SessionStore, PersistentSessionChangesAreReportedInOrder) {
  RecordingStore store;
  BrokerFixture f(2, {}, &store);
  auto sub = f.connect("s", false, 1);
  codec::Subscribe subscribe{1, {{"t", QoS::kExactlyOnce}}};
  sub->receive(subscribe);
  sub->receive(codec::Disconnect{});
  auto pub = f.connect("p", true, 0);
  pub->receive(publish("t", "m1", QoS::kExactlyOnce, 1));
  pub->receive(codec::Pubrel{1});
  auto again = f.connect("s", false, 1);
  auto sent = again->sent_of<codec::Publish>();
  ASSERT_EQ(sent.size(), 1u);
  again->receive(codec::Pubrec{sent[0].packet_id});
  again->receive(codec::Pubcomp{sent[0].packet_id});
  again->receive(publish("t2", "in", QoS::kExactlyOnce, 9));
  again->receive(codec::Pubrel{9});
  const std::string id = std::to_string(sent[0].packet_id);
  EXPECT_EQ(store.log, (std::vector<std::string>{
                           "s: created", "s: online", "s: sub t 2", "s: offline", "s: queued 1 m1",
                           "s: online", "s: dequeued 1", "s: inflight " + id + " m1",
                           "s: pubrec " + id, "s: done " + id, "s: held 9", "s: released 9"}));
}

TEST(SessionStore, CleanSessionsNeverReachTheStore) {
  RecordingStore store;
  BrokerFixture f(2, {}, &store);
  auto sub = f.connect("s", true, 1);
  sub->receive(codec::Subscribe{1, {{"t", QoS::kAtLeastOnce}}});
  auto pub = f.connect("p", true, 0);
  pub->receive(publish("t", "m", QoS::kAtLeastOnce, 1));
  sub->receive(codec::Disconnect{});
  EXPECT_TRUE(store.log.empty());
}

TEST(SessionStore, AcknowledgementsWaitForTheCommit) {
  RecordingStore store;
  store.defer = true;
  BrokerFixture f(1, {}, &store);
  auto pub = f.connect("p", true, 0);
  pub->sent();
  pub->receive(publish("t", "a", QoS::kAtLeastOnce, 1));
  pub->receive(publish("t", "b", QoS::kExactlyOnce, 2));
  EXPECT_TRUE(pub->sent().empty());
  ASSERT_EQ(store.commits.size(), 2u);
  for (auto& done : store.commits) f.executor.on(0, done);
  auto packets = pub->sent();
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(std::get<codec::Puback>(packets[0]).packet_id, 1);
  EXPECT_EQ(std::get<codec::Pubrec>(packets[1]).packet_id, 2);
}

}  // namespace
}  // namespace meshmq::testing
