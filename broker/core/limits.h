// Checks of limits.* shared by the connection (PUBLISH, will) and the broker (SUBSCRIBE).
#pragma once

#include <algorithm>
#include <string_view>

#include "broker/core/options.h"

namespace meshmq::core {

// Empty when `topic` (a name or a filter) is within limits.max_topic_length and max_topic_levels,
// else which limit it breaks.
inline std::string_view topic_limit_broken(std::string_view topic, const LimitOptions& limits) {
  if (topic.size() > limits.max_topic_length) return "limits.max_topic_length";
  // levels = slashes + 1; counting stops early so a long topic costs no more than it must.
  if (topic.size() >= limits.max_topic_levels &&
      static_cast<std::size_t>(std::count(topic.begin(), topic.end(), '/')) >=
          limits.max_topic_levels) {
    return "limits.max_topic_levels";
  }
  return {};
}

}  // namespace meshmq::core
