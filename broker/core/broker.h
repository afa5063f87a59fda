// Routing and session management for one node.
//
// Each worker keeps a replica of the subscription trie, so matching a publish reads only
// thread-local memory. A (un)subscribe is applied to every replica by posting to each worker; the
// SUBACK is sent only after all replicas have it, so a publish that arrives anywhere after the
// SUBACK reaches the new subscriber. Deliveries to sessions owned by other workers are batched per
// target worker and posted once per event-loop pass. Sessions are found by client id in a registry
// under a mutex that only CONNECT, session end and expiry take.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "broker/codec/packet.h"
#include "broker/core/access.h"
#include "broker/core/cluster_link.h"
#include "broker/core/counters.h"
#include "broker/core/executor.h"
#include "broker/core/memory_retained_store.h"
#include "broker/core/message.h"
#include "broker/core/options.h"
#include "broker/core/retained_store.h"
#include "broker/core/session.h"
#include "broker/core/session_store.h"
#include "broker/core/shared_groups.h"
#include "broker/topic/subscription_trie.h"

namespace meshmq::core {

class Connection;

struct BrokerStats {
  std::size_t sessions = 0;
  std::size_t subscriptions = 0;  // (filter, session) pairs
  std::size_t retained = 0;
  std::size_t routes = 0;  // distinct filters with a subscriber on this node
};

// One session as the admin API shows it, read on its owner worker.
struct SessionInfo {
  std::string client_id;
  std::string peer;  // empty while offline
  bool connected = false;
  bool persistent = false;
  std::size_t queued = 0;
  std::size_t inflight = 0;
  std::vector<std::pair<std::string, QoS>> subscriptions;
};

class Broker {
 public:
  Broker(const MqttOptions& options, Executor& executor, RetainedStore& retained,
         SessionStore& sessions);
  ~Broker();

  const MqttOptions& options() const { return options_; }
  WorkerCounters& counters(std::size_t worker) { return workers_[worker]->counters; }
  const WorkerCounters& counters(std::size_t worker) const { return workers_[worker]->counters; }
  SessionStore& session_store() { return sessions_; }
  // Authentication and access rules; AllowAll unless set before the first connection.
  AccessPolicy& access() { return *access_; }
  void set_access(AccessPolicy& access) { access_ = &access; }
  std::size_t worker_count() const { return workers_.size(); }

  std::string assign_client_id();

  // Finds or creates the session for client_id (taking it over from another connection, on any
  // worker, or through the cluster from another node) and answers with conn->finish_connect on
  // conn's worker.
  void connect(std::shared_ptr<Connection> conn, const std::string& client_id, bool clean_session);
  // The connection is gone: a clean session ends, a persistent one waits offline until expiry.
  void connection_closed(Connection& conn, const SessionPtr& session);

  // Attaches the cluster layer (before the workers start); without it the node runs alone.
  void set_cluster(ClusterLink* cluster) { cluster_ = cluster; }
  bool clustered() const { return cluster_ != nullptr; }

  // Routes a message published on the calling worker to local subscribers and, through the
  // cluster, to other nodes. For a QoS 1/2 message with remote targets it returns true and runs
  // `remote_accepted` on this worker once every target node accepted it (the publisher's
  // PUBACK/PUBREC waits for that); otherwise it returns false and drops `remote_accepted`.
  bool publish(MessagePtr message, std::function<void()> remote_accepted = nullptr);

