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
  std::erase_if(set.durable, [&](const std::string& f) { return !set.filters.contains(f); });
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
      set.durable.erase(f);
      diff.push_back({f, node, false});
    }
  }
  return diff;
}

void RemoteRoutes::set_durable(core::NodeId node, const std::vector<std::string>& durable) {
  Set& set = nodes_[node];
  set.durable.clear();
  for (const std::string& f : durable) {
    if (set.filters.contains(f)) set.durable.insert(f);
  }
}

void RemoteRoutes::change_durable(core::NodeId node, const std::vector<std::string>& added,
                                  const std::vector<std::string>& removed) {
  Set& set = nodes_[node];
  for (const std::string& f : added) {
    if (set.filters.contains(f)) set.durable.insert(f);
  }
  for (const std::string& f : removed) set.durable.erase(f);
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

std::size_t RemoteRoutes::size(core::NodeId node) const {
  auto it = nodes_.find(node);
  return it == nodes_.end() ? 0 : it->second.filters.size();
}

}  // namespace meshmq::cluster
