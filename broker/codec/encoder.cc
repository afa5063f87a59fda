// Encoding never fails: the broker only encodes packets it built itself. The preconditions (string
// fields of at most 65535 bytes, remaining length of at most 268,435,455, non-zero packet
// identifiers where required) are asserted in debug builds. The encoder never emits a packet that
// the decoder would reject for a reason it controls, e.g. it clears DUP at QoS 0 (MQTT-3.3.1-2).
#include "broker/codec/encoder.h"

#include <algorithm>
#include <cassert>
#include <type_traits>
#include <variant>

#include "broker/codec/wire.h"

namespace meshmq::codec {
namespace {

using detail::put_prefixed;
using detail::put_u16;
using detail::put_u8;
using detail::put_varint;

constexpr std::size_t kMaxString = 65535;

std::uint8_t first_byte(PacketType type, std::uint8_t flags = 0) {
  return static_cast<std::uint8_t>((static_cast<unsigned>(type) << 4) | flags);
}

// Makes room for `size` more bytes with one allocation at most, keeping geometric growth so that a
// connection batching many packets into `out` does not reallocate per packet.
void reserve_more(std::string& out, std::size_t size) {
  const std::size_t needed = out.size() + size;
  if (needed > out.capacity()) out.reserve(std::max(needed, 2 * out.capacity()));
}

void put_header(std::string& out, std::uint8_t first, std::size_t remaining_length) {
  assert(remaining_length <= detail::kMaxRemainingLength);
  reserve_more(out, 1 + detail::varint_size(remaining_length) + remaining_length);
  put_u8(out, first);
  put_varint(out, remaining_length);
}

void put_string(std::string& out, std::string_view s) {
  assert(s.size() <= kMaxString);
  put_prefixed(out, s);
}

void encode_connect(const Connect& c, std::string& out) {
  const bool v31 = c.version == ProtocolVersion::kV31;
  const std::string_view name = v31 ? "MQIsdp" : "MQTT";
  // MQTT-3.1.2-22: a password is only sent with a user name.
  assert(!c.password || c.username);

  std::uint8_t flags = 0;
  if (c.clean_session) flags |= 0x02;
  std::size_t length = 2 + name.size() + 1 + 1 + 2 + 2 + c.client_id.size();
  if (c.will) {
    flags |= 0x04 | static_cast<std::uint8_t>(static_cast<unsigned>(c.will->qos) << 3);
    if (c.will->retain) flags |= 0x20;
    length += 2 + c.will->topic.size() + 2 + c.will->payload.size();
  }
  if (c.username) {
    flags |= 0x80;
    length += 2 + c.username->size();
  }
  if (c.password) {
    flags |= 0x40;
    length += 2 + c.password->size();
  }

  put_header(out, first_byte(PacketType::kConnect), length);
  put_string(out, name);
  put_u8(out, static_cast<std::uint8_t>(c.version));
  put_u8(out, flags);
  put_u16(out, c.keepalive);
  put_string(out, c.client_id);
  if (c.will) {
    put_string(out, c.will->topic);
    put_string(out, c.will->payload);
  }
  if (c.username) put_string(out, *c.username);
  if (c.password) put_string(out, *c.password);
}

void encode_connack(const Connack& c, std::string& out) {
  put_header(out, first_byte(PacketType::kConnack), 2);
  // MQTT-3.2.2-4: session present is 0 whenever the connection is refused.
  put_u8(out, c.session_present && c.code == ConnectReturnCode::kAccepted ? 1 : 0);
  put_u8(out, static_cast<std::uint8_t>(c.code));
}

void encode_id_only(PacketType type, std::uint8_t flags, std::uint16_t id, std::string& out) {
  assert(id != 0);
  put_header(out, first_byte(type, flags), 2);
  put_u16(out, id);
}

void encode_subscribe(const Subscribe& s, std::string& out) {
  assert(s.packet_id != 0 && !s.topics.empty());
  std::size_t length = 2;
  for (const auto& topic : s.topics) length += 2 + topic.filter.size() + 1;
  put_header(out, first_byte(PacketType::kSubscribe, 0x02), length);  // MQTT-3.8.1-1
  put_u16(out, s.packet_id);
  for (const auto& topic : s.topics) {
    put_string(out, topic.filter);
    put_u8(out, static_cast<std::uint8_t>(topic.qos));
  }
}

void encode_suback(const Suback& s, std::string& out) {
  assert(s.packet_id != 0);
  put_header(out, first_byte(PacketType::kSuback), 2 + s.return_codes.size());
  put_u16(out, s.packet_id);
  for (const std::uint8_t code : s.return_codes) put_u8(out, code);
}

void encode_unsubscribe(const Unsubscribe& u, std::string& out) {
  assert(u.packet_id != 0 && !u.filters.empty());
  std::size_t length = 2;
  for (const auto& filter : u.filters) length += 2 + filter.size();
  put_header(out, first_byte(PacketType::kUnsubscribe, 0x02), length);  // MQTT-3.10.1-1
  put_u16(out, u.packet_id);
  for (const auto& filter : u.filters) put_string(out, filter);
}

std::size_t publish_remaining_length(std::string_view topic, std::string_view payload, QoS qos) {
  return 2 + topic.size() + (qos == QoS::kAtMostOnce ? 0 : 2) + payload.size();
}

}  // namespace

void encode_publish(std::string& out, std::string_view topic, std::string_view payload, QoS qos,
                    bool retain, bool dup, std::uint16_t packet_id) {
  assert(topic.size() <= kMaxString);
  const bool has_id = qos != QoS::kAtMostOnce;
  assert(!has_id || packet_id != 0);  // MQTT-2.3.1-1
  std::uint8_t flags = static_cast<std::uint8_t>(static_cast<unsigned>(qos) << 1);
  if (retain) flags |= 0x01;
  if (dup && has_id) flags |= 0x08;  // MQTT-3.3.1-2: never DUP at QoS 0
  put_header(out, first_byte(PacketType::kPublish, flags),
             publish_remaining_length(topic, payload, qos));
  put_prefixed(out, topic);
  if (has_id) put_u16(out, packet_id);
  out.append(payload);
}

std::size_t publish_wire_size(std::string_view topic, std::string_view payload, QoS qos) {
  const std::size_t length = publish_remaining_length(topic, payload, qos);
  return 1 + detail::varint_size(length) + length;
}

void encode(const Packet& packet, std::string& out) {
  std::visit(
      [&](const auto& p) {
        using T = std::decay_t<decltype(p)>;
        if constexpr (std::is_same_v<T, Connect>) {
          encode_connect(p, out);
        } else if constexpr (std::is_same_v<T, Connack>) {
          encode_connack(p, out);
        } else if constexpr (std::is_same_v<T, Publish>) {
          encode_publish(out, p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id);
        } else if constexpr (std::is_same_v<T, Puback>) {
          encode_id_only(PacketType::kPuback, 0, p.packet_id, out);
        } else if constexpr (std::is_same_v<T, Pubrec>) {
          encode_id_only(PacketType::kPubrec, 0, p.packet_id, out);
        } else if constexpr (std::is_same_v<T, Pubrel>) {
          encode_id_only(PacketType::kPubrel, 0x02, p.packet_id, out);  // MQTT-3.6.1-1
        } else if constexpr (std::is_same_v<T, Pubcomp>) {
          encode_id_only(PacketType::kPubcomp, 0, p.packet_id, out);
        } else if constexpr (std::is_same_v<T, Subscribe>) {
          encode_subscribe(p, out);
        } else if constexpr (std::is_same_v<T, Suback>) {
          encode_suback(p, out);
        } else if constexpr (std::is_same_v<T, Unsubscribe>) {
          encode_unsubscribe(p, out);
        } else if constexpr (std::is_same_v<T, Unsuback>) {
          encode_id_only(PacketType::kUnsuback, 0, p.packet_id, out);
        } else {
          // PINGREQ, PINGRESP, DISCONNECT: fixed header only.
          put_header(out, first_byte(packet_type(packet)), 0);
        }
      },
      packet);
}

}  // namespace meshmq::codec
