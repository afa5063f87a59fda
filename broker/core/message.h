// An application message as it travels through the broker: immutable once published and shared by
// every receiver, so fan-out costs one reference count per subscriber instead of a copy.
//
// make_message allocates once per message: the reference counts, this header, the topic and the
// payload share one block (topic and payload are views into its tail). That is the only heap
// allocation routing a message costs, whatever the number of receivers.
#pragma once

#include <chrono>
#include <memory>
#include <string_view>

#include "broker/codec/packet.h"

namespace meshmq::core {

using Clock = std::chrono::steady_clock;
using codec::QoS;

struct Message {
  Message() = default;
  // The views point into the block this message was allocated in: never copied out of it.
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  std::string_view topic;
  std::string_view payload;
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  Clock::time_point received_at = Clock::now();
  // About this node only (the $SYS/broker/... tree): never forwarded to cluster peers.
  bool node_local = false;
};

using MessagePtr = std::shared_ptr<const Message>;

// Copies topic and payload into a new message, in one allocation. `received_at` is given only for
// messages reloaded from storage (their age counts for retained expiry).
MessagePtr make_message(std::string_view topic, std::string_view payload, QoS qos, bool retain,
                        Clock::time_point received_at = Clock::now());

inline QoS min_qos(QoS a, QoS b) {
  return a < b ? a : b;
}

}  // namespace meshmq::core
