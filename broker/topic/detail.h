// Internals shared by SubscriptionTrie and TopicTree: level splitting and the per-node child table.
// Not part of the module's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <utility>

namespace meshmq::topic::detail {

// Returns the level of `s` that starts at `pos` and moves `pos` to the start of the next one. Once
// the last level is returned, pos == s.size() + 1: an index past the end, rather than a flag,
// because a trailing '/' starts one more (empty) level and "a/" must differ from "a".
inline std::string_view next_level(std::string_view s, std::size_t& pos) {
  const std::size_t start = pos;
  std::size_t end = s.find('/', start);
  if (end == std::string_view::npos) end = s.size();
  pos = end + 1;
  return s.substr(start, end - start);
}

inline bool levels_done(std::string_view s, std::size_t pos) {
  return pos > s.size();
}

// Only used by debug assertions: the full rules live in codec/topic_rules.h, which this header-only
// module must not link against.
inline bool valid_filter(std::string_view f) {
  if (f.empty()) return false;
  for (std::size_t pos = 0; !levels_done(f, pos);) {
    std::string_view level = next_level(f, pos);
    if (level.size() > 1 && level.find_first_of("+#") != std::string_view::npos) return false;
    if (level == "#" && !levels_done(f, pos)) return false;
  }
  return f.find('\0') == std::string_view::npos;
}

inline bool valid_topic(std::string_view t) {
  return !t.empty() && t.find_first_of(std::string_view("+#\0", 3)) == std::string_view::npos;
}

// Tree nodes are allocated with their level stored right after the object (a 2-byte length, then
// the bytes) instead of in a std::string member. At a million subscriptions that is the difference
// between a 112-byte and an 80-byte malloc chunk per node, and the key shares the node's cache
// lines. Node types derive from KeyedNode, must not be copied or moved, and are only created by
// make_node and freed by destroy_node. A node that is a plain object (a tree's root) has no key:
// never call key() on it.
template <class Node>
class KeyedNode {
 public:
  std::string_view key() const noexcept {
    const auto* p = reinterpret_cast<const char*>(static_cast<const Node*>(this) + 1);
    std::uint16_t len;
    std::memcpy(&len, p, sizeof len);
    return {p + sizeof len, len};
  }
};

// A level of a valid topic fits: the whole topic is at most 65535 bytes (MQTT 3.1.1 1.5.3).
inline constexpr std::size_t kMaxLevelSize = 0xffff;

template <class Node>
Node* make_node(std::string_view key) {
  static_assert(alignof(Node) <= __STDCPP_DEFAULT_NEW_ALIGNMENT__);
  static_assert(std::is_nothrow_default_constructible_v<Node>);
  if (key.size() > kMaxLevelSize) throw std::length_error("topic level longer than 65535 bytes");
  const auto len = static_cast<std::uint16_t>(key.size());
  void* mem = ::operator new(sizeof(Node) + sizeof len + key.size());
  Node* n = ::new (mem) Node();  // Node() must not throw
  char* p = reinterpret_cast<char*>(n + 1);
  std::memcpy(p, &len, sizeof len);
  if (len != 0) std::memcpy(p + sizeof len, key.data(), len);
  return n;
}

template <class Node>
void destroy_node(Node* n) noexcept {
  n->~Node();
  ::operator delete(static_cast<void*>(n));
}

// The children of one node, keyed by their level (`Node::key()`), holding non-owning pointers.
//
// This is the lookup done once per topic level per match, so it is built for that:
//  - one child (the common case deep in a tree: "dev/<id>/temp" has one "temp" under each id) is a
//    plain pointer, no allocation;
//  - more children live in an open-addressing table with linear probing, one word per slot. Nodes
//    are 16-byte aligned, so the low 4 bits of each slot hold a tag taken from the key's hash: a
//    probe dereferences a child (a likely cache miss) only when its tag matches, 1 time in 15 for
//    a wrong child, and a cold lookup costs one miss for the slot and one for the node. A slot
//    costs 8 bytes where a std::unordered_map<std::string, ...> node with its bucket costs ~60.
// Deletion shifts entries back instead of leaving tombstones, so lookups never slow down with churn
// and the table shrinks as children go away.
template <class Node>
class ChildTable {
 public:
  ChildTable() = default;
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;
  ~ChildTable() { release_table(); }

  void swap(ChildTable& o) noexcept {
    std::swap(rep_, o.rep_);
    std::swap(size_, o.size_);
    std::swap(mask_, o.mask_);
  }

  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  Node* find(std::string_view key) const {
    if (mask_ == 0) return size_ != 0 && rep_.one->key() == key ? rep_.one : nullptr;
    const std::size_t h = hash(key);
    const std::uintptr_t tag = tag_of(h);
    // Terminates: the load factor is capped below 1, so there is always an empty slot.
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      const std::uintptr_t s = rep_.slots[i];
      if (s == 0) return nullptr;
      if ((s & kTagBits) == tag && node_of(s)->key() == key) return node_of(s);
    }
  }

