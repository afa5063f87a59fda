#include "broker/cluster/retained_versions.h"

#include <rocksdb/iterator.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

#include "broker/storage/db.h"
#include "broker/storage/encoding.h"

namespace meshmq::cluster {

namespace {
std::string encode(const RetainedVersion& v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>(static_cast<std::uint64_t>(v.ts) >> shift));
  }
  out.append(v.origin);
  return out;
}
}  // namespace

RetainedVersions::RetainedVersions(storage::Db* db, std::int64_t tombstone_ttl_ms)
    : db_(db), ttl_ms_(tombstone_ttl_ms) {}

void RetainedVersions::load(std::int64_t now_ms) {
  if (!db_) return;
  std::unique_ptr<rocksdb::Iterator> it(
      db_->raw().NewIterator(rocksdb::ReadOptions(), db_->cf(storage::Cf::kTombstones)));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    const std::string_view v(it->value().data(), it->value().size());
    if (v.size() < 8) continue;
    Entry e{{static_cast<std::int64_t>(storage::read_u64(v)), std::string(v.substr(8))}, true};
    entries_[it->key().ToString()] = std::move(e);
    ++tombstones_;
  }
  purge(now_ms);
  if (tombstones_ > 0) spdlog::info("cluster: {} retained-message tombstones loaded", tombstones_);
}

const RetainedVersion* RetainedVersions::find(const std::string& topic) const {
  auto it = entries_.find(topic);
  return it == entries_.end() ? nullptr : &it->second.version;
}

RetainedVersion RetainedVersions::next(const std::string& topic, std::int64_t now_ms,
                                       const std::string& origin) {
  RetainedVersion v{now_ms, origin};
  const RetainedVersion* cur = find(topic);
  if (cur && !(*cur < v)) v.ts = cur->ts + 1;  // keep our own writes ordered despite clock steps
  return v;
}

void RetainedVersions::record(const std::string& topic, const RetainedVersion& v, bool cleared) {
  Entry& e = entries_[topic];
  if (e.cleared != cleared || cleared) persist(topic, {v, cleared});
  if (e.cleared && !cleared) --tombstones_;
  if (!e.cleared && cleared) ++tombstones_;
  e = {v, cleared};
}

void RetainedVersions::persist(const std::string& topic, const Entry& e) {
  if (!db_ || !db_->healthy()) return;
  rocksdb::WriteBatch b;
  if (e.cleared) {
    b.Put(db_->cf(storage::Cf::kTombstones), topic, encode(e.version));
  } else {
    b.Delete(db_->cf(storage::Cf::kTombstones), topic);
  }
  // In the WAL (survives kill -9) without waiting for a sync under the cluster's mutex.
  rocksdb::WriteOptions wo;
  rocksdb::Status st = db_->raw().Write(wo, &b);
  if (!st.ok()) spdlog::warn("cluster: cannot store a retained tombstone: {}", st.ToString());
}

void RetainedVersions::for_each_tombstone(
    const std::function<void(const std::string&, const RetainedVersion&)>& fn) const {
  for (const auto& [topic, e] : entries_) {
    if (e.cleared) fn(topic, e.version);
  }
}

std::size_t RetainedVersions::purge(std::int64_t now_ms) {
  std::vector<std::string> dead;
  for (const auto& [topic, e] : entries_) {
    if (e.cleared && e.version.ts + ttl_ms_ < now_ms) dead.push_back(topic);
  }
  rocksdb::WriteBatch b;
  for (const std::string& t : dead) {
    entries_.erase(t);
    --tombstones_;
    if (db_) b.Delete(db_->cf(storage::Cf::kTombstones), t);
  }
  if (db_ && b.Count() > 0 && db_->healthy()) db_->raw().Write(rocksdb::WriteOptions(), &b);
  return dead.size();
}

}  // namespace meshmq::cluster
