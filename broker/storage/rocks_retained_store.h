// core::RetainedStore on RocksDB: the topic tree stays in memory (MemoryRetainedStore answers
// every match), and each change is also written to the `retained` column family through the
// calling worker's batch, so a retained publish is durable before its PUBACK like any other
// persistent change. load() fills the tree at start, dropping expired messages.
#pragma once

#include "broker/core/memory_retained_store.h"
#include "broker/storage/db.h"

namespace meshmq::storage {

class RocksRetainedStore final : public core::RetainedStore {
 public:
  RocksRetainedStore(Db& db, const core::MqttOptions& options)
      : db_(db), options_(options), memory_(options) {}

  // Call before the workers run. Returns how many retained messages were loaded.
  std::size_t load(core::Clock::time_point now);

  bool set(const core::MessagePtr& message) override;
  void match(std::string_view filter,
             const std::function<void(const core::MessagePtr&)>& fn) override {
    memory_.match(filter, fn);
  }
  void purge_expired(core::Clock::time_point now) override;
  std::size_t size() const override { return memory_.size(); }

 private:
  Db& db_;
  const core::MqttOptions& options_;
  core::MemoryRetainedStore memory_;
};

}  // namespace meshmq::storage
