#include "broker/storage/backend.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "broker/core/memory_retained_store.h"
#include "broker/storage/db.h"
#include "broker/storage/rocks_retained_store.h"
#include "broker/storage/rocks_session_store.h"

namespace meshmq::storage {

Backend::Backend(const StorageOptions& options, const std::string& data_dir,
                 const core::MqttOptions& mqtt, core::Executor& executor) {
  if (options.backend == "memory") {
    sessions_ = std::make_unique<core::MemorySessionStore>();
    retained_ = std::make_unique<core::MemoryRetainedStore>(mqtt);
    spdlog::info(
        "storage: memory backend (sessions and retained messages do not survive a "
        "restart)");
    return;
  }
  const std::string path = (std::filesystem::path(data_dir) / "rocksdb").string();
  db_ = std::make_unique<Db>(path, options, executor);
  sessions_ = std::make_unique<RocksSessionStore>(*db_, mqtt);
  retained_ = std::make_unique<RocksRetainedStore>(*db_, mqtt);
  spdlog::info("storage: RocksDB in {} (sync={}, sync_window={}ms, max_disk={})", path,
               options.sync, options.sync_window_ms,
               options.max_disk == 0 ? std::string("unlimited") : std::to_string(options.max_disk));
}

Backend::~Backend() {
  // The stores reference the database: gone before it closes.
  sessions_.reset();
  retained_.reset();
  db_.reset();
}

void Backend::restore(core::Broker& broker) {
  if (!db_) return;
  const auto now = core::Clock::now();
  static_cast<RocksRetainedStore&>(*retained_).load(now);
  for (auto& snapshot : static_cast<RocksSessionStore&>(*sessions_).load(now)) {
    broker.restore_session(std::move(snapshot));
  }
}

}  // namespace meshmq::storage
