// One node's membership in the cluster: the gRPC server other nodes dial, the streams this node
// dials, route gossip, forwarding and retained-message replication (see proto/cluster.proto and
// README "Cluster"). Implements the core's ClusterLink; gRPC stays inside node*.cc.
//
// Threading: gRPC's callback threads and one ticker thread (heartbeats, failure detection,
// dialling, DNS, anti-entropy) share the cluster state under one mutex. Broker workers only call
// the ClusterLink methods, which take that mutex once per subscription change or per batch of
// forwards, never per delivered message.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "broker/config/config.h"
#include "broker/core/cluster_link.h"

namespace meshmq::storage {
class Db;
}

namespace meshmq::core {
class Broker;
class RetainedStore;
}  // namespace meshmq::core

namespace meshmq::cluster {

class ClusterNode final : public core::ClusterLink {
 public:
  // `db` holds the durable outbox for down nodes (null with storage.backend=memory).
  ClusterNode(const config::Config& config, core::Broker& broker, core::RetainedStore& retained,
              storage::Db* db = nullptr);
  ~ClusterNode() override;

  // Listens on cluster.bind:cluster.port (throws std::runtime_error if it cannot) and starts
  // joining the seeds / DNS name.
  void start();
  // Closes every stream and the listener. Idempotent.
  void stop();

  void local_route_added(const std::string& filter, std::function<void()> done) override;
  void local_route_removed(const std::string& filter) override;
  void local_durable_route_added(const std::string& filter, std::function<void()> done) override;
  void local_durable_route_removed(const std::string& filter) override;
  void forward(std::vector<core::RemoteForward>&& batch) override;
  void retained_changed(const core::MessagePtr& message) override;
  void claim_session(const std::string& client_id, bool clean_session,
                     std::function<void(core::SessionClaim)> done) override;

  // Peers this node has heard of, by state (for meshmq_cluster_peers and readiness).
  struct PeerCounts {
    std::size_t up = 0;
    std::size_t down = 0;
    std::size_t left = 0;  // stopped gracefully (sent Leave)
  };
  PeerCounts peer_counts() const;

  // Graceful stop: tells every peer that this node leaves; they withdraw its routes at once and
  // no longer count it as a member that can fail. `done` runs (on a cluster thread) once every
  // peer acknowledged, or after cluster.route_ack_timeout. Later local route changes stay local.
  void leave(std::function<void()> done);
  // Last step before the workers stop: forwards arriving from now on are neither delivered nor
  // acknowledged (they could no longer reach a worker), so the peers keep them queued.
  void hold_forwards();

  // For /readyz: a peer link came up, or there is no one else to join, or cluster.join_timeout
  // passed without reaching anyone. Stays true once true.
  bool joined() const;

  // Forward traffic since start (counters) and the current backlog, for /metrics.
  struct Traffic {
    std::uint64_t sent = 0;        // messages queued to peers (one per target node)
    std::uint64_t sent_bytes = 0;  // topic + payload
    std::uint64_t received = 0;    // delivered from peers (retries excluded)
    std::uint64_t received_bytes = 0;
    std::uint64_t dropped_max_pending = 0;  // peer's queue at cluster.max_pending
    std::uint64_t dropped_no_peer = 0;      // target unknown or node stopping
    std::uint64_t duplicates = 0;  // retried forwards already delivered (not delivered again)
    std::uint64_t pending = 0;     // forwards awaiting acknowledgement, all peers
    std::uint64_t outbox = 0;      // of those, held in the durable outbox for down nodes
    std::uint64_t dropped_outbox_full = 0;  // for a down node whose outbox was full
  };
  struct MemberStatus {
    std::string name;
    std::string address;
    std::string state;              // up, down, leaving (sent Leave, still connected), left
    std::size_t routes = 0;         // filters it announced
    std::size_t forward_queue = 0;  // forwards to it awaiting acknowledgement
    std::uint64_t forward_dropped = 0;
    bool link_out = false;  // our stream to it is up
    bool link_in = false;   // its stream to us is up
  };
  struct Status {
    std::string name;
    std::string address;
    bool joined = false;
    bool leaving = false;
    std::size_t local_routes = 0;
    Traffic traffic;
    std::vector<MemberStatus> members;
  };
  Status status() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshmq::cluster
