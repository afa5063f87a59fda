// A deliberately naive matcher written straight from MQTT 3.1.1 section 4.7, used as the oracle the
// trie and the tree are compared against.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace meshmq::topic::testing {

inline std::vector<std::string> split_levels(std::string_view s) {
  std::vector<std::string> levels(1);
  for (char c : s) {
    if (c == '/') {
      levels.emplace_back();
    } else {
      levels.back() += c;
    }
  }
  return levels;
}

inline bool reference_matches(std::string_view filter, std::string_view topic) {
  const std::vector<std::string> f = split_levels(filter);
  const std::vector<std::string> t = split_levels(topic);
  if (!topic.empty() && topic[0] == '$' && (f[0] == "+" || f[0] == "#")) return false;
  for (std::size_t i = 0; i < f.size(); ++i) {
    if (f[i] == "#") return true;  // the rest, including nothing (the parent level)
    if (i >= t.size()) return false;
    if (f[i] != "+" && f[i] != t[i]) return false;
  }
  return f.size() == t.size();
}

}  // namespace meshmq::topic::testing
