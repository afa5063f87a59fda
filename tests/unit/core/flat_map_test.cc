// FlatMap keeps std::map's behaviour for the operations the core uses (it replaced one).
#include "broker/core/flat_map.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace meshmq::core {
namespace {

struct Op {
  char kind;  // 's'et, 'e'rase, 'c'lear
  std::string key;
  int value;
};

TEST(FlatMap, BehavesLikeStdMap) {
  const std::vector<std::vector<Op>> cases = {
      {{'s', "b", 1}, {'s', "a", 2}, {'s', "c", 3}},
      {{'s', "a", 1}, {'s', "a", 2}},
      {{'s', "a", 1}, {'e', "a", 0}, {'e', "a", 0}, {'s', "b", 2}},
      {{'s', "x/#", 1}, {'s', "x/+", 0}, {'c', "", 0}, {'s', "y", 2}},
      {{'e', "missing", 0}},
  };
  for (const auto& ops : cases) {
    FlatMap<std::string, int> flat;
    std::map<std::string, int, std::less<>> ref;
    for (const Op& op : ops) {
      switch (op.kind) {
        case 's': {
          auto [it, added] = flat.insert_or_assign(op.key, op.value);
          auto [rit, radded] = ref.insert_or_assign(op.key, op.value);
          EXPECT_EQ(added, radded);
          EXPECT_EQ(it->first, rit->first);
          break;
        }
        case 'e':
          EXPECT_EQ(flat.erase(std::string_view(op.key)), ref.erase(op.key));
          break;
        case 'c':
          flat.clear();
          ref.clear();
          break;
      }
      ASSERT_EQ(flat.size(), ref.size());
      auto rit = ref.begin();
      for (const auto& [k, v] : flat) {  // same order as std::map
        EXPECT_EQ(k, rit->first);
        EXPECT_EQ(v, rit->second);
        EXPECT_TRUE(flat.contains(std::string_view(k)));
        ++rit;
      }
    }
  }
}

}  // namespace
}  // namespace meshmq::core
