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
  void inflight_sent(const core::Session& s, std::uint64_t seq, std::uint16_t id,
                     const core::Session::Outbound& m) override {
    add("inflight " + std::to_string(seq) + "/" + std::to_string(id) + " " +
            std::string(m.message->payload),
        s);
  }
  void inflight_pubrec(const core::Session& s, std::uint64_t seq, std::uint16_t id) override {
    add("pubrec " + std::to_string(seq) + "/" + std::to_string(id), s);
  }
  void inflight_done(const core::Session& s, std::uint64_t seq, std::uint16_t id) override {
    add("done " + std::to_string(seq) + "/" + std::to_string(id), s);
  }
  void inbound_qos2_held(const core::Session& s, std::uint16_t id) override {
    add("held " + std::to_string(id), s);
  }
  void inbound_qos2_released(const core::Session& s, std::uint16_t id) override {
    add("released " + std::to_string(id), s);
  }
  bool pending() const override { return defer; }
  void commit(std::function<void(bool)> done) override {
    commits.push_back([done = std::move(done)] { done(true); });
  }
  bool persists() const override { return true; }

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
  const std::string id = "1/" + std::to_string(sent[0].packet_id);
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
  f.executor.drain();
  auto packets = pub->sent();
  ASSERT_EQ(packets.size(), 2u);
  EXPECT_EQ(std::get<codec::Puback>(packets[0]).packet_id, 1);
  EXPECT_EQ(std::get<codec::Pubrec>(packets[1]).packet_id, 2);
}

// A store whose commits complete when the test says so, per worker, to check that a PUBACK waits
// for the write on the worker that owns the receiving session, not only the publisher's.
class PerWorkerStore final : public core::SessionStore {
 public:
  explicit PerWorkerStore(ManualExecutor& ex) : ex_(ex), dirty(ex.size()), commits(ex.size()) {}
  void session_created(const core::Session&) override { touch(); }
  void session_offline(const core::Session&) override { touch(); }
  void session_online(const core::Session&) override { touch(); }
  void session_ended(const core::Session&) override { touch(); }
  void subscription_set(const core::Session&, std::string_view, QoS) override { touch(); }
  void subscription_removed(const core::Session&, std::string_view) override { touch(); }
  void message_queued(const core::Session&, std::uint64_t,
                      const core::Session::Outbound&) override {
    touch();
  }
  void message_dequeued(const core::Session&, std::uint64_t) override { touch(); }
  void inflight_sent(const core::Session&, std::uint64_t, std::uint16_t,
                     const core::Session::Outbound&) override {
    touch();
  }
  void inflight_pubrec(const core::Session&, std::uint64_t, std::uint16_t) override { touch(); }
  void inflight_done(const core::Session&, std::uint64_t, std::uint16_t) override { touch(); }
  void inbound_qos2_held(const core::Session&, std::uint16_t) override { touch(); }
  void inbound_qos2_released(const core::Session&, std::uint16_t) override { touch(); }
  bool pending() const override { return dirty[ex_.current()]; }
  void commit(std::function<void(bool)> done) override {
    dirty[ex_.current()] = false;
    commits[ex_.current()].push_back(std::move(done));
  }
  bool persists() const override { return true; }
  // Completes worker w's commits as the real store would: on w.
  void complete(std::size_t w, bool ok = true) {
    auto list = std::move(commits[w]);
    commits[w].clear();
    for (auto& done : list) ex_.on(w, [&] { done(ok); });
    ex_.drain();
  }

 private:
  ManualExecutor& ex_;

 public:
  std::vector<bool> dirty;
  std::vector<std::vector<std::function<void(bool)>>> commits;

 private:
  void touch() { dirty[ex_.current()] = true; }
};

TEST(SessionStoreJoin, PubackWaitsForTheWriteOnTheSubscribersWorker) {
  // The store needs the fixture's executor, so the broker under test is built beside the
  // fixture's own.
  BrokerFixture f(2);
  auto store = std::make_unique<PerWorkerStore>(f.executor);
  core::Broker broker(f.options, f.executor, f.retained, *store);
  auto connect = [&](const std::string& id, bool clean, std::size_t w) {
    auto c = std::make_shared<FakeConnection>(broker, f.executor, w);
    f.executor.on(w, [&] { c->start(); });
    codec::Connect cn;
    cn.client_id = id;
    cn.clean_session = clean;
    c->receive(cn);
    return c;
  };
  auto sub = connect("s", false, 1);
  sub->receive(codec::Subscribe{1, {{"t", QoS::kAtLeastOnce}}});
  store->complete(1);
  ASSERT_EQ(sub->sent_of<codec::Suback>().size(), 1u);
  sub->receive(codec::Disconnect{});
  store->complete(1);
  auto pub = connect("p", true, 0);
  pub->sent();
  pub->receive(publish("t", "m", QoS::kAtLeastOnce, 7));
  // The message was queued on worker 1; worker 0 wrote nothing, yet the PUBACK must wait.
  EXPECT_TRUE(store->commits[0].empty());
  ASSERT_EQ(store->commits[1].size(), 1u);
  EXPECT_TRUE(pub->sent().empty());
  store->complete(1);
  auto acks = pub->sent_of<codec::Puback>();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].packet_id, 7);

  // A failed write on the subscriber's worker: no PUBACK, the publisher is disconnected.
  pub->receive(publish("t", "m2", QoS::kAtLeastOnce, 8));
  store->complete(1, false);
  EXPECT_TRUE(pub->sent_of<codec::Puback>().empty());
  EXPECT_TRUE(pub->transport_closed);
}

}  // namespace
}  // namespace meshmq::testing
