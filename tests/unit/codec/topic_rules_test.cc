// Topic names, topic filters and matching (4.7).
#include "broker/codec/topic_rules.h"

#include <gtest/gtest.h>

namespace meshmq::codec {
namespace {

struct Validity {
  const char* clause;
  std::string_view text;
  bool valid_name;
  bool valid_filter;
};

void PrintTo(const Validity& v, std::ostream* os) {
  *os << v.clause << " '" << v.text << "'";
}

// clang-format off
const Validity kValidity[] = {
  {"4.7.1.1", "sport/tennis/player1", true, true},
  {"4.7.1.1", "/", true, true},
  {"4.7.1.1", "//", true, true},
  {"4.7.1.1", "/finance", true, true},
  {"4.7.1.1", "a b/c d", true, true},
  {"4.7.2", "$SYS/broker/load", true, true},
  {"MQTT-4.7.3-1", "", false, false},
  {"4.7.1.2", "#", false, true},
  {"4.7.1.2", "sport/#", false, true},
  {"4.7.1.2", "sport/tennis/#", false, true},
  {"4.7.1.2", "/#", false, true},
  {"MQTT-4.7.1-2", "sport/tennis#", false, false},
  {"MQTT-4.7.1-2", "sport/tennis/#/ranking", false, false},
  {"MQTT-4.7.1-2", "a/#/b", false, false},
  {"MQTT-4.7.1-2", "#a", false, false},
  {"MQTT-4.7.1-2", "##", false, false},
  {"MQTT-4.7.1-2", "#/", false, false},
  {"4.7.1.3", "+", false, true},
  {"4.7.1.3", "+/tennis/#", false, true},
  {"4.7.1.3", "sport/+/player1", false, true},
  {"4.7.1.3", "+/+", false, true},
  {"4.7.1.3", "/+", false, true},
  {"4.7.1.3", "+/", false, true},
  {"4.7.1.3", "$SYS/+", false, true},
  {"MQTT-4.7.1-3", "sport+", false, false},
  {"MQTT-4.7.1-3", "a+", false, false},
  {"MQTT-4.7.1-3", "+a", false, false},
  {"MQTT-4.7.1-3", "a/b+/c", false, false},
  {"MQTT-4.7.1-3", "++", false, false},
  {"MQTT-4.7.1-3", "+#", false, false},
  {"MQTT-4.7.3-2", std::string_view("a\0b", 3), false, false},
};
// clang-format on

class TopicValidity : public testing::TestWithParam<Validity> {};

TEST_P(TopicValidity, NameAndFilter) {
  EXPECT_EQ(valid_topic_name(GetParam().text), GetParam().valid_name);
  EXPECT_EQ(valid_topic_filter(GetParam().text), GetParam().valid_filter);
}

INSTANTIATE_TEST_SUITE_P(Table, TopicValidity, testing::ValuesIn(kValidity),
                         [](const testing::TestParamInfo<Validity>& info) {
                           return "row" + std::to_string(info.index);
                         });

TEST(TopicValidity, LengthLimitIsTheWireLimit) {
  EXPECT_TRUE(valid_topic_name(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_name(std::string(65536, 'a')));
  EXPECT_TRUE(valid_topic_filter(std::string(65535, 'a')));
  EXPECT_FALSE(valid_topic_filter(std::string(65536, 'a')));
}

TEST(TopicValidity, ForbiddenCharacterAtEveryPositionOfLongerNames) {
  // valid_topic_name scans eight bytes at a time; every offset of every word and the tail matter.
  for (std::size_t length = 1; length <= 24; ++length) {
    const std::string clean(length, 'a');
    EXPECT_TRUE(valid_topic_name(clean)) << length;
    for (std::size_t pos = 0; pos < length; ++pos) {
      for (const char bad : {'+', '#', '\0'}) {
        std::string name = clean;
        name[pos] = bad;
        EXPECT_FALSE(valid_topic_name(name)) << length << " " << pos << " " << int{bad};
        EXPECT_TRUE(has_wildcard(name) == (bad != '\0')) << length << " " << pos;
      }
    }
  }
}

TEST(TopicValidity, HasWildcard) {
  EXPECT_TRUE(has_wildcard("a/+"));
  EXPECT_TRUE(has_wildcard("#"));
  EXPECT_FALSE(has_wildcard("a/b"));
  EXPECT_FALSE(has_wildcard("$SYS"));
}

struct Match {
  const char* clause;
  const char* filter;
  const char* topic;
  bool matches;
};

void PrintTo(const Match& m, std::ostream* os) {
  *os << m.clause << " '" << m.filter << "' vs '" << m.topic << "'";
}

// clang-format off
const Match kMatches[] = {
  // 4.7.1.2 multi-level wildcard examples.
  {"4.7.1.2", "sport/tennis/player1/#", "sport/tennis/player1", true},
  {"4.7.1.2", "sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
  {"4.7.1.2", "sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
  {"4.7.1.2", "sport/#", "sport", true},
  {"4.7.1.2", "#", "sport/tennis/player1", true},
  {"4.7.1.2", "#", "/", true},
  {"4.7.1.2", "#", "a", true},
  {"4.7.1.2", "sport/tennis/#", "sport/tennis", true},
  {"4.7.1.2", "sport/tennis/#", "sport/tennisx", false},
  {"4.7.1.2", "sport/tennis/#", "sport", false},
  {"4.7.1.2", "sport/#", "sports", false},
  {"4.7.1.2", "/#", "/", true},
  // 4.7.1.3 single-level wildcard examples.
  {"4.7.1.3", "sport/tennis/+", "sport/tennis/player1", true},
  {"4.7.1.3", "sport/tennis/+", "sport/tennis/player2", true},
  {"4.7.1.3", "sport/tennis/+", "sport/tennis/player1/ranking", false},
  {"4.7.1.3", "sport/+", "sport", false},
  {"4.7.1.3", "sport/+", "sport/", true},
  {"4.7.1.3", "+", "sport", true},
  {"4.7.1.3", "+/+", "/finance", true},
  {"4.7.1.3", "/+", "/finance", true},
  {"4.7.1.3", "+", "/finance", false},
  {"4.7.1.3", "+/tennis/#", "sport/tennis/player1", true},
  {"4.7.1.3", "+/tennis/#", "sport/tennis", true},
  {"4.7.1.3", "+/tennis/#", "sport/golf", false},
  {"4.7.1.3", "sport/+/player1", "sport/tennis/player1", true},
  {"4.7.1.3", "sport/+/player1", "sport//player1", true},
  {"4.7.1.3", "+/+/+", "a//", true},
  // 4.7.2 topics beginning with $.
  {"MQTT-4.7.2-1", "#", "$SYS/broker", false},
  {"MQTT-4.7.2-1", "#", "$SYS", false},
  {"MQTT-4.7.2-1", "+/monitor/Clients", "$SYS/monitor/Clients", false},
  {"MQTT-4.7.2-1", "+", "$SYS", false},
  {"4.7.2", "$SYS/#", "$SYS/monitor/Clients", true},
  {"4.7.2", "$SYS/#", "$SYS", true},
  {"4.7.2", "$SYS/monitor/+", "$SYS/monitor/Clients", true},
  {"4.7.2", "$SYS/+/Clients", "$SYS/monitor/Clients", true},
  {"4.7.2", "a/#", "a/$SYS", true},
  {"4.7.2", "+/$x", "a/$x", true},
  // Exact matches and case (4.7.3: topics are case sensitive, levels compared byte-wise).
  {"4.7.3", "ACCOUNTS", "Accounts", false},
  {"4.7.3", "Accounts payable", "Accounts payable", true},
  {"4.7.3", "a/b", "a/b", true},
  {"4.7.3", "a/b", "a/b/", false},
  {"4.7.3", "a/b/", "a/b", false},
  {"4.7.3", "/", "/", true},
  {"4.7.3", "/", "//", false},
  {"4.7.3", "a/b/c", "a/b", false},
  {"4.7.3", "a", "a/b", false},
};
// clang-format on

class TopicMatches : public testing::TestWithParam<Match> {};

TEST_P(TopicMatches, Spec) {
  EXPECT_EQ(topic_matches(GetParam().filter, GetParam().topic), GetParam().matches);
}

INSTANTIATE_TEST_SUITE_P(Table, TopicMatches, testing::ValuesIn(kMatches),
                         [](const testing::TestParamInfo<Match>& info) {
                           return "row" + std::to_string(info.index);
                         });

}  // namespace
}  // namespace meshmq::codec
