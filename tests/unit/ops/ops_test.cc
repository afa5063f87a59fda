// /proc parsing, URL decoding and the $SYS leaves derived from a metrics snapshot.
#include <gtest/gtest.h>

#include <map>

#include "broker/ops/admin_api.h"
#include "broker/ops/process_metrics.h"
#include "broker/ops/sys_topics.h"

namespace meshmq::ops {
namespace {

TEST(ProcStat, ParsesFieldsAfterTheCommandName) {
  // comm with a space and a ')' inside: fields are counted from the last ')'.
  const std::string stat =
      "1234 (mesh mq) (x)) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 150 0 0 20 0 7 0 1000 "
      "104857600 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
  auto s = parse_proc_stat(stat, 1'700'000'000, 100, 4096);
  ASSERT_TRUE(s);
  EXPECT_DOUBLE_EQ(s->cpu_seconds, 4.0);
  EXPECT_EQ(s->threads, 7u);
  EXPECT_DOUBLE_EQ(s->start_time_seconds, 1'700'000'010.0);
  EXPECT_EQ(s->virtual_bytes, 104857600u);
  EXPECT_EQ(s->resident_bytes, 2560u * 4096);
}

TEST(ProcStat, RejectsTruncatedInput) {
  EXPECT_FALSE(parse_proc_stat("", 0, 100, 4096));
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2 3", 0, 100, 4096));
  EXPECT_FALSE(
      parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 1 0 0 20 0 7 0 1 1 1", 0, 100, 4096));
}

TEST(PercentDecode, Table) {
  struct Case {
    const char* in;
    bool plus;
    std::optional<std::string> out;
  } cases[] = {
      {"a%2Fb", false, "a/b"},      {"sensors%2F%23", true, "sensors/#"},
      {"a+b", true, "a b"},         {"a+b", false, "a+b"},
      {"%zz", false, std::nullopt}, {"%2", false, std::nullopt},
      {"%", false, std::nullopt},   {"", false, ""},
  };
  for (const auto& c : cases) EXPECT_EQ(percent_decode(c.in, c.plus), c.out) << c.in;
}

TEST(SysLeaves, ComeFromTheRegistrySnapshot) {
  using core::Family;
  using core::Sample;
  core::Snapshot s{
      Family::gauge("meshmq_connections", "", 3),
      Family::gauge("meshmq_routes", "", 5),
      Family::counter("meshmq_messages_received_total", "",
                      {Sample{{{"qos", "0"}}, 4}, Sample{{{"qos", "1"}}, 6}}),
      Family::counter("meshmq_packets_received_total", "",
                      {Sample{{{"type", "connect"}}, 2}, Sample{{{"type", "publish"}}, 10}}),
      Family::counter("meshmq_network_sent_bytes_total", "", {Sample{{}, 123}}),
  };
  const auto now = std::chrono::system_clock::from_time_t(1'700'000'000);
  std::map<std::string, std::string> leaves;
  for (auto& [k, v] : sys_leaves(s, std::chrono::seconds(61), now)) leaves[k] = v;
  EXPECT_EQ(leaves["uptime"], "61");
  EXPECT_EQ(leaves["datetime"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(leaves["version"].rfind("meshmq ", 0), 0u);
  EXPECT_EQ(leaves["stats/connections/count"], "3");
  EXPECT_EQ(leaves["stats/routes/count"], "5");
  EXPECT_EQ(leaves["stats/sessions/count"], "0");  // absent family: 0, the leaf still exists
  EXPECT_EQ(leaves["metrics/messages/received"], "10");
  EXPECT_EQ(leaves["metrics/packets/received"], "12");
  EXPECT_EQ(leaves["metrics/packets/received/publish"], "10");
  EXPECT_EQ(leaves["metrics/bytes/sent"], "123");
  EXPECT_TRUE(leaves.count("metrics/messages/dropped"));
}

}  // namespace
}  // namespace meshmq::ops
