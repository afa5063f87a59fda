#include "broker/cluster/session_link.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <unordered_set>

#include "broker/cluster/routes.h"
#include "broker/core/broker.h"

namespace meshmq::cluster {

namespace {

using Clock = SessionClaims::Clock;
using core::QoS;

std::uint64_t wall_ms() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

ClaimVersion from_pb(const pb::ClaimVersion& v) {
  return {v.counter(), v.node()};
}

void to_pb(const ClaimVersion& v, pb::ClaimVersion* out) {
  out->set_counter(v.counter);
  out->set_node(v.node);
}

QoS qos_of(std::uint32_t q) {
  return static_cast<QoS>(std::min<std::uint32_t>(q, 2));
}

void put_message(const core::Session::Outbound& o, pb::SessionMessage* m) {
  m->set_topic(std::string(o.message->topic));
  m->set_payload(std::string(o.message->payload));
  m->set_message_qos(static_cast<std::uint32_t>(o.message->qos));
  m->set_qos(static_cast<std::uint32_t>(o.qos));
  m->set_retain(o.retain);
}

core::Session::Outbound get_message(const pb::SessionMessage& m) {
  return {core::make_message(m.topic(), m.payload(), qos_of(m.message_qos()), m.retain()),
          qos_of(m.qos()), m.retain()};
}

// A session handed over must not expire before its client attaches on the new node.
constexpr std::chrono::seconds kMinExpiry{10};

}  // namespace

SessionLink::SessionLink(std::string self, core::Broker& broker, std::mutex& mu, Deferred& deferred,
                         Host& host, std::chrono::seconds timeout, std::chrono::seconds confirm)
    : self_(self),
      broker_(broker),
      mu_(mu),
      deferred_(deferred),
      host_(host),
      timeout_(timeout),
      confirm_(confirm),
      claims_(std::move(self)) {}

template <class F>
void SessionLink::locked(F&& fn) {
  std::unique_lock lock(mu_);
  fn();
  Deferred todo = std::move(deferred_);
  deferred_.clear();
  lock.unlock();
  for (auto& f : todo) f();
}

pb::SessionState SessionLink::encode(const core::Session::Snapshot& s) {
  pb::SessionState out;
  out.set_client_id(s.client_id);
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(s.expires_at - Clock::now());
  out.set_expires_in_ms(static_cast<std::uint64_t>(std::max<std::int64_t>(left.count(), 0)));
  for (const auto& [filter, qos] : s.subscriptions) {
    auto* sub = out.add_subscriptions();
    sub->set_filter(filter);
    sub->set_qos(static_cast<std::uint32_t>(qos));
  }
  for (const auto& f : s.inflight) {
    auto* m = out.add_inflight();
    m->set_seq(f.seq);
    m->set_packet_id(f.packet_id);
    m->set_awaiting_pubcomp(f.awaiting_pubcomp);
    put_message(f.out, m);
  }
  for (const auto& q : s.queue) {
    auto* m = out.add_queue();
    m->set_seq(q.seq);
    put_message(q.out, m);
  }
  for (std::uint16_t id : s.inbound_qos2) out.add_inbound_qos2(id);
  return out;
}

core::Session::Snapshot SessionLink::decode(const pb::SessionState& s) {
  core::Session::Snapshot out;
  out.client_id = s.client_id();
  out.expires_at = Clock::now() + std::max<std::chrono::milliseconds>(
                                      std::chrono::milliseconds(s.expires_in_ms()), kMinExpiry);
  for (const auto& sub : s.subscriptions())
    out.subscriptions.emplace(sub.filter(), qos_of(sub.qos()));
  for (const auto& m : s.inflight()) {
    out.inflight.push_back(
        {static_cast<std::uint16_t>(m.packet_id()), get_message(m), m.awaiting_pubcomp(), m.seq()});
  }
  for (const auto& m : s.queue()) out.queue.push_back({m.seq(), get_message(m)});
  for (std::uint32_t id : s.inbound_qos2())
    out.inbound_qos2.push_back(static_cast<std::uint16_t>(id));
  return out;
}

void SessionLink::claim(const std::string& client_id, bool clean,
                        std::function<void(core::SessionClaim)> done, const std::string& only) {
  locked([&] {
    const auto now = Clock::now();
    std::vector<std::string> peers = host_.ready_peers();
    if (!only.empty()) std::erase_if(peers, [&](const std::string& p) { return p != only; });
    const std::uint64_t id = claims_.begin(client_id, clean, peers, now + timeout_, wall_ms());
    dones_[id] = std::move(done);
    if (!peers.empty()) {
      pb::Frame f;
      auto* c = f.mutable_session_claim();
      c->set_claim_id(id);
      c->set_client_id(client_id);
      c->set_clean_session(clean);
      to_pb(claims_.version(id), c->mutable_version());
      for (const std::string& p : peers) host_.send(p, f);
    }
    finish_ready(now);
  });
}

void SessionLink::finish_ready(Clock::time_point now) {
  for (SessionClaims::Finished& f : claims_.take_finished(now)) {
    auto done = std::move(dones_[f.id]);
    dones_.erase(f.id);
    deferred_.push_back([this, f = std::move(f), done = std::move(done)]() mutable {
      if (!f.silent.empty()) {
        spdlog::warn(
            "cluster: client {}: no answer from {} within cluster.takeover_timeout; a session "
            "it holds stays there until the nodes next link up",
            f.client_id, f.silent.front());
      }
      std::optional<core::Session::Snapshot> carried;
      core::SessionClaim claim;
      claim.lost = f.lost;
      claim.from = f.from;
      if (f.lost) {
        spdlog::info("cluster: client {}: a connection with the same id on another node won",
                     f.client_id);
        carried = std::move(f.session);
      } else if (!f.clean && f.session) {
        claim.handed_over = std::move(f.session);
        claim.installed = confirm_to(f.from, f.id);
      }
      // The core registers the client's session before this returns (ClusterLink contract).
      if (done) done(std::move(claim));
      locked([&] {
        claims_.settle(f.id);
        if (carried) {
          carried_[f.client_id] = {std::move(*carried), Clock::now(), f.from, f.id};
        }
        retry_waiting(f.client_id);
      });
    });
  }
}

void SessionLink::retry_waiting(const std::string& client_id) {
  if (claims_.busy(client_id)) return;
  auto it = waiting_.find(client_id);
  if (it == waiting_.end()) return;
  std::vector<Waiting> w = std::move(it->second);
  waiting_.erase(it);
  // Highest first: it gets the session, the others then find they lost to it.
  std::sort(w.begin(), w.end(), [](const Waiting& a, const Waiting& b) {
    return from_pb(b.claim.version()) < from_pb(a.claim.version());
  });
  for (Waiting& x : w) on_claim(x.peer, x.claim, std::move(x.stream));
}

void SessionLink::on_claim(const std::string& peer, const pb::SessionClaim& c,
                           std::shared_ptr<InStream> stream) {
  const ClaimVersion v = from_pb(c.version());
  const auto verdict = claims_.on_remote_claim(c.client_id(), v);
  const std::uint64_t id = c.claim_id();
  switch (verdict.verdict) {
    case SessionClaims::Verdict::kConflict: {
      pb::Frame f;
      f.mutable_session_answer()->set_claim_id(id);
      f.mutable_session_answer()->set_result(pb::SessionAnswer::CONFLICT);
      to_pb(verdict.ours, f.mutable_session_answer()->mutable_version());
      stream->write(std::move(f));
      return;
    }
    case SessionClaims::Verdict::kDefer:
      waiting_[c.client_id()].push_back({peer, c, std::move(stream)});
      return;
    case SessionClaims::Verdict::kHandOver:
      break;
  }
  std::optional<Carried> carried;
  if (auto it = carried_.find(c.client_id()); it != carried_.end()) {
    carried = std::move(it->second);
    carried_.erase(it);
  }
  const bool clean = c.clean_session();
  deferred_.push_back([this, peer, id, clean, client = c.client_id(), carried = std::move(carried),
                       stream = std::move(stream), v, leaving = leaving_]() mutable {
    broker_.hand_over(
        client, clean, peer,
        [this, peer, client, id, clean, carried = std::move(carried), stream = std::move(stream),
         v](std::optional<core::Session::Snapshot> state, std::uint64_t ghost) mutable {
          // Recorded before the answer leaves: the confirmation cannot overtake it.
          locked([&] {
            if (ghost != 0) {
              // A claim id the peer used before a restart: that ghost is not confirmed now.
              auto [it, fresh] = moving_.try_emplace(MoveKey{peer, id});
              if (!fresh) finish_ghost(it->second.ghost, it->second.client_id, false, {});
              it->second = {client, ghost, Clock::now() + confirm_};
            } else if (!state && !clean && carried) {
              state = std::move(carried->session);
              relays_[{peer, id}] = {carried->from, carried->claim_id, Clock::now()};
            } else if (!state && departing_.erase(client) > 0) {
              check_departed(Clock::now());  // gone meanwhile: nothing to hand over
            }
          });
          pb::Frame f;
          auto* a = f.mutable_session_answer();
          a->set_claim_id(id);
          to_pb(v, a->mutable_version());
          a->set_result(state ? pb::SessionAnswer::HANDED_OVER : pb::SessionAnswer::NONE);
          if (state) *a->mutable_session() = encode(*state);
          stream->write(std::move(f));
        },
        leaving ? core::Broker::HandOverMode::kLeaving : core::Broker::HandOverMode::kGhost);
  });
}

void SessionLink::on_answer(const std::string& peer, const pb::SessionAnswer& a) {
  std::optional<core::Session::Snapshot> session;
  if (a.result() == pb::SessionAnswer::HANDED_OVER) session = decode(a.session());
  const bool had = session.has_value();
  // A second copy for one claim (two nodes held the id): it joins the first, not dropped.
  const bool second = had && claims_.has_session(a.claim_id());
  if ((!claims_.on_answer(a.claim_id(), peer, a.result() == pb::SessionAnswer::CONFLICT,
                          from_pb(a.version()), std::move(session)) ||
       second) &&
      had) {
    // Its claim timed out (the client got a session here meanwhile, or its CONNECT is gone):
    // the state joins the session the id has here, or is parked (README "Sessions across nodes").
    spdlog::warn("cluster: session {} handed over by {} {}: added here", a.session().client_id(),
                 peer, second ? "as a second copy" : "after its claim timed out");
    deferred_.push_back([this, state = decode(a.session()), peer,
                         installed = confirm_to(peer, a.claim_id())]() mutable {
      broker_.absorb(std::move(state), peer, std::move(installed));
    });
  }
  finish_ready(Clock::now());
}

pb::Frame SessionLink::list_frame() {
  pb::Frame f;
  auto* list = f.mutable_session_list();
  for (std::string& id : broker_.client_ids()) {
    auto* o = list->add_sessions();
    to_pb(claims_.held_version(id), o->mutable_version());
    o->set_client_id(std::move(id));
  }
  return f;
}

void SessionLink::on_list(const std::string& peer, const pb::SessionList& list,
                          std::shared_ptr<InStream> stream) {
  std::vector<std::string> ids = broker_.client_ids();
  const std::unordered_set<std::string> held(ids.begin(), ids.end());
  for (const pb::SessionOwner& o : list.sessions()) {
    const ClaimVersion theirs = from_pb(o.version());
    claims_.observe(theirs);
    if (!held.contains(o.client_id()) || claims_.busy(o.client_id())) continue;
    if (!SessionClaims::loses(claims_.held_version(o.client_id()), theirs)) continue;
    spdlog::warn(
        "cluster: client {} has a session on node {} too (after a partition?); theirs is newer, "
        "ours is closed and its messages go to it",
        o.client_id(), peer);
    deferred_.push_back([this, client = o.client_id(), peer, stream] {
      // No ghost: the winner's routes came in the same full sync, before this list.
      broker_.hand_over(
          client, false, peer,
          [this, peer, stream](std::optional<core::Session::Snapshot> state, std::uint64_t) {
            if (state) send_messages(peer, std::move(*state), stream);
          },
          core::Broker::HandOverMode::kNoGhost);
    });
  }
}

void SessionLink::peer_gone(const std::string& peer) {
  claims_.peer_gone(peer);
  finish_ready(Clock::now());
}

void SessionLink::clear() {
  dones_.clear();
  waiting_.clear();
  carried_.clear();
  moving_.clear();
  relays_.clear();
  departed_ = nullptr;
}

void SessionLink::tick(Clock::time_point now) {
  finish_ready(now);
  for (auto it = moving_.begin(); it != moving_.end();) {
    if (now < it->second.deadline) {
      ++it;
      continue;
    }
    spdlog::warn("cluster: session {}: node {} did not confirm taking it within {}s",
                 it->second.client_id, it->first.first, confirm_.count());
    const Moving m = it->second;
    it = moving_.erase(it);
    finish_ghost(m.ghost, m.client_id, false, {});
  }
  check_departed(now);
  if (now < next_prune_) return;
  next_prune_ = now + std::chrono::seconds(30);
  std::vector<std::string> ids = broker_.client_ids();
  claims_.prune(now, std::chrono::seconds(60), {ids.begin(), ids.end()});
  std::erase_if(relays_,
                [&](const auto& e) { return now - e.second.at >= std::chrono::seconds(60); });
  std::erase_if(carried_, [&](const auto& e) {
    if (now - e.second.at < std::chrono::seconds(60)) return false;
    spdlog::warn(
        "cluster: session {} handed over to a claim that lost; no winner asked for it: "
        "dropped",
        e.first);
    return true;
  });
}

}  // namespace meshmq::cluster

