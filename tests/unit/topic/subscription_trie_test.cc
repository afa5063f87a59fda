#include "broker/topic/subscription_trie.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tests/unit/topic/match_cases.h"
#include "tests/unit/topic/reference_match.h"

namespace meshmq::topic {

struct SubscriptionTrieTestPeer {
  template <class Trie>
  static auto kind(const Trie& trie, std::string_view filter) {
    const auto* node = trie.find_node(filter);
    using Kind = std::remove_cvref_t<decltype(node->subs.kind())>;
    return node ? node->subs.kind() : Kind::kEmpty;
  }
};

namespace {

using testing::kMatchCases;
using testing::MatchCase;
using testing::reference_matches;

using Trie = SubscriptionTrie<int, int>;
using Kind = detail::SubscriberSet<int, int, std::hash<int>>::Kind;

// (id, data) pairs, sorted, so visits can be compared as multisets.
template <class T>
std::vector<std::pair<int, int>> matches(const T& trie, std::string_view topic) {
  std::vector<std::pair<int, int>> out;
  trie.match(topic, [&](const int& id, const int& data) { out.emplace_back(id, data); });
  std::sort(out.begin(), out.end());
  return out;
}

class MatchRule : public ::testing::TestWithParam<MatchCase> {};

TEST_P(MatchRule, SingleFilter) {
  const MatchCase& c = GetParam();
  ASSERT_EQ(reference_matches(c.filter, c.topic), c.matches) << "the reference disagrees";
  Trie trie;
  ASSERT_TRUE(trie.insert(c.filter, 7, 1));
  const auto got = matches(trie, c.topic);
  if (c.matches) {
    EXPECT_EQ(got, (std::vector<std::pair<int, int>>{{7, 1}}));
  } else {
    EXPECT_TRUE(got.empty());
  }
}

INSTANTIATE_TEST_SUITE_P(Mqtt311, MatchRule, ::testing::ValuesIn(kMatchCases));

// All filters of the table in one trie: each topic must see exactly the filters that match it,
// whatever else shares its nodes.
TEST(SubscriptionTrie, AllRulesInOneTrie) {
  Trie trie;
  std::vector<std::string_view> filters;
  for (const MatchCase& c : kMatchCases) {
    if (std::find(filters.begin(), filters.end(), c.filter) != filters.end()) continue;
    trie.insert(c.filter, static_cast<int>(filters.size()), 0);
    filters.push_back(c.filter);
  }
  for (const MatchCase& c : kMatchCases) {
    std::vector<std::pair<int, int>> want;
    for (std::size_t i = 0; i < filters.size(); ++i) {
      if (reference_matches(filters[i], c.topic)) want.emplace_back(static_cast<int>(i), 0);
    }
    EXPECT_EQ(matches(trie, c.topic), want) << c.topic;
  }
}

TEST(SubscriptionTrie, OverlappingFiltersOfOneSubscriberAreAllReported) {
  Trie trie;
  const char* filters[] = {"a/b", "a/+", "+/b", "#", "a/#", "+/+", "a/b/#", "+/#"};
  int data = 0;
  for (const char* f : filters) trie.insert(f, 1, data++);
  trie.insert("a/c", 1, 100);  // does not match
  const auto got = matches(trie, "a/b");
  std::vector<std::pair<int, int>> want;
  for (int i = 0; i < data; ++i) want.emplace_back(1, i);
  EXPECT_EQ(got, want);
  EXPECT_EQ(trie.size(), 9u);
  EXPECT_EQ(trie.filter_count(), 9u);
}

TEST(SubscriptionTrie, InsertReplacesData) {
  Trie trie;
  EXPECT_TRUE(trie.insert("a/+", 1, 0));
  EXPECT_TRUE(trie.insert("a/+", 2, 5));
  EXPECT_FALSE(trie.insert("a/+", 1, 2));
  EXPECT_EQ(trie.size(), 2u);
  EXPECT_EQ(trie.filter_count(), 1u);
  ASSERT_NE(trie.find("a/+", 1), nullptr);
  EXPECT_EQ(*trie.find("a/+", 1), 2);
  EXPECT_EQ(*trie.find("a/+", 2), 5);
  EXPECT_EQ(matches(trie, "a/x"), (std::vector<std::pair<int, int>>{{1, 2}, {2, 5}}));
}

TEST(SubscriptionTrie, FindAbsent) {
  Trie trie;
  trie.insert("a/b", 1, 0);
  EXPECT_EQ(trie.find("a/b", 2), nullptr);
  EXPECT_EQ(trie.find("a", 1), nullptr);  // an inner node, no subscribers
  EXPECT_EQ(trie.find("a/+", 1), nullptr);
  EXPECT_EQ(trie.find("a/b/c", 1), nullptr);
  EXPECT_EQ(trie.find("#", 1), nullptr);
}

TEST(SubscriptionTrie, EraseAbsentChangesNothing) {
  Trie trie;
  EXPECT_FALSE(trie.erase("a/b", 1));
  EXPECT_EQ(trie.node_count(), 1u);
  trie.insert("a/b", 1, 0);
  const std::size_t nodes = trie.node_count();
  EXPECT_FALSE(trie.erase("a/b", 2));    // other subscriber
  EXPECT_FALSE(trie.erase("a", 1));      // prefix of a filter
  EXPECT_FALSE(trie.erase("a/b/c", 1));  // longer
  EXPECT_FALSE(trie.erase("a/+", 1));
  EXPECT_FALSE(trie.erase("a/#", 1));
  EXPECT_EQ(trie.node_count(), nodes);
  EXPECT_EQ(trie.size(), 1u);
  EXPECT_TRUE(trie.erase("a/b", 1));
  EXPECT_FALSE(trie.erase("a/b", 1));  // twice
  EXPECT_TRUE(trie.empty());
}

TEST(SubscriptionTrie, EraseFreesNodes) {
  Trie trie;
  EXPECT_EQ(trie.node_count(), 1u);
  const char* filters[] = {"a/b/c", "a/b", "a/+/c", "a/#", "#", "+", "/", "a//b", "$SYS/#", "x"};
  for (int id = 0; id < 3; ++id) {
    for (const char* f : filters) trie.insert(f, id, id);
  }
  EXPECT_EQ(trie.size(), 30u);
  EXPECT_EQ(trie.filter_count(), 10u);
  // root + a, a/b, a/b/c, a/+, a/+/c, a/#, #, +, "", ""/"", a/"", a//b, $SYS, $SYS/#, x
  EXPECT_EQ(trie.node_count(), 16u);

  // Erasing a filter that is a prefix of another keeps the shared nodes.
  for (int id = 0; id < 3; ++id) EXPECT_TRUE(trie.erase("a/b", id));
  EXPECT_EQ(trie.node_count(), 16u);
  EXPECT_EQ(matches(trie, "a/b/c").size(), 12u);  // a/b/c, a/+/c, a/#, # for 3 ids
  for (int id = 0; id < 3; ++id) EXPECT_TRUE(trie.erase("a/b/c", id));
  EXPECT_EQ(trie.node_count(), 14u);  // a/b/c and then a/b freed

  for (int id = 0; id < 3; ++id) {
    for (const char* f : filters) trie.erase(f, id);
  }
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(trie.size(), 0u);
  EXPECT_EQ(trie.filter_count(), 0u);
  EXPECT_EQ(trie.node_count(), 1u);
  EXPECT_TRUE(matches(trie, "a/b/c").empty());
}

TEST(SubscriptionTrie, ManySiblingsGrowAndShrinkTheChildTable) {
  Trie trie;
  for (int i = 0; i < 5000; ++i) trie.insert("dev/" + std::to_string(i) + "/temp", i, i);
  EXPECT_EQ(trie.node_count(), 1 + 1 + 2 * 5000u);
  for (int i = 0; i < 5000; ++i) {
    const auto got = matches(trie, "dev/" + std::to_string(i) + "/temp");
    ASSERT_EQ(got, (std::vector<std::pair<int, int>>{{i, i}})) << i;
  }
  EXPECT_TRUE(matches(trie, "dev/5000/temp").empty());
  // Remove in an order unrelated to insertion, checking the survivors as the table shrinks.
  std::vector<int> order(5000);
  for (int i = 0; i < 5000; ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), std::mt19937(1));
  for (std::size_t k = 0; k < order.size(); ++k) {
    ASSERT_TRUE(trie.erase("dev/" + std::to_string(order[k]) + "/temp", order[k]));
    if (k % 500 == 0 || k > 4990) {
      for (std::size_t j = k + 1; j < order.size(); ++j) {
        const int i = order[j];
        ASSERT_NE(trie.find("dev/" + std::to_string(i) + "/temp", i), nullptr) << i;
      }
    }
  }
  EXPECT_EQ(trie.node_count(), 1u);
}

TEST(SubscriptionTrie, SubscriberStorageCrossesThresholdsBothWays) {
  using Set = detail::SubscriberSet<int, int, std::hash<int>>;
  constexpr int kMax = static_cast<int>(Set::kMaxVectorSubscribers);
  constexpr int kMin = static_cast<int>(Set::kMinMapSubscribers);
  constexpr int kIds = 10'000;
  Trie trie;
  auto expected_kind_growing = [&](int n) {
    return n == 1 ? Kind::kOne : n <= kMax ? Kind::kVector : Kind::kMap;
  };
  for (int n = 1; n <= kIds; ++n) {
    ASSERT_TRUE(trie.insert("big/+", n, n));
    if (n <= 2 * kMax) {
      ASSERT_EQ(SubscriptionTrieTestPeer::kind(trie, "big/+"), expected_kind_growing(n)) << n;
      ASSERT_EQ(matches(trie, "big/x").size(), static_cast<std::size_t>(n));
    }
  }
  EXPECT_EQ(SubscriptionTrieTestPeer::kind(trie, "big/+"), Kind::kMap);
  EXPECT_EQ(trie.size(), static_cast<std::size_t>(kIds));
  EXPECT_EQ(trie.filter_count(), 1u);
  // Replacing in the map keeps the count.
  EXPECT_FALSE(trie.insert("big/+", 42, -42));
  EXPECT_EQ(*trie.find("big/+", 42), -42);

  // Erase from the middle first, then downwards through the thresholds.
  std::vector<int> ids;
  for (int n = 1; n <= kIds; ++n) ids.push_back(n);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(2));
  for (std::size_t k = 0; k < ids.size(); ++k) {
    ASSERT_TRUE(trie.erase("big/+", ids[k]));
    ASSERT_FALSE(trie.erase("big/+", ids[k]));
    const int left = kIds - static_cast<int>(k) - 1;
    if (left < 2 * kMax) {
      const Kind want = left == 0     ? Kind::kEmpty
                        : left == 1   ? Kind::kOne
                        : left < kMin ? Kind::kVector
                                      : Kind::kMap;
      ASSERT_EQ(SubscriptionTrieTestPeer::kind(trie, "big/+"), want) << left;
      const auto got = matches(trie, "big/x");
      ASSERT_EQ(got.size(), static_cast<std::size_t>(left));
      for (std::size_t j = k + 1; j < ids.size(); ++j) {
        ASSERT_NE(trie.find("big/+", ids[j]), nullptr);
      }
    }
  }
  EXPECT_EQ(trie.node_count(), 1u);

