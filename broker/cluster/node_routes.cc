// Route gossip: announcing local route changes, applying peers' snapshots and deltas, the
// SUBACK waiters that wait for RouteAcks, and the durable routes kept on disk.
#include <spdlog/spdlog.h>

#include "broker/cluster/node_impl.h"

namespace meshmq::cluster {

// The routes of other nodes' persistent sessions as this node last knew them: until such a node
// is heard again (it is unknown to the failure detector, so "down"), QoS 1/2 messages for its
// sessions go to the outbox as before this node restarted.
void ClusterNode::Impl::load_durable_routes() {
  std::vector<core::RemoteRoute> diff;
  for (auto& [n, filters] : durable_routes->load()) {
    Peer& p = peer(n);
    auto d = remote.replace(p.id, filters);
    remote.set_durable(p.id, filters);
    diff.insert(diff.end(), d.begin(), d.end());
  }
  remote.take_durable_changes();  // already on disk
  if (!diff.empty()) broker.apply_remote_routes(std::move(diff), nullptr);
}

// Mirrors on disk what the last frame changed in other nodes' durable sets.
void ClusterNode::Impl::store_durable_changes() {
  auto changes = remote.take_durable_changes();
  if (changes.empty()) return;
  for (const RemoteRoutes::DurableChange& c : changes) {
    durable_routes->record(by_id[c.node], c.filter, c.durable);
  }
  durable_routes->commit();
}

pb::Frame ClusterNode::Impl::snapshot_frame() {
  pb::Frame f;
  auto* s = f.mutable_snapshot();
  s->set_seq(route_seq);
  for (std::string& filter : local.filters()) s->add_filters(std::move(filter));
  for (std::string& filter : local.durable_filters()) s->add_durable(std::move(filter));
  return f;
}

void ClusterNode::Impl::check_waiters(Clock::time_point now) {
  for (auto it = waiters.begin(); it != waiters.end();) {
    std::erase_if(it->peers, [&](const std::string& n) {
      auto p = peers.find(n);
      return p == peers.end() || !p->second.out_ready || p->second.route_acked >= it->seq ||
             detector.state(n) == PeerState::kLeft;
    });
    if (it->peers.empty() || now >= it->deadline) {
      if (!it->peers.empty()) {
        spdlog::warn("cluster: route change {} not acknowledged by {} within {}s; {}", it->seq,
                     it->peers.front(), cfg.route_ack_timeout_s, it->on_timeout);
      }
      deferred.push_back(std::move(it->done));
      it = waiters.erase(it);
    } else {
      ++it;
    }
  }
}

void ClusterNode::Impl::apply_routes(const std::shared_ptr<InStream>& s,
                                     std::vector<core::RemoteRoute> diff, std::uint64_t seq) {
  // Acknowledged once every worker's route trie has the change: a publish made after the
  // origin's SUBACK then finds the route on any worker here.
  broker.apply_remote_routes(std::move(diff), [s, seq] {
    pb::Frame ack;
    ack.mutable_route_ack()->set_seq(seq);
    s->write(std::move(ack));
  });
}

void ClusterNode::Impl::local_route_added(const std::string& filter, bool durable,
                                          std::function<void()> done) {
  std::unique_lock lock(mu);
  const LocalRoutes::Change c = local.add(filter, durable);
  if ((c.route || c.durable) && !leaving) {
    pb::Frame f;
    f.mutable_delta()->set_seq(++route_seq);
    if (c.route) f.mutable_delta()->add_added(filter);
    if (c.durable) f.mutable_delta()->add_durable_added(filter);
    write_to_peers(f);
  }
  Waiter w{
      route_seq, {}, std::move(done), Clock::now() + std::chrono::seconds(cfg.route_ack_timeout_s)};
  for (auto& [n, p] : peers) {
    if (p.out_ready && p.route_acked < route_seq) w.peers.push_back(n);
  }
  if (w.peers.empty() || stopping || leaving) {
    deferred.push_back(std::move(w.done));
  } else {
    waiters.push_back(std::move(w));
  }
  run_deferred(lock);
}

void ClusterNode::Impl::local_route_removed(const std::string& filter, bool durable) {
  std::lock_guard lock(mu);
  const LocalRoutes::Change c = local.remove(filter, durable);
  if ((!c.route && !c.durable) || leaving) return;  // a left node's routes are gone already
  pb::Frame f;
  f.mutable_delta()->set_seq(++route_seq);
  if (c.durable) f.mutable_delta()->add_durable_removed(filter);
  if (c.route) f.mutable_delta()->add_removed(filter);
  write_to_peers(f);
}

void ClusterNode::Impl::write_to_peers(const pb::Frame& f) {
  for (auto& [n, p] : peers) {
    if (p.out_ready) p.out->write(f);
  }
}

}  // namespace meshmq::cluster
