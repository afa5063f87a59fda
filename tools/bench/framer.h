// Splits the inbound byte stream into MQTT packets on top of the project's codec.
//
// The codec's Decoder hands out PUBLISH as a value that owns copies of topic and payload, which is
// a heap allocation for every payload longer than the small-string buffer. A subscriber receiving
// hundreds of thousands of messages a second should not pay that, so PUBLISH (the only frequent
// inbound packet) is read as views into the receive buffer here; every other packet goes through
// codec::parse_packet. Whole packets are parsed where they lie; only a packet cut by the end of a
// read is copied, and only up to its own end.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "broker/codec/decoder.h"
#include "broker/codec/packet.h"

namespace meshmq::bench {

struct PublishView {
  std::string_view topic;
  std::string_view payload;
  codec::QoS qos = codec::QoS::kAtMostOnce;
  std::uint16_t packet_id = 0;
};

class Framer {
 public:
  // Calls on_publish(const PublishView&) or on_packet(codec::Packet&&) for every complete packet.
  // Returns the error that makes the rest of the stream unreadable, if any.
  template <class OnPublish, class OnPacket>
  std::optional<codec::DecodeError> feed(std::span<const std::uint8_t> input,
                                         OnPublish&& on_publish, OnPacket&& on_packet);

 private:
  struct Header {
    bool complete = false;
    bool malformed = false;
    std::size_t size = 0;       // fixed header bytes
    std::size_t remaining = 0;  // body bytes
  };
  static Header scan(const std::uint8_t* data, std::size_t size);

  template <class OnPublish, class OnPacket>
  std::optional<codec::DecodeError> dispatch(std::uint8_t first, std::span<const std::uint8_t> body,
                                             OnPublish& on_publish, OnPacket& on_packet);

  std::string partial_;  // a packet cut by the end of a read, kept until its end arrives
};

inline Framer::Header Framer::scan(const std::uint8_t* data, std::size_t size) {
  Header h;
  std::size_t value = 0;
  for (std::size_t i = 1; i < size && i <= 4; ++i) {
    value |= std::size_t{data[i] & 0x7Fu} << (7 * (i - 1));
    if ((data[i] & 0x80) == 0) {
      h.complete = true;
      h.size = i + 1;
      h.remaining = value;
      return h;
    }
  }
  h.malformed = size >= 5;  // four continuation bytes and still no end (2.2.3)
  return h;
}

template <class OnPublish, class OnPacket>
std::optional<codec::DecodeError> Framer::dispatch(std::uint8_t first,
                                                   std::span<const std::uint8_t> body,
                                                   OnPublish& on_publish, OnPacket& on_packet) {
  if ((first >> 4) == static_cast<std::uint8_t>(codec::PacketType::kPublish)) {
    // Conformance of what the broker sends is the integration tests' business; here only what is
    // needed to read the message safely is checked.
    PublishView p;
    p.qos = static_cast<codec::QoS>((first >> 1) & 0x03);
    if (p.qos > codec::QoS::kExactlyOnce) return codec::DecodeError::kInvalidQoS;
    if (body.size() < 2) return codec::DecodeError::kMalformedPacket;
    const std::size_t topic_len = (std::size_t{body[0]} << 8) | body[1];
    std::size_t pos = 2 + topic_len;
    if (p.qos != codec::QoS::kAtMostOnce) pos += 2;
    if (pos > body.size()) return codec::DecodeError::kMalformedPacket;
    const char* chars = reinterpret_cast<const char*>(body.data());
    p.topic = std::string_view(chars + 2, topic_len);
    if (p.qos != codec::QoS::kAtMostOnce) {
      p.packet_id = static_cast<std::uint16_t>((body[2 + topic_len] << 8) | body[3 + topic_len]);
    }
    p.payload = std::string_view(chars + pos, body.size() - pos);
    on_publish(p);
    return std::nullopt;
  }
  codec::DecodeResult result = codec::parse_packet(first, body, codec::ProtocolVersion::kV311);
  if (auto* error = std::get_if<codec::DecodeError>(&result)) return *error;
  on_packet(std::move(std::get<codec::Packet>(result)));
  return std::nullopt;
}

template <class OnPublish, class OnPacket>
std::optional<codec::DecodeError> Framer::feed(std::span<const std::uint8_t> input,
                                               OnPublish&& on_publish, OnPacket&& on_packet) {
  if (!partial_.empty()) {
    // Complete the packet left over from the previous read: first its fixed header, byte by byte
    // (at most 5), then exactly the rest of its body.
    Header h = scan(reinterpret_cast<const std::uint8_t*>(partial_.data()), partial_.size());
    while (!h.complete && !input.empty()) {
      if (h.malformed) return codec::DecodeError::kMalformedRemainingLength;
      partial_.push_back(static_cast<char>(input[0]));
      input = input.subspan(1);
      h = scan(reinterpret_cast<const std::uint8_t*>(partial_.data()), partial_.size());
    }
    if (h.malformed) return codec::DecodeError::kMalformedRemainingLength;
    if (!h.complete) return std::nullopt;
    const std::size_t missing = h.size + h.remaining - partial_.size();
    const std::size_t take = std::min(missing, input.size());
    partial_.append(reinterpret_cast<const char*>(input.data()), take);
    input = input.subspan(take);
    if (take < missing) return std::nullopt;
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(partial_.data());
    auto error = dispatch(bytes[0], std::span<const std::uint8_t>(bytes + h.size, h.remaining),
                          on_publish, on_packet);
    partial_.clear();  // keeps its capacity: a busy subscriber cuts a packet on most reads
    if (error) return error;
  }
  while (!input.empty()) {
    const Header h = scan(input.data(), input.size());
    if (h.malformed) return codec::DecodeError::kMalformedRemainingLength;
    if (!h.complete || input.size() - h.size < h.remaining) break;
    auto error = dispatch(input[0], input.subspan(h.size, h.remaining), on_publish, on_packet);
    if (error) return error;
    input = input.subspan(h.size + h.remaining);
  }
  partial_.assign(reinterpret_cast<const char*>(input.data()), input.size());
  return std::nullopt;
}

}  // namespace meshmq::bench
