// Decoder behaviour beyond single packets: limits, error stickiness, version tracking, buffers.
#include <gtest/gtest.h>

#include "broker/codec/wire.h"
#include "tests/unit/codec/codec_test_util.h"

namespace meshmq::codec::test {
namespace {

DecodeResult feed(Decoder& decoder, const Bytes& bytes) {
  std::span<const std::uint8_t> input(bytes);
  return decoder.next(input);
}

TEST(DecoderLimits, OversizedPacketIsRefusedFromTheHeaderAlone) {
  Decoder decoder(DecoderLimits{.max_packet_size = 100});
  // Remaining length 101 and not a single body byte: the refusal must not wait for the body.
  const DecodeResult result = feed(decoder, hex("30 65"));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
  EXPECT_EQ(std::get<DecodeError>(result), DecodeError::kPacketTooLarge);
}

TEST(DecoderLimits, OversizedMultiByteLengthByteByByte) {
  Decoder decoder(DecoderLimits{.max_packet_size = 127});
  const Bytes header = hex("30 80 01");  // 128
  std::span<const std::uint8_t> input(header);
  auto one = input.first(1), two = input.subspan(1, 1), three = input.subspan(2, 1);
  EXPECT_TRUE(std::holds_alternative<NeedMore>(decoder.next(one)));
  EXPECT_TRUE(std::holds_alternative<NeedMore>(decoder.next(two)));
  const DecodeResult result = decoder.next(three);
  ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
  EXPECT_EQ(std::get<DecodeError>(result), DecodeError::kPacketTooLarge);
}

TEST(DecoderLimits, PacketOfExactlyTheLimitIsAccepted) {
  const Bytes bytes = encoded(Publish{.topic = "t", .payload = std::string(97, 'x')});
  ASSERT_EQ(bytes[1], 100);
  EXPECT_EQ(decode_all(bytes, {.max_packet_size = 100}).packets.size(), 1u);
  EXPECT_EQ(decode_all(bytes, {.max_packet_size = 99}).error, DecodeError::kPacketTooLarge);
}

TEST(DecoderLimits, LargestRemainingLengthHeaderIsAcceptedWhenAllowed) {
  Decoder decoder(DecoderLimits{.max_packet_size = detail::kMaxRemainingLength});
  const DecodeResult result = feed(decoder, hex("30 ff ff ff 7f  0001 74"));
  EXPECT_TRUE(std::holds_alternative<NeedMore>(result));
  EXPECT_TRUE(decoder.has_partial());
}

TEST(DecoderLimits, FiveByteRemainingLengthIsMalformedWhateverTheLimit) {
  Decoder decoder(DecoderLimits{.max_packet_size = SIZE_MAX});
  const DecodeResult result = feed(decoder, hex("30 80 80 80 80 01"));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
  EXPECT_EQ(std::get<DecodeError>(result), DecodeError::kMalformedRemainingLength);
}

TEST(DecoderLimits, FixedSizePacketWithWrongLengthIsRefusedFromTheHeader) {
  Decoder decoder;
  // PINGREQ announcing a 100-byte body: refused before the body arrives.
  const DecodeResult result = feed(decoder, hex("c0 64"));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
  EXPECT_EQ(std::get<DecodeError>(result), DecodeError::kMalformedPacket);
}

TEST(DecoderErrors, BadFirstByteIsRefusedBeforeTheLength) {
  Decoder decoder;
  const DecodeResult result = feed(decoder, hex("f0"));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(result));
  EXPECT_EQ(std::get<DecodeError>(result), DecodeError::kInvalidPacketType);
}

TEST(DecoderErrors, ErrorIsSticky) {
  Decoder decoder;
  ASSERT_TRUE(std::holds_alternative<DecodeError>(feed(decoder, hex("c0 01 00"))));
  const DecodeResult again = feed(decoder, hex("c0 00"));
  ASSERT_TRUE(std::holds_alternative<DecodeError>(again));
  EXPECT_EQ(std::get<DecodeError>(again), DecodeError::kMalformedPacket);
}

TEST(DecoderVersion, ConnectSetsTheVersionForLaterPackets) {
  Decoder decoder;
  ASSERT_TRUE(std::holds_alternative<Packet>(
      feed(decoder, encoded(Connect{.version = ProtocolVersion::kV31, .client_id = "a"}))));
  EXPECT_TRUE(std::holds_alternative<Packet>(feed(decoder, hex("6a 02 0001"))));
}

TEST(DecoderVersion, SetProtocolVersionAppliesToFollowingPackets) {
  Decoder decoder;
  decoder.set_protocol_version(ProtocolVersion::kV31);
  EXPECT_TRUE(std::holds_alternative<Packet>(feed(decoder, hex("6a 02 0001"))));
  decoder.set_protocol_version(ProtocolVersion::kV311);
  EXPECT_TRUE(std::holds_alternative<DecodeError>(feed(decoder, hex("6a 02 0001"))));
}

TEST(DecoderBuffers, HasPartialTracksTheSplitPacket) {
  const Bytes bytes = hex("32 08 0003 612f62 0001 78");
  Decoder decoder;
  for (std::size_t i = 0; i + 1 < bytes.size(); ++i) {
    std::span<const std::uint8_t> one(bytes.data() + i, 1);
    ASSERT_TRUE(std::holds_alternative<NeedMore>(decoder.next(one)));
    EXPECT_TRUE(decoder.has_partial());
  }
  std::span<const std::uint8_t> last(bytes.data() + bytes.size() - 1, 1);
  ASSERT_TRUE(std::holds_alternative<Packet>(decoder.next(last)));
  EXPECT_FALSE(decoder.has_partial());
}

TEST(DescribeError, EveryErrorHasADescription) {
  for (int e = 0; e <= static_cast<int>(DecodeError::kInvalidSubscribeReservedBits); ++e) {
    EXPECT_STRNE(describe(static_cast<DecodeError>(e)), "unknown decode error") << e;
  }
}

TEST(PacketTypeName, NamesEveryType) {
  EXPECT_STREQ(packet_type_name(PacketType::kConnect), "CONNECT");
  EXPECT_STREQ(packet_type_name(PacketType::kUnsuback), "UNSUBACK");
  EXPECT_STREQ(packet_type_name(PacketType::kDisconnect), "DISCONNECT");
  EXPECT_EQ(packet_type(Packet{Pubrel{1}}), PacketType::kPubrel);
}

}  // namespace
}  // namespace meshmq::codec::test
