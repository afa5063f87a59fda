// SubscriptionTrie: topic filter -> {subscriber id -> data}, matched against published topic names.
//
// The broker keeps one per worker thread (Id = std::shared_ptr<Session>, Data = granted QoS) and
// the cluster one per node (Id = node id). It is deliberately not thread-safe: every worker owns
// its own replica and applies subscription changes to it, so the publish path never takes a lock.
//
// Matching follows MQTT 3.1.1 section 4.7: '+' is exactly one level (possibly empty), '#' is the
// parent level and any number of levels below it, and a filter whose first level is a wildcard does
// not match a topic starting with '$'. Empty levels are real levels ("a//b", "/a", "a/").
//
// Cost model, since this is the publish hot path:
//  - match() never allocates. It walks the topic level by level as string_views; at each node the
//    '+' and '#' children are plain pointers, and the exact child is one probe in a tagged hash
//    table (detail::ChildTable). It recurses only into '+' branches, so the stack depth is bounded
//    by the number of '+' levels along a path, itself bounded by the longest filter inserted.
//  - subscribers of one filter are stored inline when there is one (the usual case: a client's own
//    topic), in a vector up to kMaxVectorSubscribers, and in a hash map above it, so a filter with
//    10,000 subscribers still inserts, finds and erases in O(1).
//  - nodes left without subscribers or children are freed by erase(), so unsubscribing returns
//    memory.
// The broker should cap the number of levels in a filter (Mosquitto refuses more than 200 since
// CVE-2019-11779) so that erase recursion and '+'-heavy matches stay shallow; the trie itself only
// relies on the 65535-byte limit of a topic.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "broker/topic/detail.h"

namespace meshmq::topic {

// Lets unit tests observe the subscriber storage of a filter; defined only by tests.
struct SubscriptionTrieTestPeer;

namespace detail {

// The subscribers of one filter: empty, one inline entry, a small vector, or a hash map.
template <class Id, class Data, class Hash>
class SubscriberSet {
 public:
  struct Entry {
    Id id;
    Data data;
  };
  using Map = std::unordered_map<Id, Data, Hash>;
  enum class Kind { kEmpty, kOne, kVector, kMap };

  // A linear scan of up to 16 ids beats hashing; above it erase must stay O(1). Going back to the
  // vector only below half of that keeps a filter that oscillates around the limit from converting
  // on every change.
  static constexpr std::size_t kMaxVectorSubscribers = 16;
  static constexpr std::size_t kMinMapSubscribers = kMaxVectorSubscribers / 2;

  Kind kind() const { return static_cast<Kind>(rep_.index()); }
  bool empty() const { return rep_.index() == 0; }

  std::size_t size() const {
    switch (kind()) {
      case Kind::kEmpty:
        return 0;
      case Kind::kOne:
        return 1;
      case Kind::kVector:
        return std::get<Vector>(rep_).size();
      case Kind::kMap:
        return std::get<MapPtr>(rep_)->size();
    }
    return 0;
  }

  // True if `id` was not there; otherwise its data is replaced.
  bool insert_or_assign(const Id& id, Data&& data) {
    switch (kind()) {
      case Kind::kEmpty:
        rep_.template emplace<Entry>(Entry{id, std::move(data)});
        return true;
      case Kind::kOne: {
        Entry& one = std::get<Entry>(rep_);
        if (one.id == id) {
          one.data = std::move(data);
          return false;
        }
        Vector v;
        v.reserve(4);
        v.push_back(one);
        v.push_back(Entry{id, std::move(data)});
        rep_ = std::move(v);
        return true;
      }
      case Kind::kVector: {
        Vector& v = std::get<Vector>(rep_);
        for (Entry& e : v) {
          if (e.id == id) {
            e.data = std::move(data);
            return false;
          }
        }
        if (v.size() < kMaxVectorSubscribers) {
          v.push_back(Entry{id, std::move(data)});
          return true;
        }
        // Copies, not moves, so a throwing allocation leaves the vector intact.
        auto m = std::make_unique<Map>();
        m->reserve(v.size() * 2);
        for (const Entry& e : v) m->emplace(e.id, e.data);
        m->emplace(id, std::move(data));
        rep_ = std::move(m);
        return true;
      }
      case Kind::kMap:
        return std::get<MapPtr>(rep_)->insert_or_assign(id, std::move(data)).second;
    }
    return false;
  }

  bool erase(const Id& id) {
    switch (kind()) {
      case Kind::kEmpty:
        return false;
      case Kind::kOne:
        if (!(std::get<Entry>(rep_).id == id)) return false;
        rep_.template emplace<std::monostate>();
        return true;
      case Kind::kVector: {
        Vector& v = std::get<Vector>(rep_);
        auto it = v.begin();
        while (it != v.end() && !(it->id == id)) ++it;
        if (it == v.end()) return false;
        if (it != v.end() - 1) *it = std::move(v.back());
        v.pop_back();
        if (v.size() == 1) {
          Entry last = std::move(v.front());
          rep_.template emplace<Entry>(std::move(last));
        }
        return true;
      }
      case Kind::kMap: {
        Map& m = *std::get<MapPtr>(rep_);
        if (m.erase(id) == 0) return false;
        if (m.size() < kMinMapSubscribers) shrink_to_vector(m);
        return true;
      }
    }
    return false;
  }

