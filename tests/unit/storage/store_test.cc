// The RocksDB stores: what is written comes back after a reopen, in order; expired sessions and
// retained messages are purged at load; storage.max_disk drops (counted) instead of queueing; a
// failed write reports failure and fails the store.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>

#include "broker/core/counters.h"
#include "broker/core/session.h"
#include "broker/storage/db.h"
#include "broker/storage/rocks_retained_store.h"
#include "broker/storage/rocks_session_store.h"

namespace meshmq::storage {
namespace {

using core::Clock;
using core::QoS;
using core::Session;

// One worker, played by the test thread; the Db's writer thread posts completions to it.
class TestExecutor final : public core::Executor {
 public:
  std::size_t size() const override { return 1; }
  std::size_t current() const override { return 0; }
  void post(std::size_t, std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
    cv_.notify_all();
  }
  // Runs posted handlers until pred() holds (bounded).
  bool run_until(const std::function<bool()>& pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!pred()) {
      std::function<void()> fn;
      {
        std::unique_lock lock(mu_);
        if (!cv_.wait_until(lock, deadline, [&] { return !queue_.empty(); })) return false;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
    return true;
  }
  void discard_pending() {
    std::lock_guard lock(mu_);
    queue_.clear();
  }
  void drain_pending() {
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard lock(mu_);
        if (queue_.empty()) return;
        fn = std::move(queue_.front());
        queue_.pop_front();
      }
      fn();
    }
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
};

core::MessagePtr message(std::string topic, std::string payload, QoS qos, bool retain = false) {
  return core::make_message(topic, payload, qos, retain);
}

int instance = 0;

struct StoreTest : ::testing::TestWithParam<const char*> {
  StoreTest() {
    spdlog::set_level(spdlog::level::warn);
    dir = std::filesystem::temp_directory_path() /
          ("meshmq-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(++instance));
    std::filesystem::remove_all(dir);
    opts.sync = GetParam();
    open();
  }
  ~StoreTest() override {
    close();
    std::filesystem::remove_all(dir);
  }
  void open() {
    db = std::make_unique<Db>(dir.string(), opts, ex);
    sessions = std::make_unique<RocksSessionStore>(*db, mqtt);
    retained = std::make_unique<RocksRetainedStore>(*db, mqtt);
  }
  void close() {
    ex.drain_pending();
    sessions.reset();
    retained.reset();
    db.reset();
    ex.discard_pending();  // completions of the last writes: their Db is gone, as after a stop
  }
  void reopen() {
    close();
    open();
  }
  // Commits everything reported so far and waits for the outcome.
  bool commit() {
    std::optional<bool> result;
    sessions->commit([&](bool ok) { result = ok; });
    EXPECT_TRUE(ex.run_until([&] { return result.has_value(); }));
    return result.value_or(false);
  }
  std::shared_ptr<Session> session(const std::string& id) {
    return std::make_shared<Session>(id, true, 0, mqtt, *sessions);
  }

  std::filesystem::path dir;
  StorageOptions opts;
  core::MqttOptions mqtt;
  TestExecutor ex;
  core::WorkerCounters counters;
  std::unique_ptr<Db> db;
  std::unique_ptr<RocksSessionStore> sessions;
  std::unique_ptr<RocksRetainedStore> retained;
};

INSTANTIATE_TEST_SUITE_P(SyncModes, StoreTest, ::testing::Values("always", "batch", "none"));

TEST_P(StoreTest, SessionComesBackAfterReopenInOrder) {
  auto s = session("client-1");
  sessions->session_created(*s);
  s->subscriptions().insert_or_assign(std::string("a/+"), QoS::kExactlyOnce);
  sessions->subscription_set(*s, "a/+", QoS::kExactlyOnce);
  sessions->subscription_set(*s, "b/#", QoS::kAtLeastOnce);
  sessions->subscription_removed(*s, "b/#");
  s->detach(Clock::now());  // offline: deliveries are queued
  for (int i = 1; i <= 5; ++i) {
    s->deliver(message("a/x", "m" + std::to_string(i), QoS::kAtLeastOnce), QoS::kAtLeastOnce, false,
               counters);
  }
  sessions->inflight_sent(
      *s, 100, 7, {message("a/y", "in-flight", QoS::kExactlyOnce), QoS::kExactlyOnce, false});
  sessions->inflight_sent(*s, 101, 8,
                          {message("a/y", "pubrec'd", QoS::kExactlyOnce), QoS::kExactlyOnce, true});
  sessions->inflight_pubrec(*s, 101, 8);
  sessions->inbound_qos2_held(*s, 42);
  sessions->inbound_qos2_held(*s, 43);
  sessions->inbound_qos2_released(*s, 43);
  sessions->message_dequeued(*s, 1);
  ASSERT_TRUE(commit());

  reopen();
  auto loaded = sessions->load(Clock::now());
  ASSERT_EQ(loaded.size(), 1u);
  const Session::Snapshot& snap = loaded[0];
  EXPECT_EQ(snap.client_id, "client-1");
  EXPECT_EQ(snap.subscriptions,
            (std::map<std::string, QoS, std::less<>>{{"a/+", QoS::kExactlyOnce}}));
  ASSERT_EQ(snap.queue.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(snap.queue[i].seq, i + 2);
    EXPECT_EQ(std::string(snap.queue[i].out.message->payload), "m" + std::to_string(i + 2));
    EXPECT_EQ(snap.queue[i].out.qos, QoS::kAtLeastOnce);
  }
  ASSERT_EQ(snap.inflight.size(), 2u);
  EXPECT_EQ(snap.inflight[0].packet_id, 7);
  EXPECT_EQ(snap.inflight[0].seq, 100u);
  EXPECT_FALSE(snap.inflight[0].awaiting_pubcomp);
  EXPECT_EQ(snap.inflight[0].out.message->payload, "in-flight");
  EXPECT_EQ(snap.inflight[1].packet_id, 8);
  EXPECT_TRUE(snap.inflight[1].awaiting_pubcomp);
  EXPECT_EQ(snap.inbound_qos2, std::vector<std::uint16_t>{42});
  EXPECT_GT(snap.expires_at, Clock::now());

  // The snapshot restores into a session that continues where it stopped.
  auto restored = session("client-1");
  restored->restore(loaded[0]);
  EXPECT_EQ(restored->queued_count(), 4u);
  EXPECT_EQ(restored->inflight_count(), 2u);
  EXPECT_EQ(restored->snapshot().queue.back().seq, 5u);
}

TEST_P(StoreTest, EndedSessionLeavesNothing) {
  auto s = session("gone");
  sessions->session_created(*s);
  sessions->subscription_set(*s, "t", QoS::kAtLeastOnce);
  s->detach(Clock::now());
  s->deliver(message("t", "x", QoS::kAtLeastOnce), QoS::kAtLeastOnce, false, counters);
  sessions->inbound_qos2_held(*s, 1);
  auto other = session("gone2");  // a client id sharing the prefix survives
  sessions->session_created(*other);
  sessions->subscription_set(*other, "t", QoS::kAtMostOnce);
  sessions->session_ended(*s);
  ASSERT_TRUE(commit());
  reopen();
  auto loaded = sessions->load(Clock::now());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].client_id, "gone2");
  EXPECT_EQ(loaded[0].subscriptions.size(), 1u);
}

TEST_P(StoreTest, ExpiredSessionsArePurgedAtLoad) {
  mqtt.session_expiry_s = 1;
  auto s = session("old");
  sessions->session_created(*s);
  sessions->subscription_set(*s, "t", QoS::kAtLeastOnce);
  s->detach(Clock::now() - std::chrono::seconds(5));  // expired 4 s ago
  s->deliver(message("t", "x", QoS::kAtLeastOnce), QoS::kAtLeastOnce, false, counters);
  auto live = session("live");
  sessions->session_created(*live);  // online when the broker stopped: offline from the restart
  ASSERT_TRUE(commit());
  reopen();
  auto loaded = sessions->load(Clock::now());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].client_id, "live");
  EXPECT_GT(loaded[0].expires_at, Clock::now());
  // Purged from disk, not only skipped: a second load after another reopen finds nothing either.
  reopen();
  std::unique_ptr<rocksdb::Iterator> it(
      db->raw().NewIterator(rocksdb::ReadOptions(), db->cf(Cf::kQueue)));
  it->SeekToFirst();
  EXPECT_FALSE(it->Valid());
}

