// The stores a node runs with, chosen by storage.backend: RocksDB under <node.data_dir>/rocksdb,
// or memory (nothing survives a restart; for clean-session-only deployments and tests).
#pragma once

#include <memory>
#include <string>

#include "broker/core/broker.h"
#include "broker/core/executor.h"
#include "broker/core/options.h"
#include "broker/core/retained_store.h"
#include "broker/core/session_store.h"
#include "broker/storage/options.h"

namespace meshmq::storage {

class Db;

class Backend {
 public:
  // Opens the database (throws std::runtime_error with the reason).
  Backend(const StorageOptions& options, const std::string& data_dir, const core::MqttOptions& mqtt,
          core::Executor& executor);
  ~Backend();

  core::SessionStore& sessions() { return *sessions_; }
  core::RetainedStore& retained() { return *retained_; }
  Db* db() { return db_.get(); }  // null with the memory backend

  // Loads persisted sessions (subscriptions routed in every trie) and retained messages, purging
  // expired ones. Call once, before the workers run.
  void restore(core::Broker& broker);

 private:
  std::unique_ptr<Db> db_;
  std::unique_ptr<core::SessionStore> sessions_;
  std::unique_ptr<core::RetainedStore> retained_;
};

}  // namespace meshmq::storage
