// The gRPC side of the node: accepting and dialling links, the Hello/Welcome handshake and
// dispatch of the frames that arrive on either kind of stream.
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker/cluster/node_impl.h"

namespace meshmq::cluster {

namespace {

constexpr std::uint32_t kProtocolVersion = 1;

std::string proof(const std::string& secret, const std::string& nonce) {
  if (secret.empty()) return {};
  std::string data = secret + nonce;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(md), len);
}

}  // namespace

// Closing or cancelling a stream may run its reactions (and so on_done, which takes mu) inline.
void ClusterNode::Impl::later_close(const std::shared_ptr<InStream>& s, grpc::StatusCode code,
                                    std::string why) {
  deferred.push_back([s, code, why = std::move(why)] { s->close(grpc::Status(code, why)); });
}

void ClusterNode::Impl::later_cancel(const std::shared_ptr<OutStream>& s) {
  deferred.push_back([s] { s->cancel(); });
}

void ClusterNode::Impl::run_deferred(std::unique_lock<std::mutex>& lock) {
  auto todo = std::move(deferred);
  deferred.clear();
  lock.unlock();
  for (auto& fn : todo) fn();
}

pb::Frame ClusterNode::Impl::hello_frame() {
  pb::Frame f;
  auto* h = f.mutable_hello();
  h->set_protocol_version(kProtocolVersion);
  h->mutable_node()->set_name(name);
  h->mutable_node()->set_address(advertise);
  h->mutable_node()->set_incarnation(incarnation);
  std::string nonce(16, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(nonce.data()), static_cast<int>(nonce.size()));
  h->set_nonce(nonce);
  h->set_secret_proof(proof(cfg.secret, nonce));
  for (auto& m : members_info()) *h->add_members() = std::move(m);
  return f;
}

grpc::ServerBidiReactor<pb::Frame, pb::Frame>* ClusterNode::Impl::Link(
    grpc::CallbackServerContext* ctx) {
  auto s = std::make_shared<InStream>(*this, ctx->peer());
  s->start();
  return s.get();
}

void ClusterNode::Impl::on_frame(InStream& s, const pb::Frame& f) {
  std::unique_lock lock(mu);
  if (stopping) return;
  if (f.has_hello()) {
    accept_hello(s, f.hello());
    run_deferred(lock);
    return;
  }
  if (s.node.empty()) {
    later_close(s.shared_from_this(), grpc::StatusCode::FAILED_PRECONDITION,
                "first frame must be Hello");
    run_deferred(lock);
    return;
  }
  Peer& p = peer(s.node);
  if (p.in.get() != &s) return;  // superseded by a newer stream from the same node
  detector.heard(p.name, Clock::now());
  auto self = s.shared_from_this();
  // A leaving node's routes stay withdrawn whatever it still sends.
  if (detector.state(p.name) == PeerState::kLeft && (f.has_snapshot() || f.has_delta())) return;
  switch (f.body_case()) {
    case pb::Frame::kLeave:
      on_leave(p, self, f.leave().seq());
      run_deferred(lock);
      return;
    case pb::Frame::kSnapshot: {
      std::vector<std::string> filters(f.snapshot().filters().begin(),
                                       f.snapshot().filters().end());
      auto diff = remote.replace(p.id, filters);
      remote.set_durable(p.id, {f.snapshot().durable().begin(), f.snapshot().durable().end()});
      store_durable_changes();
      apply_routes(self, std::move(diff), f.snapshot().seq());
      break;
    }
    case pb::Frame::kDelta: {
      std::vector<std::string> added(f.delta().added().begin(), f.delta().added().end());
      std::vector<std::string> removed(f.delta().removed().begin(), f.delta().removed().end());
      auto diff = remote.apply(p.id, added, removed);
      remote.change_durable(
          p.id, {f.delta().durable_added().begin(), f.delta().durable_added().end()},
          {f.delta().durable_removed().begin(), f.delta().durable_removed().end()});
      store_durable_changes();
      apply_routes(self, std::move(diff), f.delta().seq());
      break;
    }
    case pb::Frame::kDigest:
      if (remote.digest(p.id) != RouteDigest{f.digest().hash(), f.digest().count()}) {
        spdlog::info("cluster: route digest of {} differs; asking for a snapshot", p.name);
        pb::Frame r;
        r.mutable_resync();
        s.write(std::move(r));
      }
      break;
    case pb::Frame::kPublish: {
      // Workers about to stop: not delivered, not acknowledged; the sender keeps them queued
      // for this node's next process (same name).
      if (forwards_held) break;
      std::uint64_t last = 0;
      for (const pb::Publish& m : f.publish().messages()) {
        last = m.id();
        if (!dedup.accept(p.name, p.incarnation, m.id())) {
          ++duplicates;
          continue;
        }
        ++traffic.received;
        traffic.received_bytes += m.topic().size() + m.payload().size();
        broker.deliver_remote(
            core::make_message(m.topic(), m.payload(),
                               static_cast<core::QoS>(std::min<std::uint32_t>(m.qos(), 2)), false),
            p.id, {m.shared().begin(), m.shared().end()}, m.shared_only());
      }
      pb::Frame ack;
      ack.mutable_publish_ack()->set_up_to(last);
      s.write(std::move(ack));
      break;
    }
    case pb::Frame::kRetained:
      for (const pb::RetainedMessage& m : f.retained().messages()) apply_retained(m);
      break;
    case pb::Frame::kMembers:
      learn_members(f.members().members());
      break;
    case pb::Frame::kSessionClaim:
      sessions.on_claim(p.name, f.session_claim(), self);
      break;
    case pb::Frame::kSessionList:
      sessions.on_list(p.name, f.session_list(), self);
      break;
    case pb::Frame::kSessionPark:
      sessions.on_park(p.name, f.session_park());
      break;
    case pb::Frame::kSessionInstalled:
      sessions.on_installed(p.name, f.session_installed());
      break;
    case pb::Frame::kSessionMerge:
      sessions.on_merge(p.name, f.session_merge());
      break;
    default:
      break;
  }
  run_deferred(lock);
}

