#include "broker/net/cluster_ops.h"

namespace meshmq::net {

namespace {

void collect(const cluster::ClusterNode* node, core::Snapshot& out) {
  cluster::ClusterNode::PeerCounts peers;
  cluster::ClusterNode::Traffic t;
  if (node != nullptr) {
    peers = node->peer_counts();
    t = node->status().traffic;
  }
  auto d = [](auto v) { return static_cast<double>(v); };
  out.push_back(core::Family::gauge("meshmq_cluster_peers", "Cluster peers by state",
                                    {{{{"state", "up"}}, d(peers.up)},
                                     {{{"state", "down"}}, d(peers.down)},
                                     {{{"state", "left"}}, d(peers.left)}}));
  out.push_back(core::Family::counter(
      "meshmq_cluster_forwarded_messages_total",
      "Publishes forwarded between nodes: out = queued to a peer (one per target node), in = "
      "delivered from a peer",
      {{{{"direction", "out"}}, d(t.sent)}, {{{"direction", "in"}}, d(t.received)}}));
  out.push_back(core::Family::counter(
      "meshmq_cluster_forwarded_bytes_total", "Topic and payload bytes of the forwarded publishes",
      {{{{"direction", "out"}}, d(t.sent_bytes)}, {{{"direction", "in"}}, d(t.received_bytes)}}));
  out.push_back(core::Family::counter(
      "meshmq_cluster_forward_dropped_total",
      "Forwards not delivered: max_pending (the peer's queue is full), no_peer (target unknown or "
      "node stopping), duplicate (a retry the receiver had already delivered), outbox_full (the "
      "durable outbox for a down node held cluster.outbox_max_messages)",
      {{{{"reason", "max_pending"}}, d(t.dropped_max_pending)},
       {{{"reason", "no_peer"}}, d(t.dropped_no_peer)},
       {{{"reason", "duplicate"}}, d(t.duplicates)},
       {{{"reason", "outbox_full"}}, d(t.dropped_outbox_full)}}));
  out.push_back(core::Family::gauge(
      "meshmq_cluster_forward_pending_messages",
      "Forwards awaiting a peer's acknowledgement (all peers; at most cluster.max_pending each)",
      d(t.pending)));
  out.push_back(
      core::Family::gauge("meshmq_cluster_outbox_messages",
                          "QoS 1/2 forwards for down nodes held in the durable outbox (at most "
                          "cluster.outbox_max_messages per node)",
                          d(t.outbox)));
}

}  // namespace

void attach_cluster_ops(core::MetricsRegistry& metrics, ops::Health& health,
                        ops::AdminContext& admin, const cluster::ClusterNode* node) {
  metrics.add_collector([node](core::Snapshot& out) { collect(node, out); });
  if (node == nullptr) return;
  health.add_check("cluster", [node] { return node->joined(); });
  admin.cluster_status = [node] { return cluster_status_json(node->status()); };
}

nlohmann::json cluster_status_json(const cluster::ClusterNode::Status& s) {
  using nlohmann::json;
  json peers = json::array();
  for (const auto& m : s.members) {
    peers.push_back({{"name", m.name},
                     {"address", m.address},
                     {"state", m.state},
                     {"routes", m.routes},
                     {"forward_queue", m.forward_queue},
                     {"forward_dropped", m.forward_dropped},
                     {"link_out", m.link_out},
                     {"link_in", m.link_in}});
  }
  return {{"node", s.name},
          {"address", s.address},
          {"clustered", true},
          {"joined", s.joined},
          {"leaving", s.leaving},
          {"local_routes", s.local_routes},
          {"forward_queue", s.traffic.pending},
          {"peers", std::move(peers)}};
}

}  // namespace meshmq::net
