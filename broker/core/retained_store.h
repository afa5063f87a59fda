// Retained messages (MQTT-3.3.1-5..11). The core owns this interface; the memory implementation
// lives beside it, the RocksDB one in storage/. Implementations are called from every worker and
// must be thread-safe.
#pragma once

#include <cstddef>
#include <functional>
#include <string_view>

#include "broker/core/message.h"

namespace meshmq::core {

class RetainedStore {
 public:
  virtual ~RetainedStore() = default;
  // Stores the message for its topic, replacing the previous one. An empty payload clears the topic
  // instead (MQTT-3.3.1-10). Returns false if the store refused it (count limit).
  virtual bool set(const MessagePtr& message) = 0;
  // Every live retained message whose topic the filter matches.
  virtual void match(std::string_view filter, const std::function<void(const MessagePtr&)>& fn) = 0;
  // Drops expired messages; called periodically off the publish path.
  virtual void purge_expired(Clock::time_point now) = 0;
  virtual std::size_t size() const = 0;
  // Makes every stored message durable; called once at shutdown after the workers stopped.
  virtual void flush() {}
};

}  // namespace meshmq::core
