// What the HTTP port serves:
//   GET /metrics   Prometheus text (no token: scrapers and the load balancer need no secret)
//   GET /healthz   200 while the process runs
//   GET /readyz    200 when listeners are up, storage is open, the cluster is joined and the node
//                  is not stopping; 503 with the failing checks otherwise
//   /api/v1/...    the admin API, JSON, with "Authorization: Bearer <admin.token>":
//     GET    /api/v1/clients                 sessions (connected and offline persistent)
//     GET    /api/v1/clients/{id}            one session, 404 if none
//     DELETE /api/v1/clients/{id}            kick: close the client's connection
//     GET    /api/v1/subscriptions[?client_id=ID]
//     GET    /api/v1/retained[?filter=F&limit=N]   default filter '#', limit 1000
//     GET    /api/v1/cluster                 cluster status (this node alone until clustered)
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "broker/core/broker.h"
#include "broker/core/metrics.h"
#include "broker/core/retained_store.h"
#include "broker/ops/health.h"
#include "broker/ops/http_server.h"

namespace meshmq::ops {

struct AdminContext {
  core::Broker& broker;
  core::RetainedStore& retained;
  const core::MetricsRegistry& metrics;
  const Health& health;
  std::string token;  // empty: the admin API refuses every request
  std::string node;
  // The cluster replaces this with its view (peers, their state, routes); called on the HTTP
  // thread.
  std::function<nlohmann::json()> cluster_status;
};

HttpResponse handle_http(AdminContext& ctx, const HttpRequest& request);

// "a%2Fb+c" -> "a/b c" (query values); nullopt on a malformed escape.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space);

}  // namespace meshmq::ops
