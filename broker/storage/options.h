// Settings of the storage layer (keys storage.*). Filled by broker/config; read by storage/.
#pragma once

#include <cstdint>
#include <string>

namespace meshmq::storage {

struct StorageOptions {
  std::string backend = "rocksdb";   // rocksdb | memory
  std::string sync = "batch";        // always | batch | none
  std::uint32_t sync_window_ms = 2;  // batch: how long the writer gathers writes before one fsync
  std::uint64_t max_disk = 0;        // bytes of the RocksDB directory; 0 = unlimited
};

}  // namespace meshmq::storage
