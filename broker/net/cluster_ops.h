// The cluster's part of a node's operations surface: its metrics (peers by state, forward traffic,
// drops, backlog), its readiness check and its admin API status. Kept out of server.cc so the
// server only wires components together.
#pragma once

#include <nlohmann/json.hpp>

#include "broker/cluster/node.h"
#include "broker/core/metrics.h"
#include "broker/ops/admin_api.h"
#include "broker/ops/health.h"

namespace meshmq::net {

// `node` is null on a node running alone: the metrics are still exported (zeros, so dashboards
// and alerts need no special case), /readyz has no cluster check and the admin API answers with
// the single-node status.
void attach_cluster_ops(core::MetricsRegistry& metrics, ops::Health& health,
                        ops::AdminContext& admin, const cluster::ClusterNode* node);

// GET /api/v1/cluster
nlohmann::json cluster_status_json(const cluster::ClusterNode::Status& status);

}  // namespace meshmq::net
