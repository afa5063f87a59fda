#include "broker/core/broker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <utility>

#include "broker/core/connection.h"
#include "broker/core/limits.h"
#include "broker/core/log_limiter.h"

namespace meshmq::core {

namespace {
constexpr std::size_t kOutboxReserve = 256;
LogLimiter subscribe_topic_log;
LogLimiter subscribe_acl_log;
LogLimiter subscribe_count_log;
LogLimiter subscribe_share_log;
LogLimiter shared_lost_log;
}  // namespace

Broker::Broker(const MqttOptions& options, Executor& executor, RetainedStore& retained,
               SessionStore& sessions)
    : options_(options),
      executor_(executor),
      retained_(retained),
      sessions_(sessions),
      share_strategy_(
          parse_strategy(options.shared_strategy).value_or(ShareStrategy::kRoundRobin)) {
  for (std::size_t i = 0; i < executor.size(); ++i) {
    auto w = std::make_unique<Worker>();
    w->outbox.resize(executor.size());
    w->outbox_joins.resize(executor.size());
    workers_.push_back(std::move(w));
  }
}

Broker::~Broker() = default;

std::string Broker::assign_client_id() {
  // MQTT-3.1.3-6: unique per server. A random prefix keeps ids unique across restarts and nodes.
  static const std::uint64_t prefix =
      std::random_device{}() ^ (std::uint64_t{std::random_device{}()} << 32);
  char buf[48];
  std::snprintf(buf, sizeof buf, "meshmq-%016llx-%llu", static_cast<unsigned long long>(prefix),
                static_cast<unsigned long long>(assigned_ids_.fetch_add(1) + 1));
  return buf;
}

// --- sessions ---

SessionPtr Broker::make_session(const std::string& client_id, bool clean_session,
                                std::size_t owner) {
  return std::make_shared<Session>(client_id, !clean_session, owner, options_, sessions_);
}

void Broker::connect(std::shared_ptr<Connection> conn, const std::string& client_id,
                     bool clean_session) {
  if (cluster_ == nullptr) {
    connect_local(std::move(conn), clean_session, true);
    return;
  }
  (void)client_id;  // the connection's own id: retries read it from there too
  const std::string id = conn->client_id();
  cluster_->claim_session(id, clean_session, [this, conn, clean_session](SessionClaim claim) {
    claimed(conn, clean_session, std::move(claim));
  });
}

void Broker::claimed(std::shared_ptr<Connection> conn, bool clean_session, SessionClaim claim) {
  if (claim.lost) {
    refuse_moved(conn);
    return;
  }
  if (claim.handed_over && !clean_session) {
    if (adopt(conn, std::move(*claim.handed_over), claim.from, std::move(claim.installed))) {
      return;  // connects once the session's routes are in
    }
  }
  connect_local(std::move(conn), clean_session, false);
}

bool Broker::adopt(const std::shared_ptr<Connection>& conn, Session::Snapshot snapshot,
                   const std::string& from, std::function<void()> installed) {
  // A session for the id may have appeared here meanwhile (parked by a stopping node, say): the
  // handed one joins it, and the CONNECT takes it over as usual.
  return take_in(std::move(snapshot), conn->worker(), "taken over from", from, installed,
                 [this, conn, installed](const SessionPtr& session) {
                   // Routes are in on every node that is up: publishes after the CONNACK reach
                   // this node. The old node hears it first, so that its copy stops collecting.
                   after_durable([this, conn, session, installed](bool ok) {
                     if (!ok) {
                       conn->close("storage failed: the session taken over could not be stored");
                       return;
                     }
                     if (installed) installed();
                     if (session->moved()) {
                       refuse_moved(conn);
                       return;
                     }
                     connect_local(conn, false, true);
                   });
                 });
}

bool Broker::take_in(Session::Snapshot state, std::size_t owner, const char* how,
                     const std::string& from, std::function<void()> installed,
                     std::function<void(const SessionPtr&)> then) {
  std::unique_lock lock(registry_mu_);
  auto it = registry_.find(std::string_view(state.client_id));
  if (it != registry_.end()) {
    SessionPtr existing = *it;
    lock.unlock();
    merge_into(existing, std::move(state), std::move(installed));
    return false;
  }
  auto session = make_session(state.client_id, false, owner);
  session->restore(std::move(state));  // not yet shared: any thread may fill it
  // Posted before the session becomes visible in the registry: whatever finds it there (a
  // takeover, a hand_over) is posted to the owner later and runs after the install.
  executor_.post(owner, [this, session, how, from, then = std::move(then)] {
    spdlog::info("session {} {} node {} ({} subscriptions, {} queued, {} inflight)",
                 session->client_id(), how, from, session->subscriptions().size(),
                 session->queued_count(), session->inflight_count());
    install_adopted(session, [session, then] { then(session); });
  });
  registry_.insert(session);
  return true;
}

void Broker::store_whole(const Session& s) {
  sessions_.session_created(s);
  const Session::Snapshot state = s.snapshot();
  for (const auto& [filter, qos] : state.subscriptions) sessions_.subscription_set(s, filter, qos);
  for (const Session::Queued& q : state.queue) sessions_.message_queued(s, q.seq, q.out);
  for (const Session::Inflight& f : state.inflight) {
    sessions_.inflight_sent(s, f.seq, f.packet_id, f.out);
    if (f.awaiting_pubcomp) sessions_.inflight_pubrec(s, f.seq, f.packet_id);
  }
  for (std::uint16_t id : state.inbound_qos2) sessions_.inbound_qos2_held(s, id);
  sessions_.session_offline(s);
}

void Broker::when_durable(std::function<void()> then) {
  after_durable([then = std::move(then)](bool ok) {
    if (!ok) {
      spdlog::error("a session taken from another node could not be stored: its old node keeps it");
      return;
    }
    then();
  });
}

void Broker::absorb(Session::Snapshot state, const std::string& from,
                    std::function<void()> installed) {
  const std::size_t owner = home_worker(state.client_id);
  take_in(std::move(state), owner, "parked here by", from, installed,
          [this, installed](const SessionPtr&) {
            if (installed) when_durable(installed);
          });
}

std::size_t Broker::home_worker(const std::string& client_id) const {
  return std::hash<std::string>{}(client_id) % std::max<std::size_t>(1, workers_.size());
}

void Broker::merge_into(const SessionPtr& session, Session::Snapshot state,
                        std::function<void()> installed) {
  on_owner(session, [this, state = std::move(state),
                     installed = std::move(installed)](const SessionPtr& s) mutable {
    if (s->discarded()) {  // replaced or ended meanwhile: the registry has the current state
      unregister(s);       // (if it still names this one, it must not be found again)
      absorb(std::move(state), "this node", std::move(installed));
      return;
    }
    WorkerCounters& c = counters(executor_.current());
    std::vector<RouteChange> changes;
    for (const auto& [filter, qos] : state.subscriptions) {
      if (s->subscriptions().contains(filter)) continue;  // the client's own choice stands
      s->subscriptions().insert_or_assign(filter, qos);
      if (s->persistent()) sessions_.subscription_set(*s, filter, qos);
      changes.push_back({filter, qos, true, true});
    }
    for (std::uint16_t id : state.inbound_qos2) s->begin_inbound_qos2(id);
    // After what the session holds: a message may arrive twice (at least once), none is lost.
    for (const Session::Inflight& f : state.inflight)
      s->deliver(f.out.message, f.out.qos, false, c);
    for (const Session::Queued& q : state.queue) s->deliver(q.out.message, q.out.qos, false, c);
    spdlog::info("session {}: {} subscriptions and {} messages from another node added",
                 s->client_id(), changes.size(), state.inflight.size() + state.queue.size());
    update_routes(s, std::move(changes), [this, installed = std::move(installed)] {
      if (installed) when_durable(installed);
    });
  });
}

void Broker::install_adopted(const SessionPtr& s, std::function<void()> then) {
  // restore() reports nothing to the store: write the whole session, as it is now ours.
  store_whole(*s);
  Worker& w = *workers_[s->owner()];
  w.counters.queued_messages.add(static_cast<std::int64_t>(s->queued_count()));
  w.counters.inflight_messages.add(static_cast<std::int64_t>(s->inflight_count()));
  w.offline.insert(s);
  std::vector<RouteChange> changes;
  for (const auto& [filter, qos] : s->subscriptions()) changes.push_back({filter, qos, true, true});
  update_routes(s, std::move(changes), std::move(then));
}

void Broker::hand_over(const std::string& client_id, bool clean, const std::string& to,
                       HandOverDone done, HandOverMode mode) {
  SessionPtr session;
  {
    std::lock_guard lock(registry_mu_);
    auto it = registry_.find(std::string_view(client_id));
    if (it != registry_.end()) session = *it;
  }
  if (!session) {
    done(std::nullopt, 0);
    return;
  }
  on_owner(std::move(session),
           [this, clean, to, mode, done = std::move(done)](const SessionPtr& s) {
             if (s->discarded() || s->moved()) {
               // Replaced, ended or handed over meanwhile: the registry has the current state.
               hand_over(s->client_id(), clean, to, done, mode);
               return;
             }
             const bool leaving = mode == HandOverMode::kLeaving;
             s->mark_moved();
             if (Connection* old = s->connection()) {
               // As MQTT-3.1.4-2 on one node: closed without DISCONNECT, so its will goes out; a
               // stopping node's clients reconnect elsewhere and publish no will (README "Graceful
               // stop").
               old->close("session taken over by a connection on node " + to, !leaving);
             }
             if (s->discarded()) {  // a clean session: it ended with its connection
               done(std::nullopt, 0);
               return;
             }
             workers_[executor_.current()]->offline.erase(s);
             if (clean || !s->persistent() || mode == HandOverMode::kNoGhost) {
               std::optional<Session::Snapshot> state;
               if (!clean && s->persistent()) state = s->snapshot();
               spdlog::info("session {} {} node {}", s->client_id(),
                            state ? "handed over to" : "discarded for a clean session on", to);
               unregister(s);
               discard(s);  // deletes it from the store and withdraws its routes
               done(std::move(state), 0);
               return;
             }
             Session::Snapshot state = s->snapshot();
             spdlog::info("session {} handed over to node {}", s->client_id(), to);
             std::uint64_t handed_seq = 0;
             for (const auto& f : state.inflight) handed_seq = std::max(handed_seq, f.seq);
             for (const auto& q : state.queue) handed_seq = std::max(handed_seq, q.seq);
             if (!leaving) {
               // Deleted before the id is free here (see RocksSessionStore::session_ended): a new
               // session for it on this node never shares its keys with the ghost.
               sessions_.session_ended(*s);
               s->detach_store();
             }
             std::uint64_t ghost = 0;
             {
               std::lock_guard lock(registry_mu_);
               auto it = registry_.find(std::string_view(s->client_id()));
               if (it != registry_.end() && *it == s) registry_.erase(it);
               ghost = next_ghost_++;
               ghosts_[ghost] = {s, handed_seq};
             }
             done(std::move(state), ghost);
           });
}

void Broker::finish_handover(std::uint64_t ghost, bool installed,
                             std::function<void(std::optional<Session::Snapshot>)> done) {
  Ghost g;
  {
    std::lock_guard lock(registry_mu_);
    auto it = ghosts_.find(ghost);
    if (it != ghosts_.end()) {
      g = std::move(it->second);
      ghosts_.erase(it);
    }
  }
  if (!g.session) {
    done(std::nullopt);
    return;
  }
  on_owner(g.session, [this, g, installed, done = std::move(done)](const SessionPtr& s) {
    if (installed) {
      Session::Snapshot tail = s->snapshot();
      std::erase_if(tail.queue, [&](const Session::Queued& q) { return q.seq <= g.handed_seq; });
      tail.subscriptions.clear();
      tail.inflight.clear();
      tail.inbound_qos2.clear();
      discard(s);  // its routes go only now: the new node's are in everywhere
      if (tail.queue.empty()) {
        done(std::nullopt);
      } else {
        done(std::move(tail));
      }
      return;
    }
    SessionPtr current;
    {
      std::lock_guard lock(registry_mu_);
      auto it = registry_.find(std::string_view(s->client_id()));
      if (it == registry_.end()) {
        registry_.insert(s);
      } else {
        current = *it;
      }
    }
    if (current) {  // the id has a new session here meanwhile: the ghost's state goes into it
      Session::Snapshot state = s->snapshot();
      s->detach_store();  // its keys are the new session's now
      discard(s);
      merge_into(current, std::move(state), nullptr);
      done(std::nullopt);
      return;
    }
    spdlog::warn("session {}: its new node did not confirm the handover: kept here",
                 s->client_id());
    s->mark_moved(false);
    if (s->store_detached()) {
      s->detach_store(false);
      store_whole(*s);
    }
    workers_[executor_.current()]->offline.insert(s);
    done(std::nullopt);
  });
}

std::vector<std::string> Broker::client_ids(bool persistent_only) {
  std::lock_guard lock(registry_mu_);
  std::vector<std::string> ids;
  ids.reserve(registry_.size());
  for (const SessionPtr& s : registry_) {
    if (!persistent_only || s->persistent()) ids.push_back(s->client_id());
  }
  return ids;
}

void Broker::connect_local(std::shared_ptr<Connection> conn, bool clean_session,
                           bool on_conn_worker) {
  const std::string& client_id = conn->client_id();
  SessionPtr existing;
  SessionPtr created;
  {
    std::lock_guard lock(registry_mu_);
    auto it = registry_.find(std::string_view(client_id));
    if (it == registry_.end()) {
      created = make_session(client_id, clean_session, conn->worker());
      registry_.insert(created);
    } else {
      existing = *it;
    }
  }
  if (created) {
    auto finish = [this, conn, created] {
      // Reported on the owner worker, like every store change.
      if (created->persistent()) sessions_.session_created(*created);
      conn->finish_connect(created, false);
    };
    if (on_conn_worker) {
      finish();
    } else {
      executor_.post(conn->worker(), std::move(finish));
    }
    return;
  }
  // The session belongs to another connection or lies offline on some worker: only its owner may
  // touch it, so the takeover runs there.
  executor_.post(existing->owner(), [this, existing, conn = std::move(conn), clean_session] {
    takeover(existing, conn, clean_session);
  });
}

void Broker::takeover(SessionPtr existing, std::shared_ptr<Connection> conn, bool clean_session) {
  const std::size_t here = executor_.current();
  if (existing->owner() != here) {
    // It moved while this request was in flight; follow it.
    executor_.post(existing->owner(), [this, existing, conn, clean_session] {
      takeover(existing, conn, clean_session);
    });
    return;
  }
  if (existing->moved()) {
    refuse_moved(conn);
    return;
  }
  if (existing->discarded()) {
    // Another connection ended or replaced it meanwhile: start over from the registry.
    retry_connect(conn, clean_session);
    return;
  }
  if (Connection* old = existing->connection()) {
    // MQTT-3.1.4-2: the existing connection is closed; it did not DISCONNECT, so its will goes out.
    old->close("session taken over by a new connection from " + conn->peer());
  }
  if (existing->discarded()) {  // the old connection had a clean session: it just ended
    retry_connect(conn, clean_session);
    return;
  }
  workers_[here]->offline.erase(existing);
  const std::size_t target = conn->worker();
  if (clean_session || !existing->persistent()) {
    // MQTT-3.1.2-6: clean session 1 discards the previous session.
    auto fresh = make_session(existing->client_id(), clean_session, target);
    {
      std::lock_guard lock(registry_mu_);
      registry_.erase(existing);
      registry_.insert(fresh);
    }
    discard(existing);
    if (fresh->persistent()) sessions_.session_created(*fresh);
    executor_.post(target, [conn, fresh] { conn->finish_connect(fresh, false); });
    return;
  }
  existing->set_owner(target);
  executor_.post(target, [conn, existing] { conn->finish_connect(existing, true); });
}

void Broker::refuse_moved(const std::shared_ptr<Connection>& conn) {
  // The session went to a newer CONNECT on another node before this one attached: that one won,
  // as a later CONNECT on this node would have.
  executor_.post(conn->worker(), [conn] {
    if (!conn->closed()) {
      conn->reject_connect(codec::ConnectReturnCode::kServerUnavailable,
                           "the session moved to a newer connection on another node");
    }
  });
}

void Broker::connection_closed(Connection& conn, const SessionPtr& session) {
  const std::size_t here = executor_.current();
  if (session->connection() == &conn || session->connection() == nullptr) {
    session->detach(Clock::now());
  }
  if (!session->persistent()) {
    unregister(session);
    discard(session);
    return;
  }
  workers_[here]->offline.insert(session);
}

void Broker::retry_connect(const std::shared_ptr<Connection>& conn, bool clean_session) {
  // The session changed hands meanwhile: look the client id up again from the connection's worker.
  executor_.post(conn->worker(), [this, conn, clean_session] {
    if (!conn->closed()) connect_local(conn, clean_session, true);
  });
}

void Broker::unregister(const SessionPtr& session) {
  std::lock_guard lock(registry_mu_);
  auto it = registry_.find(std::string_view(session->client_id()));
  // Only if still registered: a takeover may already have put a fresh session under this id.
  if (it != registry_.end() && *it == session) registry_.erase(it);
}

void Broker::discard(const SessionPtr& session) {
  if (session->discarded()) return;
  session->mark_discarded();
  WorkerCounters& c = counters(executor_.current());
  c.queued_messages.sub(static_cast<std::int64_t>(session->queued_count()));
  c.inflight_messages.sub(static_cast<std::int64_t>(session->inflight_count()));
  if (session->persistent() && !session->store_detached()) sessions_.session_ended(*session);
  std::vector<RouteChange> changes;
  for (auto& [filter, qos] : session->subscriptions()) changes.push_back({filter, qos, false});
  session->subscriptions().clear();
  if (!changes.empty()) update_routes(session, std::move(changes), nullptr);
  if (session->persistent()) return;  // a persistent member keeps its messages while it lives
  std::vector<Session::Outbound> left = session->shared_unacknowledged();
  if (left.empty()) return;
  // Posted after the route changes: this worker's replica no longer has the session as a member
  // when it runs, so the messages go to another one.
  const std::size_t here = executor_.current();
  executor_.post(here, [this, here, left = std::move(left)] {
    for (const Session::Outbound& o : left) redispatch(here, o.share, o.message);
  });
}

void Broker::tick(std::size_t worker, Clock::time_point now) {
  Worker& w = *workers_[worker];
  std::vector<SessionPtr> expired;
  for (const SessionPtr& s : w.offline) {
    if (s->connection() == nullptr && s->expires_at() <= now) expired.push_back(s);
  }
  for (const SessionPtr& s : expired) {
    w.offline.erase(s);
    spdlog::info("session {} expired after {} s offline", s->client_id(),
                 options_.session_expiry_s);
    // Ended in the store before a new CONNECT can miss it in the registry and create it again.
    discard(s);
    unregister(s);
  }
  if (worker == 0) retained_.purge_expired(now);
}

void Broker::restore_session(Session::Snapshot snapshot) {
  const std::size_t owner = home_worker(snapshot.client_id);
  auto session = make_session(snapshot.client_id, false, owner);
  for (const auto& [filter, qos] : snapshot.subscriptions) {
    // Granted under rules this process never saw: checked at each delivery (generation 0).
    for (auto& w : workers_) apply_route(*w, filter, session, Grant{qos}, true);
    subscription_count_ += 1;
    // Announced to the other nodes once the cluster links come up (full sync).
    if (cluster_) cluster_->local_durable_route_added(filter, [] {});
  }
  session->restore(std::move(snapshot));
  WorkerCounters& c = workers_[owner]->counters;
  c.queued_messages.add(static_cast<std::int64_t>(session->queued_count()));
  c.inflight_messages.add(static_cast<std::int64_t>(session->inflight_count()));
  workers_[owner]->offline.insert(session);
  std::lock_guard lock(registry_mu_);
  registry_.insert(session);
}

// --- subscriptions ---

void Broker::update_routes(const SessionPtr& session, std::vector<RouteChange> changes,
                           std::function<void()> done) {
  for (const RouteChange& c : changes) subscription_count_ += c.add ? 1 : -1;
  struct Pending {
    std::vector<RouteChange> changes;
    std::atomic<std::size_t> remaining;
    std::function<void()> done;
    std::size_t origin;
  };
  auto pending = std::make_shared<Pending>();
  pending->changes = std::move(changes);
  pending->done = std::move(done);
  pending->origin = executor_.current();
  auto finish_one = [this, pending] {
    if (pending->remaining.fetch_sub(1) == 1 && pending->done) {
      executor_.post(pending->origin, std::move(pending->done));
    }
  };
  std::size_t cluster_waits = 0;
  if (cluster_) {
    for (const RouteChange& c : pending->changes) {
      if (!c.add && session->persistent()) cluster_->local_durable_route_removed(c.filter);
      if (!c.add && !session->persistent()) cluster_->local_route_removed(c.filter);
      if (c.add && c.fresh) ++cluster_waits;
    }
  }
  // The SUBACK waits for every local replica and, for new filters, for the peers (see
  // ClusterLink::local_route_added).
  pending->remaining = workers_.size() + cluster_waits;
  if (cluster_waits > 0) {
    for (const RouteChange& c : pending->changes) {
      if (c.add && c.fresh && session->persistent()) {
        cluster_->local_durable_route_added(c.filter, finish_one);
      } else if (c.add && c.fresh) {
        cluster_->local_route_added(c.filter, finish_one);
      }
    }
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    executor_.post(i, [this, i, session, pending, finish_one] {
      Worker& w = *workers_[i];
      for (const RouteChange& c : pending->changes) {
        apply_route(w, c.filter, session, Grant{c.qos, c.filtered, c.acl_generation}, c.add);
      }
      if (i == 0) route_count_.store(w.trie.filter_count(), std::memory_order_relaxed);
      finish_one();
    });
  }
}

void Broker::apply_route(Worker& w, const std::string& filter, const SessionPtr& session,
                         const Grant& grant, bool add) {
  ShareSpec spec;
  if (parse_share(filter, spec) == ShareKind::kShared) {
    if (add) {
      w.shared.add_member(filter, share_ids_.id(filter),
                          {session, grant.qos, grant.filtered, grant.acl_generation});
    } else {
      w.shared.remove_member(filter, session);
    }
  } else if (add) {
    w.trie.insert(filter, session, grant);
  } else {
    w.trie.erase(filter, session);
  }
}

void Broker::set_node_up(NodeId node, bool up) {
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    executor_.post(i, [this, i, node, up] { workers_[i]->shared.set_node_down(node, !up); });
  }
}

