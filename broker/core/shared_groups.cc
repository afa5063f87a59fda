#include "broker/core/shared_groups.h"

#include <algorithm>

namespace meshmq::core {

ShareKind parse_share(std::string_view full, ShareSpec& out) {
  std::string_view rest;
  std::string_view group;
  if (full.starts_with("$queue/")) {
    group = "$queue";
    rest = full.substr(7);
  } else if (full.starts_with("$share/")) {
    rest = full.substr(7);
    const std::size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return ShareKind::kInvalid;  // "$share/g": no filter
    group = rest.substr(0, slash);
    rest = rest.substr(slash + 1);
    if (group.empty() || group.find_first_of("+#") != std::string_view::npos) {
      return ShareKind::kInvalid;
    }
  } else {
    return ShareKind::kNotShared;
  }
  if (rest.empty()) return ShareKind::kInvalid;
  out = {group, rest};
  return ShareKind::kShared;
}

std::optional<ShareStrategy> parse_strategy(std::string_view name) {
  if (name == "random") return ShareStrategy::kRandom;
  if (name == "round_robin") return ShareStrategy::kRoundRobin;
  if (name == "sticky") return ShareStrategy::kSticky;
  if (name == "local_first") return ShareStrategy::kLocalFirst;
  return std::nullopt;
}

std::uint32_t ShareIds::id(const std::string& key) {
  std::lock_guard lock(mu_);
  auto [it, inserted] = ids_.try_emplace(key, 0);
  if (inserted) {
    keys_.push_back(key);
    it->second = static_cast<std::uint32_t>(keys_.size());
  }
  return it->second;
}

std::string ShareIds::key(std::uint32_t id) const {
  std::lock_guard lock(mu_);
  return id == 0 || id > keys_.size() ? std::string() : keys_[id - 1];
}

std::size_t Picker::pick(ShareStrategy strategy, const std::vector<std::uintptr_t>& ids,
                         std::mt19937_64& rng) {
  const std::size_t n = ids.size();
  switch (strategy) {
    case ShareStrategy::kRandom:
      return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
    case ShareStrategy::kSticky: {
      if (has_sticky_) {
        auto it = std::find(ids.begin(), ids.end(), sticky_);
        if (it != ids.end()) return static_cast<std::size_t>(it - ids.begin());
      }
      const std::size_t i = std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
      sticky_ = ids[i];
      has_sticky_ = true;
      return i;
    }
    case ShareStrategy::kRoundRobin:
    case ShareStrategy::kLocalFirst:
      break;
  }
  return static_cast<std::size_t>(next_++ % n);
}

SharedGroup& SharedGroups::group(const std::string& key) {
  auto [it, inserted] = groups_.try_emplace(key);
  if (inserted) {
    ShareSpec spec;
    parse_share(key, spec);
    it->second = std::make_unique<SharedGroup>();
    it->second->key = key;
    it->second->filter = std::string(spec.filter);
    trie_.insert(it->second->filter, it->second.get(), 0);
  }
  return *it->second;
}

void SharedGroups::drop_if_unused(const std::string& key) {
  auto it = groups_.find(key);
  if (it == groups_.end() || !it->second->members.empty() || !it->second->nodes.empty()) return;
  trie_.erase(it->second->filter, it->second.get());
  groups_.erase(it);
}

void SharedGroups::add_member(const std::string& key, std::uint32_t id,
                              SharedGroup::Member member) {
  SharedGroup& g = group(key);
  g.id = id;
  for (SharedGroup::Member& m : g.members) {
    if (m.session == member.session) {
      m = std::move(member);
      return;
    }
  }
  g.members.push_back(std::move(member));
}

void SharedGroups::remove_member(const std::string& key, const SessionPtr& session) {
  SharedGroup* g = find(key);
  if (g == nullptr) return;
  std::erase_if(g->members, [&](const SharedGroup::Member& m) { return m.session == session; });
  drop_if_unused(key);
}

void SharedGroups::add_node(const std::string& key, NodeId node) {
  SharedGroup& g = group(key);
  auto it = std::lower_bound(g.nodes.begin(), g.nodes.end(), node);
  if (it == g.nodes.end() || *it != node) g.nodes.insert(it, node);
}

void SharedGroups::remove_node(const std::string& key, NodeId node) {
  SharedGroup* g = find(key);
  if (g == nullptr) return;
  std::erase(g->nodes, node);
  drop_if_unused(key);
}

SharedGroup* SharedGroups::find(std::string_view key) {
  auto it = groups_.find(std::string(key));
  return it == groups_.end() ? nullptr : it->second.get();
}

std::optional<NodeId> SharedGroups::pick_node(SharedGroup& g, ShareStrategy strategy) {
  const bool local_online = std::any_of(g.members.begin(), g.members.end(),
                                        [](const auto& m) { return m.session->online(); });
  if (local_online && strategy == ShareStrategy::kLocalFirst) return kThisNode;
  ids_.clear();
  if (local_online) ids_.push_back(kThisNode);
  for (NodeId n : g.nodes) {
    if (!std::binary_search(down_.begin(), down_.end(), n)) ids_.push_back(n);
  }
  if (ids_.empty()) {
    // Only offline persistent members here, or nodes that are down: one of them keeps the
    // message for later rather than drop it.
    if (!g.members.empty()) return kThisNode;
    for (NodeId n : g.nodes) ids_.push_back(n);
    if (ids_.empty()) return std::nullopt;
  }
  if (ids_.size() == 1) return static_cast<NodeId>(ids_[0]);
  return static_cast<NodeId>(ids_[g.node_picker.pick(strategy, ids_, rng_)]);
}

void SharedGroups::set_node_down(NodeId node, bool down) {
  auto it = std::lower_bound(down_.begin(), down_.end(), node);
  const bool present = it != down_.end() && *it == node;
  if (down && !present) down_.insert(it, node);
  if (!down && present) down_.erase(it);
}

const SharedGroup::Member* SharedGroups::pick_member(SharedGroup& g, ShareStrategy strategy) {
  if (g.members.empty()) return nullptr;
  ids_.clear();
  index_.clear();
  for (std::size_t i = 0; i < g.members.size(); ++i) {
    if (g.members[i].session->online()) {
      ids_.push_back(reinterpret_cast<std::uintptr_t>(g.members[i].session.get()));
      index_.push_back(i);
    }
  }
  if (ids_.empty()) {  // all offline: one of them queues it
    for (std::size_t i = 0; i < g.members.size(); ++i) {
      ids_.push_back(reinterpret_cast<std::uintptr_t>(g.members[i].session.get()));
      index_.push_back(i);
    }
  }
  return &g.members[index_[g.member_picker.pick(strategy, ids_, rng_)]];
}

}  // namespace meshmq::core
