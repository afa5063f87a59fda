// SUBSCRIBE (3.8), SUBACK (3.9) and UNSUBSCRIBE (3.10): a packet identifier and a non-empty list.
#include "broker/codec/parsers.h"
#include "broker/codec/topic_rules.h"
#include "broker/codec/wire.h"

namespace meshmq::codec::detail {
namespace {

std::optional<DecodeError> read_packet_id(Reader& r, std::uint16_t& id) {
  if (!r.u16(id)) return DecodeError::kMalformedPacket;
  if (id == 0) return DecodeError::kZeroPacketId;  // MQTT-2.3.1-1
  return std::nullopt;
}

std::optional<DecodeError> read_filter(Reader& r, std::string_view& filter) {
  if (auto error = read_utf8(r, filter)) return error;  // MQTT-3.8.3-1, MQTT-3.10.3-1
  if (!valid_topic_filter(filter)) return DecodeError::kInvalidTopicFilter;  // 4.7.1, 4.7.3
  return std::nullopt;
}

}  // namespace

DecodeResult parse_subscribe(Body body, ProtocolVersion /*version*/) {
  Reader r(body);
  Subscribe subscribe;
  if (auto error = read_packet_id(r, subscribe.packet_id)) return *error;
  if (r.empty()) return DecodeError::kEmptySubscribe;  // MQTT-3.8.3-3
  while (!r.empty()) {
    std::string_view filter;
    std::uint8_t requested;
    if (auto error = read_filter(r, filter)) return *error;
    if (!r.u8(requested)) return DecodeError::kMalformedPacket;
    // MQTT-3-8.3-4: the upper six bits are reserved and the QoS must be 0, 1 or 2.
    if (requested & 0xFC) return DecodeError::kInvalidSubscribeReservedBits;
    if (requested == 3) return DecodeError::kInvalidQoS;
    subscribe.topics.push_back({std::string(filter), static_cast<QoS>(requested)});
  }
  return Packet{std::move(subscribe)};
}

DecodeResult parse_suback(Body body, ProtocolVersion /*version*/) {
  Reader r(body);
  Suback suback;
  if (auto error = read_packet_id(r, suback.packet_id)) return *error;
  // One return code per requested filter, and SUBSCRIBE has at least one (MQTT-3.8.4-5).
  if (r.empty()) return DecodeError::kMalformedPacket;
  suback.return_codes.reserve(r.remaining());
  std::uint8_t code;
  while (r.u8(code)) {
    // MQTT-3.9.3-2: only 0x00, 0x01, 0x02 and 0x80 are defined.
    if (code > 2 && code != kSubackFailure) return DecodeError::kMalformedPacket;
    suback.return_codes.push_back(code);
  }
  return Packet{std::move(suback)};
}

DecodeResult parse_unsubscribe(Body body, ProtocolVersion /*version*/) {
  Reader r(body);
  Unsubscribe unsubscribe;
  if (auto error = read_packet_id(r, unsubscribe.packet_id)) return *error;
  if (r.empty()) return DecodeError::kEmptyUnsubscribe;  // MQTT-3.10.3-2
  while (!r.empty()) {
    std::string_view filter;
    if (auto error = read_filter(r, filter)) return *error;
    unsubscribe.filters.emplace_back(filter);
  }
  return Packet{std::move(unsubscribe)};
}

}  // namespace meshmq::codec::detail
