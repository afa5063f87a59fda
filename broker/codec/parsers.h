// Internal to the codec: one parse function per packet type, fed the body of a packet whose first
// byte has already passed check_first_byte. Each takes the ProtocolVersion so that MQTT 5.0
// properties can be added per packet without touching the others. Not part of the public API.
#pragma once

#include <cstdint>
#include <span>

#include "broker/codec/decoder.h"

namespace meshmq::codec::detail {

using Body = std::span<const std::uint8_t>;

// CONNECT announces its own version; `version` is what the decoder assumed until then.
DecodeResult parse_connect(Body body, ProtocolVersion version);
DecodeResult parse_connack(Body body, ProtocolVersion version);
DecodeResult parse_publish(std::uint8_t flags, Body body, ProtocolVersion version);
std::variant<PublishView, DecodeError> parse_publish_view(std::uint8_t flags, Body body);
// PUBACK, PUBREC, PUBREL, PUBCOMP and UNSUBACK: a packet identifier and nothing else.
DecodeResult parse_id_only(PacketType type, Body body, ProtocolVersion version);
DecodeResult parse_subscribe(Body body, ProtocolVersion version);
DecodeResult parse_suback(Body body, ProtocolVersion version);
DecodeResult parse_unsubscribe(Body body, ProtocolVersion version);
// PINGREQ, PINGRESP and DISCONNECT carry no body.
DecodeResult parse_empty(PacketType type, Body body, ProtocolVersion version);

}  // namespace meshmq::codec::detail
