// Per-publisher sequence tracking on the subscriber side: detects gaps (lost until proven late),
// duplicates and out-of-order arrivals in O(1) per message with fixed memory per publisher.
#pragma once

#include <array>
#include <cstdint>
#include <unordered_map>

namespace meshmq::bench {

struct SeqOutcome {
  enum class Kind : std::uint8_t {
    kNew,        // the highest sequence so far (possibly after a gap)
    kLate,       // not seen before, but after a higher one: out of order, fills a gap
    kDuplicate,  // seen before
  };
  Kind kind = Kind::kNew;
  std::uint64_t gap = 0;  // for kNew: sequences skipped over (missing unless they arrive late)
};

class SeqTracker {
 public:
  // Sequences further than this behind the newest one cannot be told apart from duplicates; they
  // are taken as late arrivals. QoS 1/2 reordering is bounded by the in-flight window, far less.
  static constexpr std::uint64_t kWindow = 1024;

  // `publisher` identifies the stream: run and publisher id.
  SeqOutcome record(std::uint64_t publisher, std::uint64_t seq) {
    Stream& s = stream(publisher);
    if (seq >= s.next) {
      const std::uint64_t gap = seq - s.next;
      if (gap >= kWindow) {
        s.seen.fill(0);
      } else {
        for (std::uint64_t q = s.next; q < seq; ++q) clear(s, q);
      }
      set(s, seq);
      s.next = seq + 1;
      return {SeqOutcome::Kind::kNew, gap};
    }
    if (s.next - seq > kWindow) return {SeqOutcome::Kind::kLate, 0};
    if (test(s, seq)) return {SeqOutcome::Kind::kDuplicate, 0};
    set(s, seq);
    return {SeqOutcome::Kind::kLate, 0};
  }

 private:
  struct Stream {
    std::uint64_t next = 0;  // one past the highest sequence seen
    // Ring bitmap of which of the kWindow sequences below `next` have been seen.
    std::array<std::uint64_t, kWindow / 64> seen{};
  };

  Stream& stream(std::uint64_t publisher) {
    // Most subscribers hear one publisher, or the same one many times in a row.
    if (last_ != nullptr && last_id_ == publisher) return *last_;
    last_ = &streams_[publisher];  // node-based: the reference survives rehashing
    last_id_ = publisher;
    return *last_;
  }
  static void set(Stream& s, std::uint64_t q) { s.seen[(q % kWindow) / 64] |= bit(q); }
  static void clear(Stream& s, std::uint64_t q) { s.seen[(q % kWindow) / 64] &= ~bit(q); }
  static bool test(const Stream& s, std::uint64_t q) {
    return (s.seen[(q % kWindow) / 64] & bit(q)) != 0;
  }
  static std::uint64_t bit(std::uint64_t q) { return std::uint64_t{1} << (q % 64); }

  std::unordered_map<std::uint64_t, Stream> streams_;
  Stream* last_ = nullptr;
  std::uint64_t last_id_ = 0;
};

}  // namespace meshmq::bench