  const Data* find(const Id& id) const {
    switch (kind()) {
      case Kind::kEmpty:
        return nullptr;
      case Kind::kOne: {
        const Entry& one = std::get<Entry>(rep_);
        return one.id == id ? &one.data : nullptr;
      }
      case Kind::kVector:
        for (const Entry& e : std::get<Vector>(rep_)) {
          if (e.id == id) return &e.data;
        }
        return nullptr;
      case Kind::kMap: {
        const Map& m = *std::get<MapPtr>(rep_);
        auto it = m.find(id);
        return it == m.end() ? nullptr : &it->second;
      }
    }
    return nullptr;
  }

  // fn(const Id&, const Data&) for each subscriber.
  template <class Fn>
  void for_each(Fn& fn) const {
    switch (kind()) {
      case Kind::kEmpty:
        return;
      case Kind::kOne: {
        const Entry& one = *std::get_if<Entry>(&rep_);
        fn(std::as_const(one.id), std::as_const(one.data));
        return;
      }
      case Kind::kVector:
        for (const Entry& e : *std::get_if<Vector>(&rep_)) fn(e.id, e.data);
        return;
      case Kind::kMap:
        for (const auto& [id, data] : **std::get_if<MapPtr>(&rep_)) fn(id, data);
        return;
    }
  }

 private:
  using Vector = std::vector<Entry>;
  // Behind a pointer: most filters never need it, and it keeps the variant at vector size.
  using MapPtr = std::unique_ptr<Map>;

  void shrink_to_vector(const Map& m) noexcept {
    try {
      Vector v;
      v.reserve(m.size());
      for (const auto& [id, data] : m) v.push_back(Entry{id, data});
      rep_ = std::move(v);
    } catch (...) {
      // Still correct as a map; it only costs memory.
    }
  }

  // Alternative order must match Kind.
  std::variant<std::monostate, Entry, Vector, MapPtr> rep_;
};

}  // namespace detail

template <class Id, class Data, class Hash = std::hash<Id>>
class SubscriptionTrie {
 public:
  SubscriptionTrie() = default;
  SubscriptionTrie(const SubscriptionTrie&) = delete;
  SubscriptionTrie& operator=(const SubscriptionTrie&) = delete;
  SubscriptionTrie(SubscriptionTrie&& o) noexcept { swap(o); }
  SubscriptionTrie& operator=(SubscriptionTrie&& o) noexcept {
    if (this != &o) {
      clear();
      swap(o);
    }
    return *this;
  }
  ~SubscriptionTrie() { destroy_descendants(root_); }

  void swap(SubscriptionTrie& o) noexcept {
    root_.children.swap(o.root_.children);
    std::swap(root_.plus, o.root_.plus);
    std::swap(root_.hash, o.root_.hash);
    std::swap(root_.subs, o.root_.subs);
    std::swap(size_, o.size_);
    std::swap(filters_, o.filters_);
    std::swap(nodes_, o.nodes_);
  }

  // Adds or replaces the subscription of `id` to `filter` (a valid filter). True if it was new.
  bool insert(std::string_view filter, const Id& id, Data data) {
    assert(detail::valid_filter(filter));
    Node* n = &root_;
    try {
      for (std::size_t pos = 0; !detail::levels_done(filter, pos);) {
        n = child_for_insert(*n, detail::next_level(filter, pos));
      }
      const bool had_subscribers = !n->subs.empty();
      if (!n->subs.insert_or_assign(id, std::move(data))) return false;
      ++size_;
      if (!had_subscribers) ++filters_;
      return true;
    } catch (...) {
      prune(filter);
      throw;
    }
  }

  // Removes it; frees trie nodes left empty. True if it existed.
  bool erase(std::string_view filter, const Id& id) {
    bool erased = false;
    erase_below(root_, filter, 0, [&](Node& n) {
      erased = n.subs.erase(id);
      if (erased) {
        --size_;
        if (n.subs.empty()) --filters_;
      }
    });
    return erased;
  }

  // Calls fn(const Id&, const Data&) once for every (filter, id) whose filter matches `topic` (a
  // valid topic name). A subscriber with several matching filters is visited once per filter; the
  // caller merges. Topics starting with '$' are not matched by filters starting with '+' or '#'.
  // fn must not modify the trie.
  template <class Fn>
  void match(std::string_view topic, Fn&& fn) const {
    std::size_t pos = 0;
    const std::string_view first = detail::next_level(topic, pos);
    if (topic.empty() || topic.front() != '$') {
      if (root_.hash) root_.hash->subs.for_each(fn);
      if (root_.plus) match_below(*root_.plus, topic, pos, fn);
    }
    if (const Node* n = root_.children.find(first)) match_below(*n, topic, pos, fn);
  }

