// Per-worker event counters. Each worker writes only its own cells (relaxed atomics, no sharing on
// the hot path); readers sum all workers. The metrics issue builds $SYS and Prometheus on this.
#pragma once

#include <atomic>
#include <cstdint>

namespace meshmq::core {

struct Counter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct alignas(64) WorkerCounters {
  Counter messages_received;       // PUBLISH packets from clients
  Counter messages_sent;           // PUBLISH packets to clients
  Counter dropped_queue_full;      // offline/slow session queue at its bound
  Counter dropped_qos0_slow;       // QoS 0 not written: connection output buffer full
  Counter dropped_retained_limit;  // retained store at retained_max_count
  Counter packets_received;
  Counter packets_sent;
  Counter bytes_received;
  Counter bytes_sent;
  Counter connections_opened;
  Counter connections_closed;
  Counter protocol_errors;
};

}  // namespace meshmq::core
