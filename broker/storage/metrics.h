// RocksDB figures for /metrics: the writer's own counters (commits, syncs, failures, directory
// size), RocksDB's tickers (stall time, bytes and keys written, flush and compaction output) and
// properties (write delay and stop, SST, live data, memtable and pending compaction sizes).
#pragma once

#include "broker/core/metrics.h"

namespace meshmq::storage {

class Db;

// `db` is null with storage.backend = memory: nothing is added. The collector reads RocksDB's
// thread-safe properties and statistics; `db` must outlive the registry's last snapshot.
void add_storage_metrics(core::MetricsRegistry& registry, Db* db);

}  // namespace meshmq::storage