  // Growing again from a vector that came back from the map.
  for (int n = 1; n <= kMax + 1; ++n) trie.insert("big/+", n, n);
  EXPECT_EQ(SubscriptionTrieTestPeer::kind(trie, "big/+"), Kind::kMap);
}

TEST(SubscriptionTrie, SharedPtrIdsAreReleased) {
  struct Session {
    int n;
  };
  using SessionPtr = std::shared_ptr<Session>;
  std::vector<SessionPtr> sessions;
  for (int i = 0; i < 40; ++i) sessions.push_back(std::make_shared<Session>(Session{i}));
  {
    SubscriptionTrie<SessionPtr, std::uint8_t> trie;
    for (const auto& s : sessions) {
      trie.insert("room/+/temp", s, 1);
      trie.insert("room/" + std::to_string(s->n) + "/temp", s, 2);
    }
    EXPECT_EQ(sessions[0].use_count(), 3);
    int visits = 0;
    trie.match("room/3/temp", [&](const SessionPtr& s, std::uint8_t qos) {
      ++visits;
      EXPECT_TRUE(qos == 1 || s->n == 3);
    });
    EXPECT_EQ(visits, 41);
    for (int i = 0; i < 20; ++i) trie.erase("room/+/temp", sessions[i]);
    EXPECT_EQ(sessions[0].use_count(), 2);
    EXPECT_EQ(sessions[39].use_count(), 3);
  }  // the destructor drops the rest
  for (const auto& s : sessions) EXPECT_EQ(s.use_count(), 1);
}

