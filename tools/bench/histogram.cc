#include "tools/bench/histogram.h"

#include <cmath>

namespace meshmq::bench {

void Histogram::add(const Histogram& other) {
  for (std::size_t i = 0; i < kBuckets; ++i) {
    const std::uint64_t n = other.counts_[i].load(std::memory_order_relaxed);
    if (n != 0) bump(counts_[i], n);
  }
  bump(total_, other.total_.load(std::memory_order_relaxed));
  bump(sum_, other.sum_.load(std::memory_order_relaxed));
  if (other.max() > max()) max_.store(other.max(), std::memory_order_relaxed);
}

void Histogram::reset() {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  total_.store(0, std::memory_order_relaxed);
  sum_.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

double Histogram::mean() const {
  const std::uint64_t n = count();
  return n == 0 ? 0.0 : static_cast<double>(sum_.load(std::memory_order_relaxed)) / n;
}

std::uint64_t Histogram::upper_edge(std::size_t index) {
  constexpr std::size_t kHalf = std::size_t{1} << (kSubBucketBits - 1);
  if (index < 2 * kHalf) return index;
  const std::size_t shift = index / kHalf - 1;
  const std::uint64_t sub = index - shift * kHalf;
  return ((sub + 1) << shift) - 1;
}

std::uint64_t Histogram::percentile(double percentile) const {
  const std::uint64_t n = count();
  if (n == 0) return 0;
  // The rank of the value we want, 1-based: p50 of 10 values is the 5th.
  auto rank = static_cast<std::uint64_t>(std::ceil(percentile / 100.0 * static_cast<double>(n)));
  if (rank < 1) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += counts_[i].load(std::memory_order_relaxed);
    // The top bucket's edge can exceed the largest value seen; max is exact, so cap at it.
    if (seen >= rank) return std::min(upper_edge(i), max());
  }
  return max();
}

}  // namespace meshmq::bench
