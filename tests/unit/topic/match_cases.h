// One row per matching rule, shared by the trie and the tree tests. Mostly the examples of MQTT
// 3.1.1 sections 4.7.1.2 ('#'), 4.7.1.3 ('+') and 4.7.2 ('$' topics), plus empty levels.
#pragma once

#include <ostream>
#include <string_view>

namespace meshmq::topic::testing {

struct MatchCase {
  std::string_view filter;
  std::string_view topic;
  bool matches;
  std::string_view rule;
};

inline std::ostream& operator<<(std::ostream& os, const MatchCase& c) {
  return os << '"' << c.filter << "\" vs \"" << c.topic << "\" (" << c.rule << ')';
}

inline constexpr MatchCase kMatchCases[] = {
    // 4.7.1.2 multi-level wildcard
    {"sport/tennis/player1/#", "sport/tennis/player1", true, "4.7.1.2 # matches the parent"},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true, "4.7.1.2 one child"},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true, "4.7.1.2 many"},
    {"sport/tennis/player1/#", "sport/tennis/player2", false, "4.7.1.2 other branch"},
    {"sport/#", "sport", true, "4.7.1.2 sport/# matches sport"},
    {"sport/#", "sport/", true, "4.7.1.2 # matches an empty child"},
    {"sport/#", "sports", false, "# is a whole level"},
    {"#", "sport/tennis", true, "4.7.1.2 # alone matches everything"},
    {"#", "/", true, "# matches empty levels"},
    {"#", "a", true, "# matches one level"},
    // 4.7.1.3 single-level wildcard
    {"sport/tennis/+", "sport/tennis/player1", true, "4.7.1.3 + one level"},
    {"sport/tennis/+", "sport/tennis/player2", true, "4.7.1.3 + any value"},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false, "4.7.1.3 + only one level"},
    {"sport/+", "sport", false, "4.7.1.3 sport/+ does not match sport"},
    {"sport/+", "sport/", true, "4.7.1.3 + matches an empty level"},
    {"+", "sport", true, "+ alone, one level"},
    {"+/+", "/finance", true, "4.7.1.3 +/+ matches /finance"},
    {"/+", "/finance", true, "4.7.1.3 /+ matches /finance"},
    {"+", "/finance", false, "4.7.1.3 + does not match /finance"},
    {"sport/+/player1", "sport/tennis/player1", true, "+ in the middle"},
    {"sport/+/player1", "sport//player1", true, "+ matches an empty middle level"},
    {"+/tennis/#", "sport/tennis/player1/ranking", true, "+ then #"},
    {"+/#", "a", true, "+/# matches one level through the parent rule"},
    {"+/+/#", "a", false, "+/+/# needs two levels"},
    // 4.7.2 topics beginning with $
    {"#", "$SYS/monitor/Clients", false, "4.7.2 # does not match $ topics"},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false, "4.7.2 + first does not match $"},
    {"$SYS/#", "$SYS/monitor/Clients", true, "4.7.2 $SYS/# matches"},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true, "4.7.2 $SYS/monitor/+ matches"},
    {"$SYS/#", "$SYS", true, "$SYS/# matches the parent"},
    {"+", "$", false, "+ first does not match $"},
    {"+/#", "$SYS/x", false, "+/# first does not match $"},
    {"a/#", "a/$b", true, "$ rule only applies to the first level"},
    {"a/+", "a/$b", true, "$ rule only applies to the first level, +"},
    // exact and empty levels (4.7.3)
    {"sport/tennis", "sport/tennis", true, "exact"},
    {"ACCOUNTS", "Accounts", false, "4.7.3 case sensitive"},
    {"a//b", "a//b", true, "empty levels are levels"},
    {"a//b", "a/b", false, "a//b has three levels"},
    {"/a", "/a", true, "leading empty level"},
    {"/a", "a", false, "leading empty level differs"},
    {"a/", "a", false, "trailing empty level differs"},
    {"a/", "a/", true, "trailing empty level"},
    {"/", "/", true, "two empty levels"},
    {"a/b", "a/b/c", false, "filter shorter than topic"},
    {"a/b/c", "a/b", false, "filter longer than topic"},
    {"sport tennis", "sport tennis", true, "spaces are ordinary characters"},
};

}  // namespace meshmq::topic::testing