void ClusterNode::Impl::accept_hello(InStream& s, const pb::Hello& h) {
  auto reject = [&](const std::string& why) {
    spdlog::warn("cluster: refusing link from {} ({}): {}", s.peer(), h.node().name(), why);
    later_close(s.shared_from_this(), grpc::StatusCode::PERMISSION_DENIED, why);
  };
  if (h.protocol_version() != kProtocolVersion) {
    return reject("protocol version " + std::to_string(h.protocol_version()) + ", expected " +
                  std::to_string(kProtocolVersion));
  }
  const std::string expected = proof(cfg.secret, h.nonce());
  if (expected.size() != h.secret_proof().size() ||
      CRYPTO_memcmp(expected.data(), h.secret_proof().data(), expected.size()) != 0) {
    return reject("wrong cluster.secret");
  }
  const pb::NodeInfo& who = h.node();
  pb::Frame welcome;
  welcome.mutable_welcome()->mutable_node()->set_name(name);
  welcome.mutable_welcome()->mutable_node()->set_address(advertise);
  welcome.mutable_welcome()->mutable_node()->set_incarnation(incarnation);
  for (auto& m : members_info()) *welcome.mutable_welcome()->add_members() = std::move(m);
  if (who.name() == name) {
    if (who.incarnation() != incarnation) {
      return reject("another node already uses the name " + name + " (set node.name)");
    }
    s.write(std::move(welcome));  // our own seed: the dialer sees its own name and stops
    return;
  }
  Peer& p = peer(who.name());
  const bool restarted = p.incarnation != 0 && p.incarnation != who.incarnation();
  p.incarnation = who.incarnation();
  p.address = who.address();
  add_target(who.address());
  auto t = targets.find(who.address());
  if (t != targets.end()) t->second.name = who.name();
  if (p.in && p.in.get() != &s) {
    later_close(p.in, grpc::StatusCode::ABORTED, "superseded by a newer link");
  }
  p.in = s.shared_from_this();
  s.node = who.name();
  if (restarted) detector.rejoined(p.name, Clock::now());
  broker.set_node_up(p.id, true);
  if (detector.heard(p.name, Clock::now()) || restarted) {
    spdlog::info("cluster: node {} ({}) joined{}", p.name, p.address,
                 restarted ? " after a restart" : "");
    if (p.out && restarted) later_cancel(p.out);  // redial: its sync state is gone
    pb::Frame news;
    for (auto& m : members_info()) *news.mutable_members()->add_members() = std::move(m);
    for (auto& [n, other] : peers) {
      if (n != p.name && other.out_ready) other.out->write(news);
    }
  }
  learn_members(h.members());
  s.write(std::move(welcome));
  wake.notify_all();  // dial it back now
}

