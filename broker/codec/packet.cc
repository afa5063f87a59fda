#include "broker/codec/packet.h"

#include <type_traits>

namespace meshmq::codec {

PacketType packet_type(const Packet& packet) {
  // The variant's alternatives are listed in wire order starting at CONNECT (1), so the index is
  // the type minus one; the static_asserts keep that true if the variant is ever reordered.
  static_assert(std::is_same_v<std::variant_alternative_t<0, Packet>, Connect>);
  static_assert(std::is_same_v<std::variant_alternative_t<8, Packet>, Suback>);
  static_assert(std::is_same_v<std::variant_alternative_t<13, Packet>, Disconnect>);
  return static_cast<PacketType>(packet.index() + 1);
}

const char* packet_type_name(PacketType type) {
  switch (type) {
    case PacketType::kConnect:
      return "CONNECT";
    case PacketType::kConnack:
      return "CONNACK";
    case PacketType::kPublish:
      return "PUBLISH";
    case PacketType::kPuback:
      return "PUBACK";
    case PacketType::kPubrec:
      return "PUBREC";
    case PacketType::kPubrel:
      return "PUBREL";
    case PacketType::kPubcomp:
      return "PUBCOMP";
    case PacketType::kSubscribe:
      return "SUBSCRIBE";
    case PacketType::kSuback:
      return "SUBACK";
    case PacketType::kUnsubscribe:
      return "UNSUBSCRIBE";
    case PacketType::kUnsuback:
      return "UNSUBACK";
    case PacketType::kPingreq:
      return "PINGREQ";
    case PacketType::kPingresp:
      return "PINGRESP";
    case PacketType::kDisconnect:
      return "DISCONNECT";
  }
  return "UNKNOWN";
}

}  // namespace meshmq::codec
