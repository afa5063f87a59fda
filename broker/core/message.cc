#include "broker/core/message.h"

#include <cstring>
#include <new>

namespace meshmq::core {
namespace {

// Hands allocate_shared a block `tail_size` bytes longer than the control block + Message it asks
// for, and reports where those extra bytes start.
template <class T>
struct TailAllocator {
  using value_type = T;

  TailAllocator(std::size_t tail_size, char** tail) : tail_size(tail_size), tail(tail) {}
  template <class U>
  TailAllocator(const TailAllocator<U>& other) : tail_size(other.tail_size), tail(other.tail) {}

  T* allocate(std::size_t n) {
    char* block = static_cast<char*>(::operator new(n * sizeof(T) + tail_size));
    *tail = block + n * sizeof(T);
    return reinterpret_cast<T*>(block);
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }

  template <class U>
  bool operator==(const TailAllocator<U>& other) const {
    return tail_size == other.tail_size && tail == other.tail;
  }

  std::size_t tail_size;
  char** tail;
};

}  // namespace

MessagePtr make_message(std::string_view topic, std::string_view payload, QoS qos, bool retain,
                        Clock::time_point received_at) {
  char* tail = nullptr;
  auto message =
      std::allocate_shared<Message>(TailAllocator<Message>(topic.size() + payload.size(), &tail));
  if (!topic.empty()) std::memcpy(tail, topic.data(), topic.size());
  if (!payload.empty()) std::memcpy(tail + topic.size(), payload.data(), payload.size());
  message->topic = std::string_view(tail, topic.size());
  message->payload = std::string_view(tail + topic.size(), payload.size());
  message->qos = qos;
  message->retain = retain;
  message->received_at = received_at;
  return message;
}

}  // namespace meshmq::core