void Broker::set_remote_retained(MessagePtr message) {
  executor_.post(0, [this, message = std::move(message)] { retained_.set(message); });
}

void Broker::apply_remote_routes(std::vector<RemoteRoute> changes, std::function<void()> done) {
  struct Pending {
    std::vector<RemoteRoute> changes;
    std::atomic<std::size_t> remaining;
    std::function<void()> done;
  };
  auto pending = std::make_shared<Pending>();
  pending->changes = std::move(changes);
  pending->remaining = workers_.size();
  pending->done = std::move(done);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    executor_.post(i, [this, i, pending] {
      RouteTrie& routes = workers_[i]->routes;
      SharedGroups& shared = workers_[i]->shared;
      ShareSpec spec;
      for (const RemoteRoute& c : pending->changes) {
        if (parse_share(c.filter, spec) == ShareKind::kShared) {
          // A node with members of a shared group: a candidate when a message matches.
          if (c.add) {
            shared.add_node(c.filter, c.node);
          } else {
            shared.remove_node(c.filter, c.node);
          }
        } else if (c.add) {
          routes.insert(c.filter, c.node, 0);
        } else {
          routes.erase(c.filter, c.node);
        }
      }
      if (pending->remaining.fetch_sub(1) == 1 && pending->done) pending->done();
    });
  }
}

