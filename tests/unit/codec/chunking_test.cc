// The decoder's output must not depend on how the byte stream is cut into reads.
#include <gtest/gtest.h>

#include "tests/unit/codec/codec_test_util.h"
#include "tests/unit/codec/sample_packets.h"

namespace meshmq::codec::test {
namespace {

Bytes sample_stream() {
  Bytes stream;
  for (const Packet& p : sample_packets()) {
    const Bytes b = encoded(p);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  return stream;
}

TEST(Chunking, WholeStreamInOneChunk) {
  const Outcome outcome = decode_all(sample_stream());
  EXPECT_EQ(outcome.packets, sample_packets());
  EXPECT_EQ(outcome.error, std::nullopt);
  EXPECT_FALSE(outcome.partial);
}

TEST(Chunking, OneByteAtATime) {
  const Outcome outcome = decode_bytewise(sample_stream());
  EXPECT_EQ(outcome.packets, sample_packets());
  EXPECT_EQ(outcome.error, std::nullopt);
  EXPECT_FALSE(outcome.partial);
}

TEST(Chunking, EveryPacketSplitAtEveryPosition) {
  for (const Packet& packet : sample_packets()) {
    const Bytes bytes = encoded(packet);
    const std::span<const std::uint8_t> all(bytes);
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      const Outcome outcome = decode_chunks({all.first(cut), all.subspan(cut)});
      ASSERT_EQ(outcome.packets.size(), 1u)
          << packet_type_name(packet_type(packet)) << " cut " << cut;
      EXPECT_EQ(outcome.packets[0], packet);
      EXPECT_FALSE(outcome.partial);
    }
  }
}

// next_view() gives the same PUBLISH as next(), wherever the packet is cut: the view into the
// partial-packet buffer stays valid until the next call.
TEST(Chunking, PublishViewsMatchPacketsAtEveryCut) {
  for (const Packet& packet : sample_packets()) {
    const Bytes bytes = encoded(packet);
    const std::span<const std::uint8_t> all(bytes);
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
      const Outcome outcome =
          decode_chunks({all.first(cut), all.subspan(cut)}, {}, ProtocolVersion::kV311, true);
      ASSERT_EQ(outcome.packets.size(), 1u)
          << packet_type_name(packet_type(packet)) << " cut " << cut;
      EXPECT_EQ(outcome.packets[0], packet);
      EXPECT_FALSE(outcome.partial);
    }
  }
  const Bytes stream = sample_stream();
  std::vector<std::span<const std::uint8_t>> bytewise;
  for (std::size_t i = 0; i < stream.size(); ++i)
    bytewise.push_back(std::span(stream).subspan(i, 1));
  EXPECT_EQ(decode_chunks(bytewise, {}, ProtocolVersion::kV311, true).packets, sample_packets());
}

TEST(Chunking, StreamSplitIntoThreeAtManyPositions) {
  const Bytes bytes = sample_stream();
  const std::span<const std::uint8_t> all(bytes);
  for (std::size_t a = 0; a <= bytes.size(); a += 7) {
    for (std::size_t b = a; b <= bytes.size(); b += 13) {
      const Outcome outcome = decode_chunks({all.first(a), all.subspan(a, b - a), all.subspan(b)});
      ASSERT_EQ(outcome.packets, sample_packets()) << "cuts " << a << ", " << b;
    }
  }
}

TEST(Chunking, TwoPacketsInOneChunkComeOutOneByOne) {
  const Bytes bytes = hex("c0 00  30 06 0003 612f62 78");
  std::span<const std::uint8_t> input(bytes);
  Decoder decoder;
  DecodeResult first = decoder.next(input);
  ASSERT_TRUE(std::holds_alternative<Packet>(first));
  EXPECT_EQ(std::get<Packet>(first), Packet{Pingreq{}});
  EXPECT_EQ(input.size(), 8u);  // only the first packet was consumed
  DecodeResult second = decoder.next(input);
  ASSERT_TRUE(std::holds_alternative<Packet>(second));
  EXPECT_EQ(std::get<Publish>(std::get<Packet>(second)).topic, "a/b");
  EXPECT_TRUE(input.empty());
  EXPECT_TRUE(std::holds_alternative<NeedMore>(decoder.next(input)));
  EXPECT_FALSE(decoder.has_partial());
}

TEST(Chunking, ChunkEndingAfterTheFirstByte) {
  const Bytes bytes = hex("30 06 0003 612f62 78");
  std::span<const std::uint8_t> head(bytes.data(), 1);
  std::span<const std::uint8_t> tail(bytes.data() + 1, bytes.size() - 1);
  Decoder decoder;
  EXPECT_TRUE(std::holds_alternative<NeedMore>(decoder.next(head)));
  EXPECT_TRUE(head.empty());
  EXPECT_TRUE(decoder.has_partial());
  EXPECT_TRUE(std::holds_alternative<Packet>(decoder.next(tail)));
  EXPECT_FALSE(decoder.has_partial());
}

TEST(Chunking, ChunkEndingInsideAMultiByteRemainingLength) {
  const Bytes bytes = encoded(Publish{.topic = "t", .payload = std::string(200, 'x')});
  ASSERT_EQ(bytes[1] & 0x80, 0x80);  // two length bytes
  const std::span<const std::uint8_t> all(bytes);
  const Outcome outcome = decode_chunks({all.first(2), all.subspan(2)});
  ASSERT_EQ(outcome.packets.size(), 1u);
  EXPECT_EQ(std::get<Publish>(outcome.packets[0]).payload.size(), 200u);
}

TEST(Chunking, PartialTailIsKeptAfterCompletePackets) {
  const Bytes bytes = hex("c0 00  d0 00  30 06 0003");
  const Outcome outcome = decode_all(bytes);
  EXPECT_EQ(outcome.packets.size(), 2u);
  EXPECT_EQ(outcome.error, std::nullopt);
  EXPECT_TRUE(outcome.partial);
}

TEST(Chunking, EmptyInputNeedsMore) {
  Decoder decoder;
  std::span<const std::uint8_t> empty;
  EXPECT_TRUE(std::holds_alternative<NeedMore>(decoder.next(empty)));
  EXPECT_FALSE(decoder.has_partial());
}

TEST(Chunking, ErrorInSecondPacketOfAChunk) {
  const Bytes bytes = hex("c0 00  c0 01 00");
  EXPECT_EQ(decode_all(bytes), decode_bytewise(bytes));
  EXPECT_EQ(decode_all(bytes).error, DecodeError::kMalformedPacket);
  EXPECT_EQ(decode_all(bytes).packets.size(), 1u);
}

}  // namespace
}  // namespace meshmq::codec::test