  // Pointer to the data of (filter, id), or nullptr.
  const Data* find(std::string_view filter, const Id& id) const {
    const Node* n = find_node(filter);
    return n ? n->subs.find(id) : nullptr;
  }

  std::size_t size() const { return size_; }             // number of (filter, id) subscriptions
  std::size_t filter_count() const { return filters_; }  // distinct filters with a subscriber
  std::size_t node_count() const { return nodes_; }      // including the root: 1 when empty
  bool empty() const { return size_ == 0; }

  void clear() {
    destroy_descendants(root_);
    root_.subs = {};
    size_ = filters_ = 0;
    nodes_ = 1;
  }

 private:
  friend struct SubscriptionTrieTestPeer;
  using Subscribers = detail::SubscriberSet<Id, Data, Hash>;

  // Nodes own nothing: the trie frees them (erase_below, destroy_descendants), which keeps teardown
  // iterative however deep the trie is, where nested unique_ptrs would recurse once per level.
  // 16-byte alignment lets ChildTable keep a hash tag in the low bits of child pointers; it costs
  // nothing since malloc aligns to 16 anyway. With a 16-byte Id (shared_ptr) a node is 64 bytes
  // plus its level.
  struct alignas(16) Node : detail::KeyedNode<Node> {
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    bool unused() const { return subs.empty() && children.empty() && !plus && !hash; }

    detail::ChildTable<Node> children;
    Node* plus = nullptr;
    Node* hash = nullptr;  // a '#' node is always a leaf
    Subscribers subs;
  };

  Node* child_for_insert(Node& n, std::string_view level) {
    Node** special = level == "+" ? &n.plus : level == "#" ? &n.hash : nullptr;
    if (special) {
      if (!*special) {
        *special = detail::make_node<Node>(level);
        ++nodes_;
      }
      return *special;
    }
    if (Node* c = n.children.find(level)) return c;
    Node* c = detail::make_node<Node>(level);
    try {
      n.children.insert(c);
    } catch (...) {
      detail::destroy_node(c);
      throw;
    }
    ++nodes_;
    return c;
  }

  // Walks `filter` from `n` (its level at `pos`), calls on_leaf(node of filter) if it exists, then
  // frees the nodes along the path that are left unused.
  template <class OnLeaf>
  void erase_below(Node& n, std::string_view filter, std::size_t pos, OnLeaf&& on_leaf) {
    if (detail::levels_done(filter, pos)) {
      on_leaf(n);
      return;
    }
    const std::string_view level = detail::next_level(filter, pos);
    Node* c = level == "+" ? n.plus : level == "#" ? n.hash : n.children.find(level);
    if (!c) return;
    erase_below(*c, filter, pos, on_leaf);
    if (!c->unused()) return;
    if (c == n.plus) {
      n.plus = nullptr;
    } else if (c == n.hash) {
      n.hash = nullptr;
    } else {
      n.children.remove(level);
    }
    detail::destroy_node(c);
    --nodes_;
  }

  void prune(std::string_view filter) noexcept {
    erase_below(root_, filter, 0, [](Node&) {});
  }

  const Node* find_node(std::string_view filter) const {
    const Node* n = &root_;
    for (std::size_t pos = 0; n && !detail::levels_done(filter, pos);) {
      const std::string_view level = detail::next_level(filter, pos);
      n = level == "+" ? n->plus : level == "#" ? n->hash : n->children.find(level);
    }
    return n;
  }

  // `n` matched the topic levels before `pos`. Follows the exact children in a loop and recurses
  // only into '+' children.
  template <class Fn>
  static void match_below(const Node& start, std::string_view topic, std::size_t pos, Fn& fn) {
    for (const Node* n = &start; n;) {
      if (n->hash) n->hash->subs.for_each(fn);  // '#' also matches the parent level
      if (detail::levels_done(topic, pos)) {
        n->subs.for_each(fn);
        return;
      }
      const std::string_view level = detail::next_level(topic, pos);
      if (n->plus) match_below(*n->plus, topic, pos, fn);
      n = n->children.find(level);
    }
  }

  // Only runs out of memory for the pending list when the process is already out of it.
  static void destroy_descendants(Node& root) noexcept {
    std::vector<Node*> pending;
    auto detach = [&pending](Node& n) {
      n.children.for_each([&pending](Node* c) { pending.push_back(c); });
      n.children.clear();
      if (n.plus) pending.push_back(std::exchange(n.plus, nullptr));
      if (n.hash) pending.push_back(std::exchange(n.hash, nullptr));
    };
    detach(root);
    while (!pending.empty()) {
      Node* n = pending.back();
      pending.pop_back();
      detach(*n);
      detail::destroy_node(n);
    }
  }

  Node root_;
  std::size_t size_ = 0;
  std::size_t filters_ = 0;
  std::size_t nodes_ = 1;
};

}  // namespace meshmq::topic