void Broker::subscribe(std::shared_ptr<Connection> conn, codec::Subscribe packet) {
  const SessionPtr& session = conn->session();
  const std::size_t worker = conn->worker();
  WorkerCounters& c = counters(worker);
  const LimitOptions& limits = options_.limits;
  codec::Suback suback{packet.packet_id, {}};
  std::vector<RouteChange> changes;
  for (codec::SubscribeTopic& t : packet.topics) {
    // Refused filters get 0x80 (3.9.3); the others in the same SUBSCRIBE still go through.
    ShareSpec share;
    const ShareKind kind = parse_share(t.filter, share);
    if (kind == ShareKind::kInvalid) {
      warn_limited(subscribe_share_log,
                   "client {} ({}): subscription to {} refused: a shared subscription needs "
                   "$share/<group>/<filter> with a group free of '+' and '#'",
                   conn->client_id(), conn->peer(), t.filter);
      suback.return_codes.push_back(codec::kSubackFailure);
      continue;
    }
    // The ACL judges the filter messages are matched against, not the $share prefix.
    const std::string_view real = kind == ShareKind::kShared ? share.filter : t.filter;
    if (std::string_view broken = topic_limit_broken(t.filter, limits); !broken.empty()) {
      c.limit_topic.add();
      warn_limited(subscribe_topic_log, "client {} ({}): subscription refused: {} exceeded",
                   conn->client_id(), conn->peer(), broken);
      suback.return_codes.push_back(codec::kSubackFailure);
      continue;
    }
    if (!access_->may_subscribe(worker, conn->principal(), real)) {
      c.acl_subscribe_denied.add();
      warn_limited(subscribe_acl_log, "client {} ({}, user '{}'): subscription to {} denied by ACL",
                   conn->client_id(), conn->peer(), conn->username(), t.filter);
      suback.return_codes.push_back(codec::kSubackFailure);
      continue;
    }
    if (limits.max_subscriptions_per_client != 0 &&
        session->subscriptions().size() >= limits.max_subscriptions_per_client &&
        !session->subscriptions().contains(t.filter)) {
      c.limit_subscriptions.add();
      warn_limited(subscribe_count_log,
                   "client {} ({}): subscription to {} refused: "
                   "limits.max_subscriptions_per_client ({}) reached",
                   conn->client_id(), conn->peer(), t.filter, limits.max_subscriptions_per_client);
      suback.return_codes.push_back(codec::kSubackFailure);
      continue;
    }
    suback.return_codes.push_back(static_cast<std::uint8_t>(t.qos));
    auto [it, added] = session->subscriptions().insert_or_assign(t.filter, t.qos);
    if (!added) subscription_count_ -= 1;  // a replacement, not a new subscription
    if (session->persistent()) sessions_.subscription_set(*session, t.filter, t.qos);
    const bool filtered = access_->delivery_filtered(worker, conn->principal(), real);
    changes.push_back(
        {std::move(t.filter), t.qos, true, added, filtered, access_->generation(worker)});
  }
  auto granted = std::make_shared<std::vector<RouteChange>>(changes);
  update_routes(session, std::move(changes), [this, conn, suback = std::move(suback), granted] {
    if (conn->closed()) return;
    if (conn->session()->persistent() && sessions_.pending()) {
      // The SUBACK promises the subscription survives a restart: wait until it is on disk.
      after_durable([this, conn, suback, granted](bool ok) {
        if (!conn->closed()) finish_subscribe(conn, suback, *granted, ok);
      });
      return;
    }
    finish_subscribe(conn, suback, *granted, true);
  });
}

