// Write buffers recycled per thread. A connection that has written everything gives its buffer
// back instead of freeing it, and the next connection with output on that worker takes it: no
// allocation per write (at low rates, per message), while an idle connection still holds no
// buffer. The cache is bounded (count and size per buffer), so a burst does not stay reserved.
#pragma once

#include <cstddef>
#include <string>

namespace meshmq::core::output_buffers {

inline constexpr std::size_t kMaxCached = 32;
inline constexpr std::size_t kMaxCachedCapacity = 16 * 1024;

// An empty string, with the capacity of a recycled buffer when the cache has one.
std::string take();
// Keeps `buffer`'s memory for take() if it is small enough and the cache is not full.
void give_back(std::string&& buffer);

}  // namespace meshmq::core::output_buffers
