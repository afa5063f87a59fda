// A FIFO that owns no memory while empty (std::deque allocates a 512-byte block even then, which
// at a million idle sessions is half a gigabyte) and gives its buffer back once drained.
#pragma once

#include <cstddef>
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

  void clear() {
    while (size_ > 0) pop_front();
    release();
  }

 private:
  struct Deleter {
    void operator()(T* p) const { std::allocator<T>().deallocate(p, capacity); }
    std::size_t capacity = 0;
  };

  void grow() {
    const std::size_t capacity = capacity_ == 0 ? 4 : capacity_ * 2;
    T* fresh = std::allocator<T>().allocate(capacity);
    for (std::size_t i = 0; i < size_; ++i) {
      T& old = slots_[(head_ + i) % capacity_];
      std::construct_at(&fresh[i], std::move(old));
      std::destroy_at(&old);
    }
    slots_ = std::unique_ptr<T[], Deleter>(fresh, Deleter{capacity});
    capacity_ = capacity;
    head_ = 0;
  }

  void release() {
    slots_.reset();
    capacity_ = 0;
    head_ = 0;
  }

  std::unique_ptr<T[], Deleter> slots_;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace meshmq::core
