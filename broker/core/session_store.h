// The persistence seam for sessions. The core reports every change to a persistent session
// (clean session 0) here, on the session's owner worker, in the order the changes happen; clean
// sessions are never reported, so they never touch a disk. The memory store ignores the calls (the
// Session objects are the state); storage/ writes them to RocksDB and reloads them at start.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "broker/core/session.h"

namespace meshmq::core {

class SessionStore {
 public:
  virtual ~SessionStore() = default;

  virtual void session_created(const Session& s) = 0;
  virtual void session_offline(const Session& s) = 0;  // s.expires_at() is set
  virtual void session_online(const Session& s) = 0;
  virtual void session_ended(const Session& s) = 0;  // discarded or expired: drop everything

  virtual void subscription_set(const Session& s, std::string_view filter, QoS qos) = 0;
  virtual void subscription_removed(const Session& s, std::string_view filter) = 0;

  // Messages waiting in the session queue, keyed by a per-session sequence number.
  virtual void message_queued(const Session& s, std::uint64_t seq, const Session::Outbound& m) = 0;
  virtual void message_dequeued(const Session& s, std::uint64_t seq) = 0;

  // Outbound QoS 1/2 messages sent and not yet acknowledged. `seq` orders them for the resend on
  // resume (packet ids wrap); a message moved from the queue keeps its queue seq.
  virtual void inflight_sent(const Session& s, std::uint64_t seq, std::uint16_t packet_id,
                             const Session::Outbound& m) = 0;
  virtual void inflight_pubrec(const Session& s, std::uint64_t seq, std::uint16_t packet_id) = 0;
  virtual void inflight_done(const Session& s, std::uint64_t seq, std::uint16_t packet_id) = 0;

  // Inbound QoS 2 packet ids between PUBLISH and PUBREL.
  virtual void inbound_qos2_held(const Session& s, std::uint16_t packet_id) = 0;
  virtual void inbound_qos2_released(const Session& s, std::uint16_t packet_id) = 0;

  // True when changes reported on the calling worker are not yet durable; the core then defers
  // the PUBACK/PUBREC of a QoS 1/2 publish (and the SUBACK) to commit(), which runs `done` on the
  // calling worker once everything this worker reported before the call is durable, with ok=false
  // if it could not be stored. A store that is always durable answers false and commit() is never
  // called.
  virtual bool pending() const = 0;
  virtual void commit(std::function<void(bool ok)> done) = 0;

  // False for stores that write nothing (the core then skips the cross-worker durability join).
  virtual bool persists() const { return false; }
  // False once a write failed (disk full, I/O error): the core accepts no new QoS 1/2 publishes.
  virtual bool healthy() const { return true; }
  // True while storage.max_disk is exceeded: new messages for queues of persistent sessions are
  // dropped and counted, like a full queue.
  virtual bool full() const { return false; }

  // Makes everything reported so far durable; called once at shutdown after the workers stopped.
  virtual void flush() {}
};

// For clean-session-only deployments and tests: nothing to write, always durable.
class MemorySessionStore final : public SessionStore {
 public:
  void session_created(const Session&) override {}
  void session_offline(const Session&) override {}
  void session_online(const Session&) override {}
  void session_ended(const Session&) override {}
  void subscription_set(const Session&, std::string_view, QoS) override {}
  void subscription_removed(const Session&, std::string_view) override {}
  void message_queued(const Session&, std::uint64_t, const Session::Outbound&) override {}
  void message_dequeued(const Session&, std::uint64_t) override {}
  void inflight_sent(const Session&, std::uint64_t, std::uint16_t,
                     const Session::Outbound&) override {}
  void inflight_pubrec(const Session&, std::uint64_t, std::uint16_t) override {}
  void inflight_done(const Session&, std::uint64_t, std::uint16_t) override {}
  void inbound_qos2_held(const Session&, std::uint16_t) override {}
  void inbound_qos2_released(const Session&, std::uint16_t) override {}
  bool pending() const override { return false; }
  void commit(std::function<void(bool)> done) override { done(true); }
};

}  // namespace meshmq::core
