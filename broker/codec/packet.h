// MQTT control packets as plain values. The codec turns bytes into these and back; nothing here
// knows about sockets. MQTT 5.0 will add a `Properties` member to the packets that carry them and a
// new ProtocolVersion; the 3.1.1 layout stays as it is. Packets compare field-wise with ==, so
// tests and the fuzzer can check that decode(encode(p)) == p.
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
  std::string topic{};
  std::string payload{};
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  bool operator==(const Will&) const = default;
};

struct Connect {
  ProtocolVersion version = ProtocolVersion::kV311;
  std::string client_id{};
  bool clean_session = true;
  std::uint16_t keepalive = 0;  // seconds
  std::optional<Will> will{};
  std::optional<std::string> username{};
  std::optional<std::string> password{};  // binary data, not necessarily UTF-8
  bool operator==(const Connect&) const = default;
};

struct Connack {
  bool session_present = false;
  ConnectReturnCode code = ConnectReturnCode::kAccepted;
  bool operator==(const Connack&) const = default;
};

struct Publish {
  std::string topic{};
  std::string payload{};
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  // only meaningful for QoS 1 and 2
  bool operator==(const Publish&) const = default;
};

struct Puback {
  std::uint16_t packet_id = 0;
  bool operator==(const Puback&) const = default;
};
struct Pubrec {
  std::uint16_t packet_id = 0;
  bool operator==(const Pubrec&) const = default;
};
struct Pubrel {
  std::uint16_t packet_id = 0;
  bool operator==(const Pubrel&) const = default;
};
struct Pubcomp {
  std::uint16_t packet_id = 0;
  bool operator==(const Pubcomp&) const = default;
};

struct SubscribeTopic {
  std::string filter{};
  QoS qos = QoS::kAtMostOnce;
  bool operator==(const SubscribeTopic&) const = default;
};

struct Subscribe {
  std::uint16_t packet_id = 0;
  std::vector<SubscribeTopic> topics{};  // never empty after a successful decode
  bool operator==(const Subscribe&) const = default;
};

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> return_codes{};  // granted QoS 0..2 or kSubackFailure
  bool operator==(const Suback&) const = default;
};

struct Unsubscribe {
  std::uint16_t packet_id = 0;
  std::vector<std::string> filters{};  // never empty after a successful decode
  bool operator==(const Unsubscribe&) const = default;
};

struct Unsuback {
  std::uint16_t packet_id = 0;
  bool operator==(const Unsuback&) const = default;
};

struct Pingreq {
  bool operator==(const Pingreq&) const = default;
};
struct Pingresp {
  bool operator==(const Pingresp&) const = default;
};
struct Disconnect {
  bool operator==(const Disconnect&) const = default;
};

using Packet = std::variant<Connect, Connack, Publish, Puback, Pubrec, Pubrel, Pubcomp, Subscribe,
                            Suback, Unsubscribe, Unsuback, Pingreq, Pingresp, Disconnect>;

PacketType packet_type(const Packet& packet);
const char* packet_type_name(PacketType type);

}  // namespace meshmq::codec
