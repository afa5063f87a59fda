#include "broker/codec/topic_rules.h"

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace meshmq::codec {
namespace {

// Topic names and filters travel as UTF-8 strings with a two-byte length (1.5.3), so nothing longer
// can be encoded, and MQTT-4.7.3-3 restates the limit.
constexpr std::size_t kMaxTopicLength = 65535;

// True when any byte of `word` equals `byte` (the classic "has zero byte" test on word ^ pattern;
// exact as a yes/no answer).
inline bool has_byte(std::uint64_t word, char byte) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;
  const std::uint64_t x = word ^ (kOnes * static_cast<unsigned char>(byte));
  return ((x - kOnes) & ~x & kHighBits) != 0;
}

}  // namespace

bool valid_topic_name(std::string_view topic) {
  // MQTT-4.7.3-1: at least one character; MQTT-3.3.2-2: no wildcards; MQTT-4.7.3-2: no U+0000.
  // Full UTF-8 validity is checked by the decoder separately, not here, to avoid a second pass.
  if (topic.empty() || topic.size() > kMaxTopicLength) return false;
  // This runs for every PUBLISH, so scan a word at a time (find_first_of with a three-character
  // set costs a memchr call per topic byte and dominated PUBLISH decoding).
  std::size_t i = 0;
  for (; i + 8 <= topic.size(); i += 8) {
    std::uint64_t word;
    std::memcpy(&word, topic.data() + i, sizeof word);
    if (has_byte(word, '+') || has_byte(word, '#') || has_byte(word, '\0')) return false;
  }
  for (; i < topic.size(); ++i) {
    const char c = topic[i];
    if (c == '+' || c == '#' || c == '\0') return false;
  }
  return true;
}

bool valid_topic_filter(std::string_view filter) {
  if (filter.empty() || filter.size() > kMaxTopicLength) return false;
  const std::size_t n = filter.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = filter[i];
    if (c == '\0') return false;  // MQTT-4.7.3-2
    const bool level_start = i == 0 || filter[i - 1] == '/';
    const bool level_end = i + 1 == n || filter[i + 1] == '/';
    if (c == '+') {
      // MQTT-4.7.1-3: '+' must occupy an entire level.
      if (!level_start || !level_end) return false;
    } else if (c == '#') {
      // MQTT-4.7.1-2: '#' alone in the last level.
      if (!level_start || i + 1 != n) return false;
    }
  }
  return true;
}

bool has_wildcard(std::string_view filter) {
  for (const char c : filter) {
    if (c == '+' || c == '#') return true;
  }
  return false;
}

namespace {

// Splits off the next level of a filter; `pos` is npos once there are no more levels.
std::string_view next_level(std::string_view s, std::size_t& pos) {
  const std::size_t slash = s.find('/', pos);
  std::string_view level = s.substr(pos, slash == std::string_view::npos ? slash : slash - pos);
  pos = slash == std::string_view::npos ? slash : slash + 1;
  return level;
}

bool starts_with_wildcard(std::string_view f) {
  return !f.empty() && (f.front() == '+' || f.front() == '#');
}

// 4.7.2: a filter starting with a wildcard never matches a '$' topic, so it can neither cover nor
// overlap a filter whose first level is a literal starting with '$'.
bool dollar_excluded(std::string_view wild, std::string_view other) {
  return starts_with_wildcard(wild) && !other.empty() && other.front() == '$';
}

}  // namespace

bool filter_covers(std::string_view outer, std::string_view inner) {
  if (dollar_excluded(outer, inner)) return false;
  constexpr auto npos = std::string_view::npos;
  std::size_t o = 0;
  std::size_t i = 0;
  while (true) {
    const std::string_view o_level = next_level(outer, o);
    if (o_level == "#") return true;  // covers whatever is left, including nothing
    if (i == npos) return false;      // inner ended ("a" vs outer "a/+")
    const std::string_view i_level = next_level(inner, i);
    if (i_level == "#") return false;  // inner spans levels outer pins down
    if (o_level != "+" && (i_level == "+" || o_level != i_level)) return false;
    if (o == npos) return i == npos;
  }
}

bool filters_overlap(std::string_view a, std::string_view b) {
  if (dollar_excluded(a, b) || dollar_excluded(b, a)) return false;
  constexpr auto npos = std::string_view::npos;
  std::size_t x = 0;
  std::size_t y = 0;
  while (true) {
    const std::string_view a_level = next_level(a, x);
    const std::string_view b_level = next_level(b, y);
    if (a_level == "#" || b_level == "#") return true;
    if (a_level != "+" && b_level != "+" && a_level != b_level) return false;
    if (x == npos || y == npos) {
      // One ended: they still share a topic if the other ends too, or continues only with "#".
      if (x == npos && y == npos) return true;
      std::string_view rest = x == npos ? b.substr(y) : a.substr(x);
      return rest == "#";
    }
  }
}

bool topic_matches(std::string_view filter, std::string_view topic) {
  // 4.7.2: filters starting with a wildcard must not match topics starting with '$' (MQTT-4.7.2-1),
  // so "#" does not deliver $SYS traffic.
  if (!topic.empty() && topic.front() == '$' && !filter.empty() &&
      (filter.front() == '+' || filter.front() == '#')) {
    return false;
  }
  constexpr auto npos = std::string_view::npos;
  std::size_t f = 0;  // start of the current filter level
  std::size_t t = 0;  // start of the current topic level, or npos once the topic has no more levels
  while (true) {
    const std::size_t f_slash = filter.find('/', f);
    const std::string_view f_level = filter.substr(f, f_slash == npos ? npos : f_slash - f);
    // '#' matches the parent level too: "sport/#" matches "sport" (4.7.1.2), hence checked before
    // looking at whether the topic still has a level.
    if (f_level == "#") return true;
    if (t == npos) return false;
    const std::size_t t_slash = topic.find('/', t);
    const std::string_view t_level = topic.substr(t, t_slash == npos ? npos : t_slash - t);
    // '+' matches exactly one level, which may be empty (4.7.1.3: "+/+" matches "/finance").
    if (f_level != "+" && f_level != t_level) return false;
    if (f_slash == npos) return t_slash == npos;
    f = f_slash + 1;
    t = t_slash == npos ? npos : t_slash + 1;
  }
}

}  // namespace meshmq::codec
