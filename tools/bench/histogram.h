// Log-linear latency histogram in the style of HdrHistogram: 128 linear sub-buckets per power of
// two, so every recorded value is kept to within 1/128 (better than 2 significant digits), from
// 1 ns up to a 60 s ceiling, in fixed memory (30 KiB) with an O(1) record.
//
// One thread records (the worker that owns the subscribers); the progress line reads it from the
// control thread while the run goes on. Counters are relaxed atomics written with load+store rather
// than fetch_add: with a single writer that is race-free and compiles to a plain add, with no
// locked instruction on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace meshmq::bench {

class Histogram {
 public:
  // Values below 2^kSubBucketBits are exact; above, each octave has 2^(kSubBucketBits-1) buckets.
  static constexpr int kSubBucketBits = 8;
  static constexpr std::uint64_t kMaxValue = 60'000'000'000ULL;  // 60 s in ns, below 2^36
  static constexpr int kMaxShift = 35 - (kSubBucketBits - 1);
  static constexpr std::size_t kBuckets = std::size_t{kMaxShift + 2} << (kSubBucketBits - 1);

  void record(std::uint64_t value) {
    if (value > kMaxValue) value = kMaxValue;
    bump(counts_[index_of(value)], 1);
    bump(total_, 1);
    bump(sum_, value);
    if (value > max_.load(std::memory_order_relaxed)) max_.store(value, std::memory_order_relaxed);
  }

  // Adds another histogram's counts into this one (the control thread merges the workers').
  void add(const Histogram& other);
  void reset();

  std::uint64_t count() const { return total_.load(std::memory_order_relaxed); }
  std::uint64_t max() const { return max_.load(std::memory_order_relaxed); }
  double mean() const;
  // Smallest recorded value v such that at least `percentile`% of values are <= v, reported as the
  // upper edge of its bucket (never below the truth, at most 1/128 above it). 0 when empty.
  std::uint64_t percentile(double percentile) const;

  static std::size_t index_of(std::uint64_t value) {
    // Values below 2^kSubBucketBits sit in octave 0 at full resolution; above, each octave keeps
    // the top kSubBucketBits bits of the value.
    const int magnitude = 63 - std::countl_zero(value | ((1ULL << kSubBucketBits) - 1));
    const int shift = magnitude - (kSubBucketBits - 1);
    return (static_cast<std::size_t>(shift) << (kSubBucketBits - 1)) + (value >> shift);
  }
  static std::uint64_t upper_edge(std::size_t index);

 private:
  static void bump(std::atomic<std::uint64_t>& counter, std::uint64_t by) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }

  std::array<std::atomic<std::uint64_t>, kBuckets> counts_{};
  std::atomic<std::uint64_t> total_{0};
  std::atomic<std::uint64_t> sum_{0};
  std::atomic<std::uint64_t> max_{0};
};

}  // namespace meshmq::bench