void Broker::finish_subscribe(const std::shared_ptr<Connection>& conn, const codec::Suback& suback,
                              const std::vector<RouteChange>& granted, bool ok) {
  if (!ok) {
    conn->close("storage failed: subscription not stored");
    return;
  }
  conn->finish_subscribe(suback);
  // MQTT-3.3.1-6, 3.8.4-3: retained messages follow the SUBACK, at min(message, granted) QoS.
  const SessionPtr& session = conn->session();
  WorkerCounters& c = counters(conn->worker());
  for (const RouteChange& g : granted) {
    // Shared subscriptions get no retained messages (as in MQTT 5, 4.8.2, and EMQX): each
    // member would get its own copy.
    if (is_share(g.filter)) continue;
    // Only a filter starting with "$SYS" can match a $SYS topic (MQTT-4.7.2-1).
    RetainedStore& store = g.filter.starts_with("$SYS") ? sys_retained_ : retained_;
    store.match(g.filter, [&](const MessagePtr& m) {
      if (g.filtered && !may_receive(conn->worker(), *session, m->topic)) return;
      session->deliver(m, min_qos(m->qos, g.qos), true, c);
    });
  }
}

void Broker::unsubscribe(std::shared_ptr<Connection> conn, codec::Unsubscribe packet) {
  const SessionPtr& session = conn->session();
  std::vector<RouteChange> changes;
  for (std::string& f : packet.filters) {
    if (session->subscriptions().erase(f) == 0) continue;
    if (session->persistent()) sessions_.subscription_removed(*session, f);
    changes.push_back({std::move(f), QoS{}, false});
  }
  const std::uint16_t id = packet.packet_id;
  // MQTT-3.10.4-5: UNSUBACK even when nothing matched.
  update_routes(session, std::move(changes), [conn, id] { conn->finish_unsubscribe(id); });
}

