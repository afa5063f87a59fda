// A FIFO that owns no memory while empty (std::deque allocates a 512-byte block even then, which
// at a million idle sessions is half a gigabyte) and gives its buffer back once drained.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>

namespace meshmq::core {

template <class T>
class RingQueue {
 public:
  RingQueue() = default;
  RingQueue(const RingQueue&) = delete;
  RingQueue& operator=(const RingQueue&) = delete;
  ~RingQueue() { clear(); }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  T& front() { return slots_[head_]; }
  T& operator[](std::size_t i) { return slots_[(head_ + i) % capacity_]; }

  void push_back(T value) {
    if (size_ == capacity_) grow();
    std::size_t tail = (head_ + size_) % capacity_;
    std::construct_at(&slots_[tail], std::move(value));
    ++size_;
  }

  void pop_front() {
    std::destroy_at(&slots_[head_]);
    head_ = (head_ + 1) % capacity_;
    if (--size_ == 0) release();
  }

  template <class Fn>
  void for_each(Fn&& fn) const {
    for (std::size_t i = 0; i < size_; ++i) fn(slots_[(head_ + i) % capacity_]);
  }

  void clear() {
    while (size_ > 0) pop_front();
    release();
  }

 private:
  void grow() {
    const std::uint32_t capacity = capacity_ == 0 ? 4 : capacity_ * 2;
    T* fresh = std::allocator<T>().allocate(capacity);
    for (std::uint32_t i = 0; i < size_; ++i) {
      T& old = slots_[(head_ + i) % capacity_];
      std::construct_at(&fresh[i], std::move(old));
      std::destroy_at(&old);
    }
    if (slots_ != nullptr) std::allocator<T>().deallocate(slots_, capacity_);
    slots_ = fresh;
    capacity_ = capacity;
    head_ = 0;
  }

  void release() {
    if (slots_ != nullptr) std::allocator<T>().deallocate(slots_, capacity_);
    slots_ = nullptr;
    capacity_ = 0;
    head_ = 0;
  }

  // 24 bytes: a queue per session. Queues are bounded far below 2^32 (mqtt.max_queued_messages).
  T* slots_ = nullptr;
  std::uint32_t capacity_ = 0;
  std::uint32_t head_ = 0;
  std::uint32_t size_ = 0;
};

}  // namespace meshmq::core
