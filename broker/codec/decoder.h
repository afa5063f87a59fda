// Incremental, sans-I/O MQTT decoder: bytes in (in chunks of any size), packets or a typed error
// out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "broker/codec/packet.h"

namespace meshmq::codec {

enum class DecodeError : std::uint8_t {
  kMalformedRemainingLength,      // more than 4 length bytes (2.2.3)
  kPacketTooLarge,                // remaining length above DecoderLimits::max_packet_size
  kInvalidPacketType,             // type 0 or 15
  kInvalidFixedHeaderFlags,       // reserved flag bits wrong for the type (2.2.2)
  kMalformedPacket,               // truncated or trailing bytes, bad string length, ...
  kInvalidUtf8,                   // ill-formed UTF-8 or U+0000 in a string (1.5.3)
  kUnsupportedProtocolName,       // neither "MQTT" nor "MQIsdp" (3.1.2.1)
  kUnsupportedProtocolLevel,      // answer with CONNACK 0x01 (3.1.2.2)
  kReservedConnectFlag,           // CONNECT flag bit 0 set (3.1.2.3)
  kInvalidWillFlags,              // will QoS/retain set without the will flag (3.1.2.5-3.1.2.7)
  kPasswordWithoutUsername,       // 3.1.2.9 (MQTT-3.1.2-22)
  kInvalidQoS,                    // QoS 3 in PUBLISH, will or SUBSCRIBE
  kZeroPacketId,                  // packet identifier 0 where one is required (2.3.1)
  kEmptySubscribe,                // SUBSCRIBE without a topic filter (3.8.3)
  kEmptyUnsubscribe,              // UNSUBSCRIBE without a topic filter (3.10.3)
  kInvalidTopicFilter,            // e.g. "a/#/b", "a+", empty (4.7.1)
  kInvalidTopicName,              // wildcard or empty topic in PUBLISH or will (3.3.2.1)
  kInvalidSubscribeReservedBits,  // requested QoS byte with upper bits set (3.8.3.1)
};

const char* describe(DecodeError error);

struct DecoderLimits {
  // Largest accepted remaining length; the fixed header is not counted.
  std::size_t max_packet_size = 1024 * 1024;
};

struct NeedMore {};
using DecodeResult = std::variant<NeedMore, Packet, DecodeError>;

// A PUBLISH whose topic and payload point into the decoder's input (or its partial-packet buffer):
// the broker copies them once, straight into the message it routes, instead of into two strings
// first. Valid until the next call on the decoder or until the input buffer is reused.
struct PublishView {
  std::string_view topic;
  std::string_view payload;
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;
};
using DecodeViewResult = std::variant<NeedMore, Packet, PublishView, DecodeError>;

class Decoder {
 public:
  explicit Decoder(DecoderLimits limits = {});

  // Packets after CONNECT are parsed per the protocol version the client announced. Decoding a
  // CONNECT sets it too, so a broker-side decoder need not call this.
  void set_protocol_version(ProtocolVersion version) { version_ = version; }

  // Takes bytes from the front of `input`, advancing it past what was consumed. Returns one packet,
  // NeedMore once `input` is exhausted without completing a packet (the partial tail is kept
  // inside), or an error, after which the decoder stays failed. Whole packets found in `input` are
  // parsed in place; only a partial packet is copied, and that buffer is released once drained so
  // an idle connection holds no read buffer.
  DecodeResult next(std::span<const std::uint8_t>& input);
  // The same, but a PUBLISH comes back as a PublishView (every other packet as a Packet).
  DecodeViewResult next_view(std::span<const std::uint8_t>& input);

  bool has_partial() const { return (!partial_.empty() && !stale_partial_) || header_len_ > 0; }

 private:
  // The body of a packet arriving in pieces. 16 bytes rather than a std::string's 32: there is a
  // decoder per connection. Sizes fit 32 bits (the remaining length is at most 2^28 - 1).
  class Partial {
   public:
    bool empty() const { return size_ == 0; }
    std::size_t size() const { return size_; }
    std::size_t capacity() const { return capacity_; }
    const std::uint8_t* data() const { return data_.get(); }
    void reserve(std::size_t capacity);
    void append(const std::uint8_t* bytes, std::size_t n);
    void release() { *this = Partial{}; }

   private:
    std::unique_ptr<std::uint8_t[]> data_;
    std::uint32_t size_ = 0;
    std::uint32_t capacity_ = 0;
  };

  DecoderLimits limits_;
  Partial partial_;
  std::uint32_t body_len_ = 0;
  // Partial fixed header of the packet being assembled.
  std::uint8_t header_[5] = {};
  std::uint8_t header_len_ = 0;
  ProtocolVersion version_ = ProtocolVersion::kV311;
  bool stale_partial_ = false;  // partial_ holds a packet a PublishView may still point into
  bool failed_ = false;
  DecodeError error_ = DecodeError::kMalformedPacket;

  template <class Result, class Parse>
  Result decode(std::span<const std::uint8_t>& input, Parse parse);
};

// Parses one whole packet given its first fixed-header byte and its body.
DecodeResult parse_packet(std::uint8_t first_byte, std::span<const std::uint8_t> body,
                          ProtocolVersion version);
// The same for a PUBLISH, without copying: the view points into `body`.
std::variant<PublishView, DecodeError> parse_publish_view(std::uint8_t first_byte,
                                                          std::span<const std::uint8_t> body,
                                                          ProtocolVersion version);

}  // namespace meshmq::codec
