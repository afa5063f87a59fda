#include "broker/cluster/routes.h"

namespace meshmq::cluster {

std::uint64_t filter_hash(std::string_view filter) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : filter) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool LocalRoutes::add(const std::string& filter) {
  if (++refs_[filter] != 1) return false;
  digest_.hash ^= filter_hash(filter);
  digest_.count += 1;
  return true;
}

bool LocalRoutes::remove(const std::string& filter) {
  auto it = refs_.find(filter);
  if (it == refs_.end() || --it->second != 0) return false;
  refs_.erase(it);
  digest_.hash ^= filter_hash(filter);
  digest_.count -= 1;
  return true;
}

LocalRoutes::Change LocalRoutes::add(const std::string& filter, bool durable) {
  Change c{add(filter), false};
  if (durable) c.durable = ++durable_refs_[filter] == 1;
  return c;
}

LocalRoutes::Change LocalRoutes::remove(const std::string& filter, bool durable) {
  if (!refs_.contains(filter)) return {};
  Change c;
  if (durable) {
    auto it = durable_refs_.find(filter);
    if (it != durable_refs_.end() && --it->second == 0) {
      durable_refs_.erase(it);
      c.durable = true;
    }
  }
  c.route = remove(filter);
  return c;
}

std::vector<std::string> LocalRoutes::durable_filters() const {
  std::vector<std::string> out;
  out.reserve(durable_refs_.size());
  for (const auto& [f, n] : durable_refs_) out.push_back(f);
  return out;
}

std::vector<std::string> LocalRoutes::filters() const {
  std::vector<std::string> out;
  out.reserve(refs_.size());
  for (const auto& [f, n] : refs_) out.push_back(f);
  return out;
}

std::vector<core::RemoteRoute> RemoteRoutes::replace(core::NodeId node,
                                                     const std::vector<std::string>& filters) {
  Set& set = nodes_[node];
  std::unordered_set<std::string> next(filters.begin(), filters.end());
  std::vector<core::RemoteRoute> diff;
  for (const std::string& f : set.filters) {
    if (!next.contains(f)) diff.push_back({f, node, false});
  }
  for (const std::string& f : next) {
    if (!set.filters.contains(f)) diff.push_back({f, node, true});
  }
  set.digest = {};
  for (const std::string& f : next) set.digest.hash ^= filter_hash(f);
  set.digest.count = next.size();
  set.filters = std::move(next);
  for (auto it = set.durable.begin(); it != set.durable.end();) {
    if (set.filters.contains(*it)) {
      ++it;
      continue;
    }
    durable_changes_.push_back({node, *it, false});
    it = set.durable.erase(it);
  }
  return diff;
}

std::vector<core::RemoteRoute> RemoteRoutes::apply(core::NodeId node,
                                                   const std::vector<std::string>& added,
                                                   const std::vector<std::string>& removed) {
  Set& set = nodes_[node];
  std::vector<core::RemoteRoute> diff;
  for (const std::string& f : added) {
    if (set.filters.insert(f).second) {
      set.digest.hash ^= filter_hash(f);
      set.digest.count += 1;
      diff.push_back({f, node, true});
    }
  }
  for (const std::string& f : removed) {
    if (set.filters.erase(f) != 0) {
      set.digest.hash ^= filter_hash(f);
      set.digest.count -= 1;
      durable_erase(node, set, f);
      diff.push_back({f, node, false});
    }
  }
  return diff;
}

void RemoteRoutes::durable_add(core::NodeId node, Set& set, const std::string& filter) {
  if (set.filters.contains(filter) && set.durable.insert(filter).second) {
    durable_changes_.push_back({node, filter, true});
  }
}

void RemoteRoutes::durable_erase(core::NodeId node, Set& set, const std::string& filter) {
  if (set.durable.erase(filter) != 0) durable_changes_.push_back({node, filter, false});
}

void RemoteRoutes::set_durable(core::NodeId node, const std::vector<std::string>& durable) {
  Set& set = nodes_[node];
  const std::unordered_set<std::string> next(durable.begin(), durable.end());
  std::vector<std::string> gone;
  for (const std::string& f : set.durable) {
    if (!next.contains(f)) gone.push_back(f);
  }
  for (const std::string& f : gone) durable_erase(node, set, f);
  for (const std::string& f : next) durable_add(node, set, f);
}

void RemoteRoutes::change_durable(core::NodeId node, const std::vector<std::string>& added,
                                  const std::vector<std::string>& removed) {
  Set& set = nodes_[node];
  for (const std::string& f : added) durable_add(node, set, f);
  for (const std::string& f : removed) durable_erase(node, set, f);
}

bool RemoteRoutes::durable(core::NodeId node, const std::string& filter) const {
  auto it = nodes_.find(node);
  return it != nodes_.end() && it->second.durable.contains(filter);
}

std::vector<core::RemoteRoute> RemoteRoutes::withdraw(core::NodeId node) {
  return replace(node, {});
}

std::vector<core::RemoteRoute> RemoteRoutes::withdraw_transient(core::NodeId node) {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return {};
  const std::unordered_set<std::string> keep = it->second.durable;
  auto diff = replace(node, {keep.begin(), keep.end()});
  it->second.durable = keep;
  return diff;
}

RouteDigest RemoteRoutes::digest(core::NodeId node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? RouteDigest{} : it->second.digest;
}

std::vector<std::string> RemoteRoutes::durable_filters(core::NodeId node) const {
  auto it = nodes_.find(node);
  if (it == nodes_.end()) return {};
  return {it->second.durable.begin(), it->second.durable.end()};
}

std::size_t RemoteRoutes::size(core::NodeId node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : it->second.filters.size();
}

}  // namespace meshmq::cluster
