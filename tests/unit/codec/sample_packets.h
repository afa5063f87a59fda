// A set of packets covering every type and every optional field, used by the round-trip and the
// chunking tests.
#pragma once

#include <string>
#include <vector>

#include "broker/codec/packet.h"

namespace meshmq::codec::test {

inline std::vector<Packet> sample_packets() {
  std::vector<Packet> packets;
  packets.push_back(Connect{.client_id = "client-1", .keepalive = 60});
  packets.push_back(Connect{.client_id = "", .clean_session = false, .keepalive = 0});
  packets.push_back(Connect{
      .client_id = "c\xC3\xA9",
      .keepalive = 65535,
      .will = Will{.topic = "last/will",
                   .payload = std::string("\x00\xFF", 2),
                   .qos = QoS::kExactlyOnce,
                   .retain = true},
      .username = "user",
      .password = std::string("p\x00ss", 4),
  });
  packets.push_back(Connect{.client_id = "x", .username = "", .password = ""});
  packets.push_back(Connect{.client_id = "x", .username = "only-user"});
  packets.push_back(Connack{});
  packets.push_back(Connack{.session_present = true});
  packets.push_back(Connack{.code = ConnectReturnCode::kNotAuthorized});
  packets.push_back(Publish{.topic = "a/b", .payload = "hello"});
  packets.push_back(Publish{.topic = "/", .payload = ""});
  packets.push_back(Publish{.topic = "sensors/t\xE2\x82\xAC",
                            .payload = std::string(300, 'x'),
                            .qos = QoS::kAtLeastOnce,
                            .retain = true,
                            .packet_id = 1});
  packets.push_back(Publish{.topic = "q2",
                            .payload = std::string("\x00\x01", 2),
                            .qos = QoS::kExactlyOnce,
                            .dup = true,
                            .packet_id = 65535});
  packets.push_back(Puback{7});
  packets.push_back(Pubrec{8});
  packets.push_back(Pubrel{9});
  packets.push_back(Pubcomp{10});
  packets.push_back(Subscribe{
      .packet_id = 11,
      .topics = {
          {"a/+/c", QoS::kAtMostOnce}, {"#", QoS::kAtLeastOnce}, {"$SYS/#", QoS::kExactlyOnce}}});
  packets.push_back(Suback{.packet_id = 11, .return_codes = {0, 1, 2, kSubackFailure}});
  packets.push_back(Unsubscribe{.packet_id = 12, .filters = {"a/+/c", "#"}});
  packets.push_back(Unsuback{12});
  packets.push_back(Pingreq{});
  packets.push_back(Pingresp{});
  packets.push_back(Disconnect{});
  return packets;
}

}  // namespace meshmq::codec::test
