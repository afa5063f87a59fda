// Tunables of the MQTT core. Filled by broker/config from file, environment and flags; the core
// only reads them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace meshmq::core {

// Abuse limits the core enforces per client (keys limits.*). Connection counts and rates are the
// listeners' business (broker/net).
struct LimitOptions {
  std::uint32_t max_topic_length = 65535;  // bytes of a topic name or filter
  std::uint32_t max_topic_levels = 200;    // '/'-separated levels of a topic name or filter
  std::uint32_t max_subscriptions_per_client = 10000;  // 0 = unlimited
  std::uint32_t publish_rate = 0;   // PUBLISH packets per second per client; 0 = unlimited
  std::uint32_t publish_burst = 0;  // bucket size; 0 = one second's worth (publish_rate)
};

struct MqttOptions {
  std::size_t max_packet_size = 1024 * 1024;  // bytes of remaining length
  std::uint32_t max_inflight = 32;            // outbound QoS 1/2 messages awaiting ack, per session
  std::uint32_t max_queued_messages = 1000;   // per offline/slow session; beyond it new ones drop
  bool queue_qos0 = false;                    // queue QoS 0 for offline persistent sessions
  std::uint32_t session_expiry_s = 2 * 3600;  // offline persistent sessions live this long
  std::uint32_t connect_timeout_s = 10;       // TCP accepted -> CONNECT received
  std::size_t max_outgoing_bytes = 1024 * 1024;  // per-connection unsent bytes before QoS 0 drops
  std::uint32_t retained_max_count = 1000000;    // 0 = unlimited
  std::uint32_t retained_max_age_s = 0;          // 0 = retained messages never expire
  std::uint32_t max_keepalive_s = 0;             // 0 = accept any keepalive the client asks for
  LimitOptions limits;                           // keys limits.*
  std::string shared_strategy = "round_robin";   // key shared.strategy (see shared_groups.h)
};

}  // namespace meshmq::core
