// encode -> decode gives back the same packet, for every packet type and field combination.
#include <gtest/gtest.h>

#include <set>

#include "tests/unit/codec/codec_test_util.h"
#include "tests/unit/codec/sample_packets.h"

namespace meshmq::codec::test {
namespace {

class RoundTrip : public testing::TestWithParam<Packet> {};

TEST_P(RoundTrip, DecodeOfEncodeIsIdentity) {
  const Packet& packet = GetParam();
  const Bytes bytes = encoded(packet);
  const Outcome outcome = decode_all(bytes);
  ASSERT_EQ(outcome.error, std::nullopt);
  ASSERT_EQ(outcome.packets.size(), 1u);
  EXPECT_EQ(outcome.packets[0], packet);
  EXPECT_FALSE(outcome.partial);
}

TEST_P(RoundTrip, EncodeAppendsWithoutTouchingExistingBytes) {
  std::string out = "prefix";
  encode(GetParam(), out);
  EXPECT_EQ(out.substr(0, 6), "prefix");
  EXPECT_EQ(to_bytes(std::string_view(out).substr(6)), encoded(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(AllTypes, RoundTrip, testing::ValuesIn(sample_packets()),
                         [](const testing::TestParamInfo<Packet>& info) {
                           return std::to_string(info.index) + "_" +
                                  packet_type_name(packet_type(info.param));
                         });

TEST(RoundTrip, SamplesCoverEveryPacketType) {
  std::set<PacketType> types;
  for (const Packet& p : sample_packets()) types.insert(packet_type(p));
  EXPECT_EQ(types.size(), 14u);
}

TEST(RoundTrip, Mqtt31ConnectAndFollowingPackets) {
  // After a 3.1 CONNECT the decoder parses per 3.1, e.g. accepts DUP on a SUBSCRIBE retry.
  Bytes bytes = encoded(Connect{.version = ProtocolVersion::kV31, .client_id = "old"});
  EXPECT_EQ(bytes[4], 'M');
  EXPECT_EQ(bytes[5], 'Q');
  EXPECT_EQ(bytes[6], 'I');
  const Bytes retry = hex("8a 08 0001 0003 612f62 01");
  bytes.insert(bytes.end(), retry.begin(), retry.end());
  const Outcome outcome = decode_all(bytes);
  ASSERT_EQ(outcome.error, std::nullopt);
  ASSERT_EQ(outcome.packets.size(), 2u);
  EXPECT_EQ(std::get<Connect>(outcome.packets[0]).version, ProtocolVersion::kV31);
  EXPECT_EQ(std::get<Subscribe>(outcome.packets[1]).topics.at(0).filter, "a/b");
}

TEST(RoundTrip, Mqtt311ConnectKeepsStrictFlags) {
  Bytes bytes = encoded(Connect{.client_id = "new"});
  const Bytes retry = hex("8a 08 0001 0003 612f62 01");
  bytes.insert(bytes.end(), retry.begin(), retry.end());
  const Outcome outcome = decode_all(bytes, {}, ProtocolVersion::kV31);
  EXPECT_EQ(outcome.packets.size(), 1u);
  EXPECT_EQ(outcome.error, DecodeError::kInvalidFixedHeaderFlags);
}

TEST(RoundTrip, LargestStringsAndPacketIds) {
  const std::string topic(65535, 't');
  const Packet packet = Publish{.topic = topic,
                                .payload = std::string(70000, 'p'),
                                .qos = QoS::kAtLeastOnce,
                                .packet_id = 65535};
  const Outcome outcome = decode_all(encoded(packet));
  ASSERT_EQ(outcome.packets.size(), 1u);
  EXPECT_EQ(outcome.packets[0], packet);
}

}  // namespace
}  // namespace meshmq::codec::test