// --- publish ---

bool Broker::publish(MessagePtr message, std::function<void()> remote_accepted) {
  const std::size_t here = executor_.current();
  Worker& w = *workers_[here];
  w.touched.clear();
  const bool sys = message->topic.starts_with("$SYS/");
  if (message->retain && sys) {
    sys_retained_.set(message);
  } else if (message->retain) {
    if (!retained_.set(message)) {
      w.counters.dropped_retained_limit.add();
      spdlog::warn("retained message on {} dropped: mqtt.retained_max_count ({}) reached",
                   message->topic, options_.retained_max_count);
    } else if (cluster_) {
      cluster_->retained_changed(message);
    }
  }
  match_local(here, message);
  w.picks.clear();
  if (!w.shared.empty()) match_shared(here, message);
  if (cluster_ == nullptr || (w.routes.empty() && w.picks.empty())) return false;
  w.nodes.clear();
  w.routes.match(message->topic, [&](NodeId node, std::uint8_t) { w.nodes.push_back(node); });
  // One forward per node however many of its filters match.
  std::sort(w.nodes.begin(), w.nodes.end());
  w.nodes.erase(std::unique(w.nodes.begin(), w.nodes.end()), w.nodes.end());
  std::vector<SharedPick> picks;
  if (!w.picks.empty()) {
    for (SharedPick& p : w.picks)
      p.only = !std::binary_search(w.nodes.begin(), w.nodes.end(), p.node);
    for (const SharedPick& p : w.picks) w.nodes.push_back(p.node);
    std::sort(w.nodes.begin(), w.nodes.end());
    w.nodes.erase(std::unique(w.nodes.begin(), w.nodes.end()), w.nodes.end());
    picks = std::exchange(w.picks, {});
  }
  if (w.nodes.empty()) return false;
  RemoteForward f{message, w.nodes, nullptr, std::move(picks)};
  const bool wait = message->qos != QoS::kAtMostOnce && remote_accepted != nullptr;
  if (wait) {
    f.done = [this, here, cb = std::move(remote_accepted)]() mutable {
      executor_.post(here, std::move(cb));
    };
  }
  w.remote_outbox.push_back(std::move(f));
  schedule_flush(here);
  return wait;
}

