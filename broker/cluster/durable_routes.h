// The durable routes of other nodes (the filters their persistent sessions use, see
// broker/cluster/routes.h), mirrored on disk in column family "routes" of this node's RocksDB, so
// that a restart of this node while such a node is down keeps queueing QoS 1/2 forwards for it in
// the outbox (broker/cluster/outbox.h) until it returns (README "Cluster", issue 6 point 4).
//
//   routes  peer name + '\0' + filter  ->  empty
//
// A topic filter never contains U+0000 (MQTT-4.7.3-2), so the first NUL ends the name. The set
// of a node is replaced by its route snapshot when it returns, and follows its deltas meanwhile.
// Writes go to the WAL without a sync (they survive a killed process, not a lost machine), as
// they are made under the cluster's mutex. Not thread-safe: the node calls it under that mutex.
#pragma once

#include <rocksdb/write_batch.h>

#include <map>
#include <string>
#include <vector>

namespace meshmq::storage {
class Db;
}

namespace meshmq::cluster {

class DurableRouteStore {
 public:
  // `db` may be null (storage.backend=memory): nothing is kept.
  explicit DurableRouteStore(storage::Db* db) : db_(db) {}

  // Node name -> its durable filters, as this node last knew them.
  std::map<std::string, std::vector<std::string>> load();

  // A filter entered or left the node's durable set; written by the next commit().
  void record(const std::string& peer, const std::string& filter, bool durable);
  void commit();

 private:
  storage::Db* const db_;
  rocksdb::WriteBatch batch_;
};

}  // namespace meshmq::cluster
