#include "broker/storage/db.h"

#include <rocksdb/options.h>
#include <rocksdb/statistics.h>
#include <spdlog/spdlog.h>

#include <array>
#include <filesystem>
#include <stdexcept>

namespace meshmq::storage {

namespace {
constexpr std::array<const char*, static_cast<std::size_t>(Cf::kCount)> kCfNames{
    "sessions", "subs",   "queue",      "inflight", "qos2in",
    "retained", "outbox", "tombstones", "routes"};
constexpr auto kDiskCheckInterval = std::chrono::seconds(1);
}  // namespace

Db::Db(std::string path, const StorageOptions& options, core::Executor& executor)
    : path_(std::move(path)), options_(options), executor_(executor) {
  rocksdb::Options opts;
  opts.create_if_missing = true;
  opts.create_missing_column_families = true;
  // RocksDB's own LOG: warnings only, two files, so it never grows next to the data.
  opts.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  opts.keep_log_file_num = 2;
  opts.max_total_wal_size = 64 << 20;  // flush memtables rather than keep a long WAL to replay
  // Tickers only (timers and histograms would cost on every write): stall time, bytes and keys
  // written, flush and compaction output, for /metrics (storage/metrics.cc).
  opts.statistics = rocksdb::CreateDBStatistics();
  opts.statistics->set_stats_level(rocksdb::StatsLevel::kExceptHistogramOrTimers);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(opts));
  for (const char* name : kCfNames) cfs.emplace_back(name, rocksdb::ColumnFamilyOptions(opts));
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* db = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(rocksdb::DBOptions(opts), path_, cfs, &handles, &db);
  if (!st.ok()) {
    throw std::runtime_error("storage: cannot open RocksDB in \"" + path_ + "\": " + st.ToString());
  }
  db_.reset(db);
  // handles[0] is the default family, kept for RocksDB's own use.
  handles_.assign(handles.begin(), handles.end());
  handles_.erase(handles_.begin());
  default_cf_ = handles[0];
  for (std::size_t i = 0; i < executor.size(); ++i)
    workers_.push_back(std::make_unique<PerWorker>());
  check_disk();
  writer_ = std::thread([this] { writer_loop(); });
}

Db::~Db() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
  // Completions still posted to workers that no longer run are dropped with the executor; what
  // they acknowledged was written above.
  if (!failed_) db_->SyncWAL();
  for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h);
  db_->DestroyColumnFamilyHandle(default_cf_);
  db_->Close();
}

rocksdb::WriteBatch& Db::batch() {
  const std::size_t w = executor_.current();
  PerWorker& pw = *workers_[w];
  if (!pw.flush_scheduled) {
    // Changes nobody commits explicitly (subscriptions, session state) leave with the next pass.
    pw.flush_scheduled = true;
    executor_.post(w, [this, w] {
      PerWorker& p = *workers_[w];
      p.flush_scheduled = false;
      if (p.batch.Count() > 0) submit(w, nullptr);
    });
  }
  return pw.batch;
}

void Db::submit_now() {
  const std::size_t w = executor_.current();
  if (workers_[w]->batch.Count() > 0) submit(w, nullptr);
}

bool Db::pending() const {
  const PerWorker& pw = *workers_[executor_.current()];
  return pw.batch.Count() > 0 || pw.outstanding > 0;
}

void Db::commit(std::function<void(bool)> done) {
  submit(executor_.current(), std::move(done));
}

void Db::submit(std::size_t worker, std::function<void(bool)> done) {
  PerWorker& pw = *workers_[worker];
  ++pw.outstanding;
  Submission s{std::move(pw.batch), worker, std::move(done), std::chrono::steady_clock::now()};
  pw.batch.Clear();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(s));
  }
  cv_.notify_one();
}

void Db::writer_loop() {
  auto next_disk_check = std::chrono::steady_clock::now() + kDiskCheckInterval;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_until(lock, next_disk_check, [&] { return stop_ || !queue_.empty(); });
    if (std::chrono::steady_clock::now() >= next_disk_check) {
      lock.unlock();
      check_disk();
      lock.lock();
      next_disk_check = std::chrono::steady_clock::now() + kDiskCheckInterval;
    }
    if (queue_.empty()) {
      if (stop_) return;
      continue;
    }
    if (options_.sync == "batch" && options_.sync_window_ms > 0 && !stop_) {
      // Group commit: wait out the window from the oldest submission so one fsync covers every
      // worker's writes in it. No extra wait when the previous fsync already took that long.
      const auto until = queue_.front().at + std::chrono::milliseconds(options_.sync_window_ms);
      cv_.wait_until(lock, until, [&] { return stop_; });
    }
    std::vector<Submission> group(std::make_move_iterator(queue_.begin()),
                                  std::make_move_iterator(queue_.end()));
    queue_.clear();
    lock.unlock();
    write_group(group);
    lock.lock();
  }
}

void Db::write_group(std::vector<Submission>& group) {
  bool ok = !failed_;
  if (ok) {
    rocksdb::WriteOptions wo;
    for (std::size_t i = 0; i < group.size() && ok; ++i) {
      wo.sync = options_.sync == "always" || (options_.sync == "batch" && i + 1 == group.size());
      rocksdb::Status st = inject_failure_.exchange(false)
                               ? rocksdb::Status::IOError("injected write failure (test)")
                               : db_->Write(wo, &group[i].batch);
      if (!st.ok()) {
        fail(st, "write");
        ok = false;
        break;
      }
      commits_.fetch_add(1, std::memory_order_relaxed);
      if (wo.sync) syncs_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // A write that failed may have reached the WAL or not: nothing after it is acknowledged, and the
  // writes before it were synced only if the last write's sync happened, so all report failure.
  for (Submission& s : group) {
    executor_.post(s.worker, [this, w = s.worker, done = std::move(s.done), ok] {
      --workers_[w]->outstanding;
      if (done) done(ok);
    });
  }
}

void Db::fail(const rocksdb::Status& status, std::string_view what) {
  write_errors_.fetch_add(1, std::memory_order_relaxed);
  if (!failed_.exchange(true)) {
    spdlog::error(
        "storage: RocksDB {} failed in {}: {}. QoS 1/2 publishes are refused (not acknowledged) "
        "until the broker is restarted with the problem fixed (disk space? permissions?)",
        what, path_, status.ToString());
  }
}

bool Db::write_now(rocksdb::WriteBatch& batch) {
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync != "none";
  rocksdb::Status st = db_->Write(wo, &batch);
  if (!st.ok()) fail(st, "write");
  return st.ok();
}

void Db::check_disk() {
  std::error_code ec;
  std::uint64_t total = 0;
  for (auto it = std::filesystem::directory_iterator(path_, ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) total += it->file_size(size_ec);
  }
  disk_bytes_.store(total, std::memory_order_relaxed);
  if (options_.max_disk == 0) return;
  const bool over = total > options_.max_disk;
  if (over != full_.exchange(over)) {
    if (over) {
      spdlog::warn(
          "storage: {} uses {} bytes, above storage.max_disk ({}): new messages for persistent "
          "sessions' queues and new retained messages are dropped (counted) until it shrinks",
          path_, total, options_.max_disk);
    } else {
      spdlog::info("storage: {} back under storage.max_disk ({} of {} bytes): queueing again",
                   path_, total, options_.max_disk);
    }
  }
}

DbStats Db::stats() const {
  return DbStats{commits_.load(), syncs_.load(), write_errors_.load(), disk_bytes_.load()};
}

}  // namespace meshmq::storage