namespace meshmq::cluster {

std::function<void()> SessionLink::confirm_to(const std::string& peer, std::uint64_t claim_id) {
  return [this, peer, claim_id] {
    locked([&] {
      pb::Frame f;
      f.mutable_session_installed()->set_claim_id(claim_id);
      host_.send(peer, std::move(f));
    });
  };
}

void SessionLink::on_installed(const std::string& peer, const pb::SessionInstalled& i) {
  const MoveKey key{peer, i.claim_id()};
  if (auto r = relays_.find(key); r != relays_.end()) {
    // We only passed this session on (a lost claim carried it): its old node hears it from us.
    pb::Frame f;
    f.mutable_session_installed()->set_claim_id(r->second.claim_id);
    f.mutable_session_installed()->set_holder(i.holder().empty() ? peer : i.holder());
    host_.send(r->second.to, std::move(f));
    relays_.erase(r);
    return;
  }
  auto it = moving_.find(key);
  if (it == moving_.end()) return;  // confirmed after we gave up waiting: it stayed here
  const Moving m = it->second;
  moving_.erase(it);
  finish_ghost(m.ghost, m.client_id, true, i.holder().empty() ? peer : i.holder());
}

void SessionLink::finish_ghost(std::uint64_t ghost, const std::string& client_id, bool installed,
                               const std::string& to) {
  deferred_.push_back([this, ghost, client_id, installed, to] {
    broker_.finish_handover(
        ghost, installed,
        [this, client_id, installed, to](std::optional<core::Session::Snapshot> tail) {
          spdlog::debug("cluster: session {}: handover to node {} {}", client_id, to,
                        installed ? "confirmed" : "not confirmed");
          locked([&] {
            if (tail) {
              // What still reached the ghost before the new node's routes were everywhere.
              spdlog::info(
                  "cluster: session {}: {} messages that arrived during the handover sent on "
                  "to node {}",
                  client_id, tail->queue.size(), to);
              host_.send(to, merge_frame(*tail));
            }
            if (departing_.erase(client_id) > 0) ++(installed ? departed_count_ : kept_count_);
            check_departed(Clock::now());
          });
        });
  });
}

void SessionLink::send_messages(const std::string& peer, core::Session::Snapshot state,
                                const std::shared_ptr<InStream>& stream) {
  // The winner's subscriptions stand; only what was queued for the client goes over.
  state.subscriptions.clear();
  if (state.queue.empty() && state.inflight.empty()) return;
  spdlog::info("cluster: session {}: {} messages sent to node {}, which keeps the session",
               state.client_id, state.queue.size() + state.inflight.size(), peer);
  stream->write(merge_frame(state));
}

pb::Frame SessionLink::merge_frame(const core::Session::Snapshot& state) {
  pb::Frame f;
  *f.mutable_session_merge()->mutable_session() = encode(state);
  return f;
}

void SessionLink::on_merge(const std::string& peer, const pb::SessionMerge& m) {
  deferred_.push_back([this, peer, state = decode(m.session())]() mutable {
    broker_.absorb(std::move(state), peer);
  });
}

void SessionLink::on_park(const std::string& peer, const pb::SessionPark& park) {
  spdlog::info("cluster: node {} is stopping: taking {} of its sessions", peer,
               park.client_ids_size());
  for (const std::string& id : park.client_ids()) {
    // A claim asking the stopping node only: a session the client took to a third node
    // meanwhile stays there. A CONNECT for the id elsewhere asks us too, so the versions still
    // decide between that claim and this one.
    deferred_.push_back([this, id, peer] {
      claim(
          id, false,
          [this](core::SessionClaim c) {
            if (!c.lost && c.handed_over) {
              broker_.absorb(std::move(*c.handed_over), c.from, std::move(c.installed));
            }
          },
          peer);
    });
  }
}

void SessionLink::depart(Clock::time_point deadline, std::function<void()> done) {
  leaving_ = true;
  const std::vector<std::string> peers = host_.handover_peers();
  const std::vector<std::string> ids = broker_.client_ids(true);
  if (ids.empty() || peers.empty()) {
    if (!ids.empty()) {
      spdlog::warn(
          "cluster: no peer up to take this node's {} persistent sessions: they stay on "
          "disk here",
          ids.size());
    }
    deferred_.push_back(std::move(done));
    return;
  }
  // Rendezvous hashing: every session goes to one peer, spread evenly, the same on every try.
  std::map<std::string, pb::Frame> parks;
  for (const std::string& id : ids) {
    const std::string* best = nullptr;
    std::uint64_t best_score = 0;
    for (const std::string& p : peers) {
      const std::uint64_t score = filter_hash(p + '\0' + id);
      if (best == nullptr || score > best_score) best = &p, best_score = score;
    }
    parks[*best].mutable_session_park()->add_client_ids(id);
    departing_.insert(id);
  }
  for (auto& [p, f] : parks) {
    spdlog::info("cluster: leaving: handing {} persistent sessions over to node {}",
                 f.session_park().client_ids_size(), p);
    host_.send(p, std::move(f));
  }
  departed_ = std::move(done);
  depart_deadline_ = deadline;
  departed_count_ = kept_count_ = 0;
}

void SessionLink::check_departed(Clock::time_point now) {
  if (!departed_ || (!departing_.empty() && now < depart_deadline_)) return;
  if (departing_.empty() && kept_count_ == 0) {
    spdlog::info("cluster: leaving: {} persistent sessions handed over", departed_count_);
  } else {
    spdlog::warn(
        "cluster: leaving: {} persistent sessions handed over, {} not confirmed in time{}{}: "
        "those stay on disk here",
        departed_count_, departing_.size() + kept_count_, departing_.empty() ? "" : " (e.g. ",
        departing_.empty() ? "" : *departing_.begin() + ")");
    departing_.clear();
  }
  deferred_.push_back(std::exchange(departed_, nullptr));
}

}  // namespace meshmq::cluster
