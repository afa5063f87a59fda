// Route refcounting, remote route diffs and digests (anti-entropy compares them).
#include "broker/cluster/routes.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace meshmq::cluster {
namespace {

struct RefCase {
  const char* name;
  std::vector<std::pair<bool, std::string>> ops;  // add?, filter
  std::vector<bool> announced;                    // expected return of each op
  std::size_t size;
};

class LocalRoutesCases : public ::testing::TestWithParam<RefCase> {};

TEST_P(LocalRoutesCases, OneRoutePerFilterHoweverManyClients) {
  const RefCase& c = GetParam();
  LocalRoutes r;
  for (std::size_t i = 0; i < c.ops.size(); ++i) {
    auto& [add, filter] = c.ops[i];
    EXPECT_EQ(add ? r.add(filter) : r.remove(filter), c.announced[i]) << c.name << " op " << i;
  }
  EXPECT_EQ(r.size(), c.size);
  EXPECT_EQ(r.digest().count, c.size);
}

INSTANTIATE_TEST_SUITE_P(
    Table, LocalRoutesCases,
    ::testing::Values(
        RefCase{"first add announces", {{true, "a/#"}}, {true}, 1},
        RefCase{"second client shares", {{true, "a/#"}, {true, "a/#"}}, {true, false}, 1},
        RefCase{"last remove withdraws",
                {{true, "a/#"}, {true, "a/#"}, {false, "a/#"}, {false, "a/#"}},
                {true, false, false, true},
                0},
        RefCase{"unknown remove ignored", {{false, "x"}, {true, "x"}}, {false, true}, 1},
        RefCase{
            "distinct filters", {{true, "a"}, {true, "b"}, {false, "a"}}, {true, true, true}, 1}));

TEST(LocalRoutes, DigestDependsOnTheSetNotTheOrder) {
  LocalRoutes a, b;
  a.add("x/+");
  a.add("y/#");
  b.add("y/#");
  b.add("z");
  b.add("x/+");
  b.remove("z");
  EXPECT_EQ(a.digest(), b.digest());
  b.add("z");
  EXPECT_NE(a.digest(), b.digest());
}

std::vector<std::string> describe(std::vector<core::RemoteRoute> diff) {
  std::vector<std::string> out;
  for (auto& r : diff) out.push_back((r.add ? "+" : "-") + r.filter + "@" + std::to_string(r.node));
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RemoteRoutes, SnapshotReplacesAndReturnsTheDiff) {
  RemoteRoutes r;
  EXPECT_EQ(describe(r.replace(1, {"a", "b"})), (std::vector<std::string>{"+a@1", "+b@1"}));
  EXPECT_EQ(describe(r.replace(1, {"b", "c"})), (std::vector<std::string>{"+c@1", "-a@1"}));
  EXPECT_EQ(describe(r.replace(2, {"b"})), (std::vector<std::string>{"+b@2"}));
  EXPECT_EQ(r.size(1), 2u);
}

TEST(RemoteRoutes, DeltasAreIdempotent) {
  RemoteRoutes r;
  EXPECT_EQ(describe(r.apply(3, {"a", "a"}, {})), (std::vector<std::string>{"+a@3"}));
  EXPECT_EQ(describe(r.apply(3, {"a"}, {"zz"})), (std::vector<std::string>{}));
  EXPECT_EQ(describe(r.apply(3, {}, {"a"})), (std::vector<std::string>{"-a@3"}));
}

TEST(RemoteRoutes, WithdrawRemovesEverythingOfThatNodeOnly) {
  RemoteRoutes r;
  r.replace(1, {"a", "b"});
  r.replace(2, {"a"});
  EXPECT_EQ(describe(r.withdraw(1)), (std::vector<std::string>{"-a@1", "-b@1"}));
  EXPECT_EQ(r.size(2), 1u);
}

// Anti-entropy: a lost delta shows up as a digest mismatch; the snapshot repairs it.
TEST(RemoteRoutes, LostDeltaIsDetectedByDigestAndRepairedBySnapshot) {
  LocalRoutes origin;
  RemoteRoutes peer;
  origin.add("a");
  peer.apply(7, {"a"}, {});
  origin.add("b");  // its delta is lost
  EXPECT_NE(peer.digest(7), origin.digest());
  peer.replace(7, origin.filters());
  EXPECT_EQ(peer.digest(7), origin.digest());
}

}  // namespace
}  // namespace meshmq::cluster
