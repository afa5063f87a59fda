// A sorted-vector map for the few entries a session holds (its subscriptions): 24 bytes while
// empty against std::map's 48, one allocation for all entries instead of one per entry. Offers the
// subset of std::map's interface the core uses; lookups take anything comparable to the key.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace meshmq::core {

template <class Key, class Value>
class FlatMap {
 public:
  using value_type = std::pair<Key, Value>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  bool empty() const { return entries_.empty(); }
  std::size_t size() const { return entries_.size(); }
  iterator begin() { return entries_.begin(); }
  iterator end() { return entries_.end(); }
  const_iterator begin() const { return entries_.begin(); }
  const_iterator end() const { return entries_.end(); }

  template <class K>
  iterator find(const K& key) {
    auto it = lower(key);
    return it != entries_.end() && it->first == key ? it : entries_.end();
  }
  template <class K>
  const_iterator find(const K& key) const {
    return const_cast<FlatMap*>(this)->find(key);
  }
  template <class K>
  bool contains(const K& key) const {
    return find(key) != end();
  }

  template <class K, class V>
  std::pair<iterator, bool> insert_or_assign(K&& key, V&& value) {
    auto it = lower(key);
    if (it != entries_.end() && it->first == key) {
      it->second = std::forward<V>(value);
      return {it, false};
    }
    return {entries_.emplace(it, Key(std::forward<K>(key)), std::forward<V>(value)), true};
  }

  template <class K>
  std::size_t erase(const K& key) {
    auto it = find(key);
    if (it == entries_.end()) return 0;
    entries_.erase(it);
    if (entries_.empty()) entries_.shrink_to_fit();  // an unsubscribed session holds nothing
    return 1;
  }

  void clear() {
    entries_.clear();
    entries_.shrink_to_fit();
  }

 private:
  template <class K>
  iterator lower(const K& key) {
    return std::lower_bound(entries_.begin(), entries_.end(), key,
                            [](const value_type& e, const K& k) { return e.first < k; });
  }

  std::vector<value_type> entries_;
};

}  // namespace meshmq::core
