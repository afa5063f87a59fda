// libFuzzer target for the codec. Input layout: one config byte, then the byte stream a peer sends.
//   config bit 7: the decoder starts in MQTT 3.1 mode (as after an MQIsdp CONNECT)
//   config bit 6: a small max_packet_size (300), to reach the size checks with small inputs
//   config bits 0-5: chunking step s; 0 feeds the stream in one piece, otherwise chunk i has
//                    1 + (i * 31 + config) % s bytes, so sizes from 1 to 63 occur
// Properties checked, any violation aborts:
//   - decoding in chunks gives exactly what decoding in one piece gives (packets, error, tail);
//   - every decoded packet re-encodes to bytes that decode to the same packet, with nothing left;
//   - encode_publish and publish_wire_size agree with encode for PUBLISH;
//   - topic names and filters that the decoder accepted pass the topic_rules checks, and a valid
//     topic name used as a filter matches itself.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "broker/codec/decoder.h"
#include "broker/codec/encoder.h"
#include "broker/codec/topic_rules.h"
#include "broker/codec/utf8.h"

namespace {

using namespace meshmq::codec;

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s at %s:%d\n", #cond, __FILE__, __LINE__); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (0)

struct Run {
  // Each packet with the protocol version it was parsed under, for the re-decode.
  std::vector<std::pair<Packet, ProtocolVersion>> packets;
  std::optional<DecodeError> error;
  bool partial = false;
  bool operator==(const Run&) const = default;
};

Run decode(std::span<const std::uint8_t> stream, std::uint8_t config, bool chunked) {
  const ProtocolVersion start = (config & 0x80) ? ProtocolVersion::kV31 : ProtocolVersion::kV311;
  Decoder decoder(DecoderLimits{.max_packet_size = (config & 0x40) ? 300u : 1024u * 1024u});
  decoder.set_protocol_version(start);
  ProtocolVersion version = start;  // mirrors the decoder: a CONNECT switches it
  const std::size_t step = config & 0x3F;
  Run run;
  std::size_t offset = 0;
  for (std::size_t i = 0; offset < stream.size() || (i == 0 && stream.empty()); ++i) {
    std::size_t size = stream.size() - offset;
    if (chunked && step != 0) size = std::min(size, 1 + (i * 31 + config) % step);
    std::span<const std::uint8_t> chunk = stream.subspan(offset, size);
    offset += size;
    while (true) {
      const std::size_t before = chunk.size();
      DecodeResult result = decoder.next(chunk);
      FUZZ_CHECK(chunk.size() <= before);
      if (auto* packet = std::get_if<Packet>(&result)) {
        run.packets.emplace_back(std::move(*packet), version);
        if (auto* connect = std::get_if<Connect>(&run.packets.back().first)) {
          version = connect->version;
        }
        continue;
      }
      if (auto* error = std::get_if<DecodeError>(&result)) {
        run.error = *error;
        return run;
      }
      FUZZ_CHECK(chunk.empty());  // NeedMore only once the chunk is used up
      break;
    }
  }
  run.partial = decoder.has_partial();
  return run;
}

void check_topics(const Packet& packet) {
  if (const auto* publish = std::get_if<Publish>(&packet)) {
    FUZZ_CHECK(valid_topic_name(publish->topic) && valid_mqtt_utf8(publish->topic));
    FUZZ_CHECK(topic_matches(publish->topic, publish->topic));
    FUZZ_CHECK(topic_matches("#", publish->topic) == (publish->topic[0] != '$'));
  } else if (const auto* subscribe = std::get_if<Subscribe>(&packet)) {
    FUZZ_CHECK(!subscribe->topics.empty());
    for (const auto& topic : subscribe->topics) {
      FUZZ_CHECK(valid_topic_filter(topic.filter));
      // Any filter matches some topic; exercise matching against a few shapes.
      (void)topic_matches(topic.filter, "a/b");
      (void)topic_matches(topic.filter, "$SYS/x");
      (void)topic_matches(topic.filter, "/");
    }
  } else if (const auto* connect = std::get_if<Connect>(&packet)) {
    if (connect->will) FUZZ_CHECK(valid_topic_name(connect->will->topic));
    FUZZ_CHECK(!connect->password || connect->username);
  }
}

void check_round_trip(const Packet& packet, ProtocolVersion version) {
  std::string bytes;
  encode(packet, bytes);
  if (const auto* publish = std::get_if<Publish>(&packet)) {
    std::string direct;
    encode_publish(direct, publish->topic, publish->payload, publish->qos, publish->retain,
                   publish->dup, publish->packet_id);
    FUZZ_CHECK(direct == bytes);
    FUZZ_CHECK(bytes.size() == publish_wire_size(publish->topic, publish->payload, publish->qos));
  }
  Decoder decoder(DecoderLimits{.max_packet_size = SIZE_MAX});
  decoder.set_protocol_version(version);
  std::span<const std::uint8_t> input(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                      bytes.size());
  DecodeResult result = decoder.next(input);
  if (!std::holds_alternative<Packet>(result)) {
    std::fprintf(stderr, "re-decode of %s failed: %s\n", packet_type_name(packet_type(packet)),
                 std::holds_alternative<DecodeError>(result)
                     ? describe(std::get<DecodeError>(result))
                     : "needs more bytes");
    std::abort();
  }
  FUZZ_CHECK(std::get<Packet>(result) == packet);
  FUZZ_CHECK(input.empty());
  FUZZ_CHECK(!decoder.has_partial());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t config = data[0];
  const std::span<const std::uint8_t> stream(data + 1, size - 1);

  const Run whole = decode(stream, config, /*chunked=*/false);
  const Run chunked = decode(stream, config, /*chunked=*/true);
  FUZZ_CHECK(whole == chunked);

  for (const auto& [packet, version] : whole.packets) {
    check_topics(packet);
    check_round_trip(packet, version);
  }
  return 0;
}
