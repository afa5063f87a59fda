// An application message as it travels through the broker: immutable once published and shared by
// every receiver, so fan-out costs one reference count per subscriber instead of a copy.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "broker/codec/packet.h"

namespace meshmq::core {

using Clock = std::chrono::steady_clock;
using codec::QoS;

struct Message {
  std::string topic;
  std::string payload;
  QoS qos = QoS::kAtMostOnce;
  bool retain = false;
  Clock::time_point received_at = Clock::now();
};

using MessagePtr = std::shared_ptr<const Message>;

inline QoS min_qos(QoS a, QoS b) {
  return a < b ? a : b;
}

}  // namespace meshmq::core
