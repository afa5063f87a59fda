// Topic name and topic filter rules of MQTT 3.1.1 section 4.7.
#pragma once

#include <string_view>

namespace meshmq::codec {

// A topic name to publish to: non-empty, no '+' or '#', no U+0000 (4.7.3).
bool valid_topic_name(std::string_view topic);

// A topic filter to subscribe with: non-empty; '#' only as the last level and alone in it; '+'
// alone in its level (4.7.1).
bool valid_topic_filter(std::string_view filter);

// True when `filter` matches `topic`, including the rule that a filter starting with a wildcard
// does not match a topic starting with '$' (4.7.2). Both arguments must be valid.
bool topic_matches(std::string_view filter, std::string_view topic);

bool has_wildcard(std::string_view filter);

// True when every topic that `inner` matches is also matched by `outer` (both valid filters), so a
// subscription to `inner` can only ever receive what `outer` allows. Used by access rules.
bool filter_covers(std::string_view outer, std::string_view inner);

// True when at least one topic name matches both filters (both valid filters).
bool filters_overlap(std::string_view a, std::string_view b);

}  // namespace meshmq::codec
