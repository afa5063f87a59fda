// One node's membership in the cluster: the gRPC server other nodes dial, the streams this node
// dials, route gossip, forwarding and retained-message replication (see proto/cluster.proto and
// README "Cluster"). Implements the core's ClusterLink; gRPC stays inside node.cc.
//
// Threading: gRPC's callback threads and one ticker thread (heartbeats, failure detection,
// dialling, DNS, anti-entropy) share the cluster state under one mutex. Broker workers only call
// the ClusterLink methods, which take that mutex once per subscription change or per batch of
// forwards, never per delivered message.
#pragma once

#include <memory>

#include "broker/config/config.h"
#include "broker/core/cluster_link.h"

namespace meshmq::core {
class Broker;
class RetainedStore;
}  // namespace meshmq::core

namespace meshmq::cluster {

class ClusterNode final : public core::ClusterLink {
 public:
  ClusterNode(const config::Config& config, core::Broker& broker, core::RetainedStore& retained);
  ~ClusterNode() override;

  // Listens on cluster.bind:cluster.port (throws std::runtime_error if it cannot) and starts
  // joining the seeds / DNS name.
  void start();
  // Closes every stream and the listener. Idempotent.
  void stop();

  void local_route_added(const std::string& filter, std::function<void()> done) override;
  void local_route_removed(const std::string& filter) override;
  void forward(std::vector<core::RemoteForward>&& batch) override;
  void retained_changed(const core::MessagePtr& message) override;

  // Peers this node has heard of, by state (for meshmq_cluster_peers and readiness).
  struct PeerCounts {
    std::size_t up = 0;
    std::size_t down = 0;
  };
  PeerCounts peer_counts() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace meshmq::cluster
