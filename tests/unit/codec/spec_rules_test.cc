// One row per MQTT 3.1.1 rule on packet form: a byte sequence written out as hex and what the
// decoder must make of it. Valid rows also check that re-encoding gives the same bytes back.
#include <gtest/gtest.h>

#include <cctype>

#include "tests/unit/codec/codec_test_util.h"

namespace meshmq::codec::test {
namespace {

using E = DecodeError;

struct Rule {
  const char* clause;  // spec clause or conformance statement the row exercises
  const char* what;
  const char* hex;
  std::optional<DecodeError> error;  // nullopt: one valid packet
  ProtocolVersion version = ProtocolVersion::kV311;
  bool canonical = true;  // valid rows: encode(decode(bytes)) == bytes
};

void PrintTo(const Rule& rule, std::ostream* os) {
  *os << rule.clause << " " << rule.what;
}

// clang-format off
const Rule kRules[] = {
  // Fixed header (2.2).
  {"2.2.1", "packet type 0 is reserved", "00 00", E::kInvalidPacketType},
  {"2.2.1", "packet type 15 is reserved", "f0 00", E::kInvalidPacketType},
  {"MQTT-2.2.2-1", "CONNECT flags must be 0", "11 0d 0004 4d515454 04 02 003c 0001 63", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "CONNACK flags must be 0", "21 02 00 00", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "PUBACK flags must be 0", "41 02 0001", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "PUBREC flags must be 0", "58 02 0001", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "PUBCOMP flags must be 0", "72 02 0001", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "SUBACK flags must be 0", "94 03 0001 00", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "UNSUBACK flags must be 0", "b2 02 0001", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "PINGREQ flags must be 0", "c1 00", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "PINGRESP flags must be 0", "d8 00", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.2.2-1", "DISCONNECT flags must be 0", "e2 00", E::kInvalidFixedHeaderFlags},
  {"MQTT-3.6.1-1", "PUBREL flags must be 0010", "60 02 0001", E::kInvalidFixedHeaderFlags},
  {"MQTT-3.6.1-1", "PUBREL flags 0011", "63 02 0001", E::kInvalidFixedHeaderFlags},
  {"MQTT-3.8.1-1", "SUBSCRIBE flags must be 0010", "80 08 0001 0003 612f62 01", E::kInvalidFixedHeaderFlags},
  {"MQTT-3.8.1-1", "SUBSCRIBE with DUP is 3.1 only", "8a 08 0001 0003 612f62 01", E::kInvalidFixedHeaderFlags},
  {"MQTT-3.10.1-1", "UNSUBSCRIBE flags must be 0010", "a0 07 0001 0003 612f62", E::kInvalidFixedHeaderFlags},
  {"MQTT-3.10.1-1", "UNSUBSCRIBE flags 0110", "a6 07 0001 0003 612f62", E::kInvalidFixedHeaderFlags},
  {"3.1 4.2", "MQTT 3.1 PUBREL retry with DUP", "6a 02 0001", std::nullopt, ProtocolVersion::kV31, false},
  {"3.1 4.2", "MQTT 3.1 SUBSCRIBE retry with DUP", "8a 08 0001 0003 612f62 01", std::nullopt, ProtocolVersion::kV31, false},
  {"3.1 4.2", "MQTT 3.1 UNSUBSCRIBE retry with DUP", "aa 07 0001 0003 612f62", std::nullopt, ProtocolVersion::kV31, false},
  {"3.1 4.2", "MQTT 3.1 SUBSCRIBE still needs QoS 1 bits", "88 08 0001 0003 612f62 01", E::kInvalidFixedHeaderFlags, ProtocolVersion::kV31},
  {"2.2.3", "remaining length of 5 bytes", "30 ff ff ff ff 01", E::kMalformedRemainingLength},
  {"2.2.3", "5th length byte even when it would be 0", "30 80 80 80 80 00", E::kMalformedRemainingLength},
  {"2.2.3", "non-minimal remaining length is accepted", "c0 80 00", std::nullopt, ProtocolVersion::kV311, false},

  // CONNECT (3.1).
  {"3.1", "minimal CONNECT", "10 0d 0004 4d515454 04 02 003c 0001 63", std::nullopt},
  {"3.1.3.1", "empty client id is left to the broker", "10 0c 0004 4d515454 04 02 003c 0000", std::nullopt},
  {"3.1.3.1", "empty client id without clean session", "10 0c 0004 4d515454 04 00 003c 0000", std::nullopt},
  {"3.1 (v3.1)", "MQIsdp level 3", "10 0f 0006 4d5149736470 03 02 003c 0001 63", std::nullopt},
  {"MQTT-3.1.2-1", "unknown protocol name", "10 0d 0004 4d515458 04 02 003c 0001 63", E::kUnsupportedProtocolName},
  {"MQTT-3.1.2-1", "protocol name is case sensitive", "10 0d 0004 6d717474 04 02 003c 0001 63", E::kUnsupportedProtocolName},
  {"MQTT-3.1.2-2", "MQTT level 5 -> CONNACK 0x01", "10 0d 0004 4d515454 05 02 003c 0001 63", E::kUnsupportedProtocolLevel},
  {"MQTT-3.1.2-2", "MQTT level 3", "10 0d 0004 4d515454 03 02 003c 0001 63", E::kUnsupportedProtocolLevel},
  {"MQTT-3.1.2-2", "MQIsdp level 4", "10 0f 0006 4d5149736470 04 02 003c 0001 63", E::kUnsupportedProtocolLevel},
  {"MQTT-3.1.2-2", "level checked before flags", "10 0d 0004 4d515454 05 ff 003c 0001 63", E::kUnsupportedProtocolLevel},
  {"MQTT-3.1.2-3", "reserved flag set", "10 0d 0004 4d515454 04 03 003c 0001 63", E::kReservedConnectFlag},
  {"MQTT-3.1.2-3", "reserved flag set (3.1)", "10 0f 0006 4d5149736470 03 03 003c 0001 63", E::kReservedConnectFlag},
  {"3.1.2.5", "will with QoS 1", "10 13 0004 4d515454 04 0e 003c 0001 63 0001 74 0001 6d", std::nullopt},
  {"3.1.2.5", "will QoS 2 retained, empty message", "10 12 0004 4d515454 04 36 003c 0001 63 0001 74 0000", std::nullopt},
  {"MQTT-3.1.2-13", "will QoS without will flag", "10 0d 0004 4d515454 04 0a 003c 0001 63", E::kInvalidWillFlags},
  {"MQTT-3.1.2-13", "will QoS 2 without will flag", "10 0d 0004 4d515454 04 12 003c 0001 63", E::kInvalidWillFlags},
  {"MQTT-3.1.2-15", "will retain without will flag", "10 0d 0004 4d515454 04 22 003c 0001 63", E::kInvalidWillFlags},
  {"MQTT-3.1.2-14", "will QoS 3", "10 13 0004 4d515454 04 1e 003c 0001 63 0001 74 0001 6d", E::kInvalidQoS},
  {"MQTT-3.1.2-9", "will flag but no will fields", "10 0d 0004 4d515454 04 06 003c 0001 63", E::kMalformedPacket},
  {"MQTT-3.1.2-9", "will topic but no will message", "10 10 0004 4d515454 04 06 003c 0001 63 0001 74", E::kMalformedPacket},
  {"3.1.3.2", "will topic with a wildcard", "10 13 0004 4d515454 04 06 003c 0001 63 0001 23 0001 6d", E::kInvalidTopicName},
  {"3.1.3.2", "will topic with '+'", "10 15 0004 4d515454 04 06 003c 0001 63 0003 612f2b 0001 6d", E::kInvalidTopicName},
  {"MQTT-4.7.3-1", "empty will topic", "10 12 0004 4d515454 04 06 003c 0001 63 0000 0001 6d", E::kInvalidTopicName},
  {"MQTT-1.5.3-1", "will topic not UTF-8", "10 13 0004 4d515454 04 06 003c 0001 63 0001 ff 0001 6d", E::kInvalidUtf8},
  {"3.1.3.3", "will message is binary", "10 14 0004 4d515454 04 06 003c 0001 63 0001 74 0002 ff00", std::nullopt},
  {"3.1.2.8", "user name and password", "10 13 0004 4d515454 04 c2 003c 0001 63 0001 75 0001 70", std::nullopt},
  {"3.1.2.8", "user name only", "10 10 0004 4d515454 04 82 003c 0001 63 0001 75", std::nullopt},
  {"3.1.3.5", "password is binary", "10 14 0004 4d515454 04 c2 003c 0001 63 0001 75 0002 ff00", std::nullopt},
  {"3.1.3.5", "empty user name and password", "10 11 0004 4d515454 04 c2 003c 0001 63 0000 0000", std::nullopt},
  {"MQTT-3.1.2-22", "password without user name", "10 10 0004 4d515454 04 42 003c 0001 63 0001 70", E::kPasswordWithoutUsername},
  {"MQTT-3.1.2-22", "password without user name (3.1)", "10 12 0006 4d5149736470 03 42 003c 0001 63 0001 70", E::kPasswordWithoutUsername},
  {"MQTT-3.1.2-19", "user name flag, no user name", "10 0d 0004 4d515454 04 82 003c 0001 63", E::kMalformedPacket},
  {"MQTT-3.1.2-21", "password flag, no password", "10 10 0004 4d515454 04 c2 003c 0001 63 0001 75", E::kMalformedPacket},
  {"MQTT-3.1.3-11", "user name not UTF-8", "10 10 0004 4d515454 04 82 003c 0001 63 0001 c3", E::kInvalidUtf8},
  {"MQTT-1.5.3-2", "client id with U+0000", "10 0d 0004 4d515454 04 02 003c 0001 00", E::kInvalidUtf8},
  {"MQTT-1.5.3-1", "client id with a surrogate", "10 0f 0004 4d515454 04 02 003c 0003 eda080", E::kInvalidUtf8},
  {"3.1.3", "trailing byte after the payload", "10 0e 0004 4d515454 04 02 003c 0001 63 00", E::kMalformedPacket},
  {"3.1.3", "client id longer than the packet", "10 0d 0004 4d515454 04 02 003c 0002 63", E::kMalformedPacket},
  {"3.1.2", "truncated after the flags", "10 08 0004 4d515454 04 02", E::kMalformedPacket},
  {"3.1.2", "truncated protocol name", "10 03 0004 4d", E::kMalformedPacket},
  {"3.1", "empty CONNECT", "10 00", E::kMalformedPacket},

  // CONNACK (3.2).
  {"3.2", "CONNACK accepted", "20 02 00 00", std::nullopt},
  {"3.2.2.2", "CONNACK session present", "20 02 01 00", std::nullopt},
  {"3.2.2.3", "CONNACK not authorized", "20 02 00 05", std::nullopt},
  {"3.2.2.3", "CONNACK reserved return code", "20 02 00 06", E::kMalformedPacket},
  {"3.2.2.1", "CONNACK reserved acknowledge flags", "20 02 02 00", E::kMalformedPacket},
  {"MQTT-3.2.2-4", "refused CONNACK with session present", "20 02 01 01", E::kMalformedPacket},
  {"3.2.1", "CONNACK remaining length 3", "20 03 00 00 00", E::kMalformedPacket},
  {"3.2.1", "CONNACK remaining length 1", "20 01 00", E::kMalformedPacket},

  // PUBLISH (3.3).
  {"3.3", "QoS 0", "30 06 0003 612f62 78", std::nullopt},
  {"3.3", "QoS 0 retained, empty payload", "31 05 0003 612f62", std::nullopt},
  {"3.3", "QoS 1", "32 08 0003 612f62 0001 78", std::nullopt},
  {"3.3", "QoS 2 DUP retained", "3d 08 0003 612f62 0001 78", std::nullopt},
  {"3.3.2.1", "multi-byte UTF-8 topic", "30 08 0005 e282ac2f61 78", std::nullopt},
  {"3.3.2.1", "topic of a single '/'", "30 04 0001 2f 78", std::nullopt},
  {"MQTT-3.3.1-4", "QoS 3", "36 08 0003 612f62 0001 78", E::kInvalidQoS},
  {"MQTT-3.3.1-4", "QoS 3 with DUP", "3e 08 0003 612f62 0001 78", E::kInvalidQoS},
  {"MQTT-3.3.1-2", "DUP at QoS 0", "38 06 0003 612f62 78", E::kInvalidFixedHeaderFlags},
  {"MQTT-2.3.1-1", "QoS 1 with packet id 0", "32 08 0003 612f62 0000 78", E::kZeroPacketId},
  {"MQTT-2.3.1-1", "QoS 2 with packet id 0", "34 07 0003 612f62 0000", E::kZeroPacketId},
  {"MQTT-3.3.2-2", "topic with '+'", "30 06 0003 612f2b 78", E::kInvalidTopicName},
  {"MQTT-3.3.2-2", "topic with '#'", "30 06 0003 612f23 78", E::kInvalidTopicName},
  {"MQTT-3.3.2-2", "topic with '+' inside a level", "30 06 0003 612b62 78", E::kInvalidTopicName},
  {"MQTT-4.7.3-1", "empty topic", "30 03 0000 78", E::kInvalidTopicName},
  {"MQTT-3.3.2-1", "topic not UTF-8", "30 04 0001 c0 78", E::kInvalidUtf8},
  {"MQTT-1.5.3-2", "topic with U+0000", "30 06 0003 610062 78", E::kInvalidUtf8},
  {"MQTT-1.5.3-1", "topic with U+D800", "30 06 0003 eda080 78", E::kInvalidUtf8},
  {"3.3.2.2", "QoS 1 without packet id", "32 05 0003 612f62", E::kMalformedPacket},
  {"3.3.2", "topic length beyond the packet", "30 03 0005 61", E::kMalformedPacket},
  {"3.3.2", "remaining length 0", "30 00", E::kMalformedPacket},
  {"3.3.2", "remaining length 1", "30 01 00", E::kMalformedPacket},

  // PUBACK, PUBREC, PUBREL, PUBCOMP (3.4-3.7).
  {"3.4", "PUBACK", "40 02 0001", std::nullopt},
  {"MQTT-2.3.1-1", "PUBACK packet id 0", "40 02 0000", E::kZeroPacketId},
  {"3.4.1", "PUBACK remaining length 3", "40 03 0001 00", E::kMalformedPacket},
  {"3.4.1", "PUBACK remaining length 1", "40 01 00", E::kMalformedPacket},
  {"3.5", "PUBREC", "50 02 ffff", std::nullopt},
  {"MQTT-2.3.1-1", "PUBREC packet id 0", "50 02 0000", E::kZeroPacketId},
  {"3.5.1", "PUBREC remaining length 0", "50 00", E::kMalformedPacket},
  {"3.6", "PUBREL", "62 02 0001", std::nullopt},
  {"MQTT-2.3.1-1", "PUBREL packet id 0", "62 02 0000", E::kZeroPacketId},
  {"3.6.1", "PUBREL remaining length 4", "62 04 0001 0002", E::kMalformedPacket},
  {"3.7", "PUBCOMP", "70 02 1234", std::nullopt},
  {"MQTT-2.3.1-1", "PUBCOMP packet id 0", "70 02 0000", E::kZeroPacketId},
  {"3.7.1", "PUBCOMP remaining length 3", "70 03 0001 00", E::kMalformedPacket},

  // SUBSCRIBE (3.8).
  {"3.8", "SUBSCRIBE one filter", "82 08 0001 0003 612f62 01", std::nullopt},
  {"3.8", "SUBSCRIBE with wildcards", "82 0c 0001 0003 612f2b 00 0001 23 02", std::nullopt},
  {"4.7.1.2", "SUBSCRIBE 'sport/#'", "82 0c 0001 0007 73706f72742f23 00", std::nullopt},
  {"4.7.1.3", "SUBSCRIBE '+/+'", "82 08 0001 0003 2b2f2b 00", std::nullopt},
  {"MQTT-2.3.1-1", "SUBSCRIBE packet id 0", "82 08 0000 0003 612f62 01", E::kZeroPacketId},
  {"MQTT-3.8.3-3", "SUBSCRIBE without filters", "82 02 0001", E::kEmptySubscribe},
  {"3.8.2", "SUBSCRIBE without packet id", "82 01 00", E::kMalformedPacket},
  {"MQTT-3-8.3-4", "requested QoS 3", "82 08 0001 0003 612f62 03", E::kInvalidQoS},
  {"MQTT-3-8.3-4", "requested QoS with reserved bit 2", "82 08 0001 0003 612f62 04", E::kInvalidSubscribeReservedBits},
  {"MQTT-3-8.3-4", "requested QoS with reserved bit 7", "82 08 0001 0003 612f62 81", E::kInvalidSubscribeReservedBits},
  {"MQTT-4.7.1-2", "filter 'a/#/b'", "82 0a 0001 0005 612f232f62 00", E::kInvalidTopicFilter},
  {"MQTT-4.7.1-2", "filter 'a#'", "82 07 0001 0002 6123 00", E::kInvalidTopicFilter},
  {"MQTT-4.7.1-2", "filter '#a'", "82 07 0001 0002 2361 00", E::kInvalidTopicFilter},
  {"MQTT-4.7.1-3", "filter 'a+'", "82 07 0001 0002 612b 00", E::kInvalidTopicFilter},
  {"MQTT-4.7.1-3", "filter '+a/b'", "82 09 0001 0004 2b612f62 00", E::kInvalidTopicFilter},
  {"MQTT-4.7.3-1", "empty filter", "82 05 0001 0000 00", E::kInvalidTopicFilter},
  {"MQTT-3.8.3-1", "filter not UTF-8", "82 06 0001 0001 ff 00", E::kInvalidUtf8},
  {"3.8.3", "filter without QoS byte", "82 07 0001 0003 612f62", E::kMalformedPacket},
  {"3.8.3", "second filter truncated", "82 0a 0001 0003 612f62 00 0003", E::kMalformedPacket},

  // SUBACK (3.9).
  {"3.9", "SUBACK", "90 03 0001 00", std::nullopt},
  {"3.9.3", "SUBACK with every return code", "90 06 0001 00 01 02 80", std::nullopt},
  {"MQTT-3.9.3-2", "SUBACK reserved return code", "90 03 0001 03", E::kMalformedPacket},
  {"MQTT-3.9.3-2", "SUBACK return code 0x81", "90 03 0001 81", E::kMalformedPacket},
  {"MQTT-3.8.4-5", "SUBACK without return codes", "90 02 0001", E::kMalformedPacket},
  {"MQTT-2.3.1-1", "SUBACK packet id 0", "90 03 0000 00", E::kZeroPacketId},

  // UNSUBSCRIBE (3.10), UNSUBACK (3.11).
  {"3.10", "UNSUBSCRIBE", "a2 07 0001 0003 612f62", std::nullopt},
  {"3.10", "UNSUBSCRIBE two filters", "a2 0a 0001 0003 612f2b 0001 23", std::nullopt},
  {"MQTT-3.10.3-2", "UNSUBSCRIBE without filters", "a2 02 0001", E::kEmptyUnsubscribe},
  {"MQTT-2.3.1-1", "UNSUBSCRIBE packet id 0", "a2 07 0000 0003 612f62", E::kZeroPacketId},
  {"MQTT-4.7.1-3", "UNSUBSCRIBE filter 'a+b'", "a2 07 0001 0003 612b62", E::kInvalidTopicFilter},
  {"MQTT-4.7.3-1", "UNSUBSCRIBE empty filter", "a2 04 0001 0000", E::kInvalidTopicFilter},
  {"MQTT-3.10.3-1", "UNSUBSCRIBE filter not UTF-8", "a2 05 0001 0001 80", E::kInvalidUtf8},
  {"3.10.3", "UNSUBSCRIBE filter truncated", "a2 06 0001 0003 612f", E::kMalformedPacket},
  {"3.11", "UNSUBACK", "b0 02 0001", std::nullopt},
  {"MQTT-2.3.1-1", "UNSUBACK packet id 0", "b0 02 0000", E::kZeroPacketId},
  {"3.11.1", "UNSUBACK remaining length 3", "b0 03 0001 00", E::kMalformedPacket},

  // PINGREQ, PINGRESP, DISCONNECT (3.12-3.14).
  {"3.12", "PINGREQ", "c0 00", std::nullopt},
  {"3.12.1", "PINGREQ with a body", "c0 01 00", E::kMalformedPacket},
  {"3.13", "PINGRESP", "d0 00", std::nullopt},
  {"3.13.1", "PINGRESP with a body", "d0 02 0000", E::kMalformedPacket},
  {"3.14", "DISCONNECT", "e0 00", std::nullopt},
  {"3.14.1", "DISCONNECT with a body", "e0 01 00", E::kMalformedPacket},
};
// clang-format on

class SpecRule : public testing::TestWithParam<Rule> {};

TEST_P(SpecRule, DecodesAsSpecified) {
  const Rule& rule = GetParam();
  const Bytes bytes = hex(rule.hex);
  const Outcome whole = decode_all(bytes, {}, rule.version);
  if (rule.error) {
    EXPECT_TRUE(whole.packets.empty());
    EXPECT_EQ(whole.error, rule.error);
  } else {
    ASSERT_EQ(whole.error, std::nullopt);
    ASSERT_EQ(whole.packets.size(), 1u);
    EXPECT_FALSE(whole.partial);
    if (rule.canonical) {
      EXPECT_EQ(encoded(whole.packets[0]), bytes);
    }
  }
  // However the bytes arrive, the outcome is the same.
  EXPECT_EQ(decode_bytewise(bytes, {}, rule.version), whole);
}

TEST_P(SpecRule, ParsePacketAgreesWithDecoder) {
  const Rule& rule = GetParam();
  const Bytes bytes = hex(rule.hex);
  // parse_packet needs a framed body, so only rows with a well-formed one-byte length apply.
  if (bytes.size() < 2 || (bytes[1] & 0x80) || bytes[1] != bytes.size() - 2) return;
  const DecodeResult result = parse_packet(bytes[0], std::span(bytes).subspan(2), rule.version);
  if (rule.error) {
    ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
    EXPECT_EQ(std::get<DecodeError>(result), *rule.error);
  } else {
    EXPECT_TRUE(std::holds_alternative<Packet>(result));
  }
}

std::string RowName(const testing::TestParamInfo<Rule>& info) {
  std::string name = std::to_string(info.index) + "_";
  for (const char* p = info.param.what; *p; ++p) {
    const char c = *p;
    name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Mqtt311, SpecRule, testing::ValuesIn(kRules), RowName);

}  // namespace
}  // namespace meshmq::codec::test
