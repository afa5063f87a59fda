// PUBLISH (3.3), the hot path: one UTF-8 pass over the topic; the view copies nothing, the Packet
// form copies topic and payload once each.
#include "broker/codec/fixed_header.h"
#include "broker/codec/parsers.h"
#include "broker/codec/topic_rules.h"
#include "broker/codec/wire.h"

namespace meshmq::codec {

namespace detail {

std::variant<PublishView, DecodeError> parse_publish_view(std::uint8_t flags, Body body) {
  // check_first_byte has rejected QoS 3 (MQTT-3.3.1-4) and DUP at QoS 0 (MQTT-3.3.1-2).
  Reader r(body);
  PublishView publish;
  publish.dup = (flags & 0x08) != 0;
  publish.qos = static_cast<QoS>((flags >> 1) & 0x03);
  publish.retain = (flags & 0x01) != 0;

  if (auto error = read_utf8(r, publish.topic)) return *error;
  // MQTT-3.3.2-2 (no wildcards) and MQTT-4.7.3-1 (not empty).
  if (!valid_topic_name(publish.topic)) return DecodeError::kInvalidTopicName;

  if (publish.qos != QoS::kAtMostOnce) {
    // The packet identifier exists only for QoS 1 and 2 (3.3.2.2) and is non-zero (MQTT-2.3.1-1).
    if (!r.u16(publish.packet_id)) return DecodeError::kMalformedPacket;
    if (publish.packet_id == 0) return DecodeError::kZeroPacketId;
  }
  // The payload is whatever is left, possibly nothing (3.3.3).
  publish.payload = r.rest();
  return publish;
}

DecodeResult parse_publish(std::uint8_t flags, Body body, ProtocolVersion /*version*/) {
  auto r = parse_publish_view(flags, body);
  if (auto* error = std::get_if<DecodeError>(&r)) return *error;
  const PublishView& v = std::get<PublishView>(r);
  return Packet{Publish{.topic = std::string(v.topic),
                        .payload = std::string(v.payload),
                        .qos = v.qos,
                        .retain = v.retain,
                        .dup = v.dup,
                        .packet_id = v.packet_id}};
}

}  // namespace detail

std::variant<PublishView, DecodeError> parse_publish_view(std::uint8_t first_byte,
                                                          std::span<const std::uint8_t> body,
                                                          ProtocolVersion version) {
  if (auto error = detail::check_first_byte(first_byte, version)) return *error;
  if (auto error = detail::check_remaining_length(first_byte, body.size(), version)) return *error;
  return detail::parse_publish_view(first_byte & 0x0F, body);
}

}  // namespace meshmq::codec
