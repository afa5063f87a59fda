// Admission of new connections: limits.max_connections over the node, and per listener
// listeners.<name>.max_connections and listeners.<name>.connect_rate. A listener asks admit() for
// every accepted socket; a refused socket is closed at once, counted and logged (rate-limited),
// and everyone already connected is unaffected. An admitted connection holds the returned ticket
// until it is destroyed, which gives its slots back.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "broker/config/config.h"
#include "broker/core/connection.h"
#include "broker/core/counters.h"
#include "broker/core/log_limiter.h"
#include "broker/core/token_bucket.h"

namespace meshmq::net {

class NodeAdmission {
 public:
  explicit NodeAdmission(std::uint64_t max_connections) : max_(max_connections) {}
  std::uint64_t max() const { return max_; }
  std::uint64_t open() const { return open_.load(std::memory_order_relaxed); }

 private:
  friend class ListenerAdmission;
  const std::uint64_t max_;
  std::atomic<std::uint64_t> open_{0};
};

// limits.max_connections = 0: the open-file limit minus room for files, storage and the cluster.
std::uint64_t effective_max_connections(std::uint32_t configured);

class ListenerAdmission final : public core::AdmissionTicket {
 public:
  ListenerAdmission(NodeAdmission& node, std::string name, const config::ListenerLimits& limits);

  // Called by the listener for each accepted socket, always from the same thread. nullptr means
  // refused (counted in `counters`, logged).
  core::TicketHold admit(core::WorkerCounters& counters, const std::string& peer);
  // Gives an admitted connection's slots back, on whichever worker it is destroyed.
  void release() override;
  std::uint64_t open() const { return open_.load(std::memory_order_relaxed); }

 private:
  NodeAdmission& node_;
  const std::string name_;
  const config::ListenerLimits limits_;
  std::atomic<std::uint64_t> open_{0};
  std::optional<core::TokenBucket> rate_;
  core::LogLimiter log_;
};

}  // namespace meshmq::net
