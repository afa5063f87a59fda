// MQTT control packets as plain values. The codec turns bytes into these and back; nothing here
// knows about sockets. MQTT 5.0 will add a `Properties` member to the packets that carry them and a
// new ProtocolVersion; the 3.1.1 layout stays as it is.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace meshmq::codec {

enum class ProtocolVersion : std::uint8_t {
  kV31 = 3,   // "MQIsdp", level 3
  kV311 = 4,  // "MQTT", level 4
};

enum class PacketType : std::uint8_t {
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
};

enum class QoS : std::uint8_t { kAtMostOnce = 0, kAtLeastOnce = 1, kExactlyOnce = 2 };

// CONNACK return codes, MQTT 3.1.1 section 3.2.2.3.
enum class ConnectReturnCode : std::uint8_t {
  kAccepted = 0,
  kUnacceptableProtocolVersion = 1,
  kIdentifierRejected = 2,
  kServerUnavailable = 3,
  kBadUsernameOrPassword = 4,
  kNotAuthorized = 5,
};

// SUBACK return code for a refused subscription (3.9.3).
inline constexpr std::uint8_t kSubackFailure = 0x80;

struct Will {
  std::string topic;
  std::string payload;
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
};

struct Connect {
  ProtocolVersion version = ProtocolVersion::kV311;
  std::string client_id;
  bool clean_session = true;
  std::uint16_t keepalive = 0;  // seconds
  std::optional<Will> will;
  std::optional<std::string> username;
  std::optional<std::string> password;  // binary data, not necessarily UTF-8
};

struct Connack {
  bool session_present = false;
  ConnectReturnCode code = ConnectReturnCode::kAccepted;
};

struct Publish {
  std::string topic;
  std::string payload;
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  // only meaningful for QoS 1 and 2
};

struct Puback {
  std::uint16_t packet_id = 0;
};
struct Pubrec {
  std::uint16_t packet_id = 0;
};
struct Pubrel {
  std::uint16_t packet_id = 0;
};
struct Pubcomp {
  std::uint16_t packet_id = 0;
};

struct SubscribeTopic {
  std::string filter;
  QoS qos = QoS::kAtMostOnce;
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  std::vector<SubscribeTopic> topics;  // never empty after a successful decode
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> return_codes;  // granted QoS 0..2 or kSubackFailure
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters;  // never empty after a successful decode
};

struct Unsuback {
  std::uint16_t packet_id = 0;
};

struct Pingreq {};
struct Pingresp {};
struct Disconnect {};

using Packet = std::variant<Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe,
                            Suback, Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect>;

PacketType packet_type(const Packet& packet);
const char* packet_type_name(PacketType type);

}  // namespace meshmq::codec
