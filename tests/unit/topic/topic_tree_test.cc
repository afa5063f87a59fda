#include "broker/topic/topic_tree.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/topic/match_cases.h"
#include "tests/unit/topic/reference_match.h"

namespace meshmq::topic {
namespace {

using testing::kMatchCases;
using testing::MatchCase;
using testing::reference_matches;

using Tree = TopicTree<int>;

template <class T>
std::vector<std::pair<std::string, int>> matches(T& tree, std::string_view filter) {
  std::vector<std::pair<std::string, int>> out;
  tree.match(filter, [&](std::string_view topic, auto& value) { out.emplace_back(topic, value); });
  std::sort(out.begin(), out.end());
  return out;
}

class TreeMatchRule : public ::testing::TestWithParam<MatchCase> {};

TEST_P(TreeMatchRule, SingleTopic) {
  const MatchCase& c = GetParam();
  Tree tree;
  ASSERT_TRUE(tree.set(c.topic, 7));
  const auto got = matches(tree, c.filter);
  if (c.matches) {
    EXPECT_EQ(got, (std::vector<std::pair<std::string, int>>{{std::string(c.topic), 7}}));
  } else {
    EXPECT_TRUE(got.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Mqtt311, TreeMatchRule, ::testing::ValuesIn(kMatchCases));

// Every topic of the table in one tree, matched by every filter.
TEST(TopicTree, AllRulesInOneTree) {
  Tree tree;
  std::set<std::string> topics;
  for (const MatchCase& c : kMatchCases) topics.emplace(c.topic);
  for (const std::string& t : topics) tree.set(t, static_cast<int>(t.size()));
  for (const MatchCase& c : kMatchCases) {
    std::vector<std::pair<std::string, int>> want;
    for (const std::string& t : topics) {
      if (reference_matches(c.filter, t)) want.emplace_back(t, static_cast<int>(t.size()));
    }
    EXPECT_EQ(matches(tree, c.filter), want) << c.filter;
    const Tree& const_tree = tree;
    EXPECT_EQ(matches(const_tree, c.filter), want) << c.filter;
  }
}

TEST(TopicTree, SetFindErase) {
  Tree tree;
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.node_count(), 1u);
  EXPECT_TRUE(tree.set("a/b", 1));
  EXPECT_TRUE(tree.set("a", 2));
  EXPECT_FALSE(tree.set("a/b", 3));  // replaces
  EXPECT_EQ(tree.size(), 2u);
  ASSERT_NE(tree.find("a/b"), nullptr);
  EXPECT_EQ(*tree.find("a/b"), 3);
  EXPECT_EQ(*tree.find("a"), 2);
  EXPECT_EQ(tree.find("a/"), nullptr);
  EXPECT_EQ(tree.find("a/b/c"), nullptr);
  EXPECT_EQ(tree.find("b"), nullptr);
  *tree.find("a") = 20;
  EXPECT_EQ(*std::as_const(tree).find("a"), 20);

  EXPECT_FALSE(tree.erase("a/b/c"));
  EXPECT_FALSE(tree.erase("b"));
  EXPECT_TRUE(tree.erase("a"));  // a/b keeps the node
  EXPECT_FALSE(tree.erase("a"));
  EXPECT_EQ(tree.find("a"), nullptr);
  EXPECT_EQ(tree.node_count(), 3u);
  EXPECT_TRUE(tree.erase("a/b"));
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.node_count(), 1u);
}

TEST(TopicTree, MatchWithWildcards) {
  Tree tree;
  const char* topics[] = {"sport",         "sport/",   "sport/tennis", "sport/tennis/player1",
                          "sport/golf",    "/finance", "$SYS/uptime",  "$SYS/broker/clients",
                          "other//double", "a"};
  int v = 0;
  for (const char* t : topics) tree.set(t, v++);
  using R = std::vector<std::pair<std::string, int>>;
  EXPECT_EQ(matches(tree, "sport/#"), (R{{"sport", 0},
                                         {"sport/", 1},
                                         {"sport/golf", 4},
                                         {"sport/tennis", 2},
                                         {"sport/tennis/player1", 3}}));
  EXPECT_EQ(matches(tree, "sport/+"), (R{{"sport/", 1}, {"sport/golf", 4}, {"sport/tennis", 2}}));
  EXPECT_EQ(matches(tree, "+"), (R{{"a", 9}, {"sport", 0}}));
  EXPECT_EQ(matches(tree, "+/+"),
            (R{{"/finance", 5}, {"sport/", 1}, {"sport/golf", 4}, {"sport/tennis", 2}}));
  EXPECT_EQ(matches(tree, "#").size(), 8u);  // not the two $SYS topics
  EXPECT_EQ(matches(tree, "$SYS/#"), (R{{"$SYS/broker/clients", 7}, {"$SYS/uptime", 6}}));
  EXPECT_EQ(matches(tree, "$SYS/+"), (R{{"$SYS/uptime", 6}}));
  EXPECT_EQ(matches(tree, "other/+/double"), (R{{"other//double", 8}}));
  EXPECT_TRUE(matches(tree, "nothing/#").empty());

  // fn may change the values it is given.
  tree.match("sport/+", [](std::string_view, int& value) { value = -1; });
  EXPECT_EQ(*tree.find("sport/golf"), -1);
  EXPECT_EQ(*tree.find("sport"), 0);
}

TEST(TopicTree, ForEachVisitsEverything) {
  Tree tree;
  std::map<std::string, int> want = {{"a", 1}, {"a/b", 2}, {"$x", 3}, {"/", 4}, {"c/d/e", 5}};
  for (const auto& [t, v] : want) tree.set(t, v);
  std::map<std::string, int> got;
  std::as_const(tree).for_each([&](std::string_view t, const int& v) { got.emplace(t, v); });
  EXPECT_EQ(got, want);
  tree.for_each([](std::string_view, int& v) { v *= 10; });
  EXPECT_EQ(*tree.find("c/d/e"), 50);
}

TEST(TopicTree, MoveOnlyValuesAndRelease) {
  auto counter = std::make_shared<int>(0);
  {
    TopicTree<std::shared_ptr<int>> tree;
    tree.set("a/b", counter);
    tree.set("a/c", counter);
    EXPECT_EQ(counter.use_count(), 3);
    tree.erase("a/b");
    EXPECT_EQ(counter.use_count(), 2);
    TopicTree<std::shared_ptr<int>> moved(std::move(tree));
    EXPECT_EQ(moved.size(), 1u);
    EXPECT_EQ(tree.size(), 0u);  // NOLINT(bugprone-use-after-move)
  }
  EXPECT_EQ(counter.use_count(), 1);
  TopicTree<std::unique_ptr<int>> owned;
  owned.set("x", std::make_unique<int>(5));
  EXPECT_EQ(**owned.find("x"), 5);
}

TEST(TopicTree, OverlongLevelThrowsAndLeavesNothingBehind) {
  Tree tree;
  EXPECT_THROW(tree.set("a/b/" + std::string(70'000, 'l'), 1), std::length_error);
  EXPECT_EQ(tree.node_count(), 1u);
  EXPECT_TRUE(tree.empty());
}

TEST(TopicTree, RandomAgainstReference) {
  std::mt19937 rng(777);
  const std::string_view alphabet[] = {"a", "b", "", "$", "$a", "ab"};
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto random_name = [&](bool filter) {
    const int levels = 1 + pick(4);
    std::string s;
    for (int i = 0; i < levels; ++i) {
      if (i) s += '/';
      const int r = pick(8);
      if (filter && r == 0) {
        s += '+';
      } else if (filter && r == 1 && i == levels - 1) {
        s += '#';
      } else {
        s += alphabet[pick(6)];
      }
    }
    if (s.empty()) s = "b";
    return s;
  };

  Tree tree;
  std::map<std::string, int> model;
  std::size_t visits = 0;
  for (int round = 0; round < 20; ++round) {
    for (int op = 0; op < 100; ++op) {
      const std::string topic = random_name(false);
      if (pick(3) != 0) {
        const int v = pick(1000);
        ASSERT_EQ(tree.set(topic, v), model.insert_or_assign(topic, v).second);
      } else {
        ASSERT_EQ(tree.erase(topic), model.erase(topic) == 1);
      }
    }
    ASSERT_EQ(tree.size(), model.size());
    for (int f = 0; f < 100; ++f) {
      const std::string filter = random_name(true);
      std::vector<std::pair<std::string, int>> want;
      for (const auto& [t, v] : model) {
        if (reference_matches(filter, t)) want.emplace_back(t, v);
      }
      visits += want.size();
      ASSERT_EQ(matches(tree, filter), want) << "filter \"" << filter << '"';
    }
  }
  EXPECT_GT(visits, 5'000u) << "the alphabet is too large for filters and topics to meet";
  for (const auto& [t, v] : model) ASSERT_TRUE(tree.erase(t));
  EXPECT_TRUE(tree.empty());
  EXPECT_EQ(tree.node_count(), 1u);
}

}  // namespace
}  // namespace meshmq::topic
