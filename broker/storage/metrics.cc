#include "broker/storage/metrics.h"

#include <rocksdb/statistics.h>

#include "broker/storage/db.h"

namespace meshmq::storage {

namespace {

using P = rocksdb::DB::Properties;

struct PropertyGauge {
  const char* name;
  const char* help;
  const std::string& property;
  bool per_column_family;  // summed over the column families, else read for the whole database
};
const PropertyGauge kPropertyGauges[] = {
    {"meshmq_storage_sst_bytes", "Size of all SST files", P::kTotalSstFilesSize, true},
    {"meshmq_storage_live_data_bytes", "RocksDB's estimate of the live data size",
     P::kEstimateLiveDataSize, true},
    {"meshmq_storage_memtable_bytes", "Size of the active and unflushed memtables",
     P::kCurSizeAllMemTables, true},
    {"meshmq_storage_pending_compaction_bytes", "Bytes RocksDB estimates compaction must rewrite",
     P::kEstimatePendingCompactionBytes, true},
    {"meshmq_storage_write_delay_rate_bytes_per_second",
     "Write rate RocksDB throttles to while delaying writes (0 = none)", P::kActualDelayedWriteRate,
     false},
    {"meshmq_storage_write_stopped", "1 while RocksDB stops writes (write stall)",
     P::kIsWriteStopped, false},
};

struct TickerCounter {
  const char* name;
  const char* help;
  rocksdb::Tickers ticker;
  double scale;  // to base units
};
const TickerCounter kTickerCounters[] = {
    {"meshmq_storage_write_stall_seconds_total", "Time writes were delayed or stopped by RocksDB",
     rocksdb::STALL_MICROS, 1e-6},
    {"meshmq_storage_written_bytes_total", "Bytes written to RocksDB (keys and values)",
     rocksdb::BYTES_WRITTEN, 1},
    {"meshmq_storage_keys_written_total", "Keys written to RocksDB", rocksdb::NUMBER_KEYS_WRITTEN,
     1},
    {"meshmq_storage_wal_written_bytes_total", "Bytes written to the write-ahead log",
     rocksdb::WAL_FILE_BYTES, 1},
    {"meshmq_storage_flush_written_bytes_total", "Bytes written by memtable flushes",
     rocksdb::FLUSH_WRITE_BYTES, 1},
    {"meshmq_storage_compaction_written_bytes_total", "Bytes written by compactions",
     rocksdb::COMPACT_WRITE_BYTES, 1},
};

void collect(Db& db, core::Snapshot& out) {
  using core::Family;
  rocksdb::DB& raw = db.raw();
  const DbStats st = db.stats();
  auto d = [](std::uint64_t v) { return static_cast<double>(v); };
  out.push_back(Family::counter("meshmq_storage_commits_total",
                                "Write groups the storage writer committed",
                                {{{}, d(st.commits)}}));
  out.push_back(Family::counter("meshmq_storage_syncs_total", "WAL syncs (fsync) by the writer",
                                {{{}, d(st.syncs)}}));
  out.push_back(Family::counter("meshmq_storage_write_errors_total",
                                "Failed writes (the store refuses writes after the first)",
                                {{{}, d(st.write_errors)}}));
  out.push_back(Family::gauge("meshmq_storage_healthy", "1 unless a write failed", db.healthy()));
  out.push_back(Family::gauge("meshmq_storage_disk_bytes",
                              "Size of the RocksDB directory (measured every second)",
                              d(st.disk_bytes)));
  for (const PropertyGauge& g : kPropertyGauges) {
    std::uint64_t v = 0;
    const bool ok = g.per_column_family ? raw.GetAggregatedIntProperty(g.property, &v)
                                        : raw.GetIntProperty(g.property, &v);
    out.push_back(Family::gauge(g.name, g.help, ok ? d(v) : 0));
  }
  const auto stats = raw.GetDBOptions().statistics;
  for (const TickerCounter& c : kTickerCounters) {
    const double v = stats ? d(stats->getTickerCount(c.ticker)) * c.scale : 0;
    out.push_back(Family::counter(c.name, c.help, {{{}, v}}));
  }
}

}  // namespace

void add_storage_metrics(core::MetricsRegistry& registry, Db* db) {
  if (db == nullptr) return;
  registry.add_collector([db](core::Snapshot& out) { collect(*db, out); });
}

}  // namespace meshmq::storage
