// CONNECT (3.1). The checks run in wire order so that the first violation is the one reported; in
// particular an unknown protocol level is reported before anything that follows it, because the
// broker must answer it with CONNACK 0x01 (MQTT-3.1.2-2) rather than just closing.
#include "broker/codec/parsers.h"
#include "broker/codec/topic_rules.h"
#include "broker/codec/wire.h"

namespace meshmq::codec::detail {
namespace {

constexpr std::uint8_t kReservedFlag = 0x01;
constexpr std::uint8_t kCleanSessionFlag = 0x02;
constexpr std::uint8_t kWillFlag = 0x04;
constexpr std::uint8_t kWillRetainFlag = 0x20;
constexpr std::uint8_t kPasswordFlag = 0x40;
constexpr std::uint8_t kUsernameFlag = 0x80;

// Protocol name and level (3.1.2.1, 3.1.2.2). A known name with the wrong level is "unsupported
// level" rather than "unknown protocol" so that e.g. an MQTT 5 client gets CONNACK 0x01.
std::optional<DecodeError> read_protocol(Reader& r, ProtocolVersion& version) {
  std::string_view name;
  std::uint8_t level;
  if (!r.prefixed(name)) return DecodeError::kMalformedPacket;
  if (name == "MQTT") {
    version = ProtocolVersion::kV311;
  } else if (name == "MQIsdp") {
    version = ProtocolVersion::kV31;
  } else {
    return DecodeError::kUnsupportedProtocolName;  // MQTT-3.1.2-1
  }
  if (!r.u8(level)) return DecodeError::kMalformedPacket;
  if (level != static_cast<std::uint8_t>(version)) return DecodeError::kUnsupportedProtocolLevel;
  return std::nullopt;
}

std::optional<DecodeError> check_flags(std::uint8_t flags) {
  if (flags & kReservedFlag) return DecodeError::kReservedConnectFlag;  // MQTT-3.1.2-3
  const unsigned will_qos = (flags >> 3) & 0x03;
  if (flags & kWillFlag) {
    if (will_qos == 3) return DecodeError::kInvalidQoS;  // MQTT-3.1.2-14
  } else if (will_qos != 0 || (flags & kWillRetainFlag)) {
    return DecodeError::kInvalidWillFlags;  // MQTT-3.1.2-11, MQTT-3.1.2-13, MQTT-3.1.2-15
  }
  // MQTT-3.1.2-22. MQTT 3.1 says a password needs a user name as well, so the rule applies to
  // both versions (mosquitto enforces it for 3.1 too).
  if ((flags & kPasswordFlag) && !(flags & kUsernameFlag)) {
    return DecodeError::kPasswordWithoutUsername;
  }
  return std::nullopt;
}

}  // namespace

DecodeResult parse_connect(Body body, ProtocolVersion /*assumed before CONNECT*/) {
  Reader r(body);
  Connect connect;
  if (auto error = read_protocol(r, connect.version)) return *error;

  std::uint8_t flags;
  if (!r.u8(flags)) return DecodeError::kMalformedPacket;
  if (auto error = check_flags(flags)) return *error;
  connect.clean_session = flags & kCleanSessionFlag;
  if (!r.u16(connect.keepalive)) return DecodeError::kMalformedPacket;

  // Payload order is fixed by 3.1.3: client id, will topic, will message, user name, password.
  // The client id may be empty (3.1.3.1); whether that is acceptable is the broker's decision.
  std::string_view client_id;
  if (auto error = read_utf8(r, client_id)) return *error;
  connect.client_id = client_id;

  if (flags & kWillFlag) {
    std::string_view topic, message;
    if (auto error = read_utf8(r, topic)) return *error;
    if (!valid_topic_name(topic)) return DecodeError::kInvalidTopicName;  // 3.1.3.2, 4.7.3
    if (!r.prefixed(message)) return DecodeError::kMalformedPacket;       // binary (3.1.3.3)
    connect.will = Will{.topic = std::string(topic),
                        .payload = std::string(message),
                        .qos = static_cast<QoS>((flags >> 3) & 0x03),
                        .retain = (flags & kWillRetainFlag) != 0};
  }
  if (flags & kUsernameFlag) {
    std::string_view username;
    if (auto error = read_utf8(r, username)) return *error;  // MQTT-3.1.3-11
    connect.username.emplace(username);
  }
  if (flags & kPasswordFlag) {
    std::string_view password;  // binary data, no UTF-8 rule (3.1.3.5)
    if (!r.prefixed(password)) return DecodeError::kMalformedPacket;
    connect.password.emplace(password);
  }
  // A flag without its field is caught above as truncation; bytes beyond the last field announced
  // by the flags are not allowed either (MQTT-3.1.2-4 and friends tie the payload to the flags).
  if (!r.empty()) return DecodeError::kMalformedPacket;
  return Packet{std::move(connect)};
}

}  // namespace meshmq::codec::detail
