// The MQTT session of one client id: subscriptions, outbound QoS 1/2 inflight window, the queue of
// messages waiting for the window or for the client to come back, and inbound QoS 2 packet ids
// awaiting PUBREL. A session outlives connections when it is persistent (clean session 0).
//
// Threading: a session belongs to one worker at a time (`owner`). Only that worker touches anything
// but `owner`; other workers post to it. Takeover by a connection on another worker moves it.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "broker/core/flat_map.h"
#include "broker/core/message.h"
#include "broker/core/options.h"
#include "broker/core/ring_queue.h"

namespace meshmq::core {

class Connection;
class SessionStore;
struct WorkerCounters;

class Session {
 public:
  struct Outbound {
    MessagePtr message;
    QoS qos;
    bool retain;  // 1 only for retained messages sent because of a new subscription
    // The shared subscription it was given for (ShareIds), 0 for none: when a clean session
    // ends, such messages it had not acknowledged go to another member. Fits the padding.
    std::uint32_t share = 0;
  };
  struct Inflight {
    std::uint16_t packet_id;
    Outbound out;
    bool awaiting_pubcomp;  // QoS 2: PUBREC received, PUBREL sent
    std::uint64_t seq = 0;  // orders the resend on resume; the store's key
  };
  struct Queued {
    std::uint64_t seq;  // the store's key for this entry
    Outbound out;
  };
  // A session's whole state, for reloading it from storage at start and for handing it to another
  // node. Expiry is absolute (steady clock); an online session snapshots like an offline one.
  struct Snapshot {
    std::string client_id;
    std::string username;  // of the last connection, for access rules checked at delivery
    Clock::time_point expires_at{};
    std::map<std::string, QoS, std::less<>> subscriptions;
    std::vector<Inflight> inflight;  // in seq order
    std::vector<Queued> queue;       // in seq order
    std::vector<std::uint16_t> inbound_qos2;
  };

  Session(std::string client_id, bool persistent, std::size_t owner, const MqttOptions& options,
          SessionStore& store);

  const std::string& client_id() const { return client_id_; }
  bool persistent() const { return persistent_; }
  std::size_t owner() const { return owner_.load(std::memory_order_acquire); }
  void set_owner(std::size_t worker) { owner_.store(worker, std::memory_order_release); }
  // Whether a connection is attached; readable on any worker (shared subscriptions prefer online
  // members), so possibly a moment stale.
  bool online() const { return online_.load(std::memory_order_relaxed); }

  // --- everything below runs on the owner worker only ---
  Connection* connection() const { return connection_; }
  void attach(Connection* connection);
  void detach(Clock::time_point now);
  bool discarded() const { return discarded_; }
  void mark_discarded() { discarded_ = true; }
  // Handed over to another node (Broker::hand_over): a local connection still waiting to attach
  // to it lost to the newer CONNECT there.
  bool moved() const { return moved_; }
  void mark_moved(bool moved = true) { moved_ = moved; }
  // A handed-over copy kept only to catch messages still routed here (Broker::hand_over): what it
  // receives stays in memory, for the new node, and never reaches this node's disk.
  void detach_store(bool detached = true) { store_detached_ = detached; }
  bool store_detached() const { return store_detached_; }
  Clock::time_point expires_at() const { return expires_at_; }
  // The user name of the client's last connection (empty = anonymous): access rules checked at
  // delivery need it while the client is offline too.
  std::string_view username() const { return username_ ? *username_ : std::string_view(); }

  // Subscriptions as the client asked for them (the tries hold the routing copy).
  using Subscriptions = FlatMap<std::string, QoS>;
  Subscriptions& subscriptions() { return subscriptions_; }

  // A message for this client at the given (already reduced) QoS.
  void deliver(const MessagePtr& message, QoS qos, bool retain, WorkerCounters& counters,
               std::uint32_t share = 0);
  // QoS 1/2 messages given for a shared subscription that the client has not acknowledged
  // (inflight without PUBREC, then queued), in order: another member gets them when this
  // clean session ends (MQTT 5, 4.8.2).
  std::vector<Outbound> shared_unacknowledged() const;
  // Resends unacknowledged PUBLISH (DUP=1) and PUBREL on resume, then drains the queue.
  void resume(WorkerCounters& counters);
  // Moves queued messages into the inflight window while there is room and the connection can
  // take more output.
  void pump(WorkerCounters& counters);

  // Acknowledgements from the client for our outbound messages. False if the id was unknown.
  bool on_puback(std::uint16_t packet_id, WorkerCounters& counters);
  bool on_pubrec(std::uint16_t packet_id);
  bool on_pubcomp(std::uint16_t packet_id, WorkerCounters& counters);

  // Inbound QoS 2 (method B of MQTT-4.3.3): the message is routed on PUBLISH and its id held until
  // PUBREL, so a resent PUBLISH with the same id is not routed again. Returns true if new.
  bool begin_inbound_qos2(std::uint16_t packet_id);
  void release_inbound_qos2(std::uint16_t packet_id);

  std::size_t inflight_count() const { return inflight_.size(); }
  std::size_t queued_count() const { return queue_.size(); }

  // Everything a persistent session holds. snapshot() copies (messages are shared, not copied);
  // restore() fills a fresh, unattached session and reports nothing to the store (the state came
  // from it, or the caller writes it). Owner worker only.
  Snapshot snapshot() const;
  void restore(Snapshot snapshot);

 private:
  // Store hooks fire for persistent sessions only: clean sessions never reach the disk.
  SessionStore* store() const { return persistent_ && !store_detached_ ? &store_ : nullptr; }
  void set_username(std::string_view name);
  void send_new(Outbound out, std::uint64_t seq, WorkerCounters& counters);
  void enqueue(Outbound out, WorkerCounters& counters);
  std::uint16_t next_packet_id();

  // Ordered to leave no padding: there is a session per client.
  const std::string client_id_;
  const MqttOptions& options_;
  SessionStore& store_;
  std::atomic<std::size_t> owner_;
  Connection* connection_ = nullptr;
  std::unique_ptr<const std::string> username_;  // out of line: most sessions have none
  Clock::time_point expires_at_{};
  Subscriptions subscriptions_;
  std::vector<Inflight> inflight_;  // in send order; acks may arrive in any order; small
  RingQueue<Queued> queue_;
  std::uint64_t last_seq_ = 0;
  std::vector<std::uint16_t> inbound_qos2_;  // few at a time: a vector beats a set here
  std::uint16_t last_packet_id_ = 0;
  const bool persistent_;
  bool discarded_ = false;
  std::atomic<bool> online_{false};
  bool moved_ = false;
  bool store_detached_ = false;
};

using SessionPtr = std::shared_ptr<Session>;

}  // namespace meshmq::core
