#include "broker/core/output_buffers.h"

#include <vector>

namespace meshmq::core::output_buffers {
namespace {
// Per thread, so workers share nothing; the vector itself is reserved once.
thread_local std::vector<std::string> t_cache;
}  // namespace

std::string take() {
  if (t_cache.empty()) return {};
  std::string buffer = std::move(t_cache.back());
  t_cache.pop_back();
  return buffer;
}

void give_back(std::string&& buffer) {
  const std::size_t capacity = buffer.capacity();
  std::string owned = std::move(buffer);
  if (capacity <= std::string().capacity() || capacity > kMaxCachedCapacity) return;
  if (t_cache.capacity() == 0) t_cache.reserve(kMaxCached);
  if (t_cache.size() >= kMaxCached) return;
  owned.clear();
  t_cache.push_back(std::move(owned));
}

}  // namespace meshmq::core::output_buffers
