// The fixed-size packets: CONNACK (3.2), PUBACK/PUBREC/PUBREL/PUBCOMP (3.4-3.7), UNSUBACK (3.11),
// PINGREQ/PINGRESP (3.12, 3.13) and DISCONNECT (3.14). Their lengths are also checked from the
// fixed header (check_remaining_length); the checks here keep parse_packet safe on its own.
#include "broker/codec/parsers.h"
#include "broker/codec/wire.h"

namespace meshmq::codec::detail {

DecodeResult parse_connack(Body body, ProtocolVersion /*version*/) {
  if (body.size() != 2) return DecodeError::kMalformedPacket;
  const std::uint8_t ack_flags = body[0];
  const std::uint8_t code = body[1];
  // 3.2.2.1: bits 7-1 of the acknowledge flags are reserved and must be 0.
  if (ack_flags & 0xFE) return DecodeError::kMalformedPacket;
  // 3.2.2.3: return codes 6-255 are reserved.
  if (code > static_cast<std::uint8_t>(ConnectReturnCode::kNotAuthorized)) {
    return DecodeError::kMalformedPacket;
  }
  // MQTT-3.2.2-4: a refused connection never reports a session.
  if (code != 0 && ack_flags != 0) return DecodeError::kMalformedPacket;
  return Packet{
      Connack{.session_present = ack_flags == 1, .code = static_cast<ConnectReturnCode>(code)}};
}

DecodeResult parse_id_only(PacketType type, Body body, ProtocolVersion /*version*/) {
  Reader r(body);
  std::uint16_t id;
  if (!r.u16(id) || !r.empty()) return DecodeError::kMalformedPacket;
  if (id == 0) return DecodeError::kZeroPacketId;  // MQTT-2.3.1-1
  switch (type) {
    case PacketType::kPuback:
      return Packet{Puback{id}};
    case PacketType::kPubrec:
      return Packet{Pubrec{id}};
    case PacketType::kPubrel:
      return Packet{Pubrel{id}};
    case PacketType::kPubcomp:
      return Packet{Pubcomp{id}};
    case PacketType::kUnsuback:
      return Packet{Unsuback{id}};
    default:
      return DecodeError::kInvalidPacketType;
  }
}

DecodeResult parse_empty(PacketType type, Body body, ProtocolVersion /*version*/) {
  if (!body.empty()) return DecodeError::kMalformedPacket;
  switch (type) {
    case PacketType::kPingreq:
      return Packet{Pingreq{}};
    case PacketType::kPingresp:
      return Packet{Pingresp{}};
    case PacketType::kDisconnect:
      return Packet{Disconnect{}};
    default:
      return DecodeError::kInvalidPacketType;
  }
}

}  // namespace meshmq::codec::detail
