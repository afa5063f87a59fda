// filter_covers / filters_overlap: the filter-to-filter relations access rules are built on.
#include <gtest/gtest.h>

#include <string_view>

#include "broker/codec/topic_rules.h"

namespace meshmq::codec {
namespace {

struct Relation {
  std::string_view outer;
  std::string_view inner;
  bool covers;
  bool overlap;
};

constexpr Relation kRelations[] = {
    {"a/b", "a/b", true, true},
    {"a/b", "a/c", false, false},
    {"a/+", "a/b", true, true},
    {"a/+", "a/+", true, true},
    {"a/b", "a/+", false, true},
    {"a/+", "a/#", false, true},  // a/# also matches "a" and "a/b/c"
    {"a/#", "a/+", true, true},
    {"a/#", "a/#", true, true},
    {"a/#", "a", true, true},  // "sport/#" matches "sport"
    {"a/#", "a/b/c/d", true, true},
    {"a", "a/#", false, true},
    {"a/+", "a", false, false},
    {"a/+/c", "a/b/+", false, true},
    {"+/+", "/finance", true, true},
    {"#", "anything/at/all", true, true},
    {"#", "#", true, true},
    {"#", "$SYS/x", false, false},  // 4.7.2: wildcards first never reach '$' topics
    {"+/x", "$SYS/x", false, false},
    {"$SYS/#", "$SYS/x", true, true},
    {"$SYS/#", "#", false, false},
    {"test/nosubscribe", "test/#", false, true},
    {"test/#", "test/nosubscribe", true, true},
    {"a/b/c", "a/b", false, false},
    {"a/b", "a/b/c", false, false},
    {"+", "a/b", false, false},
    {"a/+/#", "a/#", false, true},
};

TEST(FilterRelation, CoversAndOverlap) {
  for (const Relation& r : kRelations) {
    EXPECT_EQ(filter_covers(r.outer, r.inner), r.covers) << r.outer << " covers " << r.inner;
    EXPECT_EQ(filters_overlap(r.outer, r.inner), r.overlap) << r.outer << " overlaps " << r.inner;
    EXPECT_EQ(filters_overlap(r.inner, r.outer), r.overlap) << r.inner << " overlaps " << r.outer;
  }
}

// A filter covering a topic name must agree with topic_matches: a topic is a filter matching
// exactly itself.
TEST(FilterRelation, CoverOfATopicIsAMatch) {
  constexpr std::string_view kFilters[] = {"a/b", "a/+", "a/#", "#", "+/+", "+", "$SYS/#", "/+"};
  constexpr std::string_view kTopics[] = {"a/b", "a", "a/b/c", "$SYS/x", "/finance", "b", "/"};
  for (auto f : kFilters) {
    for (auto t : kTopics) {
      EXPECT_EQ(filter_covers(f, t), topic_matches(f, t)) << f << " vs " << t;
      EXPECT_EQ(filters_overlap(f, t), topic_matches(f, t)) << f << " vs " << t;
    }
  }
}

}  // namespace
}  // namespace meshmq::codec
