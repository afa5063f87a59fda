// The cluster's durable state: the outbox for down nodes (bounded, survives a reopen, acknowledged
// entries gone) and retained-message versions with tombstones; the durable flag of routes.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "broker/cluster/durable_routes.h"
#include "broker/cluster/outbox.h"
#include "broker/cluster/retained_versions.h"
#include "broker/cluster/routes.h"
#include "broker/storage/db.h"
#include "broker/storage/encoding.h"

namespace meshmq::cluster {
namespace {

// The outbox and tombstones write through Db::write_now / raw(): no worker completions.
class NoWorkers final : public core::Executor {
 public:
  std::size_t size() const override { return 1; }
  std::size_t current() const override { return 0; }
  void post(std::size_t, std::function<void()>) override {}
};

class DurableTest : public ::testing::Test {
 protected:
  DurableTest() {
    spdlog::set_level(spdlog::level::warn);
    dir = std::filesystem::temp_directory_path() /
          ("meshmq-durable-test-" + std::to_string(::getpid()) + "-" + std::to_string(++instance));
    std::filesystem::remove_all(dir);
    open();
  }
  ~DurableTest() override {
    db.reset();
    std::filesystem::remove_all(dir);
  }
  void open() {
    db.reset();
    db = std::make_unique<storage::Db>(dir.string(), storage::StorageOptions{}, ex);
  }
  static inline int instance = 0;
  std::filesystem::path dir;
  NoWorkers ex;
  std::unique_ptr<storage::Db> db;
};

// Counts `durable` callbacks (they run on the outbox's writer thread).
struct Durable {
  std::mutex mu;
  std::condition_variable cv;
  int count = 0;
  std::function<void()> fn() {
    return [this] {
      std::lock_guard lock(mu);
      ++count;
      cv.notify_all();
    };
  }
  bool wait(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(10), [&] { return count >= n; });
  }
};

core::MessagePtr msg(const std::string& topic, const std::string& payload) {
  return core::make_message(topic, payload, core::QoS::kAtLeastOnce, false);
}

TEST_F(DurableTest, OutboxKeepsUnacknowledgedEntriesAcrossAReopenInOrder) {
  Durable d;
  std::uint64_t acked = 0;
  {
    Outbox o(db.get(), 100);
    EXPECT_TRUE(o.load().empty());
    for (int i = 0; i < 5; ++i) {
      const auto key =
          o.add("n2", msg("t/" + std::to_string(i), "p" + std::to_string(i)), {}, d.fn());
      ASSERT_NE(key, 0u);
      if (i == 1) acked = key;
    }
    o.add("n3", msg("x", "y"), {}, d.fn());
    ASSERT_TRUE(d.wait(6));
    o.remove("n2", acked);
    EXPECT_EQ(o.size("n2"), 4u);
    EXPECT_EQ(o.stored(), 5u);
  }  // the writer finishes its queue before it stops
  open();
  Outbox o(db.get(), 100);
  auto loaded = o.load();
  std::vector<std::string> got;
  for (auto& s : loaded)
    got.push_back(s.peer + ":" + std::string(s.message->topic) + "=" +
                  std::string(s.message->payload));
  EXPECT_EQ(got, (std::vector<std::string>{"n2:t/0=p0", "n2:t/2=p2", "n2:t/3=p3", "n2:t/4=p4",
                                           "n3:x=y"}));
  EXPECT_EQ(o.size("n2"), 4u);
  // New keys continue after the loaded ones, so they sort after them.
  EXPECT_GT(o.add("n2", msg("t/5", "p5"), {}, nullptr), loaded.back().key);
}

// An entry keeps the shared groups it was picked for; one written before groups were stored
// (first format: u16 topic length, topic, message) still loads, without groups.
TEST_F(DurableTest, OutboxEntriesKeepTheirSharedGroupsAcrossAReopen) {
  Durable d;
  {
    Outbox o(db.get(), 100);
    o.load();
    o.add("n2", msg("t/a", "shared"), SharedFor{{"$share/g/t/+", "$queue/t/a"}, true}, d.fn());
    o.add("n2", msg("t/b", "plain"), {}, d.fn());
    ASSERT_TRUE(d.wait(2));
  }
  std::string old_key = "n2";
  old_key.push_back('\0');
  old_key.append(7, '\0');
  old_key.push_back(static_cast<char>(99));
  std::string old_value{'\0', '\3'};
  old_value.append("t/c");
  old_value.append(storage::encode_retained(*msg("t/c", "old")));
  db->raw().Put(rocksdb::WriteOptions(), db->cf(storage::Cf::kOutbox), old_key, old_value);
  open();
  Outbox o(db.get(), 100);
  auto loaded = o.load();
  ASSERT_EQ(loaded.size(), 3u);
  EXPECT_EQ(loaded[0].message->payload, "shared");
  EXPECT_EQ(loaded[0].shared.groups, (std::vector<std::string>{"$share/g/t/+", "$queue/t/a"}));
  EXPECT_TRUE(loaded[0].shared.only);
  EXPECT_EQ(loaded[1].message->payload, "plain");
  EXPECT_TRUE(loaded[1].shared.groups.empty());
  EXPECT_FALSE(loaded[1].shared.only);
  EXPECT_EQ(loaded[2].message->topic, "t/c");
  EXPECT_EQ(loaded[2].message->payload, "old");
  EXPECT_TRUE(loaded[2].shared.groups.empty());
}

TEST_F(DurableTest, OutboxIsBoundedPerPeerAndCountsDrops) {
  Durable d;
  Outbox o(db.get(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_NE(o.add("n2", msg("t", "p"), {}, d.fn()), 0u);
  EXPECT_EQ(o.add("n2", msg("t", "p"), {}, d.fn()), 0u);
  EXPECT_EQ(o.add("n2", msg("t", "p"), {}, d.fn()), 0u);
  EXPECT_NE(o.add("n3", msg("t", "p"), {}, d.fn()), 0u);  // another peer has its own bound
  EXPECT_EQ(o.dropped(), 2u);
  ASSERT_TRUE(d.wait(4));
  EXPECT_EQ(d.count, 4);  // dropped entries never report durable
}

TEST(OutboxMemory, WithoutADatabaseEntriesAreBoundedAndReportedAtOnce) {
  Durable d;
  Outbox o(nullptr, 2);
  EXPECT_TRUE(o.load().empty());
  EXPECT_NE(o.add("n2", msg("t", "p"), {}, d.fn()), 0u);
  EXPECT_NE(o.add("n2", msg("t", "p"), {}, d.fn()), 0u);
  EXPECT_EQ(o.add("n2", msg("t", "p"), {}, d.fn()), 0u);
  EXPECT_TRUE(d.wait(2));
}

struct VersionCase {
  const char* name;
  std::vector<std::tuple<std::string, std::int64_t, bool>> writes;  // topic, ts, cleared
  std::int64_t purge_at;
  std::vector<std::string> tombstones_after_reopen;
};

class TombstoneCases : public DurableTest, public ::testing::WithParamInterface<VersionCase> {};

TEST_P(TombstoneCases, ClearsAreRememberedUntilTheTtl) {
  const VersionCase& c = GetParam();
  {
    RetainedVersions v(db.get(), 1000);
    v.load(0);
    for (auto& [topic, ts, cleared] : c.writes) v.record(topic, {ts, "a"}, cleared);
    v.purge(c.purge_at);
  }
  open();
  RetainedVersions v(db.get(), 1000);
  v.load(c.purge_at);
  std::vector<std::string> got;
  v.for_each_tombstone([&](const std::string& t, const RetainedVersion&) { got.push_back(t); });
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, c.tombstones_after_reopen) << c.name;
  EXPECT_EQ(v.tombstones(), got.size());
}

INSTANTIATE_TEST_SUITE_P(
    Table, TombstoneCases,
    ::testing::Values(
        VersionCase{"a clear is a tombstone", {{"a", 10, true}}, 20, {"a"}},
        VersionCase{
            "a set after the clear removes it", {{"a", 10, true}, {"a", 11, false}}, 20, {}},
        VersionCase{"sets leave none", {{"a", 10, false}, {"b", 10, false}}, 20, {}},
        VersionCase{"expired after the ttl", {{"a", 10, true}, {"b", 900, true}}, 1500, {"b"}}));

TEST(RetainedVersions, OwnWritesAreOrderedDespiteAClockStepBack) {
  RetainedVersions v(nullptr, 1000);
  v.record("t", {500, "b"}, false);
  const RetainedVersion next = v.next("t", 100, "a");  // our clock is behind
  EXPECT_LT((RetainedVersion{500, "b"}), next);
  EXPECT_EQ(v.next("u", 100, "a").ts, 100);
}

TEST(DurableRoutes, DurableWhileAPersistentSessionUsesTheFilter) {
  LocalRoutes r;
  EXPECT_TRUE(r.add("a", false).route);
  const auto c = r.add("a", true);
  EXPECT_FALSE(c.route);
  EXPECT_TRUE(c.durable);
  EXPECT_FALSE(r.add("a", true).durable);  // a second persistent session
  EXPECT_FALSE(r.remove("a", true).durable);
  EXPECT_TRUE(r.remove("a", true).durable);
  EXPECT_TRUE(r.durable_filters().empty());
  EXPECT_TRUE(r.remove("a", false).route);
}

TEST(DurableRoutes, WithdrawingADownNodeKeepsItsDurableRoutes) {
  RemoteRoutes r;
  r.replace(7, {"a", "b", "c"});
  r.set_durable(7, {"b"});
  r.change_durable(7, {"c", "zzz"}, {});
  auto diff = r.withdraw_transient(7);
  ASSERT_EQ(diff.size(), 1u);
  EXPECT_EQ(diff[0].filter, "a");
  EXPECT_FALSE(diff[0].add);
  EXPECT_EQ(r.size(7), 2u);
  EXPECT_TRUE(r.durable(7, "b"));
  EXPECT_FALSE(r.durable(7, "zzz"));  // not a route of the node
  // Its snapshot on return replaces everything, durable or not.
  diff = r.replace(7, {"a"});
  EXPECT_EQ(diff.size(), 3u);
  EXPECT_FALSE(r.durable(7, "b"));
}

// What a node keeps on disk of another node's durable routes follows every way the set changes
// (snapshot, delta, removed filter), and survives a reopen; a snapshot without them forgets them.
TEST_F(DurableTest, DurableRoutesOfOtherNodesFollowTheirChangesAcrossAReopen) {
  auto store_changes = [](RemoteRoutes& r, DurableRouteStore& s) {
    for (const auto& c : r.take_durable_changes()) {
      s.record(c.node == 7 ? "n7" : "n8", c.filter, c.durable);
    }
    s.commit();
  };
  auto sorted = [](std::vector<std::string> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  {
    RemoteRoutes r;
    DurableRouteStore s(db.get());
    EXPECT_TRUE(s.load().empty());
    r.replace(7, {"a", "b", "c", "d"});
    r.set_durable(7, {"a", "b", "zzz"});  // zzz: not a route of the node
    r.replace(8, {"x"});
    r.set_durable(8, {"x"});
    store_changes(r, s);
    r.change_durable(7, {"c"}, {"a"});
    r.apply(7, {}, {"b"});  // its last subscriber left: no longer durable either
    r.withdraw_transient(7);
    store_changes(r, s);
    EXPECT_EQ(sorted(r.durable_filters(7)), (std::vector<std::string>{"c"}));
  }
  open();
  {
    DurableRouteStore s(db.get());
    auto loaded = s.load();
    ASSERT_EQ(loaded.size(), 2u);
    EXPECT_EQ(loaded["n7"], (std::vector<std::string>{"c"}));
    EXPECT_EQ(loaded["n8"], (std::vector<std::string>{"x"}));
    // n8 returns; its snapshot has no persistent session any more.
    RemoteRoutes r;
    r.replace(8, {"x"});
    r.set_durable(8, {"x"});
    r.take_durable_changes();
    r.replace(8, {"x", "y"});
    r.set_durable(8, {});
    store_changes(r, s);
  }
  open();
  DurableRouteStore s(db.get());
  auto loaded = s.load();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_EQ(loaded.begin()->first, "n7");
}

TEST(DurableRoutes, ChangesAreReportedOnceEach) {
  RemoteRoutes r;
  r.replace(7, {"a", "b"});
  r.set_durable(7, {"a"});
  r.set_durable(7, {"a"});         // no change
  r.change_durable(7, {"a"}, {});  // nor this
  auto c = r.take_durable_changes();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].filter, "a");
  EXPECT_TRUE(c[0].durable);
  r.replace(7, {"b"});  // a left the node's routes
  c = r.take_durable_changes();
  ASSERT_EQ(c.size(), 1u);
  EXPECT_FALSE(c[0].durable);
  EXPECT_TRUE(r.take_durable_changes().empty());
}

}  // namespace
}  // namespace meshmq::cluster