void Broker::deliver_remote(MessagePtr message, std::size_t lane, std::vector<std::string> shared,
                            bool shared_only) {
  const std::size_t worker = lane % workers_.size();
  if (shared.empty()) {
    executor_.post(worker,
                   [this, worker, message = std::move(message)] { match_local(worker, message); });
    return;
  }
  executor_.post(worker, [this, worker, message = std::move(message), shared = std::move(shared),
                          shared_only] {
    if (!shared_only) match_local(worker, message);
    // The origin picked this node for these groups: one local member each, never a re-pick of
    // another node (which could deliver a second copy).
    Worker& w = *workers_[worker];
    for (const std::string& key : shared) {
      SharedGroup* g = w.shared.find(key);
      if (g == nullptr || !deliver_to_member(worker, *g, message)) {
        warn_limited(shared_lost_log,
                     "message on {} for shared subscription {} dropped: its last member here "
                     "left before the route withdrawal reached the publishing node",
                     message->topic, key);
      }
    }
  });
}

void Broker::match_shared(std::size_t here, const MessagePtr& message) {
  Worker& w = *workers_[here];
  // Gathered first: delivering may close a connection, and nothing may change the replica while
  // its trie is being walked.
  w.groups.clear();
  w.shared.match(message->topic, [&](SharedGroup& g) { w.groups.push_back(&g); });
  for (SharedGroup* g : w.groups) {
    const std::optional<NodeId> node = w.shared.pick_node(*g, share_strategy_);
    if (!node) continue;
    if (*node == kThisNode) {
      deliver_to_member(here, *g, message);
    } else {
      w.picks.push_back(SharedPick{*node, g->key, false});
    }
  }
}

bool Broker::deliver_to_member(std::size_t here, SharedGroup& group, const MessagePtr& message) {
  const SharedGroup::Member* m = workers_[here]->shared.pick_member(group, share_strategy_);
  if (m == nullptr) return false;
  const bool check_acl = m->filtered || m->acl_generation != access_->generation(here);
  deliver(here, Delivery{m->session, message, min_qos(message->qos, m->qos), check_acl, group.id});
  return true;
}