TEST(SubscriptionTrie, MoveAndClear) {
  Trie a;
  a.insert("a/b", 1, 1);
  a.insert("#", 2, 2);
  Trie b(std::move(a));
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(matches(b, "a/b").size(), 2u);
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_EQ(a.node_count(), 1u);
  a.insert("x", 3, 3);
  a = std::move(b);
  EXPECT_EQ(a.size(), 2u);
  EXPECT_EQ(a.find("x", 3), nullptr);
  a.clear();
  EXPECT_TRUE(a.empty());
  EXPECT_EQ(a.node_count(), 1u);
  EXPECT_TRUE(matches(a, "a/b").empty());
}

// A filter as deep as a maximum-size packet allows must not overflow the stack on teardown.
TEST(SubscriptionTrie, DeepFilter) {
  std::string filter = "a";
  for (int i = 0; i < 20'000; ++i) filter += "/a";
  Trie trie;
  trie.insert(filter, 1, 1);
  trie.insert(filter + "/#", 2, 2);
  EXPECT_EQ(matches(trie, filter).size(), 2u);
  EXPECT_TRUE(trie.erase(filter, 1));
  EXPECT_EQ(trie.size(), 1u);
}

// A level no MQTT packet can carry is refused, and the nodes created for the levels before it are
// freed again.
TEST(SubscriptionTrie, OverlongLevelThrowsAndLeavesNothingBehind) {
  Trie trie;
  trie.insert("a/b", 1, 1);
  const std::string filter = "a/x/" + std::string(70'000, 'l');
  EXPECT_THROW(trie.insert(filter, 2, 2), std::length_error);
  EXPECT_EQ(trie.node_count(), 3u);
  EXPECT_EQ(trie.size(), 1u);
  const std::string longest = "a/" + std::string(0xffff, 'l');
  EXPECT_TRUE(trie.insert(longest, 3, 3));
  EXPECT_EQ(matches(trie, longest), (std::vector<std::pair<int, int>>{{3, 3}}));
}

// Random filters and topics over a small alphabet, so that they collide often, including empty
// levels and '$' levels; every match is compared with the brute-force reference.
TEST(SubscriptionTrie, RandomAgainstReference) {
  std::mt19937 rng(12345);
  const std::string_view alphabet[] = {"a", "b", "", "$", "$a", "ab"};
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  auto random_name = [&](bool filter) {
    const int levels = 1 + pick(4);
    std::string s;
    for (int i = 0; i < levels; ++i) {
      if (i) s += '/';
      const int r = pick(10);
      if (filter && r == 0) {
        s += '+';
      } else if (filter && r == 1 && i == levels - 1) {
        s += '#';
      } else {
        s += alphabet[pick(6)];
      }
    }
    if (s.empty()) s = "a";
    return s;
  };

  Trie trie;
  std::map<std::pair<std::string, int>, int> model;  // (filter, id) -> data
  int next_data = 0;
  std::size_t visits = 0;
  auto check = [&](const std::string& topic) {
    std::vector<std::pair<int, int>> want;
    for (const auto& [key, data] : model) {
      if (reference_matches(key.first, topic)) want.emplace_back(key.second, data);
    }
    std::sort(want.begin(), want.end());
    visits += want.size();
    ASSERT_EQ(matches(trie, topic), want) << "topic \"" << topic << '"';
  };

  for (int round = 0; round < 20; ++round) {
    for (int op = 0; op < 150; ++op) {
      std::string filter = random_name(true);
      int id = pick(8);
      if (!model.empty() && pick(4) == 0) {  // erase something that exists
        auto it = std::next(model.begin(), pick(static_cast<int>(model.size())));
        filter = it->first.first;
        id = it->first.second;
        ASSERT_TRUE(trie.erase(filter, id)) << filter;
        model.erase(it);
      } else if (pick(3) != 0) {
        const int data = next_data++;
        const bool is_new = model.insert_or_assign({filter, id}, data).second;
        ASSERT_EQ(trie.insert(filter, id, data), is_new) << filter;
      } else {
        ASSERT_EQ(trie.erase(filter, id), model.erase({filter, id}) == 1) << filter;
      }
    }
    ASSERT_EQ(trie.size(), model.size());
    for (int t = 0; t < 100; ++t) check(random_name(false));
    for (const auto& [key, data] : model) {
      const int* got = trie.find(key.first, key.second);
      ASSERT_TRUE(got && *got == data) << key.first;
    }
  }

  EXPECT_GT(visits, 10'000u) << "the alphabet is too large for filters and topics to meet";
  for (const auto& [key, data] : model) ASSERT_TRUE(trie.erase(key.first, key.second));
  EXPECT_TRUE(trie.empty());
  EXPECT_EQ(trie.filter_count(), 0u);
  EXPECT_EQ(trie.node_count(), 1u);
}

}  // namespace
}  // namespace meshmq::topic
