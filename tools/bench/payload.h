// What every benchmark payload starts with, so a subscriber can measure latency and detect loss,
// duplication and reordering per publisher. Fixed little-endian layout (the tool talks to itself,
// on one host), padded with filler up to the requested payload size.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

namespace meshmq::bench {

inline constexpr std::uint32_t kPayloadMagic = 0x3162'6d6d;  // "mmb1"
inline constexpr std::size_t kPayloadHeaderSize = 28;

struct PayloadHeader {
  // Random per process. A broker still working off an earlier run's backlog (an overloaded run
  // leaves megabytes in socket buffers) would otherwise feed this run's subscribers sequences of
  // "the same" publishers: false duplicates, reordering and latency.
  std::uint32_t run = 0;
  std::uint32_t publisher = 0;
  std::uint64_t sequence = 0;  // per publisher, from 0
  std::uint64_t sent_ns = 0;   // steady clock (CLOCK_MONOTONIC: shared by processes on a host)
};

inline std::uint64_t now_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

// A payload of `size` bytes (at least kPayloadHeaderSize) whose header stamp() rewrites in place.
inline std::string make_payload(std::size_t size, std::uint32_t run, std::uint32_t publisher) {
  std::string payload(size < kPayloadHeaderSize ? kPayloadHeaderSize : size, 'x');
  std::memcpy(payload.data(), &kPayloadMagic, 4);
  std::memcpy(payload.data() + 4, &run, 4);
  std::memcpy(payload.data() + 8, &publisher, 4);
  return payload;
}

inline void stamp(std::string& payload, std::uint64_t sequence, std::uint64_t sent_ns) {
  std::memcpy(payload.data() + 12, &sequence, 8);
  std::memcpy(payload.data() + 20, &sent_ns, 8);
}

// Messages without the header are another client's traffic on a shared broker.
inline std::optional<PayloadHeader> read_header(std::string_view payload) {
  if (payload.size() < kPayloadHeaderSize) return std::nullopt;
  std::uint32_t magic = 0;
  std::memcpy(&magic, payload.data(), 4);
  if (magic != kPayloadMagic) return std::nullopt;
  PayloadHeader h;
  std::memcpy(&h.run, payload.data() + 4, 4);
  std::memcpy(&h.publisher, payload.data() + 8, 4);
  std::memcpy(&h.sequence, payload.data() + 12, 8);
  std::memcpy(&h.sent_ns, payload.data() + 20, 8);
  return h;
}

}  // namespace meshmq::bench