  // --- entry points for the cluster layer (any thread) ---
  // A message another node forwarded: delivered to local subscribers only. Messages with the same
  // `lane` (the origin node) are delivered in the order of the calls. `shared`: groups
  // ("$share/g/f") the origin picked this node for, each served by one local member;
  // `shared_only`: deliver to those groups only, not to ordinary subscribers.
  void deliver_remote(MessagePtr message, std::size_t lane, std::vector<std::string> shared = {},
                      bool shared_only = false);
  // Applies remote route changes to every worker's route trie; `done` runs (on a worker) once all
  // have them.
  void apply_remote_routes(std::vector<RemoteRoute> changes, std::function<void()> done);
  // A node was marked down (up=false) or is heard again: shared subscriptions pick a node that
  // is down only when no other has the group.
  void set_node_up(NodeId node, bool up);
  // Stores a retained message set or cleared on another node (on a worker: stores write through
  // per-worker batches).
  void set_remote_retained(MessagePtr message);
  // Another node claimed client_id (README "Sessions across nodes"): closes the client's
  // connection here (its will goes out, as for a takeover on one node, unless kLeaving: this
  // node is stopping) and runs done(state, ghost) on a worker: the persistent session's state
  // unless `clean`, nullopt when there was none. `to` names the claiming node, for the log.
  // A clean claim discards the session. Otherwise the session leaves the registry but stays in
  // the tries, and its routes with it, as a *ghost* (id `ghost`) that collects what is still
  // routed here until finish_handover(): the new node's routes are not everywhere yet. The ghost
  // is deleted from the store at once, with kLeaving only once the new node confirmed. kNoGhost:
  // discarded at once, like a clean claim, but the state is returned (a partition's loser).
  enum class HandOverMode { kGhost, kLeaving, kNoGhost };
  using HandOverDone = std::function<void(std::optional<Session::Snapshot>, std::uint64_t ghost)>;
  void hand_over(const std::string& client_id, bool clean, const std::string& to, HandOverDone done,
                 HandOverMode mode = HandOverMode::kGhost);
  // The node that took the ghost's session confirmed it (`installed`): the ghost is discarded
  // (store, routes) and done(tail) gets what it received after the hand_over snapshot, for that
  // node. Not confirmed: the session stays here after all (written back to the store, registered
  // again; merged into a session the id got here meanwhile) and done(nullopt). On a worker.
  void finish_handover(std::uint64_t ghost, bool installed,
                       std::function<void(std::optional<Session::Snapshot> tail)> done);
  // A session state from another node outside a CONNECT (a stopping node's parked session, a
  // handover answered after its claim timed out, a ghost's tail): merged into the session the id
  // has here (subscriptions added, messages delivered after what it holds: at least once), or
  // kept as a parked session. `installed` as in SessionClaim. Registers before it returns.
  void absorb(Session::Snapshot state, const std::string& from,
              std::function<void()> installed = nullptr);
  // Every client id with a session here (connected or not); `persistent_only` skips clean ones.
  std::vector<std::string> client_ids(bool persistent_only = false);

  // Runs done(ok) on the calling worker once everything the last publish() on this worker changed
  // is durable, on every worker it reached (deliveries to sessions owned elsewhere included), and
  // after every earlier after_durable() of this worker: acknowledgements keep publish order.
  // ok=false: the store failed and the message may not be stored.
  void after_durable(std::function<void(bool ok)> done);
  // True when after_durable() would run its callback at once with ok=true: callers skip building
  // the callback (one allocation per acknowledgement) on the common path.
  bool durable_now() const;

  // Puts a session loaded from storage (or handed over by another node) into the registry and
  // every worker's trie (and the cluster's routes), offline until its client connects. Only
  // before the workers run.
  void restore_session(Session::Snapshot snapshot);

  void subscribe(std::shared_ptr<Connection> conn, codec::Subscribe packet);
  void unsubscribe(std::shared_ptr<Connection> conn, codec::Unsubscribe packet);

  // Periodic housekeeping for one worker: session expiry (and retained expiry on worker 0).
  void tick(std::size_t worker, Clock::time_point now);

  BrokerStats stats();

  // --- administration; callable from any thread (the HTTP thread) ---
  // Reads every session on its owner worker; `done` gets them all, on a worker (or right away on
  // the caller's thread when there are none).
  void inspect_sessions(std::function<void(std::vector<SessionInfo>)> done);
  // Closes the client's connection on its owner worker, publishing its will as for any close the
  // client did not ask for; its persistent session stays. done(false): no client connected with
  // that id.
  void kick(const std::string& client_id, std::function<void(bool)> done);

  // Client connected/disconnected events go to <prefix>clients/<client id>/{connected,
  // disconnected} (not retained) once a prefix is set, e.g. "$SYS/brokers/node1/". Set before the
  // workers start.
  Executor& executor() { return executor_; }

  void set_event_prefix(std::string prefix) { event_prefix_ = std::move(prefix); }
  // Called by the connection on its worker.
  void client_event(const Connection& conn, bool connected);

