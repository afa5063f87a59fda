// A replaced global operator new that counts while a Counting object is alive. Include it from
// exactly one file of a test binary (the replacement is process-wide).
#pragma once

#include <atomic>
#include <cstdlib>
#include <new>

namespace meshmq::testing::alloc {
inline std::atomic<bool> g_counting{false};
inline std::atomic<long> g_allocations{0};
inline std::atomic<long> g_live{0};
inline std::atomic<std::size_t> g_largest{0};
}  // namespace meshmq::testing::alloc

void* operator new(std::size_t size) {
  using namespace meshmq::testing::alloc;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  if (g_counting.load(std::memory_order_relaxed)) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    g_live.fetch_add(1, std::memory_order_relaxed);
    if (size > g_largest.load(std::memory_order_relaxed)) g_largest.store(size);
  }
  return p;
}

void operator delete(void* p) noexcept {
  using namespace meshmq::testing::alloc;
  if (p != nullptr && g_counting.load(std::memory_order_relaxed)) {
    g_live.fetch_sub(1, std::memory_order_relaxed);
  }
  std::free(p);
}

void operator delete(void* p, std::size_t) noexcept {
  operator delete(p);
}

namespace meshmq::testing {

// Counts allocations made while alive. Objects allocated before it and freed during it would skew
// `live`, so each test creates its long-lived objects first.
class Counting {
 public:
  Counting() {
    alloc::g_allocations = 0;
    alloc::g_live = 0;
    alloc::g_largest = 0;
    alloc::g_counting = true;
  }
  ~Counting() { alloc::g_counting = false; }
  long allocations() const { return alloc::g_allocations; }
  long live() const { return alloc::g_live; }
  std::size_t largest() const { return alloc::g_largest; }
};

}  // namespace meshmq::testing

// Arrays too: sanitizers replace operator new[] themselves instead of forwarding to operator new.
void* operator new[](std::size_t size) {
  return operator new(size);
}
void operator delete[](void* p) noexcept {
  operator delete(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  operator delete(p);
}
