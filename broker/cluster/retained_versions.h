// Versions of retained messages across the cluster (issue 6 point 6). Every set or clear carries
// (wall-clock ms at the origin, origin name) and the newest version of a topic wins on every node.
// A clear is kept as a tombstone with its version, exchanged in the full sync like a message, so a
// node that was down when the clear happened (and still has the old message on disk) drops it when
// it rejoins instead of handing it back to the others. Tombstones are persisted (column family
// "tombstones" of the node's RocksDB, so they survive a restart of the node that holds them) and
// forgotten after cluster.retained_tombstone_ttl: a node down for longer may bring a cleared
// message back.
//
//   tombstones  topic -> u64 timestamp ms (big-endian), origin name
//
// A message stored without a known version (loaded from disk after a restart) counts with its
// received time (which a replicated message takes from its origin) and an empty origin.
// Not thread-safe: the cluster node calls it under its mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

namespace meshmq::storage {
class Db;
}

namespace meshmq::cluster {

struct RetainedVersion {
  std::int64_t ts = -1;
  std::string origin;
  bool operator<(const RetainedVersion& o) const {
    return ts != o.ts ? ts < o.ts : origin < o.origin;
  }
};

class RetainedVersions {
 public:
  // `db` may be null (memory backend: tombstones live as long as the process).
  RetainedVersions(storage::Db* db, std::int64_t tombstone_ttl_ms);

  // Loads persisted tombstones, dropping expired ones. Call once before use.
  void load(std::int64_t now_ms);

  // The version known for the topic, if any (a set or a clear this process saw, or a tombstone).
  const RetainedVersion* find(const std::string& topic) const;
  // A version for a write made here now: newer than anything known for the topic.
  RetainedVersion next(const std::string& topic, std::int64_t now_ms, const std::string& origin);
  // Records a set (clears the tombstone) or a clear (stores one).
  void record(const std::string& topic, const RetainedVersion& v, bool cleared);

  void for_each_tombstone(
      const std::function<void(const std::string&, const RetainedVersion&)>& fn) const;
  std::size_t tombstones() const { return tombstones_; }
  // Forgets tombstones older than the ttl; returns how many went.
  std::size_t purge(std::int64_t now_ms);

 private:
  struct Entry {
    RetainedVersion version;
    bool cleared = false;
  };
  void persist(const std::string& topic, const Entry& e);

  storage::Db* const db_;
  const std::int64_t ttl_ms_;
  std::unordered_map<std::string, Entry> entries_;
  std::size_t tombstones_ = 0;
};

}  // namespace meshmq::cluster