 private:
  // A subscription as the tries hold it. `filtered`: the ACL denies some topics the filter
  // matches, so each delivery is checked (AccessPolicy::delivery_filtered); `acl_generation`: the
  // rules it was granted under (a reload means a check at every delivery).
  struct Grant {
    QoS qos;
    bool filtered = false;
    std::uint32_t acl_generation = 0;
  };
  using Trie = topic::SubscriptionTrie<SessionPtr, Grant>;
  struct Delivery {
    SessionPtr session;
    MessagePtr message;
    QoS qos;
    bool check_acl = false;
    std::uint32_t share = 0;  // given for this shared subscription (ShareIds), 0 for none
  };
  struct Match {
    const SessionPtr* session;
    QoS qos;
    bool check_acl;
  };
  // One deferred acknowledgement: done once the local commit and every target worker it reached
  // have reported back. `remaining` is touched by several workers; `ready` only by the origin.
  struct Join {
    std::function<void(bool)> done;
    std::atomic<std::size_t> remaining{1};
    std::atomic<bool> ok{true};
    std::size_t origin = 0;
    bool ready = false;
  };
  using JoinPtr = std::shared_ptr<Join>;
  using RouteTrie = topic::SubscriptionTrie<NodeId, std::uint8_t>;
  struct Worker {
    Trie trie;
    std::vector<Match> matches;                      // scratch for publish()
    std::vector<std::vector<Delivery>> outbox;       // per target worker
    std::vector<std::vector<JoinPtr>> outbox_joins;  // per target: acks waiting for that batch
    std::vector<std::size_t>
        touched;                // targets the current publish reached with a persistent write
    std::deque<JoinPtr> acks;   // deferred acknowledgements, in publish order
    RouteTrie routes;           // filter -> remote nodes; replicated like `trie`
    std::vector<NodeId> nodes;  // scratch for publish()
    std::vector<RemoteForward> remote_outbox;
    bool outbox_scheduled = false;
    std::unordered_set<SessionPtr> offline;  // persistent sessions owned here with no connection
    SharedGroups shared;                     // shared subscriptions; replicated like `trie`
    std::vector<SharedGroup*> groups;        // scratch for publish()
    std::vector<SharedPick> picks;           // scratch for publish(): groups served remotely
    WorkerCounters counters;
  };
  struct RouteChange {
    std::string filter;
    QoS qos;
    bool add;
    bool fresh = false;     // an add of a filter the session did not have (a route for the cluster)
    bool filtered = false;  // see Grant
    std::uint32_t acl_generation = 0;  // see Grant
  };

