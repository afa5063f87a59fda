// Route bookkeeping of the cluster layer, free of gRPC so it is unit-tested directly.
//
// LocalRoutes: the filters this node's clients use, refcounted per (filter, local session), so
// peers hear one route per (filter, node) however many local clients share it. A filter is also
// "durable" while a persistent session uses it: peers keep such routes while the node is down and
// queue QoS 1/2 forwards for it on disk (broker/cluster/outbox.h) instead of dropping them.
// RemoteRoutes: per remote node, the filters it announced; every change returns the diff the
// broker's route tries need.
// A digest (order-independent hash + count) of a filter set lets two nodes check cheaply that
// they agree (anti-entropy) before resending a full snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "broker/core/cluster_link.h"

namespace meshmq::cluster {

struct RouteDigest {
  std::uint64_t hash = 0;
  std::uint64_t count = 0;
  bool operator==(const RouteDigest&) const = default;
};

std::uint64_t filter_hash(std::string_view filter);  // FNV-1a 64: the same on every node

class LocalRoutes {
 public:
  // True when the filter is new to this node (a route to announce).
  bool add(const std::string& filter);
  // True when the last local user of the filter went away (a route to withdraw). Removing a
  // filter that is not there is ignored.
  bool remove(const std::string& filter);
  std::vector<std::string> filters() const;
  RouteDigest digest() const { return digest_; }
  std::size_t size() const { return refs_.size(); }

  // The same for one session, with whether that session is persistent: `route` when the filter
  // is new to / gone from this node, `durable` when its first / last persistent user came / went.
  struct Change {
    bool route = false;
    bool durable = false;
  };
  Change add(const std::string& filter, bool durable);
  Change remove(const std::string& filter, bool durable);
  std::vector<std::string> durable_filters() const;

 private:
  std::unordered_map<std::string, std::size_t> refs_;
  std::unordered_map<std::string, std::size_t> durable_refs_;
  RouteDigest digest_;
};

class RemoteRoutes {
 public:
  // The node's whole filter set (a snapshot) replaces what was known of it.
  std::vector<core::RemoteRoute> replace(core::NodeId node,
                                         const std::vector<std::string>& filters);
  std::vector<core::RemoteRoute> apply(core::NodeId node, const std::vector<std::string>& added,
                                       const std::vector<std::string>& removed);
  // Which of the node's filters are durable (a persistent session of the node uses them): the
  // whole set from a snapshot, or changes from a delta.
  void set_durable(core::NodeId node, const std::vector<std::string>& durable);
  void change_durable(core::NodeId node, const std::vector<std::string>& added,
                      const std::vector<std::string>& removed);
  bool durable(core::NodeId node, const std::string& filter) const;
  // Everything the node announced, withdrawn (it is down beyond the grace time).
  std::vector<core::RemoteRoute> withdraw(core::NodeId node);
  // Only its routes that are not durable: messages for its persistent sessions keep being routed
  // to it (and queued) while it is down.
  std::vector<core::RemoteRoute> withdraw_transient(core::NodeId node);
  RouteDigest digest(core::NodeId node) const;
  std::size_t size(core::NodeId node) const;
  std::vector<std::string> durable_filters(core::NodeId node) const;

  // Every change to a node's durable set since the last call, by whichever method made it, so
  // that the node can mirror the sets on disk (broker/cluster/durable_routes.h).
  struct DurableChange {
    core::NodeId node;
    std::string filter;
    bool durable;  // entered (true) or left the node's durable set
  };
  std::vector<DurableChange> take_durable_changes() { return std::exchange(durable_changes_, {}); }

 private:
  struct Set {
    std::unordered_set<std::string> filters;
    std::unordered_set<std::string> durable;  // a subset of filters
    RouteDigest digest;
  };
  void durable_add(core::NodeId node, Set& set, const std::string& filter);
  void durable_erase(core::NodeId node, Set& set, const std::string& filter);

  std::unordered_map<core::NodeId, Set> nodes_;
  std::vector<DurableChange> durable_changes_;
};

}  // namespace meshmq::cluster