  // `n->key()` must not be present. Throws std::bad_alloc with the table unchanged.
  void insert(Node* n) {
    if (mask_ == 0) {
      if (size_ == 0) {
        rep_.one = n;
        size_ = 1;
        return;
      }
      Node* first = rep_.one;
      adopt_table(allocate(kMinCapacity), kMinCapacity);
      place(first);
      place(n);
      size_ = 2;
      return;
    }
    if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) {
      move_to(allocate(capacity() * 2), capacity() * 2);
    }
    place(n);
    ++size_;
  }

  // Unlinks and returns the child with `key`, or nullptr. Never throws: shrinking the table is
  // skipped if memory is short.
  Node* remove(std::string_view key) noexcept {
    if (mask_ == 0) {
      if (size_ == 0 || rep_.one->key() != key) return nullptr;
      Node* n = rep_.one;
      rep_.one = nullptr;
      size_ = 0;
      return n;
    }
    std::uintptr_t* slots = rep_.slots;
    const std::size_t h = hash(key);
    const std::uintptr_t tag = tag_of(h);
    std::size_t hole = h & mask_;
    for (;; hole = (hole + 1) & mask_) {
      if (slots[hole] == 0) return nullptr;
      if ((slots[hole] & kTagBits) == tag && node_of(slots[hole])->key() == key) break;
    }
    Node* removed = node_of(slots[hole]);
    // Backward-shift: pull later members of the probe run into the hole when that does not move
    // them before their home slot.
    for (std::size_t j = (hole + 1) & mask_; slots[j] != 0; j = (j + 1) & mask_) {
      const std::size_t home = hash(node_of(slots[j])->key()) & mask_;
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        slots[hole] = slots[j];
        hole = j;
      }
    }
    slots[hole] = 0;
    --size_;
    if (size_ == 1) {
      Node* last = nullptr;
      for (std::size_t i = 0; i <= mask_; ++i) {
        if (slots[i] != 0) last = node_of(slots[i]);
      }
      release_table();
      rep_.one = last;
    } else if (capacity() > kMinCapacity && size_ * kShrinkDen < capacity()) {
      if (void* mem = ::operator new(bytes_for(capacity() / 2), std::nothrow)) {
        move_to(mem, capacity() / 2);
      }
    }
    return removed;
  }

  // fn(Node*) for every child; fn must not change this table.
  template <class Fn>
  void for_each(Fn&& fn) const {
    if (mask_ == 0) {
      if (size_ != 0) fn(rep_.one);
      return;
    }
    for (std::size_t i = 0; i <= mask_; ++i) {
      if (rep_.slots[i] != 0) fn(node_of(rep_.slots[i]));
    }
  }

  // Forgets every child without freeing them (the owner does).
  void clear() noexcept {
    release_table();
    rep_.one = nullptr;
    size_ = 0;
  }

 private:
  static constexpr std::size_t kMinCapacity = 4;
  // Grow above 3/4 full; shrink below 1/8 so add/remove at a boundary does not rehash every time.
  static constexpr std::size_t kMaxLoadNum = 3, kMaxLoadDen = 4, kShrinkDen = 8;
  static constexpr std::uintptr_t kTagBits = 15;

  static std::size_t hash(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }
  // 1..15 from the top bits (the low ones pick the slot); 0 is left for "empty".
  static std::uintptr_t tag_of(std::size_t h) noexcept {
    return 1 + (h >> (sizeof(std::size_t) * 8 - 8)) % 15;
  }
  static Node* node_of(std::uintptr_t slot) noexcept {
    return reinterpret_cast<Node*>(slot & ~kTagBits);
  }

  std::size_t capacity() const { return std::size_t{mask_} + 1; }
  static std::size_t bytes_for(std::size_t cap) { return cap * sizeof(std::uintptr_t); }
  static void* allocate(std::size_t cap) { return ::operator new(bytes_for(cap)); }

  void adopt_table(void* mem, std::size_t cap) noexcept {
    rep_.slots = static_cast<std::uintptr_t*>(mem);
    mask_ = static_cast<std::uint32_t>(cap - 1);
    std::memset(mem, 0, bytes_for(cap));
  }
  void release_table() noexcept {
    if (mask_ != 0) ::operator delete(rep_.slots);
    mask_ = 0;
  }

  void place(Node* n) noexcept {
    static_assert(alignof(Node) > kTagBits, "the low bits of a child pointer hold its tag");
    const std::size_t h = hash(n->key());
    std::size_t i = h & mask_;
    while (rep_.slots[i] != 0) i = (i + 1) & mask_;
    rep_.slots[i] = reinterpret_cast<std::uintptr_t>(n) | tag_of(h);
  }

  void move_to(void* mem, std::size_t cap) noexcept {
    std::uintptr_t* old_slots = rep_.slots;
    const std::size_t old_cap = capacity();
    adopt_table(mem, cap);
    for (std::size_t i = 0; i < old_cap; ++i) {
      if (old_slots[i] != 0) place(node_of(old_slots[i]));
    }
    ::operator delete(old_slots);
  }

  // `one` while mask_ == 0 (zero or one child), else the slot array.
  union Rep {
    Node* one;
    std::uintptr_t* slots;
  } rep_{nullptr};
  std::uint32_t size_ = 0;
  std::uint32_t mask_ = 0;
};

}  // namespace meshmq::topic::detail
