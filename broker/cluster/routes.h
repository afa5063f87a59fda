// Route bookkeeping of the cluster layer, free of gRPC so it is unit-tested directly.
//
// LocalRoutes: the filters this node's clients use, refcounted per (filter, local session), so
// peers hear one route per (filter, node) however many local clients share it.
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

 private:
  std::unordered_map<std::string, std::size_t> refs_;
  RouteDigest digest_;
};

class RemoteRoutes {
 public:
  // The node's whole filter set (a snapshot) replaces what was known of it.
  std::vector<core::RemoteRoute> replace(core::NodeId node,
                                         const std::vector<std::string>& filters);
  std::vector<core::RemoteRoute> apply(core::NodeId node, const std::vector<std::string>& added,
                                       const std::vector<std::string>& removed);
  // Everything the node announced, withdrawn (it is down beyond the grace time).
  std::vector<core::RemoteRoute> withdraw(core::NodeId node);
  RouteDigest digest(core::NodeId node) const;
  std::size_t size(core::NodeId node) const;

 private:
  struct Set {
    std::unordered_set<std::string> filters;
    RouteDigest digest;
  };
  std::unordered_map<core::NodeId, Set> nodes_;
};

}  // namespace meshmq::cluster
