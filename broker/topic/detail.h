// Internals shared by SubscriptionTrie and TopicTree: level splitting and the per-node child table.
// Not part of the module's interface.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <new>
#include <string_view>
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

// The children of one node, keyed by their level (`Node::key`), holding non-owning Node pointers.
//
// This is the lookup done once per topic level per match, so it is built for that:
//  - one child (the common case deep in a tree: "dev/<id>/temp" has one "temp" under each id) is a
//    plain pointer, no allocation;
//  - more children live in an open-addressing table with linear probing. Beside each slot sits a
//    one-byte tag holding 7 bits of the hash, so a probe reads the (contiguous) tags and only
//    dereferences a child, a likely cache miss, when its tag matches. A slot costs 9 bytes, against
//    ~60 for a std::unordered_map<std::string, ...> node with its bucket.
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
    if (mask_ == 0) return size_ != 0 && rep_.one->key == key ? rep_.one : nullptr;
    const std::size_t h = hash(key);
    const std::uint8_t tag = tag_of(h);
    const std::uint8_t* tags = tag_array();
    // Terminates: the load factor is capped below 1, so there is always an empty slot.
    for (std::size_t i = h & mask_;; i = (i + 1) & mask_) {
      if (tags[i] == 0) return nullptr;
      if (tags[i] == tag && rep_.slots[i]->key == key) return rep_.slots[i];
    }
  }

  // `n->key` must not be present. Throws std::bad_alloc with the table unchanged.
  void insert(Node* n) {
    if (mask_ == 0) {
      if (size_ == 0) {
        rep_.one = n;
        size_ = 1;
        return;
      }
      Node* first = rep_.one;
      allocate_table(kMinCapacity);
      place(first);
      place(n);
      size_ = 2;
      return;
    }
    if ((size_ + 1) * kMaxLoadDen > capacity() * kMaxLoadNum) rehash(capacity() * 2);
    place(n);
    ++size_;
  }

  // Unlinks and returns the child with `key`, or nullptr. Never throws: shrinking the table is
  // skipped if memory is short.
  Node* remove(std::string_view key) noexcept {
    if (mask_ == 0) {
      if (size_ == 0 || rep_.one->key != key) return nullptr;
      Node* n = rep_.one;
      rep_.one = nullptr;
      size_ = 0;
      return n;
    }
    std::uint8_t* tags = tag_array();
    Node** slots = rep_.slots;
    const std::size_t h = hash(key);
    const std::uint8_t tag = tag_of(h);
    std::size_t hole = h & mask_;
    for (;; hole = (hole + 1) & mask_) {
      if (tags[hole] == 0) return nullptr;
      if (tags[hole] == tag && slots[hole]->key == key) break;
    }
    Node* removed = slots[hole];
    // Backward-shift: pull later members of the probe run into the hole when that does not move
    // them before their home slot.
    for (std::size_t j = (hole + 1) & mask_; tags[j] != 0; j = (j + 1) & mask_) {
      const std::size_t home = hash(slots[j]->key) & mask_;
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        tags[hole] = tags[j];
        slots[hole] = slots[j];
        hole = j;
      }
    }
    tags[hole] = 0;
    --size_;
    if (size_ == 1) {
      Node* last = nullptr;
      for (std::size_t i = 0; i <= mask_; ++i) {
        if (tags[i] != 0) last = slots[i];
      }
      release_table();
      rep_.one = last;
    } else if (capacity() > kMinCapacity && size_ * kShrinkDen < capacity()) {
      rehash(capacity() / 2, std::nothrow);
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
    const std::uint8_t* tags = tag_array();
    for (std::size_t i = 0; i <= mask_; ++i) {
      if (tags[i] != 0) fn(rep_.slots[i]);
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

  static std::size_t hash(std::string_view key) noexcept {
    return std::hash<std::string_view>{}(key);
  }
  // The top bits, with bit 7 set so that 0 can mean "empty"; the low bits pick the slot.
  static std::uint8_t tag_of(std::size_t h) noexcept {
    return static_cast<std::uint8_t>((h >> (sizeof(std::size_t) * 8 - 7)) | 0x80);
  }

  std::size_t capacity() const { return std::size_t{mask_} + 1; }
  std::uint8_t* tag_array() const {
    return reinterpret_cast<std::uint8_t*>(rep_.slots + capacity());
  }
  static std::size_t bytes_for(std::size_t cap) { return cap * (sizeof(Node*) + 1); }

  void allocate_table(std::size_t cap) {
    void* mem = ::operator new(bytes_for(cap));
    adopt_table(mem, cap);
  }
  void adopt_table(void* mem, std::size_t cap) noexcept {
    rep_.slots = static_cast<Node**>(mem);
    mask_ = static_cast<std::uint32_t>(cap - 1);
    std::memset(tag_array(), 0, cap);
  }
  void release_table() noexcept {
    if (mask_ != 0) ::operator delete(rep_.slots);
    mask_ = 0;
  }

  void place(Node* n) noexcept {
    const std::size_t h = hash(n->key);
    std::uint8_t* tags = tag_array();
    std::size_t i = h & mask_;
    while (tags[i] != 0) i = (i + 1) & mask_;
    tags[i] = tag_of(h);
    rep_.slots[i] = n;
  }

  void rehash(std::size_t cap) { move_to(::operator new(bytes_for(cap)), cap); }
  void rehash(std::size_t cap, std::nothrow_t) noexcept {
    if (void* mem = ::operator new(bytes_for(cap), std::nothrow)) move_to(mem, cap);
  }
  void move_to(void* mem, std::size_t cap) noexcept {
    Node** old_slots = rep_.slots;
    const std::uint8_t* old_tags = tag_array();
    const std::size_t old_cap = capacity();
    adopt_table(mem, cap);
    for (std::size_t i = 0; i < old_cap; ++i) {
      if (old_tags[i] != 0) place(old_slots[i]);
    }
    ::operator delete(old_slots);
  }

  // `one` while mask_ == 0 (zero or one child), else the slot array, followed by its tags.
  union Rep {
    Node* one;
    Node** slots;
  } rep_{nullptr};
  std::uint32_t size_ = 0;
  std::uint32_t mask_ = 0;
};

}  // namespace meshmq::topic::detail
