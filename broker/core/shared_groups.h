// Shared subscriptions: `$share/<group>/<filter>` and `$queue/<filter>` (a group named "$queue").
// Each matching message goes to ONE member of a (group, filter) pair, cluster-wide.
//
// Two levels of choice, so that exactly one place decides each step:
//  1. The node that received the PUBLISH from a client picks a node among itself (when it has a
//     member) and the remote nodes that announced the group's route (`$share/g/f`, one route per
//     (group filter, node) like any filter), and forwards the message to that node only, naming
//     the group.
//  2. The chosen node picks one of its local members. A node never picks for a message another
//     node forwarded without naming the group, so no message reaches two members.
//
// Like the subscription trie, every worker holds its own SharedGroups replica (applied by the
// same posts as the trie), so choosing a member on the publish path takes no lock. Strategy state
// (round-robin position, sticky choice, random generator) is per worker: round robin is exact
// for the publishes one worker handles and balanced overall; sticky may stick to a different
// member on each worker.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "broker/core/cluster_link.h"
#include "broker/core/message.h"
#include "broker/core/session.h"
#include "broker/topic/subscription_trie.h"

namespace meshmq::core {

enum class ShareKind { kNotShared, kShared, kInvalid };

struct ShareSpec {
  std::string_view group;
  std::string_view filter;  // the real topic filter (what is matched and what the ACL checks)
};

// Splits a subscription filter. kInvalid: empty group, a group with '+' or '#', or no filter
// (these get SUBACK 0x80). `out` is set for kShared only and views into `full`.
ShareKind parse_share(std::string_view full, ShareSpec& out);
inline bool is_share(std::string_view filter) {
  return filter.starts_with("$share/") || filter.starts_with("$queue/");
}

enum class ShareStrategy { kRandom, kRoundRobin, kSticky, kLocalFirst };
std::optional<ShareStrategy> parse_strategy(std::string_view name);

// The choice among candidates for one group on one worker. Candidates are given by stable ids
// (a session address, a node id) so that sticky recognises its choice after members change.
class Picker {
 public:
  // Index into ids (non-empty). local_first chooses like round robin here: "local" is decided
  // by the caller, which puts the local candidates first and passes only those when there are.
  std::size_t pick(ShareStrategy strategy, const std::vector<std::uintptr_t>& ids,
                   std::mt19937_64& rng);

 private:
  std::uint64_t next_ = 0;
  std::uintptr_t sticky_ = 0;
  bool has_sticky_ = false;
};

// Process-wide numbers for shared subscription keys ("$share/g/f"), so that a queued message names
// the group it was given for in 4 bytes (Session::Outbound::share). 0 is no group. Numbers are
// never reused: one entry per key ever subscribed to in this process. Thread-safe; taken at
// subscribe time and when a member leaves, never per message.
class ShareIds {
 public:
  std::uint32_t id(const std::string& key);
  std::string key(std::uint32_t id) const;

 private:
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::uint32_t> ids_;
  std::vector<std::string> keys_;  // keys_[id - 1]
};

// NodeId 0 is never a cluster node id (they start at 1): it stands for this node.
inline constexpr NodeId kThisNode = 0;

struct SharedGroup {
  struct Member {
    SessionPtr session;
    QoS qos;
    bool filtered = false;  // ACL checks at delivery, as Broker::Grant
    std::uint32_t acl_generation = 0;
  };
  std::string key;              // the subscription as written: "$share/g/f" (route and session key)
  std::uint32_t id = 0;         // ShareIds number of `key`
  std::string filter;           // "f"
  std::vector<Member> members;  // local members
  std::vector<NodeId> nodes;    // remote nodes with members, sorted
  Picker node_picker;
  Picker member_picker;
};

// One worker's shared groups.
class SharedGroups {
 public:
  bool empty() const { return trie_.empty(); }

  // `key` must parse as kShared, `id` is its ShareIds number. Adding an existing member updates
  // it.
  void add_member(const std::string& key, std::uint32_t id, SharedGroup::Member member);
  void remove_member(const std::string& key, const SessionPtr& session);
  void add_node(const std::string& key, NodeId node);
  void remove_node(const std::string& key, NodeId node);
  SharedGroup* find(std::string_view key);

  // The groups whose filter matches the topic.
  template <class Fn>
  void match(std::string_view topic, Fn&& fn) const {
    trie_.match(topic, [&](SharedGroup* g, std::uint8_t) { fn(*g); });
  }

  // Step 1 at the publishing node: kThisNode or the remote node that gets the message. Prefers
  // members that are online: this node, when its members are all offline, is chosen only when no
  // other node that is up has the group. nullopt: no member anywhere (the group is being torn
  // down).
  std::optional<NodeId> pick_node(SharedGroup& g, ShareStrategy strategy);
  // A node the cluster layer marked down (until it is heard again) is picked only when no
  // other node and no local member has the group, so that it keeps the message for later.
  void set_node_down(NodeId node, bool down);
  // Step 2: a local member, online ones first. nullptr when the group has no local member.
  const SharedGroup::Member* pick_member(SharedGroup& g, ShareStrategy strategy);

 private:
  SharedGroup& group(const std::string& key);
  void drop_if_unused(const std::string& key);

  std::unordered_map<std::string, std::unique_ptr<SharedGroup>> groups_;
  topic::SubscriptionTrie<SharedGroup*, std::uint8_t> trie_;
  std::mt19937_64 rng_{std::random_device{}()};
  std::vector<NodeId> down_;         // sorted
  std::vector<std::uintptr_t> ids_;  // scratch
  std::vector<std::size_t> index_;   // scratch: ids_[i] is members[index_[i]]
};

}  // namespace meshmq::core
