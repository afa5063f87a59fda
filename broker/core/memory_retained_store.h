#pragma once

#include <mutex>

#include "broker/core/options.h"
#include "broker/core/retained_store.h"
#include "broker/topic/topic_tree.h"

namespace meshmq::core {

// In-memory retained store: a topic tree under one mutex. Retained publishes and new
// subscriptions are rare next to ordinary publishes, which never take this lock.
class MemoryRetainedStore final : public RetainedStore {
 public:
  explicit MemoryRetainedStore(const MqttOptions& options) : options_(options) {}

  bool set(const MessagePtr& message) override;
  void match(std::string_view filter, const std::function<void(const MessagePtr&)>& fn) override;
  void purge_expired(Clock::time_point now) override;
  // The same, telling `removed` each topic it dropped (storage deletes them from disk).
  void purge_expired(Clock::time_point now, const std::function<void(const std::string&)>& removed);
  std::size_t size() const override;

 private:
  bool expired(const Message& m, Clock::time_point now) const;

  const MqttOptions& options_;
  mutable std::mutex mu_;
  topic::TopicTree<MessagePtr> tree_;
};

}  // namespace meshmq::core
