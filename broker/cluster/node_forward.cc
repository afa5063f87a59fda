// Forwarding publishes to peers: the per-peer pending queue, acknowledgement joins, and the
// durable outbox for nodes that are down.
#include <spdlog/spdlog.h>

#include <map>

#include "broker/cluster/node_impl.h"

namespace meshmq::cluster {

void ClusterNode::Impl::count_accept(PendingForward& p) {
  if (!p.join) return;
  if (--p.join->left == 0 && p.join->done) deferred.push_back(std::move(p.join->done));
  p.join.reset();
}

// A forward for a node that is down: a QoS 1/2 one is also written to the durable outbox and
// counts as accepted once it is on disk; anything else counts at once. False when the outbox
// is full (the forward is dropped and counted; the publisher is not held up by it).
bool ClusterNode::Impl::queue_durably(Peer& p, PendingForward& f) {
  if (f.outbox_key != 0 || f.message->qos == core::QoS::kAtMostOnce) {
    count_accept(f);
    return true;
  }
  auto join = std::exchange(f.join, nullptr);
  f.outbox_key = outbox->add(p.name, f.message, f.shared, [this, join] {
    std::unique_lock lock(mu);
    if (stopping) return;  // the workers that would send the PUBACK are gone
    if (join && --join->left == 0 && join->done) deferred.push_back(std::move(join->done));
    run_deferred(lock);
  });
  if (f.outbox_key != 0) return true;
  f.join = join;
  count_accept(f);
  return false;
}

void ClusterNode::Impl::send_forwards(Peer& p, std::deque<PendingForward>::iterator from) {
  pb::Frame f;
  auto* batch = f.mutable_publish();
  for (auto it = from; it != p.pending.end(); ++it) {
    auto* m = batch->add_messages();
    m->set_id(it->id);
    m->set_topic(std::string(it->message->topic));
    m->set_payload(std::string(it->message->payload));
    m->set_qos(static_cast<std::uint32_t>(it->message->qos));
    it->shared.to_proto(*m);
  }
  if (batch->messages_size() > 0) p.out->write(std::move(f));
}

void ClusterNode::Impl::forward(std::vector<core::RemoteForward>&& batch) {
  std::unique_lock lock(mu);
  std::map<NodeId, std::size_t> first_new;  // per peer: index of its first new pending entry
  for (core::RemoteForward& f : batch) {
    std::shared_ptr<Join> join;
    if (f.done) join = std::make_shared<Join>(Join{f.nodes.size(), std::move(f.done)});
    for (NodeId id : f.nodes) {
      auto n = by_id.find(id);
      Peer* p = n == by_id.end() || stopping ? nullptr : &peers[n->second];
      PendingForward pf{0, f.message, join, 0, SharedFor::of(f, id)};
      if (p == nullptr || p->pending.size() >= cfg.max_pending) {
        ++(p == nullptr ? traffic.dropped_no_peer : traffic.dropped_max_pending);
        if (p && p->dropped++ % 1000 == 0) {
          spdlog::warn(
              "cluster: {} forwards to {} unacknowledged (cluster.max_pending); "
              "dropped {} so far",
              p->pending.size(), p->name, p->dropped);
        }
        count_accept(pf);
        continue;
      }
      const bool down = detector.state(p->name) != PeerState::kUp;
      if (down && !queue_durably(*p, pf)) continue;  // outbox full: dropped (counted)
      pf.id = p->next_forward_id++;
      ++traffic.sent;
      traffic.sent_bytes += f.message->topic.size() + f.message->payload.size();
      first_new.try_emplace(id, p->pending.size());
      p->pending.push_back(std::move(pf));
    }
  }
  for (auto& [id, index] : first_new) {
    Peer& p = peers[by_id[id]];
    if (p.out_ready) send_forwards(p, p.pending.begin() + static_cast<std::ptrdiff_t>(index));
  }
  run_deferred(lock);
}

}  // namespace meshmq::cluster
