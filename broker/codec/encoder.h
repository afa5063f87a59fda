// MQTT encoder: appends the wire form of packets to a caller-owned buffer, so a connection can
// batch many packets into one write without intermediate allocations.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "broker/codec/packet.h"

namespace meshmq::codec {

void encode(const Packet& packet, std::string& out);

// The hot path: PUBLISH straight from a shared message without building a Publish value.
void encode_publish(std::string& out, std::string_view topic, std::string_view payload, QoS qos,
                    bool retain, bool dup, std::uint16_t packet_id);

// Size of the encoded PUBLISH, for buffer limits.
std::size_t publish_wire_size(std::string_view topic, std::string_view payload, QoS qos);

}  // namespace meshmq::codec
