// Exact wire bytes produced by the encoder, and the Remaining Length encoding (2.2.3).
#include <gtest/gtest.h>

#include "broker/codec/wire.h"
#include "tests/unit/codec/codec_test_util.h"

namespace meshmq::codec::test {
namespace {

struct Encoding {
  const char* what;
  Packet packet;
  const char* hex;
};

void PrintTo(const Encoding& e, std::ostream* os) {
  *os << e.what;
}

// clang-format off
const Encoding kEncodings[] = {
  {"CONNECT minimal", Connect{.client_id = "c", .keepalive = 60}, "10 0d 0004 4d515454 04 02 003c 0001 63"},
  {"CONNECT 3.1", Connect{.version = ProtocolVersion::kV31, .client_id = "c", .keepalive = 60}, "10 0f 0006 4d5149736470 03 02 003c 0001 63"},
  {"CONNECT will, user, password", Connect{.client_id = "c", .clean_session = false, .keepalive = 10,
      .will = Will{.topic = "t", .payload = "m", .qos = QoS::kAtLeastOnce, .retain = true},
      .username = "u", .password = "p"},
      "10 19 0004 4d515454 04 ec 000a 0001 63 0001 74 0001 6d 0001 75 0001 70"},
  {"CONNACK", Connack{.session_present = true}, "20 02 01 00"},
  {"CONNACK refused never claims a session (MQTT-3.2.2-4)", Connack{.session_present = true, .code = ConnectReturnCode::kBadUsernameOrPassword}, "20 02 00 04"},
  {"PUBLISH QoS 0", Publish{.topic = "a/b", .payload = "x"}, "30 06 0003 612f62 78"},
  {"PUBLISH QoS 0 ignores DUP (MQTT-3.3.1-2) and packet id", Publish{.topic = "a/b", .payload = "x", .dup = true, .packet_id = 5}, "30 06 0003 612f62 78"},
  {"PUBLISH QoS 1 retained", Publish{.topic = "a/b", .payload = "x", .qos = QoS::kAtLeastOnce, .retain = true, .packet_id = 1}, "33 08 0003 612f62 0001 78"},
  {"PUBLISH QoS 2 DUP", Publish{.topic = "a/b", .payload = "", .qos = QoS::kExactlyOnce, .dup = true, .packet_id = 0x1234}, "3c 07 0003 612f62 1234"},
  {"PUBACK", Puback{1}, "40 02 0001"},
  {"PUBREC", Pubrec{2}, "50 02 0002"},
  {"PUBREL flags 0010 (MQTT-3.6.1-1)", Pubrel{3}, "62 02 0003"},
  {"PUBCOMP", Pubcomp{4}, "70 02 0004"},
  {"SUBSCRIBE flags 0010 (MQTT-3.8.1-1)", Subscribe{.packet_id = 1, .topics = {{"a/+", QoS::kAtMostOnce}, {"#", QoS::kExactlyOnce}}}, "82 0c 0001 0003 612f2b 00 0001 23 02"},
  {"SUBACK", Suback{.packet_id = 1, .return_codes = {0, 1, 2, 0x80}}, "90 06 0001 00 01 02 80"},
  {"UNSUBSCRIBE flags 0010 (MQTT-3.10.1-1)", Unsubscribe{.packet_id = 1, .filters = {"a/b"}}, "a2 07 0001 0003 612f62"},
  {"UNSUBACK", Unsuback{9}, "b0 02 0009"},
  {"PINGREQ", Pingreq{}, "c0 00"},
  {"PINGRESP", Pingresp{}, "d0 00"},
  {"DISCONNECT", Disconnect{}, "e0 00"},
};
// clang-format on

class EncodeBytes : public testing::TestWithParam<Encoding> {};

TEST_P(EncodeBytes, Exact) {
  EXPECT_EQ(encoded(GetParam().packet), hex(GetParam().hex));
}

INSTANTIATE_TEST_SUITE_P(Table, EncodeBytes, testing::ValuesIn(kEncodings),
                         [](const testing::TestParamInfo<Encoding>& info) {
                           return "row" + std::to_string(info.index);
                         });

struct Length {
  std::size_t value;
  const char* hex;
};

// The boundaries listed in 2.2.3 (Table 2.4).
const Length kLengths[] = {
    {0, "00"},
    {127, "7f"},
    {128, "80 01"},
    {16'383, "ff 7f"},
    {16'384, "80 80 01"},
    {2'097'151, "ff ff 7f"},
    {2'097'152, "80 80 80 01"},
    {268'435'455, "ff ff ff 7f"},
};

TEST(RemainingLength, EncodesTheSpecBoundaries) {
  for (const Length& l : kLengths) {
    std::string out;
    detail::put_varint(out, l.value);
    EXPECT_EQ(to_bytes(out), hex(l.hex)) << l.value;
    EXPECT_EQ(detail::varint_size(l.value), out.size()) << l.value;
  }
}

TEST(RemainingLength, DecoderReadsTheSpecBoundaries) {
  for (const Length& l : kLengths) {
    Bytes header = {0x30};
    const Bytes digits = hex(l.hex);
    header.insert(header.end(), digits.begin(), digits.end());
    Decoder decoder(DecoderLimits{.max_packet_size = detail::kMaxRemainingLength});
    std::span<const std::uint8_t> input(header);
    const DecodeResult result = decoder.next(input);
    if (l.value == 0) {
      // PUBLISH needs at least a topic: the header was read, the body is malformed.
      EXPECT_EQ(std::get<DecodeError>(result), DecodeError::kMalformedPacket);
    } else {
      EXPECT_TRUE(std::holds_alternative<NeedMore>(result)) << l.value;
    }
  }
}

TEST(RemainingLength, PublishHeaderAtEachBoundary) {
  // Payload sizes chosen so the remaining length lands on each boundary: 2 + topic "t" + payload.
  for (const std::size_t length : {127u, 128u, 16'383u, 16'384u, 2'097'151u, 2'097'152u}) {
    const std::string payload(length - 3, 'x');
    std::string out;
    encode_publish(out, "t", payload, QoS::kAtMostOnce, false, false, 0);
    EXPECT_EQ(out.size(), publish_wire_size("t", payload, QoS::kAtMostOnce));
    EXPECT_EQ(out.size(), 1 + detail::varint_size(length) + length);
    const Outcome outcome =
        decode_all(to_bytes(out), DecoderLimits{.max_packet_size = 4 * 1024 * 1024});
    ASSERT_EQ(outcome.packets.size(), 1u) << length;
    EXPECT_EQ(std::get<Publish>(outcome.packets[0]).payload.size(), payload.size());
  }
}

TEST(EncodePublish, MatchesEncodeOfPublishValue) {
  for (const QoS qos : {QoS::kAtMostOnce, QoS::kAtLeastOnce, QoS::kExactlyOnce}) {
    const Publish p{.topic = "x/y",
                    .payload = "payload",
                    .qos = qos,
                    .retain = true,
                    .dup = qos != QoS::kAtMostOnce,
                    .packet_id = static_cast<std::uint16_t>(qos == QoS::kAtMostOnce ? 0 : 77)};
    std::string direct;
    encode_publish(direct, p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id);
    EXPECT_EQ(to_bytes(direct), encoded(p));
    EXPECT_EQ(direct.size(), publish_wire_size(p.topic, p.payload, p.qos));
  }
}

TEST(EncodePublish, AppendsToExistingBatch) {
  std::string batch;
  encode(Pingresp{}, batch);
  encode_publish(batch, "a", "b", QoS::kAtMostOnce, false, false, 0);
  EXPECT_EQ(to_bytes(batch), hex("d0 00  30 04 0001 61 62"));
}

}  // namespace
}  // namespace meshmq::codec::test