void Broker::redispatch(std::size_t here, std::uint32_t share, const MessagePtr& message) {
  Worker& w = *workers_[here];
  const std::string key = share_ids_.key(share);
  SharedGroup* g = w.shared.find(key);
  const std::optional<NodeId> node =
      g == nullptr ? std::nullopt : w.shared.pick_node(*g, share_strategy_);
  if (!node) {
    warn_limited(shared_lost_log,
                 "message on {} for shared subscription {} dropped: its member left and the "
                 "group has no other",
                 message->topic, key);
    return;
  }
  if (*node == kThisNode) {
    deliver_to_member(here, *g, message);
    return;
  }
  // For the group only: that node's ordinary subscribers had their copy with the publish.
  w.remote_outbox.push_back(
      RemoteForward{message, {*node}, nullptr, {SharedPick{*node, g->key, true}}});
  schedule_flush(here);
}

void Broker::match_local(std::size_t here, const MessagePtr& message) {
  Worker& w = *workers_[here];
  w.matches.clear();
  const std::uint32_t acl_generation = access_->generation(here);
  w.trie.match(message->topic, [&](const SessionPtr& s, const Grant& g) {
    w.matches.push_back(Match{&s, g.qos, g.filtered || g.acl_generation != acl_generation});
  });
  if (w.matches.size() > 1) {
    // MQTT-3.3.5-1: overlapping subscriptions of one client give one copy at the highest QoS.
    std::sort(w.matches.begin(), w.matches.end(),
              [](const Match& a, const Match& b) { return a.session->get() < b.session->get(); });
    std::size_t out = 0;
    for (std::size_t i = 0; i < w.matches.size(); ++i) {
      if (out > 0 && w.matches[out - 1].session->get() == w.matches[i].session->get()) {
        w.matches[out - 1].qos = std::max(w.matches[out - 1].qos, w.matches[i].qos);
        // One unfiltered subscription matching the topic means the rules allow it.
        w.matches[out - 1].check_acl = w.matches[out - 1].check_acl && w.matches[i].check_acl;
      } else {
        w.matches[out++] = w.matches[i];
      }
    }
    w.matches.resize(out);
  }
  for (const Match& m : w.matches) {
    const QoS qos = min_qos(message->qos, m.qos);
    const SessionPtr& s = *m.session;
    if (s->owner() == here) {
      if (m.check_acl && !may_receive(here, *s, message->topic)) continue;
      s->deliver(message, qos, false, w.counters);
    } else {
      if (s->persistent() && sessions_.persists()) {
        const std::size_t owner = s->owner();
        if (std::find(w.touched.begin(), w.touched.end(), owner) == w.touched.end()) {
          w.touched.push_back(owner);
        }
      }
      deliver(here, Delivery{s, message, qos, m.check_acl});
    }
  }
}

// --- durability of acknowledgements ---

bool Broker::durable_now() const {
  const Worker& w = *workers_[executor_.current()];
  return !sessions_.pending() && w.touched.empty() && w.acks.empty() && sessions_.healthy();
}

void Broker::after_durable(std::function<void(bool)> done) {
  const std::size_t here = executor_.current();
  Worker& w = *workers_[here];
  const bool local = sessions_.pending();
  if (!local && w.touched.empty() && w.acks.empty()) {
    done(sessions_.healthy());
    return;
  }
  auto join = std::make_shared<Join>();
  join->done = std::move(done);
  join->origin = here;
  w.acks.push_back(join);
  // Each target worker counts once: its batch carries the join and reports after its commit.
  attach_joins(here, {join});
  if (local) {
    join->remaining.fetch_add(1);
    sessions_.commit([this, join](bool ok) { join_done(join, ok); });
  }
  join_done(join, true);  // the guard taken at construction
}

void Broker::join_done(const JoinPtr& join, bool ok) {
  if (!ok) join->ok.store(false);
  if (join->remaining.fetch_sub(1) != 1) return;
  executor_.post(join->origin, [this, join] {
    join->ready = true;
    release_acks(join->origin);
  });
}

void Broker::release_acks(std::size_t here) {
  Worker& w = *workers_[here];
  while (!w.acks.empty() && w.acks.front()->ready) {
    JoinPtr j = std::move(w.acks.front());
    w.acks.pop_front();
    j->done(j->ok.load());
  }
}

void Broker::attach_joins(std::size_t here, const std::vector<JoinPtr>& joins) {
  Worker& w = *workers_[here];
  if (w.touched.empty()) return;
  for (std::size_t target : w.touched) {
    for (const JoinPtr& j : joins) {
      j->remaining.fetch_add(1);
      w.outbox_joins[target].push_back(j);
    }
  }
  w.touched.clear();
  schedule_flush(here);
}

void Broker::deliver_batch(std::size_t here, std::vector<Delivery>& batch,
                           std::vector<JoinPtr>& joins) {
  workers_[here]->touched.clear();
  for (Delivery& d : batch) deliver(here, std::move(d));
  if (joins.empty()) return;
  // A session that moved on meanwhile was forwarded again: its new owner reports too.
  attach_joins(here, joins);
  if (!sessions_.pending()) {
    for (const JoinPtr& j : joins) join_done(j, sessions_.healthy());
    return;
  }
  sessions_.commit([this, joins = std::move(joins)](bool ok) {
    for (const JoinPtr& j : joins) join_done(j, ok);
  });
}

