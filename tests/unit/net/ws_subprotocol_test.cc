#include <gtest/gtest.h>

#include "broker/net/ws_connection.h"

namespace meshmq::net {
namespace {

struct Case {
  const char* offered;
  const char* chosen;
};

TEST(WsSubprotocol, EchoesTheFirstMqttOne) {
  const Case cases[] = {
      {"mqtt", "mqtt"},
      {"mqttv3.1", "mqttv3.1"},
      {"mqttv3.1.1", "mqttv3.1.1"},
      {"chat, mqtt", "mqtt"},
      {"mqttv3.1,mqtt", "mqttv3.1"},
      {" \tmqtt\t ", "mqtt"},
      {"chat,,  , mqttv3.1.1", "mqttv3.1.1"},
      {"", ""},
      {"chat", ""},
      {"MQTT", ""},  // subprotocol names are case-sensitive (RFC 6455 4.1)
      {"mqttv5", ""},
      {"mqtt2", ""},
      {"mq tt", ""},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(choose_mqtt_subprotocol(c.offered), c.chosen) << '"' << c.offered << '"';
  }
}

}  // namespace
}  // namespace meshmq::net
