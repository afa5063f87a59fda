// Durable outbox: QoS 1/2 forwards for a node that is down, kept on disk (column family "outbox"
// of the node's RocksDB) until that node acknowledges them, so that messages for its persistent
// sessions survive its absence, and a restart of this node too (README "Cluster", issue 6
// point 4). The node layer keeps the same messages in its in-memory per-peer queue and resends
// them when the peer returns; this class only makes that queue durable and bounded.
//
//   outbox  peer name + '\0' + u64 key (big-endian)  ->  u16 0, u8 version 1, u16 topic length,
//             topic, u8 shared_only, u16 group count, per group u16 length and "$share/g/f",
//             retained-style message (storage/encoding.h)
//
// The groups are those the message was picked for (shared_forward.h): resent after a restart, it
// still goes to one member of each, not to the peer's ordinary subscribers. Entries of the first
// format (u16 topic length, topic, message: no groups) have a non-zero first u16 (a topic is
// never empty) and still load.
//
// Writes and deletes go, in order, through one writer thread, so that the delete of an entry the
// peer acknowledged quickly can never land before its put. `durable` callbacks run on that thread
// after the write (and its sync, per storage.sync) returned, never under the caller's locks: the
// publisher's PUBACK/PUBREC waits for them.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker/cluster/shared_forward.h"
#include "broker/core/message.h"

namespace meshmq::storage {
class Db;
}

namespace meshmq::cluster {

class Outbox {
 public:
  // `db` may be null (storage.backend=memory): entries are then bounded but not durable.
  Outbox(storage::Db* db, std::size_t max_per_peer);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  struct Stored {
    std::string peer;
    std::uint64_t key;
    core::MessagePtr message;
    SharedFor shared;
  };
  // Entries a previous run left (peers that never acknowledged them), oldest first per peer.
  // Call once, before add().
  std::vector<Stored> load();

  // Stores a copy for `peer`. Returns its key (never 0), or 0 when the peer already has
  // max_per_peer entries: the message is then dropped, counted and logged (first and every 1000th).
  std::uint64_t add(const std::string& peer, const core::MessagePtr& message,
                    const SharedFor& shared, std::function<void()> durable);
  // The peer acknowledged the entry.
  void remove(const std::string& peer, std::uint64_t key);

  std::size_t size(const std::string& peer) const;
  std::uint64_t dropped() const;
  std::uint64_t stored() const;  // entries currently held, all peers

 private:
  struct Op {
    std::string key;
    std::string value;  // empty: delete
    std::function<void()> durable;
  };
  void run();
  std::string key_of(const std::string& peer, std::uint64_t key) const;

  storage::Db* const db_;
  const std::size_t max_per_peer_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> ops_;
  bool stop_ = false;
  std::uint64_t next_key_ = 1;
  std::unordered_map<std::string, std::size_t> sizes_;
  std::uint64_t dropped_ = 0;
  std::uint64_t stored_ = 0;
  std::thread writer_;
};

}  // namespace meshmq::cluster
