#include "broker/codec/fixed_header.h"
#include "broker/codec/parsers.h"

namespace meshmq::codec {

DecodeResult parse_packet(std::uint8_t first_byte, std::span<const std::uint8_t> body,
                          ProtocolVersion version) {
  if (auto error = detail::check_first_byte(first_byte, version)) return *error;
  if (auto error = detail::check_remaining_length(first_byte, body.size(), version)) return *error;
  const auto type = static_cast<PacketType>(first_byte >> 4);
  switch (type) {
    case PacketType::kConnect:
      return detail::parse_connect(body, version);
    case PacketType::kConnack:
      return detail::parse_connack(body, version);
    case PacketType::kPublish:
      return detail::parse_publish(first_byte & 0x0F, body, version);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
    case PacketType::kUnsuback:
      return detail::parse_id_only(type, body, version);
    case PacketType::kSubscribe:
      return detail::parse_subscribe(body, version);
    case PacketType::kSuback:
      return detail::parse_suback(body, version);
    case PacketType::kUnsubscribe:
      return detail::parse_unsubscribe(body, version);
    case PacketType::kPingreq:
    case PacketType::kPingresp:
    case PacketType::kDisconnect:
      return detail::parse_empty(type, body, version);
  }
  return DecodeError::kInvalidPacketType;  // unreachable: check_first_byte rejected 0 and 15
}

}  // namespace meshmq::codec
