// Counters one worker thread writes and the control thread reads for the progress line and the
// summary. Single writer, so relaxed load+store (a plain add, no locked instruction) suffices.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

#include "tools/bench/histogram.h"

namespace meshmq::bench {

class Counter {
 public:
  void add(std::uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

struct alignas(64) WorkerStats {
  Counter started;           // connection attempts begun
  Counter ready;             // CONNACK accepted (and SUBACK, for subscribers)
  Counter connect_errors;    // failed before ready: TCP, WebSocket, CONNACK refusal, timeout
  Counter subscribe_errors;  // SUBACK refused the filter
  Counter connections_lost;  // closed by the broker or the network after being ready
  Counter closed;            // clients that are finished, whichever way
  Counter publishers_started;
  Counter publishers_done;  // publishers that sent their -n messages, or ended early
  Counter start_acks;       // start_publishing carried out (once per worker)

  Counter sent;      // PUBLISH packets written
  Counter sent_qos;  // of which QoS 1/2, to be acknowledged
  Counter acked;     // PUBACK (QoS 1) or PUBCOMP (QoS 2) received
  Counter expected;  // deliveries the in-process subscribers should see (sent x matching subs)

  Counter received;    // PUBLISH received: of this run (scenario), or all of them (sub)
  Counter foreign;     // without our header, or (scenario) from another run
  Counter duplicated;  // a (publisher, sequence) received again by the same subscriber
  Counter late;        // out of order: arrived after a higher sequence of its publisher
  Counter gaps;        // sequences skipped over when they happened (minus `late` = still missing)

  Histogram latency;       // publish-to-receive, ns
  Histogram connect_time;  // TCP connect to CONNACK (SUBACK for subscribers), ns

  // --latency-log only: each delivery's send time and latency, ns. Written by the worker's thread
  // and read once it is stopped (joined), so not atomic.
  struct Sample {
    std::uint64_t sent_ns;
    std::uint64_t latency_ns;
  };
  std::vector<Sample> latency_log;
};

// Prints the first few client errors on stderr; the summary counts all of them.
void log_client_error(std::string_view client_id, std::string_view what);

}  // namespace meshmq::bench
