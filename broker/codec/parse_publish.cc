// PUBLISH (3.3), the hot path: one UTF-8 pass over the topic, one copy each of topic and payload.
#include "broker/codec/parsers.h"
#include "broker/codec/topic_rules.h"
#include "broker/codec/wire.h"

namespace meshmq::codec::detail {

DecodeResult parse_publish(std::uint8_t flags, Body body, ProtocolVersion /*version*/) {
  // check_first_byte has already rejected QoS 3 (MQTT-3.3.1-4) and DUP at QoS 0 (MQTT-3.3.1-2).
  Reader r(body);
  Publish publish;
  publish.dup = (flags & 0x08) != 0;
  publish.qos = static_cast<QoS>((flags >> 1) & 0x03);
  publish.retain = (flags & 0x01) != 0;

  std::string_view topic;
  if (auto error = read_utf8(r, topic)) return *error;
  // MQTT-3.3.2-2 (no wildcards) and MQTT-4.7.3-1 (not empty).
  if (!valid_topic_name(topic)) return DecodeError::kInvalidTopicName;

  if (publish.qos != QoS::kAtMostOnce) {
    // The packet identifier exists only for QoS 1 and 2 (3.3.2.2) and is non-zero (MQTT-2.3.1-1).
    if (!r.u16(publish.packet_id)) return DecodeError::kMalformedPacket;
    if (publish.packet_id == 0) return DecodeError::kZeroPacketId;
  }
  // The payload is whatever is left, possibly nothing (3.3.3).
  const std::string_view payload = r.rest();
  publish.topic.assign(topic);
  publish.payload.assign(payload);
  return Packet{std::move(publish)};
}

}  // namespace meshmq::codec::detail
