// Memory behaviour the broker relies on: whole packets are not copied into a buffer, a split
// packet's buffer is freed once the packet is complete, a large announced length is not
// pre-allocated, and encode_publish allocates at most by growing its output. Counted with a
// replaced operator new, which is why these tests live in their own file (the replacement is
// process-wide but only counts while a test enables it).
#include <gtest/gtest.h>

#include "tests/unit/codec/codec_test_util.h"
#include "tests/unit/counting_new.h"

namespace meshmq::codec::test {
namespace {

using meshmq::testing::Counting;

TEST(Allocation, WholePacketInTheChunkIsParsedInPlace) {
  const Bytes bytes = encoded(Publish{.topic = "a/b", .payload = std::string(64, 'x')});
  Decoder decoder;
  std::span<const std::uint8_t> input(bytes);
  long allocations;
  {
    Counting counting;
    DecodeResult result = decoder.next(input);
    allocations = counting.allocations();
    ASSERT_TRUE(std::holds_alternative<Packet>(result));
  }
  // Only the payload string (the topic fits the small-string buffer): no copy of the packet bytes.
  EXPECT_EQ(allocations, 1);
}

TEST(Allocation, SplitPacketBufferIsReleasedOnceComplete) {
  const Bytes bytes = encoded(Publish{.topic = "a/b", .payload = std::string(5000, 'x')});
  Decoder decoder;
  std::span<const std::uint8_t> first(bytes.data(), bytes.size() / 2);
  std::span<const std::uint8_t> second(bytes.data() + bytes.size() / 2,
                                       bytes.size() - bytes.size() / 2);
  long live_while_partial, live_after;
  {
    Counting counting;
    const bool need_more = std::holds_alternative<NeedMore>(decoder.next(first));
    live_while_partial = counting.live();
    {
      DecodeResult result = decoder.next(second);
      ASSERT_TRUE(std::holds_alternative<Packet>(result));
    }
    live_after = counting.live();
    ASSERT_TRUE(need_more);
  }
  EXPECT_GT(live_while_partial, 0);
  EXPECT_EQ(live_after, 0);  // the partial buffer is gone, the decoder holds nothing
  EXPECT_FALSE(decoder.has_partial());
}

TEST(Allocation, PublishViewCopiesNothing) {
  const Bytes bytes = encoded(Publish{.topic = "sensors/room-42/temperature",
                                      .payload = std::string(64, 'x'),
                                      .qos = QoS::kAtLeastOnce,
                                      .packet_id = 7});
  Decoder decoder;
  std::span<const std::uint8_t> input(bytes);
  long allocations;
  {
    Counting counting;
    DecodeViewResult result = decoder.next_view(input);
    allocations = counting.allocations();
    ASSERT_TRUE(std::holds_alternative<PublishView>(result));
    EXPECT_EQ(std::get<PublishView>(result).payload, std::string(64, 'x'));
  }
  EXPECT_EQ(allocations, 0);
}

TEST(Allocation, SplitPublishViewBufferIsReleasedByTheNextCall) {
  const Bytes bytes = encoded(Publish{.topic = "a/b", .payload = std::string(5000, 'x')});
  Decoder decoder;
  std::span<const std::uint8_t> first(bytes.data(), bytes.size() / 2);
  std::span<const std::uint8_t> second(bytes.data() + bytes.size() / 2,
                                       bytes.size() - bytes.size() / 2);
  long live_with_view, live_after;
  {
    Counting counting;
    ASSERT_TRUE(std::holds_alternative<NeedMore>(decoder.next_view(first)));
    DecodeViewResult result = decoder.next_view(second);
    ASSERT_TRUE(std::holds_alternative<PublishView>(result));
    // The view points into the partial buffer, which is still there and intact.
    EXPECT_EQ(std::get<PublishView>(result).payload, std::string(5000, 'x'));
    live_with_view = counting.live();
    EXPECT_FALSE(decoder.has_partial());
    ASSERT_TRUE(std::holds_alternative<NeedMore>(decoder.next_view(second)));
    live_after = counting.live();
  }
  EXPECT_EQ(live_with_view, 1);
  EXPECT_EQ(live_after, 0);  // gone with the next call: an idle connection holds no buffer
}

TEST(Allocation, AnnouncedLengthIsNotPreallocated) {
  // A peer announcing a 1 MiB PUBLISH and sending ten bytes of it must not cost 1 MiB.
  const Bytes bytes = hex("30 80 80 40  0003 612f62 0102030405");
  Decoder decoder(DecoderLimits{.max_packet_size = 2 * 1024 * 1024});
  std::span<const std::uint8_t> input(bytes);
  std::size_t largest;
  {
    Counting counting;
    ASSERT_TRUE(std::holds_alternative<NeedMore>(decoder.next(input)));
    largest = counting.largest();
  }
  EXPECT_LE(largest, 8192u);
}

TEST(Allocation, EncodePublishIntoReservedBufferDoesNotAllocate) {
  std::string out;
  out.reserve(4096);
  const std::string payload(1024, 'p');
  long allocations;
  {
    Counting counting;
    encode_publish(out, "sensors/1/temp", payload, QoS::kAtLeastOnce, false, false, 42);
    encode_publish(out, "sensors/1/temp", payload, QoS::kAtMostOnce, true, false, 0);
    allocations = counting.allocations();
  }
  EXPECT_EQ(allocations, 0);
  EXPECT_EQ(out.size(), 2 * publish_wire_size("sensors/1/temp", payload, QoS::kAtLeastOnce) - 2);
}

TEST(Allocation, EncodePublishGrowsTheBufferAtMostOnce) {
  std::string out;
  const std::string payload(100000, 'p');
  long allocations;
  {
    Counting counting;
    encode_publish(out, "t", payload, QoS::kExactlyOnce, false, true, 7);
    allocations = counting.allocations();
  }
  EXPECT_EQ(allocations, 1);
}

}  // namespace
}  // namespace meshmq::codec::test
