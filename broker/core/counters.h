// Per-worker metric cells. Each worker writes only its own cells (relaxed load + store, no
// read-modify-write, no cache line shared with another writer); readers sum all workers. The
// metrics registry (metrics.h) describes every field here with a name, help text and labels and
// feeds both $SYS and Prometheus from it.
//
// To add a counter: add a field to WorkerCounters and one line to the table in metrics.cc.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace meshmq::core {

struct Counter {
  std::atomic<std::uint64_t> value{0};
  void add(std::uint64_t n = 1) {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

// Up and down, e.g. live connections. A cell may go negative (an item added on one worker and
// removed on another); only the sum over workers is meaningful.
struct Gauge {
  std::atomic<std::int64_t> value{0};
  void add(std::int64_t n = 1) {
    value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void sub(std::int64_t n = 1) { add(-n); }
  std::int64_t get() const { return value.load(std::memory_order_relaxed); }
};

// A counter per small integer label value (QoS 0..2, packet type 1..14).
template <std::size_t N>
struct CounterArray {
  std::array<Counter, N> cells;
  template <class Index>
  void add(Index i, std::uint64_t n = 1) {
    const auto k = static_cast<std::size_t>(i);
    if (k < N) cells[k].add(n);
  }
  std::uint64_t get(std::size_t i) const { return cells[i].get(); }
  std::uint64_t total() const {
    std::uint64_t sum = 0;
    for (const Counter& c : cells) sum += c.get();
    return sum;
  }
};

// Fixed-bucket histogram of durations in nanoseconds (Prometheus-style: a count per upper bound,
// a sum and a total count). Buckets are not cumulative here; the exposition accumulates them.
struct LatencyHistogram {
  // 100 us .. 10 s: loopback delivery sits at the low end, a slow consumer at the high end.
  static constexpr std::array<std::uint64_t, 16> kBoundsNs{
      100'000,      250'000,      500'000,      1'000'000,    2'500'000,   5'000'000,
      10'000'000,   25'000'000,   50'000'000,   100'000'000,  250'000'000, 500'000'000,
      1000'000'000, 2500'000'000, 5000'000'000, 10000'000'000};
  std::array<Counter, kBoundsNs.size() + 1> buckets;  // last: above the largest bound (+Inf)
  Counter sum_ns;

  void observe(std::uint64_t ns) {
    std::size_t i = 0;
    while (i < kBoundsNs.size() && ns > kBoundsNs[i]) ++i;
    buckets[i].add();
    sum_ns.add(ns);
  }
};

struct alignas(64) WorkerCounters {
  CounterArray<3> messages_received;       // PUBLISH from clients, by QoS
  CounterArray<3> messages_sent;           // PUBLISH to clients, by QoS
  CounterArray<3> message_bytes_received;  // their payload bytes, by QoS
  CounterArray<3> message_bytes_sent;
  Counter dropped_queue_full;         // offline/slow session queue at its bound
  Counter dropped_qos0_slow;          // QoS 0 not written: connection output buffer full
  Counter dropped_retained_limit;     // retained store at retained_max_count
  Counter dropped_sys_topic;          // client PUBLISH to $SYS/...: acknowledged, not routed
  Counter dropped_storage_full;       // not queued or retained: storage.max_disk reached
  Counter refused_storage_failed;     // QoS 1/2 publishes refused (connection closed): store failed
  CounterArray<16> packets_received;  // by codec::PacketType
  CounterArray<16> packets_sent;
  Counter bytes_received;  // on the wire
  Counter bytes_sent;
  Counter connections_opened;  // transport accepted
  Counter connections_closed;
  Gauge clients_connected;  // CONNACK 0 sent and not closed yet
  Counter protocol_errors;
  Gauge queued_messages;    // in session queues (offline or beyond the inflight window)
  Gauge inflight_messages;  // outbound QoS 1/2 sent and not yet acknowledged
  Counter window_waits;     // for a connected client, queued or dropped: window/output full
  Counter backlog_waits;    // the same, behind a queue already a whole window deep
  Counter worker_pauses;    // busy passes followed by a pause (net/pacer.h)
  LatencyHistogram deliver_latency;  // Message::received_at -> written to a subscriber
  // Authentication and access rules (broker/auth through core::AccessPolicy).
  Counter auth_bad_credentials;  // CONNACK 0x04
  Counter auth_not_authorized;   // CONNACK 0x05
  Counter acl_publish_denied;    // PUBLISH dropped by the ACL
  Counter acl_subscribe_denied;  // SUBACK 0x80 from the ACL
  Counter acl_deliver_denied;    // not delivered: a wider subscription matched a denied topic
  // Limits that bit (each also logs a rate-limited line).
  Counter limit_packet_too_large;   // mqtt.max_packet_size
  Counter limit_connect_timeout;    // mqtt.connect_timeout
  Counter limit_topic;              // limits.max_topic_length / max_topic_levels
  Counter limit_subscriptions;      // limits.max_subscriptions_per_client
  Counter limit_publish_throttled;  // limits.publish_rate: reading paused
  Counter limit_connections;        // limits.max_connections / listeners.*.max_connections
  Counter limit_connect_rate;       // listeners.*.connect_rate
};

}  // namespace meshmq::core
