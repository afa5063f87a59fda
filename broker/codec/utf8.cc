#include "broker/codec/utf8.h"

#include <cstdint>
#include <cstring>

namespace meshmq::codec {
namespace {

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

// True when all 8 bytes are ASCII and none is 0x00. Topics and client ids are mostly ASCII, so this
// check carries the hot path (every PUBLISH topic is validated, MQTT-3.3.2-1).
inline bool ascii_block_without_nul(const unsigned char* p) {
  std::uint64_t v;
  std::memcpy(&v, p, sizeof v);
  const bool has_zero_byte = ((v - kOnes) & ~v & kHighBits) != 0;
  return (v & kHighBits) == 0 && !has_zero_byte;
}

}  // namespace

bool valid_mqtt_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (n - i >= 8 && ascii_block_without_nul(p + i)) {
      i += 8;
      continue;
    }
    const unsigned char c = p[i];
    if (c < 0x80) {
      // U+0000 is forbidden even though it is well-formed (MQTT-1.5.3-2).
      if (c == 0) return false;
      ++i;
      continue;
    }
    // Sequence length and the allowed range of the second byte follow RFC 3629 section 4's table;
    // narrowing the second byte rejects overlongs (C0, C1, E0 80-9F, F0 80-8F), surrogates
    // (ED A0-BF, MQTT-1.5.3-1) and code points above U+10FFFF (F4 90-BF, F5-FF).
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return false;  // continuation byte without a lead, C0/C1 overlong leads, or F5-FF
    }
    if (n - i < len) return false;  // truncated sequence
    if (p[i + 1] < lo || p[i + 1] > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

}  // namespace meshmq::codec