TEST_P(StoreTest, RetainedMessagesSurviveAndExpire) {
  mqtt.retained_max_age_s = 60;
  retained->set(message("r/1", "one", QoS::kAtLeastOnce, true));
  retained->set(message("r/2", "two", QoS::kExactlyOnce, true));
  retained->set(message("r/3", "three", QoS::kAtMostOnce, true));
  retained->set(message("r/3", "", QoS::kAtMostOnce, true));  // cleared
  retained->set(core::make_message("r/old", "stale", QoS::kAtMostOnce, true,
                                   Clock::now() - std::chrono::seconds(120)));
  ASSERT_TRUE(commit());
  reopen();
  EXPECT_EQ(retained->load(Clock::now()), 2u);
  std::map<std::string, std::pair<std::string, QoS>> got;
  retained->match("r/#", [&](const core::MessagePtr& m) {
    got[std::string(m->topic)] = {std::string(m->payload), m->qos};
  });
  EXPECT_EQ(got, (std::map<std::string, std::pair<std::string, QoS>>{
                     {"r/1", {"one", QoS::kAtLeastOnce}}, {"r/2", {"two", QoS::kExactlyOnce}}}));
}

TEST_P(StoreTest, DiskLimitDropsNewQueuedMessagesAndCountsThem) {
  opts.max_disk = 1;  // any database is bigger
  reopen();
  db->check_disk();
  ASSERT_TRUE(db->full());
  auto s = session("full");
  s->detach(Clock::now());
  s->deliver(message("t", "x", QoS::kAtLeastOnce), QoS::kAtLeastOnce, false, counters);
  EXPECT_EQ(s->queued_count(), 0u);
  EXPECT_EQ(counters.dropped_storage_full.get(), 1u);
  EXPECT_FALSE(retained->set(message("r", "x", QoS::kAtMostOnce, true)));
  EXPECT_TRUE(db->healthy());  // a policy, not a failure
}

