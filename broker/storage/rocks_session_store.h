// core::SessionStore on RocksDB: every change of a persistent session becomes one or two
// operations in the owner worker's WriteBatch (see encoding.h for the keys); nothing reads a
// session back while the broker runs. load() rebuilds every session at start.
//
// Payloads are stored per session (a queued message written once per offline subscriber): a
// shared messages family with reference counts would save disk for wide fan-out to offline
// sessions, but needs a counter update on every dequeue from any worker. Fan-out to offline
// persistent sessions is the rare case; correctness and simple recovery come first.
#pragma once

#include <vector>

#include "broker/core/options.h"
#include "broker/core/session_store.h"
#include "broker/storage/db.h"

namespace meshmq::storage {

class RocksSessionStore final : public core::SessionStore {
 public:
  RocksSessionStore(Db& db, const core::MqttOptions& options) : db_(db), options_(options) {}

  // Every persistent session on disk, in snapshot form. Sessions already expired at `now` are
  // deleted instead. A session that was online when the broker stopped is offline from `now`.
  // Call before the workers run.
  std::vector<core::Session::Snapshot> load(core::Clock::time_point now);

  void session_created(const core::Session& s) override;
  void session_offline(const core::Session& s) override;
  void session_online(const core::Session& s) override;
  void session_ended(const core::Session& s) override;
  void subscription_set(const core::Session& s, std::string_view filter, core::QoS qos) override;
  void subscription_removed(const core::Session& s, std::string_view filter) override;
  void message_queued(const core::Session& s, std::uint64_t seq,
                      const core::Session::Outbound& m) override;
  void message_dequeued(const core::Session& s, std::uint64_t seq) override;
  void inflight_sent(const core::Session& s, std::uint64_t seq, std::uint16_t packet_id,
                     const core::Session::Outbound& m) override;
  void inflight_pubrec(const core::Session& s, std::uint64_t seq, std::uint16_t packet_id) override;
  void inflight_done(const core::Session& s, std::uint64_t seq, std::uint16_t packet_id) override;
  void inbound_qos2_held(const core::Session& s, std::uint16_t packet_id) override;
  void inbound_qos2_released(const core::Session& s, std::uint16_t packet_id) override;

  bool pending() const override { return db_.pending(); }
  void commit(std::function<void(bool)> done) override { db_.commit(std::move(done)); }
  bool persists() const override { return true; }
  bool healthy() const override { return db_.healthy(); }
  bool full() const override { return db_.full(); }

 private:
  void erase_client(rocksdb::WriteBatch& b, const std::string& prefix);

  Db& db_;
  const core::MqttOptions& options_;
};

}  // namespace meshmq::storage
