#include "broker/net/admission.h"

#include <sys/resource.h>

namespace meshmq::net {
namespace {

constexpr std::uint64_t kReservedFiles = 256;

}  // namespace

std::uint64_t effective_max_connections(std::uint32_t configured) {
  if (configured != 0) return configured;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return 1000000;
  return limit.rlim_cur > 2 * kReservedFiles ? limit.rlim_cur - kReservedFiles : limit.rlim_cur / 2;
}

ListenerAdmission::ListenerAdmission(NodeAdmission& node, std::string name,
                                     const config::ListenerLimits& limits)
    : node_(node), name_(std::move(name)), limits_(limits) {
  if (limits_.connect_rate != 0) {
    rate_.emplace(limits_.connect_rate, limits_.connect_rate, core::TokenBucket::Clock::now());
  }
}

void ListenerAdmission::release() {
  node_.open_.fetch_sub(1, std::memory_order_relaxed);
  open_.fetch_sub(1, std::memory_order_relaxed);
}

core::TicketHold ListenerAdmission::admit(core::WorkerCounters& counters, const std::string& peer) {
  if (rate_ && !rate_->take(core::TokenBucket::Clock::now())) {
    counters.limit_connect_rate.add();
    core::warn_limited(log_,
                       "{} listener: connection from {} refused: listeners.{}.connect_rate "
                       "({}/s) exceeded",
                       name_, peer, name_, limits_.connect_rate);
    return nullptr;
  }
  // Reserve first, check after: listeners on other threads race for the same node-wide slots.
  const std::uint64_t node_open = node_.open_.fetch_add(1, std::memory_order_relaxed);
  const std::uint64_t listener_open = open_.fetch_add(1, std::memory_order_relaxed);
  core::TicketHold ticket(this);
  std::string key;
  std::uint64_t limit = 0;
  if (node_open >= node_.max_) {
    key = "limits.max_connections";
    limit = node_.max_;
  } else if (limits_.max_connections != 0 && listener_open >= limits_.max_connections) {
    key = "listeners." + name_ + ".max_connections";
    limit = limits_.max_connections;
  }
  if (!key.empty()) {
    counters.limit_connections.add();
    core::warn_limited(log_, "{} listener: connection from {} refused: {} ({}) reached", name_,
                       peer, key, limit);
    return nullptr;  // the ticket gives the reserved slots back
  }
  return ticket;
}

}  // namespace meshmq::net
