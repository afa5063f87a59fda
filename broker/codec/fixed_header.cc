#include "broker/codec/fixed_header.h"

namespace meshmq::codec::detail {

std::optional<DecodeError> check_first_byte(std::uint8_t first_byte, ProtocolVersion version) {
  const unsigned type = first_byte >> 4;
  const unsigned flags = first_byte & 0x0F;
  if (type == 0 || type == 15) return DecodeError::kInvalidPacketType;  // reserved (2.2.1)
  switch (static_cast<PacketType>(type)) {
    case PacketType::kPublish: {
      const unsigned qos = (flags >> 1) & 0x03;
      if (qos == 3) return DecodeError::kInvalidQoS;  // MQTT-3.3.1-4
      // MQTT-3.3.1-2: DUP must be 0 for QoS 0; a set bit is a malformed fixed header.
      if (qos == 0 && (flags & 0x08)) return DecodeError::kInvalidFixedHeaderFlags;
      return std::nullopt;
    }
    case PacketType::kPubrel:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe:
      // MQTT-3.6.1-1, MQTT-3.8.1-1, MQTT-3.10.1-1: flags are 0b0010. MQTT 3.1 sent these at QoS 1
      // with the DUP bit set on retries, so 3.1 clients may also send 0b1010.
      if (flags == 0x02) return std::nullopt;
      if (version == ProtocolVersion::kV31 && flags == 0x0A) return std::nullopt;
      return DecodeError::kInvalidFixedHeaderFlags;
    default:
      // MQTT-2.2.2-1: reserved flags are 0 for every other type.
      if (flags != 0) return DecodeError::kInvalidFixedHeaderFlags;
      return std::nullopt;
  }
}

std::optional<DecodeError> check_remaining_length(std::uint8_t first_byte, std::size_t length,
                                                  ProtocolVersion version) {
  switch (static_cast<PacketType>(first_byte >> 4)) {
    case PacketType::kConnack:
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
    case PacketType::kUnsuback:
      // 3.2.1, 3.4.1, 3.5.1, 3.6.1, 3.7.1, 3.11.1: remaining length is 2. (MQTT 5.0 adds reason
      // codes and properties here; this is where `version` will matter.)
      if (length != 2) return DecodeError::kMalformedPacket;
      return std::nullopt;
    case PacketType::kPingreq:
    case PacketType::kPingresp:
    case PacketType::kDisconnect:
      // 3.12.1, 3.13.1, 3.14.1: no variable header or payload.
      if (length != 0) return DecodeError::kMalformedPacket;
      return std::nullopt;
    default:
      return std::nullopt;
  }
}

FixedHeader scan_fixed_header(std::span<const std::uint8_t> bytes) {
  FixedHeader header;
  std::size_t value = 0;
  std::size_t multiplier = 1;
  // 2.2.3: at most four length bytes; the fourth must not have the continuation bit.
  for (std::size_t i = 1; i < bytes.size() && i <= 4; ++i) {
    const std::uint8_t digit = bytes[i];
    value += (digit & 0x7F) * multiplier;
    multiplier *= 128;
    if ((digit & 0x80) == 0) {
      header.status = FixedHeader::Status::kComplete;
      header.size = i + 1;
      header.remaining_length = value;
      return header;
    }
    if (i == 4) {
      header.status = FixedHeader::Status::kError;
      header.error = DecodeError::kMalformedRemainingLength;
      return header;
    }
  }
  return header;
}

}  // namespace meshmq::codec::detail
