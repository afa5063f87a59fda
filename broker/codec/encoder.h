// MQTT encoder: appends the wire form of packets to a caller-owned buffer, so a connection can
// batch many packets into one write without intermediate allocations.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "broker/codec/packet.h"

namespace meshmq::codec {

// Encoding cannot fail. Callers pass packets within the wire limits (strings and binary fields of
// at most 65535 bytes, remaining length of at most 268,435,455, non-zero packet identifiers where
// the packet has one, a password only with a user name); debug builds assert them. The encoder
// never sets DUP at QoS 0 (MQTT-3.3.1-2) nor session present on a refused CONNACK (MQTT-3.2.2-4).
void encode(const Packet& packet, std::string& out);

// The hot path: PUBLISH straight from a shared message without building a Publish value.
void encode_publish(std::string& out, std::string_view topic, std::string_view payload, QoS qos,
                    bool retain, bool dup, std::uint16_t packet_id);

// Size of the encoded PUBLISH, for buffer limits.
std::size_t publish_wire_size(std::string_view topic, std::string_view payload, QoS qos);

}  // namespace meshmq::codec
