// One RocksDB database with a group-committing writer thread.
//
// Workers never call into RocksDB on the publish path. Each worker appends its changes to its own
// WriteBatch (no lock: only that worker touches it) and hands the batch to the writer thread at
// the latest at the end of its event-loop pass, or at once when a change must be acknowledged
// (commit). The writer gathers the batches of every worker for up to storage.sync_window, writes
// them and syncs the WAL once for all of them (sync=batch), syncs each (always) or not at all
// (none: the WAL is in the OS page cache, which survives kill -9 but not power loss). Completions
// run on the submitting worker through the core Executor, in submission order.
//
// A failed write (disk full, I/O error) puts the database into a failed state for the rest of the
// process: every later commit reports failure without writing, and healthy() turns false.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker/core/executor.h"
#include "broker/storage/options.h"

namespace meshmq::storage {

enum class Cf : std::size_t {
  kSessions,
  kSubs,
  kQueue,
  kInflight,
  kQos2In,
  kRetained,
  kOutbox,      // broker/cluster/outbox.h
  kTombstones,  // broker/cluster/retained_versions.h
  kRoutes,      // broker/cluster/durable_routes.h
  kCount
};

struct DbStats {
  std::uint64_t commits = 0;       // batches written
  std::uint64_t syncs = 0;         // WAL syncs
  std::uint64_t write_errors = 0;  // failed writes (the database is failed after the first)
  std::uint64_t disk_bytes = 0;    // last measured size of the directory
};

class Db {
 public:
  // Opens (creating if needed) the database in `path`. Throws std::runtime_error naming the path
  // and RocksDB's reason.
  Db(std::string path, const StorageOptions& options, core::Executor& executor);
  // Writes what was submitted, syncs, closes. Destroy it only after the workers stopped: the
  // completions it posted last must not run.
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  rocksdb::DB& raw() { return *db_; }
  rocksdb::ColumnFamilyHandle* cf(Cf which) { return handles_[static_cast<std::size_t>(which)]; }

  // --- on a worker thread (executor.current()) ---
  // The calling worker's batch; it is submitted by the end of the current event-loop pass.
  rocksdb::WriteBatch& batch();
  // Hands the calling worker's batch to the writer now (for changes whose order relative to other
  // workers' matters, like ending a session).
  void submit_now();
  // Something this worker reported is not yet durable.
  bool pending() const;
  // done(ok) on this worker once everything it reported so far is durable (or failed).
  void commit(std::function<void(bool)> done);

  // --- any thread ---
  bool healthy() const { return !failed_.load(std::memory_order_relaxed); }
  bool full() const { return full_.load(std::memory_order_relaxed); }
  // Synchronous write, for the loader before the workers run.
  bool write_now(rocksdb::WriteBatch& batch);
  DbStats stats() const;
  // Measures the directory now and updates full() (the writer also does it every second).
  void check_disk();
  // Test hook: the next write fails as an I/O error would.
  void inject_write_failure() { inject_failure_.store(true); }

 private:
  struct alignas(64) PerWorker {
    rocksdb::WriteBatch batch;
    std::size_t outstanding = 0;  // submitted, completion not yet run here
    bool flush_scheduled = false;
  };
  struct Submission {
    rocksdb::WriteBatch batch;
    std::size_t worker;
    std::function<void(bool)> done;
    std::chrono::steady_clock::time_point at;
  };

  void submit(std::size_t worker, std::function<void(bool)> done);
  void writer_loop();
  void write_group(std::vector<Submission>& group);
  void fail(const rocksdb::Status& status, std::string_view what);

  const std::string path_;
  const StorageOptions options_;
  core::Executor& executor_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  std::vector<std::unique_ptr<PerWorker>> workers_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Submission> queue_;
  bool stop_ = false;
  std::thread writer_;

  std::atomic<bool> failed_{false};
  std::atomic<bool> full_{false};
  std::atomic<bool> inject_failure_{false};
  std::atomic<std::uint64_t> commits_{0}, syncs_{0}, write_errors_{0}, disk_bytes_{0};
};

}  // namespace meshmq::storage
