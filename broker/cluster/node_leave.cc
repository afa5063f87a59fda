// Graceful stop: hand persistent sessions over, then tell every peer to withdraw this node's
// routes; and the other side, a peer that announces it is leaving.
#include <spdlog/spdlog.h>

#include "broker/cluster/node_impl.h"

namespace meshmq::cluster {

// This node stops: its persistent sessions move to peers first (their routes with them), then
// every peer that has our routes withdraws them and acknowledges (RouteAck).
void ClusterNode::Impl::leave(std::function<void()> done) {
  std::unique_lock lock(mu);
  if (stopping || leaving || departing) {
    deferred.push_back(std::move(done));
    run_deferred(lock);
    return;
  }
  departing = true;
  sessions.depart(Clock::now() + handover_budget,
                  [this, done = std::move(done)]() mutable { send_leave(std::move(done)); });
  run_deferred(lock);
}

void ClusterNode::Impl::send_leave(std::function<void()> done) {
  std::unique_lock lock(mu);
  if (stopping) {
    deferred.push_back(std::move(done));
    run_deferred(lock);
    return;
  }
  leaving = true;
  pb::Frame f;
  f.mutable_leave()->set_seq(++route_seq);
  Waiter w{route_seq,
           {},
           {},
           Clock::now() + std::chrono::seconds(cfg.route_ack_timeout_s),
           "leaving anyway"};
  for (auto& [n, p] : peers) {
    if (!p.out_ready) continue;
    p.out->write(f);
    w.peers.push_back(n);
  }
  spdlog::info("cluster: leaving: told {} peer(s) to withdraw this node's {} routes",
               w.peers.size(), local.size());
  w.done = [done = std::move(done)] {
    spdlog::info("cluster: leave done");
    done();
  };
  if (w.peers.empty()) {
    deferred.push_back(std::move(w.done));
  } else {
    waiters.push_back(std::move(w));
  }
  run_deferred(lock);
}

void ClusterNode::Impl::on_leave(Peer& p, const std::shared_ptr<InStream>& s, std::uint64_t seq) {
  detector.left(p.name, Clock::now());
  // As for a node that is down: publishers stop waiting for it once QoS 1/2 forwards are in
  // the durable outbox, and the routes of its persistent sessions stay so that messages for
  // them are queued until it returns (a rolling restart loses none).
  for (PendingForward& f : p.pending) queue_durably(p, f);
  auto diff = remote.withdraw_transient(p.id);
  spdlog::info("cluster: node {} is leaving: {} routes withdrawn", p.name, diff.size());
  apply_routes(s, std::move(diff), seq);
  check_waiters(Clock::now());
}

}  // namespace meshmq::cluster