void ClusterNode::Impl::on_done(InStream& s) {
  std::lock_guard lock(mu);
  if (s.node.empty()) return;
  auto it = peers.find(s.node);
  if (it != peers.end() && it->second.in.get() == &s) it->second.in.reset();
}

void ClusterNode::Impl::on_frame(OutStream& s, const pb::Frame& f) {
  std::unique_lock lock(mu);
  if (stopping) return;
  if (f.has_welcome()) {
    on_welcome(s, f.welcome());
    run_deferred(lock);
    return;
  }
  auto t = targets.find(s.address());
  if (t == targets.end() || t->second.name.empty()) return;
  auto pit = peers.find(t->second.name);
  if (pit == peers.end() || pit->second.out.get() != &s) return;
  Peer& p = pit->second;
  detector.heard(p.name, Clock::now());
  switch (f.body_case()) {
    case pb::Frame::kRouteAck:
      p.route_acked = std::max(p.route_acked, f.route_ack().seq());
      check_waiters(Clock::now());
      break;
    case pb::Frame::kPublishAck: {
      const std::uint64_t up_to = f.publish_ack().up_to();
      while (!p.pending.empty() && p.pending.front().id <= up_to) {
        count_accept(p.pending.front());
        if (p.pending.front().outbox_key) outbox->remove(p.name, p.pending.front().outbox_key);
        p.pending.pop_front();
      }
      break;
    }
    case pb::Frame::kResync:
      s.write(snapshot_frame());
      break;
    case pb::Frame::kSessionAnswer:
      sessions.on_answer(p.name, f.session_answer());
      break;
    case pb::Frame::kSessionMerge:  // a partition's losing copy, answering our SessionList
      sessions.on_merge(p.name, f.session_merge());
      break;
    default:
      break;
  }
  run_deferred(lock);
}

void ClusterNode::Impl::on_welcome(OutStream& s, const pb::Welcome& w) {
  auto t = targets.find(s.address());
  if (t == targets.end()) return;
  Target& target = t->second;
  const std::string& n = w.node().name();
  target.name = n;
  if (n == name) {
    target.self = true;  // one of our seeds is this node
    later_cancel(s.shared_from_this());
    return;
  }
  Peer& p = peer(n);
  if (p.out && p.out.get() != &s && p.out_ready) {
    later_cancel(s.shared_from_this());  // another address of a node we already reach
    return;
  }
  target.backoff = std::chrono::milliseconds(100);
  p.out = s.shared_from_this();
  p.out_ready = true;
  p.route_acked = 0;
  if (p.address.empty()) p.address = w.node().address();
  const bool back = w.node().incarnation() != p.incarnation && detector.rejoined(n, Clock::now());
  joined = true;
  broker.set_node_up(p.id, true);
  if (detector.heard(n, Clock::now()) || back) {
    spdlog::info("cluster: node {} ({}) joined", n, p.address);
  }
  learn_members(w.members());
  // Full sync on every new stream: routes, retained messages, then the forwards it has not
  // acknowledged (it drops those it already delivered).
  s.write(snapshot_frame());
  s.write(retained_snapshot_frame());
  send_forwards(p, p.pending.begin());
  s.write(sessions.list_frame());  // duplicates from a partition resolve (README)
  spdlog::info("cluster: link to {} at {} up ({} routes, {} queued forwards)", n, s.address(),
               local.size(), p.pending.size());
}

void ClusterNode::Impl::on_done(OutStream& s, const grpc::Status& status) {
  std::unique_lock lock(mu);
  auto t = targets.find(s.address());
  if (t != targets.end() && t->second.stream.get() == &s) t->second.stream.reset();
  if (t != targets.end() && !t->second.name.empty()) {
    auto p = peers.find(t->second.name);
    if (p != peers.end() && p->second.out.get() == &s) {
      p->second.out.reset();
      p->second.out_ready = false;
      sessions.peer_gone(p->first);
      if (!stopping) {
        spdlog::info("cluster: link to {} at {} closed: {}", p->first, s.address(),
                     status.error_message());
      }
      check_waiters(Clock::now());
    }
  }
  run_deferred(lock);
}

}  // namespace meshmq::cluster