void Broker::deliver(std::size_t here, Delivery&& d) {
  Worker& w = *workers_[here];
  const std::size_t owner = d.session->owner();
  if (owner == here) {
    // The member's clean session ended while the message was on its way from another worker.
    if (d.share != 0 && d.session->discarded() && !d.session->persistent()) {
      redispatch(here, d.share, d.message);
      return;
    }
    if (d.check_acl && !may_receive(here, *d.session, d.message->topic)) return;
    d.session->deliver(d.message, d.qos, false, w.counters, d.share);
    return;
  }
  if (d.session->persistent() && sessions_.persists() &&
      std::find(w.touched.begin(), w.touched.end(), owner) == w.touched.end()) {
    w.touched.push_back(owner);
  }
  w.outbox[owner].push_back(std::move(d));
  schedule_flush(here);
}

bool Broker::may_receive(std::size_t here, const Session& session, std::string_view topic) {
  if (access_->may_receive(here, Principal{session.client_id(), session.username()}, topic)) {
    return true;
  }
  workers_[here]->counters.acl_deliver_denied.add();
  return false;
}

void Broker::schedule_flush(std::size_t here) {
  Worker& w = *workers_[here];
  if (w.outbox_scheduled) return;
  w.outbox_scheduled = true;
  executor_.post(here, [this, here] { flush_outbox(here); });
}

void Broker::flush_outbox(std::size_t here) {
  Worker& w = *workers_[here];
  w.outbox_scheduled = false;
  for (std::size_t target = 0; target < w.outbox.size(); ++target) {
    if (w.outbox[target].empty() && w.outbox_joins[target].empty()) continue;
    const std::size_t size = w.outbox[target].size();
    executor_.post(target, [this, target, batch = std::move(w.outbox[target]),
                            joins = std::move(w.outbox_joins[target])]() mutable {
      deliver_batch(target, batch, joins);
    });
    // One allocation for the next batch rather than one per doubling; capped so that a burst
    // does not stay reserved.
    w.outbox[target] = {};
    w.outbox[target].reserve(std::min<std::size_t>(size, kOutboxReserve));
    w.outbox_joins[target] = {};
  }
  if (!w.remote_outbox.empty()) cluster_->forward(std::exchange(w.remote_outbox, {}));
}

BrokerStats Broker::stats() {
  BrokerStats s;
  {
    std::lock_guard lock(registry_mu_);
    s.sessions = registry_.size();
  }
  s.subscriptions = static_cast<std::size_t>(std::max<std::int64_t>(0, subscription_count_.load()));
  s.retained = retained_.size();
  s.routes = route_count_.load(std::memory_order_relaxed);
  return s;
}

// --- administration ---

void Broker::on_owner(SessionPtr session, std::function<void(const SessionPtr&)> fn) {
  const std::size_t owner = session->owner();
  executor_.post(owner, [this, owner, session = std::move(session), fn = std::move(fn)]() mutable {
    if (session->owner() != owner) {
      on_owner(std::move(session), std::move(fn));  // taken over meanwhile: follow it
      return;
    }
    fn(session);
  });
}

void Broker::inspect_sessions(std::function<void(std::vector<SessionInfo>)> done) {
  std::vector<SessionPtr> all;
  {
    std::lock_guard lock(registry_mu_);
    all.reserve(registry_.size());
    all.assign(registry_.begin(), registry_.end());
  }
  if (all.empty()) {
    done({});
    return;
  }
  struct Gather {
    std::mutex mu;
    std::vector<SessionInfo> infos;
    std::size_t remaining;
    std::function<void(std::vector<SessionInfo>)> done;
  };
  auto g = std::make_shared<Gather>();
  g->remaining = all.size();
  g->done = std::move(done);
  for (SessionPtr& s : all) {
    on_owner(std::move(s), [g](const SessionPtr& session) {
      SessionInfo info;
      const bool live = !session->discarded();
      if (live) {
        info.client_id = session->client_id();
        info.persistent = session->persistent();
        if (const Connection* c = session->connection()) {
          info.connected = true;
          info.peer = c->peer();
        }
        info.queued = session->queued_count();
        info.inflight = session->inflight_count();
        for (const auto& [filter, qos] : session->subscriptions()) {
          info.subscriptions.emplace_back(filter, qos);
        }
      }
      std::lock_guard lock(g->mu);
      if (live) g->infos.push_back(std::move(info));
      if (--g->remaining == 0) g->done(std::move(g->infos));
    });
  }
}

void Broker::kick(const std::string& client_id, std::function<void(bool)> done) {
  SessionPtr session;
  {
    std::lock_guard lock(registry_mu_);
    auto it = registry_.find(std::string_view(client_id));
    if (it != registry_.end()) session = *it;
  }
  if (!session) {
    done(false);
    return;
  }
  on_owner(std::move(session), [done = std::move(done)](const SessionPtr& s) {
    Connection* c = s->discarded() ? nullptr : s->connection();
    if (c != nullptr) c->close("kicked through the admin API");
    done(c != nullptr);
  });
}

namespace {
void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;  // UTF-8 passes through: client ids are valid UTF-8 (the codec checks)
    }
  }
  out += '"';
}
}  // namespace

void Broker::client_event(const Connection& conn, bool connected) {
  if (event_prefix_.empty()) return;
  // One topic level per client: characters that would split it or act as wildcards become '_'.
  std::string id = conn.client_id();
  for (char& ch : id) {
    if (ch == '/' || ch == '+' || ch == '#') ch = '_';
  }
  const std::string topic =
      event_prefix_ + "clients/" + id + (connected ? "/connected" : "/disconnected");
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  std::string payload = "{\"client_id\":";
  append_json_string(payload, conn.client_id());
  payload += ",\"peer\":";
  append_json_string(payload, conn.peer());
  payload += ",\"timestamp_ms\":" + std::to_string(now_ms) + "}";
  publish(make_message(topic, payload, QoS::kAtMostOnce, false));
}

}  // namespace meshmq::core
