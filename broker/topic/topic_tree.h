// TopicTree: topic name -> Value, for retained messages. A new subscription's filter is matched
// against the stored topic names (the reverse of SubscriptionTrie), with the same MQTT 3.1.1 rules:
// '+' is one level (possibly empty), '#' the parent level and everything below, and a filter whose
// first level is a wildcard skips topics starting with '$'.
//
// Not thread-safe by design: each worker thread owns its replica.
//
// Each stored topic keeps its full name beside the value, so match() and for_each() hand out the
// name without rebuilding it (no allocation while matching); nodes without a value pay only for
// their level. Nodes left empty by erase() are freed.
#pragma once

#include <cassert>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "broker/topic/detail.h"

namespace meshmq::topic {

template <class Value>
class TopicTree {
 public:
  TopicTree() = default;
  TopicTree(const TopicTree&) = delete;
  TopicTree& operator=(const TopicTree&) = delete;
  TopicTree(TopicTree&& o) noexcept { swap(o); }
  TopicTree& operator=(TopicTree&& o) noexcept {
    if (this != &o) {
      clear();
      swap(o);
    }
    return *this;
  }
  ~TopicTree() { destroy_descendants(root_); }

  void swap(TopicTree& o) noexcept {
    root_.children.swap(o.root_.children);
    std::swap(size_, o.size_);
    std::swap(nodes_, o.nodes_);
  }

  // Sets the value of a (valid, wildcard-free) topic; true if it was new.
  bool set(std::string_view topic, Value value) {
    assert(detail::valid_topic(topic));
    Node* n = &root_;
    try {
      for (std::size_t pos = 0; !detail::levels_done(topic, pos);) {
        n = child_for_set(*n, detail::next_level(topic, pos));
      }
      if (n->slot) {
        n->slot->value = std::move(value);
        return false;
      }
      n->slot.reset(new Slot{std::string(topic), std::move(value)});
      ++size_;
      return true;
    } catch (...) {
      erase_below(root_, topic, 0, [](Node&) {});
      throw;
    }
  }

  // Frees the nodes left empty. True if the topic was there.
  bool erase(std::string_view topic) {
    bool erased = false;
    erase_below(root_, topic, 0, [&](Node& n) {
      erased = n.slot != nullptr;
      n.slot.reset();
    });
    if (erased) --size_;
    return erased;
  }

  Value* find(std::string_view topic) {
    const Node* n = find_node(topic);
    return n && n->slot ? &n->slot->value : nullptr;
  }
  const Value* find(std::string_view topic) const {
    const Node* n = find_node(topic);
    return n && n->slot ? &n->slot->value : nullptr;
  }

  // Calls fn(std::string_view topic, Value&) for every stored topic the valid `filter` matches.
  // fn must not modify the tree (it may modify the value).
  template <class Fn>
  void match(std::string_view filter, Fn&& fn) {
    match_root<Node>(root_, filter, fn);
  }
  // fn(std::string_view topic, const Value&).
  template <class Fn>
  void match(std::string_view filter, Fn&& fn) const {
    match_root<const Node>(root_, filter, fn);
  }

  // fn(std::string_view topic, Value&) for every stored topic, in no particular order.
  template <class Fn>
  void for_each(Fn&& fn) {
    visit_subtree<Node>(root_, fn, false);
  }
  template <class Fn>
  void for_each(Fn&& fn) const {
    visit_subtree<const Node>(root_, fn, false);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  std::size_t node_count() const { return nodes_; }  // including the root: 1 when empty

  void clear() {
    destroy_descendants(root_);
    size_ = 0;
    nodes_ = 1;
  }

 private:
  struct Slot {
    std::string topic;
    Value value;
  };

  // Nodes do not own their children (see destroy_descendants). The value sits behind a pointer so
  // the many value-less inner nodes stay small (32 bytes plus the level) whatever sizeof(Value) is.
  // 16-byte alignment: ChildTable keeps a hash tag in the low bits of child pointers.
  struct alignas(16) Node : detail::KeyedNode<Node> {
    Node() = default;
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    bool unused() const { return !slot && children.empty(); }

    detail::ChildTable<Node> children;
    std::unique_ptr<Slot> slot;
  };

  Node* child_for_set(Node& n, std::string_view level) {
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

  template <class OnLeaf>
  void erase_below(Node& n, std::string_view topic, std::size_t pos, OnLeaf&& on_leaf) noexcept {
    if (detail::levels_done(topic, pos)) {
      on_leaf(n);
      return;
    }
    const std::string_view level = detail::next_level(topic, pos);
    Node* c = n.children.find(level);
    if (!c) return;
    erase_below(*c, topic, pos, on_leaf);
    if (!c->unused()) return;
    n.children.remove(level);
    detail::destroy_node(c);
    --nodes_;
  }

  const Node* find_node(std::string_view topic) const {
    const Node* n = &root_;
    for (std::size_t pos = 0; n && !detail::levels_done(topic, pos);) {
      n = n->children.find(detail::next_level(topic, pos));
    }
    return n;
  }

  // NodeT is Node or const Node, which decides whether fn gets Value& or const Value&.
  template <class NodeT, class Fn>
  static void call(NodeT& n, Fn& fn) {
    if (!n.slot) return;
    using SlotT = std::conditional_t<std::is_const_v<NodeT>, const Slot, Slot>;
    SlotT& s = *n.slot;
    fn(std::string_view(s.topic), s.value);
  }

  template <class NodeT, class Fn>
  static void for_each_child(NodeT& n, bool skip_dollar, Fn&& fn) {
    n.children.for_each([&](Node* c) {
      if (!skip_dollar || !c->key().starts_with('$')) fn(static_cast<NodeT&>(*c));
    });
  }

  // `n` and everything below it; `skip_dollar` drops children whose level starts with '$' (only
  // used at the root).
  template <class NodeT, class Fn>
  static void visit_subtree(NodeT& n, Fn& fn, bool skip_dollar) {
    call(n, fn);
    for_each_child(n, skip_dollar, [&](NodeT& c) { visit_subtree(c, fn, false); });
  }

  template <class NodeT, class Fn>
  static void match_root(NodeT& root, std::string_view filter, Fn& fn) {
    match_below(root, filter, 0, fn, /*at_root=*/true);
  }

  // `n` matched the filter levels before `pos`.
  template <class NodeT, class Fn>
  static void match_below(NodeT& n, std::string_view filter, std::size_t pos, Fn& fn,
                          bool at_root) {
    if (detail::levels_done(filter, pos)) {
      call(n, fn);
      return;
    }
    const std::string_view level = detail::next_level(filter, pos);
    if (level == "#") {
      visit_subtree(n, fn, at_root);  // n itself is the parent level "a/#" also matches
    } else if (level == "+") {
      for_each_child(n, at_root,
                     [&](NodeT& c) { match_below(c, filter, pos, fn, /*at_root=*/false); });
    } else if (Node* c = n.children.find(level)) {
      match_below(static_cast<NodeT&>(*c), filter, pos, fn, /*at_root=*/false);
    }
  }

  static void destroy_descendants(Node& root) noexcept {
    std::vector<Node*> pending;
    auto detach = [&pending](Node& n) {
      n.children.for_each([&pending](Node* c) { pending.push_back(c); });
      n.children.clear();
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
  std::size_t nodes_ = 1;
};

}  // namespace meshmq::topic
