// The core's view of the cluster (implemented by broker/cluster). The core tells it which filters
// local clients use and hands it publishes that match other nodes' routes; the cluster layer calls
// back into Broker::apply_remote_routes() and Broker::deliver_remote(). No gRPC here: the core
// links without it and a single node runs with no ClusterLink at all.
//
// Threading: every method may be called from any worker at any time and must not block on I/O;
// callbacks (`done`) may run on any thread, the core posts what it needs back to its workers.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "broker/core/message.h"
#include "broker/core/session.h"

namespace meshmq::core {

// A remote node, as numbered by the cluster layer (stable for the life of the process).
using NodeId = std::uint32_t;

// A node this node picked to serve a shared subscription group (see core/shared_groups.h): it
// delivers the message to one local member of `group` ("$share/g/f"). `only`: the node has no
// ordinary route matching the message, so it delivers to that group (or groups) only.
struct SharedPick {
  NodeId node;
  std::string group;
  bool only;
};

struct RemoteForward {
  MessagePtr message;
  std::vector<NodeId> nodes;   // every remote node with a matching route or a pick, each once
  std::function<void()> done;  // QoS 1/2 only (else empty): all nodes accepted or queued it
  std::vector<SharedPick> shared = {};  // usually empty
};

// The answer to ClusterLink::claim_session.
struct SessionClaim {
  // A connection with the same client id on another node won the arbitration: refuse this one.
  bool lost = false;
  // The persistent session another node gave up for this connection (never with clean session).
  std::optional<Session::Snapshot> handed_over;
  std::string from;  // the node it came from, for the log
  // Set with handed_over: the core runs it (on any thread) once the session is durable here and
  // its routes are in on the nodes that are up; the old node then lets go of its copy.
  std::function<void()> installed = nullptr;
};

class ClusterLink {
 public:
  virtual ~ClusterLink() = default;

  // One call per (filter, local session) change (a shared subscription's filter is the whole
  // "$share/g/f", so peers learn the group and this node's membership); the cluster layer refcounts
  // so that peers see one route per (filter, node). `done` runs once the peers that are up have
  // applied every route change made so far (or after cluster.route_ack_timeout): the SUBACK waits
  // for it.
  virtual void local_route_added(const std::string& filter, std::function<void()> done) = 0;
  virtual void local_route_removed(const std::string& filter) = 0;
  // The same for a persistent session's subscription: peers keep the route while this node is
  // down and queue QoS 1/2 messages for it durably until it returns.
  virtual void local_durable_route_added(const std::string& filter, std::function<void()> done) {
    local_route_added(filter, std::move(done));
  }
  virtual void local_durable_route_removed(const std::string& filter) {
    local_route_removed(filter);
  }

  // Publishes for remote subscribers, batched by the calling worker once per event-loop pass.
  virtual void forward(std::vector<RemoteForward>&& batch) = 0;

  // A retained message was set (or cleared: empty payload) by a local client.
  virtual void retained_changed(const MessagePtr& message) = 0;

  // A client connects with this id (README "Sessions across nodes"): the nodes that hold a
  // session for it close its connection and hand the session over (with clean_session, discard
  // it). `done` runs exactly once, on any thread, possibly inline. The core puts the client's
  // session into its registry before `done` returns: claims for the same id arriving meanwhile
  // wait until then, so they find it.
  virtual void claim_session(const std::string& client_id, bool clean_session,
                             std::function<void(SessionClaim)> done) {
    (void)client_id, (void)clean_session;
    done({});
  }
};

// One remote route change, applied to every worker's route trie.
struct RemoteRoute {
  std::string filter;
  NodeId node;
  bool add;
};

}  // namespace meshmq::core