  void finish_subscribe(const std::shared_ptr<Connection>& conn, const codec::Suback& suback,
                        const std::vector<RouteChange>& granted, bool ok);
  // The registry step of connect(); `on_conn_worker` says whether the caller runs on conn's
  // worker (the cluster's claim answer may come on any thread).
  void connect_local(std::shared_ptr<Connection> conn, bool clean_session, bool on_conn_worker);
  void claimed(std::shared_ptr<Connection> conn, bool clean_session, SessionClaim claim);
  // Registers a session another node handed over and, on its owner worker, stores it and adds its
  // routes, then connects `conn` to it. False when this node already holds one for the id: the
  // state is merged into that one.
  bool adopt(const std::shared_ptr<Connection>& conn, Session::Snapshot snapshot,
             const std::string& from, std::function<void()> installed);
  void install_adopted(const SessionPtr& session, std::function<void()> then);
  // Registers a session made from `state` on `owner` and installs it there, then runs
  // then(session) on the owner once its routes are in; or, when the id has a session here
  // already, merges `state` into that one (`installed` once durable) and returns false. `how`
  // and `from` are for the log.
  bool take_in(Session::Snapshot state, std::size_t owner, const char* how, const std::string& from,
               std::function<void()> installed, std::function<void(const SessionPtr&)> then);
  // Where a session with no connection lives (restored from disk, parked by another node).
  std::size_t home_worker(const std::string& client_id) const;
  // Reports a whole session to the store (it came from elsewhere, or back from a ghost).
  void store_whole(const Session& session);
  // Adds `state` to `session` on its owner worker (see absorb), then runs installed.
  void merge_into(const SessionPtr& session, Session::Snapshot state,
                  std::function<void()> installed);
  // Runs `then` once the calling worker's store changes are durable (not at all if the store
  // failed: the old node keeps the session).
  void when_durable(std::function<void()> then);
  void refuse_moved(const std::shared_ptr<Connection>& conn);  // CONNACK 3, on conn's worker
  void takeover(SessionPtr existing, std::shared_ptr<Connection> conn, bool clean_session);
  void discard(const SessionPtr& session);
  void unregister(const SessionPtr& session);
  void retry_connect(const std::shared_ptr<Connection>& conn, bool clean_session);
  SessionPtr make_session(const std::string& client_id, bool clean_session, std::size_t owner);
  void update_routes(const SessionPtr& session, std::vector<RouteChange> changes,
                     std::function<void()> done);
  void deliver(std::size_t worker, Delivery&& d);
  // The access rules' verdict on one delivery to a filtered subscription, on the owner worker.
  bool may_receive(std::size_t worker, const Session& session, std::string_view topic);
  // One subscription change on one worker's replica (trie or shared groups).
  void apply_route(Worker& w, const std::string& filter, const SessionPtr& session,
                   const Grant& grant, bool add);
  // Shared groups matching a locally published message: served here or picked for a remote node
  // (into Worker::picks).
  void match_shared(std::size_t worker, const MessagePtr& message);
  bool deliver_to_member(std::size_t worker, SharedGroup& group, const MessagePtr& message);
  // A member left with a message it had not acknowledged: another member of the group gets it,
  // on this node or (by the node-level strategy) another one.
  void redispatch(std::size_t worker, std::uint32_t share, const MessagePtr& message);
  void match_local(std::size_t worker, const MessagePtr& message);
  void flush_outbox(std::size_t worker);
  void deliver_batch(std::size_t worker, std::vector<Delivery>& batch, std::vector<JoinPtr>& joins);
  void attach_joins(std::size_t worker, const std::vector<JoinPtr>& joins);
  void schedule_flush(std::size_t worker);
  void join_done(const JoinPtr& join, bool ok);
  void release_acks(std::size_t worker);
  // Runs fn(session) on the session's owner worker, following it if it moves meanwhile.
  void on_owner(SessionPtr session, std::function<void(const SessionPtr&)> fn);

  const MqttOptions& options_;
  Executor& executor_;
  RetainedStore& retained_;
  SessionStore& sessions_;
  AllowAll allow_all_;
  AccessPolicy* access_ = &allow_all_;
  ClusterLink* cluster_ = nullptr;
  ShareStrategy share_strategy_;
  ShareIds share_ids_;
  std::vector<std::unique_ptr<Worker>> workers_;

  // Sessions keyed by their own client id: the registry keeps no copy of the id. noexcept, so
  // libstdc++ does not cache the hash in each node: 32 bytes of heap per session instead of 48.
  struct IdHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view id) const noexcept {
      return std::hash<std::string_view>{}(id);
    }
    std::size_t operator()(const SessionPtr& s) const noexcept { return (*this)(s->client_id()); }
  };
  struct IdEqual {
    using is_transparent = void;
    static std::string_view id(std::string_view id) { return id; }
    static std::string_view id(const SessionPtr& s) { return s->client_id(); }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return id(a) == id(b);
    }
  };
  std::mutex registry_mu_;
  std::unordered_set<SessionPtr, IdHash, IdEqual> registry_;
  struct Ghost {
    SessionPtr session;
    std::uint64_t handed_seq = 0;  // queue entries above it came after the snapshot
  };
  std::unordered_map<std::uint64_t, Ghost> ghosts_;  // under registry_mu_
  std::uint64_t next_ghost_ = 1;
  std::atomic<std::uint64_t> assigned_ids_{0};
  std::atomic<std::int64_t> subscription_count_{0};
  std::atomic<std::size_t> route_count_{0};
  std::string event_prefix_;
  // The broker's own retained $SYS messages: kept apart from clients' retained messages, so they
  // never count against mqtt.retained_max_count, reach the disk or get replicated to peers.
  MqttOptions sys_retained_options_ = [] {
    MqttOptions o;
    o.retained_max_count = 0;  // unlimited
    o.retained_max_age_s = 0;  // never expire
    return o;
  }();
  MemoryRetainedStore sys_retained_{
      sys_retained_options_};  // worker 0's replica, which all others equal
};

}  // namespace meshmq::core