TEST_P(StoreTest, FailedWriteIsReportedAndFailsTheStore) {
  auto s = session("f");
  sessions->session_created(*s);
  db->inject_write_failure();
  EXPECT_FALSE(commit());
  EXPECT_FALSE(sessions->healthy());
  EXPECT_EQ(db->stats().write_errors, 1u);
  sessions->subscription_set(*s, "t", QoS::kAtLeastOnce);
  EXPECT_FALSE(commit());  // no write is attempted after a failure, none is acknowledged
}

TEST_P(StoreTest, PendingUntilTheCommitCompletes) {
  EXPECT_FALSE(sessions->pending());
  auto s = session("p");
  sessions->session_created(*s);
  EXPECT_TRUE(sessions->pending());
  std::optional<bool> result;
  sessions->commit([&](bool ok) { result = ok; });
  EXPECT_TRUE(sessions->pending());  // submitted, not yet durable
  ASSERT_TRUE(ex.run_until([&] { return result.has_value(); }));
  ex.drain_pending();
  EXPECT_FALSE(sessions->pending());
}

// The user name of a session's last connection survives a restart: access rules checked at
// delivery to its subscriptions need it before the client comes back.
TEST_P(StoreTest, SessionKeepsItsUserName) {
  Session::Snapshot snap;
  snap.client_id = "named";
  snap.username = "alice";
  auto s = session("named");
  s->restore(snap);
  sessions->session_created(*s);
  s->detach(Clock::now());
  ASSERT_TRUE(commit());
  reopen();
  auto loaded = sessions->load(Clock::now());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].username, "alice");
}

// A QoS 2 publish is routed after its packet id is held. The copies other workers queue for it
// go into their own batches, so the held id is handed to the writer first: a crash can then never
// keep a copy but lose the id, which would route the publisher's resend a second time.
TEST_P(StoreTest, HeldInboundQos2IdIsSubmittedBeforeAnythingElse) {
  auto s = session("q2");
  sessions->session_created(*s);
  sessions->inbound_qos2_held(*s, 9);
  EXPECT_EQ(db->batch().Count(), 0u);
  EXPECT_TRUE(sessions->pending());
  ASSERT_TRUE(commit());
  reopen();
  auto loaded = sessions->load(Clock::now());
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded[0].inbound_qos2, std::vector<std::uint16_t>{9});
}

}  // namespace
}  // namespace meshmq::storage
